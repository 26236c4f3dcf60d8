//! The page merges the events of a mission's life, whatever their order.

use api::game::mission::v1::MissionStatus;
use api::game::mypage::v1 as pb;
use api::game::reward::v1::RewardStatus;
use api::game::wallet::v1::WalletEntryStatus;

use crate::helpers::{ACHIEVED_AT, MissionLife, spawn_app};

#[tokio::test]
async fn the_full_life_of_a_mission_shows_on_the_page() {
    let app = spawn_app().await;
    let life = MissionLife::new("player-1");
    app.publish(&life.achieved()).await;
    app.publish(&life.allocated()).await;
    app.publish(&life.issued()).await;

    let final_page = life.exchanged_page();
    let issued = pb::MyPage {
        missions: vec![pb::MyPageMission {
            reward_status: RewardStatus::Issued.into(),
            ..final_page.missions[0].clone()
        }],
        wallet: vec![pb::MyPageWalletEntry {
            status: WalletEntryStatus::Available.into(),
            gift_order_id: String::new(),
            product_sku: String::new(),
            ..final_page.wallet[0].clone()
        }],
        available_points: 300,
        ..final_page.clone()
    };
    let before_exchange = app.page_becomes("player-1", &issued).await;
    assert_eq!(before_exchange.missions[0].status(), MissionStatus::Rewarded);
    assert_eq!(before_exchange.missions[0].achieved_at.unwrap().seconds, ACHIEVED_AT / 1000);

    app.publish(&life.exchanged()).await;
    let exchanged = app.page_becomes("player-1", &final_page).await;
    assert!(exchanged.version > before_exchange.version);
}

#[tokio::test]
async fn the_same_events_in_reverse_order_give_the_same_page() {
    let app = spawn_app().await;
    let life = MissionLife::new("player-2");
    app.publish(&life.exchanged()).await;
    app.publish(&life.issued()).await;
    app.publish(&life.allocated()).await;
    app.publish(&life.achieved()).await;

    let page = app.page_becomes("player-2", &life.exchanged_page()).await;
    assert!(page.version > 0);
}

#[tokio::test]
async fn redelivered_events_change_nothing_not_even_the_version() {
    let app = spawn_app().await;
    let life = MissionLife::new("player-3");
    app.publish(&life.achieved()).await;
    app.publish(&life.allocated()).await;
    app.publish(&life.issued()).await;
    app.publish(&life.exchanged()).await;
    let before = app.page_becomes("player-3", &life.exchanged_page()).await;

    // The same events again under new message ids, so that neither JetStream
    // nor the inbox drops them: only the merge can make them no-ops.
    let achieved = app.publish(&life.achieved()).await;
    let allocated = app.publish(&life.allocated()).await;
    app.publish(&life.issued()).await;
    let exchanged = app.publish(&life.exchanged()).await;
    app.consumed("MISSION", "mypage-missions", achieved).await;
    app.consumed("REWARD", "mypage-rewards", allocated).await;
    app.consumed("WALLET", "mypage-wallet", exchanged).await;

    assert_eq!(app.page("player-3").await, before);
}

#[tokio::test]
async fn each_player_sees_only_their_own_missions() {
    let app = spawn_app().await;
    let mine = MissionLife::new("player-4");
    let theirs = MissionLife::new("player-5");
    for life in [&mine, &theirs] {
        app.publish(&life.exchanged()).await;
        app.publish(&life.issued()).await;
        app.publish(&life.allocated()).await;
        app.publish(&life.achieved()).await;
    }
    app.page_becomes("player-4", &mine.exchanged_page()).await;
    app.page_becomes("player-5", &theirs.exchanged_page()).await;
}
