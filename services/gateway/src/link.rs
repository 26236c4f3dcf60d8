//! The gateway's HTTP/2 connection to one replica, shared by every call to
//! it, and a call forwarded over it.
//!
//! A call opens its stream on the connection from its own task and reads
//! its answer there; one task per connection reads and writes the socket.
//! tonic's `Channel` puts a buffer task and hyper's client dispatch task
//! between the two, each a wake-up and usually a thread hand-off per call
//! (`docs/performance.md`, section 16).
//!
//! The connection is made on the first call and again after it closed,
//! within [`CONNECT_TIMEOUT`]; callers arriving while it is made wait for
//! that one attempt instead of each making their own. Idle or not, it is
//! pinged every [`KEEP_ALIVE_INTERVAL`] and dropped when a ping goes
//! unanswered for [`KEEP_ALIVE_TIMEOUT`], so that a replica whose host
//! vanished without closing the socket is noticed.
//!
//! What a failure proves matters to the proxy, which sends a call again only
//! when it never reached the replica ([`ForwardError::never_reached`]).

use std::future::poll_fn;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll, ready};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::FutureExt as _;
use h2::client::SendRequest;
use http::uri::{Authority, PathAndQuery, Scheme};
use http::{HeaderMap, Request, Response, Uri};
use http_body::{Body as HttpBody, Frame, SizeHint};
use http_body_util::BodyExt as _;
use tokio::net::TcpStream;
use tonic::body::Body;

/// How long making a connection (TCP and the HTTP/2 preface) may take.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);
/// How often a connection is pinged.
pub const KEEP_ALIVE_INTERVAL: Duration = Duration::from_secs(20);
/// How long a ping may go unanswered before the connection is dropped.
pub const KEEP_ALIVE_TIMEOUT: Duration = Duration::from_secs(10);

// As hyper's client sets them: a watch's pages or a large answer flow
// without waiting for window updates on every few frames.
const STREAM_WINDOW: u32 = 2 * 1024 * 1024;
const CONNECTION_WINDOW: u32 = 5 * 1024 * 1024;

/// Why a call was not answered.
#[derive(Debug, thiserror::Error)]
pub enum ForwardError {
    /// No connection could be made: nothing was sent.
    #[error("cannot connect to {addr}: {reason}")]
    Connect { addr: String, reason: String },
    /// The connection was gone before the call could open its stream:
    /// nothing was sent.
    #[error("the connection to {addr} closed before the call was sent")]
    Unsent {
        addr: String,
        #[source]
        source: h2::Error,
    },
    /// The call was sent, and failed or was refused on its way.
    #[error("the call to {addr} failed")]
    Failed {
        addr: String,
        #[source]
        source: h2::Error,
    },
}

impl ForwardError {
    /// Whether the replica provably never ran the call: nothing reached it,
    /// or it refused the stream before reading it (`REFUSED_STREAM`, as a
    /// draining server answers streams it will not serve). A stream reset
    /// or a connection lost after sending proves nothing: the call may have run.
    pub fn never_reached(&self) -> bool {
        match self {
            Self::Connect { .. } | Self::Unsent { .. } => true,
            Self::Failed { source, .. } => source.reason() == Some(h2::Reason::REFUSED_STREAM),
        }
    }
}

/// The connection to one replica, made when first needed.
#[derive(Debug)]
pub struct Link {
    /// `host:port`, as connected to and named in errors.
    addr: String,
    authority: Authority,
    /// The connection in use, shared with the task that drives it (which
    /// empties it when the connection ends).
    current: Arc<Mutex<Current>>,
    /// Held while a connection is made; remembers the last attempt that failed.
    connecting: tokio::sync::Mutex<Option<FailedConnect>>,
    /// Calls sent and not answered yet, for the balance.
    in_flight: AtomicUsize,
}

#[derive(Debug, Default)]
struct Current {
    /// Counts connections, so that a closing one empties only its own slot.
    generation: u64,
    sender: Option<SendRequest<Bytes>>,
}

#[derive(Debug)]
struct FailedConnect {
    at: Instant,
    reason: String,
}

/// Why an upstream URL cannot be forwarded to.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UnusableUrl(String);

