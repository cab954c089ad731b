//! Token endpoint throughput over HTTP, next to the raw signature rate.
//!
//! `cargo bench --bench token_endpoint` (SQLite in a temp dir), or with
//! `WXFED_BENCH_POSTGRES_URL=postgres://postgres@127.0.0.1:5432/postgres`
//! (a fresh database on that server, dropped at the end). `scripts/bench.sh`
//! runs both.
//!
//! The real app (as the tests start it: `open_backend` + `Application` on
//! port 0) serves on this machine's cores; the load generator is one thread
//! of this process, keeping `concurrency` keep-alive connections busy. So
//! the server and the load generator share the cores: the rates are what
//! the whole machine does, not the server alone.
//!
//! Measured (the scenarios of issue 11's table):
//! 1. RS256, ES256 and EdDSA `sign_message`, one thread: the one-core
//!    signature cost every figure is compared with;
//! 2. GET of the discovery document and of the JWKS (cached bytes);
//! 3. `grant_type=client_credentials` (HTTP Basic), one signature each, for a
//!    client of each access-token algorithm;
//! 4. the authorization-code round trip of a logged-in browser:
//!    GET /authorize (PKCE S256, `scope=openid`) → 303 with `code` →
//!    POST /token → access token + ID token (two signatures), RS256 and ES256;
//! 5. introspection (RFC 7662) of an RS256 access token.
//!
//! Every response is checked; failures are counted and reported, and the
//! run exits non-zero when any request failed.
//!
//! Knobs (environment): `WXFED_BENCH_CONCURRENCY` (32), `WXFED_BENCH_REQUESTS`
//! (client_credentials requests, 5000), `WXFED_BENCH_ROUND_TRIPS` (2000),
//! `WXFED_BENCH_POOL_SIZE` (database pool, 16 = the server default).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::cell::{Cell, RefCell};
use std::error::Error;
use std::hint::black_box;
use std::net::TcpListener;
use std::rc::Rc;
use std::time::{Duration, Instant};

use diesel::connection::SimpleConnection;
use wxfed::accounts::manage::{Actor, NewAccount};
use wxfed::config::{MasterKeySource, SecretString, Settings};
use wxfed::db::{self, DatabaseTarget};
use wxfed::oidc::clients::{GrantType, NewClient};
use wxfed::oidc::signing::{SigningAlgorithm, SigningKey};
use wxfed::startup::{Application, open_backend};

type BoxError = Box<dyn Error>;

const USERNAME: &str = "bench";
const PASSWORD: &str = "correct horse battery";
const REDIRECT_URI: &str = "https://rp.example.com/callback";
/// RFC 7636 Appendix B.
const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

fn env_number(name: &str, default: usize) -> Result<usize, BoxError> {
    match std::env::var(name).ok().filter(|v| !v.is_empty()) {
        None => Ok(default),
        Some(value) => value.parse().map_err(|_| format!("{name} must be a positive number, not `{value}`").into()),
    }
}

// ---------------------------------------------------------------------------
// The database: a temp SQLite file, or a fresh PostgreSQL database.

struct BenchDb {
    url: String,
    master_key: String,
    dir: tempfile::TempDir,
    /// (admin URL, database name) to drop at the end.
    postgres: Option<(String, String)>,
}

impl BenchDb {
    fn new(postgres_admin_url: Option<String>) -> Result<Self, BoxError> {
        let dir = tempfile::tempdir()?;
        let master_key = wxfed::secrets::generate_master_key();
        match postgres_admin_url {
            Some(admin_url) => {
                let name = format!("wxfed_bench_{}", uuid::Uuid::new_v4().simple());
                let mut admin = db::establish(&DatabaseTarget::parse(&admin_url)?)?;
                admin.batch_execute(&format!("CREATE DATABASE \"{name}\""))?;
                let mut url = url::Url::parse(&admin_url)?;
                url.set_path(&format!("/{name}"));
                Ok(Self { url: url.to_string(), master_key, dir, postgres: Some((admin_url, name)) })
            }
            None => {
                let url = format!("sqlite://{}", dir.path().join("wxfed.db").display());
                Ok(Self { url, master_key, dir, postgres: None })
            }
        }
    }

