//! Storage: the one place that knows SQL and which backend is in use.
//!
//! Everything above this module works with [`DbConn`] (diesel's
//! `MultiConnection` over PostgreSQL and SQLite) and the query functions of
//! the submodules, which take `&mut DbConn` and return `QueryResult`.
//! Callers own transactions; writes go through [`write_transaction`].

pub mod accounts;
pub mod audit;
pub mod clients;
pub mod consents;
pub mod grants;
pub mod schema;
pub mod sessions;
pub mod settings;
pub mod signing_keys;
pub mod throttle;
pub mod wechat;

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

/// An r2d2 manager that opens the backend named by the URL scheme, and
/// prepares every SQLite connection (WAL, busy timeout, foreign keys).
#[derive(Debug, Clone)]
pub struct ConnectionManager {
    target: DatabaseTarget,
}

impl ConnectionManager {
    pub fn new(target: DatabaseTarget) -> Self {
        Self { target }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    #[error("{0}")]
    Connection(#[from] diesel::ConnectionError),
    #[error("{0}")]
    Query(#[from] diesel::result::Error),
}

pub fn establish(target: &DatabaseTarget) -> Result<DbConn, ConnectError> {
    match target {
        DatabaseTarget::Postgres(url) => Ok(DbConn::Postgresql(diesel::PgConnection::establish(url)?)),
        DatabaseTarget::Sqlite(path) => {
            let mut conn = diesel::SqliteConnection::establish(&path.to_string_lossy())?;
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

impl r2d2::ManageConnection for ConnectionManager {
    type Connection = DbConn;
    type Error = ConnectError;

    fn connect(&self) -> Result<DbConn, ConnectError> {
        establish(&self.target)
    }

    fn is_valid(&self, conn: &mut DbConn) -> Result<(), ConnectError> {
        Ok(conn.ping()?)
    }

    fn has_broken(&self, conn: &mut DbConn) -> bool {
        conn.is_broken()
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

/// Builds the pool; the first connection is made here so that a wrong URL
/// or an unreachable server fails startup rather than the first request.
pub fn open_pool(target: &DatabaseTarget, size: u32) -> Result<DbPool, OpenError> {
    if let DatabaseTarget::Sqlite(path) = target
        && let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty())
    {
        std::fs::create_dir_all(dir).map_err(|e| OpenError::CreateDir(dir.display().to_string(), e))?;
    }
    // Probe once directly: r2d2 would retry until its timeout and then
    // report only "timed out", hiding the real cause.
    establish(target).map_err(|e| OpenError::Connect(e.to_string()))?;
    r2d2::Pool::builder()
        .max_size(size)
        .connection_timeout(Duration::from_secs(10))
        // No `SELECT 1` before every use: a broken connection shows up as a
        // query error and is discarded by `has_broken`; the probe only cost
        // a round trip per request.
        .test_on_check_out(false)
        .build(ConnectionManager::new(target.clone()))
        .map_err(|e| OpenError::Connect(e.to_string()))
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
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("no database connection available: {0}")]
    Pool(#[from] r2d2::Error),
    #[error("database query failed: {0}")]
    Query(#[from] diesel::result::Error),
    #[error("the blocking thread pool is gone")]
    Canceled,
}

/// Runs blocking database work on actix's blocking pool, never on an async
/// worker. The closure gets a pooled connection; the caller picks the
/// transaction it needs.
pub async fn run<T, E, F>(pool: &DbPool, f: F) -> Result<T, E>
where
    F: FnOnce(&mut DbConn) -> Result<T, E> + Send + 'static,
    T: Send + 'static,
    E: From<DbError> + Send + 'static,
{
    let pool = pool.clone();
    actix_web::web::block(move || {
        let mut conn = pool.get().map_err(DbError::from)?;
        f(&mut conn)
    })
    .await
    .map_err(|_| E::from(DbError::Canceled))?
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
