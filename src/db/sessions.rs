//! Queries on `sessions` (browser sessions, stored by the hash of their id).

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::DbConn;
use super::schema::sessions;

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = sessions)]
pub struct SessionRow {
    pub id_hash: String,
    pub account_id: String,
    pub created_at: NaiveDateTime,
    pub last_seen_at: NaiveDateTime,
    pub expires_at: NaiveDateTime,
    pub auth_time: NaiveDateTime,
    pub amr: String,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
}

pub fn insert(conn: &mut DbConn, row: &SessionRow) -> QueryResult<()> {
    diesel::insert_into(sessions::table).values(row).execute(conn).map(|_| ())
}

pub fn find(conn: &mut DbConn, id_hash: &str) -> QueryResult<Option<SessionRow>> {
    sessions::table.find(id_hash).select(SessionRow::as_select()).first(conn).optional()
}

pub fn touch(conn: &mut DbConn, id_hash: &str, now: NaiveDateTime) -> QueryResult<usize> {
    diesel::update(sessions::table.find(id_hash)).set(sessions::last_seen_at.eq(now)).execute(conn)
}

/// Deletes one session; returns whether it existed (so that only one of
/// several concurrent requests records its end).
pub fn delete(conn: &mut DbConn, id_hash: &str) -> QueryResult<bool> {
    diesel::delete(sessions::table.find(id_hash)).execute(conn).map(|n| n > 0)
}

/// The ids (hashes) of the account's sessions.
pub fn hashes_for_account(conn: &mut DbConn, account_id: &str) -> QueryResult<Vec<String>> {
    sessions::table.filter(sessions::account_id.eq(account_id)).select(sessions::id_hash).load(conn)
}

pub fn delete_for_account(conn: &mut DbConn, account_id: &str) -> QueryResult<usize> {
    diesel::delete(sessions::table.filter(sessions::account_id.eq(account_id))).execute(conn)
}

/// Sessions past their absolute expiry or idle since `idle_cutoff`.
pub fn find_expired(
    conn: &mut DbConn,
    now: NaiveDateTime,
    idle_cutoff: NaiveDateTime,
    limit: i64,
) -> QueryResult<Vec<SessionRow>> {
    sessions::table
        .filter(sessions::expires_at.le(now).or(sessions::last_seen_at.le(idle_cutoff)))
        .limit(limit)
        .select(SessionRow::as_select())
        .load(conn)
}

/// The account's live sessions, newest first (the admin console).
pub fn list_for_account(conn: &mut DbConn, account_id: &str, limit: i64) -> QueryResult<Vec<SessionRow>> {
    sessions::table
        .filter(sessions::account_id.eq(account_id))
        .order(sessions::created_at.desc())
        .limit(limit)
        .select(SessionRow::as_select())
        .load(conn)
}

/// Records a new authentication in an existing session (the console's
/// re-authentication): the proof of recent authentication is this row.
pub fn set_auth_time(conn: &mut DbConn, id_hash: &str, auth_time: NaiveDateTime, amr: &str) -> QueryResult<usize> {
    diesel::update(sessions::table.find(id_hash))
        .set((sessions::auth_time.eq(auth_time), sessions::amr.eq(amr)))
        .execute(conn)
}

/// One session of one account (so a console form cannot end someone
/// else's session by naming its hash under another account's page).
pub fn delete_of_account(conn: &mut DbConn, account_id: &str, id_hash: &str) -> QueryResult<bool> {
    diesel::delete(sessions::table.find(id_hash).filter(sessions::account_id.eq(account_id)))
        .execute(conn)
        .map(|n| n > 0)
}
