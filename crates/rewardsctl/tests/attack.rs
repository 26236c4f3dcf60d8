//! Short versions of the hostile-load harness (`rewardsctl attack`) against
//! the real processes: forged signatures, stalled watchers and connection
//! caps, each for a few seconds beside the canary player, with a gateway
//! whose limits are scaled down to match. Behaviour is asserted (the
//! protection held, the canary was served), never timings: the debug build
//! on a busy machine says nothing about speed.

#![allow(clippy::unwrap_used)] // a test that cannot proceed should stop right there

use std::path::Path;
use std::time::Duration;

use rewardsctl::attack::{self, Options, Scale};

fn gateway(variable: &str, value: &str) -> (String, String, String) {
    ("gateway".into(), variable.into(), value.into())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_signatures_stalled_watchers_and_connection_floods_are_held_off_while_a_player_plays() {
    let bin_dir = Path::new(env!("CARGO_BIN_EXE_rewardsctl")).parent().unwrap().to_path_buf();
    let run_dir = std::env::temp_dir().join(format!("attack-test-{}", uuid::Uuid::new_v4()));
    let nats = testkit::nats_server_binary().unwrap();
    let options = Options {
        only: vec!["forged-signature".into(), "stalled-streams".into(), "connection-flood".into()],
        // Long enough for the last stalled watch's page to reach my page and
        // for the gateway to find it stalled, on a busy machine too.
        duration: Duration::from_secs(10),
        scale: Scale::quick(),
        run_dir: run_dir.clone(),
        bin_dir,
        env: vec![
            gateway("GATEWAY_MAX_CONNECTIONS", "60"),
            gateway("GATEWAY_MAX_CONNECTIONS_PER_PEER", "8"),
            gateway("GATEWAY_IDLE_TIMEOUT_MS", "3000"),
            gateway("GATEWAY_STALLED_WATCH_MS", "1000"),
            ("*".into(), "RUST_LOG".into(), "warn".into()),
        ],
        services: vec!["mission", "mypage"],
        nats_server: Some(nats),
    };
    let report = attack::run(options).await.unwrap();
    println!("{}", report.render());
    for name in ["forged-signature", "stalled-streams", "connection-flood"] {
        let row = report.row(name).unwrap();
        // The canary's latency is a figure of the machine's load, not a rule
        // of the gateway: `rewardsctl attack` reports it; a test does not time.
        for check in row.findings.checks.iter().filter(|c| !c.what.starts_with("canary p99")) {
            assert!(check.met, "{name}: {} did not hold\n{}", check.what, report.render());
        }
        assert!(row.canary.calls > 0 && row.canary.ok > 0, "{name}: the canary was never served");
    }
    let forged = report.row("forged-signature").unwrap();
    assert!(
        forged.findings.facts.iter().any(|f| f.contains("unverified_budget")),
        "the forger was refused before verification: {:?}",
        forged.findings.facts
    );
    let _ = std::fs::remove_dir_all(run_dir);
}
