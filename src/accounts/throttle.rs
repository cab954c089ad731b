//! Throttling stored in the database, so that it holds across instances:
//! password login failures, and the calls wxfed makes to WeChat on behalf
//! of a client.
//!
//! Login keeps three counters (keys are hashed: the table never holds a
//! username or an IP in the clear; IPv6 addresses count per /64, the
//! smallest network a client usually gets):
//! - per (username, network): after `max_failures_per_user_ip` failures
//!   the pair is blocked for `block_secs`;
//! - per network: after `max_failures_per_ip` failures the network is
//!   blocked for `block_secs`;
//! - per username, from anywhere: after `account_slowdown_after` failures
//!   each further attempt waits a doubling delay (from 5 s) capped at
//!   `account_max_delay_secs`. Never a lock: a stranger guessing from
//!   another network slows the owner down by at most that delay, and
//!   cannot keep the owner out for `block_secs` (issue 10 item 8).
//!
//! Attempts while blocked are refused before any password is checked (so
//! they cost no argon2 time).

use std::net::IpAddr;

use chrono::{Duration, NaiveDateTime};
use diesel::QueryResult;

use crate::config::Settings;
use crate::db::{self, DbConn, DbError, throttle::ThrottleRow};
use crate::secrets::sha256_hex;
use crate::state::AppState;

#[derive(Debug, Clone, Copy)]
pub struct ThrottlePolicy {
    pub max_failures_per_user_ip: u32,
    pub max_failures_per_ip: u32,
    pub block_secs: u64,
    pub account_slowdown_after: u32,
    pub account_max_delay_secs: u64,
}

/// How a counter reacts to failures.
#[derive(Debug, Clone, Copy)]
enum Rule {
    /// Blocked for `block_secs` once `limit` failures fall in a window.
    Block { limit: u32 },
    /// From the `after`th failure in a window on, the next attempt waits
    /// 5, 10, 20… seconds, at most `max_delay_secs`.
    Slowdown { after: u32, max_delay_secs: u64 },
}

/// The first delay of the account-wide slowdown; each further failure
/// doubles it.
const SLOWDOWN_FIRST_DELAY_SECS: u64 = 5;

/// What a failure counter is kept for.
#[derive(Debug, Clone)]
pub struct ThrottleKey {
    key: String,
    rule: Rule,
}

/// The network an address counts for: the address itself for IPv4, its
/// /64 for IPv6 (an IPv4-mapped address counts as IPv4). Anything that
/// is not an address counts as itself.
pub fn network_of(ip: &str) -> String {
    match ip.parse::<IpAddr>() {
        Ok(IpAddr::V6(v6)) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.to_string(),
            None => {
                let segments = v6.segments();
                format!("{:x}:{:x}:{:x}:{:x}::/64", segments[0], segments[1], segments[2], segments[3])
            }
        },
        Ok(IpAddr::V4(v4)) => v4.to_string(),
        Err(_) => ip.to_owned(),
    }
}

/// The keys of one login attempt, in the one order they are locked
/// (account, pair, network) so that two transactions never deadlock.
#[derive(Debug, Clone)]
pub struct LoginKeys {
    pub account: ThrottleKey,
    pub user_ip: ThrottleKey,
    pub ip: ThrottleKey,
}

impl LoginKeys {
    pub fn all(&self) -> [&ThrottleKey; 3] {
        [&self.account, &self.user_ip, &self.ip]
    }
}

impl ThrottlePolicy {
    pub fn from_settings(settings: &Settings) -> Self {
        Self {
            max_failures_per_user_ip: settings.login_max_failures_per_user_ip,
            max_failures_per_ip: settings.login_max_failures_per_ip,
            block_secs: settings.login_block_secs,
            account_slowdown_after: settings.login_account_slowdown_after,
            account_max_delay_secs: settings.login_account_max_delay_secs,
        }
    }

