//! What the gateway serves to browsers, on its one port:
//!
//! - **gRPC-Web** (binary and text), for the player APIs only. It is
//!   translated to gRPC *before* the edge policy ([`crate::edge`]), so a
//!   browser's call meets every edge rule unchanged — token, roles, the
//!   caller's rate limit, size limits, deadlines — and `WatchMyPage` streams
//!   as it does over gRPC. Health, reflection, operator and internal methods
//!   are not served to browsers.
//! - **CORS** for the origins configured (`GATEWAY_CORS_ORIGINS`), none by
//!   default: the page is served from the gateway's own origin and needs
//!   none. A gRPC-Web call from any other origin is refused.
//! - **The page** (`GATEWAY_WEB_ROOT`, the built `web/` app): read into
//!   memory once at start, served at `/` with its assets (pre-compressed
//!   copies when the browser takes gzip), and `/web-config.json`, which tells
//!   the page how players sign in.
//! - **The development sign-in** (`GATEWAY_DEV_SIGN_IN_DIR`, off by default):
//!   `POST /dev/sign-in` signs a token for the player id typed in, with the
//!   local development key. It exists for `./dev up` only: the gateway
//!   refuses to start with it unless it listens on loopback, and its tokens
//!   verify only where that key's JWKS is trusted.

use std::convert::Infallible;
use std::path::PathBuf;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use futures::future::BoxFuture;
use http::header::{self, HeaderValue};
use http::{Method, Request, Response, StatusCode, Version};
use http_body_util::Full;
use platform::config::{ConfigError, Env};
use tonic::Status;
use tonic::body::Body;
use tower::{Layer as _, Service, ServiceExt as _};
use tower_http::cors::{AllowOrigin, Cors, CorsLayer};

use crate::edge::{Access, access_of};

mod sign_in;
mod site;

use site::Site;

/// How the gateway serves browsers.
#[derive(Debug, Clone, Default)]
pub struct WebConfig {
    /// The built page served at `/` (`GATEWAY_WEB_ROOT`); none: no page.
    pub root: Option<PathBuf>,
    /// Origins besides the gateway's own that may call it with gRPC-Web
    /// (`GATEWAY_CORS_ORIGINS`, comma-separated `scheme://host[:port]`).
    pub cors_origins: Vec<String>,
    /// Where the development issuer keeps its key (`GATEWAY_DEV_SIGN_IN_DIR`,
    /// `.run/auth` under `./dev up`); none (the default): no development sign-in.
    pub dev_sign_in: Option<PathBuf>,
    /// The identity provider the page signs players in with.
    pub oidc: Option<OidcSettings>,
}

/// The OpenID Connect settings the page signs players in with
/// (authorization code flow with PKCE, a public client).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct OidcSettings {
    /// The issuer URL, whose `/.well-known/openid-configuration` the page reads
    /// (`GATEWAY_OIDC_AUTHORITY`).
    pub authority: String,
    /// The page's client id at the provider (`GATEWAY_OIDC_CLIENT_ID`).
    pub client_id: String,
    /// Scopes asked for (`GATEWAY_OIDC_SCOPE`, default `openid`).
    pub scope: String,
}

impl WebConfig {
    /// Reads the variables named on each field from `env`.
    ///
    /// # Errors
    /// When a variable is unusable (an origin with a path, half the OIDC settings).
    pub fn read(env: &Env) -> Result<Self, ConfigError> {
        let origins: String = env.or("GATEWAY_CORS_ORIGINS", String::new())?;
        let authority: Option<String> = env.optional("GATEWAY_OIDC_AUTHORITY")?;
        let client_id: Option<String> = env.optional("GATEWAY_OIDC_CLIENT_ID")?;
        let oidc = match (authority, client_id) {
            (None, None) => None,
            (Some(authority), Some(client_id)) => {
                Some(OidcSettings { authority, client_id, scope: env.or("GATEWAY_OIDC_SCOPE", "openid".to_owned())? })
            }
            (None, Some(_)) => return Err(ConfigError::new("GATEWAY_OIDC_AUTHORITY", "", "required with a client id")),
            (Some(_), None) => {
                return Err(ConfigError::new("GATEWAY_OIDC_CLIENT_ID", "", "required with an authority"));
            }
        };
        Ok(Self {
            root: env.optional("GATEWAY_WEB_ROOT")?,
            cors_origins: origins.split(',').map(str::trim).filter(|o| !o.is_empty()).map(str::to_owned).collect(),
            dev_sign_in: env.optional("GATEWAY_DEV_SIGN_IN_DIR")?,
            oidc,
        })
    }
}

