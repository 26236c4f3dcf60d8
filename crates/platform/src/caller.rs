//! Who is calling a service, and what they may touch: authorization where
//! the data lives.
//!
//! The gateway forwards the caller's original bearer token; every service
//! verifies it again against the same JWKS ([`AuthenticateLayer`]) and never
//! trusts an identity header, so a client that reaches a service by another
//! path than the gateway gains nothing by sending one. A call whose token does
//! not verify is refused before it reaches the service's code; a call with no
//! token reaches it as anonymous, and each RPC decides: the player APIs ask
//! [`caller`] and refuse it, `game.gift.v1.GiftService/Exchange` (the
//! wallet's own call, with no player token) allows only it.
//!
//! Health and reflection are never checked: probes and tools carry no token.
//!
//! The rules, in one place for every service:
//! - a player acts ([`require_player`]) and reads ([`require_reader`]) for
//!   their own customer id only (the token's subject);
//! - an operator reads anyone's data, and alone reads settlements
//!   ([`require_operator`]); an operator never acts for a player.

use std::convert::Infallible;
use std::task::{Context, Poll};

use futures::future::BoxFuture;
use futures::{Stream, StreamExt as _};
use http::{Request, Response};
use tonic::Status;
use tonic::body::Body;
use tower::{Layer, Service};

use crate::auth::{AuthError, Caller, Role, Verifier, bearer};
use kernel::CustomerId;

/// Whether a path is served to everyone with no token: health and reflection.
pub fn is_open(path: &str) -> bool {
    path.starts_with("/grpc.health.v1.Health/") || path.starts_with("/grpc.reflection.")
}

/// Verifies the bearer token of every call but health and reflection, and
/// hands the verified [`Caller`] to the service in the request's extensions.
#[derive(Debug, Clone)]
pub struct AuthenticateLayer {
    /// `None` when no JWKS is configured: every token is then refused, so a
    /// misconfigured service fails closed instead of trusting anyone.
    verifier: Option<Verifier>,
}

impl AuthenticateLayer {
    /// Verifies with `verifier`; with `None`, refuses every token.
    pub fn new(verifier: Option<Verifier>) -> Self {
        Self { verifier }
    }
}

impl<S> Layer<S> for AuthenticateLayer {
    type Service = Authenticate<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Authenticate { inner, verifier: self.verifier.clone() }
    }
}

/// See [`AuthenticateLayer`].
#[derive(Debug, Clone)]
pub struct Authenticate<S> {
    inner: S,
    verifier: Option<Verifier>,
}

impl<S, B> Service<Request<B>> for Authenticate<S>
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

    fn call(&mut self, mut request: Request<B>) -> Self::Future {
        // See tower-rs/tower#547: call the instance that was polled ready.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        if is_open(request.uri().path()) {
            return Box::pin(inner.call(request));
        }
        let verifier = self.verifier.clone();
        Box::pin(async move {
            let header = request.headers().get(http::header::AUTHORIZATION).map(|v| v.to_str());
            let Some(header) = header else { return inner.call(request).await };
            let verified = match (header, &verifier) {
                (Err(_), _) => Err(AuthError::Malformed),
                (Ok(_), None) => Err(AuthError::Keys("this service has no verification keys configured".into())),
                (Ok(value), Some(verifier)) => match bearer(Some(value)) {
                    Ok(token) => verifier.verify(token).await,
                    Err(error) => Err(error),
                },
            };
            match verified {
                Ok(caller) => {
                    request.extensions_mut().insert(caller);
                    inner.call(request).await
                }
                Err(error) => {
                    tracing::debug!(%error, path = %request.uri().path(), "token refused");
                    Ok(Status::from(error).into_http())
                }
            }
        })
    }
}

/// The verified caller of `request`.
///
/// # Errors
/// UNAUTHENTICATED when the call carries no token.
pub fn caller<T>(request: &tonic::Request<T>) -> Result<Caller, Status> {
    request.extensions().get::<Caller>().cloned().ok_or_else(|| Status::from(AuthError::Missing))
}

/// Whether the call carries a verified end-user token at all.
pub fn has_caller<T>(request: &tonic::Request<T>) -> bool {
    request.extensions().get::<Caller>().is_some()
}

/// `caller` acts for `customer`: only the player themself may.
///
/// # Errors
/// PERMISSION_DENIED for anyone else, operators included.
pub fn require_player(caller: &Caller, customer: &CustomerId) -> Result<(), Status> {
    if caller.has(Role::Player) && caller.subject == customer.as_str() {
        return Ok(());
    }
    Err(Status::permission_denied(if caller.has(Role::Player) {
        format!("you are {}: you may act for yourself only, not for customer {customer}", caller.subject)
    } else {
        format!("only the player {customer} may do this; the token of {} is not a player's", caller.subject)
    }))
}

