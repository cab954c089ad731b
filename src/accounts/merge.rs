//! Merging two accounts (issue 8 §4): e.g. a WeChat-only account made by
//! the `create` policy into the person's real account. [`plan`] says
//! exactly what moves and what conflicts (the preview); [`merge`] does it
//! in one transaction: identities, consents and roles move to the
//! survivor, the merged-away account's sessions end and its grants are
//! revoked, it is disabled and points to the survivor. Its id — the `sub`
//! relying parties know — is never reused (accounts are never deleted).

use serde::Serialize;

use super::AccountId;
use super::manage::{self, Actor};
use crate::audit::{self, Action, AuditEvent};
use crate::db::{self, DbConn};
use crate::secrets::Secrets;

/// Which side wins a conflicting field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Side {
    From,
    Into,
}

impl std::str::FromStr for Side {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "from" => Ok(Self::From),
            "into" => Ok(Self::Into),
            other => Err(format!("`{other}` is not `from` or `into`")),
        }
    }
}

/// The admin's choices for conflicting fields.
#[derive(Debug, Clone, Copy, Default)]
pub struct Preferences {
    pub phone: Option<Side>,
    pub email: Option<Side>,
}

/// A conflict the merge cannot settle on its own.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "field", rename_all = "snake_case")]
pub enum Conflict {
    /// Both accounts have an identity of this platform: unlink one first.
    Identity { platform: String },
    /// Both have a verified phone, and they differ: choose a side.
    Phone { from: String, into: String },
    /// Both have a verified email, and they differ: choose a side.
    Email { from: String, into: String },
}

impl Conflict {
    /// A side can settle it (phone, email); an identity conflict cannot.
    pub fn choosable(&self) -> bool {
        !matches!(self, Self::Identity { .. })
    }
}

/// What a merge would do.
#[derive(Debug, Clone, Serialize)]
pub struct Plan {
    pub from_id: String,
    pub from_username: String,
    pub into_id: String,
    pub into_username: String,
    /// Identities that move (id, Open Platform or app key).
    pub identities: Vec<(String, String)>,
    /// Clients whose consent moves; `consents_dropped`: the survivor has its own.
    pub consents: Vec<String>,
    pub consents_dropped: Vec<String>,
    /// Refresh-token grants revoked (client ids).
    pub grants_revoked: Vec<String>,
    pub sessions_ended: usize,
    /// Roles the survivor gains.
    pub roles_added: Vec<String>,
    pub conflicts: Vec<Conflict>,
}

