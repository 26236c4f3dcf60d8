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

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::signature::{self, RsaPublicKeyComponents, UnparsedPublicKey};
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

/// The two signature algorithms accepted, each only with its own kind of key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Algorithm {
    /// RSASSA-PKCS1-v1_5 with SHA-256, 2048- to 8192-bit keys.
    Rs256,
    /// ECDSA on P-256 with SHA-256, `r || s` (RFC 7518 §3.4).
    Es256,
}

impl Algorithm {
    /// The name tokens and JWKS entries use.
    fn name(self) -> &'static str {
        match self {
            Self::Rs256 => "RS256",
            Self::Es256 => "ES256",
        }
    }
}

/// One verification key, decoded and checked when the JWKS is read: a check
/// decodes no base64, no JSON and no PEM of the key.
#[derive(Debug)]
struct Key {
    algorithm: Algorithm,
    public: PublicKey,
    /// The length of this key's signatures, base64url without padding: a
    /// token whose signature has another length is refused unverified.
    signature_chars: usize,
}

/// The key material in the form ring verifies with. ring 0.17 has no type
/// for a parsed verification key: the 65 bytes of a P-256 point (already
/// checked to lie on the curve) are read again by each check, a cost lost in
/// that of the signature (`docs/performance.md`).
enum PublicKey {
    /// The uncompressed point, `04 || x || y`.
    Ec(UnparsedPublicKey<Vec<u8>>),
    /// Modulus (no leading zeros) and exponent, big-endian.
    Rsa(RsaPublicKeyComponents<Vec<u8>>),
}

impl std::fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Ec(_) => "PublicKey::Ec",
            Self::Rsa(_) => "PublicKey::Rsa",
        })
    }
}

impl Key {
    /// Whether `signature` (decoded) is this key's over `signed`.
    fn verify(&self, signed: &[u8], signature: &[u8]) -> Result<(), AuthError> {
        let checked = match &self.public {
            PublicKey::Ec(key) => key.verify(signed, signature),
            PublicKey::Rsa(key) => key.verify(&signature::RSA_PKCS1_2048_8192_SHA256, signed, signature),
        };
        checked.map_err(|_| AuthError::Signature)
    }
}

#[derive(Debug)]
struct Keys {
    by_kid: HashMap<String, Arc<Key>>,
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

    /// Checks `token` in full: shape, header, key and claims first, then the
    /// signature, so that a token refused for anything that needs no
    /// cryptography costs no signature check.
    async fn check(&self, token: &str) -> Result<(Caller, String, u64), AuthError> {
        let (signed, signature) = split_token(token)?;
        let (header, payload) = signed.split_once('.').ok_or(AuthError::Malformed)?;
        let (algorithm, kid) = parse_header(header)?;
        let key = self.key(&kid).await?;
        // The key decides the algorithm, never the token: an RSA key only
        // verifies RS256, an EC key only ES256.
        if key.algorithm.name() != algorithm {
            return Err(AuthError::Algorithm(algorithm));
        }
        if signature.len() != key.signature_chars {
            return Err(AuthError::Signature);
        }
        let claims = self.claims(payload)?;
        let signature = URL_SAFE_NO_PAD.decode(signature).map_err(|_| AuthError::Malformed)?;
        key.verify(signed.as_bytes(), &signature)?;
        let roles = claims
            .roles
            .iter()
            .filter_map(|r| match r.as_str() {
                "player" => Some(Role::Player),
                "operator" => Some(Role::Operator),
                "service" => Some(Role::Service),
                _ => None,
            })
            .collect();
        Ok((Caller { subject: claims.sub, roles, expires: claims.exp }, kid, claims.exp))
    }

    /// The claims of a token's payload, checked: present, of the right
    /// types, not expired nor not yet valid (with the configured leeway),
    /// for this issuer and audience, with a subject. Read once, before the
    /// signature is checked; the signature covers these very bytes.
    fn claims(&self, payload: &str) -> Result<ValidClaims, AuthError> {
        let bytes = URL_SAFE_NO_PAD.decode(payload).map_err(|_| AuthError::Malformed)?;
        let claims: Claims = serde_json::from_slice(&bytes).map_err(|e| match e.classify() {
            // JSON, but a claim of the wrong type (`exp` as a string, …).
            serde_json::error::Category::Data => AuthError::Invalid(e.to_string()),
            _ => AuthError::Malformed,
        })?;
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
        let sub = match claims.sub {
            None => return Err(AuthError::Invalid("missing claim sub".into())),
            Some(sub) if sub.is_empty() => return Err(AuthError::Invalid("empty subject".into())),
            Some(sub) => sub,
        };
        Ok(ValidClaims { sub, exp, roles: claims.roles })
    }

