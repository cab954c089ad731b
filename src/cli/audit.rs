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
    /// Export events in chain order as CSV (with a header row) or JSON
    /// Lines, streamed in batches; to stdout, or to a file with progress on
    /// stderr. Chains pending events first; the export is itself audited.
    Export {
        #[command(flatten)]
        filters: Box<ExportFilters>,
        /// csv or jsonl.
        #[arg(long, value_parser = ["csv", "jsonl"])]
        format: String,
        /// Write to this file instead of stdout.
        #[arg(long, value_name = "FILE")]
        output: Option<std::path::PathBuf>,
    },
    /// The Ed25519 audit key that signs checkpoints (separate from the
    /// master key).
    #[command(subcommand)]
    Key(AuditKeyCommand),
}

/// The log viewer's filters as flags (T: RFC 3339 or a YYYY-MM-DD date in UTC).
#[derive(clap::Args, Debug)]
pub struct ExportFilters {
    #[arg(long, value_name = "T")]
    from: Option<String>,
    /// Up to (exclusive); a date includes that whole day.
    #[arg(long, value_name = "T")]
    to: Option<String>,
    #[arg(long)]
    category: Option<String>,
    /// An action, or a family like `login.*`.
    #[arg(long)]
    action: Option<String>,
    #[arg(long)]
    outcome: Option<String>,
    /// Username or account id.
    #[arg(long)]
    account: Option<String>,
    #[arg(long)]
    client: Option<String>,
    /// An address or a CIDR network.
    #[arg(long)]
    ip: Option<String>,
    #[arg(long)]
    request_id: Option<String>,
    /// Text in the reason.
    #[arg(long)]
    q: Option<String>,
}

impl From<ExportFilters> for audit::query::FilterParams {
    fn from(f: ExportFilters) -> Self {
        Self {
            from: f.from,
            to: f.to,
            category: f.category,
            action: f.action,
            outcome: f.outcome,
            account: f.account,
            client: f.client,
            ip: f.ip,
            request_id: f.request_id,
            q: f.q,
        }
    }
}

/// Streams the selected events to `out` batch by batch; returns how many.
fn export(
    conn: &mut db::DbConn,
    backend: &Backend,
    filters: ExportFilters,
    format: audit::export::Format,
    out: &mut dyn std::io::Write,
    progress: bool,
) -> Result<u64, CliError> {
    use audit::export;
    let params = audit::query::FilterParams::from(filters).normalized();
    let mut filters = params.parse().map_err(|e| CliError::Other(e.to_string()))?;
    // A CLI-only installation has no server chaining: export everything
    // recorded so far.
    audit::chainer::chain_pending(conn, &backend.secrets)?;
    filters.resolve(conn)?;
    let event = audit::AuditEvent::success(audit::Action::AuditExported)
        .with_actor(crate::accounts::manage::Actor::cli().0)
        .with_detail("filters", serde_json::to_value(&params).unwrap_or_default())
        .with_detail("format", format.as_str())
        .with_detail("surface", "cli");
    audit::record(conn, &backend.secrets, &event)?;
    let io = |e: std::io::Error| CliError::Other(format!("cannot write the export: {e}"));
    out.write_all(&export::header(format)).map_err(io)?;
    let (mut after, mut written) = (0, 0u64);
    loop {
        let page = audit::query::page(conn, &filters, db::audit_query::Direction::OldestAfter(after), export::BATCH)?;
        out.write_all(&export::encode(format, &page.rows)).map_err(io)?;
        written += page.rows.len() as u64;
        if progress {
            eprint!("\rexported {written} events");
        }
        match page.next {
            Some(next) => after = next,
            None => break,
        }
    }
    out.flush().map_err(io)?;
    if progress {
        eprintln!();
    }
    Ok(written)
}

#[derive(Subcommand, Debug)]
pub enum AuditKeyCommand {
    /// Print the current public key: base64 of its 32 raw bytes (created
    /// on first use).
    Show,
    /// Retire the current key and create a new one; old public keys are
    /// kept so the checkpoints they signed still verify.
    Rotate,
}

#[derive(Serialize)]
struct AuditKeyOut {
    id: String,
    alg: &'static str,
    public_key: String,
    created_at: String,
}

impl From<db::audit::AuditKeyRow> for AuditKeyOut {
    fn from(key: db::audit::AuditKeyRow) -> Self {
        Self {
            id: key.id,
            alg: "Ed25519",
            public_key: key.public_key,
            created_at: key.created_at.and_utc().to_rfc3339(),
        }
    }
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
            // Checkpoints catch what the chain cannot: its newest rows cut
            // off together with a matching edit of the head.
            let (checkpoints_checked, checkpoint_violation) = audit::checkpoint::verify(&mut conn)?;
            let mut text = match (&report.violation, &checkpoint_violation) {
                (None, None) => format!(
                    "audit chain OK: {} events, last seq {}; {checkpoints_checked} signed checkpoints OK",
                    report.events_checked, report.last_seq
                ),
                (Some(violation), _) => format!(
                    "audit chain BROKEN: {violation}; the {} events before it are intact",
                    report.events_checked
                ),
                (None, Some(violation)) => format!(
                    "audit chain BROKEN: {violation}; the {checkpoints_checked} checkpoints before it are intact"
                ),
            };
            if let (Some(_), Some(violation)) = (&report.violation, &checkpoint_violation) {
                text.push_str(&format!("\nalso: {violation}"));
            }
            let valid = report.is_valid() && checkpoint_violation.is_none();
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
                "valid": valid,
                "events_checked": report.events_checked,
                "last_seq": report.last_seq,
                "violation": report.violation,
                "checkpoints_checked": checkpoints_checked,
                "checkpoint_violation": checkpoint_violation,
                "pending": report.pending,
                "oldest_pending": report.oldest_pending.map(|t| t.and_utc().to_rfc3339()),
                "message": text,
            });
            print(json, &value, &text);
            Ok(if valid { ExitCode::SUCCESS } else { ExitCode::FAILURE })
        }
        AuditCommand::Export { filters, format, output } => {
            let format = audit::export::Format::parse(&format)
                .ok_or_else(|| CliError::Other(format!("`{format}` is not csv or jsonl")))?;
            let written = match &output {
                Some(path) => {
                    let file = std::fs::File::create(path)
                        .map_err(|e| CliError::Other(format!("cannot create {}: {e}", path.display())))?;
                    let mut file = std::io::BufWriter::new(file);
                    let n = export(&mut conn, backend, *filters, format, &mut file, true)?;
                    eprintln!("wrote {n} events to {}", path.display());
                    n
                }
                None => {
                    let stdout = std::io::stdout();
                    let mut lock = std::io::BufWriter::new(stdout.lock());
                    export(&mut conn, backend, *filters, format, &mut lock, false)?
                }
            };
            tracing::debug!(written, "audit export done");
            Ok(ExitCode::SUCCESS)
        }
        AuditCommand::Key(command) => {
            let key = match command {
                AuditKeyCommand::Show => audit::checkpoint::ensure_key(&mut conn, &backend.secrets),
                AuditKeyCommand::Rotate => {
                    audit::checkpoint::rotate_key(&mut conn, &backend.secrets, &crate::accounts::manage::Actor::cli().0)
                }
            }
            .map_err(|e| CliError::Other(e.to_string()))?;
            let out = AuditKeyOut::from(key);
            let text = out.public_key.clone();
            print(json, &out, &text);
            Ok(ExitCode::SUCCESS)
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
