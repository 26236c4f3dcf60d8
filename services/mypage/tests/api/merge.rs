//! The page merges the events of a mission's life, whatever their order.

use api::game::mission::v1::MissionStatus;
use api::game::mypage::v1 as pb;
use api::game::reward::v1::RewardStatus;
use api::game::wallet::v1::WalletEntryStatus;

use crate::helpers::{ACHIEVED_AT, EXPIRES_AT, MissionLife, TestApp, spawn_app, spawn_app_on, spawn_app_with};

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
            remaining_points: 300,
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

/// A reward of an event shows when it expires, then that it expired, its
/// points no longer available, whatever order the events come in.
async fn an_expiring_reward_shows_when_it_expires_then_expired(app: &TestApp) {
    let (expiring, reversed) = (MissionLife::new("player-exp"), MissionLife::new("player-rev"));
    app.publish(&expiring.allocated()).await;
    app.publish(&expiring.issued_expiring()).await;
    let issued = app
        .page_becomes("player-exp", &expected(&expiring, WalletEntryStatus::Available, RewardStatus::Issued, 300))
        .await;
    assert_eq!(issued.wallet[0].expires_at.unwrap().seconds, EXPIRES_AT / 1000);

    app.publish(&expiring.expired()).await;
    app.page_becomes("player-exp", &expected(&expiring, WalletEntryStatus::Expired, RewardStatus::Expired, 0)).await;

    app.publish(&reversed.expired()).await;
    app.publish(&reversed.issued_expiring()).await;
    app.publish(&reversed.allocated()).await;
    app.page_becomes("player-rev", &expected(&reversed, WalletEntryStatus::Expired, RewardStatus::Expired, 0)).await;
}

/// The page of `life` without its MissionAchieved: the entry `status`, the
/// reward `reward`, `available` points.
fn expected(life: &MissionLife, status: WalletEntryStatus, reward: RewardStatus, available: i64) -> pb::MyPage {
    let page = life.exchanged_page();
    pb::MyPage {
        missions: vec![pb::MyPageMission {
            mission_code: "FIRST_WIN".into(),
            reward_status: reward.into(),
            achieved_at: None,
            ..page.missions[0].clone()
        }],
        wallet: vec![pb::MyPageWalletEntry {
            status: status.into(),
            gift_order_id: String::new(),
            product_sku: String::new(),
            expires_at: Some(platform::events::timestamp(EXPIRES_AT)),
            remaining_points: available,
            ..page.wallet[0].clone()
        }],
        available_points: available,
        ..page
    }
}

#[tokio::test]
async fn an_expiring_reward_shows_when_it_expires_and_then_that_it_expired() {
    an_expiring_reward_shows_when_it_expires_then_expired(&spawn_app().await).await;
}

#[tokio::test]
async fn on_postgresql_an_expiring_reward_shows_when_it_expires_and_then_that_it_expired() {
    let Some(schema) = testkit::PostgresSchema::create("mypage_expiry") else { return };
    an_expiring_reward_shows_when_it_expires_then_expired(&spawn_app_on(Some(schema.url().to_owned())).await).await;
}

#[tokio::test]
async fn the_wallet_consumer_an_earlier_release_declared_is_given_the_expiry_events() {
    use api::game::wallet::v1::{RewardExchanged, RewardIssued};
    use async_nats::jetstream::consumer::{AckPolicy, pull};
    use platform::events::{Event as _, WALLET_STREAM};
    // The durable consumer as the release before expiry left it on the broker.
    let broker = testkit::Broker::start().await;
    let stream = WALLET_STREAM.ensure(&broker.js).await.unwrap();
    let earlier = pull::Config {
        durable_name: Some("mypage-wallet".into()),
        filter_subjects: vec![RewardIssued::SUBJECT.into(), RewardExchanged::SUBJECT.into()],
        ack_policy: AckPolicy::Explicit,
        ..Default::default()
    };
    stream.create_consumer(earlier).await.unwrap();

    let app = spawn_app_with(broker, None).await;
    let life = MissionLife::new("player-upgraded");
    app.publish(&life.allocated()).await;
    app.publish(&life.issued_expiring()).await;
    app.publish(&life.expired()).await;

    app.page_becomes("player-upgraded", &expected(&life, WalletEntryStatus::Expired, RewardStatus::Expired, 0)).await;
}
