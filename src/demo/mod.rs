//! `wxfed demo`: every flow on one machine, with nothing to set up
//! (issue 12 §1). One call to [`start`] makes a temporary directory with a
//! new SQLite database (marked as a demo database), starts the WeChat
//! simulator in-process on its own loopback port (so WeChat's URLs and
//! wire formats stay exactly as wxfed sees them in production), points
//! wxfed's WeChat settings at it, seeds accounts, roles, WeChat apps and
//! clients through the same domain functions the CLI and console use, and
//! builds the server with the demo's own routes:
//!
//! - `page`: `/demo`, a button per flow, and the flows wxfed's HTTP
//!   callers (a mini-program, its backend, a host app, an auditor's
//!   script) perform, done here on the server when the button is pressed;
//! - `rp`: a sample relying party, a real OIDC client (the `openidconnect`
//!   crate: discovery, PKCE S256, state and nonce kept server-side, the
//!   code exchanged at `/token`, the ID token verified against the JWKS,
//!   then userinfo).
//!
//! Dropping the [`Demo`] (after Ctrl-C) removes the directory and with it
//! everything the demo made.

mod page;
mod rp;

use std::collections::HashMap;
use std::net::{SocketAddr, TcpListener};
use std::sync::{Arc, Mutex};

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderValue, USER_AGENT};
use actix_web::middleware::Next;
use actix_web::web;
use diesel::RunQueryDsl;
use diesel::sql_types::{BigInt, Text};

use crate::accounts::manage::{self, Actor, NewAccount};
use crate::accounts::{Account, Role};
use crate::config::{MasterKeySource, SecretString, Settings, UnlinkedPolicy};
use crate::db::{self, DatabaseTarget, DbConn};
use crate::http::paths;
use crate::oidc::clients::{self, GrantType, NewClient};
use crate::oidc::signing::SigningAlgorithm;
use crate::secrets::random_token;
use crate::startup::{self, Application, StartupError};
use crate::wechat::apps::{self, AppKind};
use crate::wechat::identities::{self, ExternalId, Sighting};
use crate::wechat_sim::{self, NewUser, SimulatorHandle};

/// The settings row that marks a database as the demo's own.
pub const MARKER: &str = "demo";

/// The Open Platform every demo app is bound to (so UnionIDs join them).
const PLATFORM: &str = "wxfed-demo";
/// Demo WeChat apps: website (QR login), official account, mini-program,
/// mobile (host) app.
pub const WEB_APPID: &str = "wxdemo00000000web1";
pub const OA_APPID: &str = "wxdemo0000000000oa1";
pub const MP_APPID: &str = "wxdemo0000000000mp1";
pub const APP_APPID: &str = "wxdemo000000000app1";

/// The simulated WeChat users: the demo person (linked to `demo`) and
/// Carol (known to wxfed, linked to no account: the console's link flow).
pub const WX_DEMO: &str = "wx-demo";
pub const WX_CAROL: &str = "wx-carol";
/// The demo person's phone number as WeChat knows it.
pub const DEMO_PHONE: &str = "+8613800138000";

/// How the demo is started.
#[derive(Debug, Clone)]
pub struct DemoOptions {
    /// Where the demo listens (`127.0.0.1:8080` by default; port 0 picks one).
    pub bind: SocketAddr,
    /// Instead of a new SQLite file: an empty database (for instance a fresh
    /// PostgreSQL database). Refused when it holds anything.
    pub database: Option<String>,
    /// WXFED_DEFAULT_LOCALE for the demo's pages.
    pub locale: crate::i18n::Locale,
}

impl Default for DemoOptions {
    fn default() -> Self {
        Self { bind: SocketAddr::from(([127, 0, 0, 1], 8080)), database: None, locale: crate::i18n::Locale::ZhCn }
    }
}

/// Why the demo did not start.
#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    #[error(
        "{0} is not a demo database (it holds data and has no demo marker): wxfed demo never touches a real database; \
         leave WXFED_DATABASE_URL unset or give an empty database"
    )]
    NotADemoDatabase(String),
    #[error("{0} is the database of an earlier demo: give an empty database (a demo starts from nothing)")]
    EarlierDemo(String),
    #[error(transparent)]
    Startup(#[from] StartupError),
    #[error("{0}")]
    Other(String),
}

fn other(error: impl std::fmt::Display) -> DemoError {
    DemoError::Other(error.to_string())
}

