//! Two reward processes on one store (SQLite, then PostgreSQL) and one
//! durable consumer split a backlog between them, and every event's effect
//! happens exactly once.

use std::time::{Duration, Instant};

use platform::events::{MISSION_STREAM, REWARD_STREAM};
use testkit::{Broker, TempStore};

use crate::helpers::mission_achieved;
use crate::processes::{
    ALLOCATE, WITHIN, allocate_outcome, count, metric_or_zero, reward_allocated_ids, reward_process, rewards, serving,
};

const BACKLOG: usize = 1_000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_split_a_backlog_of_a_thousand_missions_and_allocate_each_reward_exactly_once() {
    let broker = Broker::start().await;
    let store = TempStore::new();
    let database_url = store.sqlite_url("reward");

    // The backlog is on the stream before either replica exists.
    for i in 0..BACKLOG {
        broker.publish(&mission_achieved(&format!("player-{}", i % 50), 100)).await;
    }

    let started = Instant::now();
    let (first, second) =
        tokio::join!(serving(reward_process(&broker, &database_url)), serving(reward_process(&broker, &database_url)));
    testkit::eventually("both replicas to drain the backlog", Duration::from_secs(60), || async {
        let stream = broker.js.get_stream(MISSION_STREAM.name).await.ok()?;
        let info = stream.consumer_info(ALLOCATE).await.ok()?;
        let drained = info.num_pending == 0 && info.num_ack_pending == 0;
        (drained && rewards(&database_url) == i64::try_from(BACKLOG).unwrap()).then_some(())
    })
    .await;
    let elapsed = started.elapsed();
    #[allow(clippy::cast_precision_loss)] // a thousand events fit an f64 exactly
    let rate = BACKLOG as f64 / elapsed.as_secs_f64();

    let applied = (
        metric_or_zero(&first, &allocate_outcome("applied")).await,
        metric_or_zero(&second, &allocate_outcome("applied")).await,
    );
    let duplicates = (
        metric_or_zero(&first, &allocate_outcome("duplicate")).await,
        metric_or_zero(&second, &allocate_outcome("duplicate")).await,
    );
    eprintln!(
        "{BACKLOG} MissionAchieved drained by two replicas in {elapsed:.2?} ({rate:.0} events/s); \
         applied {applied:?}, found already applied {duplicates:?}"
    );
    assert!(applied.0 > 0.0 && applied.1 > 0.0, "both replicas took a share: {applied:?}");
    #[allow(clippy::cast_precision_loss)] // as above
    let total = BACKLOG as f64;
    assert_eq!(applied.0 + applied.1, total, "every event applied once, none twice: {applied:?}");

    let backlog = i64::try_from(BACKLOG).unwrap();
    assert_eq!(rewards(&database_url), backlog);
    assert_eq!(count(&database_url, "SELECT COUNT(DISTINCT mission_id) AS n FROM rewards"), backlog);
    assert_eq!(count(&database_url, "SELECT COUNT(*) AS n FROM inbox WHERE consumer = 'reward-allocate'"), backlog);
    // Both relays publish from the same outbox; JetStream keeps one copy of each.
    let published = reward_allocated_ids(&broker, &database_url, u64::try_from(BACKLOG).unwrap()).await;
    assert_eq!(published.len(), BACKLOG, "exactly one RewardAllocated per reward");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_started_together_on_a_new_store_both_come_up() {
    let broker = Broker::start().await;
    for round in 0..10 {
        let store = TempStore::new();
        let database_url = store.sqlite_url("reward");
        let mut first = reward_process(&broker, &database_url).spawn().unwrap();
        let mut second = reward_process(&broker, &database_url).spawn().unwrap();
        let (first, second) = tokio::join!(first.wait_healthy(WITHIN), second.wait_healthy(WITHIN));
        for started in [first, second] {
            if let Err(error) = started {
                panic!("round {round}: a replica did not start: {error:#}");
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_postgresql_two_replicas_split_a_backlog_of_a_thousand_missions_and_allocate_each_reward_once() {
    let Some(schema) = testkit::PostgresSchema::create("reward_split") else {
        return;
    };
    let broker = Broker::start().await;
    for i in 0..BACKLOG {
        broker.publish(&mission_achieved(&format!("player-{}", i % 50), 100)).await;
    }
    let split = testkit::split_backlog(
        &broker,
        &schema,
        reward_process(&broker, schema.url()),
        2,
        &[(MISSION_STREAM, ALLOCATE)],
        BACKLOG as u64,
        Duration::from_secs(60),
    )
    .await
    .unwrap();

    let backlog = i64::try_from(BACKLOG).unwrap();
    assert_eq!(schema.count("SELECT COUNT(DISTINCT mission_id) AS n FROM rewards").unwrap(), backlog);
    assert_eq!(schema.count("SELECT COUNT(*) AS n FROM rewards").unwrap(), backlog);
    // Both relays publish from the same outbox; JetStream keeps one copy of each.
    let published = testkit::published_once(&broker, &schema, REWARD_STREAM, BACKLOG as u64).await.unwrap();
    assert_eq!(published.len(), BACKLOG, "exactly one RewardAllocated per reward");
    drop(split);
}
