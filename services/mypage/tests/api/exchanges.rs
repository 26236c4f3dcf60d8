//! The page shows the player's exchanges and their fate, and what each
//! entry still holds, so that its available points are the wallet's balance:
//! from the WALLET stream's ExchangePlaced and PointsRefunded, in whatever
//! order they come, on SQLite and PostgreSQL.

use api::game::mypage::v1 as pb;
use api::game::reward::v1::RewardStatus;
use api::game::wallet::v1::{ExchangeStatus, Reservation, WalletEntryStatus};

use crate::helpers::{ExchangeLife, MissionLife, PLACED_AT, REFUNDED_AT, TestApp, spawn_app, spawn_app_on};

/// What the page shows of `entry_id`: its status and remaining points.
fn entry(page: &pb::MyPage, entry_id: &str) -> (WalletEntryStatus, i64) {
    let entry = page.wallet.iter().find(|e| e.entry_id == entry_id).expect("the entry is on the page");
    (entry.status(), entry.remaining_points)
}

/// The exchange as the page should show it once placed.
fn placed(exchange: &ExchangeLife) -> pb::MyPageExchange {
    let mut reservations: Vec<Reservation> = exchange
        .paid
        .iter()
        .map(|(entry_id, reward_id, points)| Reservation {
            entry_id: entry_id.clone(),
            reward_id: reward_id.clone(),
            points: *points,
        })
        .collect();
    reservations.sort_by(|a, b| a.entry_id.cmp(&b.entry_id));
    pb::MyPageExchange {
        exchange_id: exchange.exchange_id.clone(),
        product_sku: "SNOW_SLED".into(),
        price_points: exchange.price(),
        status: ExchangeStatus::Placed.into(),
        gift_order_id: exchange.gift_order_id.clone(),
        reservations,
        placed_at: Some(platform::events::timestamp(PLACED_AT)),
        refunded_at: None,
        cancel_reason: String::new(),
        refunded_points: 0,
        expired_points: 0,
    }
}

/// The exchange as the page should show it once refunded, `expired` points
/// of it past their entry's expiry.
fn refunded(exchange: &ExchangeLife, expired: i64) -> pb::MyPageExchange {
    pb::MyPageExchange {
        status: ExchangeStatus::Refunded.into(),
        refunded_at: Some(platform::events::timestamp(REFUNDED_AT)),
        cancel_reason: "the vendor ran out of sleds".into(),
        refunded_points: exchange.price() - expired,
        expired_points: expired,
        ..placed(exchange)
    }
}

/// Two rewards pay for a sled, the change stays in the second; the vendor
/// cancels and every point comes back; the same events again change nothing.
async fn an_exchange_paid_from_two_rewards_is_placed_then_refunded(app: &TestApp) {
    let (one, two) = (MissionLife::new("player-sled"), MissionLife::new("player-sled"));
    let exchange = ExchangeLife::new(&[(&one, 300), (&two, 200)]);
    app.publish(&one.issued()).await;
    app.publish(&two.issued()).await;
    app.publish(&exchange.placed()).await;
    app.publish(&one.exchanged()).await;

    let page = app
        .page_until("player-sled", "the exchange placed and the first entry used up", |page| {
            page.exchanges == [placed(&exchange)]
                && page.available_points == 100
                && page.wallet.len() == 2
                // Both issues merged: a merge that lost a race comes back later, out of order.
                && page.wallet.iter().all(|e| e.points == 300)
                && page
                    .missions
                    .iter()
                    .any(|m| m.mission_id == one.mission_id && m.reward_status() == RewardStatus::Exchanged)
        })
        .await;
    assert_eq!(entry(&page, &one.entry_id), (WalletEntryStatus::Exchanged, 0));
    // The entry used up shows the exchange's order, as the wallet shows it.
    let used_up = page.wallet.iter().find(|e| e.entry_id == one.entry_id).unwrap();
    assert_eq!(
        (used_up.gift_order_id.as_str(), used_up.product_sku.as_str()),
        (exchange.gift_order_id.as_str(), "SNOW_SLED")
    );
    assert_eq!(entry(&page, &two.entry_id), (WalletEntryStatus::Available, 100));

    app.publish(&exchange.refunded(&[])).await;
    let page =
        app.page_until("player-sled", "the exchange refunded", |page| page.exchanges == [refunded(&exchange, 0)]).await;
    assert_eq!(entry(&page, &one.entry_id), (WalletEntryStatus::Available, 300), "{page:#?}");
    assert_eq!(entry(&page, &two.entry_id), (WalletEntryStatus::Available, 300));
    assert!(page.wallet.iter().all(|e| e.gift_order_id.is_empty()), "no entry is exchanged any more");
    assert_eq!(page.available_points, 600);

    // Redelivered under new event ids, so that only the merge can make them no-ops.
    app.publish(&exchange.placed()).await;
    let exchanged = app.publish(&one.exchanged()).await;
    let last = app.publish(&exchange.refunded(&[])).await;
    app.consumed("WALLET", "mypage-wallet", exchanged).await;
    app.consumed("WALLET", "mypage-exchanges", last).await;
    assert_eq!(app.page("player-sled").await, page, "redeliveries changed nothing, not even the version");
}

