//! Building the application: settings → master key → database → routes.
//! Works on any port (tests bind port 0).

use std::net::TcpListener;
use std::time::Duration;

use actix_web::dev::Server;
use actix_web::middleware::from_fn;
use actix_web::{App, HttpRequest, HttpServer, web};

use crate::accounts::password::PasswordHasher;
use crate::config::Settings;
use crate::db::{self, DatabaseTarget, DbConn, DbPool};
use crate::error::AppError;
use crate::http::paths;
use crate::oidc::keys::KeyStore;
use crate::secrets::Secrets;
use crate::state::AppState;
use crate::wechat::client::WechatClient;
use crate::{http, oidc, routes};

/// Why wxfed could not start; each says what to fix in one line.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    #[error(transparent)]
    MasterKey(#[from] crate::secrets::MasterKeyError),
    #[error(transparent)]
    Database(#[from] db::OpenError),
    #[error("the master key does not match this database (it was set up with another key)")]
    WrongMasterKey,
    #[error("database error during startup: {0}")]
    Query(#[from] diesel::result::Error),
    #[error("cannot get a database connection: {0}")]
    Pool(#[from] r2d2::Error),
    #[error("cannot listen on {0}: {1}")]
    Bind(String, std::io::Error),
    #[error("{0}")]
    Other(String),
}

/// An opened, migrated database and the secrets that go with it: what
/// both the server and the CLI start from.
pub struct Backend {
    pub pool: DbPool,
    pub secrets: Secrets,
}

/// Loads the master key, opens and migrates the database, and checks that
/// the key is the one this database was set up with. Nothing is created
/// when a check fails first (the key is read before the database is
/// touched).
pub fn open_backend(settings: &Settings) -> Result<Backend, StartupError> {
    let pool = db::PoolOptions { max_size: settings.database_pool_size, ..settings.database_pool };
    open_backend_with(settings, pool)
}

/// [`open_backend`] with a pool of another size (the CLI needs one or two
/// connections, not a server's pool).
pub fn open_backend_with(settings: &Settings, pool_options: db::PoolOptions) -> Result<Backend, StartupError> {
    let sqlite_file = match &settings.database {
        DatabaseTarget::Sqlite(path) => Some(path.as_path()),
        DatabaseTarget::Postgres(_) => None,
    };
    let secrets = Secrets::load(&settings.master_key, sqlite_file)?;
    let pool = db::open_pool(&settings.database, pool_options)?;
    let mut conn = db::startup_checkout(&pool, &pool_options)?;
    db::run_migrations(&mut conn)?;
    check_master_key(&mut conn, &secrets)?;
    drop(conn);
    Ok(Backend { pool, secrets })
}

/// The database remembers a value sealed with its master key; a different
/// key cannot open it. Catches a wrong WXFED_MASTER_KEY at startup instead
/// of at the first secret read.
fn check_master_key(conn: &mut DbConn, secrets: &Secrets) -> Result<(), StartupError> {
    const NAME: &str = "master_key_check";
    const CONTEXT: &str = "settings:master_key_check";
    let candidate = secrets.seal(CONTEXT, b"wxfed");
    let stored = db::write_transaction(conn, |conn| db::settings::get_or_insert(conn, NAME, &candidate))?;
    match secrets.open(CONTEXT, &stored) {
        Ok(value) if value == b"wxfed" => Ok(()),
        _ => Err(StartupError::WrongMasterKey),
    }
}

/// A running (not yet awaited) server and what tests need to reach it.
pub struct Application {
    port: u16,
    server: Server,
    state: AppState,
    /// The Prometheus endpoint's port and server (issue 12 §2).
    metrics: Option<(u16, Server)>,
}

impl Application {
    pub fn build(settings: Settings) -> Result<Self, StartupError> {
        let backend = open_backend(&settings)?;
        let listener =
            TcpListener::bind(settings.bind).map_err(|e| StartupError::Bind(settings.bind.to_string(), e))?;
        Self::build_with(settings, backend, listener)
    }

    pub fn build_with(settings: Settings, backend: Backend, listener: TcpListener) -> Result<Self, StartupError> {
        let port = listener.local_addr().map_err(|e| StartupError::Other(e.to_string()))?.port();
        let passwords =
            PasswordHasher::new(settings.password_hash_concurrency).map_err(|e| StartupError::Other(e.to_string()))?;
        let workers = settings.workers;
        let limits = settings.request_limits;
        let shutdown_timeout = settings.shutdown_timeout_secs;
        let connections = http::middleware::ConnectionCounter::new(settings.trusted_proxies.clone(), limits);
        let keys = {
            let mut conn = db::startup_checkout(&backend.pool, &settings.database_pool)?;
            let keys =
                KeyStore::load_or_init(&mut conn, &backend.secrets).map_err(|e| StartupError::Other(e.to_string()))?;
            // The audit key exists before the first checkpoint is due, so its
            // creation is recorded at startup like the first signing keys.
            crate::audit::checkpoint::ensure_key(&mut conn, &backend.secrets)
                .map_err(|e| StartupError::Other(e.to_string()))?;
            keys
        };
        let wechat = WechatClient::new(&settings.wechat).map_err(StartupError::Other)?;
        let metrics_bind = settings.metrics_bind;
        let state = AppState::new(settings, backend.pool, backend.secrets, passwords, keys, wechat);
        let data = web::Data::new(state.clone());
        let metrics = match metrics_bind {
            Some(address) => Some(metrics_server(address, data.clone())?),
            None => None,
        };
        let server = HttpServer::new(move || {
            App::new()
                .app_data(data.clone())
                .app_data(form_config())
                .app_data(query_config())
                .wrap(from_fn(crate::i18n::middleware))
                .wrap(from_fn(http::middleware::request_context))
                .configure(routes_table)
                .default_service(web::to(http::middleware::unmatched))
        })
        .workers(workers)
        .shutdown_timeout(shutdown_timeout)
        .client_request_timeout(Duration::from_millis(limits.client_request_timeout_ms))
        .client_disconnect_timeout(Duration::from_secs(1))
        .on_connect(move |connection, extensions| connections.on_connect(connection, extensions))
        .listen(listener)
        .map_err(|e| StartupError::Other(e.to_string()))?
        .run();
        Ok(Self { port, server, state, metrics })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The port of the metrics endpoint, when `WXFED_METRICS_BIND` is set.
    pub fn metrics_port(&self) -> Option<u16> {
        self.metrics.as_ref().map(|(port, _)| *port)
    }

    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Serves until SIGINT/SIGTERM, then finishes in-flight requests.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let sweeper = actix_web::rt::spawn(sweep_sessions(self.state.clone()));
        let key_reloader = actix_web::rt::spawn(reload_keys(self.state.clone()));
        let audit_chainer = actix_web::rt::spawn(crate::audit::chainer::run(self.state.clone()));
        let audit_retention = actix_web::rt::spawn(crate::audit::retention::run(self.state.clone()));
        let metrics = self.metrics.map(|(_, server)| {
            let handle = server.handle();
            (handle, actix_web::rt::spawn(server))
        });
        let result = self.server.await;
        if let Some((handle, task)) = metrics {
            handle.stop(true).await;
            let _ = task.await;
        }
        sweeper.abort();
        key_reloader.abort();
        audit_chainer.abort();
        audit_retention.abort();
        crate::audit::chainer::flush(&self.state).await;
        result
    }
}

/// The one route table: every URL wxfed serves and its handler, so a
/// reader finds any handler in one hop. Paths are in `http::paths`.
fn routes_table(cfg: &mut web::ServiceConfig) {
    use routes::wechat::{browser_login, facade, host_codes};
    cfg
        // Health and static files.
        .route(paths::HEALTHZ, web::get().to(routes::health::healthz))
        .route(paths::READYZ, web::get().to(routes::health::readyz))
        .route(paths::STATIC_FILE, web::get().to(routes::assets::file))
        // Browser pages.
        .route(paths::HOME, web::get().to(routes::home::home))
        .route(paths::LANG, web::get().to(routes::lang::switch))
        .route(paths::LOGIN, web::get().to(routes::login::show))
        .route(paths::LOGIN, web::post().to(routes::login::submit))
        .route(paths::LOGOUT, web::get().to(routes::logout::confirm))
        .route(paths::LOGOUT, web::post().to(routes::logout::submit))
        .route(paths::CONSENTS, web::get().to(oidc::consent::list))
        .route(paths::CONSENTS_WITHDRAW, web::post().to(oidc::consent::withdraw))
        .route(paths::AUDIT_CHECKPOINTS_JSON, web::get().to(routes::audit::checkpoints_json))
        // OpenID Provider.
        .route(paths::DISCOVERY, web::get().to(oidc::discovery::openid_configuration))
        .route(paths::JWKS, web::get().to(oidc::discovery::jwks))
        .route(paths::AUTHORIZE, web::get().to(oidc::authorize::authorize_get))
        .route(paths::AUTHORIZE, web::post().to(oidc::authorize::authorize_post))
        .route(paths::AUTHORIZE_CONSENT, web::post().to(oidc::consent::decide))
        .route(paths::TOKEN, web::post().to(oidc::token::token))
        .route(paths::USERINFO, web::get().to(oidc::userinfo::userinfo_get))
        .route(paths::USERINFO, web::post().to(oidc::userinfo::userinfo_post))
        .route(paths::REVOKE, web::post().to(oidc::revoke::revoke))
        .route(paths::INTROSPECT, web::post().to(oidc::introspect::introspect))
        .route(paths::END_SESSION, web::get().to(oidc::end_session::end_session_get))
        .route(paths::END_SESSION, web::post().to(oidc::end_session::end_session_post))
        .route(paths::END_SESSION_CONFIRM, web::post().to(oidc::end_session::confirm))
        // WeChat surfaces.
        .route(paths::WECHAT_LOGIN, web::get().to(browser_login::start))
        .route(paths::WECHAT_LOGIN_CALLBACK, web::get().to(browser_login::callback))
        .route(paths::WECHAT_LOGIN_BIND, web::post().to(browser_login::bind))
        .route(paths::HOST_WX_LOGIN_CODE, web::post().to(host_codes::issue))
        .route(paths::JSCODE2SESSION, web::get().to(facade::jscode2session))
        .route(paths::JSCODE2SESSION, web::post().to(facade::jscode2session))
        // The admin console: every /admin path is listed in admin::routes.
        .configure(crate::admin::routes)
        // The management API: every /api/admin path is listed in api::routes.
        .configure(crate::api::routes);
}

/// `GET /metrics` on its own address and one worker: scrapes never
/// compete with the public listener's workers, and the public listener
/// never serves metrics.
fn metrics_server(address: std::net::SocketAddr, data: web::Data<AppState>) -> Result<(u16, Server), StartupError> {
    crate::metrics::install();
    let listener =
        TcpListener::bind(address).map_err(|e| StartupError::Bind(format!("{address} (WXFED_METRICS_BIND)"), e))?;
    let port = listener.local_addr().map_err(|e| StartupError::Other(e.to_string()))?.port();
    let server = HttpServer::new(move || {
        App::new().app_data(data.clone()).route(paths::METRICS, web::get().to(crate::metrics::scrape))
    })
    .workers(1)
    .disable_signals()
    .listen(listener)
    .map_err(|e| StartupError::Other(e.to_string()))?
    .run();
    Ok((port, server))
}

/// Bad form bodies get a clear 400 page instead of actix's plain text.
fn form_config() -> web::FormConfig {
    web::FormConfig::default().limit(64 * 1024).error_handler(|error, _req: &HttpRequest| {
        tracing::debug!(%error, "unreadable form");
        AppError::BadRequest("error-form-unreadable".to_owned()).into()
    })
}

fn query_config() -> web::QueryConfig {
    web::QueryConfig::default().error_handler(|error, _req: &HttpRequest| {
        tracing::debug!(%error, "unreadable query string");
        AppError::BadRequest("error-query-unreadable".to_owned()).into()
    })
}

/// Re-reads the signing keys every `key_reload_secs` (30 s by default): a
/// rotation by another instance or the CLI is in use here within a minute,
/// with no restart.
async fn reload_keys(state: AppState) {
    let mut interval = tokio::time::interval(Duration::from_secs(state.settings.key_reload_secs));
    interval.tick().await;
    loop {
        interval.tick().await;
        let (keys, secrets) = (state.keys.clone(), state.secrets.clone());
        let result = db::run(&state.db, move |conn| keys.reload(conn, &secrets)).await;
        if let Err(error) = result {
            tracing::warn!(%error, "reloading signing keys failed; still using the keys loaded before");
        }
    }
}

/// Ends expired sessions every few minutes so that their end is in the
/// audit trail even when the browser never comes back.
async fn sweep_sessions(state: AppState) {
    let mut interval = tokio::time::interval(Duration::from_secs(300));
    loop {
        interval.tick().await;
        let policy = state.session_policy;
        let secrets = state.secrets.clone();
        let grace =
            chrono::Duration::seconds(i64::try_from(state.settings.tokens.refresh_reuse_grace_secs).unwrap_or(0));
        let result = db::run(&state.db, move |conn| -> Result<usize, db::DbError> {
            let ended = policy.sweep_expired(conn, &secrets, db::now())?;
            db::write_transaction(conn, |conn| {
                db::grants::purge_expired(conn, db::now())?;
                db::grants::forget_successors(conn, db::now() - grace)?;
                db::wechat::purge_host_codes(conn, db::now() - chrono::Duration::days(1))?;
                db::wechat::purge_expired(conn, db::now())?;
                db::throttle::purge_expired(conn, db::now())
            })?;
            Ok(ended)
        })
        .await;
        match result {
            Ok(0) => {}
            Ok(ended) => tracing::info!(ended, "expired sessions ended"),
            Err(error) => tracing::warn!(%error, "session sweep failed"),
        }
    }
}
