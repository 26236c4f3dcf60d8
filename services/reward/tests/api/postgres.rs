use api::game::reward::v1::RewardStatus;
use platform::events::{MISSION_STREAM, REWARD_STREAM};

use crate::helpers::{mission_achieved, reward_exchanged, reward_id_for, reward_issued, spawn_app};

#[tokio::test]
async fn on_postgresql_a_reward_is_allocated_once_and_follows_the_wallet() {
    let Some(schema) = testkit::PostgresSchema::create("reward") else {
        return;
    };
    let app = spawn_app(Some(schema.url().to_owned())).await;
    let achieved = mission_achieved("player-7", 300);
    app.publish(&achieved).await;
    let reward_id = reward_id_for(&achieved);
    let first = app.reward_in(&reward_id, RewardStatus::Allocated).await;

    let mut again = achieved.clone();
    again.event_id = uuid::Uuid::new_v4().to_string();
    app.publish(&again).await;
    app.settled(MISSION_STREAM, "reward-allocate").await;
    assert_eq!(app.reward(&reward_id).await.unwrap(), first);
    assert_eq!(app.published(REWARD_STREAM, 1).await.len(), 1);

    app.publish(&reward_exchanged(&achieved)).await;
    app.reward_in(&reward_id, RewardStatus::Exchanged).await;
    app.publish(&reward_issued(&achieved)).await;
    app.settled(platform::events::WALLET_STREAM, "reward-track-wallet").await;
    assert_eq!(app.reward(&reward_id).await.unwrap().status(), RewardStatus::Exchanged);
}