/// Why the browser side cannot start.
#[derive(Debug, thiserror::Error)]
pub enum WebError {
    #[error("GATEWAY_CORS_ORIGINS: {0:?} is not an origin (scheme://host[:port], no path, no wildcard)")]
    Origin(String),
    #[error("the page in {root} cannot be read")]
    Page {
        root: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("the page in {0} has no index.html (build it: npm --prefix web run build)")]
    NoIndex(PathBuf),
    #[error("the development sign-in signs tokens for anyone: it is only served on a loopback address, not on {0}")]
    DevSignInExposed(std::net::SocketAddr),
    #[error("no development key in {0} (`./dev up` makes one in .run/auth)")]
    NoDevKey(PathBuf),
    #[error("the development key cannot be read")]
    DevKey(#[source] anyhow::Error),
    #[error("set either the development sign-in or OIDC, not both")]
    TwoSignIns,
    #[error("GATEWAY_OIDC_AUTHORITY: {0:?} is not an https URL (http only on loopback)")]
    Authority(String),
}

/// Everything the browser side serves, read once at start.
#[derive(Debug)]
pub struct Web {
    site: Option<Site>,
    /// `/web-config.json`.
    settings: Bytes,
    /// The `Content-Security-Policy` of the page.
    csp: HeaderValue,
    dev: Option<dev_issuer::DevIssuer>,
    origins: Vec<HeaderValue>,
}

impl Web {
    /// Reads the page and the development key as configured.
    ///
    /// # Errors
    /// See [`WebError`].
    pub fn load(config: &WebConfig, addr: std::net::SocketAddr) -> Result<Self, WebError> {
        let origins = config.cors_origins.iter().map(|o| parse_origin(o)).collect::<Result<Vec<_>, _>>()?;
        if config.dev_sign_in.is_some() && config.oidc.is_some() {
            return Err(WebError::TwoSignIns);
        }
        let dev = match &config.dev_sign_in {
            None => None,
            Some(_) if !addr.ip().is_loopback() => return Err(WebError::DevSignInExposed(addr)),
            Some(dir) if !dir.join("signing-key.pem").exists() => return Err(WebError::NoDevKey(dir.clone())),
            Some(dir) => Some(dev_issuer::DevIssuer::create_or_load(dir).map_err(WebError::DevKey)?),
        };
        let mut connect = "'self'".to_owned();
        if let Some(oidc) = &config.oidc {
            let origin = origin_of(&oidc.authority).ok_or_else(|| WebError::Authority(oidc.authority.clone()))?;
            connect = format!("'self' {origin}");
        }
        let settings = match (&dev, &config.oidc) {
            (Some(_), _) => serde_json::json!({ "signIn": "development" }),
            (None, Some(oidc)) => serde_json::json!({ "signIn": "oidc", "oidc": oidc }),
            (None, None) => serde_json::json!({ "signIn": "none" }),
        };
        let csp = format!(
            "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src {connect}; \
             manifest-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
        );
        let site = match &config.root {
            None => None,
            Some(root) => Some(Site::load(root)?),
        };
        Ok(Self {
            site,
            settings: Bytes::from(settings.to_string()),
            // Built from validated origins only: always a valid header value.
            csp: HeaderValue::from_str(&csp).map_err(|_| WebError::Origin(connect))?,
            dev,
            origins,
        })
    }

    /// Whether a page is served.
    pub fn serves_page(&self) -> bool {
        self.site.is_some()
    }
}

/// `scheme://host[:port]` as a header value, or why not.
fn parse_origin(origin: &str) -> Result<HeaderValue, WebError> {
    let refused = || WebError::Origin(origin.to_owned());
    let uri: http::Uri = origin.parse().map_err(|_| refused())?;
    let plain = uri.scheme().is_some()
        && uri.authority().is_some()
        && uri.path_and_query().is_none_or(|p| p.as_str() == "/" || p.as_str().is_empty())
        && !origin.ends_with('/');
    if !plain || !matches!(uri.scheme_str(), Some("http" | "https")) {
        return Err(refused());
    }
    HeaderValue::from_str(origin).map_err(|_| refused())
}

/// The origin of an identity provider's URL: https, or http on loopback.
fn origin_of(url: &str) -> Option<String> {
    let uri: http::Uri = url.parse().ok()?;
    let host = uri.host()?;
    let loopback = host == "localhost" || host.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback());
    match uri.scheme_str()? {
        "https" => {}
        "http" if loopback => {}
        _ => return None,
    }
    Some(format!("{}://{}", uri.scheme_str()?, uri.authority()?))
}

