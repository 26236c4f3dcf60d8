//! The edge gateway: the one entry point for players and tools.
//!
//! - [`edge`]: the edge policy before any routing: bearer tokens, which
//!   role opens which method, per-caller rate limits, message size, deadlines.
//! - [`rate_limit`]: the token buckets behind the rate limits.
//! - [`upstream`]: which gRPC package is served where, by which replicas.
//! - [`link`]: the HTTP/2 connection to one replica, a call forwarded over it.
//! - [`proxy`]: forwards every call to a replica of the service owning its
//!   package, balancing over the replicas that answer.
//! - [`snapshots`]: watch streams read as fast as the service sends, only
//!   the latest page kept for a slow reader; a stalled reader is closed.
//! - [`connections`]: the HTTP/2 server: connection caps, the limits it
//!   advertises and enforces, idle connections closed, resets told from
//!   deadlines, abusive connections cut off.
//! - [`peers`]: per-peer connection counts, budgets and cut-offs.
//! - [`log_budget`]: logging under attack, one line per reason per interval.
//! - [`web`]: browsers: gRPC-Web for the player APIs, CORS, the player's
//!   page at `/` and the development sign-in.
//!
//! Beside the proxy it serves gRPC reflection for every service (so
//! `grpcurl -plaintext 127.0.0.1:8080 list` works with no proto files) and
//! `grpc.health.v1`, whose entry per service is SERVING while at least one
//! of its replicas is. Each upstream variable (`MISSION_URL`, …) may list
//! several replicas, separated by commas.

pub mod connections;
pub mod edge;
pub mod link;
pub mod log_budget;
pub mod peers;
pub mod proxy;
pub mod rate_limit;
pub mod snapshots;
pub mod upstream;
pub mod web;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use api::catalogue;
use platform::auth::{AuthConfig, AuthError, Verifier};
use platform::config::{ConfigError, Env};
use platform::host::add_reflection;
use tokio::net::TcpListener;
use tonic::service::{Routes, RoutesBuilder};
use tonic_health::ServingStatus;
use tonic_health::server::HealthReporter;
use tower::Layer as _;

use crate::connections::ConnectionLimits;
use crate::edge::{EdgeConfig, EdgeLayer};
use crate::peers::{PeerLimits, Peers};
use crate::rate_limit::RateLimit;
use crate::upstream::{InvalidUpstream, Upstream};
use crate::web::{Front, Web, WebConfig, WebError};

/// The further gRPC services the processes of `service` serve, by the
/// catalogue: routed to its replicas, reported healthy with it.
fn hosted_by(service: &str) -> impl Iterator<Item = &'static str> {
    catalogue::SERVICES.iter().filter(move |s| s.grpc_service == service).flat_map(|s| s.also_serves.iter().copied())
}