    fn label(&self) -> &'static str {
        if self.postgres.is_some() { "PostgreSQL" } else { "SQLite" }
    }

    fn settings(&self, listener: &TcpListener, workers: usize, pool_size: u32) -> Result<Settings, BoxError> {
        let port = listener.local_addr()?.port();
        let database = DatabaseTarget::parse(&self.url)?;
        let master_key = MasterKeySource::Value(SecretString::new(self.master_key.clone()));
        let mut settings = Settings::defaults(database, master_key)?;
        settings.bind = listener.local_addr()?;
        settings.issuer = format!("http://127.0.0.1:{port}");
        settings.data_dir = self.dir.path().to_owned();
        settings.database_pool_size = pool_size;
        settings.log_level = "error".into();
        settings.workers = workers;
        settings.password_hash_concurrency = 2;
        Ok(settings)
    }
}

impl Drop for BenchDb {
    fn drop(&mut self) {
        if let Some((admin_url, name)) = &self.postgres {
            let dropped = DatabaseTarget::parse(admin_url)
                .map_err(|e| e.to_string())
                .and_then(|target| db::establish(&target).map_err(|e| e.to_string()))
                .and_then(|mut admin| {
                    admin
                        .batch_execute(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
                        .map_err(|e| e.to_string())
                });
            if let Err(error) = dropped {
                eprintln!("could not drop the benchmark database {name}: {error}");
            }
        }
    }
}

// ---------------------------------------------------------------------------
// Raw signatures.

/// Signatures per second of `sign_message` on a 600-byte message (about a
/// JWT's signing input), one thread.
fn signature_rate(alg: SigningAlgorithm, iterations: u32) -> Result<f64, BoxError> {
    let key = SigningKey::generate(alg)?;
    let message = [0x5a_u8; 600];
    for _ in 0..iterations / 20 + 1 {
        black_box(key.sign_message(black_box(&message))?);
    }
    let start = Instant::now();
    for _ in 0..iterations {
        black_box(key.sign_message(black_box(&message))?);
    }
    let elapsed = start.elapsed().as_secs_f64();
    let rate = f64::from(iterations) / elapsed;
    println!("{alg} sign: {rate:.0}/s ({iterations} in {elapsed:.2} s, one thread)");
    Ok(rate)
}

// ---------------------------------------------------------------------------
// Where the CPU went (Linux /proc; left out elsewhere).

/// `/proc` times are in USER_HZ, which is 100 on Linux.
const TICKS_PER_SEC: f64 = 100.0;

/// CPU counters at one moment: the whole machine (every process, the
/// PostgreSQL server included), this process (server + load generator) and
/// the calling thread (the load generator: the actix system thread).
#[derive(Clone, Copy)]
struct CpuSnapshot {
    at: Instant,
    machine_busy: u64,
    machine_total: u64,
    process: u64,
    thread: u64,
}

/// utime + stime from a `/proc/.../stat` file.
fn proc_stat_ticks(path: &str) -> Option<u64> {
    let text = std::fs::read_to_string(path).ok()?;
    let after_comm = &text[text.rfind(')')? + 1..];
    let fields: Vec<&str> = after_comm.split_whitespace().collect();
    // Fields 14 and 15 of proc(5), counted from field 3 (state).
    Some(fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?)
}

fn cpu_snapshot() -> Option<CpuSnapshot> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let ticks: Vec<u64> =
        stat.lines().next()?.split_whitespace().skip(1).map(|t| t.parse().ok()).collect::<Option<_>>()?;
    // user nice system idle iowait irq softirq steal (guest time is already in user).
    let total: u64 = ticks.iter().take(8).sum();
    let idle = ticks.get(3)? + ticks.get(4)?;
    Some(CpuSnapshot {
        at: Instant::now(),
        machine_busy: total - idle,
        machine_total: total,
        process: proc_stat_ticks("/proc/self/stat")?,
        thread: proc_stat_ticks("/proc/thread-self/stat")?,
    })
}

/// CPU used between two snapshots, in cores (seconds of CPU per second).
struct CpuUse {
    machine: f64,
    server: f64,
    generator: f64,
    /// Everything else on the machine (PostgreSQL, other processes).
    others: f64,
}

