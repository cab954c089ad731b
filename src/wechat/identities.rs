//! WeChat identities: one per person per Open Platform (UnionID), with
//! one row per (appid, OpenID). An app without an Open Platform yields an
//! identity known only by (appid, OpenID); when a UnionID shows up for that
//! OpenID later, the identities are merged — never a second account.
//!
//! Linking rules: an identity links to at most one account; an account to
//! at most one identity per platform. The audit trail records OpenIDs and
//! UnionIDs only as keyed hashes.

use serde::Serialize;

use super::apps::WechatApp;
use crate::accounts::manage::Actor;
use crate::audit::{self, Action, AuditEvent};
use crate::config::SecretString;
use crate::db::{self, DbConn, wechat::IdentityRow, wechat::OpenIdRow};
use crate::http::RequestMeta;
use crate::secrets::Secrets;

#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    #[error("this WeChat identity is already linked to the account `{0}`")]
    LinkedElsewhere(String),
    #[error("the account is already linked to another WeChat identity of `{0}`")]
    AccountHasOne(String),
    #[error("the WeChat identity appears twice, linked to two different accounts; an administrator must merge them")]
    MergeConflict,
    #[error("no such WeChat identity")]
    NotFound,
    #[error("the WeChat identity is not linked to `{0}`")]
    NotLinkedTo(String),
    #[error("a reason is required")]
    ReasonRequired,
    #[error("no WeChat app `{0}` is registered")]
    UnknownApp(String),
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Db(#[from] diesel::result::Error),
}

/// What one WeChat login told us about a person.
pub struct Sighting<'a> {
    pub app: &'a WechatApp,
    pub openid: &'a str,
    pub unionid: Option<&'a str>,
    pub nickname: Option<&'a str>,
    pub avatar_url: Option<&'a str>,
    /// Mini-program logins only; stored sealed, replacing the previous one.
    pub session_key: Option<&'a SecretString>,
}

/// An identity as admins and the CLI see it.
#[derive(Debug, Clone, Serialize)]
pub struct Identity {
    pub id: String,
    pub open_platform: Option<String>,
    pub unionid: Option<String>,
    pub account_id: Option<String>,
    pub nickname: Option<String>,
    pub phone: Option<String>,
    pub openids: Vec<AppOpenId>,
}

#[derive(Debug, Clone, Serialize)]
pub struct AppOpenId {
    pub appid: String,
    pub openid: String,
}

fn hashed(secrets: &Secrets, kind: &str, value: &str) -> String {
    secrets.identifier_hash(kind, value)
}

fn session_key_context(appid: &str, openid: &str) -> String {
    format!("wechat_session_key:{appid}:{openid}")
}