/// The gateway's configuration.
#[derive(Debug, Clone)]
pub struct GatewayConfig {
    /// Listen address (`GATEWAY_ADDR`).
    pub addr: SocketAddr,
    /// (gRPC service, URLs) of every service of the catalogue, from its
    /// variable (`MISSION_URL`, `WALLET_URL`, …; the URLs of a service's
    /// replicas separated by commas), by default its local address.
    pub upstreams: Vec<(&'static str, String)>,
    /// How long a stopping gateway lets calls in flight finish (`SHUTDOWN_GRACE_MS`).
    pub shutdown_grace: Duration,
    /// Where Prometheus scrapes `/metrics` (`METRICS_ADDR`); none when unset.
    pub metrics_addr: Option<SocketAddr>,
    /// How bearer tokens are verified (`JWKS_FILE` or `JWKS_URL`,
    /// `JWT_ISSUER`, `JWT_AUDIENCE`); with none, every game API call is refused.
    pub auth: Option<AuthConfig>,
    /// Calls per caller (`GATEWAY_RATE_LIMIT_PER_SECOND`, `GATEWAY_RATE_LIMIT_BURST`).
    pub rate_limit: RateLimit,
    /// The largest request message forwarded (`GATEWAY_MAX_MESSAGE_BYTES`).
    pub max_message_bytes: usize,
    /// Connections per peer and in all, budgets of refused calls, cut-offs.
    pub peers: PeerLimits,
    /// What each connection may do: streams, header list, idle time, resets.
    pub connections: ConnectionLimits,
    /// Watch streams one player may hold open (`GATEWAY_MAX_WATCHES_PER_PLAYER`).
    pub watches_per_player: usize,
    /// A watcher that leaves a page untaken this long is closed (`GATEWAY_STALLED_WATCH_MS`).
    pub stalled_watch: Duration,
    /// How long a request may take to arrive whole (`GATEWAY_REQUEST_TIMEOUT_MS`).
    pub request_timeout: Duration,
    /// The header in which a trusted proxy in front names the client's
    /// address (`GATEWAY_CLIENT_ADDRESS_HEADER`, e.g. `x-envoy-external-address`
    /// behind an Istio ingress). When set, budgets are kept per reported
    /// client, and connection caps and cut-offs are left to the proxy.
    pub client_address_header: Option<http::HeaderName>,
    /// What browsers get: the page, gRPC-Web's allowed origins, sign-in.
    pub web: WebConfig,
    /// Whether freed memory is given back to the operating system once a
    /// burst is over (`GATEWAY_RELEASE_FREED_MEMORY`, default true; glibc
    /// only, see [`platform::memory`]). Off to compare, or under another allocator.
    pub release_freed_memory: bool,
}

impl GatewayConfig {
    /// The local defaults: on loopback at the catalogue's port, every
    /// service at its default port.
    pub fn local() -> Self {
        Self {
            addr: SocketAddr::from(([127, 0, 0, 1], catalogue::GATEWAY.port)),
            upstreams: catalogue::SERVICES.iter().map(|s| (s.grpc_service, s.local_url())).collect(),
            shutdown_grace: Duration::from_secs(20),
            metrics_addr: None,
            auth: None,
            rate_limit: RateLimit::DEFAULT,
            max_message_bytes: platform::grpc::MAX_MESSAGE_BYTES,
            peers: PeerLimits::DEFAULT,
            connections: ConnectionLimits::DEFAULT,
            watches_per_player: 4,
            stalled_watch: Duration::from_secs(10),
            request_timeout: Duration::from_secs(10),
            client_address_header: None,
            web: WebConfig::default(),
            release_freed_memory: true,
        }
    }

    /// The local defaults, overridden by the process's environment: the
    /// one place the gateway's configuration is read.
    ///
    /// # Errors
    /// When a variable is set to something unusable.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::read(&Env::process())
    }

    /// The local defaults, overridden by `env`.
    ///
    /// # Errors
    /// When a variable is set to something unusable.
    pub fn read(env: &Env) -> Result<Self, ConfigError> {
        let defaults = Self::local();
        let mut upstreams = Vec::with_capacity(catalogue::SERVICES.len());
        for service in &catalogue::SERVICES {
            upstreams.push((service.grpc_service, env.or(service.url_variable, service.local_url())?));
        }
        Ok(Self {
            addr: env.or("GATEWAY_ADDR", defaults.addr)?,
            upstreams,
            shutdown_grace: env.millis("SHUTDOWN_GRACE_MS", defaults.shutdown_grace)?,
            metrics_addr: env.optional("METRICS_ADDR")?,
            auth: AuthConfig::read(env)?,
            rate_limit: RateLimit {
                per_second: env.above_zero("GATEWAY_RATE_LIMIT_PER_SECOND", defaults.rate_limit.per_second)?,
                burst: env.above_zero("GATEWAY_RATE_LIMIT_BURST", defaults.rate_limit.burst)?,
            },
            max_message_bytes: env.above_zero("GATEWAY_MAX_MESSAGE_BYTES", defaults.max_message_bytes)?,
            peers: PeerLimits {
                max_connections: env.above_zero("GATEWAY_MAX_CONNECTIONS", defaults.peers.max_connections)?,
                // 0: no per-peer cap (behind a proxy, every connection is the proxy's).
                per_peer: env.or("GATEWAY_MAX_CONNECTIONS_PER_PEER", defaults.peers.per_peer)?,
                unverified: RateLimit {
                    per_second: env
                        .above_zero("GATEWAY_UNVERIFIED_PER_SECOND", defaults.peers.unverified.per_second)?,
                    burst: env.above_zero("GATEWAY_UNVERIFIED_BURST", defaults.peers.unverified.burst)?,
                },
                refusals: RateLimit {
                    per_second: env.above_zero("GATEWAY_REFUSALS_PER_SECOND", defaults.peers.refusals.per_second)?,
                    burst: env.above_zero("GATEWAY_REFUSALS_BURST", defaults.peers.refusals.burst)?,
                },
                penalty: env.millis("GATEWAY_PENALTY_MS", defaults.peers.penalty)?,
            },
            connections: ConnectionLimits {
                max_concurrent_streams: env
                    .above_zero("GATEWAY_MAX_CONCURRENT_STREAMS", defaults.connections.max_concurrent_streams)?,
                idle_timeout: env.above_zero_millis("GATEWAY_IDLE_TIMEOUT_MS", defaults.connections.idle_timeout)?,
                early_resets: RateLimit {
                    per_second: env
                        .above_zero("GATEWAY_RESETS_PER_SECOND", defaults.connections.early_resets.per_second)?,
                    burst: env.above_zero("GATEWAY_RESETS_BURST", defaults.connections.early_resets.burst)?,
                },
                ..defaults.connections
            },
            watches_per_player: env.above_zero("GATEWAY_MAX_WATCHES_PER_PLAYER", defaults.watches_per_player)?,
            stalled_watch: env.above_zero_millis("GATEWAY_STALLED_WATCH_MS", defaults.stalled_watch)?,
            request_timeout: env.above_zero_millis("GATEWAY_REQUEST_TIMEOUT_MS", defaults.request_timeout)?,
            client_address_header: env.optional("GATEWAY_CLIENT_ADDRESS_HEADER")?,
            web: WebConfig::read(env)?,
            release_freed_memory: env.or("GATEWAY_RELEASE_FREED_MEMORY", defaults.release_freed_memory)?,
        })
    }
}