/// An account the demo made, with its password (printed at start).
#[derive(Debug, Clone)]
pub struct DemoAccount {
    pub username: String,
    pub id: String,
    pub password: String,
    pub role: &'static str,
}

/// A client the demo registered.
#[derive(Clone)]
pub struct DemoClient {
    pub client_id: String,
    pub secret: Option<String>,
}

/// Everything the demo seeded: what its pages and flows use and what is
/// printed at start.
#[derive(Clone)]
pub struct Seeded {
    pub base_url: String,
    pub sim_url: String,
    /// `demo` (linked to WeChat user wx-demo), `admin`, `auditor`,
    /// `carol` and `carol-old` (the console's link and merge).
    pub accounts: Vec<DemoAccount>,
    /// WeChat apps: appid → secret.
    pub app_secrets: HashMap<&'static str, String>,
    /// The sample relying party (confidential, PKCE).
    pub rp: DemoClient,
    /// The mini-program's public client (token exchange).
    pub mini_program: DemoClient,
    /// The host app (FinClip): confidential, host for the mini-program.
    pub host_app: DemoClient,
    /// A mini-program client that trusts the host app (scheme 3).
    pub trusting: DemoClient,
    /// Carol's WeChat identity (unlinked until the console links it).
    pub carol_identity: String,
}

impl Seeded {
    pub fn account(&self, username: &str) -> Option<&DemoAccount> {
        self.accounts.iter().find(|a| a.username == username)
    }

    fn secret_of(&self, appid: &str) -> &str {
        self.app_secrets.get(appid).map(String::as_str).unwrap_or_default()
    }
}

/// What the demo's handlers share (`web::Data<DemoState>`).
pub struct DemoState {
    pub seeded: Seeded,
    /// The simulator itself: the demo plays the WeChat client on the phone
    /// (`wx.login`, the phone-number button, SendAuth) by minting codes.
    pub simulator: wechat_sim::Simulator,
    /// The sample RP's logins in flight, by `state`.
    pub pending: Mutex<HashMap<String, rp::Pending>>,
    /// HTTP client for calls to wxfed (no redirects followed).
    pub http: reqwest::Client,
}

/// A running demo: the server, the simulator and the temporary directory.
/// Dropping it removes the directory.
pub struct Demo {
    pub app: Application,
    pub seeded: Seeded,
    simulator: SimulatorHandle,
    dir: tempfile::TempDir,
}

impl Demo {
    /// Where the demo keeps its files (removed when the demo ends).
    pub fn dir(&self) -> &std::path::Path {
        self.dir.path()
    }

    /// What `wxfed demo` prints at start.
    pub fn banner(&self) -> String {
        let s = &self.seeded;
        let mut text = format!(
            "wxfed demo is running (everything below is removed on Ctrl-C)\n\n  walk-through:     {base}{demo}\n  \
             sample app (RP):  {base}{rp}?via=password\n  admin console:    {base}/admin\n  auditor console:  {base}/audit\n  \
             discovery:        {base}{disc}\n  WeChat simulator: {sim}\n  data:             {dir}\n\n  accounts:\n",
            base = s.base_url,
            demo = paths::DEMO,
            rp = paths::DEMO_RP_LOGIN,
            disc = paths::DISCOVERY,
            sim = s.sim_url,
            dir = self.dir.path().display(),
        );
        for account in &s.accounts {
            text.push_str(&format!(
                "    {:<10} password {:<22} {}\n",
                account.username, account.password, account.role
            ));
        }
        text
    }

    /// Serves until SIGINT/SIGTERM; then stops the simulator. The caller
    /// drops the demo to remove its files.
    pub async fn run_until_stopped(self) -> std::io::Result<(tempfile::TempDir, Seeded)> {
        let Self { app, seeded, simulator, dir } = self;
        let result = app.run_until_stopped().await;
        simulator.stop().await;
        result.map(|()| (dir, seeded))
    }
}