/// Finds or creates the identity behind a WeChat login, merging an
/// OpenID-only identity into its UnionID identity when one appears.
/// Updates the profile and the session key. Run in a write transaction.
pub fn resolve(
    conn: &mut DbConn,
    secrets: &Secrets,
    seen: &Sighting<'_>,
    meta: Option<&RequestMeta>,
) -> Result<IdentityRow, IdentityError> {
    let now = db::now();
    let unionid = seen.unionid.filter(|u| !u.is_empty());
    let platform = seen.app.open_platform.as_deref();
    let by_openid = match db::wechat::find_openid(conn, &seen.app.appid, seen.openid)? {
        Some(row) => db::wechat::find_identity(conn, &row.identity_id)?,
        None => None,
    };
    let by_unionid = match (platform, unionid) {
        (Some(platform), Some(unionid)) => db::wechat::find_identity_by_unionid(conn, platform, unionid)?,
        _ => None,
    };
    let audit_base = |action: Action| {
        let mut event = AuditEvent::success(action)
            .with_actor("system")
            .with_detail("appid", seen.app.appid.clone())
            .with_detail("openid_hash", hashed(secrets, "openid", seen.openid));
        if let Some(unionid) = unionid {
            event = event.with_detail("unionid_hash", hashed(secrets, "unionid", unionid));
        }
        if let Some(meta) = meta {
            event = event.with_request(meta);
        }
        event
    };
    let identity = match (by_openid, by_unionid) {
        (Some(known), Some(target)) if known.id == target.id => target,
        (Some(known), Some(target)) => {
            // The OpenID was first seen without a UnionID; now both are known.
            let account = match (&known.account_id, &target.account_id) {
                (Some(a), Some(b)) if a != b => return Err(IdentityError::MergeConflict),
                (a, b) => a.clone().or(b.clone()),
            };
            db::wechat::move_openids(conn, &known.id, &target.id)?;
            db::wechat::delete_identity(conn, &known.id)?;
            if account.is_some() && target.account_id.is_none() {
                db::wechat::set_identity_account(conn, &target.id, account.as_deref(), now)?;
            }
            let event = audit_base(Action::WechatIdentityMerged)
                .with_detail("merged", known.id.clone())
                .with_detail("into", target.id.clone());
            let event = match &account {
                Some(a) => event.with_account(a.clone()),
                None => event,
            };
            audit::append(conn, secrets, &event)?;
            reload(conn, &target.id)?
        }
        (Some(known), None) => match (platform, unionid, &known.unionid) {
            (Some(platform), Some(unionid), None) => {
                // Same record, now keyed by UnionID: an in-place merge.
                if let Some(account) = &known.account_id
                    && let Some(other) = db::wechat::identity_of_account_on(conn, account, &format!("op:{platform}"))?
                    && other.id != known.id
                {
                    return Err(IdentityError::MergeConflict);
                }
                db::wechat::set_identity_unionid(conn, &known.id, platform, unionid, now)?;
                let event = audit_base(Action::WechatIdentityMerged)
                    .with_detail("into", known.id.clone())
                    .with_detail("unionid_added", true);
                audit::append(conn, secrets, &event)?;
                reload(conn, &known.id)?
            }
            _ => known,
        },
        (None, Some(target)) => {
            insert_openid(conn, &target.id, seen, now)?;
            target
        }
        (None, None) => {
            let row = IdentityRow {
                id: uuid::Uuid::new_v4().to_string(),
                platform_key: seen.app.platform_key_for(unionid.is_some()),
                open_platform: unionid.and(platform).map(str::to_owned),
                unionid: platform.and(unionid).map(str::to_owned),
                account_id: None,
                nickname: None,
                avatar_url: None,
                phone: None,
                phone_verified_at: None,
                created_at: now,
                updated_at: now,
            };
            db::wechat::insert_identity(conn, &row)?;
            insert_openid(conn, &row.id, seen, now)?;
            audit::append(
                conn,
                secrets,
                &audit_base(Action::WechatIdentityCreated).with_detail("identity", row.id.clone()),
            )?;
            row
        }
    };
    if seen.nickname.is_some() || seen.avatar_url.is_some() {
        db::wechat::set_identity_profile(conn, &identity.id, seen.nickname, seen.avatar_url, now)?;
    }
    let sealed = seen
        .session_key
        .map(|k| secrets.seal(&session_key_context(&seen.app.appid, seen.openid), k.expose().as_bytes()));
    db::wechat::record_openid_login(conn, &seen.app.appid, seen.openid, sealed.as_deref(), now)?;
    reload(conn, &identity.id)
}

fn reload(conn: &mut DbConn, id: &str) -> Result<IdentityRow, IdentityError> {
    db::wechat::find_identity(conn, id)?.ok_or(IdentityError::NotFound)
}

fn insert_openid(
    conn: &mut DbConn,
    identity_id: &str,
    seen: &Sighting<'_>,
    now: chrono::NaiveDateTime,
) -> diesel::QueryResult<()> {
    db::wechat::insert_openid(
        conn,
        &OpenIdRow {
            appid: seen.app.appid.clone(),
            openid: seen.openid.to_owned(),
            identity_id: identity_id.to_owned(),
            session_key: None,
            created_at: now,
            last_login_at: now,
        },
    )
}

