//! The development sign-in (`POST /dev/sign-in`): the development issuer
//! signs a player's token for the id typed in. Only under `./dev up`: see
//! the parent module for what keeps it there.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http::header::{self, HeaderValue};
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt as _, Limited};
use kernel::CustomerId;
use tonic::body::Body;

use super::body_of;

/// The longest development token asked for: the development issuer's own lifetime.
const DEV_TOKEN_MAX: Duration = dev_issuer::TOKEN_LIFETIME;

/// A sign-in request: who, and for how long (at most an hour).
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct SignIn {
    customer_id: String,
    #[serde(default)]
    lifetime_secs: Option<u64>,
}

/// Signs a player's token with the development key.
pub(super) async fn dev_sign_in(issuer: &dev_issuer::DevIssuer, request: Request<Body>) -> Response<Body> {
    let json = |status: StatusCode, value: serde_json::Value| {
        let mut response = body_of(Bytes::from(value.to_string()), false);
        *response.status_mut() = status;
        let headers = response.headers_mut();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        response
    };
    let refuse = |why: String| json(StatusCode::BAD_REQUEST, serde_json::json!({ "error": why }));
    let Ok(body) = Limited::new(request.into_body(), 1024).collect().await else {
        return refuse("the request must be a small JSON object".into());
    };
    let sign_in: SignIn = match serde_json::from_slice(&body.to_bytes()) {
        Ok(sign_in) => sign_in,
        Err(error) => return refuse(format!("expected {{\"customer_id\": \"…\"}}: {error}")),
    };
    let customer = match CustomerId::parse(sign_in.customer_id.trim()) {
        Ok(customer) => customer,
        Err(error) => return refuse(format!("player id: {error}")),
    };
    let lifetime = match sign_in.lifetime_secs.map(Duration::from_secs) {
        None => DEV_TOKEN_MAX,
        Some(lifetime) if lifetime.is_zero() || lifetime > DEV_TOKEN_MAX => {
            return refuse(format!("lifetime_secs must be between 1 and {}", DEV_TOKEN_MAX.as_secs()));
        }
        Some(lifetime) => lifetime,
    };
    let now = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or_default();
    let token = issuer.token(customer.as_str(), &["player"], lifetime);
    tracing::info!(customer_id = %customer, lifetime_secs = lifetime.as_secs(), "development sign-in");
    json(
        StatusCode::OK,
        serde_json::json!({ "customer_id": customer.as_str(), "token": token, "expires_at": now + lifetime.as_secs() }),
    )
}