impl CpuUse {
    fn between(before: &CpuSnapshot, after: &CpuSnapshot, cores: usize) -> Self {
        let wall = after.at.duration_since(before.at).as_secs_f64().max(1e-9);
        let ticks = |a: u64, b: u64| b.saturating_sub(a) as f64 / TICKS_PER_SEC / wall;
        let machine_total = after.machine_total.saturating_sub(before.machine_total).max(1) as f64;
        let machine = after.machine_busy.saturating_sub(before.machine_busy) as f64 / machine_total * cores as f64;
        let process = ticks(before.process, after.process);
        let generator = ticks(before.thread, after.thread);
        Self { machine, server: (process - generator).max(0.0), generator, others: (machine - process).max(0.0) }
    }
}

// ---------------------------------------------------------------------------
// Load generation.

/// What the workers need to know about the running provider.
/// A client registered for the benchmark, with one algorithm for both its
/// access and ID tokens.
struct BenchClient {
    alg: SigningAlgorithm,
    client_id: String,
    client_secret: String,
}

struct Target {
    address: String,
    clients: Vec<BenchClient>,
    /// An access token to introspect (RS256, from client_credentials).
    introspected: RefCell<String>,
}

impl Target {
    fn client(&self, alg: SigningAlgorithm) -> &BenchClient {
        self.clients.iter().find(|c| c.alg == alg).unwrap_or(&self.clients[0])
    }

    fn authorize_url(&self, alg: SigningAlgorithm) -> String {
        let params = [
            ("response_type", "code"),
            ("client_id", self.client(alg).client_id.as_str()),
            ("redirect_uri", REDIRECT_URI),
            ("scope", "openid"),
            ("state", "s-123"),
            ("nonce", "n-456"),
            ("code_challenge", CHALLENGE),
            ("code_challenge_method", "S256"),
        ];
        format!("{}/authorize?{}", self.address, serde_urlencoded::to_string(params).unwrap_or_default())
    }
}

/// A browser-like client: its own keep-alive connection and cookie jar,
/// redirects not followed.
fn new_client() -> Result<reqwest::Client, BoxError> {
    Ok(reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .user_agent("wxfed-bench/1.0")
        .build()?)
}

