//! Retention of the audit trail (issue 9 item 6).
//!
//! Each category may have a retention period
//! (`WXFED_AUDIT_RETENTION_<CATEGORY>_DAYS`; unset: kept forever). Pruning
//! strips the **content** of older rows (reason, IP, user agent, detail and
//! the salt of their content hash) and keeps their metadata and hashes, so
//! the chain over what remains still verifies and a pruned row differs from
//! a deleted one:
//!
//! - only rows a signed checkpoint already covers are pruned (the cut is
//!   the newest checkpoint's seq), so the signed head still pins them;
//! - every batch records itself, in its own transaction, as an
//!   `audit.pruned` event (category, cut-off time, covered seq range, row
//!   count); `audit verify` accepts a stripped row only when such a record
//!   covers it ([`super::chain::PruneRecord`]), and these records are never
//!   pruned themselves;
//! - rows chained before link version 2 are not pruned (their v1 HMAC
//!   covers the content itself).
//!
//! Run by `wxfed audit prune` and by a daily job in every server (batches
//! take the chainer's lock, so instances never prune the same rows twice).

use chrono::NaiveDateTime;
use serde::Serialize;

use super::chain::PruneRecord;
use super::{Action, AuditEvent};
use crate::db::{self, DbConn};
use crate::secrets::Secrets;

/// Rows stripped per transaction: bounds how long the write lock is held.
pub const BATCH: i64 = 2_000;

/// How often a server prunes.
pub const INTERVAL: std::time::Duration = std::time::Duration::from_secs(24 * 60 * 60);

/// What one category's prune did.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct CategoryReport {
    pub category: String,
    pub retention_days: u32,
    /// Rows that occurred before this were eligible.
    pub before: String,
    pub pruned: usize,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Report {
    /// The newest signed checkpoint's seq: nothing after it is pruned.
    /// `None`: no checkpoint yet, so nothing was pruned.
    pub through_seq: Option<i64>,
    pub categories: Vec<CategoryReport>,
}

/// Prunes every category that has a retention period, as of `now`.
pub fn prune(
    conn: &mut DbConn,
    secrets: &Secrets,
    retention_days: &[(&str, u32)],
    now: NaiveDateTime,
    actor: &str,
) -> diesel::QueryResult<Report> {
    let Some(checkpoint) = db::audit::latest_checkpoint(conn)? else {
        return Ok(Report { through_seq: None, categories: Vec::new() });
    };
    let mut categories = Vec::new();
    for &(category, days) in retention_days {
        let record = PruneRecord {
            category: category.to_owned(),
            before: now - chrono::Duration::days(i64::from(days)),
            through_seq: checkpoint.seq,
        };
        let mut pruned = 0;
        loop {
            let n = prune_batch(conn, secrets, &record, actor, now)?;
            pruned += n;
            if n < BATCH as usize {
                break;
            }
        }
        categories.push(CategoryReport {
            category: category.to_owned(),
            retention_days: days,
            before: super::chain::timestamp(record.before),
            pruned,
        });
    }
    Ok(Report { through_seq: Some(checkpoint.seq), categories })
}

/// Strips one batch and records it, in one transaction.
fn prune_batch(
    conn: &mut DbConn,
    secrets: &Secrets,
    record: &PruneRecord,
    actor: &str,
    now: NaiveDateTime,
) -> diesel::QueryResult<usize> {
    db::write_transaction(conn, |conn| {
        // The chainer's lock: one pruner at a time across instances.
        db::audit::try_become_chainer(conn, true)?;
        let seqs = db::audit::prunable(
            conn,
            &record.category,
            record.before,
            record.through_seq,
            Action::AuditPruned.as_str(),
            BATCH,
        )?;
        if seqs.is_empty() {
            return Ok(0);
        }
        let stripped = db::audit::strip_content(conn, &seqs, now)?;
        let first = seqs.iter().copied().min().unwrap_or_default();
        let last = seqs.iter().copied().max().unwrap_or_default();
        let mut event = AuditEvent::success(Action::AuditPruned).with_actor(actor);
        event.detail = record.detail(stripped, first, last);
        super::append(conn, secrets, &event)?;
        Ok(stripped)
    })
}

/// The daily job of every server: prunes when any category has a
/// retention period (first run ten minutes after start, so a restart loop does
/// not prune over and over).
pub async fn run(state: crate::state::AppState) {
    if state.settings.audit_retention_days.is_empty() {
        return;
    }
    tokio::time::sleep(std::time::Duration::from_secs(10 * 60)).await;
    let mut interval = tokio::time::interval(INTERVAL);
    loop {
        interval.tick().await;
        let secrets = state.secrets.clone();
        let days = state.settings.audit_retention_days.clone();
        let result = db::run_long(&state.db, move |conn| {
            Ok::<_, db::DbError>(prune(conn, &secrets, &days, db::now(), "system")?)
        })
        .await;
        match result {
            Ok(report) => {
                let pruned: usize = report.categories.iter().map(|c| c.pruned).sum();
                tracing::info!(pruned, "audit retention ran");
            }
            // Tried again tomorrow; nothing is lost by pruning late.
            Err(error) => tracing::warn!(%error, "audit retention failed; will retry"),
        }
    }
}
