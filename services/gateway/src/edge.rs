//! The edge policy, applied to every call before it is routed: who may
//! call which method, how often, with how large a message, within which
//! deadline — and what a caller that keeps being refused costs.
//!
//! In order (each step refuses with a precise status and goes no further):
//! 1. identity headers a client may have made up (`x-verified-*`) are
//!    removed: nothing behind the gateway may mistake them for a verified claim;
//! 2. health and reflection are open to everyone, limited per peer address;
//! 3. a method the edge does not know is UNIMPLEMENTED, and gift's
//!    `Exchange` (the wallet's own call) is PERMISSION_DENIED: neither is forwarded;
//! 4. the bearer token: a token verified lately is trusted from memory, one
//!    refused lately is refused from memory; otherwise, if the peer has spent
//!    its budget of calls with no valid token, the call is refused
//!    (RESOURCE_EXHAUSTED) before any signature is checked; otherwise the
//!    token is verified, cheap checks first (UNAUTHENTICATED, saying why);
//! 5. the token's roles must open the method (PERMISSION_DENIED): players
//!    on the player APIs, operators on reads, settlements, the programme and
//!    the gift catalogue;
//! 6. the caller's rate limit, per verified subject (RESOURCE_EXHAUSTED with
//!    `retry-after-ms`), and for `WatchMyPage` the player's open watches;
//! 7. the request is read whole within the request timeout, at most one
//!    message of the size limit, and must be well-formed gRPC framing
//!    (RESOURCE_EXHAUSTED, INVALID_ARGUMENT, DEADLINE_EXCEEDED);
//! 8. the caller's deadline (`grpc-timeout`) is forwarded as what is left of
//!    it, and the gateway answers DEADLINE_EXCEEDED itself when it passes.
//!
//! Every refusal the caller caused draws on its peer's refusal budget
//! ([`Peers`]); a peer that overdraws it is cut off: the connection is
//! closed and new ones are refused for a while. Refusals are logged at most
//! once per reason every 10 s, with how many were left out.
//!
//! The token itself is forwarded untouched: every service verifies it again
//! and checks, where the data lives, that a player only touches their own.

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::{Buf as _, Bytes};
use futures::future::BoxFuture;
use http::{HeaderMap, HeaderName, HeaderValue, Request, Response};
use http_body::{Body as HttpBody, Frame, SizeHint};
use http_body_util::{BodyExt as _, Full, Limited};
use platform::auth::{AuthError, Caller, Role, Verifier, bearer};
use platform::caller::is_open;
use platform::grpc::{encode_timeout, parse_timeout};
use platform::resilience::RETRY_AFTER_MS;
use tonic::Status;
use tonic::body::Body;
use tonic::transport::server::TcpConnectInfo;
use tower::{Layer, Service};

use crate::connections::Connection;
use crate::log_budget::LogBudget;
use crate::peers::Peers;
use crate::rate_limit::{RateLimit, RateLimiter};

/// What a method of the contracts asks of its caller at the edge.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Any signed-in caller, player or operator (the catalogues).
    SignedIn,
    /// A player (whose ownership the service checks) or an operator: reads.
    PlayerData,
    /// A player only, for their own customer id (checked by the service):
    /// what changes a player's data.
    PlayerAction,
    /// An operator only (settlements, the programme, the gift catalogue).
    Operator,
    /// Never from the edge: a call between services of the mesh.
    Internal,
}

