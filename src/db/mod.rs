//! Storage: the one place that knows SQL and which backend is in use.
//!
//! Everything above this module works with [`DbConn`] (diesel's
//! `MultiConnection` over PostgreSQL and SQLite) and the query functions of
//! the submodules, which take `&mut DbConn` and return `QueryResult`.
//! Callers own transactions; writes go through [`write_transaction`].

pub mod accounts;
pub mod audit;
pub mod audit_query;
pub mod backchannel;
pub mod clients;
pub mod consents;
pub mod copy;
pub mod grants;
pub mod schema;
pub mod sessions;
pub mod settings;
pub mod signing_keys;
pub mod throttle;
pub mod wechat;

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use diesel::connection::{AnsiTransactionManager, SimpleConnection, TransactionManager};
use diesel::prelude::*;
use diesel::r2d2::R2D2Connection;
use diesel_migrations::{EmbeddedMigrations, MigrationHarness, embed_migrations};

const SQLITE_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/sqlite");
const POSTGRES_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/postgres");

/// A connection to either backend. SQLite must stay the last variant:
/// diesel's derive tries the variants in order.
#[derive(diesel::MultiConnection)]
pub enum DbConn {
    Postgresql(diesel::PgConnection),
    Sqlite(diesel::SqliteConnection),
}

pub type DbPool = r2d2::Pool<ConnectionManager>;
pub type PooledConn = r2d2::PooledConnection<ConnectionManager>;

/// Which backend a database URL names. Parsing the scheme ourselves is what
/// keeps a typo from silently creating an empty SQLite file (diesel's
/// `MultiConnection::establish` falls back to SQLite for any string).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DatabaseTarget {
    Postgres(String),
    Sqlite(std::path::PathBuf),
}

impl DatabaseTarget {
    /// Accepts `postgres://…`, `postgresql://…` and `sqlite://PATH`.
    pub fn parse(url: &str) -> Result<Self, String> {
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            return Ok(Self::Postgres(url.to_owned()));
        }
        if let Some(path) = url.strip_prefix("sqlite://") {
            if path.is_empty() {
                return Err("sqlite:// needs a file path, e.g. sqlite://wxfed-data/wxfed.db".into());
            }
            return Ok(Self::Sqlite(path.into()));
        }
        let scheme = url.split_once("://").map(|(s, _)| s).unwrap_or("");
        if scheme.is_empty() {
            Err("expected a URL starting with sqlite:// or postgres://".into())
        } else {
            Err(format!("unsupported scheme `{scheme}` (use sqlite://PATH or postgres://USER@HOST/DB)"))
        }
    }

    pub fn is_sqlite(&self) -> bool {
        matches!(self, Self::Sqlite(_))
    }
}

/// Server-side limits every PostgreSQL connection sets for its session, so
/// that a stalled client (a frozen or half-partitioned instance) cannot
/// hold locks that stop every other instance. Zero leaves the server's
/// default (no limit).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionLimits {
    /// `lock_timeout`: how long a statement waits for a row or table lock.
    pub lock_timeout_ms: u64,
    /// `statement_timeout`: how long one statement may run.
    pub statement_timeout_ms: u64,
    /// `idle_in_transaction_session_timeout`: a transaction left open by a
    /// client that stopped talking is rolled back (and its locks freed).
    pub idle_in_transaction_timeout_ms: u64,
    /// libpq `connect_timeout`, in seconds.
    pub connect_timeout_secs: u64,
}

impl Default for SessionLimits {
    fn default() -> Self {
        Self {
            lock_timeout_ms: 2_000,
            statement_timeout_ms: 10_000,
            idle_in_transaction_timeout_ms: 5_000,
            connect_timeout_secs: 2,
        }
    }
}

impl SessionLimits {
    fn set_statements(&self) -> String {
        format!(
            "SET lock_timeout = {}; SET statement_timeout = {}; SET idle_in_transaction_session_timeout = {};",
            self.lock_timeout_ms, self.statement_timeout_ms, self.idle_in_transaction_timeout_ms
        )
    }
}

