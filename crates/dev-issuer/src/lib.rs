//! The development identity provider: what a real identity provider does for
//! production, done on one machine for the local runner and the tests.
//!
//! [`DevIssuer::create_or_load`] keeps an ES256 (P-256) signing key and the
//! JWKS publishing its public half in a directory (`.run/auth/` for
//! `rewardsctl up`), reusing them when present so tokens printed earlier
//! stay valid across restarts. The gateway and every service are pointed at
//! that JWKS ([`DevIssuer::env`], [`DevIssuer::auth_config`]); tokens for a
//! player or an operator come from [`DevIssuer::player`] and
//! [`DevIssuer::operator`], and travel as `authorization: Bearer …`
//! ([`authorized`], [`Bearer`]).
//!
//! ES256 rather than RS256: a P-256 key is generated in microseconds even in
//! a debug build, where a 2048-bit RSA key takes seconds. Keys and
//! signatures are ring's, the library the services verify tokens with.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::Context as _;
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use platform::auth::{AuthConfig, JwksSource};
use ring::rand::SystemRandom;
use ring::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair as _};

/// The `iss` of development tokens.
pub const ISSUER: &str = "https://dev.game-rewards.local";
/// The `aud` of development tokens (the same API name as production's).
pub const AUDIENCE: &str = "game-rewards";
/// The subject of operator tokens made by [`DevIssuer::operator`].
pub const OPERATOR: &str = "operator";
/// How long a token of [`DevIssuer::player`] or [`DevIssuer::operator`] lives.
pub const TOKEN_LIFETIME: Duration = Duration::from_secs(3600);

const KEY_FILE: &str = "signing-key.pem";
const JWKS_FILE: &str = "jwks.json";

/// Who a token is for: subject and roles.
type Grant = (String, Vec<String>);
/// A signed token and when it expires (Unix seconds).
type Signed = (String, u64);

/// A signing key and the JWKS that publishes it; cheap to clone.
#[derive(Clone)]
pub struct DevIssuer {
    kid: String,
    key: Arc<EcdsaKeyPair>,
    /// The encoded header of every token: the algorithm and this key's id.
    header: String,
    rng: SystemRandom,
    jwks: PathBuf,
    /// Tokens already signed, by (subject, roles), with their expiry: a load
    /// test asks for the same player's token thousands of times.
    signed: Arc<Mutex<HashMap<Grant, Signed>>>,
}

impl std::fmt::Debug for DevIssuer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DevIssuer").field("kid", &self.kid).field("jwks", &self.jwks).finish_non_exhaustive()
    }
}

