//! The audit hash chain.
//!
//! Rows carry a link version (`link_version`, docs/audit.md):
//!
//! - **v1** (rows chained before migration `000110`):
//!   `hash_n = HMAC-SHA256(K, hash_{n-1} || "\n" || canonical_v1(row_n))`,
//!   K derived from the master key; only a holder of that key can check it.
//! - **v2** (every new row): `hash_n = SHA-256(hash_{n-1} || "\n" ||
//!   canonical_v2(row_n))`, where `canonical_v2` is the row's metadata (seq,
//!   id, time, category, action, outcome, actor, account, client, request
//!   id) and `content_hash = SHA-256(canonical content)`; the content is the
//!   reason, IP, user agent and detail with a random per-row salt. Anyone
//!   can recompute a v2 link, so an export proves itself with the audit
//!   public key alone (the signed checkpoints over the head are what make
//!   the links binding, [`super::checkpoint`]). Because the link covers
//!   only the content's hash, a row can leave an export as metadata
//!   ("omitted", [`super::proof`]) and retention can strip its content
//!   ("pruned", [`super::retention`]) while the chain still verifies.
//!
//! Either way:
//! - editing a row breaks its own hash;
//! - deleting a row leaves a gap in `seq` and breaks the next row's link;
//! - cutting rows off the end disagrees with `audit_chain_head` and, even
//!   when the head is edited to match, with the signed checkpoints.
//!
//! Events are recorded unchained (`audit_pending`) and linked in batches by
//! the one chainer of the database (see [`super::chainer`]), which holds the
//! head row's lock while it links, so the chain never forks.

use chrono::NaiveDateTime;
use serde::Serialize;
use serde_json::Value;
use sha2::{Digest, Sha256};

use super::event::AuditEvent;
use crate::db::audit::{AuditRow, NewPendingRow, PendingRow};
use crate::db::{self, DbConn};
use crate::secrets::{constant_time_eq, hex, hmac_sha256};

/// `prev_hash` of the first row.
pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// The link version of newly chained rows.
pub const LINK_VERSION: i32 = 2;

pub use crate::db::audit::PRUNED_DETAIL;

/// The hashed content of a v1 row, serialized with a fixed field order.
#[derive(Serialize)]
struct CanonicalV1<'a> {
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

/// RFC 3339 UTC with microseconds: how times are hashed and exported.
pub fn timestamp(at: NaiveDateTime) -> String {
    at.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string()
}

fn hmac_v1(key: &[u8], prev_hash: &str, row: &AuditRow) -> String {
    let canonical = CanonicalV1 {
        v: 1,
        seq: row.seq,
        id: &row.id,
        occurred_at: timestamp(row.occurred_at),
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
    hex(&hmac_sha256(key, &link_message(prev_hash, &body)))
}

fn link_message(prev_hash: &str, body: &[u8]) -> Vec<u8> {
    let mut message = Vec::with_capacity(prev_hash.len() + 1 + body.len());
    message.extend_from_slice(prev_hash.as_bytes());
    message.push(b'\n');
    message.extend_from_slice(body);
    message
}

/// What a v2 link covers of a row besides the previous hash: everything
/// but its content, which it covers by hash. Field order is the canonical
/// JSON's (docs/audit.md); an export's lines carry the same fields.
#[derive(Debug, Clone, Serialize)]
pub struct Metadata<'a> {
    pub seq: i64,
    pub id: &'a str,
    pub occurred_at: &'a str,
    pub category: &'a str,
    pub action: &'a str,
    pub outcome: &'a str,
    pub actor: Option<&'a str>,
    pub account_id: Option<&'a str>,
    pub client_id: Option<&'a str>,
    pub request_id: Option<&'a str>,
}

/// A row's content: what an omitted export line and a pruned row lack.
#[derive(Debug, Clone, Serialize)]
pub struct Content<'a> {
    pub salt: &'a str,
    pub reason: Option<&'a str>,
    pub ip: Option<&'a str>,
    pub user_agent: Option<&'a str>,
    pub detail: &'a Value,
}

#[derive(Serialize)]
struct CanonicalV2<'a> {
    v: u8,
    #[serde(flatten)]
    metadata: &'a Metadata<'a>,
    content_hash: &'a str,
}

/// `detail` as the JSON value it is (hashed and exported as such).
pub fn detail_value(detail: &str) -> Value {
    serde_json::from_str(detail).unwrap_or_else(|_| Value::String(detail.to_owned()))
}

/// Lowercase hex SHA-256 of the canonical JSON of `content`.
pub fn content_hash(content: &Content) -> String {
    hex(&Sha256::digest(serde_json::to_vec(content).unwrap_or_default()))
}

/// The v2 link: lowercase hex SHA-256 of `prev_hash`, `\n` and the
/// canonical JSON of the metadata with `v: 2` and the content hash.
pub fn link_hash(prev_hash: &str, metadata: &Metadata, content_hash: &str) -> String {
    let body = serde_json::to_vec(&CanonicalV2 { v: 2, metadata, content_hash }).unwrap_or_default();
    hex(&Sha256::digest(link_message(prev_hash, &body)))
}

