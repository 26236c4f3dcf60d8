//! Logs and traces.
//!
//! Logs are structured: readable text locally, one JSON object per line when
//! `LOG_FORMAT=json` (production). `RUST_LOG` filters: `info` by default,
//! async-nats's own chatter at `warn` (the platform logs connection changes).
//!
//! Traces are OpenTelemetry, exported over OTLP/gRPC when the standard
//! variables ask for it (`OTEL_EXPORTER_OTLP_ENDPOINT` or
//! `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`, unless `OTEL_TRACES_EXPORTER=none`;
//! `OTEL_SERVICE_NAME` overrides the service name); otherwise nothing is
//! exported and nothing is paid. Trace context travels as W3C `traceparent`
//! in gRPC metadata and in NATS headers — stored with the outbox row, so the
//! relay and every consumer continue the trace of the call that caused it.

use std::collections::HashMap;
use std::convert::Infallible;
use std::task::{Context, Poll};
use std::time::Instant;

use futures::future::BoxFuture;
use http::{Request, Response};
use opentelemetry::propagation::{Extractor, Injector};
use opentelemetry::trace::{TraceContextExt as _, TracerProvider as _};
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tonic::body::Body;
use tower::{Layer, Service};
use tracing::Instrument as _;
use tracing_opentelemetry::OpenTelemetrySpanExt as _;
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;
use tracing_subscriber::{EnvFilter, Layer as _};

use crate::metrics::metrics;

/// Keeps the trace exporter alive; [`Telemetry::shutdown`] flushes it.
#[derive(Debug)]
pub struct Telemetry {
    provider: Option<SdkTracerProvider>,
}

impl Telemetry {
    /// Flushes and stops the trace exporter, off the async workers (the
    /// batch processor blocks), so the last spans are not lost.
    pub async fn shutdown(self) {
        if let Some(provider) = self.provider {
            let _ = tokio::task::spawn_blocking(move || provider.shutdown()).await;
        }
    }
}

fn exporting_traces() -> bool {
    let set = |name: &str| std::env::var(name).is_ok_and(|v| !v.trim().is_empty());
    let disabled = std::env::var("OTEL_TRACES_EXPORTER").is_ok_and(|v| v.trim().eq_ignore_ascii_case("none"));
    !disabled && (set("OTEL_EXPORTER_OTLP_ENDPOINT") || set("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"))
}

/// The filter directive that keeps h2's per-connection warnings out of the log.
const H2_ERRORS_ONLY: &str = "h2=error";

/// Installs logging, and tracing when asked for. Call once, first thing in
/// `main`, inside the runtime (the exporter needs it).
pub fn init(service: &'static str) -> Telemetry {
    install_propagator();
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info,async_nats=warn"));
    // h2 warns once per connection it closes for an abuse (too many resets,
    // say): an attacker with many connections would write the log. The
    // gateway reports those itself, rate-limited; `RUST_LOG=h2=…` still wins.
    let filter = if std::env::var("RUST_LOG").is_ok_and(|value| value.contains("h2")) {
        filter
    } else {
        filter.add_directive(H2_ERRORS_ONLY.parse().unwrap_or_default())
    };
    let json = std::env::var("LOG_FORMAT").is_ok_and(|f| f.eq_ignore_ascii_case("json"));
    let fmt = if json {
        tracing_subscriber::fmt::layer().json().flatten_event(true).with_current_span(true).with_target(false).boxed()
    } else {
        tracing_subscriber::fmt::layer().with_target(false).boxed()
    };
    let mut failure = None;
    let provider = if exporting_traces() {
        match opentelemetry_otlp::SpanExporter::builder().with_tonic().build() {
            Ok(exporter) => {
                let name = std::env::var("OTEL_SERVICE_NAME").unwrap_or_else(|_| service.to_owned());
                let resource = opentelemetry_sdk::Resource::builder().with_service_name(name).build();
                Some(SdkTracerProvider::builder().with_batch_exporter(exporter).with_resource(resource).build())
            }
            Err(error) => {
                failure = Some(error.to_string());
                None
            }
        }
    } else {
        None
    };
    let otel = provider.as_ref().map(|p| tracing_opentelemetry::layer().with_tracer(p.tracer(service)));
    let installed = tracing_subscriber::registry().with(filter).with(fmt).with(otel).try_init();
    if installed.is_ok() {
        tracing::info!(service, traces = provider.is_some(), "telemetry initialised");
        if let Some(error) = failure {
            tracing::error!(%error, "OTLP trace exporter unavailable; traces are not exported");
        }
    }
    Telemetry { provider }
}

/// Makes `traceparent` the propagation format (the default is a no-op).
pub fn install_propagator() {
    opentelemetry::global::set_text_map_propagator(TraceContextPropagator::new());
}

struct MapInjector<'a>(&'a mut HashMap<String, String>);

impl Injector for MapInjector<'_> {
    fn set(&mut self, key: &str, value: String) {
        self.0.insert(key.to_owned(), value);
    }
}

