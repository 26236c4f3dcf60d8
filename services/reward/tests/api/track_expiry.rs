use api::game::reward::v1::RewardStatus;
use platform::events::{REWARD_STREAM, WALLET_STREAM};

use crate::helpers::{
    TestApp, mission_achieved, points_expired, reward_exchanged, reward_id_for, reward_issued, spawn_app,
};

/// A reward issued, then expired in the wallet: EXPIRED once, whatever
/// arrives again or late. Shared by the SQLite and PostgreSQL tests.
async fn an_expiry_makes_the_reward_expired_once(app: &TestApp, customer: &str) {
    let achieved = mission_achieved(customer, 120);
    app.publish(&achieved).await;
    let reward_id = reward_id_for(&achieved);
    app.reward_in(&reward_id, RewardStatus::Allocated).await;
    app.publish(&reward_issued(&achieved)).await;
    let issued = app.reward_in(&reward_id, RewardStatus::Issued).await;

    let expired = points_expired(&achieved);
    app.publish(&expired).await;
    let reward = app.reward_in(&reward_id, RewardStatus::Expired).await;
    assert_eq!((reward.points, reward.allocated_at), (issued.points, issued.allocated_at));

    // The same expiry again (a re-publish under a new id, which the inbox
    // cannot recognise), and a late exchange and issue: nothing moves back.
    let mut again = expired.clone();
    again.event_id = uuid::Uuid::new_v4().to_string();
    app.publish(&again).await;
    app.publish(&reward_exchanged(&achieved)).await;
    app.publish(&reward_issued(&achieved)).await;
    app.settled(WALLET_STREAM, "reward-track-expiry").await;
    app.settled(WALLET_STREAM, "reward-track-wallet").await;
    assert_eq!(app.reward(&reward_id).await.unwrap().status(), RewardStatus::Expired);
    assert_eq!(app.published(REWARD_STREAM, 1).await.len(), 1, "an expiry publishes nothing");
}

#[tokio::test]
async fn points_expired_in_the_wallet_make_the_reward_expired() {
    let app = spawn_app(None).await;
    an_expiry_makes_the_reward_expired_once(&app, "player-31").await;
}

#[tokio::test]
async fn on_postgresql_points_expired_in_the_wallet_make_the_reward_expired() {
    let Some(schema) = testkit::PostgresSchema::create("reward") else {
        return;
    };
    let app = spawn_app(Some(schema.url().to_owned())).await;
    an_expiry_makes_the_reward_expired_once(&app, "player-32").await;
}

#[tokio::test]
async fn an_expiry_before_the_allocation_is_applied_once_the_mission_achieved_arrives() {
    let app = spawn_app(None).await;
    let achieved = mission_achieved("player-33", 70);
    let reward_id = reward_id_for(&achieved);
    app.publish(&points_expired(&achieved)).await;

    crate::helpers::eventually("the early PointsExpired to be redelivered", || async {
        let stream = app.js.get_stream(WALLET_STREAM.name).await.ok()?;
        let info = stream.consumer_info("reward-track-expiry").await.ok()?;
        (info.num_redelivered > 0).then_some(())
    })
    .await;
    assert!(app.reward(&reward_id).await.is_none());

    app.publish(&achieved).await;
    app.reward_in(&reward_id, RewardStatus::Expired).await;
}