/// Runs `f` with the row's metadata (its time formatted as hashed).
pub fn with_metadata<T>(row: &AuditRow, f: impl FnOnce(&Metadata) -> T) -> T {
    let occurred_at = timestamp(row.occurred_at);
    f(&Metadata {
        seq: row.seq,
        id: &row.id,
        occurred_at: &occurred_at,
        category: &row.category,
        action: &row.action,
        outcome: &row.outcome,
        actor: row.actor.as_deref(),
        account_id: row.account_id.as_deref(),
        client_id: row.client_id.as_deref(),
        request_id: row.request_id.as_deref(),
    })
}

/// The hash of the row's content as stored, if it still has its content.
pub fn row_content_hash(row: &AuditRow) -> Option<String> {
    let salt = row.content_salt.as_deref()?;
    let detail = detail_value(&row.detail);
    Some(content_hash(&Content {
        salt,
        reason: row.reason.as_deref(),
        ip: row.ip.as_deref(),
        user_agent: row.user_agent.as_deref(),
        detail: &detail,
    }))
}

/// Whether a pruned row holds nothing but its metadata, as retention
/// leaves it.
fn is_stripped(row: &AuditRow) -> bool {
    row.reason.is_none()
        && row.ip.is_none()
        && row.user_agent.is_none()
        && row.content_salt.is_none()
        && row.detail == PRUNED_DETAIL
}

/// Recomputes the row's hash from its stored fields and `prev_hash`;
/// `None` when its content contradicts its `content_hash` (or a pruned row
/// still holds content).
fn recompute(key: &[u8], prev_hash: &str, row: &AuditRow) -> Option<String> {
    match row.link_version {
        1 => Some(hmac_v1(key, prev_hash, row)),
        2 => {
            let stored = row.content_hash.as_deref()?;
            let content_ok = match row.pruned_at {
                Some(_) => is_stripped(row),
                None => row_content_hash(row).is_some_and(|h| constant_time_eq(h.as_bytes(), stored.as_bytes())),
            };
            content_ok.then(|| with_metadata(row, |m| link_hash(prev_hash, m, stored)))
        }
        _ => None,
    }
}

fn is_intact(key: &[u8], prev_hash: &str, row: &AuditRow) -> bool {
    recompute(key, prev_hash, row).is_some_and(|h| constant_time_eq(h.as_bytes(), row.hash.as_bytes()))
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

/// Builds the chained (v2) row that follows (`last_seq`, `last_hash`).
pub fn link(last_seq: i64, last_hash: &str, pending: &PendingRow) -> AuditRow {
    let salt = hex(&rand::random::<[u8; 16]>());
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
        link_version: LINK_VERSION,
        content_salt: Some(salt),
        content_hash: None,
        pruned_at: None,
    };
    let content = row_content_hash(&row).unwrap_or_default();
    row.hash = with_metadata(&row, |m| link_hash(last_hash, m, &content));
    row.content_hash = Some(content);
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
    /// The row's content was removed, but no recorded prune covers it:
    /// deleted, not pruned by retention.
    UnrecordedPrune { seq: i64 },
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
            Self::UnrecordedPrune { seq } => {
                write!(f, "the content of row {seq} was removed, but no recorded prune covers it")
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
    /// Rows whose content retention removed (covered by a recorded prune).
    pub pruned: i64,
}

impl VerifyReport {
    pub fn is_valid(&self) -> bool {
        self.violation.is_none()
    }
}

/// A prune as recorded in its `audit.pruned` event (issue 9 item 6): the
/// content of rows of `category` that occurred before `before`, up to
/// `through_seq`, was removed. Verification accepts a stripped row only
/// when such a record covers it; that is how a pruned row differs from a
/// deleted one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PruneRecord {
    pub category: String,
    pub before: NaiveDateTime,
    pub through_seq: i64,
}

impl PruneRecord {
    /// The detail of the `audit.pruned` event that records this prune.
    pub fn detail(&self, rows: usize, first_seq: i64, last_seq: i64) -> Value {
        serde_json::json!({
            "category": self.category,
            "before": timestamp(self.before),
            "through_seq": self.through_seq,
            "rows": rows,
            "first_seq": first_seq,
            "last_seq": last_seq,
        })
    }

    /// Reads a record back from an `audit.pruned` event's detail.
    pub fn from_detail(detail: &str) -> Option<Self> {
        let value = detail_value(detail);
        let before = value.get("before")?.as_str()?;
        Some(Self {
            category: value.get("category")?.as_str()?.to_owned(),
            before: chrono::DateTime::parse_from_rfc3339(before).ok()?.naive_utc(),
            through_seq: value.get("through_seq")?.as_i64()?,
        })
    }

    pub fn covers(&self, row: &AuditRow) -> bool {
        row.category == self.category && row.occurred_at < self.before && row.seq <= self.through_seq
    }
}