/// Sets up and starts the demo (inside an actix runtime). The server is
/// built but not yet awaited: tests drive it, `wxfed demo` runs it.
pub async fn start(options: DemoOptions) -> Result<Demo, DemoError> {
    let dir = tempfile::Builder::new().prefix("wxfed-demo.").tempdir().map_err(other)?;
    let listener =
        TcpListener::bind(options.bind).map_err(|e| StartupError::Bind(format!("{} (--bind)", options.bind), e))?;
    let address = listener.local_addr().map_err(other)?;
    let base_url = format!("http://{}", reachable(address));

    let database = match &options.database {
        Some(url) => {
            let target = DatabaseTarget::parse(url).map_err(other)?;
            check_database(&target, url)?;
            target
        }
        None => DatabaseTarget::Sqlite(dir.path().join("wxfed.db")),
    };

    // The simulator, seeded with the demo's apps and people.
    let simulator = wechat_sim::Simulator::new();
    let mut app_secrets = HashMap::new();
    let apps = [
        (WEB_APPID, AppKind::Website, wechat_sim::AppKind::Website, "wxfed demo website"),
        (OA_APPID, AppKind::OfficialAccount, wechat_sim::AppKind::OfficialAccount, "wxfed demo official account"),
        (MP_APPID, AppKind::MiniProgram, wechat_sim::AppKind::MiniProgram, "wxfed demo mini-program"),
        (APP_APPID, AppKind::MobileApp, wechat_sim::AppKind::MobileApp, "wxfed demo host app"),
    ];
    for (appid, _, kind, name) in &apps {
        let secret = hex_secret();
        simulator
            .add_app(wechat_sim::NewApp::new(*appid, secret.clone(), *kind).name(*name).open_platform(PLATFORM))
            .map_err(other)?;
        app_secrets.insert(*appid, secret);
    }
    simulator.add_user(NewUser::new(WX_DEMO, "演示用户 Demo").phone(DEMO_PHONE)).map_err(other)?;
    simulator.add_user(NewUser::new(WX_CAROL, "Carol 微信").phone("+8613900139000")).map_err(other)?;
    let sim_listener = TcpListener::bind("127.0.0.1:0").map_err(other)?;
    let sim_handle = wechat_sim::start_with(sim_listener, simulator.clone()).map_err(other)?;

    let master_key = MasterKeySource::Value(SecretString::new(crate::secrets::generate_master_key()));
    let mut settings = Settings::defaults(database, master_key).map_err(StartupError::from)?;
    settings.bind = address;
    settings.issuer = base_url.clone();
    settings.data_dir = dir.path().to_owned();
    settings.default_locale = options.locale;
    settings.wechat.api_base = sim_handle.base_url.clone();
    settings.wechat.open_base = sim_handle.base_url.clone();
    settings.wechat.unlinked = UnlinkedPolicy::Deny;
    settings.workers = settings.workers.clamp(2, 4);
    settings.database_pool_size = settings.database_pool_size.min(8);
    let backend = startup::open_backend(&settings)?;

    let (pool, secrets) = (backend.pool.clone(), backend.secrets.clone());
    let (base, sim_url) = (base_url.clone(), sim_handle.base_url.clone());
    let simulator_for_seed = simulator.clone();
    let seeded = web::block(move || -> Result<Seeded, DemoError> {
        let mut conn = pool.get().map_err(other)?;
        seed(&mut conn, &secrets, &simulator_for_seed, base, sim_url, app_secrets, &apps)
    })
    .await
    .map_err(other)??;

    let state = web::Data::new(DemoState {
        seeded: seeded.clone(),
        simulator,
        pending: Mutex::new(HashMap::new()),
        http: reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().map_err(other)?,
    });
    let extra: startup::ExtraRoutes = Arc::new(move |cfg| routes(cfg, state.clone()));
    let app = Application::build_with_extra(settings, backend, listener, Some(extra))?;
    Ok(Demo { app, seeded, simulator: sim_handle, dir })
}

/// The demo's routes (added to the route table only by `wxfed demo`).
fn routes(cfg: &mut web::ServiceConfig, state: web::Data<DemoState>) {
    cfg.app_data(state)
        .route(paths::DEMO, web::get().to(page::index))
        .route(paths::DEMO_FLOW, web::post().to(page::flow))
        .route(paths::DEMO_RP_LOGIN, web::get().to(rp::login))
        .route(paths::DEMO_RP_CALLBACK, web::get().to(rp::callback));
}

/// The sample RP sets this cookie to open the WeChat login "inside
/// WeChat": wxfed tells WeChat's browser by its user agent (wechat-api.md
/// §6), which a desktop browser does not send.
pub const IN_WECHAT_COOKIE: &str = "wxfed_demo_in_wechat";

