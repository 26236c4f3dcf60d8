//! The database every service owns: SQLite (one bundled file) by default,
//! PostgreSQL when the URL says so; a pool, embedded migrations run at start,
//! and write transactions that never deadlock on SQLite's lock upgrade.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use diesel::connection::{AnsiTransactionManager, SimpleConnection, TransactionManager};
use diesel::migration::{Migration, MigrationSource};
use diesel::pg::Pg;
use diesel::r2d2::{self, ManageConnection, Pool, PooledConnection};
use diesel::sqlite::Sqlite;
use diesel::{Connection, PgConnection, RunQueryDsl, SqliteConnection};
use diesel_migrations::{EmbeddedMigrations, MigrationHarness, embed_migrations};
use tokio::sync::Semaphore;

/// A connection to whichever backend the service was configured with.
///
/// Queries written with diesel's DSL run unchanged on both; the few places
/// that differ (transaction start, migrations) match on the variant here.
#[derive(diesel::MultiConnection)]
pub enum DbConnection {
    /// Production: a shared PostgreSQL server.
    Postgres(PgConnection),
    /// The embedded default: one SQLite file per service.
    Sqlite(SqliteConnection),
}

impl fmt::Debug for DbConnection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Postgres(_) => "DbConnection::Postgres",
            Self::Sqlite(_) => "DbConnection::Sqlite",
        })
    }
}

/// Which database a URL points at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Postgres,
    Sqlite,
}

