//! `wxfed demo`: see `crate::demo`. Reads no settings file and no
//! `WXFED_*` database settings: the demo makes its own database, and a
//! database it is pointed at must be empty (it is refused otherwise).

use std::net::SocketAddr;
use std::process::ExitCode;

use clap::Args;

use super::CliError;
use crate::demo::{self, DemoOptions};

#[derive(Args, Debug)]
pub struct DemoArgs {
    /// Address to listen on (port 0 picks a free port).
    #[arg(long, default_value = "127.0.0.1:8080")]
    bind: SocketAddr,
    /// Use this empty database instead of a temporary SQLite file
    /// (refused when it holds anything). Default: WXFED_DATABASE_URL when
    /// set, which must then be empty too.
    #[arg(long, value_name = "URL")]
    database: Option<String>,
    /// Language of pages without a language choice: zh-CN or en.
    #[arg(long, default_value = "zh-CN", value_parser = parse_locale)]
    lang: crate::i18n::Locale,
}

fn parse_locale(value: &str) -> Result<crate::i18n::Locale, String> {
    crate::i18n::Locale::parse(value).ok_or_else(|| format!("`{value}` is not zh-CN or en"))
}

pub fn run(args: DemoArgs) -> Result<ExitCode, CliError> {
    // A database named in the environment is checked like --database: the
    // demo must never seed demo data into a real installation.
    let database = args.database.or_else(|| std::env::var("WXFED_DATABASE_URL").ok().filter(|v| !v.is_empty()));
    let options = DemoOptions { bind: args.bind, database, locale: args.lang };
    actix_web::rt::System::new().block_on(async move {
        let demo = demo::start(options).await.map_err(|e| CliError::Other(e.to_string()))?;
        println!("{}", demo.banner());
        tracing::info!(port = demo.app.port(), "wxfed demo is listening");
        // Ctrl-C (SIGINT) or SIGTERM stops the server (actix's signal
        // handling); dropping the directory then removes everything.
        let (dir, _) = demo.run_until_stopped().await.map_err(|e| CliError::Other(e.to_string()))?;
        let path = dir.path().to_owned();
        dir.close().map_err(|e| CliError::Other(format!("cannot remove {}: {e}", path.display())))?;
        println!("wxfed demo stopped; removed {}", path.display());
        Ok(ExitCode::SUCCESS)
    })
}
