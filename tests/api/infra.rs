//! Reliability and abuse bounds (issue 10 items 2, 8, 9, 11, 13, 15).

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use diesel::RunQueryDsl;
use wxfed::db;

use crate::helpers::{TestDb, count, spawn_app, spawn_app_on};

const PASSWORD: &str = "correct horse battery";

/// Sends `request` on a raw connection and returns everything the server
/// sends back until it closes (or 20 s pass: then the bound failed).
fn raw_exchange(address: &str, request: &[u8]) -> String {
    let mut stream = TcpStream::connect(address.trim_start_matches("http://")).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    stream.write_all(request).unwrap();
    let mut answer = Vec::new();
    match stream.read_to_end(&mut answer) {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {}
        Err(e) => panic!("the server neither answered nor closed the connection: {e}"),
    }
    String::from_utf8_lossy(&answer).into_owned()
}

#[actix_web::test]
async fn a_body_that_never_finishes_is_cut_with_408() {
    let db = TestDb::new();
    let app = spawn_app_on(&db, |s| s.request_limits.body_timeout_ms = 500).await;
    let address = app.address.clone();
    let request = b"POST /login HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\n\
                    Content-Length: 100\r\n\r\nusername=a";
    let answer = actix_web::web::block(move || raw_exchange(&address, request)).await.unwrap();
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
}

#[actix_web::test]
async fn connections_per_client_ip_are_capped() {
    let db = TestDb::new();
    let app = spawn_app_on(&db, |s| s.request_limits.max_connections_per_ip = 2).await;
    let address = app.address.trim_start_matches("http://").to_owned();
    let answers = actix_web::web::block(move || {
        let mut open = Vec::new();
        let mut answers = Vec::new();
        for _ in 0..3 {
            let mut stream = TcpStream::connect(&address).unwrap();
            stream.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
            stream.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
            let mut buffer = [0u8; 12];
            stream.read_exact(&mut buffer).unwrap();
            answers.push(String::from_utf8_lossy(&buffer).into_owned());
            open.push(stream);
        }
        answers
    })
    .await
    .unwrap();
    assert_eq!(answers[..2], ["HTTP/1.1 200", "HTTP/1.1 200"]);
    assert_eq!(answers[2], "HTTP/1.1 429");
}

#[actix_web::test]
async fn form_post_script_is_served() {
    let (app, _db) = spawn_app().await;
    let response = app.get("/static/form_post.js").await;
    assert_eq!(response.status(), 200);
    assert!(response.headers()["content-type"].to_str().unwrap().starts_with("text/javascript"));
    assert!(response.text().await.unwrap().contains("form-post"));
}

#[actix_web::test]
async fn head_options_and_unknown_methods_get_proper_answers() {
    let (app, _db) = spawn_app().await;
    let head = app.client.head(app.url("/healthz")).send().await.unwrap();
    assert_eq!(head.status(), 200);
    assert!(head.bytes().await.unwrap().is_empty());

    let options = app.client.request(reqwest::Method::OPTIONS, app.url("/healthz")).send().await.unwrap();
    assert_eq!(options.status(), 204);
    assert!(options.headers()["allow"].to_str().unwrap().contains("GET"));

    let delete = app.client.delete(app.url("/healthz")).send().await.unwrap();
    assert_eq!(delete.status(), 405);
    assert!(delete.headers().contains_key("allow"));

    assert_eq!(app.client.delete(app.url("/no/such/page")).send().await.unwrap().status(), 404);

    // Each path lists the methods it takes, not every method of the server
    // (RFC 9110 §15.5.6).
    let allow = |response: &reqwest::Response| response.headers()["allow"].to_str().unwrap().to_owned();
    assert_eq!(allow(&delete), "GET, HEAD, OPTIONS");
    let get_token = app.client.get(app.url("/token")).send().await.unwrap();
    assert_eq!(get_token.status(), 405);
    assert_eq!(allow(&get_token), "POST, OPTIONS");
    let options = app.client.request(reqwest::Method::OPTIONS, app.url("/authorize")).send().await.unwrap();
    assert_eq!((options.status().as_u16(), allow(&options)), (204, "GET, HEAD, POST, OPTIONS".to_owned()));
    // Inside the console's scope too, with path parameters.
    let get_status = app.client.get(app.url("/admin/accounts/some-id/status")).send().await.unwrap();
    assert_eq!((get_status.status().as_u16(), allow(&get_status)), (405, "POST, OPTIONS".to_owned()));
    let put_audit = app.client.put(app.url("/audit")).send().await.unwrap();
    assert_eq!((put_audit.status().as_u16(), allow(&put_audit)), (405, "GET, HEAD, OPTIONS".to_owned()));
}

