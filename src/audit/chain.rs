//! The audit hash chain.
//!
//! Row `n` stores `hash_n = HMAC-SHA256(K, hash_{n-1} || canonical(row_n))`,
//! where K is derived from the master key and `canonical` covers every
//! column but the hashes, including the sequence number. So:
//! - editing a row breaks its own hash;
//! - deleting a row leaves a gap in `seq` and breaks the next row's link;
//! - inserting a row needs a valid HMAC, which needs the master key;
//! - cutting rows off the end disagrees with `audit_chain_head`.
//!
//! Events are recorded unchained (`audit_pending`) and linked in batches by
//! the one chainer of the database (see [`super::chainer`]), which holds the
//! head row's lock while it links, so the chain never forks.

use chrono::NaiveDateTime;
use serde::Serialize;

use super::event::AuditEvent;
use crate::db::audit::{AuditRow, NewPendingRow, PendingRow};
use crate::db::{self, DbConn};
use crate::secrets::{constant_time_eq, hex, hmac_sha256};

/// `prev_hash` of the first row.
pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// The hashed content of a row, serialized with a fixed field order.
#[derive(Serialize)]
struct Canonical<'a> {
    v: u8,
    seq: i64,
    id: &'a str,
    occurred_at: String,
    category: &'a str,
    action: &'a str,
    outcome: &'a str,
    reason: Option<&'a str>,
    actor: Option<&'a str>,
    account_id: Option<&'a str>,
    client_id: Option<&'a str>,
    ip: Option<&'a str>,
    user_agent: Option<&'a str>,
    request_id: Option<&'a str>,
    detail: &'a str,
}

fn row_hash(key: &[u8], prev_hash: &str, row: &AuditRow) -> String {
    let canonical = Canonical {
        v: 1,
        seq: row.seq,
        id: &row.id,
        occurred_at: row.occurred_at.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string(),
        category: &row.category,
        action: &row.action,
        outcome: &row.outcome,
        reason: row.reason.as_deref(),
        actor: row.actor.as_deref(),
        account_id: row.account_id.as_deref(),
        client_id: row.client_id.as_deref(),
        ip: row.ip.as_deref(),
        user_agent: row.user_agent.as_deref(),
        request_id: row.request_id.as_deref(),
        detail: &row.detail,
    };
    // Serializing plain strings and integers cannot fail.
    let body = serde_json::to_vec(&canonical).unwrap_or_default();
    let mut message = Vec::with_capacity(prev_hash.len() + 1 + body.len());
    message.extend_from_slice(prev_hash.as_bytes());
    message.push(b'\n');
    message.extend_from_slice(&body);
    hex(&hmac_sha256(key, &message))
}

/// The unchained form of `event`, recorded at `now`.
pub fn pending(event: &AuditEvent, now: NaiveDateTime) -> NewPendingRow {
    NewPendingRow {
        id: uuid::Uuid::now_v7().to_string(),
        occurred_at: now,
        category: event.action.category().as_str().to_owned(),
        action: event.action.as_str().to_owned(),
        outcome: event.outcome.as_str().to_owned(),
        reason: event.reason.clone(),
        actor: event.actor.clone(),
        account_id: event.account_id.clone(),
        client_id: event.client_id.clone(),
        ip: event.ip.clone(),
        user_agent: event.user_agent.as_deref().map(truncate_user_agent),
        request_id: event.request_id.clone(),
        detail: event.detail.to_string(),
    }
}

/// Builds the chained row that follows (`last_seq`, `last_hash`).
pub fn link(key: &[u8], last_seq: i64, last_hash: &str, pending: &PendingRow) -> AuditRow {
    let mut row = AuditRow {
        seq: last_seq + 1,
        id: pending.id.clone(),
        occurred_at: pending.occurred_at,
        category: pending.category.clone(),
        action: pending.action.clone(),
        outcome: pending.outcome.clone(),
        reason: pending.reason.clone(),
        actor: pending.actor.clone(),
        account_id: pending.account_id.clone(),
        client_id: pending.client_id.clone(),
        ip: pending.ip.clone(),
        user_agent: pending.user_agent.clone(),
        request_id: pending.request_id.clone(),
        detail: pending.detail.clone(),
        prev_hash: last_hash.to_owned(),
        hash: String::new(),
    };
    row.hash = row_hash(key, last_hash, &row);
    row
}

fn truncate_user_agent(ua: &str) -> String {
    ua.chars().take(512).collect()
}

/// The first thing wrong with the chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Violation {
    /// The row's content does not match its hash: edited, or forged.
    Altered { seq: i64 },
    /// Rows are missing between two sequence numbers: deleted.
    Missing { after_seq: i64, next_seq: i64 },
    /// The row does not link to the row before it: a row was deleted or
    /// inserted before it.
    BrokenLink { seq: i64 },
    /// The chain ends before the head says it should: rows cut off the end.
    Truncated { last_seq: i64, head_seq: i64 },
    /// The chain goes past the head: rows appended around wxfed.
    BeyondHead { head_seq: i64, seq: i64 },
}

