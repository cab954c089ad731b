//! `wxfed migrate-data --from sqlite://… --to postgres://…` (issue 12 §5):
//! moves an installation from the embedded SQLite default to PostgreSQL.
//!
//! The source is opened like any wxfed database (migrated to this
//! version, its master key checked) and its pending audit events are
//! chained first, so the target receives a complete chain. The target
//! gets wxfed's schema and must have no rows. After the copy, each
//! table's count and the whole audit trail (chain and signed checkpoints)
//! are verified on the target. The target then runs with the same master
//! key (its sealed secrets are the source's).

use std::process::ExitCode;

use super::output::{CliError, print};
use crate::config::Settings;
use crate::db::{self, DatabaseTarget, copy};
use crate::{audit, startup};

#[derive(clap::Args, Debug)]
pub struct MigrateDataArgs {
    /// The SQLite database to copy from (sqlite://PATH).
    #[arg(long, value_name = "URL")]
    from: String,
    /// The empty PostgreSQL database to copy into (postgres://…).
    #[arg(long, value_name = "URL")]
    to: String,
}

pub fn run(args: &MigrateDataArgs, settings: &Settings, json: bool) -> Result<ExitCode, CliError> {
    let from = DatabaseTarget::parse(&args.from).map_err(|e| CliError::Other(format!("--from: {e}")))?;
    let to = DatabaseTarget::parse(&args.to).map_err(|e| CliError::Other(format!("--to: {e}")))?;
    let (DatabaseTarget::Sqlite(_), DatabaseTarget::Postgres(_)) = (&from, &to) else {
        return Err(CliError::Other(
            "migrate-data copies a SQLite database (--from sqlite://…) into PostgreSQL (--to postgres://…)".into(),
        ));
    };
    if let DatabaseTarget::Sqlite(path) = &from
        && !path.exists()
    {
        return Err(CliError::Other(format!("--from: no database at {}", path.display())));
    }
    let mut source_settings = settings.clone();
    source_settings.database = from;
    let source =
        startup::open_backend_with(&source_settings, db::PoolOptions::for_cli(settings.database_pool.session))?;
    let mut source_conn = source.pool.get().map_err(|e| CliError::Other(e.to_string()))?;
    audit::chainer::chain_pending(&mut source_conn)?;

    let mut target = db::establish(&to).map_err(|e| CliError::Other(format!("--to: cannot connect: {e}")))?;
    db::run_migrations(&mut target).map_err(|e| CliError::Other(format!("--to: {e}")))?;
    let copied = copy::copy_sqlite_to_postgres(&mut source_conn, &mut target, |table| {
        if !json {
            eprintln!("copied {:>9} rows of {}", table.rows, table.table);
        }
    })
    .map_err(|e| CliError::Other(e.to_string()))?;

    let chain = audit::verify(&mut target, source.secrets.audit_chain_key())?;
    let (checkpoints, checkpoint_violation) = audit::checkpoint::verify(&mut target)?;
    let problem = match (&chain.violation, &checkpoint_violation) {
        (Some(v), _) => Some(format!("the copied audit chain does not verify: {v}")),
        (None, Some(v)) => Some(format!("the copied checkpoints do not verify: {v}")),
        (None, None) => None,
    };
    let rows: i64 = copied.iter().map(|t| t.rows).sum();
    let value = serde_json::json!({
        "tables": copied,
        "rows": rows,
        "audit_events_verified": chain.events_checked,
        "checkpoints_verified": checkpoints,
        "ok": problem.is_none(),
        "problem": problem,
    });
    let text = match &problem {
        None => format!(
            "copied {rows} rows in {} tables; counts match; audit chain OK ({} events, {checkpoints} signed checkpoints)\n\
             run wxfed on the target with the same master key",
            copied.len(),
            chain.events_checked
        ),
        Some(problem) => format!("copied {rows} rows, but {problem}"),
    };
    print(json, &value, &text);
    Ok(if problem.is_none() { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}
