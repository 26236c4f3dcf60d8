//! The gateway's HTTP server: how connections are accepted, what each one
//! may do, and when it is closed. gRPC arrives over HTTP/2; browsers (the
//! page and its gRPC-Web calls, see [`crate::web`]) use HTTP/1.1 on the same
//! port, told apart by the HTTP/2 preface.
//!
//! - **Caps** ([`Peers`]): a connection over the total or per-peer cap, or
//!   from a peer that is cut off, is refused as it is accepted, with an HTTP/2
//!   GOAWAY (ENHANCE_YOUR_CALM) whose debug data says why, and closed.
//! - **Limits advertised are the limits enforced**: `MAX_CONCURRENT_STREAMS`
//!   (a stream beyond it is refused by HTTP/2 itself) and the header-list
//!   size (a larger header block is refused by HTTP/2 itself, before any
//!   routing: the gateway never forwards what a service would refuse).
//! - **Idle connections close**: one with no open stream for the idle timeout
//!   gets a GOAWAY and closes; keep-alive PINGs detect dead peers.
//! - **Resets**: a stream the client resets before its answer (HTTP/2 rapid
//!   reset) draws on the connection's budget; a connection that overdraws it
//!   is closed and its peer cut off. A stream reset at or after the deadline
//!   the client gave it (`grpc-timeout`) is the client's own deadline, not an
//!   attack, and costs nothing. Streams reset before the gateway even took
//!   them are bounded by HTTP/2 itself, at a level no client that respects
//!   `MAX_CONCURRENT_STREAMS` can reach.
//! - **Cut off on request** ([`Connection::close`]): the edge closes a
//!   connection whose peer overdrew its refusals, the proxy one holding a
//!   stalled watch.
//! - **Drain**: when the gateway stops, every connection gets a GOAWAY and
//!   the calls in flight finish.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Request, Response};
use http_body::{Body as HttpBody, Frame, SizeHint};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use platform::CancellationToken;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};
use tonic::Status;
use tonic::body::Body;
use tower::Service;

use crate::log_budget::LogBudget;
use crate::peers::{Peers, Refusal};
use crate::rate_limit::{RateLimit, RateLimiter};

/// What each connection may do.
#[derive(Debug, Clone, PartialEq)]
pub struct ConnectionLimits {
    /// Streams open at once on one connection (`GATEWAY_MAX_CONCURRENT_STREAMS`).
    pub max_concurrent_streams: u32,
    /// The largest header list accepted, and advertised.
    pub max_header_list_bytes: u32,
    /// A connection with no open stream for this long is closed (`GATEWAY_IDLE_TIMEOUT_MS`).
    pub idle_timeout: Duration,
    /// Streams a client may reset before their answer (`GATEWAY_RESETS_PER_SECOND`, `_BURST`).
    pub early_resets: RateLimit,
    /// How long a closing connection's calls may take to finish.
    pub close_grace: Duration,
}

impl ConnectionLimits {
    /// The defaults.
    pub const DEFAULT: Self = Self {
        // As many calls at once as a game client ever needs, few enough that
        // one connection cannot hold a large share of the gateway.
        max_concurrent_streams: 100,
        max_header_list_bytes: platform::grpc::MAX_HEADER_LIST_BYTES,
        idle_timeout: Duration::from_secs(30),
        // A player cancels a few calls a second at most (a screen left);
        // a rapid-reset attack cancels thousands.
        early_resets: RateLimit { per_second: 50.0, burst: 200 },
        close_grace: Duration::from_secs(1),
    };
}

/// One accepted connection, as the calls on it see it (a request extension).
#[derive(Debug)]
pub struct Connection {
    /// Where it comes from.
    pub peer: SocketAddr,
    opened: Instant,
    /// Streams open now.
    streams: AtomicUsize,
    /// When the last stream ended, in milliseconds since `opened`.
    last_active_ms: AtomicU64,
    /// Cancelled to close the connection (GOAWAY, then closed after a grace).
    closing: CancellationToken,
    early_resets: RateLimiter,
}