impl DevIssuer {
    /// The key pair in `dir` (`signing-key.pem`, `jwks.json`), made there
    /// first when missing.
    ///
    /// # Errors
    /// When the directory cannot be written or holds a key that is not a
    /// P-256 PKCS#8 PEM.
    pub fn create_or_load(dir: &Path) -> anyhow::Result<Self> {
        let key_path = dir.join(KEY_FILE);
        let jwks = dir.join(JWKS_FILE);
        let rng = SystemRandom::new();
        let pkcs8 = if key_path.exists() {
            let pem =
                std::fs::read_to_string(&key_path).with_context(|| format!("cannot read {}", key_path.display()))?;
            pkcs8_of_pem(&pem).with_context(|| format!("{} is not a PKCS#8 PEM", key_path.display()))?
        } else {
            std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
            let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
                .map_err(|_| anyhow::anyhow!("no randomness to make a key with"))?;
            write_private(&key_path, pem_of_pkcs8(pkcs8.as_ref()).as_bytes())?;
            pkcs8.as_ref().to_vec()
        };
        let key = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &pkcs8, &rng)
            .map_err(|e| anyhow::anyhow!("{} is not a P-256 PKCS#8 key: {e}", key_path.display()))?;
        let (kid, document) = jwks_of(key.public_key().as_ref());
        // Always rewritten from the key, so the two files cannot disagree.
        std::fs::write(&jwks, document).with_context(|| format!("cannot write {}", jwks.display()))?;
        let header =
            URL_SAFE_NO_PAD.encode(serde_json::json!({ "typ": "JWT", "alg": "ES256", "kid": kid }).to_string());
        Ok(Self { kid, key: Arc::new(key), header, rng, jwks, signed: Arc::default() })
    }

    /// The JWKS file the gateway and the services verify tokens with.
    pub fn jwks_path(&self) -> &Path {
        &self.jwks
    }

    /// The key id tokens name in their header.
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// How the gateway and the services verify this issuer's tokens.
    pub fn auth_config(&self) -> AuthConfig {
        AuthConfig {
            jwks: JwksSource::File(self.jwks.clone()),
            issuer: ISSUER.into(),
            audience: AUDIENCE.into(),
            leeway: Duration::from_secs(30),
            refresh: Duration::from_secs(300),
        }
    }

    /// The same, as the environment of a process (`JWKS_FILE`, `JWT_ISSUER`, `JWT_AUDIENCE`).
    pub fn env(&self) -> Vec<(String, String)> {
        vec![
            ("JWKS_FILE".into(), self.jwks.display().to_string()),
            ("JWT_ISSUER".into(), ISSUER.into()),
            ("JWT_AUDIENCE".into(), AUDIENCE.into()),
        ]
    }

    /// A token for `subject` with `roles`, valid from now for `lifetime`.
    ///
    /// # Panics
    /// Never: signing with a valid P-256 key does not fail.
    pub fn token(&self, subject: &str, roles: &[&str], lifetime: Duration) -> String {
        let now = unix_now();
        self.sign(&serde_json::json!({
            "iss": ISSUER,
            "aud": AUDIENCE,
            "sub": subject,
            "roles": roles,
            "iat": now,
            "nbf": now,
            "exp": now + lifetime.as_secs(),
        }))
    }

    /// Any claims, signed with this issuer's key under its `kid`: for tests
    /// of tokens that must be refused (expired, another audience, …).
    ///
    /// # Panics
    /// Never: signing with a valid P-256 key does not fail.
    pub fn sign(&self, claims: &serde_json::Value) -> String {
        let signed = format!("{}.{}", self.header, URL_SAFE_NO_PAD.encode(claims.to_string()));
        #[allow(clippy::expect_used)] // ring fails to sign only without randomness, which it had to load the key
        let signature = self.key.sign(&self.rng, signed.as_bytes()).expect("an ES256 key signs");
        format!("{signed}.{}", URL_SAFE_NO_PAD.encode(signature.as_ref()))
    }

    /// A player's token: subject `customer_id`, role `player`.
    pub fn player(&self, customer_id: &str) -> String {
        self.cached(customer_id, &["player"])
    }

    /// An operator's token: subject `operator`, role `operator`.
    pub fn operator(&self) -> String {
        self.cached(OPERATOR, &["operator"])
    }

    fn cached(&self, subject: &str, roles: &[&str]) -> String {
        let key = (subject.to_owned(), roles.iter().map(|r| (*r).to_owned()).collect::<Vec<_>>());
        let now = unix_now();
        let mut signed = self.signed.lock().unwrap_or_else(PoisonError::into_inner);
        // Re-signed at half its life, so a cached token never expires in use.
        if let Some((token, expires)) = signed.get(&key)
            && *expires > now + TOKEN_LIFETIME.as_secs() / 2
        {
            return token.clone();
        }
        let token = self.token(subject, roles, TOKEN_LIFETIME);
        if signed.len() > 100_000 {
            signed.clear();
        }
        signed.insert(key, (token.clone(), now + TOKEN_LIFETIME.as_secs()));
        token
    }
}

/// `message` as a call carrying `token` as its bearer credential.
pub fn authorized<M>(message: M, token: &str) -> tonic::Request<M> {
    let mut request = tonic::Request::new(message);
    if let Ok(value) = format!("Bearer {token}").parse() {
        request.metadata_mut().insert("authorization", value);
    }
    request
}

/// A client interceptor that sends one token with every call.
#[derive(Debug, Clone)]
pub struct Bearer(tonic::metadata::MetadataValue<tonic::metadata::Ascii>);

impl Bearer {
    /// Sends `token`.
    ///
    /// # Errors
    /// When `token` holds characters a header cannot carry.
    pub fn new(token: &str) -> anyhow::Result<Self> {
        Ok(Self(format!("Bearer {token}").parse().context("a token is ASCII")?))
    }
}

