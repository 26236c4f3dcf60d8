//! Who is calling: bearer JWTs verified against the keys of a JWKS.
//!
//! Only RS256 and ES256 are accepted, and only with a key of the matching
//! type named by the token's `kid`: `alg: none`, HMAC tokens (the
//! "HS256 signed with the public key" confusion) and unknown keys are refused
//! before any signature is checked. Issuer, audience, expiry and not-before
//! are checked with a small clock skew.
//!
//! Refusing costs less than verifying: a token is taken apart and checked
//! for everything that needs no cryptography first — its shape, a known key
//! id, the algorithm of that key, a signature of exactly that key's length,
//! issuer, audience and validity period — and only a token that passes all
//! of that costs a signature check. A token refused lately is refused again
//! from memory, and one verified lately is trusted from memory. The JWKS comes from a file (local
//! runs, a mounted Secret) or a URL (production), and is read again
//! periodically and whenever a token names a key not seen yet, so a key
//! rotation needs no restart.

use std::collections::{BTreeSet, HashMap};
use std::hash::{BuildHasher as _, RandomState};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, JwkSet};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;
use tokio::sync::RwLock;

use crate::config::{ConfigError, Env};

/// Where the verification keys come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JwksSource {
    /// A JWKS document on disk (`JWKS_FILE`).
    File(PathBuf),
    /// A JWKS endpoint (`JWKS_URL`), plain HTTP inside a cluster or HTTPS.
    Url(String),
}

/// How tokens are verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthConfig {
    pub jwks: JwksSource,
    /// The only accepted `iss` (`JWT_ISSUER`).
    pub issuer: String,
    /// The `aud` a token must name (`JWT_AUDIENCE`).
    pub audience: String,
    /// Clock skew tolerated on `exp` and `nbf` (`JWT_LEEWAY_MS`).
    pub leeway: Duration,
    /// The JWKS is read again this often (`JWKS_REFRESH_MS`).
    pub refresh: Duration,
}

impl AuthConfig {
    /// The configuration from `JWKS_FILE` or `JWKS_URL`, `JWT_ISSUER`,
    /// `JWT_AUDIENCE`; `None` when neither JWKS variable is set (no
    /// authentication: local development and tests only).
    ///
    /// # Errors
    /// When the variables are incomplete or unusable.
    pub fn read(env: &Env) -> Result<Option<Self>, ConfigError> {
        let file: Option<PathBuf> = env.optional("JWKS_FILE")?;
        let url: Option<String> = env.optional("JWKS_URL")?;
        let jwks = match (file, url) {
            (None, None) => return Ok(None),
            (Some(_), Some(url)) => {
                return Err(ConfigError::new("JWKS_URL", url, "set JWKS_FILE or JWKS_URL, not both"));
            }
            (Some(file), None) => JwksSource::File(file),
            (None, Some(url)) => JwksSource::Url(url),
        };
        let issuer: Option<String> = env.optional("JWT_ISSUER")?;
        let audience: Option<String> = env.optional("JWT_AUDIENCE")?;
        Ok(Some(Self {
            jwks,
            issuer: issuer.ok_or_else(|| ConfigError::new("JWT_ISSUER", "", "required with a JWKS"))?,
            audience: audience.ok_or_else(|| ConfigError::new("JWT_AUDIENCE", "", "required with a JWKS"))?,
            leeway: env.millis("JWT_LEEWAY_MS", Duration::from_secs(30))?,
            refresh: env.millis("JWKS_REFRESH_MS", Duration::from_secs(300))?,
        }))
    }
}

/// What a caller may do beyond its own data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Role {
    /// Reads and exchanges its own missions, wallet and page.
    Player,
    /// Reads everyone's data, settlements and dead letters.
    Operator,
    /// Another service of the mesh acting on its own (e.g. the wallet's re-driver).
    Service,
}

