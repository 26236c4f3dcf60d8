//! Bearer tokens: what is accepted and every attack that must not be.

#![allow(clippy::unwrap_used)] // a test that cannot proceed should stop right there

use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use platform::auth::{AuthConfig, AuthError, JwksSource, Role, Verifier, bearer};
use serde_json::json;

const ISSUER: &str = "https://auth.game-rewards.test";
const AUDIENCE: &str = "game-rewards";

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(name)
}

fn now() -> i64 {
    i64::try_from(SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs()).unwrap()
}

async fn verifier() -> Verifier {
    Verifier::load(AuthConfig {
        jwks: JwksSource::File(fixture("jwks.json")),
        issuer: ISSUER.into(),
        audience: AUDIENCE.into(),
        leeway: Duration::from_secs(30),
        refresh: Duration::from_secs(300),
    })
    .await
    .unwrap()
}

fn claims() -> serde_json::Value {
    json!({ "sub": "player-1", "iss": ISSUER, "aud": AUDIENCE, "exp": now() + 300, "nbf": now() - 5, "roles": ["player"] })
}

/// How the tests sign: the algorithms the verifier accepts, and the HMAC of the confusion attack.
#[derive(Debug, Clone, Copy)]
enum Algorithm {
    RS256,
    ES256,
    HS256,
}

fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// The DER of a fixture's PKCS#8 PEM.
fn pkcs8(name: &str) -> Vec<u8> {
    let pem = std::fs::read_to_string(fixture(name)).unwrap();
    let body: String = pem.lines().filter(|line| !line.starts_with("-----")).collect();
    STANDARD.decode(body).unwrap()
}

/// `claims` under a header naming `alg` and `kid`, signed with the fixture `key`
/// (for HS256: the fixture's bytes as the HMAC secret).
fn sign(alg: Algorithm, kid: Option<&str>, key: &str, claims: &serde_json::Value) -> String {
    use ring::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, RSA_PKCS1_SHA256, RsaKeyPair};
    let mut header = json!({ "typ": "JWT", "alg": format!("{alg:?}") });
    if let Some(kid) = kid {
        header["kid"] = json!(kid);
    }
    let signed = format!("{}.{}", b64(header.to_string().as_bytes()), b64(claims.to_string().as_bytes()));
    let rng = ring::rand::SystemRandom::new();
    let signature = match alg {
        Algorithm::RS256 => {
            let pair = RsaKeyPair::from_pkcs8(&pkcs8(key)).unwrap();
            let mut signature = vec![0; pair.public().modulus_len()];
            pair.sign(&RSA_PKCS1_SHA256, &rng, signed.as_bytes(), &mut signature).unwrap();
            signature
        }
        Algorithm::ES256 => {
            let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &pkcs8(key), &rng).unwrap();
            pair.sign(&rng, signed.as_bytes()).unwrap().as_ref().to_vec()
        }
        Algorithm::HS256 => {
            let secret = std::fs::read(fixture(key)).unwrap();
            ring::hmac::sign(&ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &secret), signed.as_bytes())
                .as_ref()
                .to_vec()
        }
    };
    format!("{signed}.{}", b64(&signature))
}

fn unsigned(header: serde_json::Value, claims: &serde_json::Value, signature: &[u8]) -> String {
    let body = format!("{}.{}", b64(header.to_string().as_bytes()), b64(claims.to_string().as_bytes()));
    format!("{body}.{}", b64(signature))
}

#[tokio::test]
async fn rs256_and_es256_tokens_from_the_jwks_are_accepted_with_their_subject_and_roles() {
    let verifier = verifier().await;
    for (alg, kid, key) in [(Algorithm::RS256, "test-rsa", "rsa.pem"), (Algorithm::ES256, "test-ec", "ec.pem")] {
        let mut claims = claims();
        claims["roles"] = json!(["player", "operator", "unknown-role"]);
        let caller = verifier.verify(&sign(alg, Some(kid), key, &claims)).await.unwrap();
        assert_eq!(caller.subject, "player-1");
        assert!(caller.has(Role::Player) && caller.has(Role::Operator) && !caller.has(Role::Service));
    }
}