/// The current span's trace context as headers (`traceparent`, maybe
/// `tracestate`); empty when no trace is being recorded.
pub fn current_trace_headers() -> HashMap<String, String> {
    let mut headers = HashMap::new();
    let context = tracing::Span::current().context();
    if context.span().span_context().is_valid() {
        opentelemetry::global::get_text_map_propagator(|p| p.inject_context(&context, &mut MapInjector(&mut headers)));
    }
    headers
}

struct OwnedExtractor(HashMap<&'static str, String>);

impl Extractor for OwnedExtractor {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).map(String::as_str)
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().copied().collect()
    }
}

/// Makes `span` continue the trace whose context `header` finds
/// (`traceparent`, `tracestate`), and records its trace id for the logs.
pub fn continue_trace(span: &tracing::Span, header: impl Fn(&str) -> Option<String>) {
    let mut found = HashMap::new();
    for key in ["traceparent", "tracestate"] {
        if let Some(value) = header(key) {
            found.insert(key, value);
        }
    }
    if !found.is_empty() {
        let carrier = OwnedExtractor(found);
        let parent = opentelemetry::global::get_text_map_propagator(|p| p.extract(&carrier));
        if parent.span().span_context().is_valid() {
            let _ = span.set_parent(parent);
        }
    }
    let trace_id = span.context().span().span_context().trace_id();
    if trace_id != opentelemetry::trace::TraceId::INVALID {
        span.record("trace_id", tracing::field::display(trace_id));
    }
}

/// Serves every gRPC call inside a span that continues the caller's trace,
/// and measures it in `rpc_server_duration_seconds`.
#[derive(Debug, Clone, Copy, Default)]
pub struct GrpcServerLayer;

impl<S> Layer<S> for GrpcServerLayer {
    type Service = GrpcServerTelemetry<S>;

    fn layer(&self, inner: S) -> Self::Service {
        GrpcServerTelemetry { inner }
    }
}

/// See [`GrpcServerLayer`].
#[derive(Debug, Clone)]
pub struct GrpcServerTelemetry<S> {
    inner: S,
}

impl<S, B> Service<Request<B>> for GrpcServerTelemetry<S>
where
    S: Service<Request<B>, Response = Response<Body>, Error = Infallible> + Clone + Send + 'static,
    S::Future: Send,
    B: Send + 'static,
{
    type Response = Response<Body>;
    type Error = Infallible;
    type Future = BoxFuture<'static, Result<Response<Body>, Infallible>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        let path = request.uri().path().to_owned();
        let (service, method) = path.trim_start_matches('/').split_once('/').unwrap_or((path.as_str(), ""));
        let (service, method) = (service.to_owned(), method.to_owned());
        // Health probes and reflection are not the system's work.
        let traced = !service.starts_with("grpc.");
        let span = if traced {
            let span = tracing::info_span!(
                "grpc.server",
                otel.name = %path,
                otel.kind = "server",
                rpc.system = "grpc",
                rpc.service = %service,
                rpc.method = %method,
                trace_id = tracing::field::Empty,
            );
            let headers = request.headers();
            continue_trace(&span, |key| headers.get(key).and_then(|v| v.to_str().ok()).map(str::to_owned));
            span
        } else {
            tracing::Span::none()
        };
        let inner = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, inner);
        let started = Instant::now();
        Box::pin(
            async move {
                let response = inner.call(request).await?;
                if traced {
                    // Errors are trailers-only responses: the status is a header.
                    // An OK status comes in the trailers, after this point.
                    let code =
                        response.headers().get("grpc-status").and_then(|v| v.to_str().ok()).unwrap_or("0").to_owned();
                    metrics()
                        .rpc_server_duration
                        .get_or_create(&[
                            ("rpc_service", service),
                            ("rpc_method", method),
                            ("rpc_grpc_status_code", code),
                        ])
                        .observe(started.elapsed().as_secs_f64());
                }
                Ok(response)
            }
            .instrument(span),
        )
    }
}

/// Puts the current trace context on outgoing gRPC calls.
#[derive(Debug, Clone, Copy, Default)]
pub struct PropagateTraceLayer;

impl<S> Layer<S> for PropagateTraceLayer {
    type Service = PropagateTrace<S>;

    fn layer(&self, inner: S) -> Self::Service {
        PropagateTrace { inner }
    }
}

/// See [`PropagateTraceLayer`].
#[derive(Debug, Clone)]
pub struct PropagateTrace<S> {
    inner: S,
}

impl<S, B> Service<Request<B>> for PropagateTrace<S>
where
    S: Service<Request<B>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<B>) -> Self::Future {
        for (key, value) in current_trace_headers() {
            if let (Ok(name), Ok(value)) =
                (http::HeaderName::from_bytes(key.as_bytes()), http::HeaderValue::from_str(&value))
            {
                request.headers_mut().insert(name, value);
            }
        }
        self.inner.call(request)
    }
}