/// Whether the player APIs' method at `path` is served over gRPC-Web.
pub fn served_to_browsers(path: &str) -> bool {
    matches!(access_of(path), Some(Access::SignedIn | Access::PlayerData | Access::PlayerAction))
}

/// Splits browser traffic from gRPC in front of the edge policy (see the
/// module documentation).
#[derive(Debug, Clone)]
pub struct Front<S> {
    /// gRPC: the edge policy and the routes behind it.
    grpc: S,
    /// gRPC-Web and its CORS preflights: translated, then the same edge policy.
    grpc_web: Cors<tonic_web::GrpcWebService<BrowserPolicy<S>>>,
    web: Arc<Web>,
}

impl<S: Clone> Front<S> {
    /// Serves browsers from `web`, and gRPC (and translated gRPC-Web) with `grpc`.
    pub fn new(grpc: S, web: Arc<Web>) -> Self {
        let cors = CorsLayer::new()
            .allow_origin(AllowOrigin::list(web.origins.clone()))
            .allow_methods([Method::POST])
            .allow_headers([
                header::AUTHORIZATION,
                header::CONTENT_TYPE,
                http::HeaderName::from_static("x-grpc-web"),
                http::HeaderName::from_static("x-user-agent"),
                http::HeaderName::from_static("grpc-timeout"),
            ])
            // What a gRPC-Web client reads of an answer whose status came in its headers.
            .expose_headers([
                http::HeaderName::from_static("grpc-status"),
                http::HeaderName::from_static("grpc-message"),
                http::HeaderName::from_static("grpc-status-details-bin"),
                http::HeaderName::from_static(platform::resilience::RETRY_AFTER_MS),
            ])
            .max_age(Duration::from_secs(600));
        let policy = BrowserPolicy { inner: grpc.clone(), web: web.clone() };
        Self { grpc_web: cors.layer(tonic_web::GrpcWebLayer::new().layer(policy)), grpc, web }
    }
}

fn is_grpc_web(request: &Request<Body>) -> bool {
    content_type_of(request).is_some_and(|ct| ct.starts_with("application/grpc-web"))
}

fn content_type_of(request: &Request<Body>) -> Option<&str> {
    request.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok())
}

fn is_preflight(request: &Request<Body>) -> bool {
    request.method() == Method::OPTIONS && request.headers().contains_key(header::ACCESS_CONTROL_REQUEST_METHOD)
}

impl<S> Service<Request<Body>> for Front<S>
where
    S: Service<Request<Body>, Response = Response<Body>, Error = Infallible> + Clone + Send + 'static,
    S::Future: Send,
{
    type Response = Response<Body>;
    type Error = Infallible;
    type Future = BoxFuture<'static, Result<Response<Body>, Infallible>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.grpc.poll_ready(cx)
    }

    fn call(&mut self, request: Request<Body>) -> Self::Future {
        if is_grpc_web(&request) || is_preflight(&request) {
            return Box::pin(self.grpc_web.clone().oneshot(request));
        }
        if content_type_of(&request).is_some_and(|ct| ct.starts_with("application/grpc")) {
            if request.version() != Version::HTTP_2 {
                return Box::pin(async {
                    Ok(plain(StatusCode::HTTP_VERSION_NOT_SUPPORTED, "gRPC needs HTTP/2; browsers use gRPC-Web\n"))
                });
            }
            // See tower-rs/tower#547: call the instance that was polled ready.
            let clone = self.grpc.clone();
            let mut grpc = std::mem::replace(&mut self.grpc, clone);
            return Box::pin(grpc.call(request));
        }
        let web = self.web.clone();
        Box::pin(async move { Ok(web.serve(request).await) })
    }
}

impl Web {
    async fn serve(&self, request: Request<Body>) -> Response<Body> {
        let path = request.uri().path();
        match (request.method(), path) {
            (&Method::GET | &Method::HEAD, "/web-config.json") => {
                let head = request.method() == Method::HEAD;
                let mut response = body_of(self.settings.clone(), head);
                let headers = response.headers_mut();
                headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
                headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
                response
            }
            (&Method::POST, "/dev/sign-in") => match &self.dev {
                Some(issuer) => sign_in::dev_sign_in(issuer, request).await,
                None => plain(StatusCode::NOT_FOUND, "no development sign-in here\n"),
            },
            (&Method::GET | &Method::HEAD, _) => match &self.site {
                Some(site) => site.respond(&request, &self.csp),
                None => plain(StatusCode::NOT_FOUND, "this gateway serves no page (GATEWAY_WEB_ROOT is not set)\n"),
            },
            _ => plain(StatusCode::NOT_FOUND, "not found\n"),
        }
    }
}