/// `caller` reads `customer`'s data: the player themself, or an operator.
///
/// # Errors
/// PERMISSION_DENIED for anyone else.
pub fn require_reader(caller: &Caller, customer: &CustomerId) -> Result<(), Status> {
    if caller.has(Role::Operator) || (caller.has(Role::Player) && caller.subject == customer.as_str()) {
        return Ok(());
    }
    Err(Status::permission_denied(format!(
        "you are {}: you may read your own data only, not that of customer {customer}",
        caller.subject
    )))
}

/// `caller` reads what only operators see (settlements).
///
/// # Errors
/// PERMISSION_DENIED without the operator role.
pub fn require_operator(caller: &Caller) -> Result<(), Status> {
    if caller.has(Role::Operator) {
        return Ok(());
    }
    Err(Status::permission_denied(format!("{} lacks the operator role this needs", caller.subject)))
}

/// `stream`, served on the strength of `caller`'s token: it ends with
/// UNAUTHENTICATED when the token expires (its `exp`), so an open stream
/// never outlives the token that opened it. The caller signs in again and
/// opens a new one.
pub fn while_token_valid<T, S>(caller: &Caller, stream: S) -> impl Stream<Item = Result<T, Status>> + Send + 'static
where
    S: Stream<Item = Result<T, Status>> + Send + 'static,
    T: Send + 'static,
{
    let expires = std::time::UNIX_EPOCH.checked_add(std::time::Duration::from_secs(caller.expires));
    let left = expires.map(|at| at.duration_since(std::time::SystemTime::now()).unwrap_or_default());
    // An expiry too far to represent never comes.
    let expiry: BoxFuture<'static, ()> = match left.and_then(|left| tokio::time::Instant::now().checked_add(left)) {
        Some(at) => Box::pin(tokio::time::sleep_until(at)),
        None => Box::pin(std::future::pending()),
    };
    let state = (Box::pin(stream), expiry, false);
    futures::stream::unfold(state, |(mut stream, mut expiry, ended)| async move {
        if ended {
            return None;
        }
        tokio::select! {
            biased;
            () = &mut expiry => {
                let status = Status::from(AuthError::Expired);
                Some((Err(status), (stream, expiry, true)))
            }
            next = stream.next() => next.map(|item| (item, (stream, expiry, false))),
        }
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use std::collections::BTreeSet;

    use super::*;

    fn caller(subject: &str, roles: &[Role]) -> Caller {
        Caller { subject: subject.into(), roles: roles.iter().copied().collect::<BTreeSet<_>>(), expires: u64::MAX }
    }

    fn customer(id: &str) -> CustomerId {
        CustomerId::parse(id).unwrap()
    }

    #[test]
    fn a_player_acts_and_reads_for_themself_only() {
        let player = caller("player-1", &[Role::Player]);
        assert!(require_player(&player, &customer("player-1")).is_ok());
        assert!(require_reader(&player, &customer("player-1")).is_ok());
        for refused in [require_player(&player, &customer("player-2")), require_reader(&player, &customer("player-2"))]
        {
            assert_eq!(refused.unwrap_err().code(), tonic::Code::PermissionDenied);
        }
        assert_eq!(require_operator(&player).unwrap_err().code(), tonic::Code::PermissionDenied);
    }

    #[test]
    fn an_operator_reads_everyone_and_acts_for_no_one() {
        let operator = caller("operator", &[Role::Operator]);
        assert!(require_reader(&operator, &customer("player-2")).is_ok());
        assert!(require_operator(&operator).is_ok());
        assert_eq!(require_player(&operator, &customer("player-2")).unwrap_err().code(), tonic::Code::PermissionDenied);
    }

    #[test]
    fn a_subject_without_the_player_role_is_no_player() {
        let nobody = caller("player-1", &[]);
        assert!(require_player(&nobody, &customer("player-1")).is_err());
        assert!(require_reader(&nobody, &customer("player-1")).is_err());
    }

    #[test]
    fn only_health_and_reflection_are_open() {
        assert!(is_open("/grpc.health.v1.Health/Check"));
        assert!(is_open("/grpc.reflection.v1.ServerReflection/ServerReflectionInfo"));
        assert!(is_open("/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo"));
        assert!(!is_open("/game.wallet.v1.WalletService/GetWallet"));
        assert!(!is_open("/grpc.healthz/Check"));
    }
}
