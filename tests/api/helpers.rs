//! Shared test scaffolding: databases, app instances, an HTTP client.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

use diesel::RunQueryDsl;
use diesel::connection::SimpleConnection;
use wxfed::config::{MasterKeySource, SecretString, Settings};
use wxfed::db::{self, DatabaseTarget, DbConn};
use wxfed::startup::{Application, open_backend};
use wxfed::state::AppState;

/// A database of its own for one test: a temp SQLite file, or a new
/// PostgreSQL database (dropped at the end) when WXFED_TEST_POSTGRES_URL
/// names a server.
pub struct TestDb {
    pub url: String,
    pub master_key: String,
    _dir: tempfile::TempDir,
    postgres: Option<(String, String)>,
}

impl TestDb {
    pub fn new() -> Self {
        Self::on(std::env::var("WXFED_TEST_POSTGRES_URL").ok().filter(|u| !u.is_empty()))
    }

    /// A SQLite database whatever the suite's backend (a source for
    /// `migrate-data`).
    pub fn sqlite() -> Self {
        Self::on(None)
    }

    fn on(postgres_admin_url: Option<String>) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let master_key = wxfed::secrets::generate_master_key();
        match postgres_admin_url {
            Some(admin_url) => {
                let name = format!("wxfed_test_{}", uuid::Uuid::new_v4().simple());
                let mut admin = db::establish(&DatabaseTarget::parse(&admin_url).unwrap()).unwrap();
                admin.batch_execute(&format!("CREATE DATABASE \"{name}\"")).unwrap();
                let mut url = url::Url::parse(&admin_url).unwrap();
                url.set_path(&format!("/{name}"));
                Self { url: url.to_string(), master_key, _dir: dir, postgres: Some((admin_url, name)) }
            }
            None => {
                let path = dir.path().join("wxfed.db");
                Self { url: format!("sqlite://{}", path.display()), master_key, _dir: dir, postgres: None }
            }
        }
    }

    pub fn is_postgres(&self) -> bool {
        self.postgres.is_some()
    }

    pub fn dir(&self) -> PathBuf {
        self._dir.path().to_owned()
    }

    /// A direct connection, for looking behind the app's back.
    pub fn connect(&self) -> DbConn {
        db::establish(&DatabaseTarget::parse(&self.url).unwrap()).unwrap()
    }

    pub fn execute(&self, sql: &str) {
        self.connect().batch_execute(sql).unwrap();
    }

    /// Environment for running the `wxfed` binary against this database.
    pub fn cli_env(&self) -> Vec<(String, String)> {
        vec![
            ("WXFED_DATABASE_URL".into(), self.url.clone()),
            ("WXFED_MASTER_KEY".into(), self.master_key.clone()),
            ("WXFED_DATA_DIR".into(), self.dir().join("data").display().to_string()),
        ]
    }

    pub fn settings(&self) -> Settings {
        let database = DatabaseTarget::parse(&self.url).unwrap();
        let master_key = MasterKeySource::Value(SecretString::new(self.master_key.clone()));
        let mut settings = Settings::defaults(database, master_key).unwrap();
        settings.bind = "127.0.0.1:0".parse().unwrap();
        settings.issuer = "http://127.0.0.1".into();
        settings.data_dir = self.dir();
        settings.database_pool_size = 4;
        settings.log_level = "warn".into();
        settings.workers = 1;
        settings.password_hash_concurrency = 2;
        // Tests read English pages unless they ask for another language
        // (the product default, zh-CN, is covered in tests/api/i18n.rs).
        settings.default_locale = wxfed::i18n::Locale::En;
        // Nothing listens on port 9: WeChat tests point these at the simulator.
        settings.wechat.api_base = "http://127.0.0.1:9".into();
        settings.wechat.open_base = "http://127.0.0.1:9".into();
        settings.wechat.timeout_ms = 2000;
        settings
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if let Some((admin_url, name)) = &self.postgres
            && let Ok(mut admin) = db::establish(&DatabaseTarget::parse(admin_url).unwrap())
        {
            let _ = admin.batch_execute(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"));
        }
    }
}

#[derive(Clone)]
pub struct TestApp {
    pub address: String,
    pub client: reqwest::Client,
    pub state: AppState,
}

/// Starts an app on a fresh database; the database lives as long as the
/// returned handle.
pub async fn spawn_app() -> (TestApp, TestDb) {
    let db = TestDb::new();
    let app = spawn_app_on(&db, |_| {}).await;
    (app, db)
}

/// Starts another app instance on `db` (tests of several instances).
pub async fn spawn_app_on(db: &TestDb, tweak: impl FnOnce(&mut Settings)) -> TestApp {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let mut settings = db.settings();
    settings.issuer = format!("http://127.0.0.1:{port}");
    tweak(&mut settings);
    let backend = open_backend(&settings).expect("backend opens");
    let app = Application::build_with(settings, backend, listener).expect("app builds");
    let state = app.state().clone();
    actix_web::rt::spawn(app.run_until_stopped());
    TestApp { address: format!("http://127.0.0.1:{port}"), client: new_client(), state }
}