#[derive(Clone, Copy)]
enum Scenario {
    Get(&'static str),
    ClientCredentials(SigningAlgorithm),
    CodeRoundTrip(SigningAlgorithm),
    Introspection,
}

async fn get(client: &reqwest::Client, target: &Target, path: &str) -> Result<Sample, String> {
    let start = Instant::now();
    let response =
        client.get(format!("{}{path}", target.address)).send().await.map_err(|e| format!("GET {path}: {e}"))?;
    let status = response.status();
    let body = response.bytes().await.map_err(|e| format!("GET {path} body: {e}"))?;
    if status != 200 || body.is_empty() {
        return Err(format!("GET {path}: {status}"));
    }
    Ok(Sample { total: start.elapsed(), legs: None })
}

async fn introspection(client: &reqwest::Client, target: &Target) -> Result<Sample, String> {
    let token = target.introspected.borrow().clone();
    let rp = target.client(SigningAlgorithm::Rs256);
    let start = Instant::now();
    let response = client
        .post(format!("{}/introspect", target.address))
        .basic_auth(&rp.client_id, Some(&rp.client_secret))
        .form(&[("token", token.as_str())])
        .send()
        .await
        .map_err(|e| format!("POST /introspect: {e}"))?;
    let status = response.status();
    let body = response.bytes().await.map_err(|e| format!("POST /introspect body: {e}"))?;
    let total = start.elapsed();
    let json: serde_json::Value = serde_json::from_slice(&body).map_err(|e| format!("POST /introspect: {e}"))?;
    if status != 200 || json["active"] != true {
        return Err(format!("POST /introspect: {status}: {json}"));
    }
    Ok(Sample { total, legs: None })
}

/// One measured operation: its total time and, for the round trip, the
/// time of each leg (authorize, token).
struct Sample {
    total: Duration,
    legs: Option<(Duration, Duration)>,
}

async fn client_credentials(
    client: &reqwest::Client,
    target: &Target,
    alg: SigningAlgorithm,
) -> Result<Sample, String> {
    let rp = target.client(alg);
    let start = Instant::now();
    let response = client
        .post(format!("{}/token", target.address))
        .basic_auth(&rp.client_id, Some(&rp.client_secret))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .map_err(|e| format!("POST /token: {e}"))?;
    let status = response.status();
    let body = response.bytes().await.map_err(|e| format!("POST /token body: {e}"))?;
    let total = start.elapsed();
    if status != 200 {
        return Err(format!("POST /token: {status}: {}", String::from_utf8_lossy(&body)));
    }
    let json: serde_json::Value = serde_json::from_slice(&body).map_err(|e| format!("POST /token: {e}"))?;
    let Some(token) = json["access_token"].as_str() else {
        return Err(format!("POST /token: no access_token in {json}"));
    };
    if alg == SigningAlgorithm::Rs256 {
        token.clone_into(&mut target.introspected.borrow_mut());
    }
    Ok(Sample { total, legs: None })
}

async fn code_round_trip(
    client: &reqwest::Client,
    target: &Target,
    alg: SigningAlgorithm,
    authorize_url: &str,
) -> Result<Sample, String> {
    let rp = target.client(alg);
    let start = Instant::now();
    let response = client.get(authorize_url).send().await.map_err(|e| format!("GET /authorize: {e}"))?;
    let status = response.status();
    let location = response.headers().get("location").and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
    let body = response.bytes().await.map_err(|e| format!("GET /authorize body: {e}"))?;
    if status != 303 || !location.starts_with(REDIRECT_URI) {
        return Err(format!("GET /authorize: {status} to `{location}`: {}", String::from_utf8_lossy(&body)));
    }
    let code = url::Url::parse(&location)
        .ok()
        .and_then(|url| url.query_pairs().find(|(k, _)| k == "code").map(|(_, v)| v.into_owned()))
        .ok_or_else(|| format!("GET /authorize: no code in `{location}`"))?;
    let authorized = start.elapsed();
    let response = client
        .post(format!("{}/token", target.address))
        .basic_auth(&rp.client_id, Some(&rp.client_secret))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", REDIRECT_URI),
            ("code_verifier", VERIFIER),
        ])
        .send()
        .await
        .map_err(|e| format!("POST /token: {e}"))?;
    let status = response.status();
    let body = response.bytes().await.map_err(|e| format!("POST /token body: {e}"))?;
    let total = start.elapsed();
    if status != 200 {
        return Err(format!("POST /token: {status}: {}", String::from_utf8_lossy(&body)));
    }
    let json: serde_json::Value = serde_json::from_slice(&body).map_err(|e| format!("POST /token: {e}"))?;
    if !json["access_token"].is_string() || !json["id_token"].is_string() {
        return Err(format!("POST /token: no access_token or id_token in {json}"));
    }
    Ok(Sample { total, legs: Some((authorized, total - authorized)) })
}

/// What a batch of operations gave.
struct Outcome {
    elapsed: Duration,
    cpu: Option<CpuUse>,
    samples: Vec<Sample>,
    failures: usize,
    first_failures: Vec<String>,
}

impl Outcome {
    fn rate(&self) -> f64 {
        self.samples.len() as f64 / self.elapsed.as_secs_f64()
    }
}