/// Every method the gateway forwards, and what it asks. A method missing
/// here is not forwarded: a new RPC stays closed until it is listed
/// (a test checks that every RPC of the contracts is).
pub const METHODS: [(&str, Access); 23] = [
    ("/game.mission.v1.MissionService/ListMissionDefinitions", Access::SignedIn),
    ("/game.mission.v1.MissionService/AchieveMission", Access::PlayerAction),
    ("/game.mission.v1.MissionService/GetMission", Access::PlayerData),
    ("/game.mission.v1.MissionService/ListMissions", Access::PlayerData),
    ("/game.programme.v1.ProgrammeService/ScheduleEvent", Access::Operator),
    ("/game.programme.v1.ProgrammeService/DefineMission", Access::Operator),
    ("/game.programme.v1.ProgrammeService/ListEvents", Access::Operator),
    ("/game.programme.v1.ProgrammeService/ListMissionDefinitions", Access::Operator),
    ("/game.reward.v1.RewardService/GetReward", Access::PlayerData),
    ("/game.wallet.v1.WalletService/GetWallet", Access::PlayerData),
    ("/game.wallet.v1.WalletService/ExchangeReward", Access::PlayerAction),
    ("/game.wallet.v1.WalletService/Exchange", Access::PlayerAction),
    ("/game.gift.v1.GiftService/ListProducts", Access::SignedIn),
    ("/game.gift.v1.GiftService/Exchange", Access::Internal),
    ("/game.gift.v1.GiftService/GetOrder", Access::PlayerData),
    ("/game.gift.admin.v1.CatalogueService/ListProduct", Access::Operator),
    ("/game.gift.admin.v1.CatalogueService/RestockProduct", Access::Operator),
    ("/game.gift.admin.v1.CatalogueService/ListCatalogue", Access::Operator),
    ("/game.mypage.v1.MyPageService/GetMyPage", Access::PlayerData),
    ("/game.mypage.v1.MyPageService/WatchMyPage", Access::PlayerData),
    ("/game.settlement.v1.SettlementService/ListSettlements", Access::Operator),
    ("/game.settlement.v1.SettlementService/ListPeriods", Access::Operator),
    ("/game.settlement.v1.SettlementService/GetPeriod", Access::Operator),
];

/// The methods whose answer is a stream of snapshots (each message the
/// whole state): held open as long as the player watches, capped per player,
/// and coalesced to the latest message by the proxy.
pub const WATCHES: [&str; 1] = ["/game.mypage.v1.MyPageService/WatchMyPage"];

/// What `path` asks of its caller; `None` for a method the edge does not forward.
pub fn access_of(path: &str) -> Option<Access> {
    METHODS.iter().find(|(method, _)| *method == path).map(|(_, access)| *access)
}

impl Access {
    /// Whether `caller`'s roles open a method of this kind.
    fn admits(self, caller: &Caller) -> bool {
        match self {
            Self::SignedIn | Self::PlayerData => caller.has(Role::Player) || caller.has(Role::Operator),
            Self::PlayerAction => caller.has(Role::Player),
            Self::Operator => caller.has(Role::Operator),
            Self::Internal => false,
        }
    }

    fn refusal(self, caller: &Caller, path: &str) -> Status {
        let needs = match self {
            Self::SignedIn | Self::PlayerData => "the player or operator role",
            Self::PlayerAction => "the player role",
            Self::Operator => "the operator role",
            Self::Internal => "to be called from inside the mesh",
        };
        Status::permission_denied(format!("{path} needs {needs}; the token of {} does not grant it", caller.subject))
    }
}

/// The edge's limits.
#[derive(Debug, Clone)]
pub struct EdgeConfig {
    /// Verifies bearer tokens; `None` refuses every call that needs one.
    pub verifier: Option<Verifier>,
    /// Calls per verified caller, or per peer address for open endpoints.
    pub rate_limit: RateLimit,
    /// The largest request message forwarded.
    pub max_message_bytes: usize,
    /// Every peer's budgets and cut-offs, shared with the connection server.
    pub peers: Arc<Peers>,
    /// Watch streams one player may hold open at once.
    pub watches_per_player: usize,
    /// How long a request may take to arrive whole.
    pub request_timeout: Duration,
    /// The header a trusted proxy in front of the gateway names the client's
    /// address in; `None` when clients connect directly.
    pub client_address_header: Option<HeaderName>,
}