/// Every recorded prune, chained or still pending.
pub fn prune_records(conn: &mut DbConn) -> diesel::QueryResult<Vec<PruneRecord>> {
    let details = db::audit::details_of_action(conn, super::Action::AuditPruned.as_str())?;
    Ok(details.iter().filter_map(|d| PruneRecord::from_detail(d)).collect())
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
    let expected_prev = match predecessor {
        Some(p) if p.seq + 1 == row.seq => Some(p.hash.as_str()),
        Some(_) => None,
        None if row.seq == 1 => Some(GENESIS_HASH),
        None => None,
    };
    RowStatus {
        content_intact: is_intact(key, &row.prev_hash, row),
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
    let prunes = prune_records(conn)?;
    let mut pruned = 0;
    let mut seen_v2 = false;
    let report = |checked, last_seq, pruned, violation| VerifyReport {
        events_checked: checked,
        last_seq,
        head_hash: head_hash.clone(),
        violation,
        pending,
        oldest_pending,
        pruned,
    };
    loop {
        let rows = db::audit::page_after(conn, expected_seq - 1, PAGE)?;
        let page_len = rows.len();
        for row in rows {
            let seq = row.seq;
            if seq > head_seq {
                return Ok(report(checked, expected_seq - 1, pruned, Some(Violation::BeyondHead { head_seq, seq })));
            }
            if seq != expected_seq {
                let violation = Violation::Missing { after_seq: expected_seq - 1, next_seq: seq };
                return Ok(report(checked, expected_seq - 1, pruned, Some(violation)));
            }
            // Versions only go up: a v1 row after a v2 one was rewritten
            // to dodge the public check.
            seen_v2 |= row.link_version == 2;
            if !is_intact(key, &row.prev_hash, &row) || (seen_v2 && row.link_version == 1) {
                return Ok(report(checked, seq - 1, pruned, Some(Violation::Altered { seq })));
            }
            if row.prev_hash != prev_hash {
                return Ok(report(checked, seq - 1, pruned, Some(Violation::BrokenLink { seq })));
            }
            if row.pruned_at.is_some() {
                if !prunes.iter().any(|p| p.covers(&row)) {
                    return Ok(report(checked, seq - 1, pruned, Some(Violation::UnrecordedPrune { seq })));
                }
                pruned += 1;
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
        return Ok(report(checked, last_seq, pruned, Some(Violation::Truncated { last_seq, head_seq })));
    }
    Ok(report(checked, last_seq, pruned, None))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::{Action, AuditEvent};

    fn recorded(event: &AuditEvent) -> PendingRow {
        pending(event, db::now()).recorded(1)
    }

    #[test]
    fn a_v2_link_depends_on_the_previous_hash_the_metadata_and_the_content() {
        let event = AuditEvent::success(Action::Logout).with_account("a").with_detail("k", "v");
        let first = link(0, GENESIS_HASH, &recorded(&event));
        assert_eq!((first.seq, first.link_version), (1, 2));
        assert!(is_intact(b"any key", GENESIS_HASH, &first), "v2 links need no key");
        assert!(!is_intact(b"k", &first.hash, &first));
        let mut edited = first.clone();
        edited.account_id = Some("b".into());
        assert!(!is_intact(b"k", GENESIS_HASH, &edited), "metadata is covered");
        let mut edited = first.clone();
        edited.detail = r#"{"k":"w"}"#.into();
        assert!(!is_intact(b"k", GENESIS_HASH, &edited), "content is covered through its hash");
    }

    #[test]
    fn a_pruned_row_still_links_but_only_when_stripped_entirely() {
        let mut event = AuditEvent::success(Action::Logout).with_reason("r");
        event.ip = Some("10.0.0.1".into());
        let row = link(0, GENESIS_HASH, &recorded(&event));
        let mut stub = row.clone();
        (stub.reason, stub.ip, stub.user_agent, stub.content_salt) = (None, None, None, None);
        stub.detail = PRUNED_DETAIL.into();
        stub.pruned_at = Some(db::now());
        assert!(is_intact(b"", GENESIS_HASH, &stub));
        let mut half = stub.clone();
        half.reason = Some("still here".into());
        assert!(!is_intact(b"", GENESIS_HASH, &half));
        let mut unmarked = stub.clone();
        unmarked.pruned_at = None;
        assert!(!is_intact(b"", GENESIS_HASH, &unmarked), "stripped content without a prune mark");
    }

    #[test]
    fn prune_records_cover_their_category_time_and_range() {
        let row = link(0, GENESIS_HASH, &recorded(&AuditEvent::success(Action::Logout)));
        let record = PruneRecord {
            category: row.category.clone(),
            before: row.occurred_at + chrono::Duration::seconds(1),
            through_seq: 1,
        };
        assert!(record.covers(&row));
        let parsed = PruneRecord::from_detail(&record.detail(1, 1, 1).to_string()).unwrap();
        assert_eq!(parsed, record);
        assert!(!PruneRecord { through_seq: 0, ..record.clone() }.covers(&row));
        assert!(!PruneRecord { before: row.occurred_at, ..record.clone() }.covers(&row));
        assert!(!PruneRecord { category: "admin".into(), ..record }.covers(&row));
    }
}