impl Connection {
    fn new(peer: SocketAddr, early_resets: RateLimit) -> Self {
        Self {
            peer,
            opened: Instant::now(),
            streams: AtomicUsize::new(0),
            last_active_ms: AtomicU64::new(0),
            closing: CancellationToken::new(),
            early_resets: RateLimiter::new(early_resets),
        }
    }

    /// Closes the connection: GOAWAY, then closed once its calls finished or
    /// a short grace passed. `why` is logged at debug level (the caller
    /// reports it, rate-limited).
    pub fn close(&self, why: &str) {
        if !self.closing.is_cancelled() {
            tracing::debug!(peer = %self.peer, why, "closing a connection");
            self.closing.cancel();
        }
    }

    /// Whether the connection is being closed.
    pub fn is_closing(&self) -> bool {
        self.closing.is_cancelled()
    }

    fn stream_opened(&self) {
        self.streams.fetch_add(1, Ordering::Relaxed);
    }

    fn stream_closed(&self) {
        self.touch();
        self.streams.fetch_sub(1, Ordering::Relaxed);
    }

    fn touch(&self) {
        let now = u64::try_from(self.opened.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.last_active_ms.store(now, Ordering::Relaxed);
    }

    /// How long it has had no open stream; zero while one is open.
    fn idle_for(&self) -> Duration {
        if self.streams.load(Ordering::Relaxed) > 0 {
            return Duration::ZERO;
        }
        let last = Duration::from_millis(self.last_active_ms.load(Ordering::Relaxed));
        self.opened.elapsed().saturating_sub(last)
    }

    /// A stream the client reset before its answer: `true` when that
    /// overdrew the connection's budget.
    fn early_reset(&self) -> bool {
        self.early_resets.take("resets", Instant::now()).is_err()
    }
}

/// Serves `service` on `listener` until `stop` resolves, then drains: every
/// connection gets a GOAWAY and its calls finish.
pub async fn serve<S>(
    listener: TcpListener,
    service: S,
    limits: ConnectionLimits,
    peers: Arc<Peers>,
    stop: impl Future<Output = ()>,
) where
    S: Service<Request<Body>, Response = Response<Body>, Error = Infallible> + Clone + Send + 'static,
    S::Future: Send + 'static,
{
    let mut builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_concurrent_streams(limits.max_concurrent_streams)
        .max_header_list_size(limits.max_header_list_bytes)
        // Streams the client resets before the gateway takes them: no client
        // that respects MAX_CONCURRENT_STREAMS holds more than that many
        // (h2's default of 20 closed players' connections whose calls timed
        // out while the gateway was busy).
        .max_pending_accept_reset_streams(usize::try_from(limits.max_concurrent_streams).unwrap_or(usize::MAX) * 2)
        // Detects dead peers: a half-open connection holds its slot otherwise.
        .keep_alive_interval(Duration::from_secs(20))
        .keep_alive_timeout(Duration::from_secs(10));
    // HTTP/1.1 is for browsers (gRPC-Web and the page), which never speak
    // cleartext HTTP/2: the same header budget, and a request head that
    // must arrive promptly.
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.idle_timeout)
        .max_buf_size(usize::try_from(limits.max_header_list_bytes).unwrap_or(usize::MAX).max(8 * 1024));
    let draining = CancellationToken::new();
    // Each connection's task holds a sender: when every one is dropped, the
    // last connection has ended.
    let (alive, mut all_ended) = tokio::sync::mpsc::channel::<()>(1);
    let refusals = Arc::new(LogBudget::new(Duration::from_secs(10)));
    let mut stop = std::pin::pin!(stop);
    loop {
        let accepted = tokio::select! {
            () = &mut stop => break,
            accepted = listener.accept() => accepted,
        };
        let (tcp, peer) = match accepted {
            Ok(accepted) => accepted,
            Err(error) => {
                // Out of descriptors, most likely: wait rather than spin.
                if let Some(suppressed) = refusals.allow("accept failed") {
                    tracing::warn!(%error, suppressed, "cannot accept a connection");
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let _ = tcp.set_nodelay(true);
        let place = match peers.admit(peer.ip(), Instant::now()) {
            Ok(place) => place,
            Err(refusal) => {
                refuse(tcp, &refusal, &refusals);
                continue;
            }
        };
        let connection = Arc::new(Connection::new(peer, limits.early_resets));
        let service = Tracked {
            inner: service.clone(),
            connection: connection.clone(),
            peers: peers.clone(),
            log: refusals.clone(),
        };
        let served = builder.serve_connection(TokioIo::new(tcp), TowerToHyperService::new(service)).into_owned();
        let (limits, draining, alive) = (limits.clone(), draining.clone(), alive.clone());
        tokio::spawn(async move {
            let mut served = std::pin::pin!(served);
            let mut idle_check = tokio::time::interval((limits.idle_timeout / 4).max(Duration::from_millis(100)));
            idle_check.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            let grace = loop {
                tokio::select! {
                    ended = served.as_mut() => {
                        if let Err(error) = ended {
                            tracing::trace!(%peer, %error, "connection ended");
                        }
                        break None;
                    }
                    _ = idle_check.tick() => {
                        if connection.idle_for() >= limits.idle_timeout {
                            break Some(limits.close_grace);
                        }
                    }
                    () = connection.closing.cancelled() => break Some(limits.close_grace),
                    // The calls in flight may take the gateway's whole grace period.
                    () = draining.cancelled() => break Some(Duration::MAX),
                }
            };
            if let Some(grace) = grace {
                // GOAWAY: no new stream; the connection ends once its streams have.
                served.as_mut().graceful_shutdown();
                let _ = tokio::time::timeout(grace, served).await;
            }
            drop((place, alive));
        });
    }
    drop(listener);
    draining.cancel();
    drop(alive);
    let _ = all_ended.recv().await;
}

/// The HTTP/2 error code of a refusal for abuse (RFC 9113 §7).
const ENHANCE_YOUR_CALM: u32 = 0xb;

/// Refuses a connection: the server preface (an empty SETTINGS), then a
/// GOAWAY whose debug data says why, then the connection is closed. Costs
/// one small write; the client's gRPC library shows the reason.
fn refuse(mut tcp: TcpStream, refusal: &Refusal, log: &LogBudget) {
    let reason = refusal.to_string();
    platform::metrics::metrics().edge_refusals.get_or_create(&[("reason", "connection_limit".to_owned())]).inc();
    if let Some(suppressed) = log.allow("connection refused") {
        tracing::warn!(%reason, suppressed, "connection refused");
    }
    tokio::spawn(async move {
        let mut bytes = Vec::with_capacity(64 + reason.len());
        // SETTINGS, empty.
        bytes.extend_from_slice(&[0, 0, 0, 0x4, 0, 0, 0, 0, 0]);
        // GOAWAY: last stream 0, ENHANCE_YOUR_CALM, the reason.
        let length = u32::try_from(8 + reason.len()).unwrap_or(u32::MAX);
        bytes.extend_from_slice(&length.to_be_bytes()[1..]);
        bytes.extend_from_slice(&[0x7, 0, 0, 0, 0, 0]);
        bytes.extend_from_slice(&0u32.to_be_bytes());
        bytes.extend_from_slice(&ENHANCE_YOUR_CALM.to_be_bytes());
        bytes.extend_from_slice(reason.as_bytes());
        let _ = tokio::time::timeout(Duration::from_secs(1), async {
            let _ = tcp.write_all(&bytes).await;
            let _ = tcp.shutdown().await;
            // Read what the client sent (its preface) before closing: a
            // socket closed with unread data sends a reset, and the client's
            // kernel would discard the GOAWAY with it, unread.
            let mut sink = [0u8; 4096];
            let mut read = 0;
            while read < 64 * 1024 {
                match tcp.read(&mut sink).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => read += n,
                }
            }
        })
        .await;
    });
}

/// Counts each connection's streams (for the idle timeout), tells resets
/// from deadlines, and hands the [`Connection`] to the calls on it.
#[derive(Clone)]
struct Tracked<S> {
    inner: S,
    connection: Arc<Connection>,
    peers: Arc<Peers>,
    log: Arc<LogBudget>,
}

impl<S> Service<Request<Incoming>> for Tracked<S>
where
    S: Service<Request<Body>, Response = Response<Body>, Error = Infallible> + Clone + Send + 'static,
    S::Future: Send + 'static,
{
    type Response = Response<Body>;
    type Error = Infallible;
    type Future = TrackedCall<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<Incoming>) -> Self::Future {
        let deadline = request
            .headers()
            .get("grpc-timeout")
            .and_then(|value| value.to_str().ok())
            .and_then(platform::grpc::parse_timeout);
        request.extensions_mut().insert(self.connection.clone());
        request.extensions_mut().insert(tonic::transport::server::TcpConnectInfo {
            local_addr: None,
            remote_addr: Some(self.connection.peer),
        });
        self.connection.stream_opened();
        let stream = StreamGuard { connection: self.connection.clone() };
        // See tower-rs/tower#547: call the instance that was polled ready.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        TrackedCall {
            call: inner.call(request.map(Body::new)),
            stream: Some(stream),
            started: Instant::now(),
            deadline,
            peers: self.peers.clone(),
            log: self.log.clone(),
        }
    }
}