/// A browser-like client: keeps cookies, does not follow redirects.
pub fn new_client() -> reqwest::Client {
    reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .user_agent("wxfed-tests/1.0")
        .build()
        .unwrap()
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.address, path)
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.client.get(self.url(path)).send().await.unwrap()
    }

    /// Loads the login page and returns its CSRF token.
    pub async fn csrf_token(&self) -> String {
        let page = self.get("/login").await.text().await.unwrap();
        extract_csrf(&page)
    }

    /// Submits the login form as a browser would (CSRF token included).
    pub async fn login(&self, username: &str, password: &str) -> reqwest::Response {
        let token = self.csrf_token().await;
        self.post_form("/login", &[("username", username), ("password", password), ("csrf_token", &token)]).await
    }

    pub async fn post_form(&self, path: &str, form: &[(&str, &str)]) -> reqwest::Response {
        self.client.post(self.url(path)).form(form).send().await.unwrap()
    }

    /// Adds an account with a password through the library (as the CLI does).
    pub async fn add_user(&self, username: &str, password: &str) -> wxfed::accounts::Account {
        let state = self.state.clone();
        let (username, password) = (username.to_owned(), password.to_owned());
        actix_web::web::block(move || {
            let hash = wxfed::accounts::password::hash_blocking(&password).unwrap();
            let mut conn = state.db.get().unwrap();
            let new = wxfed::accounts::manage::NewAccount { username, ..Default::default() };
            wxfed::accounts::manage::add(
                &mut conn,
                &state.secrets,
                &wxfed::accounts::manage::Actor("test".into()),
                &new,
                Some(hash),
            )
            .unwrap()
        })
        .await
        .unwrap()
    }

    /// Records `events` through the library (as requests would), then
    /// chains them.
    pub async fn record_events(&self, events: Vec<wxfed::audit::AuditEvent>) {
        let state = self.state.clone();
        actix_web::web::block(move || {
            let mut conn = state.db.get().unwrap();
            for event in &events {
                wxfed::audit::record(&mut conn, &state.secrets, event).unwrap();
            }
            wxfed::audit::chainer::chain_pending(&mut conn).unwrap();
        })
        .await
        .unwrap();
    }

    pub async fn audit_rows(&self) -> Vec<wxfed::db::audit::AuditRow> {
        let state = self.state.clone();
        actix_web::web::block(move || {
            let mut conn = state.db.get().unwrap();
            // Events are chained within a second (group commit); chain now.
            wxfed::audit::chainer::chain_pending(&mut conn).unwrap();
            let mut rows = wxfed::db::audit::latest(&mut conn, 100_000).unwrap();
            rows.reverse();
            rows
        })
        .await
        .unwrap()
    }

    pub async fn verify_chain(&self) -> wxfed::audit::VerifyReport {
        let state = self.state.clone();
        actix_web::web::block(move || {
            let mut conn = state.db.get().unwrap();
            wxfed::audit::verify(&mut conn, state.secrets.audit_chain_key()).unwrap()
        })
        .await
        .unwrap()
    }
}

pub fn extract_csrf(page: &str) -> String {
    let marker = "name=\"csrf_token\" value=\"";
    let start = page.find(marker).expect("page has a CSRF field") + marker.len();
    let end = page[start..].find('"').unwrap() + start;
    page[start..end].to_owned()
}

/// Runs the `wxfed` binary with a clean environment plus `env`.
pub fn wxfed_cli(
    args: &[&str],
    env: &[(String, String)],
    stdin: Option<&str>,
    cwd: Option<&std::path::Path>,
) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_wxfed"));
    command.args(args).env_clear().env("PATH", std::env::var("PATH").unwrap_or_default()).env("USER", "tester");
    for (k, v) in env {
        command.env(k, v);
    }
    if let Some(dir) = cwd {
        command.current_dir(dir);
    }
    command.stdin(if stdin.is_some() { Stdio::piped() } else { Stdio::null() });
    command.stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = command.spawn().unwrap();
    if let Some(input) = stdin {
        use std::io::Write;
        child.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
    }
    child.wait_with_output().unwrap()
}

/// Count rows of a table directly.
pub fn count(db: &TestDb, table: &str) -> i64 {
    #[derive(diesel::QueryableByName)]
    struct Count {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        n: i64,
    }
    let mut conn = db.connect();
    diesel::sql_query(format!("SELECT COUNT(*) AS n FROM {table}")).get_result::<Count>(&mut conn).unwrap().n
}

/// `wxfed serve` as its own process (tests that read its logs), killed
/// when dropped.
pub struct ServerProcess {
    pub address: String,
    child: Option<std::process::Child>,
}

impl ServerProcess {
    /// Starts the binary with exactly `env` (plus a free `WXFED_BIND` and
    /// the matching `WXFED_ISSUER`) and waits until it is ready.
    pub async fn start(env: &[(String, String)]) -> Self {
        let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let address = format!("http://127.0.0.1:{port}");
        let mut server = Command::new(env!("CARGO_BIN_EXE_wxfed"));
        server.arg("serve").env_clear().env("PATH", std::env::var("PATH").unwrap_or_default());
        for (k, v) in env {
            server.env(k, v);
        }
        server.env("WXFED_BIND", format!("127.0.0.1:{port}")).env("WXFED_ISSUER", &address);
        let child = server.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
        let this = Self { address, child: Some(child) };
        let probe = new_client();
        for _ in 0..100 {
            if probe.get(format!("{}/readyz", this.address)).send().await.is_ok_and(|r| r.status() == 200) {
                return this;
            }
            actix_web::rt::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        panic!("wxfed serve did not become ready");
    }

    /// Stops the server and returns everything it printed.
    pub fn finish(mut self) -> Output {
        let mut child = self.child.take().unwrap();
        let _ = child.kill();
        child.wait_with_output().unwrap()
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        if let Some(child) = &mut self.child {
            let _ = child.kill();
        }
    }
}