#[tokio::test]
async fn expired_not_yet_valid_foreign_and_misdirected_tokens_are_refused() {
    let verifier = verifier().await;
    let cases = [
        ("exp", json!(now() - 120), AuthError::Expired),
        ("nbf", json!(now() + 120), AuthError::NotYetValid),
        ("iss", json!("https://evil.example"), AuthError::Issuer),
        ("aud", json!("another-api"), AuthError::Audience),
    ];
    for (claim, value, expected) in cases {
        let mut claims = claims();
        claims[claim] = value;
        let token = sign(Algorithm::RS256, Some("test-rsa"), "rsa.pem", &claims);
        assert_eq!(verifier.verify(&token).await, Err(expected), "{claim}");
    }
}

#[tokio::test]
async fn a_small_clock_skew_is_tolerated() {
    let verifier = verifier().await;
    let mut claims = claims();
    claims["exp"] = json!(now() - 10);
    claims["nbf"] = json!(now() + 10);
    assert!(verifier.verify(&sign(Algorithm::ES256, Some("test-ec"), "ec.pem", &claims)).await.is_ok());
}

#[tokio::test]
async fn alg_none_is_refused() {
    let token = unsigned(json!({ "alg": "none", "typ": "JWT", "kid": "test-rsa" }), &claims(), b"");
    assert_eq!(verifier().await.verify(&token).await, Err(AuthError::Algorithm("none".into())));
}

#[tokio::test]
async fn an_hmac_token_signed_with_the_public_key_is_refused() {
    // The classic confusion: HS256 with the RSA public key as the secret.
    let token = sign(Algorithm::HS256, Some("test-rsa"), "rsa-public.pem", &claims());
    assert_eq!(verifier().await.verify(&token).await, Err(AuthError::Algorithm("HS256".into())));
}

#[tokio::test]
async fn a_token_whose_algorithm_does_not_match_its_key_is_refused() {
    // ES256 header naming the RSA key.
    let token = sign(Algorithm::ES256, Some("test-rsa"), "ec.pem", &claims());
    assert_eq!(verifier().await.verify(&token).await, Err(AuthError::Algorithm("ES256".into())));
}

#[tokio::test]
async fn unknown_keys_missing_kids_and_forged_signatures_are_refused() {
    let verifier = verifier().await;
    let unknown = sign(Algorithm::RS256, Some("rotated-away"), "unlisted-rsa.pem", &claims());
    assert_eq!(verifier.verify(&unknown).await, Err(AuthError::UnknownKey));
    let no_kid = sign(Algorithm::RS256, None, "rsa.pem", &claims());
    assert_eq!(verifier.verify(&no_kid).await, Err(AuthError::NoKeyId));
    let forged = sign(Algorithm::RS256, Some("test-rsa"), "unlisted-rsa.pem", &claims());
    assert_eq!(verifier.verify(&forged).await, Err(AuthError::Signature));
    assert_eq!(verifier.verify("not.a.jwt").await, Err(AuthError::Malformed));
    assert_eq!(verifier.verify("").await, Err(AuthError::Malformed));
}

#[tokio::test]
async fn a_token_without_a_subject_is_refused() {
    let mut claims = claims();
    claims.as_object_mut().unwrap().remove("sub");
    let token = sign(Algorithm::RS256, Some("test-rsa"), "rsa.pem", &claims);
    assert!(matches!(verifier().await.verify(&token).await, Err(AuthError::Invalid(_))));
}

#[test]
fn only_bearer_authorization_values_are_read() {
    assert_eq!(bearer(Some("Bearer abc")), Ok("abc"));
    assert_eq!(bearer(Some("bearer  abc ")), Ok("abc"));
    assert_eq!(bearer(None), Err(AuthError::Missing));
    assert_eq!(bearer(Some("Basic dXNlcg==")), Err(AuthError::Malformed));
    assert_eq!(bearer(Some("Bearer")), Err(AuthError::Malformed));
}

