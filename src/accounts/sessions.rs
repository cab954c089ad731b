//! Browser sessions: a random id in a cookie, only its SHA-256 in the
//! database (so a database leak yields no usable session), with idle and
//! absolute expiry.

use chrono::{Duration, NaiveDateTime};
use diesel::QueryResult;

use super::AccountId;
use crate::audit::{self, Action, AuditEvent};
use crate::db::{self, DbConn, sessions::SessionRow};
use crate::http::RequestMeta;
use crate::secrets::{Secrets, random_token, sha256_hex};

/// Only refresh `last_seen_at` when it is older than this: one write a
/// minute per active session instead of one per request.
const TOUCH_INTERVAL_SECS: i64 = 60;

#[derive(Debug, Clone, Copy)]
pub struct SessionPolicy {
    pub idle_timeout_secs: u64,
    pub max_age_secs: u64,
}

fn seconds(secs: u64) -> Duration {
    Duration::seconds(i64::try_from(secs).unwrap_or(i64::MAX / 1000))
}

/// A live session.
#[derive(Debug, Clone)]
pub struct Session {
    pub id_hash: String,
    pub account_id: AccountId,
    pub auth_time: NaiveDateTime,
    pub amr: Vec<String>,
    pub expires_at: NaiveDateTime,
}

impl From<SessionRow> for Session {
    fn from(row: SessionRow) -> Self {
        Self {
            id_hash: row.id_hash,
            account_id: AccountId::from_db(row.account_id),
            auth_time: row.auth_time,
            amr: row.amr.split(' ').filter(|s| !s.is_empty()).map(str::to_owned).collect(),
            expires_at: row.expires_at,
        }
    }
}

impl SessionPolicy {
    /// Creates a session; returns the cookie value (the only copy of the
    /// id) and the session. Run inside a write transaction.
    pub fn create(
        &self,
        conn: &mut DbConn,
        account_id: &AccountId,
        amr: &[&str],
        meta: &RequestMeta,
        now: NaiveDateTime,
    ) -> QueryResult<(String, Session)> {
        let cookie_value = random_token();
        let row = SessionRow {
            id_hash: sha256_hex(cookie_value.as_bytes()),
            account_id: account_id.as_str().to_owned(),
            created_at: now,
            last_seen_at: now,
            expires_at: now + seconds(self.max_age_secs),
            auth_time: now,
            amr: amr.join(" "),
            ip: Some(meta.ip.clone()),
            user_agent: meta.user_agent.as_deref().map(|ua| ua.chars().take(512).collect()),
        };
        db::sessions::insert(conn, &row)?;
        Ok((cookie_value, row.into()))
    }

    fn is_expired(&self, row: &SessionRow, now: NaiveDateTime) -> Option<&'static str> {
        if row.expires_at <= now {
            Some("max_age")
        } else if row.last_seen_at + seconds(self.idle_timeout_secs) <= now {
            Some("idle")
        } else {
            None
        }
    }

    /// Resolves a session cookie. An expired session is deleted and its
    /// end recorded in the audit trail.
    pub fn lookup(
        &self,
        conn: &mut DbConn,
        secrets: &Secrets,
        cookie_value: &str,
        meta: &RequestMeta,
        now: NaiveDateTime,
    ) -> QueryResult<Option<Session>> {
        let id_hash = sha256_hex(cookie_value.as_bytes());
        let Some(row) = db::sessions::find(conn, &id_hash)? else {
            return Ok(None);
        };
        if let Some(why) = self.is_expired(&row, now) {
            end_expired(conn, secrets, &row, why, Some(meta))?;
            return Ok(None);
        }
        if row.last_seen_at + Duration::seconds(TOUCH_INTERVAL_SECS) <= now {
            db::sessions::touch(conn, &id_hash, now)?;
        }
        Ok(Some(row.into()))
    }

    /// Deletes and records every expired session (run periodically; safe
    /// to run on several instances at once). Returns how many it ended.
    pub fn sweep_expired(&self, conn: &mut DbConn, secrets: &Secrets, now: NaiveDateTime) -> QueryResult<usize> {
        let idle_cutoff = now - seconds(self.idle_timeout_secs);
        let mut ended = 0;
        loop {
            let rows = db::sessions::find_expired(conn, now, idle_cutoff, 200)?;
            if rows.is_empty() {
                return Ok(ended);
            }
            for row in rows {
                let why = self.is_expired(&row, now).unwrap_or("idle");
                if end_expired(conn, secrets, &row, why, None)? {
                    ended += 1;
                }
            }
        }
    }
}