/// A verified caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// The token's `sub`: a customer id for players, a service name for services.
    pub subject: String,
    pub roles: BTreeSet<Role>,
    /// The token's `exp` (seconds since the epoch): what is served on the
    /// strength of this token, a watch included, ends then.
    pub expires: u64,
}

impl Caller {
    /// Whether the caller has `role`.
    pub fn has(&self, role: Role) -> bool {
        self.roles.contains(&role)
    }
}

/// Why a token was refused. Messages are shown to the caller: they say what
/// is wrong, never which keys exist.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    #[error("missing bearer token: send `authorization: Bearer <JWT>`")]
    Missing,
    #[error("malformed bearer token")]
    Malformed,
    #[error("token algorithm {0} is not accepted (RS256 or ES256 only)")]
    Algorithm(String),
    #[error("token has no key id (kid)")]
    NoKeyId,
    #[error("token signed with an unknown key")]
    UnknownKey,
    #[error("token signature is invalid")]
    Signature,
    #[error("token has expired")]
    Expired,
    #[error("token is not valid yet")]
    NotYetValid,
    #[error("token issuer is not trusted")]
    Issuer,
    #[error("token audience is wrong")]
    Audience,
    #[error("token is invalid: {0}")]
    Invalid(String),
    #[error("verification keys unavailable: {0}")]
    Keys(String),
}

impl From<AuthError> for tonic::Status {
    fn from(error: AuthError) -> Self {
        match error {
            AuthError::Keys(_) => tonic::Status::unavailable("cannot verify tokens right now; try again later"),
            other => tonic::Status::unauthenticated(other.to_string()),
        }
    }
}

#[derive(Debug, Deserialize)]
struct Claims {
    sub: String,
    exp: u64,
    #[serde(default)]
    roles: Vec<String>,
}

/// One verification key.
#[derive(Clone)]
struct Key {
    algorithm: Algorithm,
    decoding: DecodingKey,
    /// The length of this key's signatures, base64url without padding: a
    /// token whose signature has another length is refused unverified.
    signature_chars: usize,
}

impl std::fmt::Debug for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Key").field("algorithm", &self.algorithm).finish_non_exhaustive()
    }
}

#[derive(Debug)]
struct Keys {
    by_kid: HashMap<String, Key>,
    fetched_at: Instant,
}

/// Verifies bearer tokens; cheap to clone.
#[derive(Debug, Clone)]
pub struct Verifier {
    config: Arc<AuthConfig>,
    keys: Arc<RwLock<Keys>>,
    /// Tokens that verified lately. A player sends the same token with
    /// every call for its whole life, and checking an ES256 or RS256
    /// signature costs far more than the call it guards: the gateway and the
    /// service behind it would each spend most of their CPU on it.
    verified: Arc<Mutex<HashMap<String, Verified>>>,
    /// Tokens refused lately, by a keyed hash of the token (a forger's
    /// tokens are not worth keeping whole), with why and when.
    refused: Arc<Mutex<HashMap<u64, (AuthError, Instant)>>>,
    /// The hash key of `refused`, random per process.
    refused_hasher: RandomState,
}

/// A token that verified, and until when that answer may be reused.
#[derive(Debug, Clone)]
struct Verified {
    caller: Caller,
    kid: String,
    /// The token's `exp` (seconds since the epoch).
    expires: u64,
    verified_at: Instant,
}

/// How long a verified token is trusted without checking it again: a key
/// withdrawn from the JWKS stops working within this (once the JWKS is read
/// again), however long its tokens would live.
const VERIFIED_FOR: Duration = Duration::from_secs(30);
/// Verified tokens remembered at most; beyond, the memory starts over.
const VERIFIED_MAX: usize = 50_000;
/// How long a refused token is refused from memory: short, since a token
/// of a key not published yet, or not valid yet, may be accepted soon.
const REFUSED_FOR: Duration = Duration::from_secs(10);
/// Refused tokens remembered at most; beyond, the memory starts over.
const REFUSED_MAX: usize = 20_000;