impl std::fmt::Display for Violation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Altered { seq } => write!(f, "row {seq} was altered (its content does not match its hash)"),
            Self::Missing { after_seq, next_seq } => {
                write!(
                    f,
                    "rows {} to {} were deleted (row {after_seq} is followed by row {next_seq})",
                    after_seq + 1,
                    next_seq - 1
                )
            }
            Self::BrokenLink { seq } => {
                write!(f, "row {seq} does not follow the row before it (a row was deleted or inserted)")
            }
            Self::Truncated { last_seq, head_seq } => {
                write!(f, "rows after {last_seq} were deleted (the chain head is at {head_seq})")
            }
            Self::BeyondHead { head_seq, seq } => {
                write!(f, "row {seq} was inserted after the chain head ({head_seq})")
            }
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct VerifyReport {
    pub events_checked: i64,
    pub last_seq: i64,
    pub head_hash: String,
    pub violation: Option<Violation>,
    /// Events recorded but not yet chained: normal for about a second
    /// after they happen (group commit), not tampering.
    pub pending: i64,
    pub oldest_pending: Option<NaiveDateTime>,
}

impl VerifyReport {
    pub fn is_valid(&self) -> bool {
        self.violation.is_none()
    }
}

/// How one row stands in the chain (the auditor's event page).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct RowStatus {
    /// The row's content matches its hash.
    pub content_intact: bool,
    /// Its `prev_hash` is the hash of the row before it (or genesis).
    pub links_to_predecessor: bool,
}

/// Checks `row` alone against its predecessor (`None` for seq 1, or when
/// the predecessor is missing: then the link cannot verify).
pub fn row_status(key: &[u8], row: &AuditRow, predecessor: Option<&AuditRow>) -> RowStatus {
    let recomputed = row_hash(key, &row.prev_hash, row);
    let expected_prev = match predecessor {
        Some(p) if p.seq + 1 == row.seq => Some(p.hash.as_str()),
        Some(_) => None,
        None if row.seq == 1 => Some(GENESIS_HASH),
        None => None,
    };
    RowStatus {
        content_intact: constant_time_eq(recomputed.as_bytes(), row.hash.as_bytes()),
        links_to_predecessor: expected_prev == Some(row.prev_hash.as_str()),
    }
}

/// Walks the whole chain in pages and reports the first violation.
pub fn verify(conn: &mut DbConn, key: &[u8]) -> diesel::QueryResult<VerifyReport> {
    db::read_snapshot(conn, |conn| verify_snapshot(conn, key))
}

/// [`verify`] on a snapshot: the head and the rows read together.
fn verify_snapshot(conn: &mut DbConn, key: &[u8]) -> diesel::QueryResult<VerifyReport> {
    const PAGE: i64 = 1000;
    let (head_seq, head_hash) = db::audit::read_head(conn)?;
    let mut expected_seq = 1;
    let mut prev_hash = GENESIS_HASH.to_owned();
    let mut checked = 0;
    let (pending, oldest_pending) = db::audit::pending_status(conn)?;
    let report = |checked, last_seq, violation| VerifyReport {
        events_checked: checked,
        last_seq,
        head_hash: head_hash.clone(),
        violation,
        pending,
        oldest_pending,
    };
    loop {
        let rows = db::audit::page_after(conn, expected_seq - 1, PAGE)?;
        let page_len = rows.len();
        for row in rows {
            if row.seq > head_seq {
                return Ok(report(checked, expected_seq - 1, Some(Violation::BeyondHead { head_seq, seq: row.seq })));
            }
            if row.seq != expected_seq {
                let violation = Violation::Missing { after_seq: expected_seq - 1, next_seq: row.seq };
                return Ok(report(checked, expected_seq - 1, Some(violation)));
            }
            let recomputed = row_hash(key, &row.prev_hash, &row);
            if !constant_time_eq(recomputed.as_bytes(), row.hash.as_bytes()) {
                return Ok(report(checked, row.seq - 1, Some(Violation::Altered { seq: row.seq })));
            }
            if row.prev_hash != prev_hash {
                return Ok(report(checked, row.seq - 1, Some(Violation::BrokenLink { seq: row.seq })));
            }
            prev_hash = row.hash;
            expected_seq += 1;
            checked += 1;
        }
        if page_len < PAGE as usize {
            break;
        }
    }
    let last_seq = expected_seq - 1;
    if last_seq < head_seq || (last_seq == head_seq && prev_hash != head_hash) {
        return Ok(report(checked, last_seq, Some(Violation::Truncated { last_seq, head_seq })));
    }
    Ok(report(checked, last_seq, None))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::{Action, AuditEvent};

    #[test]
    fn each_link_depends_on_the_key_the_previous_hash_and_the_content() {
        let now = db::now();
        let event = AuditEvent::success(Action::Logout).with_account("a");
        let new = pending(&event, now);
        let recorded = PendingRow {
            pending_id: 1,
            id: new.id,
            occurred_at: new.occurred_at,
            category: new.category,
            action: new.action,
            outcome: new.outcome,
            reason: new.reason,
            actor: new.actor,
            account_id: new.account_id,
            client_id: new.client_id,
            ip: new.ip,
            user_agent: new.user_agent,
            request_id: new.request_id,
            detail: new.detail,
        };
        let first = link(b"k", 0, GENESIS_HASH, &recorded);
        assert_eq!(first.seq, 1);
        assert_eq!(row_hash(b"k", GENESIS_HASH, &first), first.hash);
        assert_ne!(row_hash(b"other key", GENESIS_HASH, &first), first.hash);
        assert_ne!(row_hash(b"k", &first.hash, &first), first.hash);
        let mut edited = first.clone();
        edited.account_id = Some("b".into());
        assert_ne!(row_hash(b"k", GENESIS_HASH, &edited), first.hash);
    }
}
