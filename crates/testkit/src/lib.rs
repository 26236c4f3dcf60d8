//! Test support that talks to real parts, never stand-ins:
//!
//! - [`NatsServer`]: a real `nats-server` with JetStream on a free port and
//!   its own store, which a test can stop, kill and restart; killed on drop.
//! - [`Broker`]: that server plus a JetStream client, to publish the events of
//!   other contexts and to watch streams and consumers settle.
//! - [`TempStore`], [`service_config`], [`Running`]: a service under test on
//!   a free port with a fresh SQLite file, stopped when dropped.
//! - [`PostgresSchema`]: a fresh schema on the local PostgreSQL server, dropped after the test.
//! - [`split_backlog`]: replicas of a service on one PostgreSQL store
//!   splitting a backlog, each event applied once.
//! - [`PostgresServer`]: a PostgreSQL instance of the test's own, to kill and restart.
//! - [`NatsCluster`]: a JetStream cluster of real nats-server processes, to
//!   kill and restart node by node.
//! - [`ServiceProcess`]: a service binary as a child process, to kill with
//!   SIGKILL at a named failpoint and to scrape its `/metrics`.
//! - [`identity`], [`AsCaller`]: the tests' identity provider (a key pair
//!   and JWKS made once per test process) and calls signed as a player or
//!   an operator with it; every service under test verifies its tokens.
//! - [`eventually`]: polls until an asynchronous effect is visible.
//! - [`free_port`]: a port nobody listens on.
//! - [`MemoryStore`]: the one exception, for use-case tests only: a service's
//!   state behind its store port's transaction rules, without a database
//!   (the adapters of the same ports are tested against real databases).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};

mod backlog;
mod cluster;
mod memory_store;
mod postgres_server;
mod test_clock;

pub use backlog::{BacklogSplit, Durable, published_once, split_backlog};
pub use cluster::NatsCluster;
pub use dev_issuer::{Bearer, DevIssuer, authorized};
pub use memory_store::{MemoryStore, save_if_unchanged};
pub use postgres_server::PostgresServer;
pub use test_clock::TestClock;

/// The identity provider of this test process: one key pair and JWKS in a
/// temporary directory, which every service and gateway under test trusts.
///
/// # Panics
/// When the temporary directory cannot be written.
pub fn identity() -> &'static DevIssuer {
    static IDENTITY: std::sync::OnceLock<(tempfile::TempDir, DevIssuer)> = std::sync::OnceLock::new();
    &IDENTITY
        .get_or_init(|| {
            #[allow(clippy::expect_used)] // a test machine without a temp dir cannot run tests
            let dir = tempfile::Builder::new().prefix("identity-").tempdir().expect("temp dir");
            #[allow(clippy::expect_used)] // a fresh directory takes a fresh key
            let issuer = DevIssuer::create_or_load(dir.path()).expect("a development key pair");
            (dir, issuer)
        })
        .1
}

/// A request message sent as someone, with a token of [`identity`].
pub trait AsCaller: Sized {
    /// Sent by the player `customer_id`.
    fn by_player(self, customer_id: &str) -> tonic::Request<Self>;
    /// Sent by an operator.
    fn by_operator(self) -> tonic::Request<Self>;
}

/// A command sent by the player it names, as a client of the player would.
pub trait AsOwner: Sized {
    /// Sent by the player of its `customer_id`; a malformed customer id is
    /// sent by `player-0`, so that the service sees (and names) the bad field.
    fn by_owner(self) -> tonic::Request<Self>;
}

fn owner(customer_id: &str) -> &str {
    if kernel::CustomerId::parse(customer_id).is_ok() { customer_id } else { "player-0" }
}

impl AsOwner for api::game::mission::v1::AchieveMissionRequest {
    fn by_owner(self) -> tonic::Request<Self> {
        let token = identity().player(owner(&self.customer_id));
        authorized(self, &token)
    }
}

impl AsOwner for api::game::wallet::v1::ExchangeRewardRequest {
    fn by_owner(self) -> tonic::Request<Self> {
        let token = identity().player(owner(&self.customer_id));
        authorized(self, &token)
    }
}

impl<M> AsCaller for M {
    fn by_player(self, customer_id: &str) -> tonic::Request<Self> {
        authorized(self, &identity().player(customer_id))
    }

    fn by_operator(self) -> tonic::Request<Self> {
        authorized(self, &identity().operator())
    }
}