/// Bearer tokens longer than this are refused unread: real ones are a
/// kilobyte or two, and parsing a huge one would be work for nothing.
const MAX_TOKEN_BYTES: usize = 8 * 1024;

/// Refusals are logged at most once per reason this often.
const REFUSAL_LOG_INTERVAL: Duration = Duration::from_secs(10);

/// Applies the edge policy (see the module documentation) before routing.
#[derive(Debug, Clone)]
pub struct EdgeLayer {
    edge: Arc<Edge>,
}

#[derive(Debug)]
struct Edge {
    verifier: Option<Verifier>,
    callers: RateLimiter,
    max_message_bytes: usize,
    peers: Arc<Peers>,
    watches: Arc<Watches>,
    request_timeout: Duration,
    client_address_header: Option<HeaderName>,
    log: LogBudget,
}

impl EdgeLayer {
    /// The policy with `config`'s keys and limits.
    pub fn new(config: EdgeConfig) -> Self {
        Self {
            edge: Arc::new(Edge {
                verifier: config.verifier,
                callers: RateLimiter::new(config.rate_limit),
                max_message_bytes: config.max_message_bytes,
                peers: config.peers,
                watches: Arc::new(Watches { max: config.watches_per_player, open: Mutex::default() }),
                request_timeout: config.request_timeout,
                client_address_header: config.client_address_header,
                log: LogBudget::new(REFUSAL_LOG_INTERVAL),
            }),
        }
    }
}

/// Who a call comes from, as far as budgets go.
#[derive(Debug)]
struct Client {
    /// The budgets' key: `peer 203.0.113.7`.
    key: String,
    /// The connection, when it comes straight from the client (not through
    /// a proxy, whose connection carries everyone's calls): it is what a
    /// cut-off closes.
    direct: Option<(IpAddr, Arc<Connection>)>,
}

impl<S> Layer<S> for EdgeLayer {
    type Service = EdgePolicy<S>;

    fn layer(&self, inner: S) -> Self::Service {
        EdgePolicy { inner, edge: self.edge.clone() }
    }
}

/// See [`EdgeLayer`].
#[derive(Debug, Clone)]
pub struct EdgePolicy<S> {
    inner: S,
    edge: Arc<Edge>,
}

impl<S> Service<Request<Body>> for EdgePolicy<S>
where
    S: Service<Request<Body>, Response = Response<Body>, Error = Infallible> + Clone + Send + 'static,
    S::Future: Send,
{
    type Response = Response<Body>;
    type Error = Infallible;
    type Future = BoxFuture<'static, Result<Response<Body>, Infallible>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<Body>) -> Self::Future {
        // See tower-rs/tower#547: call the instance that was polled ready.
        let clone = self.inner.clone();
        let inner = std::mem::replace(&mut self.inner, clone);
        let edge = self.edge.clone();
        Box::pin(async move {
            let client = edge.client_of(&request);
            let path = request.uri().path().to_owned();
            Ok(edge.admit(inner, request, &client).await.unwrap_or_else(|refusal| {
                edge.refused(&client, &refusal, &path);
                refusal.into_http()
            }))
        })
    }
}

impl Edge {
    /// Whom a call's budgets are charged to: the client address a trusted
    /// proxy reports, else the connection's peer.
    fn client_of(&self, request: &Request<Body>) -> Client {
        let connection = request.extensions().get::<Arc<Connection>>();
        if let Some(header) = &self.client_address_header {
            let reported = request.headers().get(header).and_then(|v| v.to_str().ok());
            let address = reported.and_then(|v| v.split(',').next_back()).map(str::trim).filter(|v| !v.is_empty());
            if let Some(address) = address {
                return Client { key: format!("peer {address}"), direct: None };
            }
        }
        match connection {
            Some(connection) => {
                let ip = connection.peer.ip();
                let direct = self.client_address_header.is_none().then(|| (ip, connection.clone()));
                Client { key: format!("peer {ip}"), direct }
            }
            None => Client { key: peer_of(request), direct: None },
        }
    }

