//! CPU of bearer token checks, in isolation: 2,000 distinct ES256 tokens
//! (none answered from the verifier's memory), each checked once, on one
//! thread. Prints the thread's CPU time for the checks alone (signing is
//! not counted), for docs/performance.md.
//!
//! `cargo run --release -p platform --example token_checks [CHECKS] [ROUNDS]`
//!
//! For instruction counts, which a busy machine does not disturb:
//! `valgrind --tool=callgrind --collect-atstart=no --toggle-collect='token_checks::check_all'
//!  target/release/examples/token_checks 2000 1`

#![allow(clippy::unwrap_used, clippy::expect_used)] // a measurement that cannot proceed should stop

use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use platform::auth::{AuthConfig, JwksSource, Verifier};
use ring::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair};

const ISSUER: &str = "https://auth.game-rewards.test";
const AUDIENCE: &str = "game-rewards";

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(name)
}

/// CPU time of this thread so far (the scheduler's own count, in ns).
fn thread_cpu() -> Duration {
    let text = std::fs::read_to_string("/proc/thread-self/schedstat").expect("Linux schedstat");
    let ns = text.split_whitespace().next().and_then(|n| n.parse().ok()).expect("a run time in ns");
    Duration::from_nanos(ns)
}

fn tokens(count: usize) -> Vec<String> {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs();
    let pem = std::fs::read_to_string(fixture("ec.pem")).unwrap();
    let der = STANDARD.decode(pem.lines().filter(|line| !line.starts_with("-----")).collect::<String>()).unwrap();
    let rng = ring::rand::SystemRandom::new();
    let key = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &der, &rng).unwrap();
    let header = URL_SAFE_NO_PAD.encode(r#"{"typ":"JWT","alg":"ES256","kid":"test-ec"}"#);
    (0..count)
        .map(|i| {
            let claims = serde_json::json!({
                "sub": format!("player-{i}"), "iss": ISSUER, "aud": AUDIENCE,
                "exp": now + 600, "nbf": now - 5, "iat": now, "roles": ["player"],
            });
            let signed = format!("{header}.{}", URL_SAFE_NO_PAD.encode(claims.to_string()));
            let signature = key.sign(&rng, signed.as_bytes()).unwrap();
            format!("{signed}.{}", URL_SAFE_NO_PAD.encode(signature.as_ref()))
        })
        .collect()
}

/// Checks every token once with a fresh verifier; panics on a refusal, so
/// a measurement of refusals cannot pass for one of checks.
#[inline(never)]
fn check_all(runtime: &tokio::runtime::Runtime, verifier: &Verifier, tokens: &[String]) {
    runtime.block_on(async {
        for token in tokens {
            verifier.verify(token).await.expect("a valid token");
        }
    });
}

fn main() {
    let mut args = std::env::args().skip(1);
    let count: usize = args.next().map_or(2_000, |a| a.parse().expect("CHECKS is a number"));
    let rounds: usize = args.next().map_or(5, |a| a.parse().expect("ROUNDS is a number"));
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let config = AuthConfig {
        jwks: JwksSource::File(fixture("jwks.json")),
        issuer: ISSUER.into(),
        audience: AUDIENCE.into(),
        leeway: Duration::from_secs(30),
        refresh: Duration::from_secs(300),
    };
    let mut spent = Vec::new();
    for _ in 0..rounds {
        let tokens = tokens(count);
        let verifier = runtime.block_on(Verifier::load(config.clone())).unwrap();
        let before = thread_cpu();
        check_all(&runtime, &verifier, &tokens);
        spent.push(thread_cpu() - before);
    }
    spent.sort();
    let ms = |d: &Duration| d.as_secs_f64() * 1e3;
    let list: Vec<String> = spent.iter().map(|d| format!("{:.1}", ms(d))).collect();
    if let Some(median) = spent.get(spent.len() / 2) {
        println!(
            "{count} ES256 checks: median {:.1} CPU-ms ({:.1} µs per check) over {rounds} rounds [{}]",
            ms(median),
            ms(median) * 1e3 / count.max(1) as f64,
            list.join(", ")
        );
    }
}