/// Demo only: a browser holding [`IN_WECHAT_COOKIE`] is treated as
/// WeChat's own browser (its User-Agent gets `MicroMessenger`), so the
/// official-account login can be tried on a desktop.
pub async fn wechat_browser(
    mut req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    if req.cookie(IN_WECHAT_COOKIE).is_some() {
        let current = req.headers().get(USER_AGENT).and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
        if !current.to_ascii_lowercase().contains("micromessenger") {
            let value = format!("{current} MicroMessenger/8.0.50 (wxfed demo)");
            if let Ok(value) = HeaderValue::from_str(value.trim_start()) {
                req.headers_mut().insert(USER_AGENT, value);
            }
        }
    }
    next.call(req).await
}

/// Refuses any database but an empty one, before anything is written to
/// it: `wxfed demo` must never seed demo accounts into a real installation.
fn check_database(target: &DatabaseTarget, url: &str) -> Result<(), DemoError> {
    #[derive(diesel::QueryableByName)]
    struct Count {
        #[diesel(sql_type = BigInt)]
        n: i64,
    }
    #[derive(diesel::QueryableByName)]
    struct Value {
        #[diesel(sql_type = Text)]
        value: String,
    }
    let shown = redact(url);
    let mut conn = db::establish(target).map_err(other)?;
    // A database wxfed never migrated has no migrations table: empty.
    let migrated = diesel::sql_query("SELECT COUNT(*) AS n FROM __diesel_schema_migrations")
        .get_result::<Count>(&mut conn)
        .map(|c| c.n > 0)
        .unwrap_or(false);
    if !migrated {
        return Ok(());
    }
    let marked = diesel::sql_query("SELECT value FROM settings WHERE name = 'demo'")
        .load::<Value>(&mut conn)
        .map(|rows| rows.iter().any(|r| r.value == "1"))
        .unwrap_or(false);
    Err(if marked { DemoError::EarlierDemo(shown) } else { DemoError::NotADemoDatabase(shown) })
}

/// A database URL without its password, for messages.
fn redact(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut parsed) if parsed.password().is_some() => {
            let _ = parsed.set_password(Some("***"));
            parsed.to_string()
        }
        _ => url.to_owned(),
    }
}

/// The URL a browser on this machine uses for `address` (0.0.0.0 → loopback).
fn reachable(address: SocketAddr) -> SocketAddr {
    match address.ip() {
        ip if !ip.is_unspecified() => address,
        std::net::IpAddr::V4(_) => SocketAddr::new(std::net::Ipv4Addr::LOCALHOST.into(), address.port()),
        std::net::IpAddr::V6(_) => SocketAddr::new(std::net::Ipv6Addr::LOCALHOST.into(), address.port()),
    }
}

/// 32 hex characters, the shape of a WeChat AppSecret.
fn hex_secret() -> String {
    crate::secrets::sha256_hex(random_token().as_bytes())[..32].to_owned()
}

/// A readable random password: `demo-` and 12 letters and digits.
fn password() -> String {
    let token: String = random_token().chars().filter(char::is_ascii_alphanumeric).take(12).collect();
    format!("demo-{token}")
}

fn client(name: &str) -> NewClient {
    NewClient {
        name: name.into(),
        redirect_uris: vec![],
        post_logout_redirect_uris: vec![],
        public: true,
        first_party: true,
        grant_types: vec![],
        scopes: vec![],
        id_token_signing_alg: SigningAlgorithm::Rs256,
        always_issue_refresh_token: false,
        wechat_app: None,
        host_app: false,
        trust_host: None,
        access_token_signing_alg: SigningAlgorithm::Rs256,
        host_for: vec![],
        backchannel_logout_uri: None,
        backchannel_logout_session_required: false,
    }
}

/// A seeded account: username, display name, email, phone, role.
type DemoPerson = (&'static str, &'static str, Option<&'static str>, Option<&'static str>, Option<Role>);