impl tonic::service::Interceptor for Bearer {
    fn call(&mut self, mut request: tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status> {
        request.metadata_mut().insert("authorization", self.0.clone());
        Ok(request)
    }
}

/// The key id (from the public key, so it changes with the key) and the
/// JWKS, from the uncompressed point `04 || x || y`.
fn jwks_of(point: &[u8]) -> (String, String) {
    let coordinates = point.get(1..).unwrap_or_default();
    let (x, y) = coordinates.split_at(coordinates.len() / 2);
    let (x, y) = (URL_SAFE_NO_PAD.encode(x), URL_SAFE_NO_PAD.encode(y));
    let kid = format!("dev-{}", x.get(..12).unwrap_or_default());
    let document = serde_json::json!({
        "keys": [{ "kty": "EC", "crv": "P-256", "use": "sig", "alg": "ES256", "kid": kid, "x": x, "y": y }]
    });
    (kid, format!("{document:#}\n"))
}

const PEM_BEGIN: &str = "-----BEGIN PRIVATE KEY-----";
const PEM_END: &str = "-----END PRIVATE KEY-----";

/// The DER of a PKCS#8 PEM (`BEGIN PRIVATE KEY`).
fn pkcs8_of_pem(pem: &str) -> anyhow::Result<Vec<u8>> {
    let body = pem
        .trim()
        .strip_prefix(PEM_BEGIN)
        .and_then(|rest| rest.strip_suffix(PEM_END))
        .ok_or_else(|| anyhow::anyhow!("no {PEM_BEGIN} … {PEM_END} block"))?;
    let base64: String = body.split_whitespace().collect();
    STANDARD.decode(base64).context("the PEM body is not base64")
}

/// A PKCS#8 DER as PEM, 64 characters a line.
fn pem_of_pkcs8(der: &[u8]) -> String {
    let base64 = STANDARD.encode(der);
    let lines: Vec<&str> = base64.as_bytes().chunks(64).filter_map(|line| std::str::from_utf8(line).ok()).collect();
    format!("{PEM_BEGIN}\n{}\n{PEM_END}\n", lines.join("\n"))
}

fn write_private(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    use std::io::Write as _;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        // A signing key: readable by its owner only.
        options.mode(0o600);
    }
    let mut file = options.open(path).with_context(|| format!("cannot create {}", path.display()))?;
    file.write_all(bytes).with_context(|| format!("cannot write {}", path.display()))
}

fn unix_now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use platform::auth::{Role, Verifier};

    #[tokio::test]
    async fn tokens_verify_against_the_jwks_and_the_key_is_reused() {
        let dir = std::env::temp_dir().join(format!("dev-issuer-{}", rand::random::<u64>()));
        let issuer = DevIssuer::create_or_load(&dir).unwrap();
        let verifier = Verifier::load(issuer.auth_config()).await.unwrap();
        let caller = verifier.verify(&issuer.player("player-7")).await.unwrap();
        assert_eq!(caller.subject, "player-7");
        assert!(caller.has(Role::Player) && !caller.has(Role::Operator));
        assert!(verifier.verify(&issuer.operator()).await.unwrap().has(Role::Operator));

        let again = DevIssuer::create_or_load(&dir).unwrap();
        assert_eq!(again.kid(), issuer.kid());
        assert!(verifier.verify(&again.token("player-8", &["player"], Duration::from_secs(60))).await.is_ok());
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[tokio::test]
    async fn a_key_written_by_the_earlier_issuer_still_signs() {
        // `ec.pem` of platform's fixtures is a P-256 PKCS#8 key as the
        // issuer wrote them before it signed with ring (RustCrypto's p256).
        let dir = std::env::temp_dir().join(format!("dev-issuer-{}", rand::random::<u64>()));
        std::fs::create_dir_all(&dir).unwrap();
        let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("../platform/tests/fixtures/ec.pem");
        std::fs::copy(fixture, dir.join(KEY_FILE)).unwrap();
        let issuer = DevIssuer::create_or_load(&dir).unwrap();
        let jwks = std::fs::read_to_string(issuer.jwks_path()).unwrap();
        // The public half of the fixture, as platform's fixture JWKS publishes it.
        assert!(jwks.contains("THW4DLVqjbsen6NaHCQbOhm47RIHPSA9MFaktf8zPd4"), "{jwks}");
        let verifier = Verifier::load(issuer.auth_config()).await.unwrap();
        assert_eq!(verifier.verify(&issuer.player("player-9")).await.unwrap().subject, "player-9");
        std::fs::write(dir.join(KEY_FILE), "not a key").unwrap();
        let refused = DevIssuer::create_or_load(&dir).unwrap_err();
        assert!(format!("{refused:#}").contains("is not a PKCS#8 PEM"), "{refused:#}");
        std::fs::remove_dir_all(dir).unwrap();
    }
}
