//! The edge policy, applied to every call before it is routed: who may
//! call which method, how often, with how large a message, within which
//! deadline.
//!
//! In order (each step refuses with a precise status and goes no further):
//! 1. identity headers a client may have made up (`x-verified-*`) are
//!    removed: nothing behind the gateway may mistake them for a verified claim;
//! 2. health and reflection are open to everyone, limited per peer address;
//! 3. a method the edge does not know is UNIMPLEMENTED, and gift's
//!    `Exchange` (the wallet's own call) is PERMISSION_DENIED: neither is forwarded;
//! 4. the bearer token is verified (UNAUTHENTICATED, saying why);
//! 5. the token's roles must open the method (PERMISSION_DENIED): players
//!    on the player APIs, operators on reads and settlements;
//! 6. the caller's rate limit, per verified subject (RESOURCE_EXHAUSTED with
//!    `retry-after-ms`);
//! 7. the request is read whole, at most one message of the size limit, and
//!    must be well-formed gRPC framing (RESOURCE_EXHAUSTED, INVALID_ARGUMENT);
//! 8. the caller's deadline (`grpc-timeout`) is forwarded as what is left of
//!    it, and the gateway answers DEADLINE_EXCEEDED itself when it passes.
//!
//! The token itself is forwarded untouched: every service verifies it again
//! and checks, where the data lives, that a player only touches their own.

use std::convert::Infallible;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::{Buf as _, Bytes};
use futures::future::BoxFuture;
use http::{HeaderMap, HeaderValue, Request, Response};
use http_body_util::{BodyExt as _, Full, Limited};
use platform::auth::{AuthError, Caller, Role, Verifier, bearer};
use platform::caller::is_open;
use platform::grpc::{encode_timeout, parse_timeout};
use platform::resilience::RETRY_AFTER_MS;
use tonic::Status;
use tonic::body::Body;
use tonic::transport::server::TcpConnectInfo;
use tower::{Layer, Service};

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
    /// An operator only (settlements).
    Operator,
    /// Never from the edge: a call between services of the mesh.
    Internal,
}

/// Every method the gateway forwards, and what it asks. A method missing
/// here is not forwarded: a new RPC stays closed until it is listed
/// (a test checks that every RPC of the contracts is).
pub const METHODS: [(&str, Access); 13] = [
    ("/game.mission.v1.MissionService/ListMissionDefinitions", Access::SignedIn),
    ("/game.mission.v1.MissionService/AchieveMission", Access::PlayerAction),
    ("/game.mission.v1.MissionService/GetMission", Access::PlayerData),
    ("/game.mission.v1.MissionService/ListMissions", Access::PlayerData),
    ("/game.reward.v1.RewardService/GetReward", Access::PlayerData),
    ("/game.wallet.v1.WalletService/GetWallet", Access::PlayerData),
    ("/game.wallet.v1.WalletService/ExchangeReward", Access::PlayerAction),
    ("/game.gift.v1.GiftService/ListProducts", Access::SignedIn),
    ("/game.gift.v1.GiftService/Exchange", Access::Internal),
    ("/game.gift.v1.GiftService/GetOrder", Access::PlayerData),
    ("/game.mypage.v1.MyPageService/GetMyPage", Access::PlayerData),
    ("/game.mypage.v1.MyPageService/WatchMyPage", Access::PlayerData),
    ("/game.settlement.v1.SettlementService/ListSettlements", Access::Operator),
];

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
}

/// Bearer tokens longer than this are refused unread: real ones are a
/// kilobyte or two, and parsing a huge one would be work for nothing.
const MAX_TOKEN_BYTES: usize = 8 * 1024;

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
}

impl EdgeLayer {
    /// The policy with `config`'s keys and limits.
    pub fn new(config: EdgeConfig) -> Self {
        Self {
            edge: Arc::new(Edge {
                verifier: config.verifier,
                callers: RateLimiter::new(config.rate_limit),
                max_message_bytes: config.max_message_bytes,
            }),
        }
    }
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
            Ok(edge.admit(inner, request).await.unwrap_or_else(|refusal| {
                let reason = refusal_reason(&refusal).to_owned();
                platform::metrics::metrics().edge_refusals.get_or_create(&[("reason", reason)]).inc();
                refusal.into_http()
            }))
        })
    }
}

impl Edge {
    async fn admit<S>(&self, mut inner: S, mut request: Request<Body>) -> Result<Response<Body>, Status>
    where
        S: Service<Request<Body>, Response = Response<Body>, Error = Infallible>,
    {
        let received = Instant::now();
        strip_identity_headers(request.headers_mut());
        let path = request.uri().path().to_owned();
        let peer = peer_of(&request);
        if is_open(&path) {
            self.callers.take(&peer, received).map_err(|wait| limited(&format!("calls from {peer}"), wait))?;
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
        // Refused tokens are not limited per peer: behind an ingress every
        // caller has the ingress's address, and a client whose token just
        // expired must hear UNAUTHENTICATED (to refresh it), not be throttled
        // for someone else's forgeries. Forging costs the forger: a token
        // with an unknown key or algorithm is refused before any signature
        // check, and the key endpoint is read again at most every 10 s.
        let caller = match self.authenticate(request.headers()).await {
            Ok(caller) => caller,
            Err(error) => {
                tracing::debug!(%error, %path, %peer, "token refused at the edge");
                return Err(error.into());
            }
        };
        if !access.admits(&caller) {
            return Err(access.refusal(&caller, &path));
        }
        self.callers
            .take(&format!("subject {}", caller.subject), received)
            .map_err(|wait| limited(&format!("calls of {}", caller.subject), wait))?;

        let (parts, body) = request.into_parts();
        let message = read_request(body, self.max_message_bytes).await?;
        let mut request = Request::from_parts(parts, Body::new(Full::new(message)));
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

    async fn authenticate(&self, headers: &HeaderMap) -> Result<Caller, AuthError> {
        let value = match headers.get(http::header::AUTHORIZATION) {
            None => None,
            Some(value) if value.len() > MAX_TOKEN_BYTES => return Err(AuthError::Malformed),
            Some(value) => Some(value.to_str().map_err(|_| AuthError::Malformed)?),
        };
        let token = bearer(value)?;
        let verifier = self
            .verifier
            .as_ref()
            .ok_or_else(|| AuthError::Keys("the gateway has no verification keys configured".into()))?;
        verifier.verify(token).await
    }
}

/// The `reason` label of `rewards_edge_refusals_total` for a refusal.
fn refusal_reason(refusal: &Status) -> &'static str {
    use tonic::Code;
    match refusal.code() {
        Code::Unauthenticated => "unauthenticated",
        Code::PermissionDenied => "permission_denied",
        Code::ResourceExhausted if refusal.message().starts_with("rate limit") => "rate_limited",
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
    let forged: Vec<http::HeaderName> =
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
                // Admin APIs are not routed by the gateway at all.
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
        let caller = |roles: &[Role]| Caller { subject: "someone".into(), roles: roles.iter().copied().collect() };
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
