use std::time::{Duration, Instant};

use api::game::wallet::v1::{self as pb, WalletEntryStatus};
use tonic::Code;

use crate::helpers::spawn_app;
use testkit::AsCaller;

#[tokio::test]
async fn an_exchange_while_gift_is_unreachable_is_turned_away_at_once_and_leaves_the_entry_available() {
    let app = spawn_app().await;
    let allocated = app.allocate("player-1", 300).await;
    let entry = app.entry_for("player-1", &allocated.reward_id).await;

    let started = Instant::now();
    let request = pb::ExchangeRewardRequest {
        customer_id: "player-1".into(),
        entry_id: entry.entry_id.clone(),
        product_sku: "AVATAR-FRAME".into(),
    };
    let status = app.client.clone().exchange_reward(request.by_player("player-1")).await.unwrap_err();
    assert_eq!(status.code(), Code::Unavailable);
    assert_eq!(status.message(), "the gift exchange is busy; your reward is unchanged, try again later");
    assert!(started.elapsed() < Duration::from_secs(5), "no long timeout: {:?}", started.elapsed());

    let after = app.entry_for("player-1", &allocated.reward_id).await;
    assert_eq!(after.status(), WalletEntryStatus::Available);
    assert_eq!((after.gift_order_id.as_str(), after.product_sku.as_str()), ("", ""));
}

#[tokio::test]
async fn another_players_entry_cannot_be_exchanged() {
    let app = spawn_app().await;
    let allocated = app.allocate("player-1", 300).await;
    let entry = app.entry_for("player-1", &allocated.reward_id).await;
    let request = pb::ExchangeRewardRequest {
        customer_id: "player-2".into(),
        entry_id: entry.entry_id.clone(),
        product_sku: "AVATAR-FRAME".into(),
    };
    let status = app.client.clone().exchange_reward(request.by_player("player-2")).await.unwrap_err();
    assert_eq!(status.code(), Code::PermissionDenied);
    assert_eq!(status.message(), format!("wallet entry {} does not belong to customer player-2", entry.entry_id));
    assert_eq!(app.entry_for("player-1", &allocated.reward_id).await, entry);
}
