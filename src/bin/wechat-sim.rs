//! `wechat-sim`: the WeChat API simulator as a program, for demos and
//! docker-compose. All logic lives in the library (`wxfed::wechat_sim`).

use std::net::{SocketAddr, TcpListener};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use wxfed::wechat_sim::{self, Seed, Simulator};

/// A faithful simulator of WeChat's login APIs (both api.weixin.qq.com
/// and open.weixin.qq.com paths), with a control API under /__sim/.
#[derive(Debug, Parser)]
#[command(name = "wechat-sim", version)]
struct Args {
    /// Address to listen on (port 0 picks a free port).
    #[arg(long, default_value = "127.0.0.1:9000", env = "WECHAT_SIM_BIND")]
    bind: SocketAddr,
    /// A JSON file `{"apps": [...], "users": [...]}` in the control API's
    /// shapes, loaded at start.
    #[arg(long, env = "WECHAT_SIM_SEED")]
    seed: Option<PathBuf>,
}

#[actix_web::main]
async fn main() -> ExitCode {
    match run(Args::parse()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("wechat-sim: {message}");
            ExitCode::FAILURE
        }
    }
}

async fn run(args: Args) -> Result<(), String> {
    let simulator = Simulator::new();
    if let Some(path) = &args.seed {
        let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        let seed: Seed = serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
        simulator.apply_seed(seed).map_err(|e| format!("{}: {e}", path.display()))?;
    }
    let listener = TcpListener::bind(args.bind).map_err(|e| format!("cannot listen on {}: {e}", args.bind))?;
    let handle = wechat_sim::start_with(listener, simulator).map_err(|e| e.to_string())?;
    // The first line of output is the base URL, so scripts can read it.
    println!("{}", handle.base_url);
    handle.stopped().await.map_err(|e| e.to_string())
}