    /// Counts and logs a refusal, and cuts the client off when it has been
    /// refused more than its budget allows.
    fn refused(&self, client: &Client, refusal: &Status, path: &str) {
        let reason = refusal_reason(refusal);
        platform::metrics::metrics().edge_refusals.get_or_create(&[("reason", reason.to_owned())]).inc();
        if let Some(suppressed) = self.log.allow(reason) {
            tracing::info!(
                reason,
                client = %client.key,
                %path,
                message = refusal.message(),
                suppressed,
                "refusing calls (one line per reason every 10 s; `suppressed` were left out since the last)"
            );
        }
        if !caused_by_caller(refusal) {
            return;
        }
        let now = Instant::now();
        if !self.peers.refused_call(&client.key, now) {
            return;
        }
        let Some((ip, connection)) = &client.direct else { return };
        if connection.is_closing() {
            return;
        }
        self.peers.cut_off(*ip, now);
        connection.close("too many refused calls");
        platform::metrics::metrics().edge_refusals.get_or_create(&[("reason", "cut_off".to_owned())]).inc();
        if let Some(suppressed) = self.log.allow("cut_off") {
            tracing::warn!(
                client = %client.key,
                penalty_ms = self.peers.limits().penalty.as_millis(),
                suppressed,
                "peer cut off: too many refused calls; its connection is closed and new ones refused for the penalty"
            );
        }
    }

    async fn admit<S>(
        &self,
        mut inner: S,
        mut request: Request<Body>,
        client: &Client,
    ) -> Result<Response<Body>, Status>
    where
        S: Service<Request<Body>, Response = Response<Body>, Error = Infallible>,
    {
        let received = Instant::now();
        strip_identity_headers(request.headers_mut());
        let path = request.uri().path().to_owned();
        let peer = &client.key;
        if is_open(&path) {
            self.callers.take(peer, received).map_err(|wait| limited(&format!("calls from {peer}"), wait))?;
            return Ok(call(&mut inner, request).await);
        }
        let access = access_of(&path)
            .ok_or_else(|| Status::unimplemented(format!("no method {path} is served behind the gateway")))?;
        if access == Access::Internal {
            return Err(Status::permission_denied(format!(
                "{path} is called by the wallet service only, never from outside the mesh; exchange a reward with \
                 game.wallet.v1.WalletService/ExchangeReward"
            )));
        }
        let caller = self.authenticate(request.headers(), &client.key, received).await.inspect_err(|error| {
            tracing::debug!(%error, %path, %peer, "token refused at the edge");
        })?;
        if !access.admits(&caller) {
            return Err(access.refusal(&caller, &path));
        }
        self.callers
            .take(&format!("subject {}", caller.subject), received)
            .map_err(|wait| limited(&format!("calls of {}", caller.subject), wait))?;
        let watching = if WATCHES.contains(&path.as_str()) { Some(self.watches.open(&caller.subject)?) } else { None };

        let (parts, body) = request.into_parts();
        let message = tokio::time::timeout(self.request_timeout, read_request(body, self.max_message_bytes))
            .await
            .map_err(|_| {
            Status::deadline_exceeded(format!(
                "the request did not arrive whole within {} ms",
                self.request_timeout.as_millis()
            ))
        })??;
        let mut request = Request::from_parts(parts, Body::new(Full::new(message)));
        if let Some(watching) = watching {
            // The watch counts as open for as long as its answer streams.
            return Ok(call(&mut inner, request).await.map(|body| Body::new(Holding { body, _held: watching })));
        }
        let Some(deadline) = deadline_of(request.headers()) else {
            return Ok(call(&mut inner, request).await);
        };
        // What is left of the caller's budget is what the service gets.
        let left = deadline.saturating_sub(received.elapsed());
        if let Ok(value) = HeaderValue::from_str(&encode_timeout(left)) {
            request.headers_mut().insert(GRPC_TIMEOUT, value);
        }
        tokio::time::timeout(left, call(&mut inner, request)).await.map_err(|_| {
            Status::deadline_exceeded(format!(
                "the call's deadline of {} ms passed at the gateway",
                deadline.as_millis()
            ))
        })
    }