#[tokio::test]
async fn a_signature_of_the_wrong_length_or_bad_claims_is_refused_before_any_signature_check() {
    let verifier = verifier().await;
    let valid = sign(Algorithm::ES256, Some("test-ec"), "ec.pem", &claims());
    let (signed, _) = valid.rsplit_once('.').unwrap();
    // A signature too short for a P-256 key is not worth checking.
    assert_eq!(verifier.verify(&format!("{signed}.AAAA")).await, Err(AuthError::Signature));
    // Garbage instead of base64url is malformed.
    assert_eq!(verifier.verify(&format!("{signed}.***")).await, Err(AuthError::Malformed));
}

#[tokio::test]
async fn a_refused_token_is_refused_again_from_memory_and_a_verified_one_trusted() {
    let verifier = verifier().await;
    let forged = sign(Algorithm::RS256, Some("test-rsa"), "unlisted-rsa.pem", &claims());
    assert_eq!(verifier.remembered(&forged).await, None, "not seen yet");
    assert_eq!(verifier.verify(&forged).await, Err(AuthError::Signature));
    assert_eq!(verifier.remembered(&forged).await, Some(Err(AuthError::Signature)));
    let valid = sign(Algorithm::ES256, Some("test-ec"), "ec.pem", &claims());
    let caller = verifier.verify(&valid).await.unwrap();
    assert_eq!(verifier.remembered(&valid).await, Some(Ok(caller)));
}

#[tokio::test]
async fn a_valid_es256_signature_over_other_claims_is_refused() {
    let verifier = verifier().await;
    let honest = sign(Algorithm::ES256, Some("test-ec"), "ec.pem", &claims());
    let mut raised = claims();
    raised["roles"] = json!(["operator"]);
    let other = sign(Algorithm::ES256, Some("test-ec"), "ec.pem", &raised);
    let (_, signature) = honest.rsplit_once('.').unwrap();
    let (other_claims, _) = other.rsplit_once('.').unwrap();
    // The key's own signature, valid for the player's claims, moved onto an operator's.
    let forged = format!("{other_claims}.{signature}");
    assert_eq!(verifier.verify(&forged).await, Err(AuthError::Signature));
    assert!(verifier.verify(&honest).await.is_ok() && verifier.verify(&other).await.is_ok());
}