impl Link {
    /// A link to the replica at `url` (`http://host:port`); connects lazily.
    ///
    /// # Errors
    /// When `url` is not a plain-HTTP URL with a host: inside the mesh,
    /// encryption is the sidecars' business.
    pub fn new(url: &str) -> Result<Self, UnusableUrl> {
        let uri: Uri = url.parse().map_err(|e| UnusableUrl(format!("not a URL: {e}")))?;
        if uri.scheme() != Some(&Scheme::HTTP) {
            return Err(UnusableUrl("only http:// upstreams are forwarded to (the mesh's sidecars encrypt)".into()));
        }
        let authority = uri.authority().cloned().ok_or_else(|| UnusableUrl("no host in the URL".into()))?;
        let addr = format!("{}:{}", authority.host(), authority.port_u16().unwrap_or(80));
        Ok(Self {
            addr,
            authority,
            current: Arc::default(),
            connecting: tokio::sync::Mutex::new(None),
            in_flight: AtomicUsize::new(0),
        })
    }

    /// Calls sent over this link and not answered yet.
    pub fn in_flight(&self) -> usize {
        self.in_flight.load(Ordering::Relaxed)
    }

    /// Counts `calls` more as in flight, as if sent and not yet answered.
    #[cfg(test)]
    pub(crate) fn add_in_flight(&self, calls: usize) {
        self.in_flight.fetch_add(calls, Ordering::Relaxed);
    }

    /// Lets the connection close once the calls on it are answered: the
    /// replica left the balance.
    pub fn release(&self) {
        let mut current = self.current.lock().unwrap_or_else(PoisonError::into_inner);
        current.sender = None;
    }

    /// Forwards `request` and returns the replica's answer, its body
    /// streamed as it arrives.
    ///
    /// The request body is not read until a connection is ready: when no
    /// connection could be made, it is untouched and another replica may
    /// take it. Only when a ready connection closed before the stream
    /// opened, and no new one could be made, was it read and not sent.
    ///
    /// # Errors
    /// See [`ForwardError`].
    pub async fn send(&self, request: Request<Body>) -> Result<Response<Body>, ForwardError> {
        let _counted = InFlight::count(&self.in_flight);
        let (mut parts, mut body) = request.into_parts();
        let path = parts.uri.path_and_query().cloned().unwrap_or_else(|| PathAndQuery::from_static("/"));
        let uri = Uri::from_parts({
            let mut uri = http::uri::Parts::default();
            uri.scheme = Some(Scheme::HTTP);
            uri.authority = Some(self.authority.clone());
            uri.path_and_query = Some(path);
            uri
        })
        .unwrap_or_default();
        strip_connection_headers(&mut parts.headers);

        let (mut generation, mut sender) = self.ready_sender().await?;
        // The first frame is taken now, when a whole unary request is
        // already here, so that it leaves with its headers.
        let first = match body.frame().now_or_never() {
            Some(Some(Ok(frame))) => Some(frame),
            Some(Some(Err(status))) => {
                return Ok(status.into_http());
            }
            Some(None) => None,
            None => {
                // Not here yet (a body still streaming in): it follows.
                return self.send_streaming(sender, generation, parts, uri, body).await;
            }
        };
        let ends_with_first = first.is_none() || body.is_end_stream();
        let mut retried = false;
        let (response, mut stream) = loop {
            let head = head(&parts, uri.clone());
            match sender.send_request(head, first.is_none()) {
                Ok(sent) => break sent,
                // It closed between ready and send: nothing left, so a
                // fresh connection may carry it.
                Err(source) if closed(&source) && !retried => {
                    retried = true;
                    self.forget(generation);
                    (generation, sender) = self.ready_sender().await?;
                }
                Err(source) if closed(&source) => {
                    return Err(ForwardError::Unsent { addr: self.addr.clone(), source });
                }
                // h2 refused the request itself: another replica would too.
                Err(source) => return Err(ForwardError::Failed { addr: self.addr.clone(), source }),
            }
        };
        if let Some(frame) = first {
            match frame.into_data() {
                Ok(data) => {
                    // Buffered by the connection beyond the peer's window;
                    // bounded by the edge's message size.
                    if stream.send_data(data, ends_with_first).is_err() {
                        return self.answer(response).await;
                    }
                    if !ends_with_first {
                        tokio::spawn(pump(body, stream));
                    }
                }
                Err(frame) => {
                    if let Ok(trailers) = frame.into_trailers() {
                        let _ = stream.send_trailers(trailers);
                    }
                }
            }
        }
        self.answer(response).await
    }

