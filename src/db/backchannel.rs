//! Queries on `backchannel_logouts` (the outbox of OpenID Connect
//! Back-Channel Logout) and on which clients hold tokens from a session.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::DbConn;
use super::schema::{backchannel_logouts, clients, grants};

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = backchannel_logouts)]
pub struct LogoutRow {
    pub id: String,
    pub client_id: String,
    pub subject: String,
    pub sid: String,
    pub cause: String,
    pub created_at: NaiveDateTime,
    pub attempts: i32,
    pub next_attempt_at: NaiveDateTime,
    pub last_error: Option<String>,
}

/// A client to tell that a session ended: who it was told the person is,
/// and the session id it was given.
#[derive(Debug, Clone, PartialEq, Eq, Queryable)]
pub struct Receiver {
    pub client_id: String,
    pub subject: Option<String>,
    pub sid: Option<String>,
}

/// The clients with a back-channel logout URI that were issued tokens
/// from one of the sessions `sids` (a redeemed code, and so any refresh
/// grant after it) whose grant has not expired yet: those still hold
/// tokens. Revoked grants count: the client's own session may outlive
/// its tokens. One row per (client, subject, sid).
pub fn receivers(conn: &mut DbConn, sids: &[String], now: NaiveDateTime) -> QueryResult<Vec<Receiver>> {
    if sids.is_empty() {
        return Ok(Vec::new());
    }
    grants::table
        .inner_join(clients::table)
        .filter(grants::sid.eq_any(sids))
        .filter(grants::tokens_issued.eq(true))
        .filter(grants::expires_at.gt(now))
        .filter(clients::backchannel_logout_uri.is_not_null())
        .select((grants::client_id, grants::account_id, grants::sid))
        .distinct()
        .load(conn)
}

pub fn insert(conn: &mut DbConn, row: &LogoutRow) -> QueryResult<()> {
    diesel::insert_into(backchannel_logouts::table).values(row).execute(conn).map(|_| ())
}

/// The ids and attempt counts of rows due at `now`, oldest first.
pub fn due(conn: &mut DbConn, now: NaiveDateTime, limit: i64) -> QueryResult<Vec<(String, i32)>> {
    backchannel_logouts::table
        .filter(backchannel_logouts::next_attempt_at.le(now))
        .order(backchannel_logouts::next_attempt_at.asc())
        .limit(limit)
        .select((backchannel_logouts::id, backchannel_logouts::attempts))
        .load(conn)
}

/// Claims one due row for one attempt: counts the attempt and moves its
/// next attempt to `lease_until`, but only if nobody claimed it since it
/// was seen with `attempts` (a compare-and-set, so of several instances
/// exactly one gets it, with no lock held while delivering). A claimant
/// that dies leaves the row due again at `lease_until`.
pub fn claim(
    conn: &mut DbConn,
    id: &str,
    attempts: i32,
    now: NaiveDateTime,
    lease_until: NaiveDateTime,
) -> QueryResult<Option<LogoutRow>> {
    let claimed = diesel::update(
        backchannel_logouts::table
            .find(id)
            .filter(backchannel_logouts::attempts.eq(attempts))
            .filter(backchannel_logouts::next_attempt_at.le(now)),
    )
    .set((backchannel_logouts::attempts.eq(attempts + 1), backchannel_logouts::next_attempt_at.eq(lease_until)))
    .execute(conn)?;
    if claimed == 0 {
        return Ok(None);
    }
    backchannel_logouts::table.find(id).select(LogoutRow::as_select()).first(conn).optional()
}

/// Schedules the next attempt after a failed one.
pub fn reschedule(conn: &mut DbConn, id: &str, next: NaiveDateTime, error: &str) -> QueryResult<usize> {
    diesel::update(backchannel_logouts::table.find(id))
        .set((backchannel_logouts::next_attempt_at.eq(next), backchannel_logouts::last_error.eq(error)))
        .execute(conn)
}

/// Removes a row (delivered, or given up on). Returns whether it was there.
pub fn delete(conn: &mut DbConn, id: &str) -> QueryResult<bool> {
    diesel::delete(backchannel_logouts::table.find(id)).execute(conn).map(|n| n > 0)
}

/// The back-channel logout URI of a client, if it still has one.
pub fn logout_uri(conn: &mut DbConn, client_id: &str) -> QueryResult<Option<(Option<String>, String)>> {
    clients::table
        .find(client_id)
        .select((clients::backchannel_logout_uri, clients::id_token_signing_alg))
        .first(conn)
        .optional()
}

/// Rows not yet delivered (tests, the console).
pub fn pending_count(conn: &mut DbConn) -> QueryResult<i64> {
    backchannel_logouts::table.count().get_result(conn)
}