/// Runs `total` operations on the workers' clients, each worker doing one
/// at a time (so `clients.len()` are in flight), and collects the results.
async fn drive(scenario: Scenario, clients: &[reqwest::Client], target: &Rc<Target>, total: usize) -> Outcome {
    let next = Rc::new(Cell::new(0_usize));
    let failures = Rc::new(RefCell::new((0_usize, Vec::new())));
    let authorize_url = Rc::new(match scenario {
        Scenario::CodeRoundTrip(alg) => target.authorize_url(alg),
        _ => String::new(),
    });
    let cpu_before = cpu_snapshot();
    let start = Instant::now();
    let mut handles = Vec::new();
    for client in clients {
        let (client, target, next, failures, authorize_url) =
            (client.clone(), target.clone(), next.clone(), failures.clone(), authorize_url.clone());
        handles.push(actix_rt::spawn(async move {
            let mut samples = Vec::with_capacity(total / 8 + 1);
            loop {
                let ticket = next.get();
                if ticket >= total {
                    break;
                }
                next.set(ticket + 1);
                let result = match scenario {
                    Scenario::Get(path) => get(&client, &target, path).await,
                    Scenario::ClientCredentials(alg) => client_credentials(&client, &target, alg).await,
                    Scenario::CodeRoundTrip(alg) => code_round_trip(&client, &target, alg, &authorize_url).await,
                    Scenario::Introspection => introspection(&client, &target).await,
                };
                match result {
                    Ok(sample) => samples.push(sample),
                    Err(message) => {
                        let mut failures = failures.borrow_mut();
                        failures.0 += 1;
                        if failures.1.len() < 3 {
                            failures.1.push(message);
                        }
                    }
                }
            }
            samples
        }));
    }
    let mut samples = Vec::with_capacity(total);
    for handle in handles {
        match handle.await {
            Ok(mut done) => samples.append(&mut done),
            Err(error) => {
                let mut failures = failures.borrow_mut();
                failures.0 += 1;
                failures.1.push(format!("a worker died: {error}"));
            }
        }
    }
    let elapsed = start.elapsed();
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    let cpu = cpu_before.zip(cpu_snapshot()).map(|(before, after)| CpuUse::between(&before, &after, cores));
    let (failures, first_failures) = failures.take();
    Outcome { elapsed, cpu, samples, failures, first_failures }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn latency_line(mut times: Vec<Duration>) -> String {
    times.sort_unstable();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    format!(
        "p50 {:.2} ms, p90 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        ms(percentile(&times, 50.0)),
        ms(percentile(&times, 90.0)),
        ms(percentile(&times, 99.0)),
        ms(times.last().copied().unwrap_or_default()),
    )
}

/// A measured batch, per operation.
struct Measured {
    rate: f64,
    /// CPU of the wxfed server (this process minus the load generator).
    server_cpu_ms: Option<f64>,
    /// CPU of everything else on the machine: PostgreSQL when used.
    others_cpu_ms: Option<f64>,
}

/// Prints a measured batch.
fn report(label: &str, unit: &str, outcome: &Outcome) -> Measured {
    let rate = outcome.rate();
    println!(
        "{label}: {rate:.0} {unit}/s ({} in {:.2} s, {} failed)",
        outcome.samples.len(),
        outcome.elapsed.as_secs_f64(),
        outcome.failures
    );
    println!("  latency: {}", latency_line(outcome.samples.iter().map(|s| s.total).collect()));
    let legs: Vec<(Duration, Duration)> = outcome.samples.iter().filter_map(|s| s.legs).collect();
    if !legs.is_empty() {
        println!("  GET /authorize: {}", latency_line(legs.iter().map(|l| l.0).collect()));
        println!("  POST /token:    {}", latency_line(legs.iter().map(|l| l.1).collect()));
    }
    let per_op = |cores: f64| cores * 1000.0 / rate;
    if let Some(cpu) = &outcome.cpu {
        let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
        println!(
            "  CPU: {:.2} of {cores} cores busy = wxfed server {:.2} + load generator {:.2} + other processes {:.2}; \
             per {unit}: server {:.3} ms, load generator {:.3} ms, others {:.3} ms",
            cpu.machine,
            cpu.server,
            cpu.generator,
            cpu.others,
            per_op(cpu.server),
            per_op(cpu.generator),
            per_op(cpu.others),
        );
    }
    for message in &outcome.first_failures {
        println!("  FAILED: {message}");
    }
    Measured {
        rate,
        server_cpu_ms: outcome.cpu.as_ref().map(|c| per_op(c.server)),
        others_cpu_ms: outcome.cpu.as_ref().map(|c| per_op(c.others)),
    }
}

/// Logs a client in through the login form (CSRF token from GET /login).
async fn log_in(client: &reqwest::Client, address: &str) -> Result<(), BoxError> {
    let page = client.get(format!("{address}/login")).send().await?.text().await?;
    let marker = "name=\"csrf_token\" value=\"";
    let start = page.find(marker).ok_or("the login page has no CSRF field")? + marker.len();
    let end = page[start..].find('"').ok_or("the CSRF field is not closed")? + start;
    let csrf = &page[start..end];
    let response = client
        .post(format!("{address}/login"))
        .form(&[("username", USERNAME), ("password", PASSWORD), ("csrf_token", csrf)])
        .send()
        .await?;
    if response.status() != 303 {
        return Err(format!("login failed: {}", response.status()).into());
    }
    Ok(())
}

// ---------------------------------------------------------------------------

struct Config {
    concurrency: usize,
    requests: usize,
    round_trips: usize,
    /// Requests of the cheap scenarios (discovery, JWKS; half for introspection).
    gets: usize,
    pool_size: u32,
    workers: usize,
}

/// One measured scenario, for the comparison.
struct Row {
    label: String,
    unit: &'static str,
    measured: Measured,
    /// The signatures one operation makes, and their algorithm.
    signatures: Option<(u32, SigningAlgorithm)>,
}

/// Warm-up, then the measured batch.
#[allow(clippy::too_many_arguments)] // a flat list reads better at the call sites
async fn run_scenario(
    scenario: Scenario,
    clients: &[reqwest::Client],
    target: &Rc<Target>,
    total: usize,
    label: String,
    unit: &'static str,
    signatures: Option<(u32, SigningAlgorithm)>,
    failed: &mut usize,
) -> Row {
    let warm_up = drive(scenario, clients, target, (total / 10).max(clients.len())).await;
    *failed += warm_up.failures;
    if let Some(message) = warm_up.first_failures.first() {
        println!("warm-up failed: {message}");
    }
    let outcome = drive(scenario, clients, target, total).await;
    *failed += outcome.failures;
    let measured = report(&label, unit, &outcome);
    Row { label, unit, measured, signatures }
}

/// Starts the provider and measures every scenario; returns the rows and
/// the number of failed operations.
async fn measure_endpoints(db: &BenchDb, config: &Config) -> Result<(Vec<Row>, usize), BoxError> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let settings = db.settings(&listener, config.workers, config.pool_size)?;
    let address = settings.issuer.clone();
    let backend = open_backend(&settings)?;

    // An account and one confidential, first-party client per algorithm,
    // through the library (as the CLI and the tests do).
    let mut bench_clients = Vec::new();
    {
        let mut conn = backend.pool.get()?;
        let actor = Actor("bench".into());
        let hash = wxfed::accounts::password::hash_blocking(PASSWORD)?;
        let account = NewAccount { username: USERNAME.into(), ..Default::default() };
        wxfed::accounts::manage::add(&mut conn, &backend.secrets, &actor, &account, Some(hash))?;
        for alg in SigningAlgorithm::ALL {
            let client = NewClient {
                name: format!("Benchmark RP {alg}"),
                redirect_uris: vec![REDIRECT_URI.into()],
                post_logout_redirect_uris: vec![],
                public: false,
                first_party: true,
                grant_types: vec![GrantType::AuthorizationCode, GrantType::RefreshToken, GrantType::ClientCredentials],
                scopes: vec![],
                id_token_signing_alg: alg,
                always_issue_refresh_token: false,
                wechat_app: None,
                host_app: false,
                trust_host: None,
                access_token_signing_alg: alg,
                host_for: vec![],
                backchannel_logout_uri: None,
                backchannel_logout_session_required: false,
            };
            let (client, secret) = wxfed::oidc::clients::register(&mut conn, &backend.secrets, &actor, &client)?;
            let client_secret = secret.ok_or("a confidential client has a secret")?;
            bench_clients.push(BenchClient { alg, client_id: client.client_id, client_secret });
        }
    }

    let app = Application::build_with(settings, backend, listener)?;
    actix_rt::spawn(app.run_until_stopped());
    let target = Rc::new(Target { address, clients: bench_clients, introspected: RefCell::new(String::new()) });
    let clients: Vec<reqwest::Client> = (0..config.concurrency).map(|_| new_client()).collect::<Result<_, _>>()?;
    let concurrency = config.concurrency;
    let mut failed = 0;
    let mut rows = Vec::new();

    println!(
        "server: {} HTTP workers, database pool {}, {} concurrent keep-alive connections from one load-generator thread",
        config.workers, config.pool_size, concurrency
    );

    for (label, path) in [("discovery", "/.well-known/openid-configuration"), ("JWKS", "/jwks.json")] {
        let scenario = Scenario::Get(path);
        rows.push(run_scenario(scenario, &clients, &target, config.gets, label.into(), "req", None, &mut failed).await);
    }
    for alg in SigningAlgorithm::ALL {
        let label = format!("client_credentials, {alg} access token");
        let scenario = Scenario::ClientCredentials(alg);
        let signatures = Some((1, alg));
        rows.push(
            run_scenario(scenario, &clients, &target, config.requests, label, "req", signatures, &mut failed).await,
        );
    }
    // The RS256 client_credentials run left a valid token to introspect.
    let scenario = Scenario::Introspection;
    rows.push(
        run_scenario(scenario, &clients, &target, config.gets / 2, "introspection".into(), "req", None, &mut failed)
            .await,
    );

    // Authorization code round trips, one logged-in session per worker.
    let login_start = Instant::now();
    for client in &clients {
        log_in(client, &target.address).await?;
    }
    println!("({concurrency} sessions logged in, {:.2} s of argon2)", login_start.elapsed().as_secs_f64());
    for alg in [SigningAlgorithm::Rs256, SigningAlgorithm::Es256] {
        let label = format!("authorization code round trip, {alg}");
        let scenario = Scenario::CodeRoundTrip(alg);
        let signatures = Some((2, alg));
        let total = config.round_trips;
        rows.push(run_scenario(scenario, &clients, &target, total, label, "round trip", signatures, &mut failed).await);
    }
    Ok((rows, failed))
}

