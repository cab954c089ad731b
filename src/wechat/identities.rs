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
pub fn link(
    conn: &mut DbConn,
    secrets: &Secrets,
    actor: &Actor,
    identity_id: &str,
    account_id: &str,
    how: &str,
) -> Result<(), IdentityError> {
    let identity = reload(conn, identity_id)?;
    match &identity.account_id {
        Some(existing) if existing == account_id => return Ok(()),
        Some(existing) => {
            let username =
                crate::accounts::manage::find_by_id(conn, &crate::accounts::AccountId::from_db(existing.clone()))?
                    .map(|a| a.username)
                    .unwrap_or_else(|| existing.clone());
            return Err(IdentityError::LinkedElsewhere(username));
        }
        None => {}
    }
    if db::wechat::identity_of_account_on(conn, account_id, &identity.platform_key)?.is_some() {
        let platform = identity.open_platform.clone().unwrap_or_else(|| identity.platform_key.clone());
        return Err(IdentityError::AccountHasOne(platform));
    }
    db::wechat::set_identity_account(conn, identity_id, Some(account_id), db::now())?;
    let event = AuditEvent::success(Action::WechatIdentityLinked)
        .with_actor(actor.0.clone())
        .with_account(account_id)
        .with_detail("identity", identity_id)
        .with_detail("how", how);
    audit::append(conn, secrets, &event)?;
    Ok(())
}

pub fn unlink(conn: &mut DbConn, secrets: &Secrets, actor: &Actor, identity_id: &str) -> Result<(), IdentityError> {
    let identity = reload(conn, identity_id)?;
    let Some(account) = identity.account_id else {
        return Ok(());
    };
    db::wechat::set_identity_account(conn, identity_id, None, db::now())?;
    let event = AuditEvent::success(Action::WechatIdentityUnlinked)
        .with_actor(actor.0.clone())
        .with_account(account)
        .with_detail("identity", identity_id);
    audit::append(conn, secrets, &event)?;
    Ok(())
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
