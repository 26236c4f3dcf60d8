use api::game::reward::v1::{self as pb, RewardAllocated, RewardStatus};
use platform::events::{MISSION_STREAM, REWARD_STREAM};
use tonic::Code;

use crate::helpers::{mission_achieved, reward_id_for, spawn_app};
use testkit::AsCaller;

#[tokio::test]
async fn an_achieved_mission_is_allocated_one_reward_and_reward_allocated_is_published_once() {
    let app = spawn_app(None).await;
    let achieved = mission_achieved("player-1", 300);
    app.publish(&achieved).await;

    let reward_id = reward_id_for(&achieved);
    let reward = app.reward_in(&reward_id, RewardStatus::Allocated).await;
    assert_eq!(reward.mission_id, achieved.mission_id);
    assert_eq!(reward.customer_id, "player-1");
    assert_eq!(reward.mission_code, "FIRST_WIN");
    assert_eq!(reward.points, 300);
    assert!(reward.allocated_at.is_some());

    let published = app.published(REWARD_STREAM, 1).await;
    assert_eq!(published.len(), 1, "exactly one RewardAllocated");
    assert_eq!(published[0].subject.as_str(), "reward.allocated");
    let headers = published[0].headers.as_ref().unwrap();
    let expected_event_id = kernel::derived_uuid(reward_id.parse().unwrap(), b"RewardAllocated").to_string();
    assert_eq!(headers.get("Nats-Msg-Id").unwrap().as_str(), expected_event_id);
    assert_eq!(headers.get("Mission-Id").unwrap().as_str(), achieved.mission_id);
    assert_eq!(headers.get("Customer-Id").unwrap().as_str(), "player-1");
    assert_eq!(headers.get("Event-Type").unwrap().as_str(), "game.reward.v1.RewardAllocated");
    let event: RewardAllocated = prost::Message::decode(published[0].payload.as_ref()).unwrap();
    assert_eq!(
        event,
        RewardAllocated {
            event_id: expected_event_id,
            reward_id,
            mission_id: achieved.mission_id.clone(),
            customer_id: "player-1".into(),
            mission_code: "FIRST_WIN".into(),
            points: 300,
            allocated_at: reward.allocated_at,
            programme_event_id: "LAUNCH".into(),
            event_ends_at: None,
        }
    );
}

#[tokio::test]
async fn the_same_mission_achieved_delivered_again_allocates_nothing_more() {
    let app = spawn_app(None).await;
    let achieved = mission_achieved("player-2", 500);
    app.publish(&achieved).await;
    let reward_id = reward_id_for(&achieved);
    let first = app.reward_in(&reward_id, RewardStatus::Allocated).await;

    // The same event again under a new message id, so JetStream keeps it and
    // the consumer's inbox does not know it: the reward's unique mission
    // makes it a no-op.
    let mut again = achieved.clone();
    again.event_id = uuid::Uuid::new_v4().to_string();
    app.publish(&again).await;
    app.settled(MISSION_STREAM, "reward-allocate").await;

    assert_eq!(app.reward(&reward_id).await.unwrap(), first);
    let published = app.published(REWARD_STREAM, 1).await;
    assert_eq!(published.len(), 1, "still exactly one RewardAllocated");
}

#[tokio::test]
async fn a_mission_promising_no_points_is_allocated_no_reward() {
    let mut app = spawn_app(None).await;
    for points in [0, -5] {
        let achieved = mission_achieved("player-3", points);
        app.publish(&achieved).await;
        app.settled(MISSION_STREAM, "reward-allocate").await;
        let status = app
            .client
            .get_reward(pb::GetRewardRequest { reward_id: reward_id_for(&achieved) }.by_operator())
            .await
            .unwrap_err();
        assert_eq!(status.code(), Code::NotFound, "{points} points");
    }
}
