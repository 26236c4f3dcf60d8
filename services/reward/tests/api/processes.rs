//! The reward binary as child processes (to kill them, run replicas, and read
//! their metrics), and direct reads of their SQLite file.

use std::collections::HashSet;
use std::time::Duration;

use async_nats::jetstream::consumer::{AckPolicy, pull};
use diesel::{Connection as _, RunQueryDsl as _, SqliteConnection};
use platform::events::{MISSION_STREAM, REWARD_STREAM};
use testkit::{Broker, ServiceCommand, ServiceProcess};

/// How long a process may take to start, or to reach a failpoint.
pub const WITHIN: Duration = Duration::from_secs(15);

/// The durable consumer that allocates rewards.
pub const ALLOCATE: &str = "reward-allocate";

/// The command starting the reward binary on `database_url` and the broker.
pub fn reward_process(broker: &Broker, database_url: &str) -> ServiceCommand {
    ServiceCommand::new(env!("CARGO_BIN_EXE_reward"), reward::SPEC.grpc_service, database_url, &broker.url())
}

/// Starts the command and waits until it serves.
pub async fn serving(command: ServiceCommand) -> ServiceProcess {
    let mut process = command.spawn().unwrap();
    process.wait_healthy(WITHIN).await.unwrap();
    process
}

/// The series of `reward-allocate`'s deliveries with `outcome`.
pub fn allocate_outcome(outcome: &str) -> String {
    format!("rewards_consumer_events_total{{consumer=\"{ALLOCATE}\",outcome=\"{outcome}\"}}")
}

/// The value of `series` on `process`; 0 while the series does not exist yet.
pub async fn metric_or_zero(process: &ServiceProcess, series: &str) -> f64 {
    process.metric(series).await.unwrap_or(0.0)
}

/// Creates `reward-allocate` before the service does, as the service would
/// but with a short ack wait: a killed process's unacked event comes back
/// after `ack_wait`, and the default (30 s) would make a slow test.
/// The service finds the durable and uses it as it is.
pub async fn create_allocate_consumer_with_ack_wait(broker: &Broker, ack_wait: Duration) {
    let stream = MISSION_STREAM.ensure(&broker.js).await.unwrap();
    stream
        .create_consumer(pull::Config {
            durable_name: Some(ALLOCATE.to_owned()),
            filter_subjects: vec!["mission.achieved".to_owned()],
            ack_policy: AckPolicy::Explicit,
            ack_wait,
            max_ack_pending: 1024,
            max_deliver: -1,
            ..Default::default()
        })
        .await
        .unwrap();
}

#[derive(diesel::QueryableByName)]
struct Count {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    n: i64,
}

/// Runs a `SELECT COUNT(*) AS n …` on the SQLite file at `database_url`,
/// beside the running services (WAL: readers never wait for the writer).
pub fn count(database_url: &str, query: &str) -> i64 {
    let mut conn = SqliteConnection::establish(database_url).unwrap();
    diesel::sql_query("PRAGMA busy_timeout = 5000").execute(&mut conn).unwrap();
    diesel::sql_query(query).get_result::<Count>(&mut conn).unwrap().n
}

/// Rewards stored.
pub fn rewards(database_url: &str) -> i64 {
    count(database_url, "SELECT COUNT(*) AS n FROM rewards")
}

/// Outbox rows not yet marked published.
pub fn unpublished(database_url: &str) -> i64 {
    count(database_url, "SELECT COUNT(*) AS n FROM outbox WHERE published_at IS NULL")
}

/// Every RewardAllocated on the REWARD stream, once the outbox is drained,
/// with a check that no event id appears twice.
pub async fn reward_allocated_ids(broker: &Broker, database_url: &str, expected: u64) -> HashSet<String> {
    crate::helpers::eventually("the outbox to be drained", || async { (unpublished(database_url) == 0).then_some(()) })
        .await;
    let messages = broker.published(REWARD_STREAM, expected).await;
    let ids: HashSet<String> =
        messages.iter().map(|m| m.headers.as_ref().unwrap().get("Nats-Msg-Id").unwrap().as_str().to_owned()).collect();
    assert_eq!(ids.len(), messages.len(), "a RewardAllocated appears twice on REWARD");
    ids
}
