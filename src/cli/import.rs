//! `wxfed import accounts FILE [--dry-run]`.

use std::io::{BufReader, Read};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Subcommand};

use super::output::{CliError, print};
use crate::accounts::import::{self, Format, ImportError, Reader};
use crate::accounts::manage::Actor;
use crate::startup::Backend;

#[derive(Subcommand, Debug)]
pub enum ImportCommand {
    /// Import accounts from a CSV or JSON Lines file (columns: username,name,
    /// email,email_verified,phone,phone_verified,roles,unionid,openids).
    /// Every line is checked first; with any error nothing is imported.
    Accounts(ImportArgs),
}

#[derive(Args, Debug)]
pub struct ImportArgs {
    /// The file (.csv or .jsonl; otherwise detected from its content).
    file: PathBuf,
    /// Check every line and report what would happen, changing nothing.
    #[arg(long)]
    dry_run: bool,
    /// The Open Platform of the file's UnionIDs (default: the only one registered).
    #[arg(long, value_name = "NAME")]
    open_platform: Option<String>,
    /// Why (recorded in the audit trail).
    #[arg(long)]
    reason: Option<String>,
}

fn other(e: ImportError) -> CliError {
    CliError::Other(e.to_string())
}

pub fn run(command: ImportCommand, backend: &Backend, json: bool) -> Result<ExitCode, CliError> {
    let ImportCommand::Accounts(args) = command;
    let meta = std::fs::metadata(&args.file)
        .map_err(|e| CliError::Other(format!("cannot read {}: {e}", args.file.display())))?;
    if meta.len() > import::MAX_FILE_BYTES {
        return Err(other(ImportError::TooLarge));
    }
    let mut head = [0u8; 64];
    let n = std::fs::File::open(&args.file).and_then(|mut f| f.read(&mut head)).map_err(|e| other(e.into()))?;
    let format = Format::detect(&args.file.to_string_lossy(), &head[..n]);
    let path = args.file.clone();
    let mut open = move || -> Result<Reader<BufReader<std::fs::File>>, ImportError> {
        Reader::new(format, BufReader::new(std::fs::File::open(&path)?))
    };
    let mut conn = backend.pool.get().map_err(|e| CliError::Other(e.to_string()))?;
    let reason = args.reason.as_deref().map(str::trim).filter(|r| !r.is_empty()).unwrap_or("wxfed import");
    let report = import::import(
        &mut conn,
        &backend.secrets,
        &Actor::cli(),
        &mut open,
        import::Options { open_platform: args.open_platform.as_deref(), reason, dry_run: args.dry_run },
        // Progress on stderr, so stdout stays the report.
        &mut |done| eprint!("\rimported {done} lines"),
    )
    .map_err(other)?;
    if report.imported {
        eprintln!();
    }
    let mut text: Vec<String> = report
        .outcomes
        .iter()
        .map(|o| match &o.error {
            Some(e) => format!("line {}: error: {e}", o.line),
            None => format!("line {}: {} {} ({} links)", o.line, o.action, o.username, o.links),
        })
        .collect();
    text.push(if report.errors > 0 {
        format!("{} lines, {} errors: nothing imported", report.lines, report.errors)
    } else {
        format!(
            "{} lines: {} accounts created, {} updated, {} unchanged, {} identities linked{}",
            report.lines,
            report.created,
            report.updated,
            report.unchanged,
            report.links,
            if report.dry_run { " (dry run: nothing changed)" } else { "" }
        )
    });
    print(json, &report, &text.join("\n"));
    Ok(if report.errors > 0 { ExitCode::FAILURE } else { ExitCode::SUCCESS })
}