    async fn send_streaming(
        &self,
        mut sender: SendRequest<Bytes>,
        generation: u64,
        parts: http::request::Parts,
        uri: Uri,
        body: Body,
    ) -> Result<Response<Body>, ForwardError> {
        let (response, stream) = match sender.send_request(head(&parts, uri), false) {
            Ok(sent) => sent,
            Err(source) if closed(&source) => {
                self.forget(generation);
                return Err(ForwardError::Unsent { addr: self.addr.clone(), source });
            }
            Err(source) => return Err(ForwardError::Failed { addr: self.addr.clone(), source }),
        };
        tokio::spawn(pump(body, stream));
        self.answer(response).await
    }

    async fn answer(&self, response: h2::client::ResponseFuture) -> Result<Response<Body>, ForwardError> {
        match response.await {
            Ok(response) => Ok(response.map(|stream| Body::new(Received { stream, data_done: false, done: false }))),
            Err(source) => Err(ForwardError::Failed { addr: self.addr.clone(), source }),
        }
    }

    /// The connection, ready to open a stream: the current one, or a new one.
    async fn ready_sender(&self) -> Result<(u64, SendRequest<Bytes>), ForwardError> {
        let asked_at = Instant::now();
        if let Some((generation, sender)) = self.cached() {
            match sender.ready().await {
                Ok(sender) => return Ok((generation, sender)),
                Err(error) => {
                    tracing::debug!(addr = %self.addr, %error, "connection closed; connecting again");
                    self.forget(generation);
                }
            }
        }
        let mut failed = self.connecting.lock().await;
        // Made by another call while this one waited.
        if let Some((generation, sender)) = self.cached()
            && let Ok(sender) = sender.ready().await
        {
            return Ok((generation, sender));
        }
        // Failed while this one waited: the same answer, without a second try.
        if let Some(failure) = failed.as_ref().filter(|failure| failure.at >= asked_at) {
            return Err(ForwardError::Connect { addr: self.addr.clone(), reason: failure.reason.clone() });
        }
        let attempt_at = Instant::now();
        match tokio::time::timeout(CONNECT_TIMEOUT, connect(&self.addr)).await {
            Ok(Ok((sender, connection))) => {
                *failed = None;
                let generation = {
                    let mut current = self.current.lock().unwrap_or_else(PoisonError::into_inner);
                    current.generation += 1;
                    current.sender = Some(sender.clone());
                    current.generation
                };
                tokio::spawn(drive(connection, Arc::clone(&self.current), generation, self.addr.clone()));
                Ok((generation, sender))
            }
            outcome => {
                let reason = match outcome {
                    Ok(Err(reason)) => reason,
                    _ => format!("no connection within {} ms", CONNECT_TIMEOUT.as_millis()),
                };
                *failed = Some(FailedConnect { at: attempt_at, reason: reason.clone() });
                Err(ForwardError::Connect { addr: self.addr.clone(), reason })
            }
        }
    }

    fn cached(&self) -> Option<(u64, SendRequest<Bytes>)> {
        let current = self.current.lock().unwrap_or_else(PoisonError::into_inner);
        current.sender.clone().map(|sender| (current.generation, sender))
    }

    fn forget(&self, generation: u64) {
        forget(&self.current, generation);
    }
}

/// Whether opening a stream failed because the connection is gone (it
/// was told to go away, or its socket closed), not because of the request.
fn closed(error: &h2::Error) -> bool {
    error.is_go_away() || error.is_io()
}

fn forget(current: &Mutex<Current>, generation: u64) {
    let mut current = current.lock().unwrap_or_else(PoisonError::into_inner);
    if current.generation == generation {
        current.sender = None;
    }
}

/// The request's head as sent upstream.
fn head(parts: &http::request::Parts, uri: Uri) -> Request<()> {
    let mut head = Request::new(());
    *head.method_mut() = parts.method.clone();
    *head.uri_mut() = uri;
    *head.headers_mut() = parts.headers.clone();
    head
}

/// Removes what HTTP/2 forbids and a browser's HTTP/1.1 request may carry
/// (RFC 9113, 8.2.2): h2 refuses a request holding any of them.
fn strip_connection_headers(headers: &mut HeaderMap) {
    use http::header::{CONNECTION, HOST, TE, TRANSFER_ENCODING, UPGRADE};
    for name in [CONNECTION, TRANSFER_ENCODING, UPGRADE, HOST] {
        headers.remove(name);
    }
    headers.remove("keep-alive");
    headers.remove("proxy-connection");
    if headers.get(TE).is_some_and(|te| te != "trailers") {
        headers.remove(TE);
    }
}

type Connection = h2::client::Connection<TcpStream, Bytes>;

