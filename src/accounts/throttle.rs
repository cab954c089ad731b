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
        ThrottleKey { key: format!("user:{}", sha256_hex(username_key.as_bytes())), limit: self.max_failures_per_account }
    }

    pub fn for_ip(&self, ip: &str) -> ThrottleKey {
        ThrottleKey { key: format!("ip:{}", sha256_hex(ip.as_bytes())), limit: self.max_failures_per_ip }
    }

    fn window(&self) -> Duration {
        Duration::seconds(i64::try_from(self.block_secs).unwrap_or(i64::MAX / 1000).max(1))
    }

    /// When the latest block among `keys` ends, if any is blocked now.
    pub fn blocked_until(&self, conn: &mut DbConn, keys: &[&ThrottleKey], now: NaiveDateTime) -> QueryResult<Option<NaiveDateTime>> {
        let mut until: Option<NaiveDateTime> = None;
        for key in keys {
            if let Some(row) = db::throttle::find(conn, &key.key)? {
                if let Some(blocked) = row.blocked_until.filter(|b| *b > now) {
                    until = Some(until.map_or(blocked, |u| u.max(blocked)));
                }
            }
        }
        Ok(until)
    }

    /// Counts one failure; run inside a write transaction.
    pub fn record_failure(&self, conn: &mut DbConn, key: &ThrottleKey, now: NaiveDateTime) -> QueryResult<()> {
        let window = self.window();
        let mut row = match db::throttle::find(conn, &key.key)? {
            Some(row) if row.window_started_at + window > now => row,
            _ => ThrottleRow { throttle_key: key.key.clone(), failures: 0, window_started_at: now, blocked_until: None },
        };
        row.failures = row.failures.saturating_add(1);
        if u32::try_from(row.failures).unwrap_or(u32::MAX) >= key.limit {
            row.blocked_until = Some(now + window);
            // A new window starts with the block, so the count restarts
            // once the block is over.
            row.window_started_at = now;
            row.failures = 0;
        }
        db::throttle::save(conn, &row)
    }

    pub fn clear(&self, conn: &mut DbConn, key: &ThrottleKey) -> QueryResult<()> {
        db::throttle::delete(conn, &key.key).map(|_| ())
    }
}
