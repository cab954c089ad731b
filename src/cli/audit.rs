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
    /// Check a JSON Lines export with only the audit public key (no
    /// database, no master key): every row present, in order, unedited,
    /// between two signed checkpoints. Exits 1 naming the first bad line.
    VerifyExport {
        /// The export (`wxfed audit export --format jsonl`, or the console's).
        file: std::path::PathBuf,
        /// The audit public key (`wxfed audit key show`): base64 of its 32
        /// raw bytes. Repeat for keys retired during the range.
        #[arg(long = "public-key", value_name = "KEY", required = true)]
        public_keys: Vec<String>,
    },
    /// Apply the retention periods (`WXFED_AUDIT_RETENTION_<CATEGORY>_DAYS`):
    /// strip the content of older events a signed checkpoint covers, and
    /// record the prune. Servers also do this daily.
    Prune,
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

/// Streams the selected events to `out` chunk by chunk; returns how many.
fn export(
    conn: &mut db::DbConn,
    backend: &Backend,
    filters: ExportFilters,
    format: audit::export::Format,
    out: &mut dyn std::io::Write,
    progress: bool,
) -> Result<u64, CliError> {
    let params = audit::query::FilterParams::from(filters).normalized();
    let filters = params.parse().map_err(|e| CliError::Other(e.to_string()))?;
    let event = audit::AuditEvent::success(audit::Action::AuditExported)
        .with_actor(crate::accounts::manage::Actor::cli().0)
        .with_detail("filters", serde_json::to_value(&params).unwrap_or_default())
        .with_detail("format", format.as_str())
        .with_detail("surface", "cli");
    audit::record(conn, &backend.secrets, &event)?;
    // Chains everything recorded so far (a CLI-only installation has no
    // server chaining) and, for JSON Lines, signs the proof's checkpoints.
    let mut export = audit::export::Export::prepare(conn, &backend.secrets, format, params, filters)
        .map_err(|e| CliError::Other(e.to_string()))?;
    let io = |e: std::io::Error| CliError::Other(format!("cannot write the export: {e}"));
    while let Some(chunk) = export.next_chunk(conn)? {
        out.write_all(&chunk).map_err(io)?;
        if progress {
            eprint!("\rexported {} events", export.written);
        }
    }
    out.flush().map_err(io)?;
    if progress {
        eprintln!();
    }
    Ok(export.written)
}

/// `wxfed audit verify-export`: reads nothing but the file and the keys.
pub fn verify_export(file: &std::path::Path, public_keys: &[String], json: bool) -> Result<ExitCode, CliError> {
    let input =
        std::fs::File::open(file).map_err(|e| CliError::Other(format!("cannot open {}: {e}", file.display())))?;
    match audit::proof::verify(std::io::BufReader::new(input), public_keys) {
        Ok(report) => {
            let mut text = format!(
                "export OK: rows {} to {} complete and unedited, signed at {}{}; {} events selected, {} left out, {} pruned by retention",
                report.from_seq,
                report.to_seq,
                report.start_signed_at.as_deref().map(|s| format!("{s} and ")).unwrap_or_default(),
                report.end_signed_at,
                report.events,
                report.omitted,
                report.pruned
            );
            if report.unproven_v1 > 0 {
                text.push_str(&format!(
                    "\n{} rows were chained before link version 2: present and in order, but their content is not proven",
                    report.unproven_v1
                ));
            }
            if report.content_filters_unchecked {
                text.push_str("\nthe ip / q filters look at content: rows left out are not proven not to match them");
            }
            let value = serde_json::json!({ "valid": true, "report": report, "message": text });
            print(json, &value, &text);
            Ok(ExitCode::SUCCESS)
        }
        Err(problem) => {
            let text = format!("export BROKEN: {problem}");
            let value = serde_json::json!({ "valid": false, "line": problem.line, "problem": problem.message, "message": text });
            print(json, &value, &text);
            Ok(ExitCode::FAILURE)
        }
    }
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
        .and_then(|mut conn| audit::chainer::chain_pending(&mut conn).map_err(|e| e.to_string()));
    if let Err(error) = result {
        tracing::warn!(%error, "chaining audit events failed; a running server will chain them");
    }
}

pub fn run(
    command: AuditCommand,
    backend: &Backend,
    settings: &crate::config::Settings,
    json: bool,
) -> Result<ExitCode, CliError> {
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
                "pruned": report.pruned,
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
        AuditCommand::VerifyExport { file, public_keys } => verify_export(&file, &public_keys, json),
        AuditCommand::Prune => {
            let actor = crate::accounts::manage::Actor::cli().0;
            let report = audit::retention::prune(
                &mut conn,
                &backend.secrets,
                &settings.audit_retention_days,
                db::now(),
                &actor,
            )?;
            let text = match report.through_seq {
                None => {
                    "nothing pruned: no signed checkpoint yet (a running server signs one within a minute)".to_owned()
                }
                Some(_) if report.categories.is_empty() => {
                    "nothing to prune: no retention period is set (WXFED_AUDIT_RETENTION_<CATEGORY>_DAYS)".to_owned()
                }
                Some(seq) => report
                    .categories
                    .iter()
                    .map(|c| {
                        format!(
                            "{}: {} events older than {} days pruned (through row {seq})",
                            c.category, c.pruned, c.retention_days
                        )
                    })
                    .collect::<Vec<_>>()
                    .join("\n"),
            };
            print(json, &report, &text);
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