/// Why the gateway could not start.
#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    #[error(transparent)]
    Upstream(#[from] InvalidUpstream),
    #[error("cannot listen on {addr}")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot verify tokens")]
    Auth(#[from] AuthError),
    #[error("cannot serve browsers")]
    Web(#[from] WebError),
}

/// The gateway, bound and ready to serve.
#[derive(Debug)]
pub struct App {
    listener: TcpListener,
    metrics: Option<TcpListener>,
    upstreams: Vec<Upstream>,
    grace: Duration,
    edge: EdgeConfig,
    connections: ConnectionLimits,
    stalled_watch: Duration,
    web: Arc<Web>,
    release_freed_memory: bool,
}

impl App {
    /// Binds the listeners and prepares a lazy, balanced channel to every
    /// upstream's replicas.
    ///
    /// # Errors
    /// When an upstream URL is invalid or an address is taken.
    pub async fn build(config: GatewayConfig) -> Result<Self, GatewayError> {
        // Before binding: a gateway that cannot verify tokens must not take calls.
        let verifier = match config.auth.clone() {
            Some(auth) => Some(Verifier::load(auth).await?),
            None => {
                tracing::warn!("no JWKS configured (JWKS_FILE or JWKS_URL): every game API call is refused");
                None
            }
        };
        let edge = EdgeConfig {
            verifier,
            rate_limit: config.rate_limit,
            max_message_bytes: config.max_message_bytes,
            peers: Arc::new(Peers::new(config.peers.clone())),
            watches_per_player: config.watches_per_player,
            request_timeout: config.request_timeout,
            client_address_header: config.client_address_header.clone(),
        };
        let web = Arc::new(Web::load(&config.web, config.addr)?);
        let upstreams = config
            .upstreams
            .iter()
            .map(|(service, url)| {
                let upstream = Upstream::new(service, url)?;
                Ok(hosted_by(service).fold(upstream, Upstream::hosting))
            })
            .collect::<Result<Vec<_>, InvalidUpstream>>()?;
        let listener =
            TcpListener::bind(config.addr).await.map_err(|source| GatewayError::Bind { addr: config.addr, source })?;
        let metrics = match config.metrics_addr {
            Some(addr) => {
                Some(platform::metrics::bind(addr).await.map_err(|source| GatewayError::Bind { addr, source })?)
            }
            None => None,
        };
        Ok(Self {
            listener,
            metrics,
            upstreams,
            grace: config.shutdown_grace,
            edge,
            connections: config.connections,
            stalled_watch: config.stalled_watch,
            web,
            release_freed_memory: config.release_freed_memory,
        })
    }

    /// The port the gateway listens on.
    pub fn port(&self) -> u16 {
        self.listener.local_addr().map(|a| a.port()).unwrap_or_default()
    }

    /// Serves until `stop` resolves, then drains within the grace period.
    ///
    /// # Errors
    /// When the gRPC server fails.
    pub async fn run_until_stopped(self, stop: impl Future<Output = ()> + Send) -> Result<(), GatewayError> {
        let Self { listener, metrics, upstreams, grace, edge, connections, stalled_watch, web, release_freed_memory } =
            self;
        let (reporter, health_service) = tonic_health::server::health_reporter();
        let services: Vec<&str> = upstreams.iter().flat_map(Upstream::services).collect();
        let mut routes = RoutesBuilder::default();
        routes.add_service(health_service);
        add_reflection(&mut routes, &services);
        let router =
            routes.routes().into_axum_router().fallback_service(proxy::Proxy::new(upstreams.clone(), stalled_watch));

        let watcher = tokio::spawn(watch_upstreams(reporter.clone(), upstreams));
        // An attack's connections and streams, once gone, must not leave the
        // gateway at its peak size for the rest of its life.
        let memory = release_freed_memory.then(|| tokio::spawn(platform::memory::release_freed_memory()));
        let metrics_stop = platform::CancellationToken::new();
        if let Some(listener) = metrics {
            tokio::spawn(platform::metrics::serve(listener, metrics_stop.clone()));
        }
        let _metrics_stop = metrics_stop.drop_guard();
        let drained = platform::CancellationToken::new();
        let stop_serving = {
            let drained = drained.clone();
            async move {
                stop.await;
                tracing::info!("gateway draining");
                watcher.abort();
                reporter.set_service_status("", ServingStatus::NotServing).await;
                drained.cancel();
            }
        };
        tracing::info!(addr = ?listener.local_addr().ok(), page = web.serves_page(), "gateway serving");
        let peers = edge.peers.clone();
        // Before routing: health and reflection are served by the gateway
        // itself and must be rate limited too. Browsers' gRPC-Web calls are
        // translated in front of it, so the same policy applies to them.
        let service = Front::new(EdgeLayer::new(edge).layer(Routes::from(router)), web);
        let server = connections::serve(listener, service, connections, peers, stop_serving);
        tokio::select! {
            () = server => {}
            () = async { drained.cancelled().await; tokio::time::sleep(grace).await } => {
                tracing::warn!("calls in flight outlived the grace period");
            }
        }
        if let Some(memory) = memory {
            memory.abort();
        }
        tracing::info!("gateway stopped");
        Ok(())
    }
}

/// Keeps each upstream's balance to the replicas that answer, and mirrors
/// that into the gateway's health entry for the service: SERVING while at
/// least one replica is.
async fn watch_upstreams(reporter: HealthReporter, upstreams: Vec<Upstream>) {
    loop {
        let rounds = upstreams.iter().map(|upstream| async {
            let serving = upstream.replicas.refresh(std::time::Instant::now()).await;
            let status = if serving > 0 { ServingStatus::Serving } else { ServingStatus::NotServing };
            for service in upstream.services() {
                reporter.set_service_status(service, status).await;
            }
        });
        futures::future::join_all(rounds).await;
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn by_default_every_service_of_the_catalogue_is_routed_to_its_local_port() {
        let config = GatewayConfig::local();
        assert_eq!(config.addr.port(), catalogue::GATEWAY.port);
        let mut routed: Vec<&str> = Vec::new();
        for (service, _) in &config.upstreams {
            routed.push(service);
            routed.extend(hosted_by(service));
        }
        assert_eq!(routed, api::SERVICE_NAMES);
        assert!(config.upstreams.contains(&("game.gift.v1.GiftService", "http://127.0.0.1:50054".to_owned())));
    }

    #[tokio::test]
    async fn packages_map_to_path_prefixes() {
        let upstream = Upstream::new("game.mission.v1.MissionService", "http://127.0.0.1:1").unwrap();
        assert_eq!(upstream.path_prefix, "/game.mission.v1.");
    }

    #[tokio::test]
    async fn a_hosted_service_is_routed_to_its_hosts_replicas() {
        let upstream = Upstream::new("game.mission.v1.MissionService", "http://127.0.0.1:1")
            .unwrap()
            .hosting("game.programme.v1.ProgrammeService");
        assert!(upstream.routes("/game.mission.v1.MissionService/AchieveMission"));
        assert!(upstream.routes("/game.programme.v1.ProgrammeService/ScheduleEvent"));
        assert!(!upstream.routes("/game.wallet.v1.WalletService/GetWallet"));
        assert_eq!(
            upstream.services().collect::<Vec<_>>(),
            ["game.mission.v1.MissionService", "game.programme.v1.ProgrammeService"]
        );
    }
}