/// Links an identity to an account, or says which rule forbids it.
/// `reason` is the admin's (console, CLI); WeChat logins pass `None`.
pub fn link(
    conn: &mut DbConn,
    secrets: &Secrets,
    actor: &Actor,
    identity_id: &str,
    account_id: &str,
    how: &str,
    reason: Option<&str>,
) -> Result<(), IdentityError> {
    let identity = reload(conn, identity_id)?;
    match &identity.account_id {
        Some(existing) if existing == account_id => return Ok(()),
        Some(existing) => return Err(IdentityError::LinkedElsewhere(username_of(conn, existing)?)),
        None => {}
    }
    if db::wechat::identity_of_account_on(conn, account_id, &identity.platform_key)?.is_some() {
        let platform = identity.open_platform.clone().unwrap_or_else(|| identity.platform_key.clone());
        return Err(IdentityError::AccountHasOne(platform));
    }
    db::wechat::set_identity_account(conn, identity_id, Some(account_id), db::now())?;
    let mut event = AuditEvent::success(Action::WechatIdentityLinked)
        .with_actor(actor.0.clone())
        .with_account(account_id)
        .with_detail("identity", identity_id)
        .with_detail("how", how)
        .with_detail("before", serde_json::Value::Null)
        .with_detail("after", account_id);
    if let Some(reason) = reason {
        event = event.with_detail("reason", reason);
    }
    audit::append(conn, secrets, &event)?;
    Ok(())
}

fn username_of(conn: &mut DbConn, account_id: &str) -> Result<String, IdentityError> {
    Ok(crate::accounts::manage::find_by_id(conn, &crate::accounts::AccountId::from_db(account_id.to_owned()))?
        .map(|a| a.username)
        .unwrap_or_else(|| account_id.to_owned()))
}

/// Unlinks an identity from `account_id` (when given, the identity must
/// be linked to it). `Ok(false)`: it was not linked at all.
pub fn unlink(
    conn: &mut DbConn,
    secrets: &Secrets,
    actor: &Actor,
    identity_id: &str,
    expected_account: Option<&str>,
    reason: Option<&str>,
) -> Result<bool, IdentityError> {
    let identity = reload(conn, identity_id)?;
    let Some(account) = identity.account_id else {
        return match expected_account {
            Some(expected) => Err(IdentityError::NotLinkedTo(username_of(conn, expected)?)),
            None => Ok(false),
        };
    };
    if let Some(expected) = expected_account
        && expected != account
    {
        return Err(IdentityError::NotLinkedTo(username_of(conn, expected)?));
    }
    db::wechat::set_identity_account(conn, identity_id, None, db::now())?;
    let mut event = AuditEvent::success(Action::WechatIdentityUnlinked)
        .with_actor(actor.0.clone())
        .with_account(account.clone())
        .with_detail("identity", identity_id)
        .with_detail("before", account)
        .with_detail("after", serde_json::Value::Null);
    if let Some(reason) = reason {
        event = event.with_detail("reason", reason);
    }
    audit::append(conn, secrets, &event)?;
    Ok(true)
}

/// An external identifier an admin names: a UnionID of an Open Platform,
/// or an OpenID of one registered app.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExternalId {
    UnionId { open_platform: String, unionid: String },
    OpenId { appid: String, openid: String },
}

/// A reason an admin gives: trimmed, non-empty, at most 500 characters.
pub fn require_reason(reason: &str) -> Result<String, IdentityError> {
    let reason = reason.trim();
    if reason.is_empty() || reason.chars().count() > 500 {
        return Err(IdentityError::ReasonRequired);
    }
    Ok(reason.to_owned())
}

fn check_identifier(what: &str, value: &str) -> Result<(), IdentityError> {
    // WeChat ids are short ASCII tokens (28-29 characters for OpenIDs and
    // UnionIDs, 18 for AppIDs); anything else is a paste error.
    if value.is_empty() || value.len() > 128 || !value.chars().all(|c| c.is_ascii_alphanumeric() || "-_".contains(c)) {
        return Err(IdentityError::Invalid(format!("this {what} is not a WeChat identifier")));
    }
    Ok(())
}