fn unix_now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// An unknown `kid` triggers at most one JWKS read per this interval, so a
/// flood of forged tokens cannot hammer the key endpoint.
const MIN_REFETCH: Duration = Duration::from_secs(10);

impl Verifier {
    /// Reads the JWKS once.
    ///
    /// # Errors
    /// When the JWKS cannot be read or holds no usable key.
    pub async fn load(config: AuthConfig) -> Result<Self, AuthError> {
        let by_kid = fetch_keys(&config.jwks).await?;
        Ok(Self {
            config: Arc::new(config),
            keys: Arc::new(RwLock::new(Keys { by_kid, fetched_at: Instant::now() })),
            verified: Arc::default(),
            refused: Arc::default(),
            refused_hasher: RandomState::new(),
        })
    }

    /// Verifies `token` (the part after `Bearer `).
    ///
    /// # Errors
    /// See [`AuthError`].
    pub async fn verify(&self, token: &str) -> Result<Caller, AuthError> {
        if let Some(answer) = self.remembered(token).await {
            return answer;
        }
        let (caller, kid, expires) = match self.check(token).await {
            Ok(checked) => checked,
            Err(error) => {
                self.remember_refusal(token, &error);
                return Err(error);
            }
        };
        let mut verified = self.verified.lock().unwrap_or_else(PoisonError::into_inner);
        if verified.len() >= VERIFIED_MAX {
            verified.clear();
        }
        verified
            .insert(token.to_owned(), Verified { caller: caller.clone(), kid, expires, verified_at: Instant::now() });
        Ok(caller)
    }

    /// The answer for `token` if it is known without checking it: it
    /// verified lately (and its key is still published), or it was refused
    /// lately. `None` when only [`Verifier::verify`] can tell.
    pub async fn remembered(&self, token: &str) -> Option<Result<Caller, AuthError>> {
        if let Some(caller) = self.verified_lately(token).await {
            return Some(Ok(caller));
        }
        let hash = self.refused_hasher.hash_one(token);
        let refused = self.refused.lock().unwrap_or_else(PoisonError::into_inner).get(&hash).cloned();
        refused.filter(|(_, at)| at.elapsed() < REFUSED_FOR).map(|(error, _)| Err(error))
    }

    fn remember_refusal(&self, token: &str, error: &AuthError) {
        // Not the token's fault: it may verify once the keys can be read.
        if matches!(error, AuthError::Keys(_)) {
            return;
        }
        let hash = self.refused_hasher.hash_one(token);
        let mut refused = self.refused.lock().unwrap_or_else(PoisonError::into_inner);
        if refused.len() >= REFUSED_MAX {
            refused.clear();
        }
        refused.insert(hash, (error.clone(), Instant::now()));
    }

    /// The caller of `token` if it verified less than [`VERIFIED_FOR`] ago,
    /// has not expired since, and its key is still published.
    async fn verified_lately(&self, token: &str) -> Option<Caller> {
        let hit = self.verified.lock().unwrap_or_else(PoisonError::into_inner).get(token).cloned()?;
        let fresh = hit.verified_at.elapsed() < VERIFIED_FOR && unix_now() < hit.expires;
        (fresh && self.keys.read().await.by_kid.contains_key(&hit.kid)).then_some(hit.caller)
    }

