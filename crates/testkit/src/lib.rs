//! Test support that talks to real parts, never stand-ins:
//!
//! - [`NatsServer`]: a real `nats-server` with JetStream on a free port and
//!   its own store, which a test can stop, kill and restart; killed on drop.
//! - [`Broker`]: that server plus a JetStream client, to publish the events of
//!   other contexts and to watch streams and consumers settle.
//! - [`TempStore`], [`service_config`], [`Running`]: a service under test on
//!   a free port with a fresh SQLite file, stopped when dropped.
//! - [`PostgresSchema`]: a fresh schema on the local PostgreSQL server, dropped after the test.
//! - [`eventually`]: polls until an asynchronous effect is visible.
//! - [`free_port`]: a port nobody listens on.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};

/// A port that was free a moment ago.
///
/// # Panics
/// When the OS has no free port to give.
pub fn free_port() -> u16 {
    #[allow(clippy::unwrap_used)] // a test machine without a free loopback port cannot run tests anyway
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    #[allow(clippy::unwrap_used)] // a bound listener has an address
    listener.local_addr().unwrap().port()
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
    if let Ok(bin) = std::env::var("NATS_SERVER_BIN") {
        return Ok(PathBuf::from(bin));
    }
    let local = workspace_root().join(".tools/bin/nats-server");
    if local.exists() {
        return Ok(local);
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|dir| dir.join("nats-server"))
        .find(|candidate| candidate.exists())
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
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
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
        #[allow(clippy::expect_used)] // it was just seen listening
        let client = async_nats::connect(server.url()).await.expect("connects to nats-server");
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
        use platform::events::{CUSTOMER_ID_HEADER, EVENT_TYPE_HEADER, MISSION_ID_HEADER};
        #[allow(clippy::expect_used)] // a broker that refuses a stream breaks the test setup
        E::STREAM.ensure(&self.js).await.expect("stream exists");
        let correlation = event.correlation();
        let mut headers = async_nats::HeaderMap::new();
        headers.insert(EVENT_TYPE_HEADER, E::TYPE);
        headers.insert(MISSION_ID_HEADER, correlation.mission_id.as_str());
        headers.insert(CUSTOMER_ID_HEADER, correlation.customer_id.as_str());
        let message = async_nats::jetstream::message::PublishMessage::build()
            .payload(event.encode_to_vec().into())
            .headers(headers)
            .message_id(event.event_id());
        #[allow(clippy::expect_used)] // as above
        let ack = self.js.send_publish(E::SUBJECT, message).await.expect("published").await.expect("acknowledged");
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
            .create_consumer(async_nats::jetstream::consumer::pull::Config::default())
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
        metrics_addr: None,
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
