//! The routing proxy: a gRPC call is forwarded, headers, body, trailers and
//! deadline untouched, to a replica of the service that owns its package.
//! Streams pass through as they come.
//!
//! A watch (`WatchMyPage`) is read from the service as fast as it sends and
//! coalesced to the latest page for its client ([`crate::snapshots`]); a
//! client that leaves a page untaken too long has its connection closed.
//!
//! A call is retried once, on another replica, only when it provably never
//! reached the first one: the transport says so (a refused connection, a
//! call cancelled unsent when its connection closed, a stream the draining
//! replica refused) and the request body was never read. A call the
//! upstream may have seen is never sent twice.

use std::convert::Infallible;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::body::{Bytes, HttpBody};
use futures::future::BoxFuture;
use http::{Request, Response};
use http_body::{Frame, SizeHint};
use tonic::Status;
use tonic::body::Body;
use tower::Service;

use crate::connections::Connection;
use crate::edge::WATCHES;
use crate::link::ForwardError;
use crate::log_budget::LogBudget;
use crate::upstream::Upstream;

/// Forwards each call to its upstream by gRPC package.
#[derive(Debug, Clone)]
pub struct Proxy {
    upstreams: Arc<[Upstream]>,
    /// A watcher that leaves a page untaken this long is closed.
    stalled_watch: Duration,
    log: Arc<LogBudget>,
}

impl Proxy {
    /// A proxy over `upstreams`, closing watchers stalled for `stalled_watch`.
    pub fn new(upstreams: Vec<Upstream>, stalled_watch: Duration) -> Self {
        Self { upstreams: upstreams.into(), stalled_watch, log: Arc::new(LogBudget::new(Duration::from_secs(10))) }
    }

    fn route(&self, path: &str) -> Option<&Upstream> {
        self.upstreams.iter().find(|upstream| upstream.routes(path))
    }
}

impl Service<Request<axum::body::Body>> for Proxy {
    type Response = Response<Body>;
    type Error = Infallible;
    type Future = BoxFuture<'static, Result<Response<Body>, Infallible>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        // Calls wait on their replica's connection (its stream limit and
        // flow control); the proxy itself is always ready.
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<axum::body::Body>) -> Self::Future {
        let path = request.uri().path().to_owned();
        let Some(upstream) = self.route(&path) else {
            let status = Status::unimplemented(format!("no service behind the gateway serves {path}"));
            return Box::pin(async move { Ok(status.into_http()) });
        };
        let upstream = upstream.clone();
        if !WATCHES.contains(&path.as_str()) {
            return Box::pin(async move { Ok(forward(&upstream, &path, request).await) });
        }
        let connection = request.extensions().get::<Arc<Connection>>().cloned();
        let (stall, log) = (self.stalled_watch, self.log.clone());
        Box::pin(async move {
            let response = forward(&upstream, &path, request).await;
            Ok(crate::snapshots::coalesce(response, stall, move || {
                if let Some(suppressed) = log.allow("stalled watch") {
                    let peer = connection.as_ref().map(|c| c.peer.to_string()).unwrap_or_default();
                    tracing::warn!(
                        %peer,
                        stalled_ms = stall.as_millis(),
                        suppressed,
                        "a watcher took no page for too long: its connection is closed"
                    );
                }
                platform::metrics::metrics()
                    .edge_refusals
                    .get_or_create(&[("reason", "stalled_watch".to_owned())])
                    .inc();
                if let Some(connection) = connection {
                    connection.close("a watch stalled");
                }
            }))
        })
    }
}

