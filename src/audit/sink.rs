//! The external checkpoint sink (issue 9 item 4): every signed checkpoint
//! is also pushed out of the database, as it is made, so that a copy lives
//! where a database administrator cannot rewrite it
//! (`WXFED_AUDIT_CHECKPOINT_SINK`).
//!
//! - a **file** path: one JSON line per checkpoint appended (and fsync'd),
//!   the fields of `/audit/checkpoints.json` entries;
//! - an **https URL**: one POST per checkpoint with that JSON object as
//!   the body; a 2xx answer takes it (http only to a loopback address).
//!
//! Checkpoints are pushed oldest first after the chainer's round; the seq
//! of the last one taken is kept in `settings`, so a sink that is down is
//! caught up when it is back, none skipped. Delivery is at least once: a
//! push that succeeded just before a crash, or two instances pushing in the
//! same round, can repeat a checkpoint; receivers recognise it by `seq`.
//! A failure never blocks or loses the checkpoint itself (it is stored
//! before it is pushed).

use std::io::Write;
use std::sync::OnceLock;
use std::time::Duration;

use super::checkpoint::{self, PublishedCheckpoint};
use crate::config::CheckpointSink;
use crate::db::{self, DbError};
use crate::state::AppState;

/// The `settings` row with the seq of the last checkpoint the sink took.
const PUSHED: &str = "audit_checkpoint_sink_pushed_seq";

/// Checkpoints pushed per round at most (a sink that was down for long is
/// caught up over a few rounds).
const PER_ROUND: i64 = 100;

const TIMEOUT: Duration = Duration::from_secs(5);

fn http() -> &'static reqwest::Client {
    static CLIENT: OnceLock<reqwest::Client> = OnceLock::new();
    CLIENT.get_or_init(|| {
        reqwest::Client::builder()
            .timeout(TIMEOUT)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap_or_default()
    })
}

#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    #[error(transparent)]
    Db(#[from] DbError),
    #[error("the checkpoint file cannot be written: {0}")]
    File(std::io::Error),
    #[error("the checkpoint sink at {host} did not take checkpoint {seq}: {why}")]
    Http { host: String, seq: i64, why: String },
}

fn append(path: &std::path::Path, checkpoint: &PublishedCheckpoint) -> std::io::Result<()> {
    let mut line = serde_json::to_vec(checkpoint).unwrap_or_default();
    line.push(b'\n');
    let mut file = std::fs::OpenOptions::new().create(true).append(true).open(path)?;
    file.write_all(&line)?;
    file.sync_data()
}

async fn post(url: &url::Url, checkpoint: &PublishedCheckpoint) -> Result<(), SinkError> {
    // Only the host in errors: a URL may carry credentials.
    let failed =
        |why: String| SinkError::Http { host: url.host_str().unwrap_or_default().to_owned(), seq: checkpoint.seq, why };
    let response = http().post(url.clone()).json(checkpoint).send().await.map_err(|e| failed(e.to_string()))?;
    if response.status().is_success() { Ok(()) } else { Err(failed(format!("HTTP {}", response.status().as_u16()))) }
}

/// Pushes every checkpoint the sink has not taken yet, oldest first;
/// stops at the first failure (retried next round). Returns how many
/// were pushed.
pub async fn push_pending(state: &AppState, sink: &CheckpointSink) -> Result<usize, SinkError> {
    let pending = db::run_long(&state.db, |conn| -> Result<_, DbError> {
        let pushed = db::settings::get(conn, PUSHED)?.and_then(|v| v.parse::<i64>().ok()).unwrap_or(0);
        Ok(db::audit::checkpoints_after(conn, pushed, PER_ROUND)?)
    })
    .await?;
    let mut pushed = 0;
    for row in pending {
        let seq = row.seq;
        let published = checkpoint::publish(row);
        match sink {
            CheckpointSink::File(path) => {
                let path = path.clone();
                let line = published.clone();
                actix_web::web::block(move || append(&path, &line))
                    .await
                    .map_err(|_| SinkError::Db(DbError::Canceled))?
                    .map_err(SinkError::File)?;
            }
            CheckpointSink::Url(url) => post(url, &published).await?,
        }
        db::run_long(&state.db, move |conn| -> Result<_, DbError> {
            Ok(db::write_transaction(conn, |conn| db::settings::set(conn, PUSHED, &seq.to_string()))?)
        })
        .await?;
        pushed += 1;
    }
    Ok(pushed)
}

/// [`push_pending`] as the chainer's round runs it: failures are logged
/// and counted, never raised.
pub async fn push_quietly(state: &AppState) {
    let Some(sink) = state.settings.audit_checkpoint_sink.clone() else { return };
    if let Err(error) = push_pending(state, &sink).await {
        crate::metrics::audit_sink_failure();
        tracing::warn!(%error, "pushing audit checkpoints to the sink failed; will retry");
    }
}
