//! Queries on `login_throttle`: failure counters per account and per IP.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::DbConn;
use super::schema::login_throttle;

#[derive(Debug, Clone, Queryable, Selectable, Insertable, AsChangeset)]
#[diesel(table_name = login_throttle, treat_none_as_null = true)]
pub struct ThrottleRow {
    pub throttle_key: String,
    pub failures: i32,
    pub window_started_at: NaiveDateTime,
    pub blocked_until: Option<NaiveDateTime>,
}

pub fn find(conn: &mut DbConn, key: &str) -> QueryResult<Option<ThrottleRow>> {
    login_throttle::table.find(key).select(ThrottleRow::as_select()).first(conn).optional()
}

/// Returns the row for `key`, creating it if needed, locked until the
/// transaction ends (a no-op UPDATE takes PostgreSQL's row lock; SQLite's
/// `BEGIN IMMEDIATE` already holds the database lock). Concurrent logins
/// for one key therefore count one after another, never past each other.
/// Run inside a write transaction.
pub fn lock(conn: &mut DbConn, key: &str, now: NaiveDateTime) -> QueryResult<ThrottleRow> {
    let touch = |conn: &mut DbConn| {
        diesel::update(login_throttle::table.find(key))
            .set(login_throttle::failures.eq(login_throttle::failures))
            .execute(conn)
    };
    if touch(conn)? == 0 {
        let fresh =
            ThrottleRow { throttle_key: key.to_owned(), failures: 0, window_started_at: now, blocked_until: None };
        // A savepoint, so that losing the insert race to another
        // transaction does not abort ours (PostgreSQL).
        match conn.transaction(|conn| diesel::insert_into(login_throttle::table).values(&fresh).execute(conn)) {
            Ok(_) => {}
            Err(e) if super::is_unique_violation(&e) => {
                touch(conn)?;
            }
            Err(e) => return Err(e),
        }
    }
    login_throttle::table.find(key).select(ThrottleRow::as_select()).first(conn)
}

pub fn update(conn: &mut DbConn, row: &ThrottleRow) -> QueryResult<usize> {
    diesel::update(login_throttle::table.find(&row.throttle_key)).set(row).execute(conn)
}

/// Deletes counters that can no longer matter: not blocked any more and
/// with a window that started before `stale_before`.
pub fn purge_stale(conn: &mut DbConn, now: NaiveDateTime, stale_before: NaiveDateTime) -> QueryResult<usize> {
    diesel::delete(
        login_throttle::table
            .filter(login_throttle::window_started_at.lt(stale_before))
            .filter(login_throttle::blocked_until.is_null().or(login_throttle::blocked_until.le(now))),
    )
    .execute(conn)
}

/// Purges counters idle for a day: longer than any window or block the
/// settings allow in practice.
pub fn purge_expired(conn: &mut DbConn, now: NaiveDateTime) -> QueryResult<usize> {
    purge_stale(conn, now, now - chrono::Duration::days(1))
}

pub fn delete(conn: &mut DbConn, key: &str) -> QueryResult<usize> {
    diesel::delete(login_throttle::table.find(key)).execute(conn)
}