    /// Checks `token` in full: shape, header, key, claims, then the signature.
    async fn check(&self, token: &str) -> Result<(Caller, String, u64), AuthError> {
        let (signed, signature) = split_token(token)?;
        // A header the library cannot read may still name an algorithm it
        // does not know (`none`): say so rather than "malformed".
        let header = jsonwebtoken::decode_header(token).map_err(|_| match algorithm_name(token) {
            Some(alg) => AuthError::Algorithm(alg),
            None => AuthError::Malformed,
        })?;
        if !matches!(header.alg, Algorithm::RS256 | Algorithm::ES256) {
            return Err(AuthError::Algorithm(format!("{:?}", header.alg)));
        }
        let kid = header.kid.ok_or(AuthError::NoKeyId)?;
        let key = self.key(&kid).await?;
        // The key decides the algorithm, never the token: an RSA key only
        // verifies RS256, an EC key only ES256.
        if key.algorithm != header.alg {
            return Err(AuthError::Algorithm(format!("{:?}", header.alg)));
        }
        if signature.len() != key.signature_chars {
            return Err(AuthError::Signature);
        }
        self.precheck_claims(signed)?;
        let mut validation = Validation::new(key.algorithm);
        validation.set_issuer(&[&self.config.issuer]);
        validation.set_audience(&[&self.config.audience]);
        validation.leeway = self.config.leeway.as_secs();
        validation.validate_nbf = true;
        validation.set_required_spec_claims(&["exp", "sub", "iss", "aud"]);
        let data = jsonwebtoken::decode::<Claims>(token, &key.decoding, &validation).map_err(|e| {
            use jsonwebtoken::errors::ErrorKind;
            match e.kind() {
                ErrorKind::ExpiredSignature => AuthError::Expired,
                ErrorKind::ImmatureSignature => AuthError::NotYetValid,
                ErrorKind::InvalidIssuer => AuthError::Issuer,
                ErrorKind::InvalidAudience => AuthError::Audience,
                ErrorKind::InvalidSignature => AuthError::Signature,
                ErrorKind::MissingRequiredClaim(claim) => AuthError::Invalid(format!("missing claim {claim}")),
                _ => AuthError::Invalid(e.to_string()),
            }
        })?;
        if data.claims.sub.is_empty() {
            return Err(AuthError::Invalid("empty subject".into()));
        }
        let roles = data
            .claims
            .roles
            .iter()
            .filter_map(|r| match r.as_str() {
                "player" => Some(Role::Player),
                "operator" => Some(Role::Operator),
                "service" => Some(Role::Service),
                _ => None,
            })
            .collect();
        Ok((Caller { subject: data.claims.sub, roles, expires: data.claims.exp }, kid, data.claims.exp))
    }

    /// The claims checked before the signature, with the same rules (and
    /// leeway) as after it: a token that is expired, not valid yet, for
    /// another issuer or audience, or with no subject costs no signature check.
    fn precheck_claims(&self, signed: &str) -> Result<(), AuthError> {
        use base64::Engine as _;
        let payload = signed.split_once('.').map(|(_, payload)| payload).ok_or(AuthError::Malformed)?;
        let bytes =
            base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload).map_err(|_| AuthError::Malformed)?;
        let claims: Prechecked = serde_json::from_slice(&bytes).map_err(|_| AuthError::Malformed)?;
        let leeway = self.config.leeway.as_secs();
        let now = unix_now();
        let exp = claims.exp.ok_or_else(|| AuthError::Invalid("missing claim exp".into()))?;
        if exp.saturating_add(leeway) < now {
            return Err(AuthError::Expired);
        }
        if claims.nbf.is_some_and(|nbf| nbf > now.saturating_add(leeway)) {
            return Err(AuthError::NotYetValid);
        }
        match claims.iss {
            None => return Err(AuthError::Invalid("missing claim iss".into())),
            Some(iss) if iss != self.config.issuer => return Err(AuthError::Issuer),
            Some(_) => {}
        }
        let audience_matches = match claims.aud {
            None => return Err(AuthError::Invalid("missing claim aud".into())),
            Some(Audience::One(aud)) => aud == self.config.audience,
            Some(Audience::Many(auds)) => auds.iter().any(|aud| *aud == self.config.audience),
        };
        if !audience_matches {
            return Err(AuthError::Audience);
        }
        match claims.sub {
            None => Err(AuthError::Invalid("missing claim sub".into())),
            Some(sub) if sub.is_empty() => Err(AuthError::Invalid("empty subject".into())),
            Some(_) => Ok(()),
        }
    }

    /// The key named `kid`, reading the JWKS again when it is unknown or stale.
    async fn key(&self, kid: &str) -> Result<Key, AuthError> {
        {
            let keys = self.keys.read().await;
            let fresh = keys.fetched_at.elapsed() < self.config.refresh;
            match keys.by_kid.get(kid) {
                Some(key) if fresh => return Ok(key.clone()),
                None if keys.fetched_at.elapsed() < MIN_REFETCH => return Err(AuthError::UnknownKey),
                _ => {}
            }
        }
        let mut keys = self.keys.write().await;
        if keys.fetched_at.elapsed() >= MIN_REFETCH || !keys.by_kid.contains_key(kid) {
            match fetch_keys(&self.config.jwks).await {
                Ok(by_kid) => {
                    tracing::info!(keys = by_kid.len(), "verification keys read");
                    *keys = Keys { by_kid, fetched_at: Instant::now() };
                }
                // Keep verifying with the keys we have; rotation retries later.
                Err(error) => {
                    tracing::warn!(%error, "verification keys could not be read again");
                    keys.fetched_at = Instant::now();
                }
            }
        }
        keys.by_kid.get(kid).cloned().ok_or(AuthError::UnknownKey)
    }
}

