//! The database every service owns: SQLite (one bundled file) by default,
//! PostgreSQL when the URL says so; a pool, embedded migrations run at start,
//! and write transactions that never deadlock on SQLite's lock upgrade.
//!
//! On SQLite every write of a process goes to one writer thread with its own
//! connection, which runs the writes that queued while it was busy in one
//! transaction, each at its own savepoint, and answers them after the one
//! commit (group commit). SQLite takes one writer at a time anyway; this way
//! a burst of writes costs one lock, one WAL sync point and one thread
//! hand-off instead of one of each per write.

use std::fmt;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::sync::{Arc, mpsc};
use std::time::Duration;

use diesel::connection::{AnsiTransactionManager, SimpleConnection, TransactionManager};
use diesel::migration::{Migration, MigrationSource};
use diesel::pg::Pg;
use diesel::r2d2::{self, ManageConnection, Pool, PooledConnection};
use diesel::sqlite::Sqlite;
use diesel::{Connection, PgConnection, RunQueryDsl, SqliteConnection};
use diesel_migrations::{EmbeddedMigrations, MigrationHarness, embed_migrations};
use tokio::sync::oneshot;

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
    /// The server does not take connections (down, restarting, unreachable):
    /// answered at once while it is known to be so, until a probe reaches it.
    #[error("the store is unavailable: {0}")]
    Unavailable(String),
    /// Every pooled connection stayed busy for the pool's whole wait.
    #[error("no database connection became free in time")]
    Pool(#[source] r2d2::PoolError),
    #[error("cannot open a database connection")]
    Open(#[source] r2d2::Error),
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
    /// The write succeeded at its savepoint, but the transaction it shared
    /// with other writes could not begin or commit: nothing of it is stored.
    #[error("the shared write transaction failed: {0}")]
    GroupCommit(Arc<DbError>),
    /// The work panicked; its effects were undone.
    #[error("the database work panicked")]
    Panicked,
    /// The operating system refused the writer its thread.
    #[error("cannot start the database writer")]
    WriterStart(#[source] std::io::Error),
    /// The process's writer is gone (the process is stopping).
    #[error("the database writer has stopped")]
    WriterStopped,
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

/// What a failed store operation means for whoever asked: the store is
/// away, busy, in a concurrency conflict, or something else went wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// The server does not answer or dropped the connection: try again
    /// once it is back; nothing of the failed work was committed.
    Unavailable,
    /// Locks or connections were all taken for longer than the wait.
    Busy,
    /// A concurrent transaction changed what this one read.
    Conflict,
    /// Anything else: a bug, a corrupt row, a failed migration.
    Other,
}

impl DbError {
    /// What the failure means: see [`Failure`].
    pub fn failure(&self) -> Failure {
        use diesel::result::{DatabaseErrorKind, Error};
        match self {
            Self::Unavailable(_) | Self::Open(_) | Self::WriterStopped => Failure::Unavailable,
            Self::Pool(_) => Failure::Busy,
            Self::Conflict { .. } => Failure::Conflict,
            Self::GroupCommit(cause) => cause.failure(),
            // A blocking task is cancelled only when the runtime stops.
            Self::Cancelled(join) if join.is_cancelled() => Failure::Unavailable,
            Self::Query(Error::DatabaseError(kind, info)) => match kind {
                DatabaseErrorKind::ClosedConnection | DatabaseErrorKind::UnableToSendCommand => Failure::Unavailable,
                DatabaseErrorKind::SerializationFailure => Failure::Conflict,
                _ => classify_message(info.message()),
            },
            Self::InvalidUrl(_)
            | Self::Migration(_)
            | Self::Query(_)
            | Self::Cancelled(_)
            | Self::Corrupt(_)
            | Self::Panicked
            | Self::WriterStart(_) => Failure::Other,
        }
    }

    /// Whether retrying the same work later may succeed: the store was
    /// away or busy, or the work met a concurrent change.
    pub fn is_transient(&self) -> bool {
        self.failure() != Failure::Other
    }

    /// Whether the store itself was away (rather than the work at fault).
    pub fn is_unavailable(&self) -> bool {
        self.failure() == Failure::Unavailable
    }
}

/// Sorts a server message diesel has no kind for. PostgreSQL's SQLSTATE is
/// not exposed by diesel, so its fixed English messages stand in for it.
fn classify_message(message: &str) -> Failure {
    const UNAVAILABLE: [&str; 9] = [
        // 57P01..57P03: the server is stopping, restarting or recovering.
        "terminating connection due to",
        "the database system is starting up",
        "the database system is shutting down",
        "the database system is in recovery mode",
        "the database system is not yet accepting connections",
        // libpq's own, when the connection broke mid-statement.
        "server closed the connection unexpectedly",
        "no connection to the server",
        "could not receive data from server",
        "could not send data to server",
    ];
    const BUSY: [&str; 4] =
        ["database is locked", "database is busy", "canceling statement due to lock timeout", "could not obtain lock"];
    if UNAVAILABLE.iter().any(|m| message.contains(m)) {
        Failure::Unavailable
    } else if BUSY.iter().any(|m| message.contains(m)) {
        Failure::Busy
    } else if message.contains("deadlock detected") {
        Failure::Conflict
    } else {
        Failure::Other
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

/// Connection settings a PostgreSQL URL gets unless it sets them: a
/// connection attempt to a dead or unreachable server gives up within 2 s,
/// and a connection whose server vanished without a word (a crashed host, a
/// dropped network) is found dead within seconds, not at the kernel's
/// default of two hours of silence. libpq's names and units.
const POSTGRES_URL_DEFAULTS: [(&str, &str); 6] = [
    ("connect_timeout", "2"),
    ("keepalives", "1"),
    ("keepalives_idle", "5"),
    ("keepalives_interval", "2"),
    ("keepalives_count", "2"),
    ("tcp_user_timeout", "5000"),
];

/// `url` with every [`POSTGRES_URL_DEFAULTS`] it does not set itself.
fn with_postgres_defaults(url: &str) -> String {
    let query = url.split_once('?').map_or("", |(_, query)| query);
    let set: Vec<&str> = query.split('&').filter_map(|pair| pair.split('=').next()).collect();
    let mut url = url.to_owned();
    for (key, value) in POSTGRES_URL_DEFAULTS {
        if !set.contains(&key) {
            url.push(if url.contains('?') { '&' } else { '?' });
            url.push_str(&format!("{key}={value}"));
        }
    }
    url
}

/// How long a call waits for a pooled PostgreSQL connection: enough for a
/// connection to come free under load, short of any caller's deadline.
const POSTGRES_POOL_WAIT: Duration = Duration::from_secs(2);
/// How often the pool looks whether the store went down while a call waits
/// for a connection: a refused connection ends the wait at once.
const POOL_WAIT_STEP: Duration = Duration::from_millis(100);
/// How often a store known to be down is tried again.
const PROBE_INTERVAL: Duration = Duration::from_millis(250);

/// Whether the store takes connections, as the last attempt to connect
/// found. While it does not, calls are answered at once instead of each
/// waiting for the pool's whole timeout, and one prober tries to connect
/// until it can.
#[derive(Debug, Default)]
struct Availability {
    /// Why the store is down, when it is.
    down: std::sync::Mutex<Option<String>>,
    /// Whether a prober is running.
    probing: std::sync::atomic::AtomicBool,
}

impl Availability {
    fn down_because(&self) -> Option<String> {
        self.down.lock().map_or_else(|poisoned| poisoned.into_inner().clone(), |down| down.clone())
    }

    fn mark_down(&self, reason: String) {
        let mut down = self.down.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if down.is_none() {
            tracing::warn!(%reason, "the store is unavailable");
            crate::metrics::store_available(false);
        }
        *down = Some(reason);
    }

    fn mark_up(&self) {
        let mut down = self.down.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if down.take().is_some() {
            tracing::info!("the store is available again");
            crate::metrics::store_available(true);
        }
    }
}

/// Establishes connections of one backend only, so that a mistyped
/// PostgreSQL URL fails loudly instead of creating a SQLite file named after
/// it; and records whether the server takes connections.
#[derive(Debug, Clone)]
struct Connector {
    backend: Backend,
    url: String,
    availability: Arc<Availability>,
}

impl ManageConnection for Connector {
    type Connection = DbConnection;
    type Error = r2d2::Error;

    fn connect(&self) -> Result<DbConnection, r2d2::Error> {
        match self.backend {
            Backend::Postgres => match PgConnection::establish(&self.url) {
                Ok(conn) => {
                    self.availability.mark_up();
                    Ok(DbConnection::Postgres(conn))
                }
                Err(error) => {
                    let reason = error.to_string();
                    // A server at its connection limit is up: the pool's
                    // connections still work, and waiting for one is "busy".
                    if !reason.contains("too many clients") && !reason.contains("connection slots are reserved") {
                        self.availability.mark_down(reason);
                    }
                    Err(r2d2::Error::ConnectionError(error))
                }
            },
            Backend::Sqlite => {
                let mut conn = SqliteConnection::establish(&self.url).map_err(r2d2::Error::ConnectionError)?;
                // WAL lets readers run beside the writer; NORMAL sync is durable
                // across process crashes (kill -9), which is what the service
                // promises; busy_timeout makes other processes wait for the lock
                // instead of failing. Each write runs at a savepoint, whose undo
                // journal stays in memory instead of a temporary file (measured:
                // a file created and unlinked several times a second); 8 MiB of
                // page cache keeps the indexes' hot pages out of read calls.
                conn.batch_execute(
                    "PRAGMA busy_timeout = 10000; PRAGMA journal_mode = WAL; \
                     PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON; \
                     PRAGMA temp_store = MEMORY; PRAGMA cache_size = -8192;",
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
    /// What opens connections; the prober uses it beside the pool.
    connector: Connector,
    /// SQLite's writes, queued in order for the one writer thread rather
    /// than in SQLite's busy handler, which sleeps 1 ms, then 2, 5, 10…
    /// between tries however soon the lock is free (measured: about 70 such
    /// sleeps a second per service at 500 missions/s). Other processes on
    /// the same file still wait in the busy handler. `None` on PostgreSQL,
    /// whose transactions run side by side on the pool.
    writer: Option<mpsc::Sender<QueuedWrite>>,
    /// Writes that wait for the next transaction the writer commits anyway
    /// instead of waking it ([`Database::write_with_next`]). SQLite only.
    riders: Option<Arc<Riders>>,
    /// Reads the writer runs right after its commits
    /// ([`Database::after_commit`]). SQLite only.
    after_commit: Option<Arc<AfterCommit>>,
}

/// Writes waiting to ride on the writer's next transaction.
#[derive(Default)]
struct Riders(std::sync::Mutex<Vec<QueuedWrite>>);

impl Riders {
    fn waiting(&self) -> std::sync::MutexGuard<'_, Vec<QueuedWrite>> {
        self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// The writer's commits so far, and the reads waiting for the next one.
#[derive(Default)]
struct AfterCommit(std::sync::Mutex<AfterCommitState>);

#[derive(Default)]
struct AfterCommitState {
    commits: u64,
    probes: Vec<Box<dyn Probe>>,
}

impl AfterCommit {
    fn state(&self) -> std::sync::MutexGuard<'_, AfterCommitState> {
        self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// A read run on the writer's connection after each commit until it answers.
trait Probe: Send {
    /// Runs after commit number `commit`; `true` once it answered (or its
    /// caller went away) and is done.
    fn run(&mut self, conn: &mut DbConnection, commit: u64) -> bool;
    /// Whether its caller stopped waiting.
    fn abandoned(&self) -> bool;
}

struct Watch<F, T> {
    probe: F,
    reply: Option<oneshot::Sender<T>>,
}

impl<F, T> Probe for Watch<F, T>
where
    F: FnMut(&mut DbConnection, u64) -> Option<T> + Send,
    T: Send,
{
    fn run(&mut self, conn: &mut DbConnection, commit: u64) -> bool {
        if self.abandoned() {
            return true;
        }
        let Some(reply) = self.reply.take() else { return true };
        match (self.probe)(conn, commit) {
            Some(found) => {
                let _ = reply.send(found);
                true
            }
            None => {
                self.reply = Some(reply);
                false
            }
        }
    }

    fn abandoned(&self) -> bool {
        self.reply.as_ref().is_none_or(oneshot::Sender::is_closed)
    }
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
        let target = match backend {
            Backend::Postgres => with_postgres_defaults(&target),
            Backend::Sqlite => target,
        };
        let connector = Connector { backend, url: target.clone(), availability: Arc::default() };
        let pool_connector = connector.clone();
        let writer_connector = connector.clone();
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
                // r2d2 runs `is_valid` (a `SELECT 1`) before handing out a
                // connection. A PostgreSQL connection can die with its server
                // and the test finds it; a SQLite connection is a handle on a
                // local file that nothing breaks from outside, so there it
                // is one more statement parsed and run for every read
                // (`docs/performance.md`). Broken transactions are still
                // caught by `has_broken` when a connection comes back.
                .test_on_check_out(backend == Backend::Postgres)
                .connection_timeout(match backend {
                    Backend::Postgres => POSTGRES_POOL_WAIT,
                    // Writes of other processes on the file hold the lock for
                    // up to the busy timeout; SQLite cannot be away.
                    Backend::Sqlite => Duration::from_secs(10),
                })
                .build(pool_connector)
                .map_err(DbError::Pool)
        })
        .await??;
        let mut db = Self { pool, backend, connector, writer: None, riders: None, after_commit: None };
        db.with_conn(move |conn| run_migrations(conn, migrations)).await?;
        if backend == Backend::Sqlite {
            let (riders, after_commit) = (Arc::<Riders>::default(), Arc::<AfterCommit>::default());
            db.writer =
                Some(GroupWriter::start(writer_connector, Arc::clone(&riders), Arc::clone(&after_commit)).await?);
            db.riders = Some(riders);
            db.after_commit = Some(after_commit);
        }
        drop(startup_lock);
        Ok(db)
    }

    /// The backend this database runs on.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Runs `work` in a write transaction: all of it is stored, or none.
    /// The answer comes once it is committed.
    ///
    /// On SQLite `work` runs on the process's writer thread at a savepoint of
    /// a transaction it may share with other writes queued at the same time
    /// (it sees their effects as if they had run just before it); when it
    /// fails, only its own effects are undone. The transaction starts with
    /// `BEGIN IMMEDIATE`, taking the write lock up front: a deferred
    /// transaction that reads and then writes fails at once with
    /// SQLITE_BUSY when another process holds the lock. On PostgreSQL
    /// `work` has a transaction of its own on a pooled connection.
    ///
    /// Once called, the write happens even if the returned future is dropped.
    ///
    /// # Errors
    /// Whatever `work` returns, or a [`DbError`] converted into `E`.
    pub async fn write<T, E, F>(&self, work: F) -> Result<T, E>
    where
        F: FnOnce(&mut DbConnection) -> Result<T, E> + Send + 'static,
        T: Send + 'static,
        E: From<DbError> + Send + 'static,
    {
        let Some(writer) = &self.writer else {
            return self.with_conn(move |conn| write_transaction(conn, work)).await;
        };
        let (reply, answer) = oneshot::channel();
        let queued = QueuedWrite(Box::new(Write { work, reply, span: tracing::Span::current() }));
        if writer.send(queued).is_err() {
            return Err(DbError::WriterStopped.into());
        }
        // A dropped reply means the work panicked (caught on the writer thread).
        answer.await.unwrap_or_else(|_| Err(DbError::Panicked.into()))
    }

    /// Runs `work` in the next write transaction the store commits for any
    /// other write, instead of waking the writer for it: for bookkeeping
    /// that may wait (the outbox relay's marks), at no thread hand-off and
    /// no commit of its own. Like [`Database::write`] it runs at its own
    /// savepoint and is answered once committed; nothing carries it until
    /// another write comes, so a caller that cannot wait calls
    /// [`Database::flush`]. On PostgreSQL it is an ordinary write, started
    /// at once.
    pub fn write_with_next<T, E, F>(&self, work: F) -> oneshot::Receiver<Result<T, E>>
    where
        F: FnOnce(&mut DbConnection) -> Result<T, E> + Send + 'static,
        T: Send + 'static,
        E: From<DbError> + Send + 'static,
    {
        let (reply, answer) = oneshot::channel();
        let Some(riders) = &self.riders else {
            let db = self.clone();
            tokio::spawn(async move {
                // The caller may have gone away: what committed is stored all the same.
                let _ = reply.send(db.write(work).await);
            });
            return answer;
        };
        let queued = QueuedWrite(Box::new(Write { work, reply, span: tracing::Span::current() }));
        riders.waiting().push(queued);
        answer
    }

    /// Commits the writes waiting for the next transaction
    /// ([`Database::write_with_next`]) now, in a transaction of their own
    /// if nothing else is queued.
    ///
    /// # Errors
    /// When the writer has stopped.
    pub async fn flush(&self) -> Result<(), DbError> {
        if self.riders.as_ref().is_none_or(|riders| riders.waiting().is_empty()) {
            return Ok(());
        }
        self.write(|_| Ok::<(), DbError>(())).await
    }

    /// How many transactions the SQLite writer has committed; `None` on
    /// PostgreSQL, which has no writer thread.
    pub fn commits(&self) -> Option<u64> {
        self.after_commit.as_ref().map(|after| after.state().commits)
    }

    /// Runs read-only `probe` on the SQLite writer's connection right after
    /// each of its commits from now on, until it finds something (`Some`),
    /// which answers: for a reader that would otherwise be woken by the
    /// writer's caller and then read on the blocking pool (the outbox
    /// relay). `probe` is given the number of the commit it runs after.
    ///
    /// # Errors
    /// Refused with the writer's commit count when it committed since commit
    /// number `seen`: what that commit stored would not wake the reader, so
    /// it must look by itself. Refused with `None` on PostgreSQL.
    pub fn after_commit<T, F>(&self, seen: u64, probe: F) -> Result<oneshot::Receiver<T>, Option<u64>>
    where
        F: FnMut(&mut DbConnection, u64) -> Option<T> + Send + 'static,
        T: Send + 'static,
    {
        let after = self.after_commit.as_ref().ok_or(None)?;
        let mut state = after.state();
        if state.commits != seen {
            return Err(Some(state.commits));
        }
        // A quiet writer runs no probe: those whose callers left (a relay
        // that woke by its poll instead) go here, not after the next commit.
        state.probes.retain(|probe| !probe.abandoned());
        let (reply, answer) = oneshot::channel();
        state.probes.push(Box::new(Watch { probe, reply: Some(reply) }));
        Ok(answer)
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

    /// Checks that a connection can be had and answers. While the store is
    /// known to be down, answers so at once: the prober finds out when it is back.
    ///
    /// # Errors
    /// When the database cannot be reached.
    pub async fn ping(&self) -> Result<(), DbError> {
        self.read(|conn| conn.batch_execute("SELECT 1").map_err(DbError::from)).await
    }

    /// Whether the store took connections at the last attempt.
    pub fn is_available(&self) -> bool {
        self.connector.availability.down_because().is_none()
    }

    async fn with_conn<T, E, F>(&self, work: F) -> Result<T, E>
    where
        F: FnOnce(&mut DbConnection) -> Result<T, E> + Send + 'static,
        T: Send + 'static,
        E: From<DbError> + Send + 'static,
    {
        if let Some(reason) = self.connector.availability.down_because() {
            self.probe();
            return Err(DbError::Unavailable(reason).into());
        }
        let pool = self.pool.clone();
        let availability = Arc::clone(&self.connector.availability);
        let span = tracing::Span::current();
        // r2d2's `get` blocks, so it runs on the blocking pool with the query.
        let outcome = tokio::task::spawn_blocking(move || {
            let _entered = span.enter();
            let mut conn = checkout(&pool, &availability)?;
            Ok(work(&mut conn))
        })
        .await
        .map_err(DbError::from)
        .and_then(|checked_out| checked_out);
        match outcome {
            Ok(worked) => worked,
            Err(error) => {
                if error.is_unavailable() {
                    self.probe();
                }
                Err(error.into())
            }
        }
    }

    /// Starts the prober unless one runs: it tries to connect every
    /// [`PROBE_INTERVAL`] until it can, which marks the store up again (or,
    /// after a broken connection, finds it down). Pooled connections broken
    /// meanwhile fail their check-out test and are replaced by fresh ones.
    fn probe(&self) {
        use std::sync::atomic::Ordering;
        if self.backend != Backend::Postgres
            || self.connector.availability.probing.swap(true, Ordering::AcqRel)
            || tokio::runtime::Handle::try_current().is_err()
        {
            return;
        }
        let connector = self.connector.clone();
        tokio::spawn(async move {
            loop {
                let attempt = connector.clone();
                if matches!(tokio::task::spawn_blocking(move || attempt.connect().is_ok()).await, Ok(true)) {
                    break;
                }
                tokio::time::sleep(PROBE_INTERVAL).await;
            }
            connector.availability.probing.store(false, Ordering::Release);
        });
    }
}

/// A pooled connection, or why none could be had: the store went down
/// (found by a refused connection, which ends the wait at once) or every
/// connection stayed busy for the pool's whole timeout.
fn checkout(pool: &Pool<Connector>, availability: &Availability) -> Result<PooledConnection<Connector>, DbError> {
    let deadline = std::time::Instant::now() + pool.connection_timeout();
    loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        match pool.get_timeout(left.min(POOL_WAIT_STEP)) {
            Ok(conn) => return Ok(conn),
            Err(error) => {
                if let Some(reason) = availability.down_because() {
                    return Err(DbError::Unavailable(reason));
                }
                if left <= POOL_WAIT_STEP {
                    return Err(DbError::Pool(error));
                }
            }
        }
    }
}

/// Begins a write transaction; on SQLite with the write lock taken up front.
fn begin_write(conn: &mut DbConnection) -> diesel::QueryResult<()> {
    match conn {
        DbConnection::Sqlite(inner) => AnsiTransactionManager::begin_transaction_sql(inner, "BEGIN IMMEDIATE"),
        DbConnection::Postgres(inner) => AnsiTransactionManager::begin_transaction_sql(inner, "BEGIN"),
    }
}

fn write_transaction<T, E, F>(conn: &mut DbConnection, work: F) -> Result<T, E>
where
    F: FnOnce(&mut DbConnection) -> Result<T, E>,
    E: From<DbError>,
{
    begin_write(conn).map_err(DbError::from)?;
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

/// Most writes one shared transaction takes: bounds how long the first of
/// them waits for its answer behind the others.
const MAX_GROUP: usize = 128;

/// A write waiting for the writer thread, its types erased.
struct QueuedWrite(Box<dyn Queued>);

trait Queued: Send {
    /// Runs the work at its own savepoint of the open transaction.
    fn run(self: Box<Self>, conn: &mut DbConnection) -> Box<dyn Ran>;
    /// Answers the caller that the transaction could not begin.
    fn refuse(self: Box<Self>, cause: &Arc<DbError>);
}

trait Ran: Send {
    /// Answers the caller once the shared transaction ended: `Ok` when it committed.
    fn settle(self: Box<Self>, shared: Result<(), &Arc<DbError>>);
}

struct Write<F, T, E> {
    work: F,
    reply: oneshot::Sender<Result<T, E>>,
    span: tracing::Span,
}

impl<F, T, E> Queued for Write<F, T, E>
where
    F: FnOnce(&mut DbConnection) -> Result<T, E> + Send + 'static,
    T: Send + 'static,
    E: From<DbError> + Send + 'static,
{
    fn run(self: Box<Self>, conn: &mut DbConnection) -> Box<dyn Ran> {
        let Self { work, reply, span } = *self;
        // The work runs in its caller's span: events it stages carry its trace.
        let _entered = span.enter();
        // `None` (it panicked) drops `reply`, which tells the caller.
        Box::new(at_savepoint(conn, work).map(|outcome| Done { outcome, reply }))
    }

    fn refuse(self: Box<Self>, cause: &Arc<DbError>) {
        // The caller may have gone away: nothing was written either way.
        let _ = self.reply.send(Err(DbError::GroupCommit(Arc::clone(cause)).into()));
    }
}

struct Done<T, E> {
    outcome: Result<T, E>,
    reply: oneshot::Sender<Result<T, E>>,
}

impl<T: Send, E: From<DbError> + Send> Ran for Option<Done<T, E>> {
    fn settle(self: Box<Self>, shared: Result<(), &Arc<DbError>>) {
        let Some(Done { outcome, reply }) = *self else { return };
        let outcome = match (outcome, shared) {
            (Ok(value), Ok(())) => Ok(value),
            (Ok(_), Err(cause)) => Err(E::from(DbError::GroupCommit(Arc::clone(cause)))),
            // Undone at its savepoint: its own failure is the answer either way.
            (Err(error), _) => Err(error),
        };
        // The caller may have gone away; what committed is stored all the same.
        let _ = reply.send(outcome);
    }
}

/// Runs `work` at a savepoint of the open transaction, undoing it alone
/// when it fails. `None` when it panicked (its effects undone as well).
fn at_savepoint<T, E, F>(conn: &mut DbConnection, work: F) -> Option<Result<T, E>>
where
    F: FnOnce(&mut DbConnection) -> Result<T, E>,
    E: From<DbError>,
{
    type Manager = <DbConnection as Connection>::TransactionManager;
    if let Err(error) = Manager::begin_transaction(conn) {
        return Some(Err(DbError::from(error).into()));
    }
    let outcome = catch_unwind(AssertUnwindSafe(|| work(&mut *conn)));
    let kept = matches!(outcome, Ok(Ok(_)));
    let ended = if kept { Manager::commit_transaction(conn) } else { Manager::rollback_transaction(conn) };
    match (outcome, ended) {
        (Ok(Ok(value)), Ok(())) => Some(Ok(value)),
        (Ok(Ok(_)), Err(error)) => Some(Err(DbError::from(error).into())),
        (Ok(Err(error)), ended) => {
            if let Err(rollback) = ended {
                tracing::warn!(error = %rollback, "rollback to savepoint failed");
            }
            Some(Err(error))
        }
        (Err(_panic), _) => {
            tracing::error!("database work panicked; its effects were undone");
            None
        }
    }
}

/// The SQLite writer thread of a process.
struct GroupWriter {
    conn: DbConnection,
    connector: Connector,
    queue: mpsc::Receiver<QueuedWrite>,
    riders: Arc<Riders>,
    after_commit: Arc<AfterCommit>,
}

impl GroupWriter {
    /// Opens the writer's connection and starts its thread; the thread ends
    /// when the last handle to the database is dropped.
    async fn start(
        connector: Connector,
        riders: Arc<Riders>,
        after_commit: Arc<AfterCommit>,
    ) -> Result<mpsc::Sender<QueuedWrite>, DbError> {
        let (sender, queue) = mpsc::channel();
        let connecting = connector.clone();
        let conn = tokio::task::spawn_blocking(move || connecting.connect().map_err(DbError::Open)).await??;
        let writer = Self { conn, connector, queue, riders, after_commit };
        std::thread::Builder::new()
            .name("sqlite-writer".into())
            .spawn(move || writer.run())
            .map_err(DbError::WriterStart)?;
        Ok(sender)
    }

    fn run(mut self) {
        while let Ok(first) = self.queue.recv() {
            // The riders go first: they waited longest.
            let mut group = std::mem::take(&mut *self.riders.waiting());
            let limit = group.len() + MAX_GROUP;
            group.push(first);
            while group.len() < limit {
                match self.queue.try_recv() {
                    Ok(next) => group.push(next),
                    Err(_) => break,
                }
            }
            self.commit(group);
        }
    }

    /// Runs `group` in one transaction and answers each write after it ended.
    fn commit(&mut self, group: Vec<QueuedWrite>) {
        type Manager = <DbConnection as Connection>::TransactionManager;
        if let Err(error) = begin_write(&mut self.conn) {
            let cause = Arc::new(DbError::from(error));
            for QueuedWrite(write) in group {
                write.refuse(&cause);
            }
            self.recover();
            return;
        }
        let ran: Vec<Box<dyn Ran>> = group.into_iter().map(|QueuedWrite(write)| write.run(&mut self.conn)).collect();
        // Every savepoint must have ended for the commit below to be the
        // transaction's, not a savepoint's.
        let depth = Manager::transaction_manager_status_mut(&mut self.conn).transaction_depth();
        let committed = match depth {
            Ok(Some(depth)) if depth.get() == 1 => Manager::commit_transaction(&mut self.conn),
            _ => Err(diesel::result::Error::BrokenTransactionManager),
        };
        match committed {
            Ok(()) => {
                ran.into_iter().for_each(|write| write.settle(Ok(())));
                self.probe_after_commit();
            }
            Err(error) => {
                if let Err(rollback) = Manager::rollback_transaction(&mut self.conn) {
                    tracing::warn!(error = %rollback, "rollback after a failed commit failed");
                }
                let cause = Arc::new(DbError::from(error));
                ran.into_iter().for_each(|write| write.settle(Err(&cause)));
                self.recover();
            }
        }
    }

    /// Counts the commit and runs the reads waiting for one; those that
    /// found nothing wait for the next.
    fn probe_after_commit(&mut self) {
        let (commit, mut probes) = {
            let mut state = self.after_commit.state();
            state.commits += 1;
            (state.commits, std::mem::take(&mut state.probes))
        };
        if probes.is_empty() {
            return;
        }
        // A probe that panics is dropped, which tells its caller.
        probes
            .retain_mut(|probe| !catch_unwind(AssertUnwindSafe(|| probe.run(&mut self.conn, commit))).unwrap_or(true));
        self.after_commit.state().probes.append(&mut probes);
    }

    /// After a transaction could not begin or end, makes sure the next one
    /// starts on a usable connection, opening a new one if need be.
    fn recover(&mut self) {
        if !self.connector.has_broken(&mut self.conn) && self.connector.is_valid(&mut self.conn).is_ok() {
            return;
        }
        match self.connector.connect() {
            Ok(conn) => self.conn = conn,
            Err(error) => tracing::error!(%error, "cannot reopen the database writer's connection"),
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
    fn postgres_urls_get_timeouts_and_keepalives_unless_they_set_their_own() {
        assert_eq!(
            with_postgres_defaults("postgres://u@h/db"),
            "postgres://u@h/db?connect_timeout=2&keepalives=1&keepalives_idle=5&keepalives_interval=2\
             &keepalives_count=2&tcp_user_timeout=5000"
        );
        let own = with_postgres_defaults("postgres://u@h/db?options=-c%20x%3Dy&connect_timeout=9&keepalives_idle=60");
        assert!(own.starts_with("postgres://u@h/db?options=-c%20x%3Dy&connect_timeout=9&keepalives_idle=60&"), "{own}");
        assert_eq!(own.matches("connect_timeout").count(), 1, "{own}");
        assert_eq!(own.matches("keepalives_idle").count(), 1, "{own}");
        assert!(own.ends_with("&tcp_user_timeout=5000"), "{own}");
    }

    #[test]
    fn store_failures_are_sorted_by_what_they_mean() {
        use diesel::result::{DatabaseErrorKind, Error};
        let query = |kind, message: &str| DbError::Query(Error::DatabaseError(kind, Box::new(message.to_owned())));
        let unknown = DatabaseErrorKind::Unknown;
        assert_eq!(DbError::Unavailable("refused".into()).failure(), Failure::Unavailable);
        assert_eq!(query(DatabaseErrorKind::ClosedConnection, "x").failure(), Failure::Unavailable);
        assert_eq!(query(DatabaseErrorKind::UnableToSendCommand, "x").failure(), Failure::Unavailable);
        assert_eq!(
            query(unknown, "FATAL: terminating connection due to administrator command").failure(),
            Failure::Unavailable
        );
        assert_eq!(query(unknown, "FATAL: the database system is shutting down").failure(), Failure::Unavailable);
        assert_eq!(query(unknown, "database is locked").failure(), Failure::Busy);
        assert_eq!(query(DatabaseErrorKind::SerializationFailure, "x").failure(), Failure::Conflict);
        assert_eq!(query(unknown, "ERROR: deadlock detected").failure(), Failure::Conflict);
        assert_eq!(DbError::Conflict { entity: "mission", key: "m".into() }.failure(), Failure::Conflict);
        assert_eq!(query(DatabaseErrorKind::UniqueViolation, "dup").failure(), Failure::Other);
        assert_eq!(query(unknown, "syntax error").failure(), Failure::Other);
        assert_eq!(DbError::Migration("bad".into()).failure(), Failure::Other);
        let shared = DbError::GroupCommit(Arc::new(DbError::Unavailable("down".into())));
        assert!(shared.is_unavailable() && shared.is_transient());
        assert!(!DbError::Panicked.is_transient());
    }

    #[test]
    fn unknown_schemes_and_empty_paths_are_rejected() {
        assert!(matches!(backend_of("mysql://h/db"), Err(DbError::InvalidUrl(_))));
        assert!(matches!(backend_of("sqlite://"), Err(DbError::InvalidUrl(_))));
        assert!(matches!(backend_of("sqlite::memory:"), Err(DbError::InvalidUrl(_))));
    }
}
