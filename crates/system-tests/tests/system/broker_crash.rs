//! nats-server killed (SIGKILL) in the middle of the flow and restarted on
//! the same port and store: missions achieved before, during and after the
//! outage are each rewarded, issued to the wallet and shown on my page,
//! exactly once.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use api::game::mission::v1 as mission;
use api::game::reward::v1 as reward;
use api::game::wallet::v1 as wallet;
use system_tests::{Mesh, MeshOptions};
use testkit::eventually;

use crate::clients::{Clients, SETTLE, player};

const CODES: [&str; 5] = ["FIRST_LOGIN", "FIRST_WIN", "INVITE_FRIEND", "WEEKLY_QUEST", "EVENT_CHAMPION"];
/// The points of all of [`CODES`].
const ALL_POINTS: i64 = 100 + 300 + 500 + 800 + 2000;
/// How long the broker stays down: long enough for the clients' reconnect
/// back-off and the relay's PubAck timeout to come into play.
const OUTAGE: Duration = Duration::from_secs(2);

/// One player achieving every mission of the catalogue.
async fn achieve_all(c: &Clients) -> (String, Vec<mission::Mission>) {
    let customer = player();
    let mut missions = Vec::new();
    for code in CODES {
        let achieved = c.achieve(&customer, code).await;
        assert_eq!(achieved.status(), mission::MissionStatus::Achieved);
        missions.push(achieved);
    }
    (customer, missions)
}

/// Waits until every mission of `customer` is rewarded, in the wallet and on
/// my page, then checks that each appears exactly once everywhere.
async fn each_exactly_once(c: &Clients, customer: &str, missions: &[mission::Mission]) {
    let mut rewards = HashSet::new();
    for achieved in missions {
        let rewarded = c.rewarded(&achieved.mission_id).await;
        assert!(rewards.insert(rewarded.reward_id), "one reward per mission");
    }
    let entries = eventually("the wallet to hold every reward", SETTLE, || async {
        let entries = c.wallet(customer).await;
        (entries.len() >= CODES.len()).then_some(entries)
    })
    .await;
    let in_wallet: HashSet<String> = entries.iter().map(|e| e.reward_id.clone()).collect();
    assert_eq!(entries.len(), CODES.len(), "exactly one wallet entry per reward");
    assert_eq!(in_wallet, rewards);

    let page = eventually("my page to converge", SETTLE, || async {
        let page = c.my_page(customer).await?;
        let done = page.missions.len() >= CODES.len()
            && page.wallet.len() >= CODES.len()
            && page.missions.iter().all(|m| {
                m.status() == mission::MissionStatus::Rewarded && m.reward_status() == reward::RewardStatus::Issued
            });
        done.then_some(page)
    })
    .await;
    assert_eq!((page.missions.len(), page.wallet.len()), (CODES.len(), CODES.len()), "each shown once");
    let shown: HashSet<String> = page.missions.iter().map(|m| m.reward_id.clone()).collect();
    assert_eq!(shown, rewards);
    assert!(page.wallet.iter().all(|w| w.status() == wallet::WalletEntryStatus::Available));
    assert_eq!(page.available_points, ALL_POINTS);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn missions_achieved_before_during_and_after_a_broker_crash_are_each_rewarded_issued_and_shown_exactly_once() {
    let mut mesh = Mesh::start(MeshOptions::default()).await;
    let c = Clients::of(&mesh).await;

    // Before: the crash catches these in the middle of the flow.
    let before = achieve_all(&c).await;
    mesh.nats.kill();
    let killed = Instant::now();

    // During: commands still succeed; their events wait in the outbox.
    let during = achieve_all(&c).await;
    tokio::time::sleep(OUTAGE.saturating_sub(killed.elapsed())).await;
    mesh.nats.restart().unwrap();

    // After: the flow resumes with every service reconnected.
    let after = achieve_all(&c).await;

    let started = Instant::now();
    for (customer, missions) in [&before, &during, &after] {
        each_exactly_once(&c, customer, missions).await;
    }
    eprintln!("converged {:.2?} after the broker came back", started.elapsed());
}