/// Takes every connection of the app's pool, so that the next request
/// meets a database that does not answer.
/// Checks out every connection of the pool. Waits longer than the pool's
/// (possibly very short) checkout timeout: on a busy host opening each
/// connection can take longer than that, and the point is only to end up
/// holding them all.
fn exhaust_pool(app: &crate::helpers::TestApp) -> Vec<db::PooledConn> {
    (0..app.state.db.max_size()).map(|_| app.state.db.get_timeout(Duration::from_secs(30)).unwrap()).collect()
}

#[actix_web::test]
async fn readiness_answers_within_a_second_while_the_database_hangs() {
    let db = TestDb::new();
    let app = spawn_app_on(&db, |s| s.database_pool.checkout_timeout = Duration::from_secs(30)).await;
    let _held = exhaust_pool(&app);
    // Without its own deadline the probe would wait the 30 s checkout timeout.
    let client = reqwest::Client::builder().timeout(Duration::from_secs(5)).build().unwrap();
    let response = client.get(app.url("/readyz")).send().await.expect("readyz answers in time");
    assert_eq!(response.status(), 503);
}

#[actix_web::test]
async fn an_unavailable_database_is_503_with_retry_after_not_500() {
    let db = TestDb::new();
    let app = spawn_app_on(&db, |s| s.database_pool.checkout_timeout = Duration::from_millis(200)).await;
    let _held = exhaust_pool(&app);

    let token = app
        .client
        .post(app.url("/token"))
        .form(&[("grant_type", "authorization_code"), ("code", "x"), ("client_id", "some-client")])
        .send()
        .await
        .unwrap();
    assert_eq!(token.status(), 503);
    assert!(token.headers().contains_key("retry-after"));
    assert_eq!(token.json::<serde_json::Value>().await.unwrap()["error"], "temporarily_unavailable");

    let login = app.client.post(app.url("/login")).form(&[("username", "a"), ("password", "b")]).send().await.unwrap();
    assert_ne!(login.status(), 500);
}

#[actix_web::test]
async fn the_server_starts_without_filling_its_pool() {
    let db = TestDb::new();
    let app = spawn_app_on(&db, |s| s.database_pool_size = 8).await;
    assert_eq!(app.state.db.max_size(), 8);
    assert!(app.state.db.state().connections <= 2, "{:?}", app.state.db.state());
}

#[actix_web::test]
async fn the_cli_pool_holds_at_most_two_connections() {
    let db = TestDb::new();
    let settings = db.settings();
    let backend =
        wxfed::startup::open_backend_with(&settings, db::PoolOptions::for_cli(settings.database_pool.session)).unwrap();
    assert!(backend.pool.max_size() <= 2);
}

#[derive(diesel::QueryableByName)]
struct Setting {
    #[diesel(sql_type = diesel::sql_types::Text)]
    setting: String,
}

#[actix_web::test]
async fn postgres_connections_carry_lock_and_idle_timeouts() {
    let db = TestDb::new();
    if !db.is_postgres() {
        return;
    }
    let app = spawn_app_on(&db, |s| {
        s.database_pool.session.lock_timeout_ms = 1234;
        s.database_pool.session.idle_in_transaction_timeout_ms = 4321;
        s.database_pool.session.statement_timeout_ms = 9876;
    })
    .await;
    let mut conn = app.state.db.get().unwrap();
    let read = |conn: &mut db::DbConn, name: &str| -> String {
        let rows: Vec<Setting> =
            diesel::sql_query(format!("SELECT setting FROM pg_settings WHERE name = '{name}'")).load(conn).unwrap();
        rows[0].setting.clone()
    };
    assert_eq!(read(&mut conn, "lock_timeout"), "1234");
    assert_eq!(read(&mut conn, "idle_in_transaction_session_timeout"), "4321");
    assert_eq!(read(&mut conn, "statement_timeout"), "9876");
}

#[actix_web::test]
async fn a_pool_never_takes_every_connection_slot_of_postgres() {
    let db = TestDb::new();
    if !db.is_postgres() {
        return;
    }
    let app = spawn_app_on(&db, |s| s.database_pool_size = 100_000).await;
    let mut conn = app.state.db.get().unwrap();
    let rows: Vec<Setting> =
        diesel::sql_query("SELECT setting FROM pg_settings WHERE name = 'max_connections'").load(&mut *conn).unwrap();
    let max_connections: u32 = rows[0].setting.parse().unwrap();
    assert!(app.state.db.max_size() < max_connections);
}