#[derive(Debug, thiserror::Error)]
pub enum MergeError {
    #[error("no such account `{0}`")]
    NotFound(String),
    #[error("an account cannot be merged into itself")]
    SameAccount,
    #[error("the account `{0}` was already merged into another account")]
    AlreadyMerged(String),
    #[error("a reason is required")]
    ReasonRequired,
    #[error("the merge has unresolved conflicts: {0}")]
    Conflicts(String),
    #[error(transparent)]
    Db(#[from] diesel::result::Error),
}

fn load(conn: &mut DbConn, id: &str) -> Result<super::Account, MergeError> {
    manage::find_by_id(conn, &AccountId::from_db(id.to_owned()))?.ok_or_else(|| MergeError::NotFound(id.to_owned()))
}

fn verified(value: &Option<String>, flag: bool) -> Option<&str> {
    value.as_deref().filter(|v| flag && !v.is_empty())
}

/// The preview: what moves, what conflicts. Read-only.
pub fn plan(conn: &mut DbConn, from_id: &str, into_id: &str) -> Result<Plan, MergeError> {
    if from_id == into_id {
        return Err(MergeError::SameAccount);
    }
    let from = load(conn, from_id)?;
    let into = load(conn, into_id)?;
    for account in [&from, &into] {
        if db::accounts::merged_into(conn, account.id.as_str())?.is_some() {
            return Err(MergeError::AlreadyMerged(account.username.clone()));
        }
    }
    let mut conflicts = Vec::new();
    let theirs = db::wechat::identities_of_account(conn, into_id)?;
    let mut identities = Vec::new();
    for identity in db::wechat::identities_of_account(conn, from_id)? {
        let platform = identity.open_platform.clone().unwrap_or_else(|| identity.platform_key.clone());
        if theirs.iter().any(|t| t.platform_key == identity.platform_key) {
            conflicts.push(Conflict::Identity { platform });
        } else {
            identities.push((identity.id, platform));
        }
    }
    if let (Some(a), Some(b)) = (verified(&from.phone, from.phone_verified), verified(&into.phone, into.phone_verified))
        && a != b
    {
        conflicts.push(Conflict::Phone { from: a.to_owned(), into: b.to_owned() });
    }
    if let (Some(a), Some(b)) = (verified(&from.email, from.email_verified), verified(&into.email, into.email_verified))
        && !a.eq_ignore_ascii_case(b)
    {
        conflicts.push(Conflict::Email { from: a.to_owned(), into: b.to_owned() });
    }
    let survivor_clients: Vec<String> =
        db::consents::list_for_account(conn, into_id)?.into_iter().map(|c| c.client_id).collect();
    let (mut consents, mut consents_dropped) = (Vec::new(), Vec::new());
    for consent in db::consents::list_for_account(conn, from_id)? {
        if survivor_clients.contains(&consent.client_id) {
            consents_dropped.push(consent.client_id);
        } else {
            consents.push(consent.client_id);
        }
    }
    let grants_revoked =
        db::grants::live_grants_of_account(conn, from_id, db::now(), 1000)?.into_iter().map(|g| g.client_id).collect();
    let sessions_ended = db::sessions::list_for_account(conn, from_id, 10_000)?.len();
    let roles_added = from.roles.iter().filter(|r| !into.roles.contains(r)).map(|r| r.as_str().to_owned()).collect();
    Ok(Plan {
        from_id: from_id.to_owned(),
        from_username: from.username,
        into_id: into_id.to_owned(),
        into_username: into.username,
        identities,
        consents,
        consents_dropped,
        grants_revoked,
        sessions_ended,
        roles_added,
        conflicts,
    })
}

/// The conflicts the preferences leave unresolved.
pub fn unresolved(plan: &Plan, prefer: Preferences) -> Vec<&Conflict> {
    plan.conflicts
        .iter()
        .filter(|c| match c {
            Conflict::Identity { .. } => true,
            Conflict::Phone { .. } => prefer.phone.is_none(),
            Conflict::Email { .. } => prefer.email.is_none(),
        })
        .collect()
}

/// Merges `from_id` into `into_id` in one transaction, or refuses while
/// a conflict is unresolved. Returns the plan it carried out.
pub fn merge(
    conn: &mut DbConn,
    secrets: &Secrets,
    actor: &Actor,
    from_id: &str,
    into_id: &str,
    prefer: Preferences,
    reason: &str,
) -> Result<Plan, MergeError> {
    let reason = reason.trim();
    if reason.is_empty() || reason.chars().count() > 500 {
        return Err(MergeError::ReasonRequired);
    }
    db::write_transaction(conn, |conn| {
        let plan = plan(conn, from_id, into_id)?;
        let open = unresolved(&plan, prefer);
        if !open.is_empty() {
            let fields: Vec<String> = open.iter().map(|c| describe(c)).collect();
            return Err(MergeError::Conflicts(fields.join("; ")));
        }
        let (from, into) = (load(conn, from_id)?, load(conn, into_id)?);
        let now = db::now();
        for (identity, _) in &plan.identities {
            db::wechat::set_identity_account(conn, identity, Some(into_id), now)?;
        }
        for client in &plan.consents {
            db::consents::move_to(conn, from_id, into_id, client)?;
        }
        for client in &plan.consents_dropped {
            db::consents::delete(conn, from_id, client)?;
        }
        for role in &plan.roles_added {
            db::accounts::add_role(conn, into_id, role)?;
        }
        // A field the survivor lacks is taken from the merged-away account;
        // a conflicting one as the admin chose.
        let take_phone = match prefer.phone {
            Some(side) => side == Side::From,
            None => {
                verified(&into.phone, into.phone_verified).is_none() && from.phone.is_some() && into.phone.is_none()
            }
        };
        if take_phone {
            db::accounts::set_phone(conn, into_id, from.phone.as_deref(), from.phone_verified, now)?;
        }
        let take_email = match prefer.email {
            Some(side) => side == Side::From,
            None => {
                verified(&into.email, into.email_verified).is_none() && from.email.is_some() && into.email.is_none()
            }
        };
        if take_email {
            db::accounts::set_email(conn, into_id, from.email.as_deref(), from.email_verified, now)?;
        }
        let sessions = super::sessions::end_all_of_account(conn, from_id, "merged")?;
        let grants = db::grants::revoke_all_grants_of_account(conn, from_id, now)?;
        db::accounts::mark_merged(conn, from_id, into_id, now)?;
        let event = AuditEvent::success(Action::UserMerged)
            .with_actor(actor.0.clone())
            .with_account(into_id)
            .with_detail("reason", reason)
            .with_detail("from", from_id)
            .with_detail("into", into_id)
            .with_detail("identities", plan.identities.iter().map(|(id, _)| id.clone()).collect::<Vec<_>>())
            .with_detail("consents_moved", plan.consents.clone())
            .with_detail("roles_added", plan.roles_added.clone())
            .with_detail("phone_from", take_phone)
            .with_detail("email_from", take_email)
            .with_detail("sessions_ended", sessions)
            .with_detail("grants_revoked", grants);
        audit::append(conn, secrets, &event)?;
        // The merged-away account's own record: disabled, pointing onward.
        let disabled = AuditEvent::success(Action::UserDisabled)
            .with_actor(actor.0.clone())
            .with_account(from_id)
            .with_detail("reason", reason)
            .with_detail("merged_into", into_id)
            .with_detail("before", from.status.as_str())
            .with_detail("after", "disabled");
        audit::append(conn, secrets, &disabled)?;
        Ok(plan)
    })
}

/// A conflict in words (CLI, refusals). Values are the accounts' own
/// contact fields, shown to the admin who is merging them.
pub fn describe(conflict: &Conflict) -> String {
    match conflict {
        Conflict::Identity { platform } => {
            format!("both accounts have a WeChat identity of `{platform}` (unlink one first)")
        }
        Conflict::Phone { from, into } => format!("verified phones differ ({from} / {into}): choose a side"),
        Conflict::Email { from, into } => format!("verified emails differ ({from} / {into}): choose a side"),
    }
}
