//! `wxfed config check` and `wxfed config reference` (issue 12 §7).

use std::path::Path;
use std::process::ExitCode;

use clap::Subcommand;
use serde::Serialize;

use crate::config::{EffectiveSetting, Settings, Source};

#[derive(Subcommand, Debug)]
pub enum ConfigCommand {
    /// Read and validate the settings as `serve` would, list every problem
    /// and print each setting's effective value and source (secrets
    /// redacted). Exit status 0: valid, 2: invalid, 1: --connect failed.
    Check {
        /// Also connect to the database: reachable, migrations applied, and
        /// the master key the one it was set up with. Changes nothing.
        #[arg(long)]
        connect: bool,
    },
    /// Print the configuration reference (docs/configuration.md) as Markdown.
    Reference,
}

/// Exit status of an invalid configuration (1 stays "the command failed").
const INVALID: u8 = 2;

#[derive(Serialize)]
struct Problem {
    setting: String,
    message: String,
}

#[derive(Serialize)]
struct Report<'a> {
    valid: bool,
    errors: Vec<Problem>,
    settings: &'a [EffectiveSetting],
    #[serde(skip_serializing_if = "Option::is_none")]
    connect: Option<crate::startup::BackendCheck>,
    #[serde(skip_serializing_if = "Option::is_none")]
    connect_error: Option<String>,
}

pub fn run(command: &ConfigCommand, config_file: Option<&Path>, json: bool) -> ExitCode {
    let connect = match command {
        ConfigCommand::Reference => {
            print!("{}", crate::config::reference_markdown());
            return ExitCode::SUCCESS;
        }
        ConfigCommand::Check { connect } => *connect,
    };
    let checked = Settings::check(config_file);
    let errors: Vec<Problem> = match &checked.settings {
        Ok(_) => Vec::new(),
        Err(errors) => {
            errors.iter().map(|e| Problem { setting: e.setting.clone(), message: e.message.clone() }).collect()
        }
    };
    let (connect_result, connect_error) = match (&checked.settings, connect) {
        (Ok(settings), true) => match crate::startup::check_backend(settings) {
            Ok(report) => (Some(report), None),
            // One line, as every CLI error (drivers report over several).
            Err(e) => (None, Some(e.to_string().split_whitespace().collect::<Vec<_>>().join(" "))),
        },
        _ => (None, None),
    };
    let report = Report {
        valid: errors.is_empty(),
        errors,
        settings: &checked.effective,
        connect: connect_result,
        connect_error,
    };
    if json {
        match serde_json::to_string_pretty(&report) {
            Ok(out) => println!("{out}"),
            Err(e) => eprintln!("wxfed: error: cannot serialize output: {e}"),
        }
    } else {
        print_text(&report);
    }
    if !report.valid {
        ExitCode::from(INVALID)
    } else if report.connect_error.is_some() {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

fn print_text(report: &Report<'_>) {
    if report.valid {
        println!("configuration is valid");
    } else {
        println!("configuration is invalid ({} problem(s)):", report.errors.len());
        for problem in &report.errors {
            println!("  invalid setting {}: {}", problem.setting, problem.message);
        }
    }
    println!();
    let width = report.settings.iter().map(|s| s.env.len()).max().unwrap_or(0);
    for setting in report.settings {
        let source = match setting.source {
            Source::Default => "default",
            Source::File => "file",
            Source::Env => "env",
        };
        let value = match (&setting.value, setting.default_note) {
            (Some(value), _) if value.is_empty() => "(empty)".to_owned(),
            (Some(value), _) => value.clone(),
            (None, Some(note)) if note.starts_with("unset") => note.replace('`', ""),
            (None, Some(note)) => format!("unset: {}", note.replace('`', "")),
            (None, None) => "(unset)".to_owned(),
        };
        println!("{:width$}  {source:7}  {value}", setting.env);
    }
    if let Some(check) = &report.connect {
        println!();
        println!("database: reachable ({})", check.backend);
        match check.pending_migrations {
            Some(n) => println!("migrations: {n} pending"),
            None => println!("migrations: the database does not exist yet"),
        }
        println!("master key: {}", check.master_key);
    }
    if let Some(error) = &report.connect_error {
        println!();
        println!("connect: failed: {error}");
    }
}