    /// The caller of a call's bearer token. A call with no valid token
    /// draws on the client's budget of unverified calls; once that is spent,
    /// a token not already known is refused without a signature check. A
    /// token known good or known bad is answered from memory either way, so
    /// a player whose token verified lately is never held back by a
    /// neighbour's forgeries, and a client whose token just expired still
    /// hears UNAUTHENTICATED (to refresh it).
    async fn authenticate(&self, headers: &HeaderMap, client: &str, now: Instant) -> Result<Caller, Status> {
        let unverified = |error: AuthError| {
            self.peers.unverified_call(client, now);
            Status::from(error)
        };
        let value = match headers.get(http::header::AUTHORIZATION) {
            None => None,
            Some(value) if value.len() > MAX_TOKEN_BYTES => return Err(unverified(AuthError::Malformed)),
            Some(value) => Some(value.to_str().map_err(|_| unverified(AuthError::Malformed))?),
        };
        let token = bearer(value).map_err(unverified)?;
        let verifier = self
            .verifier
            .as_ref()
            .ok_or_else(|| AuthError::Keys("the gateway has no verification keys configured".into()))?;
        if let Some(known) = verifier.remembered(token).await {
            return known.map_err(unverified);
        }
        self.peers.may_verify(client, now).map_err(|wait| {
            let mut status = Status::resource_exhausted(format!(
                "too many calls without a valid token from {client}; retry after {} ms",
                wait.as_millis().max(1)
            ));
            if let Ok(value) = wait.as_millis().max(1).to_string().parse() {
                status.metadata_mut().insert(RETRY_AFTER_MS, value);
            }
            status
        })?;
        verifier.verify(token).await.map_err(|error| match error {
            // Not the caller's fault: the gateway cannot read its keys.
            AuthError::Keys(_) => Status::from(error),
            error => unverified(error),
        })
    }
}

/// Whether a refusal is the caller's doing (so counts against its budget):
/// not a deadline that passed, nor keys the gateway could not read.
fn caused_by_caller(refusal: &Status) -> bool {
    use tonic::Code;
    matches!(
        refusal.code(),
        Code::Unauthenticated
            | Code::PermissionDenied
            | Code::ResourceExhausted
            | Code::InvalidArgument
            | Code::Unimplemented
    )
}

/// The watch streams open per player.
#[derive(Debug)]
struct Watches {
    max: usize,
    open: Mutex<HashMap<String, usize>>,
}

/// One open watch; closed when dropped.
#[derive(Debug)]
struct Watching {
    watches: Arc<Watches>,
    subject: String,
}

impl Watches {
    fn open(self: &Arc<Self>, subject: &str) -> Result<Watching, Status> {
        let mut open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        let count = open.entry(subject.to_owned()).or_default();
        if *count >= self.max {
            return Err(Status::resource_exhausted(format!(
                "{subject} already watches {} pages at once, the most allowed; close one first",
                self.max
            )));
        }
        *count += 1;
        Ok(Watching { watches: self.clone(), subject: subject.to_owned() })
    }
}

impl Drop for Watching {
    fn drop(&mut self) {
        let mut open = self.watches.open.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(count) = open.get_mut(&self.subject) {
            *count -= 1;
            if *count == 0 {
                open.remove(&self.subject);
            }
        }
    }
}

pin_project_lite::pin_project! {
    /// An answer's body holding something (an open watch) until it is done.
    struct Holding<T> {
        #[pin]
        body: Body,
        _held: T,
    }
}