/// The libpq parameters every PostgreSQL URL gets unless it sets them:
/// TCP keepalives, so that a connection to a peer that vanished (a
/// partition, a crashed host) is found dead within about a minute instead
/// of the kernel's two hours, and a connect timeout, so that an
/// unreachable server costs seconds, not minutes. (libpq connection
/// parameters, PostgreSQL docs §34.1.2.)
pub fn with_connection_parameters(url: &str, limits: &SessionLimits) -> String {
    let connect_timeout = limits.connect_timeout_secs.max(1).to_string();
    let defaults: [(&str, &str); 6] = [
        ("keepalives", "1"),
        ("keepalives_idle", "30"),
        ("keepalives_interval", "10"),
        ("keepalives_count", "3"),
        ("tcp_user_timeout", "30000"),
        ("connect_timeout", &connect_timeout),
    ];
    let (base, query) = match url.split_once('?') {
        Some((base, query)) => (base, query.to_owned()),
        None => (url, String::new()),
    };
    let present: Vec<&str> = query.split('&').filter_map(|pair| pair.split('=').next()).collect();
    let mut params: Vec<String> = query.split('&').filter(|p| !p.is_empty()).map(str::to_owned).collect();
    for (key, value) in defaults {
        if !present.contains(&key) {
            params.push(format!("{key}={value}"));
        }
    }
    format!("{base}?{}", params.join("&"))
}

/// Watches every statement of a PostgreSQL connection and remembers when
/// one failed because the connection itself is gone. diesel's own
/// `is_broken` only looks at the transaction manager, so a connection the
/// server closed (restart, `pg_terminate_backend`, idle timeout) would go
/// back to the pool and fail the next request too.
#[derive(Debug, Default)]
struct ConnectionHealth {
    broken: bool,
    /// The last time a statement finished, to decide whether a connection
    /// that sat idle must be probed before it is handed out.
    last_used: Option<std::time::Instant>,
    /// [`FAILURE_EPOCH`] when this connection was last known good.
    epoch: u64,
    /// Statements sent on this connection (each a round trip): how many a
    /// request costs is logged with it (see [`run`]).
    statements: u64,
}

/// Bumped whenever any connection of this process fails with a
/// connection-class error: every connection older than that failure is
/// suspect (a server restart kills them all) and is probed on checkout.
static FAILURE_EPOCH: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