/// Errors of the database layer, before a service maps them to its domain.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("database URL is invalid: {0}")]
    InvalidUrl(String),
    #[error("cannot connect to the database")]
    Pool(#[source] r2d2::PoolError),
    #[error("database migrations failed: {0}")]
    Migration(String),
    #[error("database query failed: {0}")]
    Query(#[from] diesel::result::Error),
    #[error("database task was cancelled")]
    Cancelled(#[from] tokio::task::JoinError),
    #[error(transparent)]
    Corrupt(#[from] CorruptRow),
    /// Another transaction changed the row since it was read (optimistic concurrency).
    #[error("{entity} {key} was changed concurrently")]
    Conflict { entity: &'static str, key: String },
}

/// A stored row that does not parse into the domain: written by an
/// incompatible version or damaged. Logged, never shown to callers.
#[derive(Debug, thiserror::Error)]
#[error("stored {entity} {key} is corrupt: {reason}")]
pub struct CorruptRow {
    pub entity: &'static str,
    pub key: String,
    pub reason: String,
}

impl CorruptRow {
    /// A corrupt `entity` row identified by `key`.
    pub fn new(entity: &'static str, key: impl Into<String>, reason: impl fmt::Display) -> Self {
        Self { entity, key: key.into(), reason: reason.to_string() }
    }
}

impl DbError {
    /// Whether retrying the same work later may succeed (lock contention,
    /// a pool timeout, a serialization failure, a dropped connection).
    pub fn is_transient(&self) -> bool {
        use diesel::result::{DatabaseErrorKind, Error};
        match self {
            Self::Pool(_) | Self::Cancelled(_) | Self::Conflict { .. } => true,
            Self::Query(Error::DatabaseError(kind, info)) => {
                matches!(kind, DatabaseErrorKind::SerializationFailure | DatabaseErrorKind::ClosedConnection)
                    || info.message().contains("database is locked")
                    || info.message().contains("database is busy")
            }
            Self::InvalidUrl(_) | Self::Migration(_) | Self::Query(_) | Self::Corrupt(_) => false,
        }
    }
}

/// Parses a database URL: `postgres://…`/`postgresql://…`, `sqlite://path`,
/// or a bare file path (SQLite).
fn backend_of(url: &str) -> Result<(Backend, String), DbError> {
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        return Ok((Backend::Postgres, url.to_owned()));
    }
    let path = url.strip_prefix("sqlite://").or_else(|| url.strip_prefix("sqlite:")).unwrap_or(url);
    if path.is_empty() {
        return Err(DbError::InvalidUrl("the SQLite path is empty".into()));
    }
    if path == ":memory:" {
        return Err(DbError::InvalidUrl(
            "in-memory SQLite is not supported: every pooled connection would see its own database".into(),
        ));
    }
    if path.contains("://") {
        return Err(DbError::InvalidUrl(format!(
            "unsupported scheme in {url:?}: use postgres://, sqlite:// or a file path"
        )));
    }
    Ok((Backend::Sqlite, path.to_owned()))
}

/// Establishes connections of one backend only, so that a mistyped
/// PostgreSQL URL fails loudly instead of creating a SQLite file named after it.
#[derive(Debug, Clone)]
struct Connector {
    backend: Backend,
    url: String,
}

impl ManageConnection for Connector {
    type Connection = DbConnection;
    type Error = r2d2::Error;

    fn connect(&self) -> Result<DbConnection, r2d2::Error> {
        match self.backend {
            Backend::Postgres => {
                PgConnection::establish(&self.url).map(DbConnection::Postgres).map_err(r2d2::Error::ConnectionError)
            }
            Backend::Sqlite => {
                let mut conn = SqliteConnection::establish(&self.url).map_err(r2d2::Error::ConnectionError)?;
                // WAL lets readers run beside the writer; NORMAL sync is durable
                // across process crashes (kill -9), which is what the service
                // promises; busy_timeout makes other processes wait for the lock
                // instead of failing.
                conn.batch_execute(
                    "PRAGMA busy_timeout = 10000; PRAGMA journal_mode = WAL; \
                     PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON;",
                )
                .map_err(r2d2::Error::QueryError)?;
                Ok(DbConnection::Sqlite(conn))
            }
        }
    }

    fn is_valid(&self, conn: &mut DbConnection) -> Result<(), r2d2::Error> {
        conn.batch_execute("SELECT 1").map_err(r2d2::Error::QueryError)
    }

    fn has_broken(&self, conn: &mut DbConnection) -> bool {
        <DbConnection as Connection>::TransactionManager::is_broken_transaction_manager(conn)
    }
}

static PLATFORM_SQLITE: EmbeddedMigrations = embed_migrations!("migrations/sqlite");
static PLATFORM_POSTGRES: EmbeddedMigrations = embed_migrations!("migrations/postgres");

/// The platform's own tables (outbox, inbox) followed by the service's.
struct ServiceMigrations<'a> {
    platform: &'a EmbeddedMigrations,
    service: &'a EmbeddedMigrations,
}

impl<DB: diesel::backend::Backend> MigrationSource<DB> for ServiceMigrations<'_>
where
    EmbeddedMigrations: MigrationSource<DB>,
{
    fn migrations(&self) -> diesel::migration::Result<Vec<Box<dyn Migration<DB>>>> {
        let mut all = MigrationSource::<DB>::migrations(self.platform)?;
        all.extend(MigrationSource::<DB>::migrations(self.service)?);
        Ok(all)
    }
}

/// A pooled handle to the service's database. Cheap to clone.
#[derive(Clone)]
pub struct Database {
    pool: Pool<Connector>,
    backend: Backend,
    /// SQLite takes one writer at a time. Writers of this process queue
    /// here, in order, instead of in SQLite's busy handler, which sleeps
    /// 1 ms, then 2, 5, 10… between tries however soon the lock is free
    /// (measured: about 70 such sleeps a second per service at 500
    /// missions/s). Other processes on the same file still wait in the
    /// busy handler.
    writer: Arc<Semaphore>,
}

impl fmt::Debug for Database {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Database").field("backend", &self.backend).finish_non_exhaustive()
    }
}

impl Database {
    /// Opens the pool and runs the platform's and the service's pending
    /// migrations, serialised across replicas starting at the same time.
    ///
    /// # Errors
    /// When the URL is invalid, the database cannot be reached, or a migration fails.
    pub async fn connect(url: &str, migrations: &'static EmbeddedMigrations) -> Result<Self, DbError> {
        let (backend, target) = backend_of(url)?;
        if backend == Backend::Sqlite
            && let Some(dir) = Path::new(&target).parent().filter(|d| !d.as_os_str().is_empty())
        {
            std::fs::create_dir_all(dir)
                .map_err(|e| DbError::InvalidUrl(format!("cannot create {}: {e}", dir.display())))?;
        }
        let connector = Connector { backend, url: target.clone() };
        // Replicas sharing one SQLite file take turns to open it (the first
        // switches it to WAL) and to migrate it; the lock is released when
        // the file handle drops, even if the process dies.
        let startup_lock = match backend {
            Backend::Sqlite => {
                let path = PathBuf::from(format!("{target}.migrate.lock"));
                Some(tokio::task::spawn_blocking(move || lock_file(&path)).await??)
            }
            Backend::Postgres => None,
        };
        let pool = tokio::task::spawn_blocking(move || {
            Pool::builder()
                .max_size(match backend {
                    Backend::Postgres => 8,
                    Backend::Sqlite => 4,
                })
                .min_idle(Some(1))
                .connection_timeout(Duration::from_secs(10))
                .build(connector)
                .map_err(DbError::Pool)
        })
        .await??;
        let db = Self { pool, backend, writer: Arc::new(Semaphore::new(1)) };
        db.with_conn(move |conn| run_migrations(conn, migrations)).await?;
        drop(startup_lock);
        Ok(db)
    }

    /// The backend this database runs on.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Runs `work` in one write transaction on a blocking thread.
    ///
    /// On SQLite the transaction starts with `BEGIN IMMEDIATE`, taking the
    /// write lock up front: a deferred transaction that reads and then writes
    /// fails at once with SQLITE_BUSY when another process holds the lock.
    ///
    /// # Errors
    /// Whatever `work` returns, or a [`DbError`] converted into `E`.
    pub async fn write<T, E, F>(&self, work: F) -> Result<T, E>
    where
        F: FnOnce(&mut DbConnection) -> Result<T, E> + Send + 'static,
        T: Send + 'static,
        E: From<DbError> + Send + 'static,
    {
        let turn = match self.backend {
            // The permit moves into the blocking task: it is released when
            // the transaction ends, even if this future is dropped first.
            // The semaphore is never closed; were it, SQLite's busy
            // handler would still keep writers apart.
            Backend::Sqlite => Arc::clone(&self.writer).acquire_owned().await.ok(),
            Backend::Postgres => None,
        };
        self.with_conn(move |conn| {
            let _turn = turn;
            write_transaction(conn, work)
        })
        .await
    }

    /// Runs read-only `work` on a pooled connection on a blocking thread.
    ///
    /// # Errors
    /// Whatever `work` returns, or a [`DbError`] converted into `E`.
    pub async fn read<T, E, F>(&self, work: F) -> Result<T, E>
    where
        F: FnOnce(&mut DbConnection) -> Result<T, E> + Send + 'static,
        T: Send + 'static,
        E: From<DbError> + Send + 'static,
    {
        self.with_conn(work).await
    }

    /// Checks that a connection can be had and answers.
    ///
    /// # Errors
    /// When the database cannot be reached.
    pub async fn ping(&self) -> Result<(), DbError> {
        self.read(|conn| conn.batch_execute("SELECT 1").map_err(DbError::from)).await
    }

    async fn with_conn<T, E, F>(&self, work: F) -> Result<T, E>
    where
        F: FnOnce(&mut DbConnection) -> Result<T, E> + Send + 'static,
        T: Send + 'static,
        E: From<DbError> + Send + 'static,
    {
        let pool = self.pool.clone();
        let span = tracing::Span::current();
        // r2d2's `get` blocks, so it runs on the blocking pool with the query.
        tokio::task::spawn_blocking(move || {
            let _entered = span.enter();
            let mut conn: PooledConnection<Connector> = pool.get().map_err(DbError::Pool)?;
            work(&mut conn)
        })
        .await
        .map_err(DbError::from)?
    }
}

fn write_transaction<T, E, F>(conn: &mut DbConnection, work: F) -> Result<T, E>
where
    F: FnOnce(&mut DbConnection) -> Result<T, E>,
    E: From<DbError>,
{
    let begun = match conn {
        DbConnection::Sqlite(inner) => AnsiTransactionManager::begin_transaction_sql(inner, "BEGIN IMMEDIATE"),
        DbConnection::Postgres(inner) => AnsiTransactionManager::begin_transaction_sql(inner, "BEGIN"),
    };
    begun.map_err(DbError::from)?;
    match work(conn) {
        Ok(value) => {
            <DbConnection as Connection>::TransactionManager::commit_transaction(conn).map_err(DbError::from)?;
            Ok(value)
        }
        Err(error) => {
            if let Err(rollback) = <DbConnection as Connection>::TransactionManager::rollback_transaction(conn) {
                tracing::warn!(error = %rollback, "rollback failed");
            }
            Err(error)
        }
    }
}

/// Opens (creating it) and locks `path` exclusively, waiting for other holders.
fn lock_file(path: &Path) -> Result<std::fs::File, DbError> {
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
        .map_err(|e| DbError::Migration(format!("cannot open {}: {e}", path.display())))?;
    file.lock().map_err(|e| DbError::Migration(format!("cannot lock {}: {e}", path.display())))?;
    Ok(file)
}

/// An arbitrary key for the PostgreSQL advisory lock that serialises migrations.
const MIGRATION_LOCK_KEY: i64 = 0x6761_6d65_7277_6473;

fn run_migrations(conn: &mut DbConnection, service: &'static EmbeddedMigrations) -> Result<(), DbError> {
    let migration_error = |e: Box<dyn std::error::Error + Send + Sync>| DbError::Migration(e.to_string());
    match conn {
        DbConnection::Postgres(pg) => {
            diesel::sql_query(format!("SELECT pg_advisory_lock({MIGRATION_LOCK_KEY})")).execute(pg)?;
            let source = ServiceMigrations { platform: &PLATFORM_POSTGRES, service };
            let result = MigrationHarness::<Pg>::run_pending_migrations(pg, source).map(drop).map_err(migration_error);
            diesel::sql_query(format!("SELECT pg_advisory_unlock({MIGRATION_LOCK_KEY})")).execute(pg)?;
            result
        }
        DbConnection::Sqlite(sqlite) => {
            let source = ServiceMigrations { platform: &PLATFORM_SQLITE, service };
            MigrationHarness::<Sqlite>::run_pending_migrations(sqlite, source).map(drop).map_err(migration_error)
        }
    }
}

/// Milliseconds since the Unix epoch, the one time representation every store uses.
pub fn now_millis() -> i64 {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    i64::try_from(now.as_millis()).unwrap_or(i64::MAX)
}

/// Whether a diesel error is a unique-constraint violation, which adapters
/// turn into a domain outcome (a duplicate) rather than a failure.
pub fn is_unique_violation(error: &diesel::result::Error) -> bool {
    matches!(error, diesel::result::Error::DatabaseError(diesel::result::DatabaseErrorKind::UniqueViolation, _))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_choose_their_backend() {
        assert_eq!(backend_of("postgres://u@h/db").unwrap().0, Backend::Postgres);
        assert_eq!(backend_of("postgresql://h/db").unwrap().0, Backend::Postgres);
        assert_eq!(backend_of("sqlite://data/a.db").unwrap(), (Backend::Sqlite, "data/a.db".into()));
        assert_eq!(backend_of("data/a.db").unwrap(), (Backend::Sqlite, "data/a.db".into()));
    }

    #[test]
    fn unknown_schemes_and_empty_paths_are_rejected() {
        assert!(matches!(backend_of("mysql://h/db"), Err(DbError::InvalidUrl(_))));
        assert!(matches!(backend_of("sqlite://"), Err(DbError::InvalidUrl(_))));
        assert!(matches!(backend_of("sqlite::memory:"), Err(DbError::InvalidUrl(_))));
    }
}
