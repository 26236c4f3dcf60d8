//! The database failing: the reward service on a PostgreSQL server of the
//! test's own, whose postmaster is SIGKILLed and then restarted. Meanwhile
//! callers get UNAVAILABLE "the service's store is unavailable" well within
//! their deadline, the store's health entry turns NOT_SERVING and back,
//! events that arrive are held and applied once the store is back, the
//! outbox relay resumes, nothing is dead-lettered, and the same process
//! (its pooled connections replaced) serves again.

use std::time::{Duration, Instant};

use api::game::reward::v1::{GetRewardRequest, RewardStatus, reward_service_client::RewardServiceClient};
use platform::events::{DEAD_LETTER_STREAM, REWARD_STREAM};
use platform::grpc::STORE_UNAVAILABLE;
use platform::host::DATABASE_HEALTH;
use testkit::{AsCaller, Broker, PostgresServer, ServiceCommand};
use tonic::Code;
use tonic::transport::Channel;

use crate::helpers::{mission_achieved, reward_id_for};
use crate::processes::{ALLOCATE, WITHIN, metric_or_zero};

/// The deadline every call is sent with.
const DEADLINE: Duration = Duration::from_secs(2);
/// Missions achieved while the store is down.
const DURING_OUTAGE: usize = 20;

/// GetReward with [`DEADLINE`], and how long the answer took.
async fn get_reward(
    client: &mut RewardServiceClient<Channel>,
    reward_id: &str,
) -> (Result<RewardStatus, tonic::Status>, Duration) {
    let mut request = GetRewardRequest { reward_id: reward_id.to_owned() }.by_operator();
    request.set_timeout(DEADLINE);
    let started = Instant::now();
    let answer = client.get_reward(request).await.map(|r| r.into_inner().reward.unwrap_or_default().status());
    (answer, started.elapsed())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn while_postgresql_is_killed_and_restarted_calls_are_unavailable_health_follows_and_nothing_is_lost() {
    let Some(mut postgres) = PostgresServer::start().await.unwrap() else {
        return;
    };
    postgres.create_database("reward").await.unwrap();
    let broker = Broker::start().await;
    let command = ServiceCommand::new(
        env!("CARGO_BIN_EXE_reward"),
        reward::SPEC.grpc_service,
        &postgres.url("reward"),
        &broker.url(),
    );
    let mut service = command.spawn().unwrap();
    service.wait_healthy(WITHIN).await.unwrap();
    let mut client = RewardServiceClient::connect(service.grpc_url()).await.unwrap();
    let before = mission_achieved("player-before", 100);
    broker.publish(&before).await;
    let before_id = reward_id_for(&before);
    testkit::eventually("the first reward", WITHIN, || {
        let mut client = client.clone();
        let id = before_id.clone();
        async move { (get_reward(&mut client, &id).await.0.ok()? == RewardStatus::Allocated).then_some(()) }
    })
    .await;

    postgres.kill();
    let killed = Instant::now();
    let mut latencies = Vec::new();
    for _ in 0..5 {
        let (answer, took) = get_reward(&mut client, &before_id).await;
        let status = answer.expect_err("no answer from a dead store");
        assert_eq!((status.code(), status.message()), (Code::Unavailable, STORE_UNAVAILABLE), "after {took:?}");
        assert!(took < DEADLINE, "answered within the deadline: {took:?}");
        latencies.push(took);
    }
    service.wait_serving(DATABASE_HEALTH, false, Duration::from_secs(5)).await.unwrap();
    let not_serving = killed.elapsed();
    assert_eq!(service.serving(reward::SPEC.grpc_service).await, Some(false), "the service follows its store");

    let during: Vec<_> = (0..DURING_OUTAGE).map(|i| mission_achieved(&format!("player-{i}"), 100)).collect();
    for event in &during {
        broker.publish(event).await;
    }
    // Down for a few seconds, as a restarting server is.
    tokio::time::sleep(Duration::from_secs(3).saturating_sub(killed.elapsed())).await;
    let (answer, late) = get_reward(&mut client, &before_id).await;
    assert_eq!(answer.unwrap_err().code(), Code::Unavailable);
    let down_for = killed.elapsed();

    postgres.restart().await.unwrap();
    let restarted = Instant::now();
    service.wait_serving(DATABASE_HEALTH, true, Duration::from_secs(10)).await.unwrap();
    let serving_again = restarted.elapsed();
    assert_eq!(get_reward(&mut client, &before_id).await.0.unwrap(), RewardStatus::Allocated);
    for event in &during {
        let id = reward_id_for(event);
        testkit::eventually("a reward of the outage", Duration::from_secs(10), || {
            let mut client = client.clone();
            let id = id.clone();
            async move { (get_reward(&mut client, &id).await.0.ok()? == RewardStatus::Allocated).then_some(()) }
        })
        .await;
    }
    let applied_after = restarted.elapsed();
    // The relay resumed: every reward's event is on REWARD, once.
    let published = broker.published(REWARD_STREAM, 1 + DURING_OUTAGE as u64).await;
    assert_eq!(published.len(), 1 + DURING_OUTAGE);

    let dead_letters = format!("rewards_dead_letters_total{{consumer=\"{ALLOCATE}\"}}");
    assert_eq!(metric_or_zero(&service, &dead_letters).await, 0.0, "nothing dead-lettered");
    if let Ok(mut stream) = broker.js.get_stream(DEAD_LETTER_STREAM.name).await {
        assert_eq!(stream.info().await.unwrap().state.messages, 0, "nothing dead-lettered");
    }
    let log = service.log();
    assert!(log.contains("the store is unavailable"), "the outage is logged:\n{log}");
    assert!(log.contains("the store is available again"), "so is the recovery:\n{log}");
    eprintln!(
        "store down for {down_for:.2?}: GetReward answered UNAVAILABLE {STORE_UNAVAILABLE:?} in {latencies:.1?} \
         (first to fifth call), {late:.1?} three seconds in; health NOT_SERVING {not_serving:.2?} after the kill; \
         SERVING {serving_again:.2?} after the restart; the {DURING_OUTAGE} missions of the outage rewarded \
         {applied_after:.2?} after it; 0 dead letters"
    );
}