impl diesel::connection::Instrumentation for ConnectionHealth {
    fn on_connection_event(&mut self, event: diesel::connection::InstrumentationEvent<'_>) {
        if let diesel::connection::InstrumentationEvent::StartQuery { .. } = event {
            self.statements += 1;
        }
        if let diesel::connection::InstrumentationEvent::FinishQuery { error, .. } = event {
            self.last_used = Some(std::time::Instant::now());
            if let Some(error) = error
                && is_connection_lost(error)
            {
                self.broken = true;
                FAILURE_EPOCH.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
        }
    }
}

/// True when an error says the connection is unusable (as opposed to a
/// refused statement): diesel's `ClosedConnection` / `UnableToSendCommand`
/// and libpq's messages for a server that went away.
pub fn is_connection_lost(error: &diesel::result::Error) -> bool {
    use diesel::result::{DatabaseErrorKind, Error};
    match error {
        Error::DatabaseError(DatabaseErrorKind::ClosedConnection | DatabaseErrorKind::UnableToSendCommand, _) => true,
        Error::DatabaseError(_, info) => {
            let message = info.message();
            [
                "server closed the connection",
                "terminating connection",
                "no connection to the server",
                "could not send",
                "could not receive",
                "connection not open",
                "SSL connection has been closed",
                "SSL SYSCALL error",
            ]
            .iter()
            .any(|needle| message.contains(needle))
        }
        _ => false,
    }
}

/// True when the database cannot answer right now, but may shortly:
/// connection lost, a lock or statement timeout, SQLite busy. Such
/// failures become `503` + `Retry-After`, not `500` (RFC 9110 §15.6.4).
pub fn is_temporarily_unavailable(error: &diesel::result::Error) -> bool {
    if is_connection_lost(error) {
        return true;
    }
    match error {
        diesel::result::Error::DatabaseError(_, info) => {
            let message = info.message();
            [
                "canceling statement due to lock timeout",
                "canceling statement due to statement timeout",
                "idle-in-transaction timeout",
                "the database system is starting up",
                "the database system is shutting down",
                "too many clients",
                "database is locked",
                "database table is locked",
            ]
            .iter()
            .any(|needle| message.contains(needle))
        }
        _ => false,
    }
}

/// An r2d2 manager that opens the backend named by the URL scheme, and
/// prepares every connection (PostgreSQL: session limits and the health
/// watch; SQLite: WAL, busy timeout, foreign keys).
#[derive(Debug, Clone)]
pub struct ConnectionManager {
    target: DatabaseTarget,
    limits: SessionLimits,
}

impl ConnectionManager {
    pub fn new(target: DatabaseTarget, limits: SessionLimits) -> Self {
        Self { target, limits }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    #[error("{0}")]
    Connection(#[from] diesel::ConnectionError),
    #[error("{0}")]
    Query(#[from] diesel::result::Error),
}

/// Opens one connection with the default [`SessionLimits`].
pub fn establish(target: &DatabaseTarget) -> Result<DbConn, ConnectError> {
    establish_with(target, &SessionLimits::default())
}

pub fn establish_with(target: &DatabaseTarget, limits: &SessionLimits) -> Result<DbConn, ConnectError> {
    match target {
        DatabaseTarget::Postgres(url) => {
            let mut conn = diesel::PgConnection::establish(&with_connection_parameters(url, limits))?;
            conn.set_instrumentation(ConnectionHealth {
                epoch: FAILURE_EPOCH.load(std::sync::atomic::Ordering::Relaxed),
                ..ConnectionHealth::default()
            });
            // One round trip, at connect time only.
            conn.batch_execute(&limits.set_statements())?;
            Ok(DbConn::Postgresql(conn))
        }
        DatabaseTarget::Sqlite(path) => {
            create_private_file(path);
            let mut conn = diesel::SqliteConnection::establish(&path.to_string_lossy())?;
            // Only to count statements: SQLite has no connection to lose.
            conn.set_instrumentation(ConnectionHealth::default());
            // WAL lets readers run beside the writer; busy_timeout makes a
            // writer wait for the lock instead of failing at once.
            conn.batch_execute(
                "PRAGMA journal_mode=WAL; PRAGMA busy_timeout=10000; \
                 PRAGMA foreign_keys=ON; PRAGMA synchronous=NORMAL;",
            )?;
            Ok(DbConn::Sqlite(conn))
        }
    }
}

/// Creates the SQLite file readable by its owner only (0600) before
/// SQLite opens it; SQLite gives its `-wal` and `-shm` files the mode of
/// the database file. An existing file is left as it is.
fn create_private_file(path: &std::path::Path) {
    if path.exists() {
        return;
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    // A failure here (a race with another process) shows up when SQLite opens it.
    let _ = options.open(path);
}

/// Creates `dir` (and missing parents) accessible to its owner only (0700).
pub fn create_private_dir(dir: &std::path::Path) -> std::io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o700);
    }
    builder.create(dir)
}

fn statements_of(conn: &mut DbConn) -> u64 {
    let health = match conn {
        DbConn::Postgresql(pg) => pg.instrumentation().downcast_mut::<ConnectionHealth>(),
        DbConn::Sqlite(sqlite) => sqlite.instrumentation().downcast_mut::<ConnectionHealth>(),
    };
    health.map_or(0, |h| h.statements)
}

tokio::task_local! {
    /// Statements the current request has sent so far (set by the request
    /// middleware with [`count_statements`]).
    static REQUEST_STATEMENTS: std::cell::Cell<u64>;
}

/// Runs `future` (a request) counting the database statements that every
/// [`run`] inside it sends; returns its output and the count. Issue 11:
/// the token path should cost no more round trips than its semantics
/// need, and this is how they are measured (the `db_statements` field of
/// each `request finished` log line).
pub async fn count_statements<T>(future: impl Future<Output = T>) -> (T, u64) {
    REQUEST_STATEMENTS
        .scope(std::cell::Cell::new(0), async move {
            let output = future.await;
            (output, REQUEST_STATEMENTS.with(std::cell::Cell::get))
        })
        .await
}

fn health_of(conn: &mut DbConn) -> Option<&mut ConnectionHealth> {
    match conn {
        DbConn::Postgresql(pg) => pg.instrumentation().downcast_mut::<ConnectionHealth>(),
        DbConn::Sqlite(_) => None,
    }
}

/// How long a connection may sit unused and still be handed out without a
/// probe. Short: background work (the audit chainer polls twice a second)
/// keeps connections busy right up to a restart, and a PostgreSQL restart
/// takes longer than this, so a connection that lived through one is
/// always probed. Under load connections come back within milliseconds,
/// so busy servers pay no probe.
const TRUSTED_IDLE: Duration = Duration::from_millis(100);

/// Whether a pooled connection must be probed before use: it sat idle
/// long enough for the server to have gone away meanwhile, or another
/// connection failed since it was last known good.
fn needs_probe(conn: &mut DbConn) -> bool {
    let current = FAILURE_EPOCH.load(std::sync::atomic::Ordering::Relaxed);
    health_of(conn)
        .is_some_and(|health| health.epoch < current || health.last_used.is_none_or(|t| t.elapsed() > TRUSTED_IDLE))
}

impl r2d2::ManageConnection for ConnectionManager {
    type Connection = DbConn;
    type Error = ConnectError;

