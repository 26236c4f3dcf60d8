//! Process metrics, scraped by Prometheus from `GET /metrics` on
//! `METRICS_ADDR` (OpenMetrics text). Names follow the OpenTelemetry and
//! Prometheus conventions: a `rewards_` prefix for this system's own
//! figures, base units in the name (`_seconds`, `_messages`), `_total` on
//! counters.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Mutex, OnceLock};

use http_body_util::Full;
use hyper::body::Bytes;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// Labels naming one durable consumer.
pub type ConsumerLabels = [(&'static str, String); 1];
/// Labels of a consumer's outcome: consumer, outcome.
pub type OutcomeLabels = [(&'static str, String); 2];
/// Labels of a gRPC call: service, method, status code.
pub type RpcLabels = [(&'static str, String); 3];
/// One free-form label.
pub type OneLabel = [(&'static str, String); 1];

/// Every metric of this process.
#[derive(Debug)]
pub struct Metrics {
    /// Events the durable consumer has not delivered yet (JetStream's num_pending).
    pub consumer_lag: Family<ConsumerLabels, Gauge>,
    /// Deliveries beyond the first (a crash, a nak, an ack that came too late).
    pub consumer_redeliveries: Family<ConsumerLabels, Counter>,
    /// Deliveries by outcome: applied, duplicate, retried, dead_lettered.
    pub consumer_events: Family<OutcomeLabels, Counter>,
    /// Events moved to the dead-letter stream.
    pub dead_letters: Family<ConsumerLabels, Counter>,
    /// Staged events not yet acknowledged by JetStream.
    pub outbox_backlog: Gauge,
    /// Age of the oldest unpublished outbox event, in seconds.
    pub outbox_oldest_age: Gauge<f64, std::sync::atomic::AtomicU64>,
    /// Outbox events published (and acknowledged).
    pub outbox_published: Counter,
    /// gRPC server calls by service, method and status code, with duration.
    pub rpc_server_duration: Family<RpcLabels, Histogram>,
    /// Missions achieved (first calls only, not idempotent replays).
    pub missions_achieved: Counter,
    /// Exchanges by result: exchanged, refused, busy, unsettled, ….
    pub exchanges: Family<OneLabel, Counter>,
    /// Circuit breaker state per dependency: 0 closed, 1 half-open, 2 open.
    pub circuit_breaker_state: Family<OneLabel, Gauge>,
    /// Calls the edge gateway refused before routing them, by reason:
    /// unauthenticated, permission_denied, rate_limited, too_large, malformed, …
    pub edge_refusals: Family<OneLabel, Counter>,
    /// 1 while the service's store refuses connections, else 0.
    pub store_unavailable: Gauge,
    registry: Mutex<Registry>,
}

fn rpc_histogram() -> Histogram {
    // 0.5 ms .. ~4 s: local calls are sub-millisecond, the gift deadline is seconds.
    Histogram::new(exponential_buckets(0.0005, 2.0, 14))
}

impl Metrics {
    fn new() -> Self {
        let metrics = Self {
            consumer_lag: Family::default(),
            consumer_redeliveries: Family::default(),
            consumer_events: Family::default(),
            dead_letters: Family::default(),
            outbox_backlog: Gauge::default(),
            outbox_oldest_age: Gauge::default(),
            outbox_published: Counter::default(),
            rpc_server_duration: Family::new_with_constructor(rpc_histogram),
            missions_achieved: Counter::default(),
            exchanges: Family::default(),
            circuit_breaker_state: Family::default(),
            edge_refusals: Family::default(),
            store_unavailable: Gauge::default(),
            registry: Mutex::new(Registry::default()),
        };
        {
            let mut registry = metrics.registry.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            let r = &mut *registry;
            r.register(
                "rewards_consumer_lag_messages",
                "Events the durable consumer has not delivered yet",
                metrics.consumer_lag.clone(),
            );
            r.register(
                "rewards_consumer_redeliveries",
                "Deliveries beyond the first",
                metrics.consumer_redeliveries.clone(),
            );
            r.register("rewards_consumer_events", "Deliveries by outcome", metrics.consumer_events.clone());
            r.register("rewards_dead_letters", "Events moved to the dead-letter stream", metrics.dead_letters.clone());
            r.register(
                "rewards_outbox_backlog_messages",
                "Staged events not yet published",
                metrics.outbox_backlog.clone(),
            );
            r.register(
                "rewards_outbox_oldest_age_seconds",
                "Age of the oldest unpublished event",
                metrics.outbox_oldest_age.clone(),
            );
            r.register("rewards_outbox_published", "Outbox events published", metrics.outbox_published.clone());
            r.register("rpc_server_duration_seconds", "gRPC server call duration", metrics.rpc_server_duration.clone());
            r.register("rewards_missions_achieved", "Missions achieved", metrics.missions_achieved.clone());
            r.register("rewards_exchanges", "Reward exchanges by result", metrics.exchanges.clone());
            r.register(
                "rewards_circuit_breaker_state",
                "0 closed, 1 half-open, 2 open",
                metrics.circuit_breaker_state.clone(),
            );
            r.register(
                "rewards_edge_refusals",
                "Calls the edge gateway refused before routing, by reason",
                metrics.edge_refusals.clone(),
            );
            r.register(
                "rewards_store_unavailable",
                "1 while the service's store refuses connections",
                metrics.store_unavailable.clone(),
            );
        }
        metrics
    }

    /// The metrics in OpenMetrics text format.
    pub fn encode(&self) -> String {
        let registry = self.registry.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut text = String::new();
        if let Err(error) = encode(&mut text, &registry) {
            tracing::warn!(%error, "metrics could not be encoded");
        }
        text
    }
}

/// This process's metrics.
pub fn metrics() -> &'static Metrics {
    static METRICS: OnceLock<Metrics> = OnceLock::new();
    METRICS.get_or_init(Metrics::new)
}

/// The label set of one consumer.
pub fn consumer(name: &str) -> ConsumerLabels {
    [("consumer", name.to_owned())]
}

/// Creates a durable consumer's series at zero when it starts consuming, so
/// that they exist before its first redelivery or dead letter: a counter
/// born at 1 shows no `increase()` (the first dead letter would never fire
/// the RewardsDeadLetters alert), and dashboards show 0 rather than "no data".
pub fn consumer_started(name: &str) {
    let metrics = metrics();
    let labels = consumer(name);
    drop(metrics.consumer_redeliveries.get_or_create(&labels));
    drop(metrics.dead_letters.get_or_create(&labels));
    drop(metrics.consumer_lag.get_or_create(&labels));
}

/// Records whether the service's store takes connections.
pub fn store_available(available: bool) {
    metrics().store_unavailable.set(i64::from(!available));
}

/// Serves `GET /metrics` on `listener` until `stopping` is cancelled.
pub async fn serve(listener: TcpListener, stopping: CancellationToken) {
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            () = stopping.cancelled() => return,
        };
        let Ok((stream, _)) = accepted else { continue };
        tokio::spawn(async move {
            let service = service_fn(|request: Request<hyper::body::Incoming>| async move {
                let response = if request.uri().path() == "/metrics" {
                    Response::builder()
                        .header("content-type", "application/openmetrics-text; version=1.0.0; charset=utf-8")
                        .body(Full::new(Bytes::from(metrics().encode())))
                } else {
                    Response::builder()
                        .status(StatusCode::NOT_FOUND)
                        .body(Full::new(Bytes::from_static(b"not found\n")))
                };
                Ok::<_, Infallible>(response.unwrap_or_default())
            });
            let _ = hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(stream), service).await;
        });
    }
}

/// Binds the metrics listener.
///
/// # Errors
/// When the address is taken.
pub async fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    TcpListener::bind(addr).await
}