/// A port that was free a moment ago, from the tests' range (see
/// [`localinfra::ports`]).
///
/// # Panics
/// When no port of the range is free.
pub fn free_port() -> u16 {
    #[allow(clippy::expect_used)] // ten thousand ports all taken: no test can run
    localinfra::ports::TESTS.take().expect("a free port for the test")
}

/// The workspace root, where `.tools/` lives.
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Finds `nats-server`: `$NATS_SERVER_BIN`, then the project's `.tools/`, then `PATH`.
///
/// # Errors
/// When none is installed; `./dev test` installs one.
pub fn nats_server_binary() -> anyhow::Result<PathBuf> {
    localinfra::nats::find_server(&workspace_root())
        .context("nats-server not found: run ./dev test (it installs it into .tools/) or set NATS_SERVER_BIN")
}

/// A real nats-server with JetStream, owned by one test.
#[derive(Debug)]
pub struct NatsServer {
    port: u16,
    store: tempfile::TempDir,
    child: Option<Child>,
}

impl NatsServer {
    /// Starts a server on a free port with a fresh file store.
    ///
    /// # Errors
    /// When nats-server is missing or does not come up.
    pub fn start() -> anyhow::Result<Self> {
        let store = tempfile::Builder::new().prefix("nats-test-").tempdir()?;
        let mut server = Self { port: free_port(), store, child: None };
        server.restart()?;
        Ok(server)
    }