    fn connect(&self) -> Result<DbConn, ConnectError> {
        establish_with(&self.target, &self.limits)
    }

    fn is_valid(&self, conn: &mut DbConn) -> Result<(), ConnectError> {
        Ok(conn.ping()?)
    }

    fn has_broken(&self, conn: &mut DbConn) -> bool {
        conn.is_broken() || health_of(conn).is_some_and(|health| health.broken)
    }
}

/// Why the database could not be opened, said in one line for operators.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error("cannot create the directory {0} for the SQLite database: {1}")]
    CreateDir(String, std::io::Error),
    #[error("cannot connect to the database: {0}")]
    Connect(String),
    #[error("cannot apply database migrations: {0}")]
    Migrate(String),
}

/// How many connections a pool may hold and how long a request waits.
#[derive(Debug, Clone, Copy)]
pub struct PoolOptions {
    pub max_size: u32,
    /// Connections kept open while idle; the pool starts with this many,
    /// not `max_size`, so a restart of many instances does not storm the
    /// database.
    pub min_idle: u32,
    /// The longest a request waits for a free connection before it is
    /// answered `503` (RFC 9110 §15.6.4) instead of queueing behind an
    /// outage.
    pub checkout_timeout: Duration,
    /// The longest a request's database work may take, connection wait
    /// included, before it is answered `503` (see [`run`]).
    pub request_timeout: Duration,
    pub session: SessionLimits,
}

impl PoolOptions {
    /// What the CLI needs: one connection, a spare for nested work.
    pub fn for_cli(session: SessionLimits) -> Self {
        // No idle minimum: r2d2 replenishes it on a background thread, and
        // a connection (libpq with OpenSSL) still being opened there while
        // the process exits races OpenSSL's exit-time cleanup: the CLI
        // printed its answer, then died of SIGSEGV now and then.
        Self {
            max_size: 2,
            min_idle: 0,
            checkout_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(600),
            session,
        }
    }
}

/// The largest pool that leaves room on a server with `max_connections`
/// slots, `reserved` of them for superusers: half of what is left, so that
/// other instances, the CLI and an operator's `psql` still get in.
pub fn pool_size_limit(max_connections: u32, reserved: u32) -> u32 {
    (max_connections.saturating_sub(reserved) / 2).max(1)
}

/// How long startup waits for a pooled connection (migrations, the
/// master-key check, loading signing keys). Far longer than a request's
/// [`PoolOptions::checkout_timeout`]: that one is short so that a request
/// fails fast with `503` during an outage, but a process that is starting
/// (on a busy host, or beside many other starting instances) must not give
/// up because one connect plus session setup took a few hundred ms.
pub const STARTUP_CHECKOUT_TIMEOUT: Duration = Duration::from_secs(30);

/// A connection for startup work, waiting up to [`STARTUP_CHECKOUT_TIMEOUT`]
/// (or the pool's own checkout timeout if that is longer).
pub fn startup_checkout(pool: &DbPool, options: &PoolOptions) -> Result<PooledConn, r2d2::Error> {
    pool.get_timeout(options.checkout_timeout.max(STARTUP_CHECKOUT_TIMEOUT))
}

/// Builds the pool; the first connection is made here so that a wrong URL
/// or an unreachable server fails startup rather than the first request.
pub fn open_pool(target: &DatabaseTarget, options: PoolOptions) -> Result<DbPool, OpenError> {
    if let DatabaseTarget::Sqlite(path) = target
        && let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty())
    {
        create_private_dir(dir).map_err(|e| OpenError::CreateDir(dir.display().to_string(), e))?;
    }
    // Probe once directly: r2d2 would retry until its timeout and then
    // report only "timed out", hiding the real cause.
    let mut probe = establish_with(target, &options.session).map_err(|e| OpenError::Connect(e.to_string()))?;
    let mut max_size = options.max_size.max(1);
    if let DbConn::Postgresql(_) = probe {
        match server_connection_slots(&mut probe) {
            Ok((max_connections, reserved)) => {
                let limit = pool_size_limit(max_connections, reserved);
                if max_size > limit {
                    tracing::warn!(
                        configured = max_size,
                        used = limit,
                        max_connections,
                        "database_pool_size would take most of the server's connection slots; using fewer"
                    );
                    max_size = limit;
                }
            }
            Err(error) => tracing::warn!(%error, "cannot read max_connections; keeping database_pool_size"),
        }
    }
    drop(probe);
    let min_idle = options.min_idle.min(max_size);
    let pool = r2d2::Pool::builder()
        .max_size(max_size)
        .min_idle(Some(min_idle))
        .connection_timeout(options.checkout_timeout)
        // No `SELECT 1` before every use: a broken connection is marked by
        // `ConnectionHealth` and discarded by `has_broken`, and [`checkout`]
        // probes only connections that are suspect.
        .test_on_check_out(false)
        // Not `build`: it waits for `min_idle` connections only as long as
        // the (short, request-time) checkout timeout, so a busy host could
        // not start. We wait for them ourselves, with the startup budget.
        .build_unchecked(ConnectionManager::new(target.clone(), options.session));
    wait_for_idle_connections(&pool, min_idle, options.checkout_timeout.max(STARTUP_CHECKOUT_TIMEOUT))?;
    Ok(pool)
}

