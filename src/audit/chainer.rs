//! Group commit of the audit trail (issue 9, item 5).
//!
//! Requests insert their events into `audit_pending` inside their own
//! transaction and take no shared lock. One chainer per database links
//! them into `audit_events` in batches:
//!
//! - **Election.** On PostgreSQL the chainer is whoever gets the
//!   transaction-level advisory lock (`pg_try_advisory_xact_lock`); the
//!   others skip the round. On SQLite the writer is exclusive already.
//!   The head row is row-locked too, so even a second chainer (e.g. the
//!   CLI) queues behind the first instead of forking the chain.
//! - **Order.** Pending rows are chained in `pending_id` order as the
//!   chainer sees them committed. On PostgreSQL an identity value can
//!   commit after a larger one; that row is chained in a later batch.
//!   "Commit order" is thus the order in which the chainer observed the
//!   commits; every row is chained exactly once.
//! - **Crashes.** Linking, inserting the chained rows, deleting their
//!   pending rows and moving the head happen in one transaction: a chainer
//!   killed mid-batch (or a PostgreSQL restart) rolls all of it back and
//!   the next round redoes the batch. Nothing is lost or chained twice.

use std::time::Duration;

use super::chain;
use super::checkpoint::{self, CheckpointError};
use crate::db::audit::CheckpointRow;
use crate::db::{self, DbConn};
use crate::secrets::Secrets;
use crate::state::AppState;

/// Rows linked per transaction: bounds how long the head stays locked.
pub const BATCH_SIZE: i64 = 500;

/// How often the background chainer looks for pending events: the
/// "within a second" of the issue.
pub const INTERVAL: Duration = Duration::from_millis(500);

/// Chains one batch of at most `limit` pending events in one transaction.
/// Returns `None` when `wait` is false and another session is the chainer
/// right now, else how many events were chained.
pub fn chain_batch(conn: &mut DbConn, limit: i64, wait: bool) -> diesel::QueryResult<Option<usize>> {
    db::write_transaction(conn, |conn| {
        if !db::audit::try_become_chainer(conn, wait)? {
            return Ok(None);
        }
        // Head lock first, then read: on PostgreSQL (READ COMMITTED) the
        // read sees every batch committed by a chainer we queued behind.
        let (mut seq, mut hash) = db::audit::lock_head(conn)?;
        let batch = db::audit::pending_batch(conn, limit)?;
        if batch.is_empty() {
            return Ok(Some(0));
        }
        for pending in &batch {
            let row = chain::link(seq, &hash, pending);
            db::audit::insert_chained(conn, &row)?;
            seq = row.seq;
            hash = row.hash;
        }
        let ids: Vec<i64> = batch.iter().map(|p| p.pending_id).collect();
        if db::audit::delete_pending(conn, &ids)? != batch.len() {
            // Someone else removed a row we chained: undo, never chain twice.
            return Err(diesel::result::Error::RollbackTransaction);
        }
        db::audit::set_head(conn, seq, &hash, db::now())?;
        Ok(Some(batch.len()))
    })
}

fn chain_until_empty(conn: &mut DbConn, wait: bool) -> diesel::QueryResult<usize> {
    let mut total = 0;
    loop {
        match chain_batch(conn, BATCH_SIZE, wait)? {
            Some(n) if n as i64 == BATCH_SIZE => total += n,
            Some(n) => return Ok(total + n),
            None => return Ok(total),
        }
    }
}

/// Chains every event committed so far, queuing behind a chainer that is
/// at work. Returns how many were chained here.
pub fn chain_pending(conn: &mut DbConn) -> diesel::QueryResult<usize> {
    chain_until_empty(conn, true)
}

/// Chains pending events unless another session is the chainer right now
/// (then returns 0 at once): what the background job of every instance
/// does, so that only one of them works per round.
pub fn chain_pending_if_elected(conn: &mut DbConn) -> diesel::QueryResult<usize> {
    chain_until_empty(conn, false)
}

/// Signs a checkpoint of the head when the chain moved and the last
/// checkpoint is at least `min_interval` old (issue 9 item 4). Takes the
/// same locks as chaining (the chainer election, then the head row), so
/// only the elected chainer signs and the head cannot move meanwhile.
/// Returns `None` when nothing was due or another session is the chainer
/// (and `wait` is false).
pub fn checkpoint_if_due(
    conn: &mut DbConn,
    secrets: &Secrets,
    min_interval: Duration,
    wait: bool,
) -> Result<Option<CheckpointRow>, CheckpointError> {
    // Most rounds have nothing to sign: skip the write lock then.
    if !checkpoint::is_due(conn, min_interval)? {
        return Ok(None);
    }
    db::write_transaction(conn, |conn| {
        if !db::audit::try_become_chainer(conn, wait)? {
            return Ok(None);
        }
        db::audit::lock_head(conn)?;
        checkpoint::sign_if_due(conn, secrets, min_interval)
    })
}

/// Chains everything pending and returns a checkpoint of the head,
/// signing one now if the newest does not cover it: what an export closes
/// its proof with (an export, like shutdown, may sign sooner than
/// `WXFED_AUDIT_CHECKPOINT_SECS`).
pub fn checkpoint_now(conn: &mut DbConn, secrets: &Secrets) -> Result<CheckpointRow, CheckpointError> {
    chain_pending(conn)?;
    if let Some(signed) = checkpoint_if_due(conn, secrets, Duration::ZERO, true)? {
        return Ok(signed);
    }
    db::audit::latest_checkpoint(conn)?.ok_or(CheckpointError::Empty)
}

/// One round of the background job: chain, then (when due) checkpoint.
/// `min_interval` zero (shutdown) signs whenever the chain moved.
async fn round(state: &AppState, wait: bool, min_interval: Duration) {
    let result = db::run_long(&state.db, move |conn| chain_until_empty(conn, wait).map_err(db::DbError::from)).await;
    if let Err(error) = result {
        // Retried next round; the events wait safely in audit_pending.
        tracing::warn!(%error, "chaining audit events failed; will retry");
        return;
    }
    let secrets = state.secrets.clone();
    let result = db::run_long(&state.db, move |conn| {
        Ok::<_, db::DbError>(checkpoint_if_due(conn, &secrets, min_interval, wait).map_err(|e| e.to_string()))
    })
    .await;
    match result {
        Ok(Ok(_)) => {}
        // Retried next round: a checkpoint late by a round loses nothing.
        Ok(Err(error)) => tracing::warn!(%error, "signing an audit checkpoint failed; will retry"),
        Err(error) => tracing::warn!(%error, "signing an audit checkpoint failed; will retry"),
    }
    // A copy outside the database, when configured.
    super::sink::push_quietly(state).await;
}

fn checkpoint_interval(state: &AppState) -> Duration {
    Duration::from_secs(state.settings.audit_checkpoint_secs)
}

/// The background chainer every instance runs (only the elected one does
/// any work per round).
pub async fn run(state: AppState) {
    let mut interval = tokio::time::interval(INTERVAL);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        interval.tick().await;
        round(&state, false, checkpoint_interval(&state)).await;
    }
}

/// On shutdown: chain what this instance (and others) recorded, and sign
/// a checkpoint of the final head.
pub async fn flush(state: &AppState) {
    round(state, true, Duration::ZERO).await;
}