async fn forward(upstream: &Upstream, path: &str, request: Request<axum::body::Body>) -> Response<Body> {
    let service = upstream.service;
    let (parts, body) = request.into_parts();
    let unsent = UnsentBody::new(Body::new(body));
    let mut first = Request::new(Body::new(SlotBody::from(unsent.clone())));
    *first.method_mut() = parts.method.clone();
    *first.uri_mut() = parts.uri.clone();
    *first.version_mut() = parts.version;
    // The link sends the method, URI and headers; extensions stay here.
    *first.headers_mut() = parts.headers.clone();

    let sent_at = Instant::now();
    let error = match upstream.replicas.send(first).await {
        Ok(response) => return response,
        Err(error) => error,
    };
    let error = match retry_target(upstream, &error, &unsent, sent_at).await {
        Some(body) => {
            tracing::info!(service, %path, error = %chain(&error), "the call never reached its replica; retrying once on another");
            match upstream.replicas.send(Request::from_parts(parts, body)).await {
                Ok(response) => return response,
                Err(error) => error,
            }
        }
        None => error,
    };
    tracing::warn!(service, %path, error = %chain(&error), "upstream unreachable");
    Status::unavailable(format!("{service} is unavailable; try again later")).into_http()
}

/// The body to send again when the failed call never reached its replica
/// and another replica serves; `None` when the call must not be retried.
async fn retry_target(
    upstream: &Upstream,
    error: &ForwardError,
    unsent: &UnsentBody,
    sent_at: Instant,
) -> Option<Body> {
    if upstream.replicas.len() < 2 || !error.never_reached() {
        return None;
    }
    // The balance still holds the dead replica until a health round sees it
    // gone: run one now (it is instant for a refused connection), so the
    // retry goes to another replica.
    if upstream.replicas.refresh(sent_at).await == 0 {
        return None;
    }
    // The body is the proof: had any of it been read, the request was on
    // its way, and it stays a failure.
    unsent.take()
}

/// The error with its causes, `transport error: tcp connect error: …`.
fn chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// A request body handed over only when the upstream first reads it: until
/// then the gateway can take it back and send it elsewhere.
#[derive(Debug, Clone)]
struct UnsentBody {
    slot: Arc<Mutex<Option<Body>>>,
}

impl UnsentBody {
    fn new(body: Body) -> Self {
        Self { slot: Arc::new(Mutex::new(Some(body))) }
    }

    /// The body, if nothing of it was read.
    fn take(&self) -> Option<Body> {
        self.slot.lock().unwrap_or_else(PoisonError::into_inner).take()
    }
}

/// What the upstream reads: the body, taken out of its slot at the first read.
#[derive(Debug)]
struct SlotBody {
    slot: Arc<Mutex<Option<Body>>>,
    body: Option<Body>,
}

impl From<UnsentBody> for SlotBody {
    fn from(unsent: UnsentBody) -> Self {
        Self { slot: unsent.slot, body: None }
    }
}

impl HttpBody for SlotBody {
    type Data = Bytes;
    type Error = Status;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Status>>> {
        let this = &mut *self;
        if this.body.is_none() {
            this.body = this.slot.lock().unwrap_or_else(PoisonError::into_inner).take();
        }
        // Taken back for a retry: this copy of the call is abandoned.
        let Some(body) = this.body.as_mut() else { return Poll::Ready(None) };
        loop {
            match Pin::new(&mut *body).poll_frame(cx) {
                // An empty DATA frame carries nothing, and an upstream counts
                // them on the connection every call shares: h2 answers the
                // 101st with GOAWAY ENHANCE_YOUR_CALM, failing every call in flight.
                Poll::Ready(Some(Ok(frame))) if frame.data_ref().is_some_and(Bytes::is_empty) => {}
                other => return other,
            }
        }
    }

    /// Lets the last DATA frame carry END_STREAM, instead of an empty frame after it.
    fn is_end_stream(&self) -> bool {
        match &self.body {
            Some(body) => body.is_end_stream(),
            None => self.slot.lock().unwrap_or_else(PoisonError::into_inner).as_ref().is_none_or(Body::is_end_stream),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.body {
            Some(body) => body.size_hint(),
            None => self
                .slot
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .as_ref()
                .map(Body::size_hint)
                .unwrap_or_default(),
        }
    }
}