/// Deletes the session and records `session.expired`, once: when several
/// requests race, only the one whose delete removed the row records it.
fn end_expired(
    conn: &mut DbConn,
    secrets: &Secrets,
    row: &SessionRow,
    why: &str,
    meta: Option<&RequestMeta>,
) -> QueryResult<bool> {
    db::write_transaction(conn, |conn| {
        if !db::sessions::delete(conn, &row.id_hash)? {
            return Ok(false);
        }
        let mut event = AuditEvent::success(Action::SessionExpired)
            .with_account(row.account_id.clone())
            .with_reason(why)
            .with_detail("session", &row.id_hash[..16]);
        if let Some(meta) = meta {
            event = event.with_request(meta);
        }
        audit::append(conn, secrets, &event)?;
        Ok(true)
    })
}

/// The session id released to clients as `sid` (ID tokens, logout
/// tokens): derived from (not equal to) the stored hash of the session
/// cookie, so it can be published without weakening the session.
pub fn public_sid(id_hash: &str) -> String {
    sha256_hex(format!("sid:{id_hash}").as_bytes())[..32].to_owned()
}

/// Ends a session at the person's request (`/logout`, or RP-initiated
/// logout: `cause` says which). Returns whether it existed. The clients
/// holding tokens from it are told through the back channel (queued in
/// this transaction). Run inside a write transaction.
pub fn end(
    conn: &mut DbConn,
    secrets: &Secrets,
    session: &Session,
    meta: &RequestMeta,
    cause: &str,
) -> QueryResult<bool> {
    if !db::sessions::delete(conn, &session.id_hash)? {
        return Ok(false);
    }
    crate::oidc::backchannel::enqueue(conn, std::slice::from_ref(&session.id_hash), cause, db::now())?;
    let event = AuditEvent::success(Action::Logout)
        .with_actor(format!("account:{}", session.account_id))
        .with_account(session.account_id.as_str())
        .with_request(meta)
        .with_detail("session", &session.id_hash[..16]);
    audit::append(conn, secrets, &event)?;
    Ok(true)
}

/// Ends the browser's previous session, if any, when it logs in again: a
/// fresh session id on every login (no fixation), and no second live
/// session left behind in the same browser (issue 10 item 9). Run inside
/// the login's write transaction.
pub fn end_previous(conn: &mut DbConn, previous_cookie_value: Option<&str>) -> QueryResult<bool> {
    let Some(value) = previous_cookie_value else {
        return Ok(false);
    };
    let id_hash = sha256_hex(value.as_bytes());
    if !db::sessions::delete(conn, &id_hash)? {
        return Ok(false);
    }
    crate::oidc::backchannel::enqueue(conn, &[id_hash], "new_login", db::now())?;
    Ok(true)
}

/// Ends every session of an account (sign out everywhere, a new
/// password, disabling, a merge: `cause` says which) and queues the
/// back-channel logouts of each. Returns how many ended. Run inside the
/// caller's write transaction.
pub fn end_all_of_account(conn: &mut DbConn, account_id: &str, cause: &str) -> QueryResult<usize> {
    let hashes = db::sessions::hashes_for_account(conn, account_id)?;
    if hashes.is_empty() {
        return Ok(0);
    }
    crate::oidc::backchannel::enqueue(conn, &hashes, cause, db::now())?;
    db::sessions::delete_for_account(conn, account_id)
}

/// Ends one session of an account (an admin's "end session"), if it is
/// that account's, and queues its back-channel logouts.
pub fn end_one_of_account(conn: &mut DbConn, account_id: &str, id_hash: &str, cause: &str) -> QueryResult<bool> {
    if !db::sessions::delete_of_account(conn, account_id, id_hash)? {
        return Ok(false);
    }
    crate::oidc::backchannel::enqueue(conn, &[id_hash.to_owned()], cause, db::now())?;
    Ok(true)
}