/// Waits until the pool's background threads have opened `wanted`
/// connections, so that startup's checkouts take those instead of asking
/// for more (which would open more than `min_idle` at startup).
fn wait_for_idle_connections(pool: &DbPool, wanted: u32, wait: Duration) -> Result<(), OpenError> {
    let deadline = std::time::Instant::now() + wait;
    while pool.state().connections < wanted {
        if std::time::Instant::now() >= deadline {
            return Err(OpenError::Connect(format!(
                "the database did not accept {wanted} connection(s) within {} s",
                wait.as_secs()
            )));
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    Ok(())
}

#[derive(QueryableByName)]
struct Setting {
    #[diesel(sql_type = diesel::sql_types::Text)]
    setting: String,
}

/// `max_connections` and `superuser_reserved_connections` of the server.
fn server_connection_slots(conn: &mut DbConn) -> QueryResult<(u32, u32)> {
    let read = |conn: &mut DbConn, name: &str| -> QueryResult<u32> {
        let rows: Vec<Setting> = diesel::sql_query("SELECT setting FROM pg_settings WHERE name = $1")
            .bind::<diesel::sql_types::Text, _>(name)
            .load(conn)?;
        Ok(rows.first().and_then(|row| row.setting.parse().ok()).unwrap_or(0))
    };
    let max_connections = read(conn, "max_connections")?;
    let reserved = read(conn, "superuser_reserved_connections")?;
    Ok((max_connections, reserved))
}

/// A connection from the pool that is known to work: a connection that
/// is suspect (see [`needs_probe`]) is probed first, and a dead one is
/// dropped (the pool discards it) and the next one taken, so that once
/// the database is back after a restart the next request succeeds.
pub fn checkout(pool: &DbPool) -> Result<PooledConn, DbError> {
    // Every pooled connection can be dead after a restart; one more try
    // than that opens a fresh connection.
    for _ in 0..=pool.max_size() {
        let waited = std::time::Instant::now();
        let got = pool.get();
        crate::metrics::pool_wait(waited.elapsed().as_secs_f64());
        let mut conn = got?;
        if !needs_probe(&mut conn) {
            return Ok(conn);
        }
        match conn.ping() {
            Ok(()) => {
                if let Some(health) = health_of(&mut conn) {
                    health.epoch = FAILURE_EPOCH.load(std::sync::atomic::Ordering::Relaxed);
                }
                return Ok(conn);
            }
            Err(error) if is_connection_lost(&error) => {
                // Marked broken by `ConnectionHealth`: the pool drops it.
                continue;
            }
            Err(error) => return Err(DbError::from(error)),
        }
    }
    Err(DbError::Unavailable("every database connection failed".into()))
}

/// The migrations written in the connection's dialect.
fn migrations_of(conn: &DbConn) -> EmbeddedMigrations {
    match conn {
        DbConn::Postgresql(_) => POSTGRES_MIGRATIONS,
        DbConn::Sqlite(_) => SQLITE_MIGRATIONS,
    }
}

/// Applies every pending migration of the connection's backend.
pub fn run_migrations(conn: &mut DbConn) -> Result<usize, OpenError> {
    let source = migrations_of(conn);
    conn.run_pending_migrations(source).map(|applied| applied.len()).map_err(|e| OpenError::Migrate(e.to_string()))
}

/// How many migrations of the connection's backend are not applied yet
/// (`wxfed config check --connect`: changes nothing).
pub fn pending_migrations(conn: &mut DbConn) -> Result<usize, OpenError> {
    let source = migrations_of(conn);
    conn.pending_migrations(source).map(|pending| pending.len()).map_err(|e| OpenError::Migrate(e.to_string()))
}

/// Reverts every applied migration (tests and `wxfed migrate --revert-all`).
pub fn revert_all_migrations(conn: &mut DbConn) -> Result<usize, OpenError> {
    let source = migrations_of(conn);
    conn.revert_all_migrations(source).map(|reverted| reverted.len()).map_err(|e| OpenError::Migrate(e.to_string()))
}

/// One SQLite writer at a time per process (see [`write_transaction`]).
static SQLITE_WRITER: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Runs `f` in a transaction meant to write.
///
/// On SQLite this is `BEGIN IMMEDIATE`: a deferred transaction that reads
/// and then writes fails with SQLITE_BUSY (which `busy_timeout` does not
/// retry) when another connection wrote in between; taking the write lock
/// up front makes concurrent writers queue instead. Nested calls become
/// savepoints.
pub fn write_transaction<T, E, F>(conn: &mut DbConn, f: F) -> Result<T, E>
where
    F: FnOnce(&mut DbConn) -> Result<T, E>,
    E: From<diesel::result::Error>,
{
    let outermost_sqlite = match conn {
        DbConn::Sqlite(inner) => {
            AnsiTransactionManager::transaction_manager_status_mut(inner).transaction_depth()?.is_none()
        }
        DbConn::Postgresql(_) => false,
    };
    if !outermost_sqlite {
        return conn.transaction(f);
    }
    // SQLite allows one writer at a time. Writers of this process queue
    // here and are handed the lock at once; left to SQLite they would poll
    // with its busy handler, sleeping 1 to 100 ms between tries. (Other
    // processes — the CLI — still meet the busy handler.)
    let _writer = SQLITE_WRITER.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    if let DbConn::Sqlite(inner) = conn {
        AnsiTransactionManager::begin_transaction_sql(inner, "BEGIN IMMEDIATE")?;
    }
    finish_transaction(conn, f)
}

/// Runs read-only `f` on one consistent snapshot of the database, so that
/// what it reads in several statements belongs together even while others
/// commit (the audit verifier reads the chain head, then the rows: without
/// a snapshot a batch chained in between looks like rows beyond the head).
/// PostgreSQL: `REPEATABLE READ READ ONLY`; SQLite: a deferred transaction,
/// whose first read fixes the snapshot (WAL). Inside another transaction
/// `f` simply runs in it.
pub fn read_snapshot<T, E, F>(conn: &mut DbConn, f: F) -> Result<T, E>
where
    F: FnOnce(&mut DbConn) -> Result<T, E>,
    E: From<diesel::result::Error>,
{
    let outermost = match conn {
        DbConn::Sqlite(inner) => {
            AnsiTransactionManager::transaction_manager_status_mut(inner).transaction_depth()?.is_none()
        }
        DbConn::Postgresql(inner) => {
            AnsiTransactionManager::transaction_manager_status_mut(inner).transaction_depth()?.is_none()
        }
    };
    if !outermost {
        return f(conn);
    }
    match conn {
        DbConn::Sqlite(inner) => AnsiTransactionManager::begin_transaction_sql(inner, "BEGIN")?,
        DbConn::Postgresql(inner) => {
            AnsiTransactionManager::begin_transaction_sql(inner, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")?
        }
    }
    finish_transaction(conn, f)
}

/// Runs `f` in the transaction just begun, then commits it (or rolls it
/// back when `f` fails or the commit does).
fn finish_transaction<T, E, F>(conn: &mut DbConn, f: F) -> Result<T, E>
where
    F: FnOnce(&mut DbConn) -> Result<T, E>,
    E: From<diesel::result::Error>,
{
    match f(conn) {
        Ok(value) => {
            if let Err(commit_error) = <DbConn as Connection>::TransactionManager::commit_transaction(conn) {
                let _ = <DbConn as Connection>::TransactionManager::rollback_transaction(conn);
                return Err(commit_error.into());
            }
            Ok(value)
        }
        Err(error) => {
            // The original error matters more than a failed rollback; a
            // broken connection is discarded by the pool.
            let _ = <DbConn as Connection>::TransactionManager::rollback_transaction(conn);
            Err(error)
        }
    }
}

/// Errors of the glue between async handlers and the blocking database.
///
/// [`DbError::is_unavailable`] tells an outage (answer `503` with
/// `Retry-After`, the client may retry) from a real internal error (`500`).
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    /// No connection within the pool's checkout timeout: the database is
    /// down, hanging, or every connection is busy.
    #[error("no database connection available: {0}")]
    Pool(#[from] r2d2::Error),
    #[error("database query failed: {0}")]
    Query(#[from] diesel::result::Error),
    /// The database is unreachable for another reason.
    #[error("the database is unavailable: {0}")]
    Unavailable(String),
    #[error("the blocking thread pool is gone")]
    Canceled,
}

impl DbError {
    /// True for an outage rather than a bug: the request may succeed
    /// when retried shortly.
    pub fn is_unavailable(&self) -> bool {
        match self {
            Self::Pool(_) | Self::Unavailable(_) => true,
            Self::Query(error) => is_temporarily_unavailable(error),
            Self::Canceled => false,
        }
    }
}

/// Seconds a client is told to wait (`Retry-After`) while the database is
/// unavailable.
pub const RETRY_AFTER_SECS: u64 = 2;

/// The request deadline [`run`] applies, in milliseconds: set once at
/// startup from `WXFED_DATABASE_REQUEST_TIMEOUT_MS` (a process-wide value
/// because every pool of a process serves the same settings).
static REQUEST_DEADLINE_MS: AtomicU64 = AtomicU64::new(3_000);

pub fn set_request_deadline(deadline: Duration) {
    REQUEST_DEADLINE_MS.store(u64::try_from(deadline.as_millis()).unwrap_or(u64::MAX), Ordering::Relaxed);
}

/// Runs a request's blocking database work on actix's blocking pool, never
/// on an async worker. The closure gets a pooled connection; the caller
/// picks the transaction it needs.
///
/// Answered within the request deadline whatever the database does (issue
/// 10 item 13): a PostgreSQL that is frozen or cut off mid-statement still
/// acknowledges at the TCP level, so neither its `statement_timeout` nor
/// keepalives fire and libpq would wait until it thaws. After the deadline
/// the request gets [`DbError::Unavailable`] (a `503` with `Retry-After`);
/// the work itself is not abandoned: it goes on on its thread and commits
/// or rolls back as a whole when the server answers, so the outcome is
/// "unknown, retry", never half done. Background jobs and streamed
/// downloads, which may legitimately take longer, use [`run_long`].
pub async fn run<T, E, F>(pool: &DbPool, f: F) -> Result<T, E>
where
    F: FnOnce(&mut DbConn) -> Result<T, E> + Send + 'static,
    T: Send + 'static,
    E: From<DbError> + Send + 'static,
{
    let deadline = Duration::from_millis(REQUEST_DEADLINE_MS.load(Ordering::Relaxed));
    match tokio::time::timeout(deadline, run_long(pool, f)).await {
        Ok(result) => result,
        Err(_) => {
            crate::metrics::database_deadline_exceeded();
            tracing::warn!(deadline_ms = deadline.as_millis() as u64, "database work exceeded the request deadline");
            Err(E::from(DbError::Unavailable("the database did not answer in time".into())))
        }
    }
}

/// [`run`] without the request deadline: for background jobs (chainer,
/// retention, sweeps, key reloads), imports and a download already begun.
pub async fn run_long<T, E, F>(pool: &DbPool, f: F) -> Result<T, E>
where
    F: FnOnce(&mut DbConn) -> Result<T, E> + Send + 'static,
    T: Send + 'static,
    E: From<DbError> + Send + 'static,
{
    let pool = pool.clone();
    let (result, statements) = actix_web::web::block(move || {
        let mut conn = match checkout(&pool) {
            Ok(conn) => conn,
            Err(error) => return (Err(E::from(error)), 0),
        };
        let before = statements_of(&mut conn);
        let result = f(&mut conn);
        (result, statements_of(&mut conn).saturating_sub(before))
    })
    .await
    .map_err(|_| E::from(DbError::Canceled))?;
    let _ = REQUEST_STATEMENTS.try_with(|count| count.set(count.get() + statements));
    result
}

/// True for a unique-constraint violation (a lost race on an insert).
pub fn is_unique_violation(error: &diesel::result::Error) -> bool {
    matches!(error, diesel::result::Error::DatabaseError(diesel::result::DatabaseErrorKind::UniqueViolation, _))
}

/// Current UTC time truncated to microseconds: both backends store that
/// precision, so a value read back equals the value written (the audit
/// chain hashes timestamps and depends on that).
pub fn now() -> chrono::NaiveDateTime {
    let now = chrono::Utc::now().naive_utc();
    let micros = now.and_utc().timestamp_micros();
    chrono::DateTime::from_timestamp_micros(micros).map(|t| t.naive_utc()).unwrap_or(now)
}
