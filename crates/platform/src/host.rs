//! Starting, serving and draining a service.
//!
//! [`ServiceHost::start`] validates nothing twice: configuration is already
//! typed. It binds the listener, opens the store (running migrations),
//! connects to NATS, and hands out what the service wires together. Then
//! [`ServiceHost::serve`] serves the service's gRPC API beside
//! `grpc.health.v1` and reflection until asked to stop, and drains in order:
//! health NOT_SERVING, no new calls, in-flight calls finished, consumers
//! stopped, outbox flushed — all within the grace period.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use async_nats::jetstream;
use diesel_migrations::EmbeddedMigrations;
use tokio::net::TcpListener;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tonic::server::NamedService;
use tonic::service::RoutesBuilder;
use tonic_health::ServingStatus;
use tonic_health::server::HealthReporter;

use crate::auth::Verifier;
use crate::caller::AuthenticateLayer;
use crate::config::ServiceConfig;
use crate::consumer::{Consumer, ConsumerConfig, Policy};
use crate::db::{Database, DbError};
use crate::events::{Replicas, StreamDef, TopologyError};
use crate::outbox::{OutboxSignal, Relay, RelayConfig};

/// How long a starting service waits for NATS before it leaves declaring
/// its streams to the tasks that use them.
const JETSTREAM_AT_START: Duration = Duration::from_secs(5);

/// A declaration's outcome at start: a refusal stops the service; silence
/// (the broker went away meanwhile) leaves it to the tasks that retry.
fn declared<T>(outcome: Result<T, TopologyError>) -> Result<(), StartError> {
    match outcome {
        Ok(_) => Ok(()),
        Err(error) if error.is_refusal() => Err(error.into()),
        Err(error) => {
            tracing::warn!(%error, "JetStream did not answer at start; retried in the background");
            Ok(())
        }
    }
}

/// Health entry reporting the store.
pub const DATABASE_HEALTH: &str = "database";
/// Health entry reporting the NATS connection.
pub const NATS_HEALTH: &str = "nats";

