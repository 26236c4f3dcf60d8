//! Two mission processes on one PostgreSQL store split a backlog of
//! RewardAllocated: each achieved mission is marked rewarded once.

use std::time::Duration;

use api::game::mission::v1::{self as pb, mission_service_client::MissionServiceClient};
use api::game::reward::v1::RewardAllocated;
use futures::StreamExt as _;
use platform::CancellationToken;
use platform::events::REWARD_STREAM;
use testkit::{AsCaller, Broker, ServiceCommand};

const BACKLOG: usize = 1_000;

/// Achieves FIRST_LOGIN for `players` players through a mission service of
/// the test's own on `database_url`, stopped (drained) before it returns:
/// the missions the rewards of the backlog are for.
async fn achieve_missions(broker: &Broker, database_url: &str, players: usize) -> Vec<pb::Mission> {
    let app = mission::build(testkit::service_config(broker, database_url.to_owned())).await.unwrap();
    let client = MissionServiceClient::connect(format!("http://127.0.0.1:{}", app.port())).await.unwrap();
    let stop = CancellationToken::new();
    let served = tokio::spawn(app.run_until_stopped(stop.clone().cancelled_owned()));
    let missions = futures::stream::iter(0..players)
        .map(|i| {
            let mut client = client.clone();
            async move {
                let player = format!("player-{i}");
                let request = pb::AchieveMissionRequest {
                    customer_id: player.clone(),
                    mission_code: "FIRST_LOGIN".into(),
                    achievement_id: None,
                };
                client.achieve_mission(request.by_player(&player)).await.unwrap().into_inner().mission.unwrap()
            }
        })
        .buffer_unordered(16)
        .collect()
        .await;
    stop.cancel();
    served.await.unwrap().unwrap();
    missions
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_postgresql_two_replicas_split_a_backlog_of_a_thousand_rewards_and_record_each_once() {
    let Some(schema) = testkit::PostgresSchema::create("mission_split") else {
        return;
    };
    let broker = Broker::start().await;
    let missions = achieve_missions(&broker, schema.url(), BACKLOG).await;
    for mission in &missions {
        broker
            .publish(&RewardAllocated {
                event_id: uuid::Uuid::new_v4().to_string(),
                reward_id: uuid::Uuid::new_v4().to_string(),
                mission_id: mission.mission_id.clone(),
                customer_id: mission.customer_id.clone(),
                mission_code: "FIRST_LOGIN".into(),
                points: 100,
                allocated_at: None,
                ..Default::default()
            })
            .await;
    }
    let mission =
        ServiceCommand::new(env!("CARGO_BIN_EXE_mission"), mission::SPEC.grpc_service, schema.url(), &broker.url());
    let split = testkit::split_backlog(
        &broker,
        &schema,
        mission,
        2,
        &[(REWARD_STREAM, "mission-record-reward")],
        BACKLOG as u64,
        Duration::from_secs(60),
    )
    .await
    .unwrap();

    let backlog = i64::try_from(BACKLOG).unwrap();
    assert_eq!(schema.count("SELECT COUNT(*) AS n FROM missions").unwrap(), backlog);
    assert_eq!(schema.count("SELECT COUNT(*) AS n FROM missions WHERE reward_id IS NOT NULL").unwrap(), backlog);
    drop(split);
}