/// The claims read before the signature is checked; the token's own types
/// are checked again, strictly, after it.
#[derive(Debug, Deserialize)]
struct Prechecked {
    exp: Option<u64>,
    nbf: Option<u64>,
    iss: Option<String>,
    aud: Option<Audience>,
    sub: Option<String>,
}

/// `aud` is one audience or a list of them (RFC 7519 §4.1.3).
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum Audience {
    One(String),
    Many(Vec<String>),
}

/// The longest token looked at: real ones are a kilobyte or two.
const MAX_TOKEN_CHARS: usize = 8 * 1024;

/// Splits a compact JWS into its signed part (`header.claims`) and its
/// signature, checking its shape: three non-empty base64url segments.
fn split_token(token: &str) -> Result<(&str, &str), AuthError> {
    if token.len() > MAX_TOKEN_CHARS {
        return Err(AuthError::Malformed);
    }
    let (signed, signature) = token.rsplit_once('.').ok_or(AuthError::Malformed)?;
    let base64url =
        |part: &str| !part.is_empty() && part.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    let mut parts = signed.split('.');
    let well_formed =
        matches!((parts.next(), parts.next(), parts.next()), (Some(h), Some(c), None) if base64url(h) && base64url(c));
    // `alg: none` has an empty signature: it is refused by its header, with
    // a message naming the algorithm.
    if !well_formed || !(signature.is_empty() || base64url(signature)) {
        return Err(AuthError::Malformed);
    }
    Ok((signed, signature))
}

/// The length, in base64url without padding, of a signature of `bytes` bytes.
const fn base64url_chars(bytes: usize) -> usize {
    (bytes * 8).div_ceil(6)
}

/// The `alg` a token's header names, for the error message, even when the
/// library does not know it (e.g. `none`).
fn algorithm_name(token: &str) -> Option<String> {
    use base64::Engine as _;
    let header = token.split('.').next().unwrap_or_default();
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(header)
        .ok()
        .and_then(|bytes| serde_json::from_slice::<serde_json::Value>(&bytes).ok())
        .and_then(|v| v.get("alg").and_then(|a| a.as_str()).map(str::to_owned))
}

async fn fetch_keys(source: &JwksSource) -> Result<HashMap<String, Key>, AuthError> {
    let text = match source {
        JwksSource::File(path) => tokio::fs::read_to_string(path)
            .await
            .map_err(|e| AuthError::Keys(format!("cannot read {}: {e}", path.display())))?,
        JwksSource::Url(url) => fetch_url(url).await?,
    };
    parse_jwks(&text)
}