/// Why a service could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("cannot listen on {addr}")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot open the store")]
    Database(#[from] DbError),
    #[error("cannot use the NATS URL")]
    Nats(#[from] async_nats::ConnectError),
    #[error("gRPC server failed")]
    Serve(#[from] tonic::transport::Error),
    #[error("cannot verify tokens")]
    Auth(#[from] crate::auth::AuthError),
    #[error("JetStream cannot keep the configured replicas (STREAM_REPLICAS)")]
    Topology(#[from] TopologyError),
    /// A policy whose durable consumer the catalogue does not list for the
    /// service: the quiescence checks, the chart and the operators would
    /// not know it.
    #[error(
        "{service} may not start consumer {consumer} on stream {stream}: the catalogue \
         (crates/api/src/catalogue.rs) lists {listed} as its consumers"
    )]
    UnlistedConsumer { service: &'static str, consumer: &'static str, stream: &'static str, listed: String },
}

/// What a service is called: its short name and its gRPC service.
#[derive(Clone, Copy)]
pub struct ServiceSpec {
    /// The short name, e.g. `mission`; names logs and the NATS connection.
    pub name: &'static str,
    /// The fully qualified gRPC service, e.g. `game.mission.v1.MissionService`;
    /// its health entry turns SERVING when the service can do its job.
    pub grpc_service: &'static str,
    /// The service's own migrations, run after the platform's.
    pub migrations: &'static EmbeddedMigrations,
    /// The streams the service publishes to.
    pub publishes: &'static [StreamDef],
    /// The durable consumers the service may run its policies on (its
    /// catalogue entry's): [`ServiceHost::spawn_policy`] refuses any other.
    pub consumes: &'static [api::catalogue::Consumer],
}

impl std::fmt::Debug for ServiceSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServiceSpec")
            .field("name", &self.name)
            .field("grpc_service", &self.grpc_service)
            .finish_non_exhaustive()
    }
}

/// A started service, before it serves.
#[derive(Debug)]
pub struct ServiceHost {
    spec: ServiceSpec,
    listener: TcpListener,
    db: Database,
    nats: async_nats::Client,
    jetstream: jetstream::Context,
    outbox: OutboxSignal,
    /// Cancelled when serving stops; background tasks end on it.
    background: CancellationToken,
    tasks: JoinSet<()>,
    grace: Duration,
    drain_delay: Duration,
    consumer: ConsumerConfig,
    /// Copies JetStream keeps of every stream and durable consumer.
    replicas: Replicas,
    /// Whether JetStream answered at start: only then are streams and
    /// consumers declared before serving; otherwise their tasks do it once
    /// the broker is back.
    jetstream_reachable: bool,
    /// Verifies callers' tokens; `None` refuses them all.
    verifier: Option<Verifier>,
}

impl ServiceHost {
    /// Binds, opens the store and connects to NATS.
    ///
    /// # Errors
    /// See [`StartError`].
    pub async fn start(spec: ServiceSpec, config: &ServiceConfig) -> Result<Self, StartError> {
        // Before binding: a service that cannot verify tokens must not take calls.
        let verifier = match &config.auth {
            Some(auth) => Some(Verifier::load(auth.clone()).await?),
            None => {
                tracing::warn!(
                    service = spec.name,
                    "no JWKS configured (JWKS_FILE or JWKS_URL): every call that needs a caller is refused"
                );
                None
            }
        };
        let listener = TcpListener::bind(config.grpc_addr)
            .await
            .map_err(|source| StartError::Bind { addr: config.grpc_addr, source })?;
        let metrics = match config.metrics_addr {
            Some(addr) => Some(crate::metrics::bind(addr).await.map_err(|source| StartError::Bind { addr, source })?),
            None => None,
        };
        let db = Database::connect(&config.database_url, spec.migrations).await?;
        let (nats, jetstream) = crate::nats::connect(&config.nats_url, spec.name).await?;
        let replicas = config.stream_replicas;
        // A broker outage must not stop a service from starting (the outbox
        // keeps its events); a broker that answers and refuses the replica
        // count must, before the service takes a call.
        let jetstream_reachable = crate::nats::wait_connected(&nats, JETSTREAM_AT_START).await;
        if jetstream_reachable {
            for stream in spec.publishes {
                declared(stream.declare(&jetstream, replicas).await)?;
            }
        } else {
            tracing::warn!(
                service = spec.name,
                "NATS unreachable at start; streams and consumers are declared once it answers"
            );
        }
        let background = CancellationToken::new();
        let mut tasks = JoinSet::new();
        if let Some(listener) = metrics {
            tasks.spawn(crate::metrics::serve(listener, background.clone()));
        }
        Ok(Self {
            spec,
            listener,
            db,
            nats,
            jetstream,
            outbox: OutboxSignal::default(),
            background,
            tasks,
            grace: config.shutdown_grace,
            drain_delay: config.drain_delay,
            consumer: config.consumer.clone(),
            replicas,
            jetstream_reachable,
            verifier,
        })
    }

    /// The port the service listens on (useful with port 0).
    pub fn port(&self) -> u16 {
        self.listener.local_addr().map(|a| a.port()).unwrap_or_default()
    }

    /// The service's store.
    pub fn db(&self) -> &Database {
        &self.db
    }

    /// The signal that wakes the outbox relay after a commit.
    pub fn outbox(&self) -> &OutboxSignal {
        &self.outbox
    }

    /// JetStream, for services that read streams directly.
    pub fn jetstream(&self) -> &jetstream::Context {
        &self.jetstream
    }

    /// Cancelled when the service stops serving: long-lived streams end on it.
    pub fn stopping(&self) -> CancellationToken {
        self.background.clone()
    }

    /// Publishes this service's outbox.
    pub fn spawn_relay(&mut self) {
        let relay = Relay::new(
            self.db.clone(),
            self.jetstream.clone(),
            self.outbox.clone(),
            RelayConfig { replicas: self.replicas, ..RelayConfig::default() },
            self.spec.publishes,
        );
        self.tasks.spawn(relay.run(self.background.clone()));
    }

    /// Runs `policy` on its durable consumer, declared first (with its
    /// stream and the dead letters') when JetStream answered at start.
    ///
    /// # Errors
    /// [`StartError::UnlistedConsumer`] when the service's catalogue entry
    /// does not list the policy's consumer; [`StartError::Topology`] when
    /// JetStream refuses the replica count.
    pub async fn spawn_policy<P: Policy>(&mut self, policy: P) -> Result<(), StartError> {
        let (name, stream) = (policy.name(), policy.stream().name);
        if !self.spec.consumes.iter().any(|listed| listed.name == name && listed.stream == stream) {
            let listed: Vec<String> = self.spec.consumes.iter().map(|c| format!("{} ({})", c.name, c.stream)).collect();
            return Err(StartError::UnlistedConsumer {
                service: self.spec.name,
                consumer: name,
                stream,
                listed: if listed.is_empty() { "none".to_owned() } else { listed.join(", ") },
            });
        }
        let consumer = Consumer::new(policy, self.db.clone(), self.jetstream.clone(), self.outbox.clone())
            .with_config(self.consumer.clone())
            .with_replicas(self.replicas);
        if self.jetstream_reachable {
            declared(consumer.declare().await)?;
        }
        self.tasks.spawn(consumer.run(self.background.clone()));
        Ok(())
    }

    /// Runs a background task that must end when `stopping` is cancelled.
    pub fn spawn<F>(&mut self, task: impl FnOnce(CancellationToken) -> F)
    where
        F: Future<Output = ()> + Send + 'static,
    {
        self.tasks.spawn(task(self.background.clone()));
    }

    /// The service ready to serve `service`, the context's gRPC API, beside
    /// health and reflection.
    pub fn serving<S>(self, service: S) -> ServiceApp
    where
        S: tower::Service<http::Request<tonic::body::Body>, Error = Infallible>
            + NamedService
            + Clone
            + Send
            + Sync
            + 'static,
        S::Response: axum::response::IntoResponse,
        S::Future: Send + 'static,
    {
        let mut routes = RoutesBuilder::default();
        routes.add_service(service);
        ServiceApp { host: self, routes, also: Vec::new() }
    }

    /// Serves `routes` (plus health and reflection) until `stop` resolves, then drains.
    ///
    /// # Errors
    /// When the gRPC server fails.
    pub async fn serve(self, routes: RoutesBuilder, stop: impl Future<Output = ()> + Send) -> Result<(), StartError> {
        self.serve_all(routes, &[], stop).await
    }

    async fn serve_all(
        self,
        routes: RoutesBuilder,
        also: &[&'static str],
        stop: impl Future<Output = ()> + Send,
    ) -> Result<(), StartError> {
        let Self { spec, listener, db, nats, background, mut tasks, grace, drain_delay, verifier, .. } = self;
        let (reporter, health_service) = tonic_health::server::health_reporter();
        let mut routes = routes;
        routes.add_service(health_service);
        let served: Vec<&str> = std::iter::once(spec.grpc_service).chain(also.iter().copied()).collect();
        add_reflection(&mut routes, &served);

        let health_stop = CancellationToken::new();
        let watcher =
            tokio::spawn(watch_dependencies(reporter.clone(), spec.grpc_service, db, nats, health_stop.clone()));

        let drained = CancellationToken::new();
        let stop_serving = {
            let reporter = reporter.clone();
            let drained = drained.clone();
            async move {
                stop.await;
                tracing::info!(service = spec.name, "draining");
                // The watcher is gone before NOT_SERVING is set, so it cannot
                // flip the entry back.
                health_stop.cancel();
                let _ = watcher.await;
                set_all(&reporter, spec.grpc_service, ServingStatus::NotServing).await;
                // Still serving, so that a call routed here before the
                // balancer saw NOT_SERVING is answered, not refused.
                tokio::time::sleep(drain_delay).await;
                drained.cancel();
            }
        };
        let local_addr = listener.local_addr().ok();
        tracing::info!(service = spec.name, addr = ?local_addr, "serving");
        let server = server_builder()
            // Outermost, so that refused tokens are traced and counted too.
            .layer(crate::telemetry::GrpcServerLayer)
            // Before any service code: a call with a bad token goes no further.
            .layer(AuthenticateLayer::new(verifier))
            .add_routes(routes.routes())
            .serve_with_incoming_shutdown(incoming(listener), stop_serving);

        // In-flight calls get the grace period; long-lived streams end when
        // `background` is cancelled, so they cannot hold the drain forever.
        let served = tokio::select! {
            served = server => served,
            () = async {
                drained.cancelled().await;
                background.cancel();
                tokio::time::sleep(grace).await;
            } => {
                tracing::warn!(service = spec.name, "in-flight calls outlived the grace period");
                Ok(())
            }
        };
        background.cancel();
        if tokio::time::timeout(grace, async { while tasks.join_next().await.is_some() {} }).await.is_err() {
            tracing::warn!(service = spec.name, "background tasks outlived the grace period");
            tasks.abort_all();
        }
        tracing::info!(service = spec.name, "stopped");
        served.map_err(StartError::from)
    }
}

/// A service wired and ready: what every service's `build` returns.
#[derive(Debug)]
pub struct ServiceApp {
    host: ServiceHost,
    routes: RoutesBuilder,
    /// Further gRPC services beside the context's API (e.g. an admin API).
    also: Vec<&'static str>,
}

impl ServiceApp {
    /// Serves `service` too, beside the context's API (listed by reflection,
    /// not part of the health entry).
    #[must_use]
    pub fn also_serving<S>(mut self, service: S) -> Self
    where
        S: tower::Service<http::Request<tonic::body::Body>, Error = Infallible>
            + NamedService
            + Clone
            + Send
            + Sync
            + 'static,
        S::Response: axum::response::IntoResponse,
        S::Future: Send + 'static,
    {
        self.also.push(S::NAME);
        self.routes.add_service(service);
        self
    }

    /// The port the service listens on.
    pub fn port(&self) -> u16 {
        self.host.port()
    }

    /// Serves until `stop` resolves, then drains.
    ///
    /// # Errors
    /// When the gRPC server fails.
    pub async fn run_until_stopped(self, stop: impl Future<Output = ()> + Send) -> Result<(), StartError> {
        self.host.serve_all(self.routes, &self.also, stop).await
    }
}

/// The server settings every service shares.
pub fn server_builder() -> tonic::transport::Server {
    tonic::transport::Server::builder()
        // Detects half-open connections from dead peers instead of waiting
        // for the caller's deadline.
        .http2_keepalive_interval(Some(Duration::from_secs(20)))
        .http2_keepalive_timeout(Some(Duration::from_secs(10)))
        // Stated rather than left to hyper's default, so that the gateway,
        // which forwards what it accepted, is held to the same figure.
        .http2_max_header_list_size(crate::grpc::MAX_HEADER_LIST_BYTES)
        .tcp_nodelay(true)
}

/// The connections `listener` accepts, with Nagle's algorithm off.
///
/// The builder's `tcp_nodelay` only reaches listeners tonic binds itself:
/// on ours, a response written after the connection carried something else
/// (calls overlapping on one connection, a window update while a token is
/// verified) waited for the client's delayed ACK, about 40 ms (measured: 16
/// GetMyPage calls in flight answered at 44 ms p50).
pub fn incoming(listener: TcpListener) -> tonic::transport::server::TcpIncoming {
    tonic::transport::server::TcpIncoming::from(listener).with_nodelay(Some(true))
}

/// Adds gRPC reflection (v1 and v1alpha, for older tools) for `services`
/// and the health service.
pub fn add_reflection(routes: &mut RoutesBuilder, services: &[&str]) {
    let register = |builder: tonic_reflection::server::Builder<'static>| {
        let mut builder = builder
            .register_encoded_file_descriptor_set(api::FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
            .with_service_name("grpc.health.v1.Health");
        for service in services {
            builder = builder.with_service_name(*service);
        }
        builder
    };
    match register(tonic_reflection::server::Builder::configure()).build_v1() {
        Ok(v1) => {
            routes.add_service(v1);
        }
        Err(error) => tracing::error!(%error, "reflection v1 unavailable"),
    }
    match register(tonic_reflection::server::Builder::configure()).build_v1alpha() {
        Ok(v1alpha) => {
            routes.add_service(v1alpha);
        }
        Err(error) => tracing::error!(%error, "reflection v1alpha unavailable"),
    }
}

async fn set_all(reporter: &HealthReporter, service: &str, status: ServingStatus) {
    // The "" entry is what Kubernetes probes ask by default; it must follow
    // the service, not stay SERVING from the start.
    reporter.set_service_status("", status).await;
    reporter.set_service_status(service, status).await;
}

/// Keeps the health entries true to the dependencies: the service is SERVING
/// while its store answers. NATS has its own entry: while the broker is away
/// the service still takes commands, and the outbox keeps their events.
async fn watch_dependencies(
    reporter: HealthReporter,
    service: &'static str,
    db: Database,
    nats: async_nats::Client,
    stopping: CancellationToken,
) {
    let mut last: Option<(bool, bool)> = None;
    loop {
        let db_ok = tokio::time::timeout(Duration::from_secs(3), db.ping()).await.is_ok_and(|r| r.is_ok());
        let nats_ok = crate::nats::is_connected(&nats);
        if stopping.is_cancelled() {
            return;
        }
        if last != Some((db_ok, nats_ok)) {
            let status = |ok| {
                if ok { ServingStatus::Serving } else { ServingStatus::NotServing }
            };
            reporter.set_service_status(DATABASE_HEALTH, status(db_ok)).await;
            reporter.set_service_status(NATS_HEALTH, status(nats_ok)).await;
            set_all(&reporter, service, status(db_ok)).await;
            if last.is_some() || !db_ok || !nats_ok {
                tracing::info!(service, database = db_ok, nats = nats_ok, "dependency health changed");
            }
            last = Some((db_ok, nats_ok));
        }
        tokio::select! {
            () = tokio::time::sleep(Duration::from_secs(1)) => {}
            () = stopping.cancelled() => return,
        }
    }
}
