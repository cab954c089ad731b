//! The command line: `serve`, `migrate`, `user …`, `audit …`, `keys …`.
//! Output is for people by default; `--json` prints objects with stable
//! field names for scripts. The CLI uses the same settings (file and
//! environment) as the server, so both can work on one database at once.

mod audit;
mod client;
mod config;
mod demo;
mod import;
mod merge;
mod migrate_data;
mod output;
mod user;
mod wechat;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::config::Settings;
use crate::startup::{self, Application};
use crate::telemetry;

pub use output::CliError;

#[derive(Parser, Debug)]
#[command(
    name = "wxfed",
    version,
    about = "OpenID Connect provider federating WeChat identities with enterprise accounts"
)]
#[command(long_about = "OpenID Connect provider federating WeChat identities with enterprise accounts.\n\n\
Settings come from defaults, then an optional TOML file (--config), then WXFED_* environment \
variables (e.g. WXFED_DATABASE_URL, WXFED_BIND, WXFED_ISSUER, WXFED_MASTER_KEY). With no settings \
at all, wxfed uses SQLite in ./wxfed-data/ and listens on http://127.0.0.1:8080.")]
pub struct Cli {
    /// TOML settings file (keys as in the environment, without WXFED_ and in lower case).
    #[arg(long, global = true, env = "WXFED_CONFIG", value_name = "FILE")]
    config: Option<PathBuf>,

    /// Print machine-readable JSON instead of text.
    #[arg(long, global = true)]
    json: bool,

    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run the server (creates and migrates the database on first start).
    Serve,
    /// Try every flow on this machine: a temporary database, the WeChat
    /// simulator, demo accounts and a sample app; a walk-through at /demo.
    /// Ctrl-C removes everything it made.
    Demo(demo::DemoArgs),
    /// Apply pending database migrations and exit.
    Migrate,
    /// Copy everything from a SQLite database into a new, empty PostgreSQL
    /// database (accounts, identities, clients, keys, grants, the whole
    /// audit trail), then verify the counts and the audit chain there.
    MigrateData(migrate_data::MigrateDataArgs),
    /// Manage enterprise accounts.
    #[command(subcommand)]
    User(user::UserCommand),
    /// Account operations across two accounts (merge).
    #[command(subcommand)]
    Account(merge::AccountCommand),
    /// Manage OAuth/OIDC clients (relying parties).
    #[command(subcommand)]
    Client(client::ClientCommand),
    /// Manage WeChat apps (mini-programs, official accounts, websites, mobile apps).
    #[command(subcommand)]
    WechatApp(wechat::WechatAppCommand),
    /// Link a WeChat identity to an account. An identity wxfed has never
    /// seen (a UnionID, or an app's OpenID) is created: the person's first
    /// WeChat login then lands on this account (pre-provisioning).
    Link(wechat::LinkArgs),
    /// Unlink a WeChat identity from an account.
    Unlink(wechat::LinkArgs),
    /// Inspect WeChat identities.
    #[command(subcommand)]
    Identity(wechat::IdentityCommand),
    /// Inspect the audit trail.
    #[command(subcommand)]
    Audit(audit::AuditCommand),
    /// Bulk import (accounts from CSV or JSON Lines).
    #[command(subcommand)]
    Import(import::ImportCommand),
    /// Key material.
    #[command(subcommand)]
    Keys(KeysCommand),
    /// The settings: check them, or print their reference.
    #[command(subcommand)]
    Config(config::ConfigCommand),
}

#[derive(Subcommand, Debug)]
enum KeysCommand {
    /// Print a new random master key (for WXFED_MASTER_KEY or a key file).
    GenerateMaster,
    /// List token signing keys.
    List,
    /// Replace the signing keys. New keys are published at once and sign
    /// only after every server has reloaded its keys and relying parties'
    /// JWKS caches have expired (WXFED_KEY_RELOAD_SECS + 90 s); the old
    /// ones then stay in the JWKS until the tokens they signed have expired.
    Rotate {
        /// Rotate only this algorithm's key (RS256, ES256 or EdDSA); default all.
        #[arg(long, value_parser = parse_alg)]
        alg: Option<crate::oidc::signing::SigningAlgorithm>,
    },
}