    /// The client URL.
    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// (Re)starts the server on the same port and store; JetStream state survives.
    ///
    /// # Errors
    /// When it does not accept connections within 10 seconds.
    pub fn restart(&mut self) -> anyhow::Result<()> {
        self.kill();
        let child = Command::new(nats_server_binary()?)
            .args(["-a", "127.0.0.1", "-p", &self.port.to_string(), "-js", "-sd"])
            .arg(self.store.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("cannot spawn nats-server")?;
        let child = self.child.insert(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            // A server that died at start (its port taken meanwhile by
            // another process) must not be waited for, nor mistaken for
            // whatever else listens there later.
            if let Some(status) = child.try_wait()? {
                bail!("nats-server exited at start on port {} ({status})", self.port);
            }
            if Instant::now() > deadline {
                bail!("nats-server did not listen on port {} within 10 s", self.port);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(())
    }

    /// Kills the server at once (SIGKILL), as a crash would.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The local PostgreSQL server tests may use (`TEST_POSTGRES_URL`).
pub fn postgres_url() -> String {
    std::env::var("TEST_POSTGRES_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned())
}

/// A fresh schema on the local PostgreSQL server, dropped (with everything
/// in it) when the value is dropped.
#[derive(Debug)]
pub struct PostgresSchema {
    schema: String,
    url: String,
}

impl PostgresSchema {
    /// Creates `<prefix>_<random>`, or returns `None` when no server is reachable.
    ///
    /// # Panics
    /// When `REQUIRE_POSTGRES=1` (as in CI) and the server cannot be reached, so
    /// that a missing database fails the run instead of skipping tests quietly.
    pub fn create(prefix: &str) -> Option<Self> {
        use diesel::RunQueryDsl as _;
        let mut conn = connect_or_skip()?;
        let schema = format!("{prefix}_{}", uuid::Uuid::new_v4().simple());
        #[allow(clippy::unwrap_used)] // a reachable server that refuses CREATE SCHEMA is a broken test setup
        diesel::sql_query(format!("CREATE SCHEMA {schema}")).execute(&mut conn).unwrap();
        let base = postgres_url();
        let separator = if base.contains('?') { '&' } else { '?' };
        let url = format!("{base}{separator}options=-c%20search_path%3D{schema}");
        Some(Self { schema, url })
    }

    /// A URL whose `search_path` is this schema.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Runs `query`, which selects one BIGINT named `n` (`SELECT COUNT(*)
    /// AS n …`), in this schema, beside the services using it.
    ///
    /// # Errors
    /// When the server cannot be reached or refuses the query.
    pub fn count(&self, query: &str) -> anyhow::Result<i64> {
        use diesel::{Connection as _, RunQueryDsl as _};
        #[derive(diesel::QueryableByName)]
        struct Count {
            #[diesel(sql_type = diesel::sql_types::BigInt)]
            n: i64,
        }
        let mut conn = diesel::PgConnection::establish(&self.url)?;
        Ok(diesel::sql_query(query).get_result::<Count>(&mut conn).with_context(|| query.to_owned())?.n)
    }
}

impl Drop for PostgresSchema {
    fn drop(&mut self) {
        use diesel::{Connection as _, RunQueryDsl as _};
        if let Ok(mut conn) = diesel::PgConnection::establish(&postgres_url()) {
            let _ = diesel::sql_query(format!("DROP SCHEMA IF EXISTS {} CASCADE", self.schema)).execute(&mut conn);
        }
    }
}

fn connect_or_skip() -> Option<diesel::PgConnection> {
    use diesel::Connection as _;
    let base = postgres_url();
    match diesel::PgConnection::establish(&base) {
        Ok(conn) => Some(conn),
        Err(error) => {
            assert!(
                std::env::var("REQUIRE_POSTGRES").as_deref() != Ok("1"),
                "REQUIRE_POSTGRES=1 but {base} is unreachable: {error}"
            );
            eprintln!("PostgreSQL at {base} unreachable ({error}); skipping the PostgreSQL variant");
            None
        }
    }
}

/// Polls `check` until it returns `Some`, for at most `within`.
///
/// # Panics
/// When it never does: the test fails, naming `what`.
pub async fn eventually<T, F, Fut>(what: &str, within: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + within;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(tokio::time::Instant::now() < deadline, "timed out after {within:?} waiting for {what}");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// A real nats-server and a JetStream client of it: how tests play the
/// other contexts (publishing their events) and watch a service's streams
/// and consumers.
#[derive(Debug)]
pub struct Broker {
    pub server: NatsServer,
    pub js: async_nats::jetstream::Context,
}

impl Broker {
    /// Starts a nats-server and connects to it.
    ///
    /// # Panics
    /// When it does not start: no test can proceed without it.
    pub async fn start() -> Self {
        #[allow(clippy::expect_used)] // no broker, no test
        let server = NatsServer::start().expect("nats-server starts");
        // Seen listening is not yet serving clients: a server still setting
        // up JetStream has refused a first connection (seen once in CI).
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        let client = loop {
            match async_nats::connect(server.url()).await {
                Ok(client) => break client,
                Err(_) if tokio::time::Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                #[allow(clippy::panic)] // no broker, no test
                Err(error) => panic!("connects to nats-server at {}: {error}", server.url()),
            }
        };
        Self { server, js: async_nats::jetstream::new(client) }
    }

    /// The client URL.
    pub fn url(&self) -> String {
        self.server.url()
    }

    /// Publishes `event` as its producing context would: on its subject, its
    /// id as `Nats-Msg-Id`, with the correlation headers; returns its stream
    /// sequence once JetStream acknowledged it.
    ///
    /// # Panics
    /// When JetStream refuses it, or drops it as a duplicate of an earlier id.
    pub async fn publish<E: platform::events::Event>(&self, event: &E) -> u64 {
        #[allow(clippy::expect_used)] // a broker that refuses a stream breaks the test setup
        E::STREAM.ensure(&self.js).await.expect("stream exists");
        #[allow(clippy::expect_used)] // as above
        let ack = publish_to(&self.js, event).await.expect("published and acknowledged");
        assert!(!ack.duplicate, "{} was published before", event.event_id());
        ack.sequence
    }

    /// Waits until the durable `consumer` of `stream` has settled every event
    /// so far (applied, found already applied, or terminated): the way to
    /// show that "nothing more happened" without sleeping.
    pub async fn settled(&self, stream: platform::events::StreamDef, consumer: &str) {
        eventually(&format!("{consumer} to settle"), Duration::from_secs(10), || async move {
            let stream = self.js.get_stream(stream.name).await.ok()?;
            let info = stream.consumer_info(consumer).await.ok()?;
            (info.num_pending == 0 && info.num_ack_pending == 0).then_some(())
        })
        .await;
    }

    /// Every message on `stream`, once at least `at_least` are there.
    ///
    /// # Panics
    /// When they cannot be read.
    pub async fn published(
        &self,
        stream: platform::events::StreamDef,
        at_least: u64,
    ) -> Vec<async_nats::jetstream::Message> {
        use futures::StreamExt as _;
        let what = format!("{at_least} messages on {}", stream.name);
        let stream = eventually(&what, Duration::from_secs(10), || async move {
            let stream = self.js.get_stream(stream.name).await.ok()?;
            let info = stream.get_info().await.ok()?;
            (info.state.messages >= at_least).then_some(stream)
        })
        .await;
        #[allow(clippy::expect_used)] // a stream that exists takes an ephemeral consumer
        let consumer: async_nats::jetstream::consumer::PullConsumer = stream
            .create_consumer(async_nats::jetstream::consumer::pull::Config {
                // Unacknowledged reads: with explicit acks the server would
                // stop at max_ack_pending (1,000) messages.
                ack_policy: async_nats::jetstream::consumer::AckPolicy::None,
                ..Default::default()
            })
            .await
            .expect("ephemeral consumer");
        #[allow(clippy::expect_used)] // as above
        let mut batch =
            consumer.fetch().max_messages(10_000).expires(Duration::from_millis(500)).messages().await.expect("fetch");
        let mut seen = Vec::new();
        while let Some(Ok(message)) = batch.next().await {
            seen.push(message);
        }
        seen
    }
}

/// Publishes `event` once on `js` as its producing context would: on its
/// subject, its id as `Nats-Msg-Id` (so that publishing it again is a
/// duplicate JetStream drops), with the correlation headers; the stream must
/// exist. Returns JetStream's acknowledgement.
///
/// # Errors
/// When JetStream does not acknowledge it (no leader, no quorum, timeout).
pub async fn publish_to<E: platform::events::Event>(
    js: &async_nats::jetstream::Context,
    event: &E,
) -> Result<async_nats::jetstream::publish::PublishAck, async_nats::Error> {
    use platform::events::{CUSTOMER_ID_HEADER, EVENT_TYPE_HEADER, MISSION_ID_HEADER};
    let correlation = event.correlation();
    let mut headers = async_nats::HeaderMap::new();
    headers.insert(EVENT_TYPE_HEADER, E::TYPE);
    headers.insert(MISSION_ID_HEADER, correlation.mission_id.as_str());
    headers.insert(CUSTOMER_ID_HEADER, correlation.customer_id.as_str());
    let message = async_nats::jetstream::message::PublishMessage::build()
        .payload(event.encode_to_vec().into())
        .headers(headers)
        .message_id(event.event_id());
    Ok(js.send_publish(E::SUBJECT, message).await?.await?)
}

/// A directory for a service's SQLite file, removed at the end of the test.
#[derive(Debug)]
pub struct TempStore(tempfile::TempDir);

impl TempStore {
    /// A fresh, empty directory.
    ///
    /// # Panics
    /// When the OS cannot create one.
    pub fn new() -> Self {
        #[allow(clippy::expect_used)] // a test machine without a temp dir cannot run tests
        Self(tempfile::Builder::new().prefix("store-").tempdir().expect("temp dir"))
    }

    /// The SQLite URL of `service`'s store in this directory.
    pub fn sqlite_url(&self, service: &str) -> String {
        self.0.path().join(format!("{service}.sqlite")).display().to_string()
    }
}

impl Default for TempStore {
    fn default() -> Self {
        Self::new()
    }
}

/// The configuration of a service under test: a free port, `database_url`, the broker.
pub fn service_config(broker: &Broker, database_url: String) -> platform::config::ServiceConfig {
    platform::config::ServiceConfig {
        grpc_addr: ([127, 0, 0, 1], 0).into(),
        database_url,
        nats_url: broker.url(),
        shutdown_grace: Duration::from_secs(2),
        auth: Some(identity().auth_config()),
        ..platform::config::ServiceConfig::local("service-under-test", 0)
    }
}

/// A service serving in the background of a test; it stops (drains) when dropped.
#[derive(Debug)]
pub struct Running {
    port: u16,
    stop: platform::CancellationToken,
}

impl Running {
    /// Serves `app` until the returned value is dropped.
    pub fn serve(app: platform::host::ServiceApp) -> Self {
        let port = app.port();
        let stop = platform::CancellationToken::new();
        tokio::spawn(app.run_until_stopped(stop.clone().cancelled_owned()));
        Self { port, stop }
    }

    /// Its URL, for a client.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Its port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Stops it now (the drain continues in the background).
    pub fn stop(&self) {
        self.stop.cancel();
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

/// How to start a [`ServiceProcess`]: its binary, store, broker, and
/// optionally a failpoint at which it pauses until killed.
#[derive(Debug, Clone)]
pub struct ServiceCommand {
    binary: PathBuf,
    grpc_service: String,
    env: Vec<(String, String)>,
    failpoint: Option<String>,
}

impl ServiceCommand {
    /// Runs `binary` (e.g. `env!("CARGO_BIN_EXE_reward")`), whose gRPC
    /// service `grpc_service` reports health, on `database_url` and `nats_url`.
    pub fn new(binary: impl Into<PathBuf>, grpc_service: &str, database_url: &str, nats_url: &str) -> Self {
        Self {
            binary: binary.into(),
            grpc_service: grpc_service.to_owned(),
            env: vec![
                ("DATABASE_URL".to_owned(), database_url.to_owned()),
                ("NATS_URL".to_owned(), nats_url.to_owned()),
                ("SHUTDOWN_GRACE_MS".to_owned(), "2000".to_owned()),
                ("RUST_LOG".to_owned(), "info,async_nats=warn".to_owned()),
                // The log is a file, read by people and by assertions: no colour codes.
                ("NO_COLOR".to_owned(), "1".to_owned()),
            ]
            .into_iter()
            .chain(identity().env())
            .collect(),
            failpoint: None,
        }
    }

    /// Arms `failpoint` (see `platform::failpoint`): the process pauses there
    /// forever, after writing a marker that [`ServiceProcess::wait_failpoint`] sees.
    #[must_use]
    pub fn failpoint(mut self, failpoint: &str) -> Self {
        self.failpoint = Some(failpoint.to_owned());
        self
    }

    /// Sets one more environment variable (or overrides one of the above).
    #[must_use]
    pub fn env(mut self, name: &str, value: &str) -> Self {
        self.env.retain(|(n, _)| n != name);
        self.env.push((name.to_owned(), value.to_owned()));
        self
    }

    /// Starts the process with gRPC and metrics on free ports, its output in a log file.
    ///
    /// # Errors
    /// When the binary cannot be spawned.
    pub fn spawn(self) -> anyhow::Result<ServiceProcess> {
        let dir = tempfile::Builder::new().prefix("service-process-").tempdir()?;
        let log_path = dir.path().join("service.log");
        let marker = dir.path().join("failpoint.reached");
        let log = std::fs::File::create(&log_path)?;
        let (grpc_port, metrics_port) = (free_port(), free_port());
        let mut command = Command::new(&self.binary);
        command
            .env_remove("FAILPOINT")
            .env_remove("FAILPOINT_MARKER")
            .env_remove("LOG_FORMAT")
            .env("GRPC_ADDR", format!("127.0.0.1:{grpc_port}"))
            .env("METRICS_ADDR", format!("127.0.0.1:{metrics_port}"))
            .envs(self.env.iter().map(|(n, v)| (n, v)))
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log);
        if let Some(failpoint) = &self.failpoint {
            command.env("FAILPOINT", failpoint).env("FAILPOINT_MARKER", &marker);
        }
        let child = command.spawn().with_context(|| format!("cannot spawn {}", self.binary.display()))?;
        Ok(ServiceProcess {
            child: Some(child),
            grpc_service: self.grpc_service,
            grpc_port,
            metrics_port,
            log_path,
            marker,
            _dir: dir,
        })
    }
}

/// A service binary running as a child process of the test, so that it can
/// be killed for real (SIGKILL) at any moment, e.g. paused at a failpoint.
/// Killed when dropped; if the test is failing then, its log is printed.
#[derive(Debug)]
pub struct ServiceProcess {
    child: Option<Child>,
    grpc_service: String,
    grpc_port: u16,
    metrics_port: u16,
    log_path: PathBuf,
    marker: PathBuf,
    _dir: tempfile::TempDir,
}

impl ServiceProcess {
    /// The gRPC URL, for a client.
    pub fn grpc_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.grpc_port)
    }

    /// Everything the process wrote to stdout and stderr so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log_path).unwrap_or_default()
    }

    /// Fails with the log when the process is no longer running.
    fn ensure_alive(&mut self) -> anyhow::Result<()> {
        match self.child.as_mut().map(Child::try_wait) {
            None => bail!("the process was killed"),
            Some(Ok(None)) => Ok(()),
            Some(Ok(Some(status))) => bail!("the process exited with {status}; its log:\n{}", self.log()),
            Some(Err(error)) => bail!("cannot check the process: {error}"),
        }
    }

    /// Waits until `grpc.health.v1` reports its gRPC service SERVING.
    ///
    /// # Errors
    /// When it exits, or is not serving `within` that long (the log is in the error).
    pub async fn wait_healthy(&mut self, within: Duration) -> anyhow::Result<()> {
        use tonic_health::pb::{HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient};
        let deadline = tokio::time::Instant::now() + within;
        loop {
            self.ensure_alive()?;
            let endpoint = tonic::transport::Endpoint::from_shared(self.grpc_url())?
                .connect_timeout(Duration::from_secs(1))
                .timeout(Duration::from_secs(2));
            if let Ok(channel) = endpoint.connect().await {
                let request = HealthCheckRequest { service: self.grpc_service.clone() };
                if let Ok(response) = HealthClient::new(channel).check(request).await
                    && response.into_inner().status() == ServingStatus::Serving
                {
                    return Ok(());
                }
            }
            if tokio::time::Instant::now() > deadline {
                bail!("{} not SERVING within {within:?}; its log:\n{}", self.grpc_service, self.log());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Whether `grpc.health.v1` reports `service` (a gRPC service, `""`, or
    /// a dependency's entry such as `database`) SERVING; `None` when the
    /// process does not answer within a second.
    pub async fn serving(&self, service: &str) -> Option<bool> {
        use tonic_health::pb::{HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient};
        let endpoint = tonic::transport::Endpoint::from_shared(self.grpc_url())
            .ok()?
            .connect_timeout(Duration::from_secs(1))
            .timeout(Duration::from_secs(1));
        let channel = endpoint.connect().await.ok()?;
        let request = HealthCheckRequest { service: service.to_owned() };
        let response = HealthClient::new(channel).check(request).await.ok()?;
        Some(response.into_inner().status() == ServingStatus::Serving)
    }

    /// Waits until the health entry `service` is SERVING (`serving`) or
    /// NOT_SERVING, and says how long that took.
    ///
    /// # Errors
    /// When it is not `within` that long (the process's log is in the error).
    pub async fn wait_serving(&mut self, service: &str, serving: bool, within: Duration) -> anyhow::Result<Duration> {
        let started = Instant::now();
        loop {
            self.ensure_alive()?;
            if self.serving(service).await == Some(serving) {
                return Ok(started.elapsed());
            }
            if started.elapsed() > within {
                let status = if serving { "SERVING" } else { "NOT_SERVING" };
                bail!("health entry {service:?} not {status} within {within:?}; the log:\n{}", self.log());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Waits until the process reached its armed failpoint (and paused there).
    ///
    /// # Errors
    /// When it exits, or does not reach it `within` that long (the log is in the error).
    pub async fn wait_failpoint(&mut self, within: Duration) -> anyhow::Result<()> {
        let deadline = tokio::time::Instant::now() + within;
        while !self.marker.exists() {
            self.ensure_alive()?;
            if tokio::time::Instant::now() > deadline {
                bail!("the failpoint was not reached within {within:?}; the log:\n{}", self.log());
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Ok(())
    }

    /// Kills the process at once (SIGKILL on unix), as a crash would, and reaps it.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// The metrics page (`GET /metrics`, OpenMetrics text) of the process.
    ///
    /// # Errors
    /// When it cannot be fetched.
    pub async fn metrics_text(&self) -> anyhow::Result<String> {
        use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
        let limit = Duration::from_secs(5);
        let fetch = async {
            let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", self.metrics_port)).await?;
            // HTTP/1.0: the server closes the connection after the one response.
            stream.write_all(b"GET /metrics HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").await?;
            let mut response = Vec::new();
            stream.read_to_end(&mut response).await?;
            anyhow::Ok(String::from_utf8(response)?)
        };
        let response = tokio::time::timeout(limit, fetch).await.context("metrics did not answer")??;
        let (head, body) = response.split_once("\r\n\r\n").context("not an HTTP response")?;
        if head.split_whitespace().nth(1) != Some("200") {
            bail!("metrics answered {}", head.lines().next().unwrap_or_default());
        }
        Ok(body.to_owned())
    }

    /// The current value of one series, named with its labels exactly as the
    /// page prints them, e.g.
    /// `rewards_consumer_events_total{consumer="reward-allocate",outcome="applied"}`;
    /// `None` while the series does not exist or the page cannot be fetched.
    pub async fn metric(&self, series: &str) -> Option<f64> {
        let text = self.metrics_text().await.ok()?;
        text.lines()
            .filter_map(|line| line.strip_prefix(series)?.strip_prefix(' '))
            .find_map(|value| value.split_whitespace().next()?.parse().ok())
    }
}

impl Drop for ServiceProcess {
    fn drop(&mut self) {
        self.kill();
        if std::thread::panicking() {
            eprintln!("----- log of {} -----\n{}----- end of log -----", self.grpc_service, self.log());
        }
    }
}
