//! Floods of unary calls at full speed from one attacker: forged
//! signatures (a real header and key id, a made-up signature, a fresh one
//! every call so no cache of refused tokens helps), calls with no token, and
//! one valid player's calls far above their rate limit.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use api::game::mypage::v1::{GetMyPageRequest, my_page_service_client::MyPageServiceClient};
use tokio::task::JoinSet;
use tokio::time::Instant;

use super::origin::channel;
use super::{Arena, Findings};

/// What token each call of a flood carries.
#[derive(Debug, Clone)]
pub enum Credential {
    /// None at all.
    Missing,
    /// This valid token, every call.
    Valid(String),
    /// A valid token's header and claims with a random signature of the
    /// right length, different every call.
    Forged { signed_part: String },
}

impl Credential {
    fn bearer(&self) -> Option<String> {
        match self {
            Self::Missing => None,
            Self::Valid(token) => Some(format!("Bearer {token}")),
            Self::Forged { signed_part } => Some(format!("Bearer {signed_part}.{}", random_signature())),
        }
    }
}

/// 64 random bytes (an ES256 signature's length) in base64url: a signature
/// that decodes, so only the curve arithmetic can refuse it.
fn random_signature() -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut signature: String = (0..85).map(|_| char::from(ALPHABET[rand::random_range(0..ALPHABET.len())])).collect();
    // 64 bytes are 512 bits: the 86th character carries 2 of them, and its
    // other 4 must be zero for the base64 to be canonical.
    signature.push(char::from(ALPHABET[16 * rand::random_range(0..4)]));
    signature
}

/// A forged credential built from a real token of `customer`.
pub fn forged(arena: &Arena, customer: &str) -> Credential {
    let token = arena.identity.player(customer);
    let signed_part = token.rsplit_once('.').map_or(token.as_str(), |(signed, _)| signed).to_owned();
    Credential::Forged { signed_part }
}

/// Calls `GetMyPage` of `customer` with `credential` as fast as the gateway
/// answers, `arena.scale.flood_connections` connections × `flood_in_flight`
/// calls each, from one fresh address, for `duration`.
///
/// # Errors
/// When the first connection cannot be made.
pub async fn flood(
    arena: &Arena,
    credential: Credential,
    customer: &str,
    duration: Duration,
) -> anyhow::Result<Findings> {
    let origin = arena.origins.fresh();
    let until = Instant::now() + duration;
    let credential = Arc::new(credential);
    let mut workers = JoinSet::new();
    for _ in 0..arena.scale.flood_connections {
        let client = MyPageServiceClient::new(channel(origin, arena.gateway).await?);
        for _ in 0..arena.scale.flood_in_flight {
            let (mut client, credential, customer) = (client.clone(), credential.clone(), customer.to_owned());
            workers.spawn(async move {
                let mut outcomes: BTreeMap<String, u64> = BTreeMap::new();
                while Instant::now() < until {
                    let mut request = tonic::Request::new(GetMyPageRequest { customer_id: customer.clone() });
                    if let Some(bearer) = credential.bearer().and_then(|b| b.parse().ok()) {
                        request.metadata_mut().insert("authorization", bearer);
                    }
                    request.set_timeout(Duration::from_secs(5));
                    let outcome = match client.get_my_page(request).await {
                        Ok(_) => "OK".to_owned(),
                        Err(status) => format!("{:?}", status.code()),
                    };
                    *outcomes.entry(outcome).or_default() += 1;
                }
                outcomes
            });
        }
    }
    let mut outcomes: BTreeMap<String, u64> = BTreeMap::new();
    while let Some(done) = workers.join_next().await {
        for (outcome, count) in done.unwrap_or_default() {
            *outcomes.entry(outcome).or_default() += count;
        }
    }
    let calls: u64 = outcomes.values().sum();
    let refused = calls - outcomes.get("OK").copied().unwrap_or(0);
    let mut findings = Findings { refused, ..Findings::default() };
    findings.fact(format!(
        "{calls} attacking calls from {origin} ({} connections × {} in flight): {}",
        arena.scale.flood_connections,
        arena.scale.flood_in_flight,
        outcomes.iter().map(|(o, n)| format!("{o} {n}")).collect::<Vec<_>>().join(", ")
    ));
    Ok(findings)
}
