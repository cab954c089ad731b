//! Login throttling, per username and per client IP, stored in the
//! database so that it holds across instances.
//!
//! After `limit` failures within `block` seconds the key is blocked for
//! `block` seconds; attempts while blocked are refused before any password
//! is checked (so they cost no argon2 time). Keys are hashed: the table
//! never holds a username or an IP in the clear.

use chrono::{Duration, NaiveDateTime};
use diesel::QueryResult;

use crate::db::{self, DbConn, throttle::ThrottleRow};

/// The latest block still in force among the rows `read` returns for `keys`.
/// The latest block still in force among the rows `read` returns for `keys`.
fn latest_block(
    conn: &mut DbConn,
    keys: &[&ThrottleKey],
    now: NaiveDateTime,
    mut read: impl FnMut(&mut DbConn, &str) -> QueryResult<Option<ThrottleRow>>,
) -> QueryResult<Option<NaiveDateTime>> {
    let mut latest = None;
    for key in keys {
        let blocked = read(conn, &key.key)?.and_then(|row| row.blocked_until).filter(|b| *b > now);
        latest = latest.max(blocked);
    }
    Ok(latest)
}
use crate::secrets::sha256_hex;

#[derive(Debug, Clone, Copy)]
pub struct ThrottlePolicy {
    pub max_failures_per_account: u32,
    pub max_failures_per_ip: u32,
    pub block_secs: u64,
}

/// What a failure counter is kept for.
#[derive(Debug, Clone)]
pub struct ThrottleKey {
    key: String,
    limit: u32,
}

impl ThrottlePolicy {
    /// The counter of a username (by its case-folded key), whether or not
    /// the account exists, so a lockout reveals nothing.
    pub fn for_username(&self, username_key: &str) -> ThrottleKey {
        ThrottleKey {
            key: format!("user:{}", sha256_hex(username_key.as_bytes())),
            limit: self.max_failures_per_account,
        }
    }

    pub fn for_ip(&self, ip: &str) -> ThrottleKey {
        ThrottleKey { key: format!("ip:{}", sha256_hex(ip.as_bytes())), limit: self.max_failures_per_ip }
    }

    fn window(&self) -> Duration {
        Duration::seconds(i64::try_from(self.block_secs).unwrap_or(i64::MAX / 1000).max(1))
    }

    /// When the latest block among `keys` ends, if any is blocked now.
    /// A quick look without locks, to spare the password check for
    /// requests that would be refused anyway.
    pub fn blocked_until(
        &self,
        conn: &mut DbConn,
        keys: &[&ThrottleKey],
        now: NaiveDateTime,
    ) -> QueryResult<Option<NaiveDateTime>> {
        latest_block(conn, keys, now, db::throttle::find)
    }

    /// Locks the counters of `keys` for the rest of the write transaction
    /// and returns when the latest block among them ends, if any is
    /// blocked now. Deciding under the lock is what keeps a burst of
    /// parallel guesses from learning more than `limit` answers. Callers
    /// must lock keys in one order (account, then IP) to avoid deadlocks.
    pub fn lock(
        &self,
        conn: &mut DbConn,
        keys: &[&ThrottleKey],
        now: NaiveDateTime,
    ) -> QueryResult<Option<NaiveDateTime>> {
        latest_block(conn, keys, now, |conn, key| db::throttle::lock(conn, key, now).map(Some))
    }

    /// Counts one failure on a key locked with [`Self::lock`].
    pub fn record_failure(&self, conn: &mut DbConn, key: &ThrottleKey, now: NaiveDateTime) -> QueryResult<()> {
        let window = self.window();
        let mut row = db::throttle::lock(conn, &key.key, now)?;
        if row.window_started_at + window <= now {
            row.failures = 0;
            row.window_started_at = now;
        }
        row.failures = row.failures.saturating_add(1);
        if u32::try_from(row.failures).unwrap_or(u32::MAX) >= key.limit {
            row.blocked_until = Some(now + window);
            // A new window starts with the block, so the count restarts
            // once the block is over.
            row.window_started_at = now;
            row.failures = 0;
        }
        db::throttle::update(conn, &row).map(|_| ())
    }

    pub fn clear(&self, conn: &mut DbConn, key: &ThrottleKey) -> QueryResult<()> {
        db::throttle::delete(conn, &key.key).map(|_| ())
    }
}