fn main() -> Result<(), BoxError> {
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    let config = Config {
        concurrency: env_number("WXFED_BENCH_CONCURRENCY", 32)?.max(1),
        requests: env_number("WXFED_BENCH_REQUESTS", 5000)?.max(1),
        round_trips: env_number("WXFED_BENCH_ROUND_TRIPS", 2000)?.max(1),
        gets: env_number("WXFED_BENCH_GETS", 20000)?.max(1),
        pool_size: u32::try_from(env_number("WXFED_BENCH_POOL_SIZE", 16)?.max(1))?,
        workers: cores,
    };
    let postgres = std::env::var("WXFED_BENCH_POSTGRES_URL").ok().filter(|u| !u.is_empty());
    let db = BenchDb::new(postgres)?;
    let backend_label = db.label();
    println!("== wxfed token endpoint benchmark: {backend_label}, {cores} cores ==");

    // Raw signatures first, while nothing else runs.
    let mut signing_rates = Vec::new();
    for (alg, iterations) in
        [(SigningAlgorithm::Rs256, 2_000), (SigningAlgorithm::Es256, 20_000), (SigningAlgorithm::EdDsa, 20_000)]
    {
        signing_rates.push((alg, signature_rate(alg, iterations)?));
    }
    let rate_of = |alg: SigningAlgorithm| signing_rates.iter().find(|(a, _)| *a == alg).map_or(1.0, |(_, r)| *r);
    let rs256 = rate_of(SigningAlgorithm::Rs256);

    let (rows, failed) = actix_rt::System::new().block_on(measure_endpoints(&db, &config))?;

    // The comparison: each rate against the one-core rate of the signatures
    // one operation needs (issue 11's targets are stated this way).
    println!("== comparison ({backend_label}) ==");
    for (alg, rate) in &signing_rates {
        println!("one {alg} signature: {:.4} ms of one core ({rate:.0}/s)", 1000.0 / rate);
    }
    for row in &rows {
        let rate = row.measured.rate;
        match row.signatures {
            Some((count, alg)) => {
                let bound = rate_of(alg) / f64::from(count);
                print!(
                    "{}: {rate:.0} {}/s = {:.0} % of one core signing its {count} {alg} signature(s) ({bound:.0}/s)",
                    row.label,
                    row.unit,
                    100.0 * rate / bound
                );
                if let Some(server) = row.measured.server_cpu_ms {
                    print!(
                        "; server CPU per {}: {server:.3} ms = {:.1}× the signing",
                        row.unit,
                        server * bound / 1000.0
                    );
                }
                if let Some(others) = row.measured.others_cpu_ms {
                    print!("; other processes (the database, if any) {others:.3} ms");
                }
                println!();
            }
            None => println!(
                "{}: {rate:.0} {}/s = {:.1}× the one-core RS256 signing rate (no signature)",
                row.label,
                row.unit,
                rate / rs256
            ),
        }
    }
    println!(
        "note: the server ({} HTTP workers plus its blocking pool), the load generator (one thread of the same \
         process) and the database share this machine's {cores} cores. Wall time per request is 1/rate for the \
         whole machine; the signature time is one core's (a server bound by signing alone would reach about \
         {cores} × {rs256:.0} signatures/s here).",
        config.workers
    );
    drop(db);
    if failed > 0 {
        return Err(format!("{failed} requests failed: the numbers above are not valid").into());
    }
    Ok(())
}