async fn connect(addr: &str) -> Result<(SendRequest<Bytes>, Connection), String> {
    let socket = TcpStream::connect(addr).await.map_err(|e| e.to_string())?;
    // Small frames both ways, each waited for: never held back by Nagle.
    socket.set_nodelay(true).map_err(|e| e.to_string())?;
    h2::client::Builder::new()
        .initial_window_size(STREAM_WINDOW)
        .initial_connection_window_size(CONNECTION_WINDOW)
        .enable_push(false)
        .handshake(socket)
        .await
        .map_err(|e| format!("HTTP/2 handshake: {e}"))
}

/// Reads and writes the connection's socket until it closes, pinging it;
/// then empties its slot so that the next call connects again.
async fn drive(mut connection: Connection, current: Arc<Mutex<Current>>, generation: u64, addr: String) {
    let mut ping_pong = connection.ping_pong();
    let keep_alive = async {
        let Some(ping_pong) = ping_pong.as_mut() else { return std::future::pending().await };
        loop {
            tokio::time::sleep(KEEP_ALIVE_INTERVAL).await;
            match tokio::time::timeout(KEEP_ALIVE_TIMEOUT, ping_pong.ping(h2::Ping::opaque())).await {
                Ok(Ok(_)) => {}
                Ok(Err(_)) => return,
                Err(_) => {
                    tracing::warn!(%addr, "a keep-alive ping went unanswered; the connection is dropped");
                    return;
                }
            }
        }
    };
    tokio::select! {
        closed = &mut connection => {
            if let Err(error) = closed {
                tracing::debug!(%addr, %error, "connection to a replica ended");
            }
        }
        () = keep_alive => {}
    }
    forget(&current, generation);
}

/// Sends the rest of a request body as the peer makes room for it.
async fn pump(mut body: Body, mut stream: h2::SendStream<Bytes>) {
    loop {
        let Some(frame) = body.frame().await else {
            let _ = stream.send_data(Bytes::new(), true);
            return;
        };
        let frame = match frame {
            Ok(frame) => frame,
            Err(_) => {
                stream.send_reset(h2::Reason::CANCEL);
                return;
            }
        };
        let mut data = match frame.into_data() {
            Ok(data) => data,
            Err(frame) => {
                if let Ok(trailers) = frame.into_trailers() {
                    let _ = stream.send_trailers(trailers);
                }
                return;
            }
        };
        let last = body.is_end_stream();
        while !data.is_empty() {
            stream.reserve_capacity(data.len());
            let room = match poll_fn(|cx| stream.poll_capacity(cx)).await {
                Some(Ok(room)) if room > 0 => room,
                Some(Ok(_)) => continue,
                // The stream is gone: the answer says why.
                Some(Err(_)) | None => return,
            };
            let chunk = data.split_to(room.min(data.len()));
            if stream.send_data(chunk, last && data.is_empty()).is_err() {
                return;
            }
        }
        if last {
            return;
        }
    }
}

/// Counts a call as in flight until its answer's head arrives or it fails.
struct InFlight<'a>(&'a AtomicUsize);