/// The refund first, an expiry, then the placement: the page ends as if the
/// events came in their order; points refunded past expiry count no more.
async fn a_refund_that_overtakes_its_exchange_and_an_expiry_end_in_the_same_page(app: &TestApp) {
    let (expiring, kept) = (MissionLife::new("player-late"), MissionLife::new("player-late"));
    let exchange = ExchangeLife::new(&[(&expiring, 100), (&kept, 50)]);
    app.publish(&exchange.refunded(&[&expiring.entry_id])).await;
    app.publish(&expiring.expired()).await;
    app.publish(&kept.issued()).await;
    app.publish(&exchange.placed()).await;
    app.publish(&expiring.issued_expiring()).await;

    let page = app
        .page_until("player-late", "the refund, the expiry and the placement merged", |page| {
            page.exchanges == [refunded(&exchange, 100)]
                && page.wallet.len() == 2
                && page.wallet.iter().all(|e| e.points == 300)
        })
        .await;
    assert_eq!(entry(&page, &expiring.entry_id), (WalletEntryStatus::Expired, 0));
    assert_eq!(entry(&page, &kept.entry_id), (WalletEntryStatus::Available, 300));
    assert_eq!(page.available_points, 300);
}

#[tokio::test]
async fn an_exchange_paid_from_two_rewards_shows_placed_then_refunded_with_the_vendors_reason() {
    an_exchange_paid_from_two_rewards_is_placed_then_refunded(&spawn_app().await).await;
}

#[tokio::test]
async fn on_postgresql_an_exchange_paid_from_two_rewards_shows_placed_then_refunded() {
    let Some(schema) = testkit::PostgresSchema::create("mypage_exchanges") else { return };
    an_exchange_paid_from_two_rewards_is_placed_then_refunded(&spawn_app_on(Some(schema.url().to_owned())).await).await;
}

#[tokio::test]
async fn a_refund_that_overtakes_its_exchange_ends_in_the_same_page() {
    a_refund_that_overtakes_its_exchange_and_an_expiry_end_in_the_same_page(&spawn_app().await).await;
}

#[tokio::test]
async fn on_postgresql_a_refund_that_overtakes_its_exchange_ends_in_the_same_page() {
    let Some(schema) = testkit::PostgresSchema::create("mypage_exchanges_late") else { return };
    a_refund_that_overtakes_its_exchange_and_an_expiry_end_in_the_same_page(
        &spawn_app_on(Some(schema.url().to_owned())).await,
    )
    .await;
}

#[tokio::test]
async fn a_malformed_exchange_is_dead_lettered_and_the_page_moves_on() {
    let app = spawn_app().await;
    let life = MissionLife::new("player-bad");
    let mut bad = ExchangeLife::new(&[(&life, 100)]).placed();
    bad.reservations[0].points = -5;
    app.publish(&bad).await;
    let good = ExchangeLife::new(&[(&life, 100)]);
    app.publish(&good.placed()).await;
    app.publish(&life.issued()).await;

    let page = app
        .page_until("player-bad", "the good exchange", |page| page.exchanges.len() == 1 && page.wallet.len() == 1)
        .await;
    assert_eq!(page.exchanges, [placed(&good)]);
    assert_eq!(page.available_points, 200);
}