    /// The counters of a login for a username (by its case-folded key,
    /// whether or not the account exists, so a refusal reveals nothing)
    /// from the client address `ip`.
    pub fn login_keys(&self, username_key: &str, ip: &str) -> LoginKeys {
        let network = network_of(ip);
        LoginKeys {
            account: ThrottleKey {
                key: format!("user:{}", sha256_hex(username_key.as_bytes())),
                rule: Rule::Slowdown {
                    after: self.account_slowdown_after,
                    max_delay_secs: self.account_max_delay_secs,
                },
            },
            user_ip: ThrottleKey {
                key: format!("userip:{}", sha256_hex(format!("{username_key}\0{network}").as_bytes())),
                rule: Rule::Block { limit: self.max_failures_per_user_ip },
            },
            ip: ThrottleKey {
                key: format!("ip:{}", sha256_hex(network.as_bytes())),
                rule: Rule::Block { limit: self.max_failures_per_ip },
            },
        }
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
    /// parallel guesses from learning more than the limit. Callers lock
    /// keys in the order of [`LoginKeys::all`] to avoid deadlocks.
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
        let failures = u32::try_from(row.failures).unwrap_or(u32::MAX);
        match key.rule {
            Rule::Block { limit } => {
                if failures >= limit {
                    row.blocked_until = Some(now + window);
                    // A new window starts with the block, so the count
                    // restarts once the block is over.
                    row.window_started_at = now;
                    row.failures = 0;
                }
            }
            Rule::Slowdown { after, max_delay_secs } => {
                if failures >= after {
                    let doublings = (failures - after).min(20);
                    let delay = (SLOWDOWN_FIRST_DELAY_SECS << doublings).min(max_delay_secs.max(1));
                    row.blocked_until = Some(now + Duration::seconds(i64::try_from(delay).unwrap_or(60)));
                }
            }
        }
        db::throttle::update(conn, &row).map(|_| ())
    }

    pub fn clear(&self, conn: &mut DbConn, key: &ThrottleKey) -> QueryResult<()> {
        db::throttle::delete(conn, &key.key).map(|_| ())
    }
}

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

/// Why a call to WeChat was not allowed.
#[derive(Debug, thiserror::Error)]
pub enum WechatBudgetError {
    /// The client or the network used its calls for this minute.
    #[error("too many WeChat calls; retry in {retry_after_secs} s")]
    Exhausted { retry_after_secs: u64 },
    #[error(transparent)]
    Db(#[from] DbError),
}

/// The window of the WeChat call budget. WeChat's own quotas are per
/// minute too (errcode 45011, "api minute-quota reach limit").
const WECHAT_BUDGET_WINDOW_SECS: i64 = 60;

/// Spends one call to WeChat for `client_id`, or refuses it when the
/// client has used `wechat_calls_per_client_per_minute` this minute, or —
/// for a caller that proved no secret (`unauthenticated_ip`: a public
/// client's network) — that network has used
/// `wechat_calls_per_ip_per_minute`. An authenticated caller (a
/// confidential client, a mini-program backend at the facade) sends every
/// user's codes from one server address, so a per-network limit would
/// throttle the whole user base; its secret already bounds it to its own
/// budget. Called BEFORE WeChat is: junk codes from a public client id
/// must not spend an app's WeChat quota (issue 10 item 7). Counted in the
/// database under row locks, so the limit holds across instances and for
/// parallel bursts.
pub async fn spend_wechat_call(
    state: &AppState,
    client_id: &str,
    unauthenticated_ip: Option<&str>,
) -> Result<(), WechatBudgetError> {
    let mut limits = vec![(
        format!("wxcall:client:{}", sha256_hex(client_id.as_bytes())),
        state.settings.wechat_calls_per_client_per_minute,
    )];
    if let Some(ip) = unauthenticated_ip {
        limits.push((
            format!("wxcall:ip:{}", sha256_hex(network_of(ip).as_bytes())),
            state.settings.wechat_calls_per_ip_per_minute,
        ));
    }
    let verdict = db::run(&state.db, move |conn| {
        db::write_transaction(conn, |conn| -> Result<Option<u64>, DbError> {
            let now = db::now();
            let window = Duration::seconds(WECHAT_BUDGET_WINDOW_SECS);
            let mut rows = Vec::with_capacity(limits.len());
            for (key, limit) in &limits {
                let mut row = db::throttle::lock(conn, key, now)?;
                if row.window_started_at + window <= now {
                    row.failures = 0;
                    row.window_started_at = now;
                }
                if u32::try_from(row.failures).unwrap_or(u32::MAX) >= *limit {
                    let retry = (row.window_started_at + window - now).num_seconds().max(1);
                    return Ok(Some(u64::try_from(retry).unwrap_or(1)));
                }
                rows.push(row);
            }
            for mut row in rows {
                row.failures = row.failures.saturating_add(1);
                db::throttle::update(conn, &row)?;
            }
            Ok(None)
        })
    })
    .await?;
    crate::metrics::throttle("wechat_call", verdict.is_none());
    match verdict {
        Some(retry_after_secs) => Err(WechatBudgetError::Exhausted { retry_after_secs }),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipv6_counts_per_64_and_ipv4_per_address() {
        assert_eq!(network_of("2001:db8:1:2:aaaa::1"), network_of("2001:db8:1:2:bbbb::2"));
        assert_ne!(network_of("2001:db8:1:2::1"), network_of("2001:db8:1:3::1"));
        assert_eq!(network_of("::ffff:192.0.2.7"), "192.0.2.7");
        assert_ne!(network_of("192.0.2.7"), network_of("192.0.2.8"));
    }
}