/// Parses a JWKS into usable keys: RSA keys for RS256, P-256 keys for ES256.
/// Keys of other types, or whose declared `alg` disagrees, are skipped.
fn parse_jwks(text: &str) -> Result<HashMap<String, Key>, AuthError> {
    let set: JwkSet = serde_json::from_str(text).map_err(|e| AuthError::Keys(format!("not a JWKS: {e}")))?;
    let mut keys = HashMap::new();
    for jwk in &set.keys {
        let Some(kid) = jwk.common.key_id.clone() else { continue };
        let (algorithm, signature_bytes) = match &jwk.algorithm {
            AlgorithmParameters::RSA(rsa) => (Algorithm::RS256, rsa_modulus_bytes(&rsa.n)),
            // r and s, 32 bytes each (RFC 7518 §3.4).
            AlgorithmParameters::EllipticCurve(ec) if ec.curve == EllipticCurve::P256 => (Algorithm::ES256, Some(64)),
            _ => continue,
        };
        let Some(signature_bytes) = signature_bytes else { continue };
        if let Some(declared) = jwk.common.key_algorithm
            && format!("{declared:?}") != format!("{algorithm:?}")
        {
            continue;
        }
        if let Ok(decoding) = DecodingKey::from_jwk(jwk) {
            keys.insert(kid, Key { algorithm, decoding, signature_chars: base64url_chars(signature_bytes) });
        }
    }
    if keys.is_empty() {
        return Err(AuthError::Keys("the JWKS holds no RS256 or ES256 key with a kid".into()));
    }
    Ok(keys)
}

/// The size in bytes of an RSA modulus given as base64url (`n` of a JWK):
/// the size of every signature of that key.
fn rsa_modulus_bytes(n: &str) -> Option<usize> {
    use base64::Engine as _;
    let modulus = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(n.trim_end_matches('=')).ok()?;
    let leading_zeros = modulus.iter().take_while(|b| **b == 0).count();
    Some(modulus.len() - leading_zeros).filter(|bytes| *bytes > 0)
}

/// GETs a JWKS over plain HTTP (a cluster-internal endpoint or a sidecar).
async fn fetch_url(url: &str) -> Result<String, AuthError> {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let fail = |why: String| AuthError::Keys(format!("{url}: {why}"));
    let rest = url.strip_prefix("http://").ok_or_else(|| {
        fail("only http:// is fetched directly; serve https JWKS through the mesh or mount it as JWKS_FILE".into())
    })?;
    let (authority, path) = rest.split_once('/').map_or((rest, "/".to_owned()), |(a, p)| (a, format!("/{p}")));
    let host_port = if authority.contains(':') { authority.to_owned() } else { format!("{authority}:80") };
    let fetch = async {
        let mut stream = tokio::net::TcpStream::connect(&host_port).await.map_err(|e| fail(e.to_string()))?;
        let request = format!("GET {path} HTTP/1.0\r\nHost: {authority}\r\nAccept: application/json\r\n\r\n");
        stream.write_all(request.as_bytes()).await.map_err(|e| fail(e.to_string()))?;
        let mut response = Vec::new();
        stream.take(1 << 20).read_to_end(&mut response).await.map_err(|e| fail(e.to_string()))?;
        let response = String::from_utf8(response).map_err(|_| fail("the answer is not UTF-8".into()))?;
        let (head, body) = response.split_once("\r\n\r\n").ok_or_else(|| fail("no HTTP body".into()))?;
        if !head.starts_with("HTTP/1.1 200") && !head.starts_with("HTTP/1.0 200") {
            return Err(fail(head.lines().next().unwrap_or_default().to_owned()));
        }
        Ok(body.to_owned())
    };
    tokio::time::timeout(Duration::from_secs(5), fetch).await.map_err(|_| fail("timed out".into()))?
}

/// The token of an `authorization: Bearer …` value.
///
/// # Errors
/// [`AuthError::Missing`] when absent, [`AuthError::Malformed`] when not a bearer token.
pub fn bearer(value: Option<&str>) -> Result<&str, AuthError> {
    let value = value.ok_or(AuthError::Missing)?;
    let (scheme, token) = value.split_once(' ').ok_or(AuthError::Malformed)?;
    if !scheme.eq_ignore_ascii_case("bearer") || token.trim().is_empty() {
        return Err(AuthError::Malformed);
    }
    Ok(token.trim())
}