#[test]
fn pool_size_limit_leaves_room_for_others() {
    assert_eq!(db::pool_size_limit(100, 3), 48);
    assert_eq!(db::pool_size_limit(2, 3), 1);
}

#[test]
fn postgres_urls_get_keepalives_unless_they_set_them() {
    let limits = db::SessionLimits::default();
    let url = db::with_connection_parameters("postgres://u@h/db", &limits);
    assert!(url.contains("?keepalives=1&keepalives_idle=30"), "{url}");
    assert!(url.contains("connect_timeout=2"), "{url}");
    let own = db::with_connection_parameters("postgres://u@h/db?keepalives_idle=5&sslmode=disable", &limits);
    assert!(own.contains("keepalives_idle=5") && !own.contains("keepalives_idle=30"), "{own}");
    assert!(own.contains("sslmode=disable&keepalives=1"), "{own}");
}

#[test]
fn a_kubernetes_service_named_wxfed_does_not_stop_the_start() {
    let db = TestDb::new();
    let mut env = db.cli_env();
    for (key, value) in [
        ("WXFED_PORT", "tcp://10.0.0.1:8080"),
        ("WXFED_PORT_8080_TCP", "tcp://10.0.0.1:8080"),
        ("WXFED_PORT_8080_TCP_ADDR", "10.0.0.1"),
        ("WXFED_PORT_8080_TCP_PORT", "8080"),
        ("WXFED_PORT_8080_TCP_PROTO", "tcp"),
        ("WXFED_SERVICE_HOST", "10.0.0.1"),
        ("WXFED_SERVICE_PORT", "8080"),
        ("WXFED_SHUTDOWN_TIMEOUT_SECS", "3"),
    ] {
        env.push((key.into(), value.into()));
    }
    let output = crate::helpers::wxfed_cli(&["migrate"], &env, None, None);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
}

#[test]
fn the_sqlite_data_dir_and_files_are_private() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let env = vec![("WXFED_DATA_DIR".to_owned(), data.display().to_string())];
    let output = crate::helpers::wxfed_cli(&["migrate"], &env, None, Some(dir.path()));
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let mode = |name: &str| std::fs::metadata(data.join(name)).unwrap().permissions().mode() & 0o777;
    assert_eq!(std::fs::metadata(&data).unwrap().permissions().mode() & 0o777, 0o700);
    assert_eq!(mode("wxfed.db"), 0o600);
    assert_eq!(mode("master.key"), 0o600);
}

#[actix_web::test]
async fn stale_throttle_rows_are_purged() {
    let db = TestDb::new();
    let mut conn = db.connect();
    db::run_migrations(&mut conn).unwrap();
    let now = db::now();
    let old = now - chrono::Duration::days(2);
    db::write_transaction(&mut conn, |conn| -> diesel::QueryResult<()> {
        let mut row = db::throttle::lock(conn, "stale", old)?;
        row.window_started_at = old;
        db::throttle::update(conn, &row)?;
        db::throttle::lock(conn, "fresh", now).map(|_| ())
    })
    .unwrap();
    assert_eq!(db::throttle::purge_expired(&mut conn, now).unwrap(), 1);
    assert_eq!(count(&db, "login_throttle"), 1);
}

