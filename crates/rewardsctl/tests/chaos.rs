//! A short run of the chaos test, part of the test suite: the real service
//! binaries (built next to `rewardsctl`), a real nats-server, random
//! SIGKILLs every two seconds and at least one broker restart, an event whose
//! rewards expire and a vendor cancelling orders after the fact, then every
//! invariant checked.

#![allow(clippy::unwrap_used)] // a test that cannot proceed should stop right there

use std::path::Path;
use std::time::Duration;

use rewardsctl::chaos;
use rewardsctl::mesh::SERVICES;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_short_chaos_run_loses_nothing_and_applies_nothing_twice() {
    let bin_dir = Path::new(env!("CARGO_BIN_EXE_rewardsctl")).parent().unwrap().to_path_buf();
    let missing: Vec<&str> = SERVICES.iter().map(|s| s.name).filter(|name| !bin_dir.join(name).exists()).collect();
    assert!(
        missing.is_empty(),
        "the service binaries {missing:?} are missing from {}: build them with `cargo build --workspace --bins` \
         (`cargo test --workspace --all-targets` does)",
        bin_dir.display()
    );
    let run_dir = std::env::temp_dir().join(format!("chaos-test-{}", uuid::Uuid::new_v4().simple()));
    let mut options = chaos::Options::new(bin_dir);
    options.missions = 300;
    options.exchanges = 40;
    options.kill_every = Duration::from_secs(2);
    options.seed = 3;
    options.run_dir = run_dir.clone();
    options.nats_server = Some(testkit::nats_server_binary().unwrap());
    // Spread over 12 seconds, so that however fast the machine, the load
    // outlasts several kills.
    options.concurrency = 4;
    options.spread = Some(Duration::from_secs(12));
    options.settle_within = Duration::from_secs(90);
    // Enough cancellations among 40 exchanges that none is all but impossible.
    options.cancel_percent = 25;

    let report = chaos::run(options).await.unwrap();
    report.print();

    let programme = &report.programme;
    assert_eq!(report.missions_driven, 300 + programme.finale_achieved, "the catalogue's missions and the finale");
    assert_eq!(programme.finale_achieved + programme.finale_refused, 60, "every player tried the finale");
    assert!(programme.finale_achieved > 0, "no finale was achieved in its window");
    // A purchase spends the finale's points first (they expire first), so
    // only the finales of players who did not purchase expire.
    assert!(programme.entries_expired > 0, "no finale reward expired");
    assert!(report.purchases_driven > 0, "nobody purchased across entries");
    assert!(report.ledger.conserved(), "{}", report.ledger.describe());
    assert!(programme.orders_cancelled > 0, "the vendor cancelled nothing");
    assert_eq!(programme.reversals, programme.orders_cancelled, "one reversal per cancelled order");
    assert_eq!(report.exchanges_driven, 40);
    assert!(report.broker_restarts >= 1, "nats-server was killed and came back");
    assert!(report.processes_killed >= 4, "only {} kills", report.processes_killed);
    assert_eq!(report.duplicates, Vec::<String>::new());
    assert_eq!(report.losses, Vec::<String>::new());
    assert_eq!(report.mismatches, Vec::<String>::new());
    assert_eq!(report.regressions, Vec::<String>::new());
    assert_eq!(report.failures, Vec::<String>::new());
    assert!(report.time_to_quiescence.is_some());
    // The logs stay for diagnosis when the run failed.
    let _ = std::fs::remove_dir_all(&run_dir);
}