/// Entry point of the `wxfed` binary.
pub fn main() -> ExitCode {
    // OpenSSL initialized by us first, without its exit-time cleanup
    // (OPENSSL_INIT_NO_ATEXIT): libpq initializes it too and would register
    // that cleanup, which then frees OpenSSL under a pool thread still
    // opening a connection at exit (a SIGSEGV after the output).
    openssl_sys::init();
    let cli = Cli::parse();
    let json = cli.json;
    match run(cli) {
        Ok(code) => code,
        Err(error) => {
            output::print_error(json, &error);
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> Result<ExitCode, CliError> {
    if let Command::Keys(KeysCommand::GenerateMaster) = cli.command {
        let key = crate::secrets::generate_master_key();
        output::print(cli.json, &serde_json::json!({ "master_key": key }), &key);
        return Ok(ExitCode::SUCCESS);
    }
    // Needs no settings, database or master key: only the file and the keys.
    if let Command::Audit(audit::AuditCommand::VerifyExport { file, public_keys }) = &cli.command {
        return audit::verify_export(file, public_keys, cli.json);
    }
    // Reads the settings itself: it reports every problem, not the first.
    if let Command::Config(command) = &cli.command {
        return Ok(config::run(command, cli.config.as_deref(), cli.json));
    }
    if let Command::Demo(args) = cli.command {
        telemetry::init(crate::config::LogFormat::Text, "warn", true);
        return demo::run(args);
    }
    let settings = Settings::load(cli.config.as_deref())?;
    if let Command::MigrateData(args) = &cli.command {
        telemetry::init(settings.log_format, "warn", true);
        return migrate_data::run(args, &settings, cli.json);
    }
    match cli.command {
        Command::Serve => {
            telemetry::init(settings.log_format, &settings.log_level, false);
            serve(settings)?;
            Ok(ExitCode::SUCCESS)
        }
        command => {
            // Commands print their results on stdout; logs go to stderr.
            telemetry::init(settings.log_format, "warn", true);
            // One connection (and a spare) is all a command needs: a full
            // server pool per CLI run would take slots from the servers.
            let backend =
                startup::open_backend_with(&settings, crate::db::PoolOptions::for_cli(settings.database_pool.session))?;
            let result = match command {
                Command::Migrate => {
                    output::print(cli.json, &serde_json::json!({ "status": "migrated" }), "database is up to date");
                    Ok(ExitCode::SUCCESS)
                }
                Command::User(command) => user::run(command, &backend, cli.json),
                Command::Audit(command) => audit::run(command, &backend, &settings, cli.json),
                Command::Client(command) => client::run(command, &backend, cli.json),
                Command::Account(command) => merge::run(command, &backend, cli.json),
                Command::WechatApp(command) => wechat::run_app(command, &backend, cli.json),
                Command::Link(args) => wechat::run_link(&args, &backend, cli.json),
                Command::Unlink(args) => wechat::run_unlink(&args, &backend, cli.json),
                Command::Identity(command) => wechat::run_identity(command, &backend, cli.json),
                Command::Import(command) => import::run(command, &backend, cli.json),
                Command::Keys(command) => keys(command, &backend, &settings, cli.json),
                Command::Serve | Command::MigrateData(_) | Command::Config(_) | Command::Demo(_) => {
                    Ok(ExitCode::SUCCESS)
                }
            };
            // Chain the events this command recorded (group commit): a
            // CLI-only installation has no server to do it.
            audit::chain_on_exit(&backend);
            result
        }
    }
}

fn parse_alg(value: &str) -> Result<crate::oidc::signing::SigningAlgorithm, String> {
    value.parse().map_err(|_| format!("`{value}` is not RS256, ES256 or EdDSA"))
}

fn keys(
    command: KeysCommand,
    backend: &startup::Backend,
    settings: &Settings,
    json: bool,
) -> Result<ExitCode, CliError> {
    use crate::oidc::keys;
    let mut conn = backend.pool.get().map_err(|e| CliError::Other(e.to_string()))?;
    // Make sure the first keys exist (a fresh database has none yet).
    keys::KeyStore::load_or_init(&mut conn, &backend.secrets).map_err(|e| CliError::Other(e.to_string()))?;
    if let KeysCommand::Rotate { alg } = command {
        let algs = match alg {
            Some(alg) => vec![alg],
            None => crate::oidc::signing::SigningAlgorithm::ALL.to_vec(),
        };
        // Keep retired keys published until every token they signed has
        // expired, plus a margin for clock skew and caches.
        let keep =
            chrono::Duration::seconds(i64::try_from(settings.tokens.longest_signed_secs()).unwrap_or(3600) + 300);
        let lead = keys::publication_lead(settings.key_reload_secs);
        let rotated =
            keys::rotate(&mut conn, &backend.secrets, &crate::accounts::manage::Actor::cli(), &algs, lead, keep)
                .map_err(|e| CliError::Other(e.to_string()))?;
        let kids: Vec<&str> = rotated.iter().map(|k| k.kid.as_str()).collect();
        let text = rotated
            .iter()
            .map(|k| format!("new {} key {} (published now, signs from {})", k.alg, k.kid, k.signs_from))
            .collect::<Vec<_>>()
            .join("\n");
        output::print(json, &serde_json::json!({ "rotated_to": kids, "keys": rotated }), &text);
        return Ok(ExitCode::SUCCESS);
    }
    let list = keys::list(&mut conn)?;
    let text = list
        .iter()
        .map(|k| format!("{}  {}  {}  created {}", k.kid, k.alg, k.status, k.created_at))
        .collect::<Vec<_>>()
        .join("\n");
    output::print(json, &list, &text);
    Ok(ExitCode::SUCCESS)
}

fn serve(settings: Settings) -> Result<(), CliError> {
    actix_web::rt::System::new().block_on(async move {
        let issuer = settings.issuer.clone();
        let app = Application::build(settings)?;
        tracing::info!(port = app.port(), %issuer, "wxfed is listening");
        app.run_until_stopped().await.map_err(|e| CliError::Other(e.to_string()))?;
        tracing::info!("wxfed stopped");
        Ok(())
    })
}