    /// The key named `kid`, reading the JWKS again when it is unknown or stale.
    async fn key(&self, kid: &str) -> Result<Arc<Key>, AuthError> {
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

/// The claims of a token as sent; [`Verifier::claims`] checks them.
#[derive(Debug, Deserialize)]
struct Claims {
    exp: Option<u64>,
    nbf: Option<u64>,
    iss: Option<String>,
    aud: Option<Audience>,
    sub: Option<String>,
    #[serde(default)]
    roles: Vec<String>,
}

/// Claims that passed every check but the signature's.
#[derive(Debug)]
struct ValidClaims {
    sub: String,
    exp: u64,
    roles: Vec<String>,
}

/// The protected header of a token, as far as it is read.
#[derive(Debug, Deserialize)]
struct Header {
    alg: Option<String>,
    kid: Option<String>,
    /// Extensions the recipient must understand (RFC 7515 §4.1.11): none is.
    crit: Option<serde::de::IgnoredAny>,
}

/// The algorithm and key id of a token's header (base64url), refusing any
/// algorithm but RS256 and ES256 by name (`none`, `HS256`, …).
fn parse_header(encoded: &str) -> Result<(String, String), AuthError> {
    let bytes = URL_SAFE_NO_PAD.decode(encoded).map_err(|_| AuthError::Malformed)?;
    let header: Header = serde_json::from_slice(&bytes).map_err(|_| AuthError::Malformed)?;
    let alg = header.alg.ok_or(AuthError::Malformed)?;
    if alg != Algorithm::Rs256.name() && alg != Algorithm::Es256.name() {
        return Err(AuthError::Algorithm(alg));
    }
    if header.crit.is_some() {
        return Err(AuthError::Invalid("critical header extensions (crit) are not supported".into()));
    }
    Ok((alg, header.kid.ok_or(AuthError::NoKeyId)?))
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

async fn fetch_keys(source: &JwksSource) -> Result<HashMap<String, Arc<Key>>, AuthError> {
    let text = match source {
        JwksSource::File(path) => tokio::fs::read_to_string(path)
            .await
            .map_err(|e| AuthError::Keys(format!("cannot read {}: {e}", path.display())))?,
        JwksSource::Url(url) => fetch_url(url).await?,
    };
    parse_jwks(&text)
}

/// Parses a JWKS into usable keys: RSA keys for RS256, P-256 keys for ES256.
/// A key that cannot be used (another type or curve, a declared `alg` or
/// `use` that disagrees, bad key material) is skipped, and said why.
fn parse_jwks(text: &str) -> Result<HashMap<String, Arc<Key>>, AuthError> {
    #[derive(Deserialize)]
    struct Jwks {
        keys: Vec<serde_json::Value>,
    }
    let set: Jwks = serde_json::from_str(text).map_err(|e| AuthError::Keys(format!("not a JWKS: {e}")))?;
    let mut keys = HashMap::new();
    let mut skipped = Vec::new();
    for (index, jwk) in set.keys.into_iter().enumerate() {
        let kid = jwk.get("kid").and_then(serde_json::Value::as_str).map(str::to_owned);
        let named = kid.clone().map_or_else(|| format!("key #{index}"), |kid| format!("key {kid}"));
        match serde_json::from_value::<Jwk>(jwk).map_err(|e| e.to_string()).and_then(|jwk| parse_jwk(&jwk)) {
            Ok(key) => match kid {
                Some(kid) => {
                    keys.insert(kid, Arc::new(key));
                }
                None => skipped.push(format!("{named}: no kid")),
            },
            Err(why) => skipped.push(format!("{named}: {why}")),
        }
    }
    if keys.is_empty() {
        let why = if skipped.is_empty() { "no keys".to_owned() } else { skipped.join("; ") };
        return Err(AuthError::Keys(format!("the JWKS holds no usable RS256 or ES256 key with a kid ({why})")));
    }
    for why in &skipped {
        tracing::warn!(%why, "verification key skipped");
    }
    Ok(keys)
}

/// One entry of a JWKS (RFC 7517), the members read.
#[derive(Debug, Deserialize)]
struct Jwk {
    kty: String,
    alg: Option<String>,
    #[serde(rename = "use")]
    usage: Option<String>,
    crv: Option<String>,
    x: Option<String>,
    y: Option<String>,
    n: Option<String>,
    e: Option<String>,
}

/// The verification key of `jwk`, or why it cannot be used.
fn parse_jwk(jwk: &Jwk) -> Result<Key, String> {
    if jwk.usage.as_deref().is_some_and(|usage| usage != "sig") {
        return Err(format!("use {:?} is not \"sig\"", jwk.usage.as_deref().unwrap_or_default()));
    }
    let algorithm = match jwk.kty.as_str() {
        "EC" => Algorithm::Es256,
        "RSA" => Algorithm::Rs256,
        other => return Err(format!("key type {other:?} is not accepted (EC P-256 or RSA)")),
    };
    if let Some(declared) = jwk.alg.as_deref().filter(|alg| *alg != algorithm.name()) {
        return Err(format!("alg {declared:?} does not fit key type {:?}", jwk.kty));
    }
    let member = |name: &str, value: &Option<String>| -> Result<Vec<u8>, String> {
        let value = value.as_deref().ok_or_else(|| format!("no {name}"))?;
        URL_SAFE_NO_PAD.decode(value.trim_end_matches('=')).map_err(|_| format!("{name} is not base64url"))
    };
    match algorithm {
        Algorithm::Es256 => {
            if jwk.crv.as_deref() != Some("P-256") {
                return Err(format!("curve {:?} is not accepted (P-256 only)", jwk.crv.as_deref().unwrap_or_default()));
            }
            let (x, y) = (member("x", &jwk.x)?, member("y", &jwk.y)?);
            if x.len() != 32 || y.len() != 32 {
                return Err(format!("x and y must be 32 bytes each, not {} and {}", x.len(), y.len()));
            }
            let point: Vec<u8> = [&[4u8][..], &x, &y].concat();
            check_p256_point(&point)?;
            Ok(Key {
                algorithm,
                public: PublicKey::Ec(UnparsedPublicKey::new(&signature::ECDSA_P256_SHA256_FIXED, point)),
                // r and s, 32 bytes each.
                signature_chars: base64url_chars(64),
            })
        }
        Algorithm::Rs256 => {
            let n = member("n", &jwk.n)?;
            let e = member("e", &jwk.e)?;
            let n: Vec<u8> = n.into_iter().skip_while(|b| *b == 0).collect();
            let e: Vec<u8> = e.into_iter().skip_while(|b| *b == 0).collect();
            let bits = significant_bits(&n);
            if !(2048..=8192).contains(&bits) {
                return Err(format!("an RSA modulus of {bits} bits is not accepted (2048 to 8192)"));
            }
            // ring's rule: odd, at least 3, at most 33 bits.
            if significant_bits(&e) > 33 || e.last().is_none_or(|last| last & 1 == 0) || e.as_slice() == [1] {
                return Err("the RSA exponent must be odd, at least 3 and at most 33 bits".into());
            }
            Ok(Key {
                algorithm,
                signature_chars: base64url_chars(n.len()),
                public: PublicKey::Rsa(RsaPublicKeyComponents { n, e }),
            })
        }
    }
}

/// The bits of a big-endian number without leading zero bytes (0 for none).
fn significant_bits(number: &[u8]) -> usize {
    number.first().map_or(0, |first| number.len() * 8 - first.leading_zeros() as usize)
}

/// Whether `point` (uncompressed) lies on P-256. ring checks a peer's point
/// before any key agreement and has no other public check short of a
/// signature, so an agreement with a throwaway key does it, once per key
/// read: a key off the curve is named when the JWKS is read rather than
/// refusing every token later as "signature is invalid".
fn check_p256_point(point: &[u8]) -> Result<(), String> {
    use ring::agreement;
    let rng = ring::rand::SystemRandom::new();
    let throwaway = agreement::EphemeralPrivateKey::generate(&agreement::ECDH_P256, &rng)
        .map_err(|_| "no randomness to check the key with".to_owned())?;
    let peer = agreement::UnparsedPublicKey::new(&agreement::ECDH_P256, point);
    agreement::agree_ephemeral(throwaway, &peer, |_| ()).map_err(|_| "x and y are not a point of P-256".to_owned())
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