/// The identity an admin names, if wxfed has seen it.
pub fn find_external(conn: &mut DbConn, id: &ExternalId) -> Result<Option<IdentityRow>, IdentityError> {
    Ok(match id {
        ExternalId::UnionId { open_platform, unionid } => {
            db::wechat::find_identity_by_unionid(conn, open_platform, unionid)?
        }
        ExternalId::OpenId { appid, openid } => match db::wechat::find_openid(conn, appid, openid)? {
            Some(row) => db::wechat::find_identity(conn, &row.identity_id)?,
            None => None,
        },
    })
}

/// Links `account_id` to the identity named by `id`, creating the identity
/// record when wxfed has never seen it (pre-provisioning: the person's
/// first WeChat login then lands on this account, see [`resolve`]).
/// Returns the identity and whether it was created. Same refusals as
/// [`link`]. Run in a write transaction.
pub fn link_external(
    conn: &mut DbConn,
    secrets: &Secrets,
    actor: &Actor,
    account_id: &str,
    id: &ExternalId,
    reason: &str,
) -> Result<(IdentityRow, bool), IdentityError> {
    let reason = require_reason(reason)?;
    if let Some(identity) = find_external(conn, id)? {
        link(conn, secrets, actor, &identity.id, account_id, "admin", Some(&reason))?;
        return Ok((reload(conn, &identity.id)?, false));
    }
    let now = db::now();
    let (platform_key, open_platform, unionid, openid) = match id {
        ExternalId::UnionId { open_platform, unionid } => {
            if open_platform.trim().is_empty() || open_platform.len() > 128 {
                return Err(IdentityError::Invalid("an Open Platform is required with a UnionID".into()));
            }
            check_identifier("UnionID", unionid)?;
            (format!("op:{open_platform}"), Some(open_platform.clone()), Some(unionid.clone()), None)
        }
        ExternalId::OpenId { appid, openid } => {
            check_identifier("AppID", appid)?;
            check_identifier("OpenID", openid)?;
            let app = super::apps::find(conn, appid)?.ok_or_else(|| IdentityError::UnknownApp(appid.clone()))?;
            // Known only by this OpenID until a login shows its UnionID;
            // resolve() then keys the same record by UnionID.
            (app.platform_key_for(false), None, None, Some((appid.clone(), openid.clone())))
        }
    };
    if db::wechat::identity_of_account_on(conn, account_id, &platform_key)?.is_some() {
        return Err(IdentityError::AccountHasOne(open_platform.unwrap_or(platform_key)));
    }
    let row = IdentityRow {
        id: uuid::Uuid::new_v4().to_string(),
        platform_key,
        open_platform,
        unionid,
        account_id: None,
        nickname: None,
        avatar_url: None,
        phone: None,
        phone_verified_at: None,
        created_at: now,
        updated_at: now,
    };
    db::wechat::insert_identity(conn, &row)?;
    let mut created = AuditEvent::success(Action::WechatIdentityCreated)
        .with_actor(actor.0.clone())
        .with_detail("identity", row.id.clone())
        .with_detail("preprovisioned", true)
        .with_detail("reason", reason.clone());
    if let Some(unionid) = &row.unionid {
        created = created.with_detail("unionid_hash", hashed(secrets, "unionid", unionid));
    }
    if let Some((appid, openid)) = &openid {
        db::wechat::insert_openid(
            conn,
            &OpenIdRow {
                appid: appid.clone(),
                openid: openid.clone(),
                identity_id: row.id.clone(),
                session_key: None,
                created_at: now,
                // Never logged in: the login time starts as the creation time.
                last_login_at: now,
            },
        )?;
        created =
            created.with_detail("appid", appid.clone()).with_detail("openid_hash", hashed(secrets, "openid", openid));
    }
    audit::append(conn, secrets, &created)?;
    link(conn, secrets, actor, &row.id, account_id, "preprovisioned", Some(&reason))?;
    Ok((reload(conn, &row.id)?, true))
}

