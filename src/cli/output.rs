//! Printing results and errors for people or for scripts.

use serde::Serialize;

use crate::accounts::manage::ManageError;

#[derive(Debug, thiserror::Error)]
pub enum CliError {
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    #[error(transparent)]
    Startup(#[from] crate::startup::StartupError),
    #[error(transparent)]
    Manage(#[from] ManageError),
    #[error(transparent)]
    Client(#[from] crate::oidc::clients::ClientError),
    #[error("database error: {0}")]
    Db(#[from] diesel::result::Error),
    #[error("{0}")]
    Other(String),
}

/// Prints `value` as JSON, or `text` for people.
pub fn print(json: bool, value: &impl Serialize, text: &str) {
    if json {
        match serde_json::to_string_pretty(value) {
            Ok(out) => println!("{out}"),
            Err(e) => eprintln!("wxfed: error: cannot serialize output: {e}"),
        }
    } else {
        println!("{text}");
    }
}

/// Errors go to stderr as one line (as JSON with --json).
pub fn print_error(json: bool, error: &CliError) {
    // Database drivers report over several lines; operators get one.
    let message = error.to_string().split_whitespace().collect::<Vec<_>>().join(" ");
    if json {
        eprintln!("{}", serde_json::json!({ "error": message }));
    } else {
        eprintln!("wxfed: error: {message}");
    }
}
