//! Account administration (CLI now, the console later). Every change is
//! recorded in the audit trail in the same transaction.

use diesel::QueryResult;

use super::{Account, AccountId, AccountStatus, Role, Username};
use crate::audit::{self, Action, AuditEvent};
use crate::db::{self, DbConn, accounts::AccountRow};
use crate::i18n::Message;
use crate::secrets::Secrets;

#[derive(Debug, thiserror::Error)]
pub enum ManageError {
    #[error("{0}")]
    Invalid(crate::i18n::Message),
    #[error("the username `{0}` is taken (usernames are case-insensitive)")]
    UsernameTaken(String),
    #[error("no account with the username `{0}`")]
    NotFound(String),
    #[error(transparent)]
    Db(#[from] diesel::result::Error),
}

/// What an admin supplies for a new account.
#[derive(Debug, Clone, Default)]
pub struct NewAccount {
    pub username: String,
    pub display_name: Option<String>,
    pub email: Option<String>,
    pub email_verified: bool,
    pub phone: Option<String>,
    pub phone_verified: bool,
    pub roles: Vec<Role>,
}

/// Who made a change, as recorded in the audit trail.
#[derive(Debug, Clone)]
pub struct Actor(pub String);

impl Actor {
    /// The operator running the CLI, named by their OS user.
    pub fn cli() -> Self {
        let user = std::env::var("SUDO_USER")
            .or_else(|_| std::env::var("USER"))
            .or_else(|_| std::env::var("LOGNAME"))
            .unwrap_or_else(|_| "unknown".into());
        Self(format!("cli:{user}"))
    }
}

pub(crate) fn validate_email(email: &str) -> Result<(), ManageError> {
    let valid = email.len() <= 254
        && email.split_once('@').is_some_and(|(local, domain)| {
            !local.is_empty() && domain.contains('.') && !domain.starts_with('.') && !domain.ends_with('.')
        })
        && !email.chars().any(char::is_whitespace);
    if valid { Ok(()) } else { Err(ManageError::Invalid(Message::new("error-email-invalid").arg("email", email))) }
}

/// E.164: a plus sign and 8 to 15 digits.
pub(crate) fn validate_phone(phone: &str) -> Result<(), ManageError> {
    let digits = phone.strip_prefix('+').unwrap_or("");
    if (8..=15).contains(&digits.len()) && digits.chars().all(|c| c.is_ascii_digit()) {
        Ok(())
    } else {
        Err(ManageError::Invalid(Message::new("error-phone-invalid").arg("phone", phone)))
    }
}

fn load(conn: &mut DbConn, row: AccountRow) -> QueryResult<Account> {
    let roles = db::accounts::roles_of(conn, &row.id)?;
    Ok(Account::from_row(row, &roles))
}

pub fn find_by_username(conn: &mut DbConn, username: &str) -> Result<Account, ManageError> {
    let key = Username::parse(username).map_err(ManageError::Invalid)?.key();
    let row =
        db::accounts::find_by_username_key(conn, &key)?.ok_or_else(|| ManageError::NotFound(username.to_owned()))?;
    Ok(load(conn, row)?)
}

pub fn find_by_id(conn: &mut DbConn, id: &AccountId) -> QueryResult<Option<Account>> {
    match db::accounts::find_by_id(conn, id.as_str())? {
        Some(row) => load(conn, row).map(Some),
        None => Ok(None),
    }
}

pub fn list(conn: &mut DbConn) -> QueryResult<Vec<Account>> {
    let rows = db::accounts::list(conn)?;
    let mut roles: std::collections::HashMap<String, Vec<String>> = Default::default();
    for (account_id, role) in db::accounts::all_roles(conn)? {
        roles.entry(account_id).or_default().push(role);
    }
    Ok(rows
        .into_iter()
        .map(|row| {
            let own = roles.remove(&row.id).unwrap_or_default();
            Account::from_row(row, &own)
        })
        .collect())
}

/// Creates an account. `password_hash` is an argon2 PHC string (hash the
/// password before opening the transaction: it takes a while).
pub fn add(
    conn: &mut DbConn,
    secrets: &Secrets,
    actor: &Actor,
    new: &NewAccount,
    password_hash: Option<String>,
) -> Result<Account, ManageError> {
    let username = Username::parse(&new.username).map_err(ManageError::Invalid)?;
    let clean = |v: &Option<String>| v.as_deref().map(str::trim).filter(|s| !s.is_empty()).map(str::to_owned);
    let (email, phone, display_name) = (clean(&new.email), clean(&new.phone), clean(&new.display_name));
    if let Some(email) = &email {
        validate_email(email)?;
    }
    if let Some(phone) = &phone {
        validate_phone(phone)?;
    }
    if display_name.as_ref().is_some_and(|n| n.chars().count() > 200) {
        return Err(ManageError::Invalid(Message::new("error-display-name-too-long")));
    }
    let now = db::now();
    let row = AccountRow {
        id: AccountId::generate().as_str().to_owned(),
        username: username.as_str().to_owned(),
        username_key: username.key(),
        display_name,
        email_verified: new.email_verified && email.is_some(),
        email,
        phone_verified: new.phone_verified && phone.is_some(),
        phone,
        status: AccountStatus::Active.as_str().to_owned(),
        password_hash,
        created_at: now,
        updated_at: now,
    };
    db::write_transaction(conn, |conn| {
        if db::accounts::find_by_username_key(conn, &row.username_key)?.is_some() {
            return Err(ManageError::UsernameTaken(row.username.clone()));
        }
        db::accounts::insert(conn, &row).map_err(|e| {
            if db::is_unique_violation(&e) { ManageError::UsernameTaken(row.username.clone()) } else { e.into() }
        })?;
        let mut roles: Vec<&str> = new.roles.iter().map(|r| r.as_str()).collect();
        roles.sort_unstable();
        roles.dedup();
        for role in &roles {
            db::accounts::add_role(conn, &row.id, role)?;
        }
        let event = AuditEvent::success(Action::UserAdded)
            .with_actor(actor.0.clone())
            .with_account(row.id.clone())
            .with_detail("username", row.username.clone())
            .with_detail("roles", roles.clone())
            .with_detail("has_password", row.password_hash.is_some());
        audit::append(conn, secrets, &event)?;
        Ok(load(conn, row.clone())?)
    })
}

/// What [`end_all_access`] ended.
#[derive(Debug, Clone, Copy, Default, serde::Serialize)]
pub struct AccessEnded {
    pub sessions_ended: usize,
    pub grants_revoked: usize,
}

/// Ends everything an account holds (issue 10 item 4): every browser
/// session, and every grant at every client — so its refresh tokens stop
/// working, and its access tokens too (userinfo, introspection and the
/// other bearer checks look the grant up: `access_token_is_live`). Called
/// on a password reset or change, on disabling, and on "sign out
/// everywhere" (CLI now, the console later); run inside the caller's
/// write transaction, which also records why. The clients holding tokens
/// from the sessions hear of their end through the back channel (`cause`
/// goes with it: OpenID Connect Back-Channel Logout 1.0).
pub fn end_all_access(conn: &mut DbConn, account_id: &AccountId, cause: &str) -> QueryResult<AccessEnded> {
    let sessions_ended = super::sessions::end_all_of_account(conn, account_id.as_str(), cause)?;
    let grants_revoked = db::grants::revoke_all_grants_of_account(conn, account_id.as_str(), db::now())?;
    Ok(AccessEnded { sessions_ended, grants_revoked })
}

/// Ends every session and grant of an account at the person's or an
/// admin's request, audited.
pub fn sign_out_everywhere(
    conn: &mut DbConn,
    secrets: &Secrets,
    actor: &Actor,
    username: &str,
) -> Result<(Account, AccessEnded), ManageError> {
    db::write_transaction(conn, |conn| {
        let account = find_by_username(conn, username)?;
        let ended = end_all_access(conn, &account.id, "signed_out_everywhere")?;
        let event = AuditEvent::success(Action::UserSignedOutEverywhere)
            .with_actor(actor.0.clone())
            .with_account(account.id.as_str())
            .with_detail("sessions_ended", ended.sessions_ended)
            .with_detail("grants_revoked", ended.grants_revoked);
        audit::append(conn, secrets, &event)?;
        Ok((account, ended))
    })
}

/// Replaces the password and ends the account's sessions and grants.
pub fn set_password(
    conn: &mut DbConn,
    secrets: &Secrets,
    actor: &Actor,
    username: &str,
    password_hash: &str,
) -> Result<Account, ManageError> {
    db::write_transaction(conn, |conn| {
        let account = find_by_username(conn, username)?;
        db::accounts::set_password_hash(conn, account.id.as_str(), password_hash, db::now())?;
        let ended = end_all_access(conn, &account.id, "password_set")?;
        let event = AuditEvent::success(Action::UserPasswordSet)
            .with_actor(actor.0.clone())
            .with_account(account.id.as_str())
            .with_detail("sessions_ended", ended.sessions_ended)
            .with_detail("grants_revoked", ended.grants_revoked);
        audit::append(conn, secrets, &event)?;
        Ok(account)
    })
}

/// Enables or disables an account; disabling ends its sessions and
/// grants. Returns
/// the account and whether anything changed.
pub fn set_status(
    conn: &mut DbConn,
    secrets: &Secrets,
    actor: &Actor,
    username: &str,
    status: AccountStatus,
) -> Result<(Account, bool), ManageError> {
    db::write_transaction(conn, |conn| {
        let mut account = find_by_username(conn, username)?;
        if account.status == status {
            return Ok((account, false));
        }
        db::accounts::set_status(conn, account.id.as_str(), status.as_str(), db::now())?;
        let ended = if status == AccountStatus::Disabled {
            end_all_access(conn, &account.id, "disabled")?
        } else {
            AccessEnded::default()
        };
        let action = if status == AccountStatus::Disabled { Action::UserDisabled } else { Action::UserEnabled };
        let event = AuditEvent::success(action)
            .with_actor(actor.0.clone())
            .with_account(account.id.as_str())
            .with_detail("sessions_ended", ended.sessions_ended)
            .with_detail("grants_revoked", ended.grants_revoked);
        audit::append(conn, secrets, &event)?;
        account.status = status;
        Ok((account, true))
    })
}

/// Grants (`grant = true`) or withdraws a role. Returns the account and
/// whether anything changed.
pub fn set_role(
    conn: &mut DbConn,
    secrets: &Secrets,
    actor: &Actor,
    username: &str,
    role: Role,
    grant: bool,
) -> Result<(Account, bool), ManageError> {
    db::write_transaction(conn, |conn| {
        let account = find_by_username(conn, username)?;
        let changed = if grant {
            db::accounts::add_role(conn, account.id.as_str(), role.as_str())?
        } else {
            db::accounts::remove_role(conn, account.id.as_str(), role.as_str())?
        };
        if changed {
            let action = if grant { Action::UserRoleAdded } else { Action::UserRoleRemoved };
            let event = AuditEvent::success(action)
                .with_actor(actor.0.clone())
                .with_account(account.id.as_str())
                .with_detail("role", role.as_str());
            audit::append(conn, secrets, &event)?;
        }
        let account = find_by_username(conn, username)?;
        Ok((account, changed))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_and_phones_are_checked() {
        assert!(validate_email("a@example.com").is_ok());
        assert!(validate_email("a@b").is_err());
        assert!(validate_email("@example.com").is_err());
        assert!(validate_phone("+8613800138000").is_ok());
        assert!(validate_phone("13800138000").is_err());
        assert!(validate_phone("+86 138").is_err());
    }
}

// --- the admin console (issue 8): search, pages and audited changes by id ---

/// Why the console refused a change. Each variant has a message id in
/// `locales/*/admin.ftl`.
#[derive(Debug, thiserror::Error)]
pub enum ConsoleError {
    #[error("no such account")]
    NotFound,
    #[error("a reason is required")]
    ReasonRequired,
    #[error("this would leave no active admin")]
    LastAdmin,
    #[error(transparent)]
    Manage(#[from] ManageError),
    #[error(transparent)]
    Db(#[from] diesel::result::Error),
}

/// A console list page: the accounts and the cursor of the next page
/// (`None` on the last page).
#[derive(Debug, Clone)]
pub struct AccountPage {
    pub accounts: Vec<Account>,
    pub next_cursor: Option<String>,
}

/// Searches accounts for the console. `q` is matched as a prefix of the
/// username and of the display name, and exactly against the id, email,
/// phone, and WeChat UnionID / OpenID (an external id finds the account
/// linked to its identity). Each kind of match is its own index lookup,
/// limited to one page after the cursor; their union, cut to `limit`, is
/// exactly the page a single ordered query would give, so keyset paging
/// stays correct without OFFSET or COUNT(*).
pub fn search_page(
    conn: &mut DbConn,
    q: Option<&str>,
    filter: &db::accounts::AccountFilter,
    after: Option<&str>,
    limit: i64,
) -> QueryResult<AccountPage> {
    use db::accounts::AccountMatch;
    let q = q.map(str::trim).filter(|q| !q.is_empty());
    let fetch = limit + 1;
    let mut rows = Vec::new();
    match q {
        None => rows = db::accounts::page(conn, &AccountMatch::All, filter, after, fetch)?,
        Some(q) => {
            let lowered = q.to_lowercase();
            let mut exact = db::accounts::ids_matching_exactly(conn, q)?;
            exact.extend(db::wechat::account_ids_by_external_id(conn, q)?);
            let mut matches = vec![AccountMatch::UsernamePrefix(lowered.clone()), AccountMatch::NamePrefix(lowered)];
            if !exact.is_empty() {
                matches.push(AccountMatch::Ids(exact));
            }
            for m in &matches {
                rows.extend(db::accounts::page(conn, m, filter, after, fetch)?);
            }
        }
    }
    rows.sort_by(|a, b| a.username_key.cmp(&b.username_key));
    rows.dedup_by(|a, b| a.id == b.id);
    let more = rows.len() > usize::try_from(limit).unwrap_or(usize::MAX);
    rows.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
    let next_cursor = if more { rows.last().map(|r| r.username_key.clone()) } else { None };
    let ids: Vec<String> = rows.iter().map(|r| r.id.clone()).collect();
    let mut roles: std::collections::HashMap<String, Vec<String>> = Default::default();
    for (account_id, role) in db::accounts::roles_of_many(conn, &ids)? {
        roles.entry(account_id).or_default().push(role);
    }
    let accounts = rows
        .into_iter()
        .map(|row| {
            let own = roles.remove(&row.id).unwrap_or_default();
            Account::from_row(row, &own)
        })
        .collect();
    Ok(AccountPage { accounts, next_cursor })
}

fn require_reason(reason: &str) -> Result<String, ConsoleError> {
    let reason = reason.trim();
    if reason.is_empty() || reason.chars().count() > 500 {
        return Err(ConsoleError::ReasonRequired);
    }
    Ok(reason.to_owned())
}

fn load_by_id(conn: &mut DbConn, id: &str) -> Result<Account, ConsoleError> {
    find_by_id(conn, &AccountId::from_db(id.to_owned()))?.ok_or(ConsoleError::NotFound)
}

/// Refuses a change that would leave no active admin: without one, nobody
/// can use the console again (only the CLI could repair it).
fn keep_an_admin(conn: &mut DbConn, account: &Account, loses_admin: bool) -> Result<(), ConsoleError> {
    if loses_admin
        && account.is_active()
        && account.has_role(Role::Admin)
        && db::accounts::count_active_with_role(conn, Role::Admin.as_str())? <= 1
    {
        return Err(ConsoleError::LastAdmin);
    }
    Ok(())
}

/// What an admin may change on a profile.
#[derive(Debug, Clone, Default)]
pub struct ProfileUpdate {
    pub display_name: Option<String>,
    pub email: Option<String>,
    pub email_verified: bool,
    pub phone: Option<String>,
    pub phone_verified: bool,
}

/// Edits a profile; the audit event carries before and after (none of
/// these fields is a secret, and admins see them anyway).
pub fn update_profile(
    conn: &mut DbConn,
    secrets: &Secrets,
    actor: &Actor,
    id: &str,
    update: &ProfileUpdate,
) -> Result<Account, ConsoleError> {
    let clean = |v: &Option<String>| v.as_deref().map(str::trim).filter(|s| !s.is_empty()).map(str::to_owned);
    let (name, email, phone) = (clean(&update.display_name), clean(&update.email), clean(&update.phone));
    if let Some(email) = &email {
        validate_email(email)?;
    }
    if let Some(phone) = &phone {
        validate_phone(phone)?;
    }
    if name.as_ref().is_some_and(|n| n.chars().count() > 200) {
        return Err(ManageError::Invalid(Message::new("error-display-name-too-long")).into());
    }
    db::write_transaction(conn, |conn| {
        let before = load_by_id(conn, id)?;
        let (email_verified, phone_verified) =
            (update.email_verified && email.is_some(), update.phone_verified && phone.is_some());
        let fields = db::accounts::ProfileFields {
            display_name: name.as_deref(),
            email: email.as_deref(),
            email_verified,
            phone: phone.as_deref(),
            phone_verified,
        };
        db::accounts::set_profile(conn, id, fields, db::now())?;
        let after = load_by_id(conn, id)?;
        let view = |a: &Account| {
            serde_json::json!({
                "display_name": a.display_name, "email": a.email, "email_verified": a.email_verified,
                "phone": a.phone, "phone_verified": a.phone_verified,
            })
        };
        let event = AuditEvent::success(Action::UserProfileUpdated)
            .with_actor(actor.0.clone())
            .with_account(id)
            .with_detail("before", view(&before))
            .with_detail("after", view(&after));
        audit::append(conn, secrets, &event)?;
        Ok(after)
    })
}

/// Enables or disables an account by id, with a reason; refuses to
/// disable the last active admin. Disabling ends the account's sessions.
pub fn set_status_by_id(
    conn: &mut DbConn,
    secrets: &Secrets,
    actor: &Actor,
    id: &str,
    status: AccountStatus,
    reason: &str,
) -> Result<bool, ConsoleError> {
    let reason = require_reason(reason)?;
    db::write_transaction(conn, |conn| {
        let account = load_by_id(conn, id)?;
        if account.status == status {
            return Ok(false);
        }
        keep_an_admin(conn, &account, status == AccountStatus::Disabled)?;
        db::accounts::set_status(conn, id, status.as_str(), db::now())?;
        let ended = if status == AccountStatus::Disabled {
            super::sessions::end_all_of_account(conn, id, "disabled")?
        } else {
            0
        };
        let action = if status == AccountStatus::Disabled { Action::UserDisabled } else { Action::UserEnabled };
        let event = AuditEvent::success(action)
            .with_actor(actor.0.clone())
            .with_account(id)
            .with_detail("reason", reason)
            .with_detail("before", account.status.as_str())
            .with_detail("after", status.as_str())
            .with_detail("sessions_ended", ended);
        audit::append(conn, secrets, &event)?;
        Ok(true)
    })
}

/// Replaces the account's roles with `roles`, with a reason; refuses to
/// take the admin role from the last active admin.
pub fn set_roles_by_id(
    conn: &mut DbConn,
    secrets: &Secrets,
    actor: &Actor,
    id: &str,
    roles: &[Role],
    reason: &str,
) -> Result<bool, ConsoleError> {
    let reason = require_reason(reason)?;
    db::write_transaction(conn, |conn| {
        let account = load_by_id(conn, id)?;
        let mut wanted: Vec<Role> = roles.to_vec();
        wanted.sort_unstable();
        wanted.dedup();
        if wanted == account.roles {
            return Ok(false);
        }
        keep_an_admin(conn, &account, !wanted.contains(&Role::Admin))?;
        for role in &account.roles {
            if !wanted.contains(role) {
                db::accounts::remove_role(conn, id, role.as_str())?;
            }
        }
        for role in &wanted {
            db::accounts::add_role(conn, id, role.as_str())?;
        }
        let names = |rs: &[Role]| rs.iter().map(|r| r.as_str()).collect::<Vec<_>>();
        let action = if wanted.len() >= account.roles.len() { Action::UserRoleAdded } else { Action::UserRoleRemoved };
        let event = AuditEvent::success(action)
            .with_actor(actor.0.clone())
            .with_account(id)
            .with_detail("reason", reason)
            .with_detail("before", names(&account.roles))
            .with_detail("after", names(&wanted));
        audit::append(conn, secrets, &event)?;
        Ok(true)
    })
}

/// Sets a new password hash by id and ends the account's sessions (the
/// password itself never reaches the audit trail).
pub fn set_password_by_id(
    conn: &mut DbConn,
    secrets: &Secrets,
    actor: &Actor,
    id: &str,
    password_hash: &str,
    one_time: bool,
) -> Result<(), ConsoleError> {
    db::write_transaction(conn, |conn| {
        load_by_id(conn, id)?;
        db::accounts::set_password_hash(conn, id, password_hash, db::now())?;
        let ended = super::sessions::end_all_of_account(conn, id, "password_set")?;
        let event = AuditEvent::success(Action::UserPasswordSet)
            .with_actor(actor.0.clone())
            .with_account(id)
            .with_detail("generated", one_time)
            .with_detail("sessions_ended", ended);
        audit::append(conn, secrets, &event)?;
        Ok(())
    })
}

/// Ends one session of the account (`Some(id_hash)`) or all of them.
pub fn revoke_sessions(
    conn: &mut DbConn,
    secrets: &Secrets,
    actor: &Actor,
    id: &str,
    one: Option<&str>,
) -> Result<usize, ConsoleError> {
    db::write_transaction(conn, |conn| {
        load_by_id(conn, id)?;
        let ended = match one {
            Some(hash) => usize::from(super::sessions::end_one_of_account(conn, id, hash, "admin_revoked")?),
            None => super::sessions::end_all_of_account(conn, id, "admin_revoked")?,
        };
        let mut event = AuditEvent::success(Action::UserSessionsRevoked)
            .with_actor(actor.0.clone())
            .with_account(id)
            .with_detail("sessions_ended", ended);
        if let Some(hash) = one {
            event = event.with_detail("session", hash.chars().take(16).collect::<String>());
        }
        audit::append(conn, secrets, &event)?;
        Ok(ended)
    })
}

/// Revokes one refresh-token grant of the account.
pub fn revoke_grant_of(
    conn: &mut DbConn,
    secrets: &Secrets,
    actor: &Actor,
    id: &str,
    grant_id: &str,
) -> Result<bool, ConsoleError> {
    db::write_transaction(conn, |conn| {
        let Some(grant) = db::grants::find_grant(conn, grant_id)? else {
            return Ok(false);
        };
        if grant.account_id.as_deref() != Some(id) || !db::grants::revoke_grant(conn, grant_id, db::now())? {
            return Ok(false);
        }
        let event = AuditEvent::success(Action::UserGrantRevoked)
            .with_actor(actor.0.clone())
            .with_account(id)
            .with_client(grant.client_id)
            .with_detail("grant", grant_id);
        audit::append(conn, secrets, &event)?;
        Ok(true)
    })
}

/// Withdraws the account's consent to a client.
pub fn withdraw_consent_of(
    conn: &mut DbConn,
    secrets: &Secrets,
    actor: &Actor,
    id: &str,
    client_id: &str,
) -> Result<bool, ConsoleError> {
    db::write_transaction(conn, |conn| {
        if !db::consents::delete(conn, id, client_id)? {
            return Ok(false);
        }
        let event = AuditEvent::success(Action::UserConsentWithdrawn)
            .with_actor(actor.0.clone())
            .with_account(id)
            .with_client(client_id);
        audit::append(conn, secrets, &event)?;
        Ok(true)
    })
}