/// A login from `ip` (the app trusts 127.0.0.1 as a proxy).
async fn login_from(app: &crate::helpers::TestApp, ip: &str, username: &str, password: &str) -> u16 {
    let token = app.csrf_token().await;
    app.client
        .post(app.url("/login"))
        .header("x-forwarded-for", ip)
        .form(&[("username", username), ("password", password), ("csrf_token", &token)])
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

#[actix_web::test]
async fn a_stranger_cannot_lock_the_owner_out_from_another_network() {
    let db = TestDb::new();
    let app = spawn_app_on(&db, |s| s.trusted_proxies = vec!["127.0.0.1".parse().unwrap()]).await;
    app.add_user("olga", PASSWORD).await;
    for _ in 0..5 {
        assert_eq!(login_from(&app, "203.0.113.9", "olga", "wrong").await, 401);
    }
    // The stranger's network is blocked for this username...
    assert_eq!(login_from(&app, "203.0.113.9", "olga", PASSWORD).await, 429);
    // ...but the owner, elsewhere, gets in.
    assert_eq!(login_from(&app, "198.51.100.4", "olga", PASSWORD).await, 303);
}

#[actix_web::test]
async fn guesses_from_many_networks_slow_the_account_down() {
    let db = TestDb::new();
    let app = spawn_app_on(&db, |s| {
        s.trusted_proxies = vec!["127.0.0.1".parse().unwrap()];
        s.login_account_slowdown_after = 3;
        s.login_account_max_delay_secs = 30;
    })
    .await;
    app.add_user("pia", PASSWORD).await;
    for ip in ["192.0.2.1", "192.0.2.2", "192.0.2.3"] {
        assert_eq!(login_from(&app, ip, "pia", "wrong").await, 401);
    }
    // The next attempt from yet another network must wait a moment.
    assert_eq!(login_from(&app, "192.0.2.4", "pia", PASSWORD).await, 429);
}

#[actix_web::test]
async fn ipv6_guesses_count_per_64() {
    let db = TestDb::new();
    let app = spawn_app_on(&db, |s| s.trusted_proxies = vec!["127.0.0.1".parse().unwrap()]).await;
    app.add_user("quinn", PASSWORD).await;
    for host in 1..=5 {
        let ip = format!("2001:db8:5:6::{host}");
        assert_eq!(login_from(&app, &ip, "quinn", "wrong").await, 401);
    }
    // A new address in the same /64 is the same network.
    assert_eq!(login_from(&app, "2001:db8:5:6::99", "quinn", PASSWORD).await, 429);
}

/// A TCP relay to PostgreSQL that can be frozen: while frozen it keeps
/// accepting and reading (as a SIGSTOPped server's kernel still does) but
/// passes nothing on, so statements sent through it wait forever.
struct FreezableRelay {
    port: u16,
    frozen: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl FreezableRelay {
    fn start(upstream: String) -> Self {
        use std::sync::atomic::Ordering;
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let frozen = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = frozen.clone();
        std::thread::spawn(move || {
            for client in listener.incoming().flatten() {
                let Ok(server) = TcpStream::connect(&upstream) else { continue };
                for (mut from, mut to) in [(client.try_clone().unwrap(), server.try_clone().unwrap()), (server, client)]
                {
                    let flag = flag.clone();
                    std::thread::spawn(move || {
                        let mut buf = [0u8; 16 * 1024];
                        loop {
                            let n = match from.read(&mut buf) {
                                Ok(0) | Err(_) => break,
                                Ok(n) => n,
                            };
                            while flag.load(Ordering::SeqCst) {
                                std::thread::sleep(Duration::from_millis(20));
                            }
                            if to.write_all(&buf[..n]).is_err() {
                                break;
                            }
                        }
                        let _ = to.shutdown(std::net::Shutdown::Both);
                    });
                }
            }
        });
        Self { port, frozen }
    }

    fn freeze(&self, on: bool) {
        self.frozen.store(on, std::sync::atomic::Ordering::SeqCst);
    }
}

impl Drop for FreezableRelay {
    /// A failed assertion thaws it too, or the stuck statements would keep
    /// the test process from ending.
    fn drop(&mut self) {
        self.freeze(false);
    }
}

/// Issue 10 item 13: a PostgreSQL frozen mid-statement (the kernel still
/// acknowledges, nothing answers: no server-side timeout can fire) gets a
/// prompt `503` + `Retry-After` from the request deadline, not a request
/// that waits until it thaws; once it answers again, so does wxfed.
#[actix_web::test]
async fn a_frozen_database_is_answered_with_503_within_the_request_deadline() {
    let db = TestDb::new();
    if !db.is_postgres() {
        return; // SQLite has no server to freeze
    }
    let mut url = url::Url::parse(&db.url).unwrap();
    let relay = FreezableRelay::start(format!("{}:{}", url.host_str().unwrap(), url.port().unwrap_or(5432)));
    url.set_host(Some("127.0.0.1")).unwrap();
    url.set_port(Some(relay.port)).unwrap();
    let relayed = db::DatabaseTarget::parse(url.as_str()).unwrap();
    let app = spawn_app_on(&db, |s| s.database = relayed).await;
    let token = |client_id: &'static str| {
        app.client.post(app.url("/token")).form(&[("grant_type", "client_credentials"), ("client_id", client_id)])
    };
    // Reachable: an unknown client is refused after a lookup.
    assert_eq!(token("nobody").send().await.unwrap().status(), 401);

    relay.freeze(true);
    // Without the deadline this waits for the thaw: far past this timeout.
    let frozen = token("nobody").timeout(Duration::from_secs(15)).send().await.expect("answered while frozen");
    assert_eq!(frozen.status(), 503);
    assert!(frozen.headers().contains_key("retry-after"));
    assert_eq!(frozen.json::<serde_json::Value>().await.unwrap()["error"], "temporarily_unavailable");

    relay.freeze(false);
    let mut status = 0;
    for _ in 0..50 {
        status = token("nobody").send().await.unwrap().status().as_u16();
        if status == 401 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(status, 401, "served again once the database answers");
}
