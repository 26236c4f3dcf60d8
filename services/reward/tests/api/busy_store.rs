//! The store busy: another connection holds SQLite's write lock longer than
//! the service's busy timeout; the consumer's transaction fails, the event is
//! retried with back-off, and everything is applied once the lock is gone.

use std::sync::mpsc;
use std::time::{Duration, Instant};

use diesel::connection::SimpleConnection as _;
use diesel::{Connection as _, SqliteConnection};
use platform::events::MISSION_STREAM;
use testkit::{Broker, TempStore};

use crate::helpers::{eventually, mission_achieved};
use crate::processes::{
    ALLOCATE, allocate_outcome, metric_or_zero, reward_allocated_ids, reward_process, rewards, serving,
};

/// Takes SQLite's write lock on `database_url` (BEGIN IMMEDIATE) in a thread
/// of its own and keeps it until `release` is sent; the thread then commits
/// and reports how long it held the lock.
fn hold_write_lock(database_url: &str) -> (mpsc::Sender<()>, std::thread::JoinHandle<Duration>) {
    let (locked_tx, locked_rx) = mpsc::channel();
    let (release_tx, release_rx) = mpsc::channel::<()>();
    let database_url = database_url.to_owned();
    let holder = std::thread::spawn(move || {
        let mut conn = SqliteConnection::establish(&database_url).unwrap();
        conn.batch_execute("PRAGMA busy_timeout = 10000; BEGIN IMMEDIATE").unwrap();
        let since = Instant::now();
        locked_tx.send(()).unwrap();
        let _ = release_rx.recv();
        conn.batch_execute("COMMIT").unwrap();
        since.elapsed()
    });
    locked_rx.recv().unwrap();
    (release_tx, holder)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_arriving_while_another_connection_holds_the_write_lock_are_retried_and_applied_once_after() {
    let broker = Broker::start().await;
    let store = TempStore::new();
    let database_url = store.sqlite_url("reward");
    let service = serving(reward_process(&broker, &database_url)).await;

    let (release, holder) = hold_write_lock(&database_url);
    let achieved: Vec<_> = (0..5).map(|i| mission_achieved(&format!("player-busy-{i}"), 100)).collect();
    for event in &achieved {
        broker.publish(event).await;
    }

    // The platform waits up to its busy timeout (10 s) for the lock, then the
    // transaction fails and the event is nacked for a later delivery.
    testkit::eventually("a delivery to fail on the locked store", Duration::from_secs(20), || async {
        (metric_or_zero(&service, &allocate_outcome("retried")).await >= 1.0).then_some(())
    })
    .await;
    assert_eq!(rewards(&database_url), 0, "nothing could be written while the lock was held");
    release.send(()).unwrap();
    let held = holder.join().unwrap();
    eprintln!("the write lock was held for {held:?}");
    assert!(service.log().contains("event not applied"), "the failure is logged:\n{}", service.log());

    eventually("every reward to be allocated", || async { (rewards(&database_url) == 5).then_some(()) }).await;
    broker.settled(MISSION_STREAM, ALLOCATE).await;
    assert_eq!(metric_or_zero(&service, &allocate_outcome("applied")).await, 5.0, "each event applied once");
    let redeliveries = format!("rewards_consumer_redeliveries_total{{consumer=\"{ALLOCATE}\"}}");
    assert!(metric_or_zero(&service, &redeliveries).await >= 1.0, "the failed event was delivered again");
    assert_eq!(reward_allocated_ids(&broker, &database_url, 5).await.len(), 5);
}

#[tokio::test]
#[ignore = "slow: holds the store locked for about 90 s; run with `cargo test -p reward -- --ignored`"]
async fn a_valid_event_is_never_dead_lettered_because_the_store_stayed_locked_for_more_than_eight_deliveries() {
    let broker = Broker::start().await;
    let store = TempStore::new();
    let database_url = store.sqlite_url("reward");
    let service = serving(reward_process(&broker, &database_url)).await;

    let (release, holder) = hold_write_lock(&database_url);
    let achieved = mission_achieved("player-locked-out", 100);
    broker.publish(&achieved).await;
    // Each delivery waits the busy timeout (10 s) and fails; hold the lock
    // past the eighth, or until the event was given up on.
    let dead_lettered = format!("rewards_dead_letters_total{{consumer=\"{ALLOCATE}\"}}");
    testkit::eventually("eight failed deliveries, or a dead letter", Duration::from_secs(150), || async {
        let retried = metric_or_zero(&service, &allocate_outcome("retried")).await;
        (retried >= 8.0 || metric_or_zero(&service, &dead_lettered).await >= 1.0).then_some(())
    })
    .await;
    release.send(()).unwrap();
    eprintln!("the write lock was held for {:?}", holder.join().unwrap());

    assert_eq!(
        metric_or_zero(&service, &dead_lettered).await,
        0.0,
        "a valid event was dead-lettered:\n{}",
        service.log()
    );
    eventually("the reward to be allocated", || async { (rewards(&database_url) == 1).then_some(()) }).await;
}