fn body_of(bytes: Bytes, head: bool) -> Response<Body> {
    let length = bytes.len();
    let mut response = Response::new(if head { Body::empty() } else { Body::new(Full::new(bytes)) });
    response.headers_mut().insert(header::CONTENT_LENGTH, HeaderValue::from(length));
    response
}

fn plain(status: StatusCode, text: &'static str) -> Response<Body> {
    let mut response = body_of(Bytes::from_static(text.as_bytes()), false);
    *response.status_mut() = status;
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=utf-8"));
    response
}

/// What gRPC-Web may call, and from where: the player APIs, from the
/// gateway's own origin or one configured. Sits between the gRPC-Web
/// translation and the edge policy.
#[derive(Debug, Clone)]
pub struct BrowserPolicy<S> {
    inner: S,
    web: Arc<Web>,
}

impl<S> Service<Request<Body>> for BrowserPolicy<S>
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

    fn call(&mut self, mut request: Request<Body>) -> Self::Future {
        let path = request.uri().path().to_owned();
        let refusal = if !served_to_browsers(&path) {
            Some(("not_for_browsers", Status::permission_denied(format!("{path} is not served over gRPC-Web"))))
        } else if !self.origin_allowed(&request) {
            let origin = request.headers().get(header::ORIGIN).and_then(|o| o.to_str().ok()).unwrap_or_default();
            Some(("origin", Status::permission_denied(format!("calls from the origin {origin} are not allowed"))))
        } else {
            None
        };
        if let Some((reason, status)) = refusal {
            platform::metrics::metrics().edge_refusals.get_or_create(&[("reason", reason.to_owned())]).inc();
            return Box::pin(async move { Ok(status.into_http()) });
        }
        // A gRPC call, whatever HTTP the browser used: upstream channels speak HTTP/2.
        *request.version_mut() = Version::HTTP_2;
        // See tower-rs/tower#547: call the instance that was polled ready.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        Box::pin(inner.call(request))
    }
}

impl<S> BrowserPolicy<S> {
    /// No `Origin` (not a browser), the gateway's own origin, or one configured.
    fn origin_allowed(&self, request: &Request<Body>) -> bool {
        let Some(origin) = request.headers().get(header::ORIGIN) else { return true };
        if self.web.origins.contains(origin) {
            return true;
        }
        let host = request.headers().get(header::HOST).and_then(|h| h.to_str().ok()).or_else(|| {
            // HTTP/2 carries the host in the URI's authority.
            request.uri().authority().map(http::uri::Authority::as_str)
        });
        let own = origin.to_str().ok().and_then(|o| o.split_once("://")).map(|(_, authority)| authority);
        own.is_some() && own == host
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn origins_are_scheme_host_and_port_only() {
        assert!(parse_origin("http://localhost:5173").is_ok());
        assert!(parse_origin("https://play.example.com").is_ok());
        for bad in ["*", "localhost:5173", "http://localhost:5173/", "http://a.example/page", "ftp://a.example"] {
            assert!(parse_origin(bad).is_err(), "{bad} was accepted");
        }
    }

    #[test]
    fn identity_providers_are_https_except_on_loopback() {
        assert_eq!(origin_of("https://id.example.com/realms/game").as_deref(), Some("https://id.example.com"));
        assert_eq!(origin_of("http://127.0.0.1:8081/").as_deref(), Some("http://127.0.0.1:8081"));
        assert_eq!(origin_of("http://id.example.com/"), None);
    }

    #[test]
    fn only_the_player_apis_are_served_to_browsers() {
        assert!(served_to_browsers("/game.mypage.v1.MyPageService/WatchMyPage"));
        assert!(served_to_browsers("/game.wallet.v1.WalletService/ExchangeReward"));
        assert!(served_to_browsers("/game.gift.v1.GiftService/ListProducts"));
        assert!(!served_to_browsers("/game.settlement.v1.SettlementService/ListSettlements"));
        assert!(!served_to_browsers("/game.gift.v1.GiftService/Exchange"));
        assert!(!served_to_browsers("/grpc.reflection.v1.ServerReflection/ServerReflectionInfo"));
        assert!(!served_to_browsers("/grpc.health.v1.Health/Check"));
    }
}
