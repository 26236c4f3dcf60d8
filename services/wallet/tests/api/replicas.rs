//! Two wallet processes on one PostgreSQL store split a backlog of
//! RewardAllocated: each reward is issued into the wallet once.

use std::time::Duration;

use api::game::reward::v1::RewardAllocated;
use platform::events::{REWARD_STREAM, WALLET_STREAM};
use testkit::{Broker, ServiceCommand};

const BACKLOG: usize = 1_000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_postgresql_two_replicas_split_a_backlog_of_a_thousand_rewards_and_issue_each_once() {
    let Some(schema) = testkit::PostgresSchema::create("wallet_split") else {
        return;
    };
    let broker = Broker::start().await;
    for i in 0..BACKLOG {
        broker
            .publish(&RewardAllocated {
                event_id: uuid::Uuid::new_v4().to_string(),
                reward_id: uuid::Uuid::new_v4().to_string(),
                mission_id: uuid::Uuid::new_v4().to_string(),
                customer_id: format!("player-{}", i % 50),
                mission_code: "FIRST_WIN".into(),
                points: 100,
                allocated_at: None,
                ..Default::default()
            })
            .await;
    }
    let wallet =
        ServiceCommand::new(env!("CARGO_BIN_EXE_wallet"), wallet::SPEC.grpc_service, schema.url(), &broker.url())
            .env("GIFT_URL", &format!("http://127.0.0.1:{}", testkit::free_port()));
    let split = testkit::split_backlog(
        &broker,
        &schema,
        wallet,
        2,
        &[(REWARD_STREAM, "wallet-issue-reward")],
        BACKLOG as u64,
        Duration::from_secs(60),
    )
    .await
    .unwrap();

    let backlog = i64::try_from(BACKLOG).unwrap();
    assert_eq!(schema.count("SELECT COUNT(DISTINCT reward_id) AS n FROM wallet_entries").unwrap(), backlog);
    assert_eq!(schema.count("SELECT COUNT(*) AS n FROM wallet_entries").unwrap(), backlog);
    let published = testkit::published_once(&broker, &schema, WALLET_STREAM, BACKLOG as u64).await.unwrap();
    assert_eq!(published.len(), BACKLOG, "exactly one RewardIssued per reward");
    drop(split);
}