/// One stream of a connection, counted open until dropped.
#[derive(Debug)]
struct StreamGuard {
    connection: Arc<Connection>,
}

impl Drop for StreamGuard {
    fn drop(&mut self) {
        self.connection.stream_closed();
    }
}

pin_project_lite::pin_project! {
    /// A call until its answer's head: dropped before that, the client reset it.
    pub struct TrackedCall<F> {
        #[pin]
        call: F,
        stream: Option<StreamGuard>,
        started: Instant,
        deadline: Option<Duration>,
        peers: Arc<Peers>,
        log: Arc<LogBudget>,
    }

    impl<F> PinnedDrop for TrackedCall<F> {
        fn drop(this: Pin<&mut Self>) {
            let this = this.project();
            let Some(stream) = this.stream.take() else { return };
            // The client's own deadline passed (give or take the time its
            // request took to arrive): it gave up, as it said it would.
            if this.deadline.is_some_and(|deadline| this.started.elapsed() + deadline / 10 >= deadline) {
                return;
            }
            let connection = &stream.connection;
            if connection.early_reset() && !connection.is_closing() {
                if let Some(suppressed) = this.log.allow("too many resets") {
                    tracing::warn!(
                        peer = %connection.peer,
                        suppressed,
                        "connection closed and peer cut off: too many streams reset before their answer"
                    );
                }
                platform::metrics::metrics().edge_refusals.get_or_create(&[("reason", "cut_off".to_owned())]).inc();
                this.peers.cut_off(connection.peer.ip(), Instant::now());
                connection.close("too many streams reset before their answer");
            }
        }
    }
}

impl<F> Future for TrackedCall<F>
where
    F: Future<Output = Result<Response<Body>, Infallible>>,
{
    type Output = Result<Response<Body>, Infallible>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let Ok(response) = std::task::ready!(this.call.poll(cx));
        let stream = this.stream.take();
        Poll::Ready(Ok(response.map(|body| Body::new(Counted { body, _stream: stream }))))
    }
}

pin_project_lite::pin_project! {
    /// An answer's body: the stream stays counted open until it is done.
    struct Counted {
        #[pin]
        body: Body,
        _stream: Option<StreamGuard>,
    }
}

impl HttpBody for Counted {
    type Data = Bytes;
    type Error = Status;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Status>>> {
        self.project().body.poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}