impl<'a> InFlight<'a> {
    fn count(counter: &'a AtomicUsize) -> Self {
        counter.fetch_add(1, Ordering::Relaxed);
        Self(counter)
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// The replica's answer body: its DATA frames, each window given back as
/// it is passed on, then its trailers (gRPC's status).
#[derive(Debug)]
struct Received {
    stream: h2::RecvStream,
    data_done: bool,
    done: bool,
}

impl HttpBody for Received {
    type Data = Bytes;
    type Error = h2::Error;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, h2::Error>>> {
        let this = &mut *self;
        if this.done {
            return Poll::Ready(None);
        }
        if !this.data_done {
            match ready!(this.stream.poll_data(cx)) {
                Some(Ok(data)) => {
                    let _ = this.stream.flow_control().release_capacity(data.len());
                    return Poll::Ready(Some(Ok(Frame::data(data))));
                }
                Some(Err(error)) => {
                    this.done = true;
                    return Poll::Ready(Some(Err(error)));
                }
                None => this.data_done = true,
            }
        }
        let trailers = ready!(this.stream.poll_trailers(cx));
        this.done = true;
        match trailers {
            Ok(Some(trailers)) => Poll::Ready(Some(Ok(Frame::trailers(trailers)))),
            Ok(None) => Poll::Ready(None),
            Err(error) => Poll::Ready(Some(Err(error))),
        }
    }

    /// True at once for a trailers-only answer (gRPC's way of answering
    /// an error), so that it leaves the gateway as one HEADERS frame with
    /// END_STREAM: gRPC's C core (the Python, C++ and Ruby clients) drops a
    /// stream whose status comes after an empty DATA frame that ends it.
    fn is_end_stream(&self) -> bool {
        self.done || self.stream.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_http_urls_with_a_host_are_linked() {
        let link = Link::new("http://mission:50051").unwrap();
        assert_eq!(link.addr, "mission:50051");
        assert_eq!(Link::new("http://mission").unwrap().addr, "mission:80");
        assert!(Link::new("https://mission:50051").unwrap_err().to_string().contains("only http://"));
        assert!(Link::new("mission:50051").is_err());
    }

    #[test]
    fn connection_specific_headers_never_leave_for_http2() {
        let mut headers = HeaderMap::new();
        for (name, value) in
            [("connection", "keep-alive"), ("keep-alive", "5"), ("te", "gzip"), ("host", "a"), ("x-kept", "1")]
        {
            headers.insert(name, value.parse().unwrap());
        }
        strip_connection_headers(&mut headers);
        assert_eq!(headers.keys().map(http::HeaderName::as_str).collect::<Vec<_>>(), ["x-kept"]);
        headers.insert("te", "trailers".parse().unwrap());
        strip_connection_headers(&mut headers);
        assert!(headers.contains_key("te"), "gRPC's te: trailers is allowed");
    }

    /// A replica answering grpc.health.v1 on `port` until `stop` fires.
    async fn replica(port: u16, stop: tokio::sync::oneshot::Receiver<()>) -> tokio::task::JoinHandle<()> {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await.unwrap();
        let (_, health) = tonic_health::server::health_reporter();
        tokio::spawn(async move {
            tonic::transport::Server::builder()
                .add_service(health)
                .serve_with_incoming_shutdown(tokio_stream::wrappers::TcpListenerStream::new(listener), async {
                    let _ = stop.await;
                })
                .await
                .unwrap();
        })
    }

    /// One health check over `link`: the grpc-status it ended with.
    async fn check(link: &Link) -> Result<String, ForwardError> {
        // An empty HealthCheckRequest, framed: not compressed, length 0.
        let message = Body::new(http_body_util::Full::new(Bytes::from_static(&[0, 0, 0, 0, 0])));
        let request = Request::builder()
            .method("POST")
            .uri("/grpc.health.v1.Health/Check")
            .header("content-type", "application/grpc")
            .header("te", "trailers")
            .body(message)
            .unwrap();
        let answer = link.send(request).await?;
        let collected = answer.into_body().collect().await.unwrap();
        let trailers = collected.trailers().cloned().unwrap_or_default();
        Ok(trailers.get("grpc-status").map(|v| v.to_str().unwrap().to_owned()).unwrap_or_default())
    }

    #[tokio::test]
    async fn a_replica_that_restarted_is_reached_on_a_new_connection_without_a_failed_call() {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let link = Link::new(&format!("http://127.0.0.1:{port}")).unwrap();
        let (stop, stopped) = tokio::sync::oneshot::channel();
        let first = replica(port, stopped).await;
        assert_eq!(check(&link).await.unwrap(), "0");
        assert_eq!(check(&link).await.unwrap(), "0", "the same connection serves again");

        stop.send(()).unwrap();
        first.await.unwrap();
        let error = check(&link).await.unwrap_err();
        assert!(error.never_reached(), "nothing listens: {error}");

        let (_stop, stopped) = tokio::sync::oneshot::channel();
        let _second = replica(port, stopped).await;
        assert_eq!(check(&link).await.unwrap(), "0", "the closed connection is not used again");
        assert_eq!(link.in_flight(), 0);
    }

    #[tokio::test]
    async fn a_replica_nobody_listens_at_is_never_reached_and_one_attempt_answers_the_waiting_calls() {
        let unused = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = unused.local_addr().unwrap().port();
        drop(unused);
        let link = Arc::new(Link::new(&format!("http://127.0.0.1:{port}")).unwrap());
        let calls = (0..8).map(|_| {
            let link = Arc::clone(&link);
            tokio::spawn(async move { link.send(Request::new(Body::empty())).await })
        });
        for call in futures::future::join_all(calls).await {
            let error = call.unwrap().unwrap_err();
            assert!(error.never_reached(), "{error}");
            assert!(matches!(error, ForwardError::Connect { .. }), "{error}");
        }
    }
}
