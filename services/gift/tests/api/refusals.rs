use api::game::gift::v1 as pb;
use tonic::Code;

use crate::helpers::{exchange_request, spawn_app};

#[tokio::test]
async fn a_reward_worth_less_than_the_price_is_refused_and_takes_no_unit() {
    let app = spawn_app(None).await;
    let status = app.refused(exchange_request("entry-1:1", "PLUSH-MASCOT", 300)).await;
    assert_eq!(
        (status.code(), status.message()),
        (Code::FailedPrecondition, "not enough points: PLUSH-MASCOT costs 800 points, the reward is worth 300")
    );
    assert_eq!(app.stock_of("PLUSH-MASCOT").await, 25);
}

#[tokio::test]
async fn a_product_whose_last_unit_is_gone_is_out_of_stock_and_stays_at_zero() {
    let app = spawn_app(None).await;
    for n in 1..=3 {
        app.exchange(exchange_request(&format!("entry-{n}:1"), "LIMITED-FIGURE", 2000)).await;
    }
    assert_eq!(app.stock_of("LIMITED-FIGURE").await, 0);
    let status = app.refused(exchange_request("entry-4:1", "LIMITED-FIGURE", 2000)).await;
    assert_eq!((status.code(), status.message()), (Code::FailedPrecondition, "LIMITED-FIGURE is out of stock"));
    assert_eq!(app.stock_of("LIMITED-FIGURE").await, 0);
}

#[tokio::test]
async fn a_key_reused_for_a_different_exchange_already_exists_and_takes_no_unit() {
    let app = spawn_app(None).await;
    let request = exchange_request("entry-1:1", "PLUSH-MASCOT", 800);
    app.exchange(request.clone()).await;
    let other_reward = exchange_request("entry-1:1", "PLUSH-MASCOT", 800);
    let other_product = pb::ExchangeRequest { product_sku: "STICKER-PACK".into(), ..request.clone() };
    let other_player = pb::ExchangeRequest { customer_id: "player-2".into(), ..request };
    for different in [other_reward, other_product, other_player] {
        let status = app.refused(different).await;
        assert_eq!(
            (status.code(), status.message()),
            (Code::AlreadyExists, "idempotency key entry-1:1 was already used for a different exchange")
        );
    }
    assert_eq!(app.stock_of("PLUSH-MASCOT").await, 24);
    assert_eq!(app.stock_of("STICKER-PACK").await, 1000);
}

#[tokio::test]
async fn a_reward_exchanged_for_one_product_cannot_buy_another() {
    let app = spawn_app(None).await;
    let request = exchange_request("entry-1:1", "PLUSH-MASCOT", 800);
    let order = app.exchange(request.clone()).await;
    let status = app
        .refused(pb::ExchangeRequest {
            idempotency_key: "entry-1:2".into(),
            product_sku: "STICKER-PACK".into(),
            ..request.clone()
        })
        .await;
    assert_eq!(
        (status.code(), status.message().to_owned()),
        (
            Code::FailedPrecondition,
            format!("reward {} was already exchanged (order {})", request.reward_id, order.order_id)
        )
    );
    assert_eq!(app.stock_of("STICKER-PACK").await, 1000);
    assert_eq!(app.stock_of("PLUSH-MASCOT").await, 24);
}

#[tokio::test]
async fn an_unknown_product_is_not_found() {
    let app = spawn_app(None).await;
    let status = app.refused(exchange_request("entry-1:1", "NO-SUCH-GIFT", 800)).await;
    assert_eq!((status.code(), status.message()), (Code::NotFound, "product NO-SUCH-GIFT does not exist"));
}

#[tokio::test]
async fn refused_exchanges_publish_nothing() {
    let app = spawn_app(None).await;
    app.refused(exchange_request("entry-1:1", "PLUSH-MASCOT", 100)).await;
    app.refused(exchange_request("entry-2:1", "NO-SUCH-GIFT", 100)).await;
    // The first event on the stream is the later, successful exchange's.
    let placed = app.exchange(exchange_request("entry-3:1", "STICKER-PACK", 100)).await;
    let events = app.gift_exchanged(1).await;
    let orders: Vec<&str> = events.iter().map(|e| e.order_id.as_str()).collect();
    assert_eq!(orders, [placed.order_id.as_str()]);
}

#[tokio::test]
async fn an_exchange_carrying_a_players_or_operators_token_is_refused_and_takes_no_unit() {
    use testkit::AsCaller as _;
    let app = spawn_app(None).await;
    let request = exchange_request("entry-1:1", "PLUSH-MASCOT", 800);
    for signed in [request.clone().by_player("player-1"), request.clone().by_operator()] {
        let status = app.client.clone().exchange(signed).await.unwrap_err();
        assert_eq!(status.code(), Code::PermissionDenied);
        assert!(status.message().contains("called by the wallet service only"), "{}", status.message());
    }
    assert_eq!(app.stock_of("PLUSH-MASCOT").await, 25);
    // The wallet's own call, with no end-user token, is served.
    app.exchange(request).await;
    assert_eq!(app.stock_of("PLUSH-MASCOT").await, 24);
}
