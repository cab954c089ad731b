//! `wxfed audit …`

use std::process::ExitCode;

use clap::Subcommand;
use serde::Serialize;

use super::output::{CliError, print};
use crate::audit;
use crate::db;
use crate::startup::Backend;

#[derive(Subcommand, Debug)]
pub enum AuditCommand {
    /// Check the audit hash chain; exits 1 and names the first altered,
    /// deleted or inserted row if it was tampered with. Events not yet
    /// chained (group commit, normally for under a second) are reported
    /// separately and are not an error.
    Verify,
    /// Show the newest events.
    List {
        /// How many events.
        #[arg(long, default_value_t = 20)]
        limit: i64,
    },
}

#[derive(Serialize)]
struct EventOut {
    seq: i64,
    id: String,
    occurred_at: String,
    category: String,
    action: String,
    outcome: String,
    reason: Option<String>,
    actor: Option<String>,
    account_id: Option<String>,
    client_id: Option<String>,
    ip: Option<String>,
    user_agent: Option<String>,
    request_id: Option<String>,
    detail: serde_json::Value,
}

/// Chains pending events before the CLI exits; a failure is only logged
/// (the events stay pending, and the next chainer links them).
pub fn chain_on_exit(backend: &Backend) {
    let result = backend
        .pool
        .get()
        .map_err(|e| e.to_string())
        .and_then(|mut conn| audit::chainer::chain_pending(&mut conn, &backend.secrets).map_err(|e| e.to_string()));
    if let Err(error) = result {
        tracing::warn!(%error, "chaining audit events failed; a running server will chain them");
    }
}

pub fn run(command: AuditCommand, backend: &Backend, json: bool) -> Result<ExitCode, CliError> {
    let mut conn = backend.pool.get().map_err(|e| CliError::Other(e.to_string()))?;
    match command {
        AuditCommand::Verify => {
            let report = audit::verify(&mut conn, backend.secrets.audit_chain_key())?;
            let mut text = match &report.violation {
                None => format!("audit chain OK: {} events, last seq {}", report.events_checked, report.last_seq),
                Some(violation) => format!(
                    "audit chain BROKEN: {violation}; the {} events before it are intact",
                    report.events_checked
                ),
            };
            // Not tampering: group commit chains events within about a
            // second; a backlog that stays means no chainer is running.
            if report.pending > 0 {
                let age = report.oldest_pending.map(|t| (db::now() - t).num_seconds()).unwrap_or(0);
                text.push_str(&format!(
                    "\n{} events not yet chained (oldest {age} s ago; normal for a few seconds{})",
                    report.pending,
                    if age > 60 { "; is a wxfed server running?" } else { "" }
                ));
            }
            let value = serde_json::json!({
                "valid": report.is_valid(),
                "events_checked": report.events_checked,
                "last_seq": report.last_seq,
                "violation": report.violation,
                "pending": report.pending,
                "oldest_pending": report.oldest_pending.map(|t| t.and_utc().to_rfc3339()),
                "message": text,
            });
            print(json, &value, &text);
            Ok(if report.is_valid() { ExitCode::SUCCESS } else { ExitCode::FAILURE })
        }
        AuditCommand::List { limit } => {
            let rows = db::audit::latest(&mut conn, limit.clamp(1, 10_000))?;
            let events: Vec<EventOut> = rows
                .into_iter()
                .map(|r| EventOut {
                    seq: r.seq,
                    id: r.id,
                    occurred_at: r.occurred_at.and_utc().to_rfc3339(),
                    category: r.category,
                    action: r.action,
                    outcome: r.outcome,
                    reason: r.reason,
                    actor: r.actor,
                    account_id: r.account_id,
                    client_id: r.client_id,
                    ip: r.ip,
                    user_agent: r.user_agent,
                    request_id: r.request_id,
                    detail: serde_json::from_str(&r.detail).unwrap_or(serde_json::Value::Null),
                })
                .collect();
            let text = events
                .iter()
                .map(|e| {
                    format!(
                        "{:>6}  {}  {:<18} {:<8} {}{}",
                        e.seq,
                        e.occurred_at,
                        e.action,
                        e.outcome,
                        e.actor.as_deref().unwrap_or("-"),
                        e.reason.as_deref().map(|r| format!("  ({r})")).unwrap_or_default()
                    )
                })
                .collect::<Vec<_>>()
                .join("\n");
            print(json, &events, &text);
            Ok(ExitCode::SUCCESS)
        }
    }
}
