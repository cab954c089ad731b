//! Building the application: settings → master key → database → routes.
//! Works on any port (tests bind port 0).

use std::net::TcpListener;
use std::path::Path;
use std::time::Duration;

use actix_web::dev::Server;
use actix_web::middleware::{Condition, from_fn};
use actix_web::{App, HttpRequest, HttpServer, web};

use crate::accounts::password::PasswordHasher;
use crate::config::Settings;
use crate::db::{self, DatabaseTarget, DbConn, DbPool};
use crate::error::AppError;
use crate::http::endpoint::endpoint;
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

/// What `wxfed config check --connect` found.
#[derive(Debug, serde::Serialize)]
pub struct BackendCheck {
    /// `PostgreSQL` or `SQLite`.
    pub backend: &'static str,
    /// `None`: a SQLite file not created yet.
    pub pending_migrations: Option<usize>,
    /// `matches the database`, or why it could not be compared yet.
    pub master_key: &'static str,
}

/// Connects and compares without changing anything: no migration, no
/// file created, no master key check value recorded.
pub fn check_backend(settings: &Settings) -> Result<BackendCheck, StartupError> {
    use crate::config::MasterKeySource;
    let (backend, sqlite_file) = match &settings.database {
        DatabaseTarget::Sqlite(path) => ("SQLite", Some(path.as_path())),
        DatabaseTarget::Postgres(_) => ("PostgreSQL", None),
    };
    if let MasterKeySource::GeneratedFile(path) = &settings.master_key
        && !path.exists()
    {
        if sqlite_file.is_some_and(Path::exists) {
            // What `serve` would refuse too.
            Secrets::load(&settings.master_key, sqlite_file)?;
        }
        let master_key = "none yet: a key file is generated at first start";
        return Ok(BackendCheck { backend, pending_migrations: None, master_key });
    }
    let secrets = Secrets::load(&settings.master_key, sqlite_file)?;
    if sqlite_file.is_some_and(|file| !file.exists()) {
        let master_key = "not recorded yet: the database is created at first start";
        return Ok(BackendCheck { backend, pending_migrations: None, master_key });
    }
    let options = db::PoolOptions::for_cli(settings.database_pool.session);
    let pool = db::open_pool(&settings.database, options)?;
    let mut conn = db::startup_checkout(&pool, &options)?;
    let pending = db::pending_migrations(&mut conn)?;
    let master_key = match db::settings::get(&mut conn, MASTER_KEY_CHECK) {
        Ok(Some(stored)) => match secrets.open(MASTER_KEY_CHECK_CONTEXT, &stored) {
            Ok(value) if value == b"wxfed" => "matches the database",
            _ => return Err(StartupError::WrongMasterKey),
        },
        Ok(None) => "not recorded yet: recorded at first start",
        // A database that was never migrated has no settings table.
        Err(_) if pending > 0 => "not recorded yet: recorded at first start",
        Err(e) => return Err(e.into()),
    };
    Ok(BackendCheck { backend, pending_migrations: Some(pending), master_key })
}

const MASTER_KEY_CHECK: &str = "master_key_check";
const MASTER_KEY_CHECK_CONTEXT: &str = "settings:master_key_check";

/// The database remembers a value sealed with its master key; a different
/// key cannot open it. Catches a wrong WXFED_MASTER_KEY at startup instead
/// of at the first secret read.
fn check_master_key(conn: &mut DbConn, secrets: &Secrets) -> Result<(), StartupError> {
    let candidate = secrets.seal(MASTER_KEY_CHECK_CONTEXT, b"wxfed");
    let stored = db::write_transaction(conn, |conn| db::settings::get_or_insert(conn, MASTER_KEY_CHECK, &candidate))?;
    match secrets.open(MASTER_KEY_CHECK_CONTEXT, &stored) {
        Ok(value) if value == b"wxfed" => Ok(()),
        _ => Err(StartupError::WrongMasterKey),
    }
}