#[allow(clippy::too_many_arguments)]
fn seed(
    conn: &mut DbConn,
    secrets: &crate::secrets::Secrets,
    simulator: &wechat_sim::Simulator,
    base_url: String,
    sim_url: String,
    app_secrets: HashMap<&'static str, String>,
    apps: &[(&'static str, AppKind, wechat_sim::AppKind, &'static str)],
) -> Result<Seeded, DemoError> {
    let actor = Actor("demo".into());
    // The marker first: whatever else happens, this database is the demo's.
    db::settings::set(conn, MARKER, "1").map_err(other)?;

    let mut accounts = Vec::new();
    let people: [DemoPerson; 5] = [
        ("demo", "演示用户 Demo User", Some("demo@example.com"), Some(DEMO_PHONE), None),
        ("admin", "管理员 Admin", None, None, Some(Role::Admin)),
        ("auditor", "审计员 Auditor", None, None, Some(Role::Auditor)),
        ("carol", "Carol", Some("carol@example.com"), None, None),
        ("carol-old", "Carol (old account)", Some("carol.old@example.com"), Some("+8613900139000"), None),
    ];
    for (username, name, email, phone, role) in people {
        let password = password();
        let hash = crate::accounts::password::hash_blocking(&password).map_err(other)?;
        let new = NewAccount {
            username: username.into(),
            display_name: Some(name.into()),
            email: email.map(str::to_owned),
            email_verified: email.is_some(),
            phone: phone.map(str::to_owned),
            phone_verified: phone.is_some(),
            roles: role.into_iter().collect(),
        };
        let account: Account = manage::add(conn, secrets, &actor, &new, Some(hash)).map_err(other)?;
        accounts.push(DemoAccount {
            username: username.into(),
            id: account.id.as_str().to_owned(),
            password,
            role: role.map(Role::as_str).unwrap_or("user"),
        });
    }

    let mut registered = HashMap::new();
    for (appid, kind, _, name) in apps {
        let new = apps::NewApp {
            appid: (*appid).into(),
            kind: *kind,
            name: (*name).into(),
            open_platform: Some(PLATFORM.into()),
            redirect_domain: None,
            secret: SecretString::new(app_secrets.get(appid).cloned().unwrap_or_default()),
        };
        registered.insert(*appid, apps::register(conn, secrets, &actor, &new).map_err(other)?);
    }

    let register = |conn: &mut DbConn, new: NewClient| -> Result<DemoClient, DemoError> {
        let (client, secret) = clients::register(conn, secrets, &actor, &new).map_err(other)?;
        Ok(DemoClient { client_id: client.client_id, secret })
    };
    let mut rp_settings = client("wxfed demo sample app");
    rp_settings.public = false;
    rp_settings.redirect_uris = vec![format!("{base_url}{}", paths::DEMO_RP_CALLBACK)];
    rp_settings.post_logout_redirect_uris = vec![format!("{base_url}{}", paths::DEMO)];
    rp_settings.grant_types = vec![GrantType::AuthorizationCode, GrantType::RefreshToken];
    let rp = register(conn, rp_settings)?;
    let mut mp = client("wxfed demo mini-program");
    mp.wechat_app = Some(MP_APPID.into());
    let mini_program = register(conn, mp)?;
    let mut host = client("wxfed demo host app (FinClip)");
    host.public = false;
    host.host_app = true;
    host.wechat_app = Some(APP_APPID.into());
    host.host_for = vec![MP_APPID.into()];
    let host_app = register(conn, host)?;
    let mut trusting_settings = client("wxfed demo mini-program trusting the host app");
    trusting_settings.wechat_app = Some(MP_APPID.into());
    trusting_settings.trust_host = Some(host_app.client_id.clone());
    let trusting = register(conn, trusting_settings)?;

    // wx-demo's WeChat (by UnionID) is linked to `demo`, as an admin would
    // have done; Carol has logged in with WeChat once (so wxfed knows her
    // identity) but nobody linked it yet.
    let demo_union = simulator.identity_of(WX_DEMO, WEB_APPID).map_err(other)?;
    let demo_id = accounts.first().map(|a| a.id.clone()).unwrap_or_default();
    let external =
        ExternalId::UnionId { open_platform: PLATFORM.into(), unionid: demo_union.unionid.clone().unwrap_or_default() };
    db::write_transaction(conn, |conn| {
        identities::link_external(conn, secrets, &actor, &demo_id, &external, "wxfed demo: the demo person's WeChat")
    })
    .map_err(other)?;
    let carol = simulator.identity_of(WX_CAROL, WEB_APPID).map_err(other)?;
    let web_app = registered.get(WEB_APPID).ok_or_else(|| other("no website app"))?;
    let sighting = Sighting {
        app: web_app,
        openid: &carol.openid,
        unionid: carol.unionid.as_deref(),
        nickname: Some("Carol 微信"),
        avatar_url: None,
        session_key: None,
    };
    let carol_identity =
        db::write_transaction(conn, |conn| identities::resolve(conn, secrets, &sighting, None)).map_err(other)?.id;
    crate::audit::chainer::chain_pending(conn).map_err(other)?;

    Ok(Seeded { base_url, sim_url, accounts, app_secrets, rp, mini_program, host_app, trusting, carol_identity })
}