impl<T> HttpBody for Holding<T> {
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

/// The `reason` label of `rewards_edge_refusals_total` for a refusal.
fn refusal_reason(refusal: &Status) -> &'static str {
    use tonic::Code;
    match refusal.code() {
        Code::Unauthenticated => "unauthenticated",
        Code::PermissionDenied => "permission_denied",
        Code::ResourceExhausted if refusal.message().starts_with("rate limit") => "rate_limited",
        Code::ResourceExhausted if refusal.message().starts_with("too many calls without a valid token") => {
            "unverified_budget"
        }
        Code::ResourceExhausted if refusal.message().contains("pages at once") => "watch_limit",
        Code::ResourceExhausted => "too_large",
        Code::InvalidArgument => "malformed",
        Code::DeadlineExceeded => "deadline_exceeded",
        Code::Unimplemented => "unknown_method",
        Code::Unavailable => "keys_unavailable",
        _ => "other",
    }
}

async fn call<S>(inner: &mut S, request: Request<Body>) -> Response<Body>
where
    S: Service<Request<Body>, Response = Response<Body>, Error = Infallible>,
{
    match inner.call(request).await {
        Ok(response) => response,
        Err(never) => match never {},
    }
}

/// Headers that name a verified identity: only a proxy that verified a
/// token may write them (Istio's `outputClaimToHeaders` does, after the
/// gateway), never a client.
fn strip_identity_headers(headers: &mut HeaderMap) {
    let forged: Vec<HeaderName> =
        headers.keys().filter(|name| name.as_str().starts_with("x-verified-")).cloned().collect();
    for name in forged {
        headers.remove(name);
    }
}

/// The rate-limit key of a call with no verified identity: its peer's IP.
fn peer_of(request: &Request<Body>) -> String {
    match request.extensions().get::<TcpConnectInfo>().and_then(TcpConnectInfo::remote_addr) {
        Some(addr) => format!("peer {}", addr.ip()),
        None => "peer unknown".to_owned(),
    }
}

fn limited(what: &str, wait: Duration) -> Status {
    let millis = wait.as_millis().max(1);
    let mut status = Status::resource_exhausted(format!("rate limit exceeded for {what}; retry after {millis} ms"));
    if let Ok(value) = millis.to_string().parse() {
        status.metadata_mut().insert(RETRY_AFTER_MS, value);
    }
    status
}

/// Reads the request body whole (never more than one message of `max`
/// bytes and its framing) and checks its gRPC framing.
async fn read_request(body: Body, max: usize) -> Result<Bytes, Status> {
    let too_large = || Status::resource_exhausted(format!("the request message exceeds the limit of {max} bytes"));
    let collected = Limited::new(body, max.saturating_add(FRAME_HEADER)).collect().await.map_err(|error| {
        if error.is::<http_body_util::LengthLimitError>() {
            too_large()
        } else {
            Status::cancelled("the request was not received whole")
        }
    })?;
    let message = collected.to_bytes();
    check_framing(&message, max)?;
    Ok(message)
}

/// A gRPC message frame: 1 byte "compressed" flag, 4 bytes length.
const FRAME_HEADER: usize = 5;

/// Checks that `body` is a sequence of whole gRPC messages, none over `max`.
///
/// # Errors
/// INVALID_ARGUMENT for a broken frame, RESOURCE_EXHAUSTED for a message over `max`.
pub fn check_framing(body: &[u8], max: usize) -> Result<(), Status> {
    let malformed = |why: &str| Status::invalid_argument(format!("the request is not well-formed gRPC: {why}"));
    let mut rest = body;
    while !rest.is_empty() {
        if rest.len() < FRAME_HEADER {
            return Err(malformed("truncated message header"));
        }
        let flag = rest.get_u8();
        if flag > 1 {
            return Err(malformed("unknown compression flag"));
        }
        let length = usize::try_from(rest.get_u32()).unwrap_or(usize::MAX);
        if length > max {
            return Err(Status::resource_exhausted(format!(
                "the request message of {length} bytes exceeds the limit of {max} bytes"
            )));
        }
        if rest.len() < length {
            return Err(malformed("truncated message"));
        }
        rest.advance(length);
    }
    Ok(())
}

