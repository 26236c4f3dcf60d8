use api::game::reward::v1::RewardStatus;
use platform::events::WALLET_STREAM;

use crate::helpers::{eventually, mission_achieved, reward_exchanged, reward_id_for, reward_issued, spawn_app};

#[tokio::test]
async fn reward_issued_then_reward_exchanged_move_the_reward_to_issued_then_exchanged() {
    let app = spawn_app(None).await;
    let achieved = mission_achieved("player-4", 100);
    app.publish(&achieved).await;
    let reward_id = reward_id_for(&achieved);
    let allocated = app.reward_in(&reward_id, RewardStatus::Allocated).await;

    app.publish(&reward_issued(&achieved)).await;
    let issued = app.reward_in(&reward_id, RewardStatus::Issued).await;
    assert_eq!(issued.points, allocated.points);
    assert_eq!(issued.allocated_at, allocated.allocated_at);

    app.publish(&reward_exchanged(&achieved)).await;
    app.reward_in(&reward_id, RewardStatus::Exchanged).await;
}

#[tokio::test]
async fn a_reward_exchanged_arriving_before_reward_issued_leaves_the_reward_exchanged() {
    let app = spawn_app(None).await;
    let achieved = mission_achieved("player-5", 100);
    app.publish(&achieved).await;
    let reward_id = reward_id_for(&achieved);
    app.reward_in(&reward_id, RewardStatus::Allocated).await;

    app.publish(&reward_exchanged(&achieved)).await;
    app.reward_in(&reward_id, RewardStatus::Exchanged).await;
    app.publish(&reward_issued(&achieved)).await;
    app.settled(WALLET_STREAM, "reward-track-wallet").await;

    let reward = app.reward(&reward_id).await.unwrap();
    assert_eq!(reward.status(), RewardStatus::Exchanged);
}

#[tokio::test]
async fn a_reward_issued_before_its_allocation_is_applied_once_the_mission_achieved_arrives() {
    let app = spawn_app(None).await;
    let achieved = mission_achieved("player-6", 800);
    let reward_id = reward_id_for(&achieved);
    app.publish(&reward_issued(&achieved)).await;

    // The policy found no reward yet and asked for a redelivery, keeping the event.
    eventually("the early RewardIssued to be redelivered", || async {
        let stream = app.js.get_stream(WALLET_STREAM.name).await.ok()?;
        let info = stream.consumer_info("reward-track-wallet").await.ok()?;
        (info.num_redelivered > 0).then_some(())
    })
    .await;
    assert!(app.reward(&reward_id).await.is_none());

    app.publish(&achieved).await;
    let reward = app.reward_in(&reward_id, RewardStatus::Issued).await;
    assert_eq!(reward.points, 800);
}