/// Routes added to the table by `wxfed demo` only (see `crate::demo`).
pub type ExtraRoutes = std::sync::Arc<dyn Fn(&mut web::ServiceConfig) + Send + Sync>;

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
        Self::build_with_extra(settings, backend, listener, None)
    }

    /// [`Self::build_with`] plus routes that only `wxfed demo` serves
    /// (`crate::demo`): its pages, sample relying party and the WeChat
    /// browser stand-in. A server built any other way has none of them.
    pub fn build_with_extra(
        settings: Settings,
        backend: Backend,
        listener: TcpListener,
        extra: Option<ExtraRoutes>,
    ) -> Result<Self, StartupError> {
        let port = listener.local_addr().map_err(|e| StartupError::Other(e.to_string()))?.port();
        db::set_request_deadline(settings.database_pool.request_timeout);
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
        let demo = extra.is_some();
        let server = HttpServer::new(move || {
            let extra = extra.clone();
            App::new()
                .app_data(data.clone())
                .app_data(form_config())
                .app_data(query_config())
                // Demo only: "open in WeChat's browser" without a phone.
                .wrap(Condition::new(demo, from_fn(crate::demo::wechat_browser)))
                .wrap(from_fn(crate::i18n::middleware))
                .wrap(from_fn(http::middleware::request_context))
                .configure(routes_table)
                .configure(move |cfg| {
                    if let Some(extra) = &extra {
                        extra(cfg);
                    }
                })
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
        // OpenID Connect Back-Channel Logout: delivers the outbox.
        let backchannel = actix_web::rt::spawn(crate::oidc::backchannel::run(self.state.clone()));
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
        backchannel.abort();
        crate::audit::chainer::flush(&self.state).await;
        result
    }
}

/// The one route table: every URL wxfed serves and its handler, so a
/// reader finds any handler in one hop. Paths are in `http::paths`; each
/// `endpoint` also answers the methods it does not take (405 + its Allow).
fn routes_table(cfg: &mut web::ServiceConfig) {
    use routes::wechat::{browser_login, facade, host_codes};
    cfg
        // Health and static files.
        .service(endpoint(paths::HEALTHZ).get(routes::health::healthz))
        .service(endpoint(paths::READYZ).get(routes::health::readyz))
        .service(endpoint(paths::STATIC_FILE).get(routes::assets::file))
        // Browser pages.
        .service(endpoint(paths::HOME).get(routes::home::home))
        .service(endpoint(paths::LANG).get(routes::lang::switch))
        .service(endpoint(paths::LOGIN).get(routes::login::show).post(routes::login::submit))
        .service(endpoint(paths::LOGOUT).get(routes::logout::confirm).post(routes::logout::submit))
        .service(endpoint(paths::CONSENTS).get(oidc::consent::list))
        .service(endpoint(paths::CONSENTS_WITHDRAW).post(oidc::consent::withdraw))
        .service(endpoint(paths::AUDIT_CHECKPOINTS_JSON).get(routes::audit::checkpoints_json))
        // OpenID Provider.
        .service(endpoint(paths::DISCOVERY).get(oidc::discovery::openid_configuration))
        .service(endpoint(paths::JWKS).get(oidc::discovery::jwks))
        .service(endpoint(paths::AUTHORIZE).get(oidc::authorize::authorize_get).post(oidc::authorize::authorize_post))
        .service(endpoint(paths::AUTHORIZE_CONSENT).post(oidc::consent::decide))
        .service(endpoint(paths::TOKEN).post(oidc::token::token))
        .service(endpoint(paths::USERINFO).get(oidc::userinfo::userinfo_get).post(oidc::userinfo::userinfo_post))
        .service(endpoint(paths::REVOKE).post(oidc::revoke::revoke))
        .service(endpoint(paths::INTROSPECT).post(oidc::introspect::introspect))
        .service(
            endpoint(paths::END_SESSION)
                .get(oidc::end_session::end_session_get)
                .post(oidc::end_session::end_session_post),
        )
        .service(endpoint(paths::END_SESSION_CONFIRM).post(oidc::end_session::confirm))
        // WeChat surfaces.
        .service(endpoint(paths::WECHAT_LOGIN).get(browser_login::start))
        .service(endpoint(paths::WECHAT_LOGIN_CALLBACK).get(browser_login::callback))
        .service(endpoint(paths::WECHAT_LOGIN_BIND).post(browser_login::bind))
        .service(endpoint(paths::HOST_WX_LOGIN_CODE).post(host_codes::issue))
        .service(endpoint(paths::JSCODE2SESSION).get(facade::jscode2session).post(facade::jscode2session))
        // The admin console: every /admin path is listed in admin::routes.
        .configure(crate::admin::routes)
        // The management API: every /api/admin path is listed in api::routes.
        .configure(crate::api::routes);
    // `wxfed demo` adds its own pages (only there, never in `serve`):
    // DEMO (the walk-through), DEMO_FLOW (its server-side flows),
    // DEMO_RP_LOGIN / DEMO_RP_CALLBACK (the sample relying party); see
    // `crate::demo::routes`.
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
        let result = db::run_long(&state.db, move |conn| keys.reload(conn, &secrets)).await;
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
        let result = db::run_long(&state.db, move |conn| -> Result<usize, db::DbError> {
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