const GRPC_TIMEOUT: &str = "grpc-timeout";

/// The caller's deadline: the `grpc-timeout` header (`<up to 8 digits><unit>`).
fn deadline_of(headers: &HeaderMap) -> Option<Duration> {
    parse_timeout(headers.get(GRPC_TIMEOUT)?.to_str().ok()?)
}
#[cfg(test)]
mod tests {
    use prost::Message as _;

    use super::*;

    #[test]
    fn every_rpc_of_the_contracts_has_an_access_rule() {
        let set = prost_types::FileDescriptorSet::decode(api::FILE_DESCRIPTOR_SET).unwrap();
        let mut rpcs = Vec::new();
        for file in &set.file {
            let package = file.package();
            for service in &file.service {
                let name = format!("{package}.{}", service.name());
                // Services no client reaches through the gateway (the vendor
                // simulation, whose package the gift catalogue shares) need
                // no rule: a method not listed is never forwarded.
                if !api::SERVICE_NAMES.contains(&name.as_str()) {
                    continue;
                }
                for method in &service.method {
                    rpcs.push(format!("/{name}/{}", method.name()));
                }
            }
        }
        rpcs.sort();
        let mut listed: Vec<String> = METHODS.iter().map(|(m, _)| (*m).to_owned()).collect();
        listed.sort();
        assert_eq!(rpcs, listed);
    }

    #[test]
    fn well_formed_frames_pass_and_broken_ones_are_refused_precisely() {
        let frame = |flag: u8, len: u32, payload: &[u8]| {
            let mut bytes = vec![flag];
            bytes.extend_from_slice(&len.to_be_bytes());
            bytes.extend_from_slice(payload);
            bytes
        };
        assert!(check_framing(&frame(0, 3, b"abc"), 10).is_ok());
        assert!(check_framing(b"", 10).is_ok());
        let refused = |body: &[u8]| check_framing(body, 10).unwrap_err();
        assert_eq!(refused(&frame(0, 11, &[0; 11])).code(), tonic::Code::ResourceExhausted);
        assert_eq!(refused(&frame(0, 5, b"abc")).code(), tonic::Code::InvalidArgument);
        assert_eq!(refused(&frame(7, 3, b"abc")).code(), tonic::Code::InvalidArgument);
        assert_eq!(refused(b"\0\0").code(), tonic::Code::InvalidArgument);
        assert_eq!(refused(&frame(0, u32::MAX, b"")).code(), tonic::Code::ResourceExhausted);
    }

    #[test]
    fn roles_open_methods_as_the_access_says() {
        let caller = |roles: &[Role]| Caller {
            subject: "someone".into(),
            roles: roles.iter().copied().collect(),
            expires: u64::MAX,
        };
        let (player, operator, none) = (caller(&[Role::Player]), caller(&[Role::Operator]), caller(&[]));
        assert!(Access::PlayerAction.admits(&player) && !Access::PlayerAction.admits(&operator));
        assert!(Access::PlayerData.admits(&player) && Access::PlayerData.admits(&operator));
        assert!(Access::Operator.admits(&operator) && !Access::Operator.admits(&player));
        assert!(!Access::SignedIn.admits(&none));
        assert!(!Access::Internal.admits(&operator));
    }

    #[test]
    fn client_made_identity_headers_are_removed() {
        let mut headers = HeaderMap::new();
        headers.insert("x-verified-customer-id", HeaderValue::from_static("player-1"));
        headers.insert("x-verified-roles", HeaderValue::from_static("operator"));
        headers.insert("authorization", HeaderValue::from_static("Bearer abc"));
        strip_identity_headers(&mut headers);
        assert_eq!(headers.len(), 1);
        assert!(headers.contains_key("authorization"));
    }
}
