//! The reward binary killed with SIGKILL after a consumer's effect committed
//! but before the event was acknowledged: the redelivery is a no-op.

use std::time::Duration;

use api::game::reward::v1::RewardAllocated;
use platform::events::MISSION_STREAM;
use platform::failpoint::CONSUMER_BEFORE_ACK;
use testkit::{Broker, TempStore};

use crate::helpers::{eventually, mission_achieved, reward_id_for};
use crate::processes::{
    WITHIN, allocate_outcome, count, create_allocate_consumer_with_ack_wait, metric_or_zero, reward_allocated_ids,
    reward_process, rewards, serving,
};

#[tokio::test]
async fn a_process_killed_between_the_effect_and_the_ack_allocates_one_reward_and_sees_the_redelivery_as_a_duplicate() {
    let broker = Broker::start().await;
    let store = TempStore::new();
    let database_url = store.sqlite_url("reward");
    create_allocate_consumer_with_ack_wait(&broker, Duration::from_secs(2)).await;

    let mut crashed = serving(reward_process(&broker, &database_url).failpoint(CONSUMER_BEFORE_ACK)).await;
    let achieved = mission_achieved("player-crash", 300);
    broker.publish(&achieved).await;
    crashed.wait_failpoint(WITHIN).await.unwrap();
    assert_eq!(rewards(&database_url), 1, "the effect committed before the crash");
    crashed.kill();

    let restarted = serving(reward_process(&broker, &database_url)).await;
    eventually("the restarted process to see the redelivery", || async {
        (metric_or_zero(&restarted, &allocate_outcome("duplicate")).await >= 1.0).then_some(())
    })
    .await;
    broker.settled(MISSION_STREAM, "reward-allocate").await;
    assert_eq!(metric_or_zero(&restarted, &allocate_outcome("applied")).await, 0.0, "nothing applied a second time");
    assert_eq!(rewards(&database_url), 1);
    assert_eq!(count(&database_url, "SELECT COUNT(*) AS n FROM inbox WHERE consumer = 'reward-allocate'"), 1);

    // Whichever process published RewardAllocated, there is exactly one.
    let ids = reward_allocated_ids(&broker, &database_url, 1).await;
    let reward_id = reward_id_for(&achieved);
    let expected = kernel::derived_uuid(reward_id.parse().unwrap(), b"RewardAllocated").to_string();
    assert_eq!(ids.into_iter().collect::<Vec<_>>(), vec![expected]);
    let message = &broker.published(platform::events::REWARD_STREAM, 1).await[0];
    let event: RewardAllocated = prost::Message::decode(message.payload.as_ref()).unwrap();
    assert_eq!((event.reward_id, event.mission_id, event.points), (reward_id, achieved.mission_id, 300));
}
