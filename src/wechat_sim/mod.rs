//! A faithful WeChat API simulator for development and tests.
//!
//! One HTTP server answers the paths of both WeChat hosts
//! (`api.weixin.qq.com` and `open.weixin.qq.com`), so wxfed's
//! `WXFED_WECHAT_API_BASE` and `WXFED_WECHAT_OPEN_BASE` can both point at
//! [`SimulatorHandle::base_url`]. What it does follows
//! `wechat-api.md` (in the shared docs): per-app OpenIDs, per-Open-Platform UnionIDs,
//! single-use codes that expire, errors as HTTP 200 with errcode and a
//! `rid`, `text/plain` on `/sns/*`, rotating session keys, token
//! re-issue rules. A control API under `/__sim/` (and the same operations
//! on [`Simulator`]) sets up apps and users, mints codes, injects faults,
//! counts calls and moves a simulated clock.
//!
//! Modules, one job each: `model` (input and output shapes), `ids`
//! (identifiers), `state` (the stores, the clock and the control
//! operations), `wire` (WeChat's response conventions), `gate` (counting,
//! faults and Content-Type around every WeChat call), `sns`, `cgi` and
//! `pages` (the WeChat endpoints), `control` (the `/__sim/` routes).

mod cgi;
mod control;
mod gate;
mod ids;
mod model;
mod pages;
mod sns;
mod state;
mod wire;

use std::io;
use std::net::{SocketAddr, TcpListener};

use actix_web::dev::ServerHandle;
use actix_web::middleware::from_fn;
use actix_web::rt::task::JoinHandle;
use actix_web::{App, HttpResponse, HttpServer, web};

pub use model::{AppKind, Fault, Identity, NewApp, NewUser, Seed, SimError};
pub use state::Simulator;

/// A running simulator.
pub struct SimulatorHandle {
    /// `http://127.0.0.1:PORT`, no trailing slash.
    pub base_url: String,
    simulator: Simulator,
    server: ServerHandle,
    task: JoinHandle<io::Result<()>>,
}

impl std::fmt::Debug for SimulatorHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimulatorHandle").field("base_url", &self.base_url).finish_non_exhaustive()
    }
}

impl SimulatorHandle {
    /// The shared state, for tests that prefer calling Rust directly.
    pub fn state(&self) -> Simulator {
        self.simulator.clone()
    }

    /// Stops the server, letting in-flight requests finish.
    pub async fn stop(&self) {
        self.server.stop(true).await;
    }

    /// Waits until the server stops (on SIGINT/SIGTERM, or [`Self::stop`]).
    pub async fn stopped(self) -> io::Result<()> {
        self.task.await.map_err(io::Error::other)?
    }
}

/// Starts an empty simulator on `listener` inside the current actix/tokio
/// runtime (tests call this in `#[actix_web::test]`).
pub fn start(listener: TcpListener) -> io::Result<SimulatorHandle> {
    start_with(listener, Simulator::new())
}

/// Starts a simulator serving `simulator` (for instance one loaded from a
/// seed file) on `listener`.
pub fn start_with(listener: TcpListener, simulator: Simulator) -> io::Result<SimulatorHandle> {
    let base_url = base_url(listener.local_addr()?);
    let data = web::Data::new(simulator.clone());
    let server = HttpServer::new(move || {
        App::new()
            .app_data(data.clone())
            .wrap(from_fn(gate::gate))
            .configure(wechat_routes)
            .configure(control::routes)
            .default_service(web::to(not_found))
    })
    // One worker is plenty for a simulator and keeps parallel tests light.
    .workers(1)
    .shutdown_timeout(1)
    .listen(listener)?
    .run();
    let server_handle = server.handle();
    let task = actix_web::rt::spawn(server);
    Ok(SimulatorHandle { base_url, simulator, server: server_handle, task })
}

/// The URL clients use: an unspecified bind address (0.0.0.0) is reached
/// through loopback.
fn base_url(addr: SocketAddr) -> String {
    let ip = match addr.ip() {
        ip if !ip.is_unspecified() => ip,
        std::net::IpAddr::V4(_) => std::net::Ipv4Addr::LOCALHOST.into(),
        std::net::IpAddr::V6(_) => std::net::Ipv6Addr::LOCALHOST.into(),
    };
    format!("http://{}", SocketAddr::new(ip, addr.port()))
}

/// WeChat's paths. The API paths take any method, reading only the query
/// string, as WeChat does (a JSON body to jscode2session gets 41002); the
/// two POST APIs answer 43002 to other methods.
fn wechat_routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/sns/jscode2session", web::route().to(sns::jscode2session))
        .route("/sns/oauth2/access_token", web::route().to(sns::oauth2_access_token))
        .route("/sns/oauth2/refresh_token", web::route().to(sns::oauth2_refresh_token))
        .route("/sns/auth", web::route().to(sns::auth))
        .route("/sns/userinfo", web::route().to(sns::userinfo))
        .route("/cgi-bin/token", web::route().to(cgi::token))
        .route("/cgi-bin/stable_token", web::route().to(cgi::stable_token))
        .route("/wxa/business/getuserphonenumber", web::route().to(cgi::get_user_phone_number))
        .route("/connect/qrconnect", web::get().to(pages::qrconnect))
        .route("/connect/oauth2/authorize", web::get().to(pages::authorize))
        .route(pages::CONFIRM_PATH, web::post().to(pages::confirm));
}

async fn not_found() -> HttpResponse {
    HttpResponse::NotFound().content_type("text/plain; charset=utf-8").body("not a simulated WeChat path")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_urls_reach_unspecified_binds_through_loopback() {
        assert_eq!(base_url("0.0.0.0:9000".parse().unwrap()), "http://127.0.0.1:9000");
        assert_eq!(base_url("[::]:9000".parse().unwrap()), "http://[::1]:9000");
        assert_eq!(base_url("127.0.0.1:80".parse().unwrap()), "http://127.0.0.1:80");
    }
}