/// An identity found by UnionID (any platform) or by (appid, OpenID).
pub fn find_by(
    conn: &mut DbConn,
    unionid: Option<&str>,
    appid: Option<&str>,
    openid: Option<&str>,
) -> Result<IdentityRow, IdentityError> {
    if let (Some(appid), Some(openid)) = (appid, openid) {
        let row = db::wechat::find_openid(conn, appid, openid)?.ok_or(IdentityError::NotFound)?;
        return reload(conn, &row.identity_id);
    }
    if let Some(unionid) = unionid {
        for app in super::apps::list(conn)? {
            if let Some(platform) = &app.open_platform
                && let Some(identity) = db::wechat::find_identity_by_unionid(conn, platform, unionid)?
            {
                return Ok(identity);
            }
        }
    }
    Err(IdentityError::NotFound)
}

pub fn describe(conn: &mut DbConn, row: IdentityRow) -> diesel::QueryResult<Identity> {
    let openids = db::wechat::openids_of(conn, &row.id)?
        .into_iter()
        .map(|o| AppOpenId { appid: o.appid, openid: o.openid })
        .collect();
    Ok(Identity {
        id: row.id,
        open_platform: row.open_platform,
        unionid: row.unionid,
        account_id: row.account_id,
        nickname: row.nickname,
        phone: row.phone,
        openids,
    })
}

/// A page of identities for the console and the management API, newest
/// first, and the cursor of the next page (`None` on the last). `q` is
/// matched exactly against the Open Platform, an appid, an id, a UnionID
/// or an OpenID, and as a prefix of the nickname; each kind of match is
/// its own index lookup limited to one page after the cursor, so their
/// union cut to `limit` is the page one ordered query would give (keyset
/// paging without OFFSET).
pub fn search_page(
    conn: &mut DbConn,
    q: &str,
    linked: Option<bool>,
    after: Option<&db::wechat::IdentityCursor>,
    limit: i64,
) -> diesel::QueryResult<(Vec<IdentityRow>, Option<db::wechat::IdentityCursor>)> {
    use db::wechat::IdentityMatch;
    let fetch = limit + 1;
    let mut rows = Vec::new();
    if q.is_empty() {
        rows = db::wechat::identity_page(conn, &IdentityMatch::All, linked, after, fetch)?;
    } else {
        let lowered = q.to_lowercase();
        let exact = db::wechat::identity_ids_matching_exactly(conn, q, &lowered)?;
        let mut matches = vec![
            IdentityMatch::OpenPlatform(q.to_owned()),
            IdentityMatch::AppId(q.to_owned()),
            IdentityMatch::NicknamePrefix(lowered),
        ];
        if !exact.is_empty() {
            matches.push(IdentityMatch::Ids(exact));
        }
        for m in &matches {
            rows.extend(db::wechat::identity_page(conn, m, linked, after, fetch)?);
        }
    }
    rows.sort_by(|a, b| (b.created_at, &b.id).cmp(&(a.created_at, &a.id)));
    rows.dedup_by(|a, b| a.id == b.id);
    let limit = usize::try_from(limit).unwrap_or(50);
    let more = rows.len() > limit;
    rows.truncate(limit);
    let next = if more { rows.last().map(|r| (r.created_at, r.id.clone())) } else { None };
    Ok((rows, next))
}

/// A cursor as it travels in a URL.
pub fn encode_cursor((at, id): &db::wechat::IdentityCursor) -> String {
    format!("{}|{id}", at.format("%Y-%m-%dT%H:%M:%S%.6f"))
}

/// The cursor of [`encode_cursor`], if `value` is one.
pub fn decode_cursor(value: &str) -> Option<db::wechat::IdentityCursor> {
    let (at, id) = value.split_once('|')?;
    let at = chrono::NaiveDateTime::parse_from_str(at, "%Y-%m-%dT%H:%M:%S%.f").ok()?;
    (!id.is_empty() && id.len() <= 64).then(|| (at, id.to_owned()))
}
