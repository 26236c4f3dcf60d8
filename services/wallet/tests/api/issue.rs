use api::game::wallet::v1::{self as pb, RewardIssued, WalletEntryStatus};
use platform::events::{REWARD_STREAM, WALLET_STREAM};
use tonic::Code;

use crate::helpers::spawn_app;
use testkit::AsCaller;

#[tokio::test]
async fn an_allocated_reward_is_issued_into_the_players_wallet_once() {
    let app = spawn_app().await;
    let allocated = app.allocate("player-1", 300).await;
    let entry = app.entry_for("player-1", &allocated.reward_id).await;
    assert_eq!(entry.status(), WalletEntryStatus::Available);
    assert_eq!((entry.points, entry.mission_id.as_str()), (300, allocated.mission_id.as_str()));

    // The same allocation again, under a new message id: still one entry.
    let mut again = allocated.clone();
    again.event_id = uuid::Uuid::new_v4().to_string();
    app.publish(&again).await;
    let other = app.allocate("player-1", 100).await;
    app.entry_for("player-1", &other.reward_id).await;
    assert_eq!(app.wallet("player-1").await.len(), 2);

    // Exactly one RewardIssued per entry reached the WALLET stream.
    app.settled(REWARD_STREAM, "wallet-issue-reward").await;
    let issued: Vec<RewardIssued> = app
        .published(WALLET_STREAM, 2)
        .await
        .iter()
        .map(|m| prost::Message::decode(m.payload.as_ref()).unwrap())
        .collect();
    assert_eq!(issued.len(), 2);
    assert!(issued.iter().any(|e| e.entry_id == entry.entry_id && e.reward_id == allocated.reward_id));
}

#[tokio::test]
async fn a_wallet_holds_only_its_players_entries() {
    let app = spawn_app().await;
    let mine = app.allocate("player-1", 300).await;
    let theirs = app.allocate("player-2", 100).await;
    app.entry_for("player-1", &mine.reward_id).await;
    app.entry_for("player-2", &theirs.reward_id).await;
    let wallet = app.wallet("player-1").await;
    assert_eq!(wallet.len(), 1);
    assert_eq!(wallet[0].reward_id, mine.reward_id);
    assert!(app.wallet("player-3").await.is_empty());
}

#[tokio::test]
async fn malformed_requests_are_invalid_arguments_naming_the_field() {
    let mut app = spawn_app().await;
    let status =
        app.client.get_wallet(pb::GetWalletRequest { customer_id: "a b".into() }.by_operator()).await.unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    assert_eq!(status.message(), "customer_id: may only contain letters, digits, '-', '_' and '.'");
    let request = pb::ExchangeRewardRequest { customer_id: "p".into(), entry_id: "x".into(), product_sku: "S".into() };
    let status = app.client.exchange_reward(request.by_player("p")).await.unwrap_err();
    assert_eq!((status.code(), status.message()), (Code::InvalidArgument, "entry_id: must be a UUID"));
    let request = pb::ExchangeRewardRequest {
        customer_id: "p".into(),
        entry_id: uuid::Uuid::new_v4().to_string(),
        product_sku: "lower".into(),
    };
    let status = app.client.exchange_reward(request.by_player("p")).await.unwrap_err();
    assert_eq!(
        (status.code(), status.message()),
        (Code::InvalidArgument, "product_sku: may only contain A-Z, 0-9, '-' and '_'")
    );
}