#[tokio::test]
async fn malformed_signatures_and_headers_are_refused_with_what_is_wrong() {
    let verifier = verifier().await;
    let valid = sign(Algorithm::ES256, Some("test-ec"), "ec.pem", &claims());
    let (signed, signature) = valid.rsplit_once('.').unwrap();
    // r = s = 0 has the right length but is no signature at all.
    assert_eq!(verifier.verify(&format!("{signed}.{}", b64(&[0; 64]))).await, Err(AuthError::Signature));
    // r and s at the group order or above are not signatures either.
    assert_eq!(verifier.verify(&format!("{signed}.{}", b64(&[0xff; 64]))).await, Err(AuthError::Signature));
    // The DER form some libraries produce is not JWS's r || s.
    assert_eq!(verifier.verify(&format!("{signed}.{}", b64(&[0x30; 71]))).await, Err(AuthError::Signature));
    // The last character of 64 bytes in base64url carries 4 bits that must be zero.
    let mut bad_tail = signature.to_owned();
    bad_tail.pop();
    bad_tail.push('B');
    assert_eq!(verifier.verify(&format!("{signed}.{bad_tail}")).await, Err(AuthError::Malformed));
    // A header that is not JSON, names no algorithm, or asks for extensions.
    let (_, rest) = valid.split_once('.').unwrap();
    for header in [b64(b"not json"), b64(br#"{"kid":"test-ec"}"#)] {
        assert_eq!(verifier.verify(&format!("{header}.{rest}")).await, Err(AuthError::Malformed));
    }
    let critical = unsigned(json!({ "alg": "ES256", "kid": "test-ec", "crit": ["b64"] }), &claims(), &[0; 64]);
    assert!(matches!(verifier.verify(&critical).await, Err(AuthError::Invalid(why)) if why.contains("crit")));
    let mut typed = claims();
    typed["exp"] = json!("tomorrow");
    let token = sign(Algorithm::ES256, Some("test-ec"), "ec.pem", &typed);
    assert!(matches!(verifier.verify(&token).await, Err(AuthError::Invalid(why)) if why.contains("invalid type")));
}

fn jwks_file(keys: &serde_json::Value) -> PathBuf {
    let path = std::env::temp_dir().join(format!("jwks-{}.json", rand::random::<u64>()));
    std::fs::write(&path, json!({ "keys": keys }).to_string()).unwrap();
    path
}

async fn load(path: PathBuf) -> Result<Verifier, AuthError> {
    let loaded = Verifier::load(AuthConfig {
        jwks: JwksSource::File(path.clone()),
        issuer: ISSUER.into(),
        audience: AUDIENCE.into(),
        leeway: Duration::from_secs(30),
        refresh: Duration::from_secs(300),
    })
    .await;
    std::fs::remove_file(path).unwrap();
    loaded
}

#[tokio::test]
async fn unusable_keys_are_named_with_why_when_the_jwks_is_read() {
    let mut one = [0u8; 32];
    one[31] = 1;
    let unusable = json!([
        { "kty": "EC", "kid": "off-curve", "crv": "P-256", "x": b64(&one), "y": b64(&one) },
        { "kty": "EC", "kid": "short", "crv": "P-256", "x": b64(&one[..31]), "y": b64(&one) },
        { "kty": "EC", "kid": "p384", "crv": "P-384", "x": b64(&[1; 48]), "y": b64(&[1; 48]) },
        { "kty": "RSA", "kid": "rsa-1024", "n": b64(&[0xc5; 128]), "e": "AQAB" },
        { "kty": "RSA", "kid": "rsa-empty", "n": "", "e": "AQAB" },
        { "kty": "RSA", "kid": "rsa-even-e", "n": b64(&[0xc5; 256]), "e": b64(&[1, 0]) },
        { "kty": "oct", "kid": "hmac", "k": b64(b"secret") },
        { "kty": "EC", "kid": "mislabelled", "alg": "RS256", "crv": "P-256", "x": b64(&one), "y": b64(&one) },
        { "kty": "EC", "kid": "for-encryption", "use": "enc", "crv": "P-256", "x": b64(&one), "y": b64(&one) },
    ]);
    let Err(AuthError::Keys(why)) = load(jwks_file(&unusable)).await else { panic!("no key is usable") };
    for expected in [
        "key off-curve: x and y are not a point of P-256",
        "key short: x and y must be 32 bytes each, not 31 and 32",
        "key p384: curve \"P-384\" is not accepted (P-256 only)",
        "key rsa-1024: an RSA modulus of 1024 bits is not accepted (2048 to 8192)",
        "key rsa-empty: an RSA modulus of 0 bits is not accepted (2048 to 8192)",
        "key rsa-even-e: the RSA exponent must be odd, at least 3 and at most 33 bits",
        "key hmac: key type \"oct\" is not accepted",
        "key mislabelled: alg \"RS256\" does not fit key type \"EC\"",
        "key for-encryption: use \"enc\" is not \"sig\"",
    ] {
        assert!(why.contains(expected), "{expected:?} not in {why:?}");
    }
    // One unusable key does not take the usable ones with it.
    let fixture: serde_json::Value = serde_json::from_slice(&std::fs::read(fixture("jwks.json")).unwrap()).unwrap();
    let mut mixed = fixture["keys"].as_array().unwrap().clone();
    mixed.extend(unusable.as_array().unwrap().iter().cloned());
    let verifier = load(jwks_file(&json!(mixed))).await.unwrap();
    assert!(verifier.verify(&sign(Algorithm::ES256, Some("test-ec"), "ec.pem", &claims())).await.is_ok());
    let named_off_curve = sign(Algorithm::ES256, Some("off-curve"), "ec.pem", &claims());
    assert_eq!(verifier.verify(&named_off_curve).await, Err(AuthError::UnknownKey));
}
