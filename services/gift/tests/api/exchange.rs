use api::game::gift::v1::{self as pb, GiftOrderStatus};

use crate::helpers::{event_id_for, exchange_request, spawn_app, spawn_configured};

#[tokio::test]
async fn exchanging_a_reward_places_an_order_takes_one_unit_and_publishes_gift_exchanged_once() {
    let app = spawn_app(None).await;
    let request = exchange_request("entry-1:1", "PLUSH-MASCOT", 800);
    let order = app.exchange(request.clone()).await;
    assert_eq!(order.status(), GiftOrderStatus::Placed);
    assert_eq!(order.customer_id, "player-1");
    assert_eq!(order.reward_id, request.reward_id);
    assert_eq!(order.product_sku, "PLUSH-MASCOT");
    assert_eq!(order.idempotency_key, "entry-1:1");
    assert_eq!(order.points, 800);
    assert!(uuid::Uuid::parse_str(&order.order_id).is_ok());
    assert_eq!(app.stock_of("PLUSH-MASCOT").await, 24);

    let published = app.published(1).await;
    assert_eq!(published.len(), 1, "exactly one GiftExchanged");
    let message = &published[0];
    assert_eq!(message.subject.as_str(), "gift.exchanged");
    let headers = message.headers.as_ref().unwrap();
    assert_eq!(headers.get("Nats-Msg-Id").unwrap().as_str(), event_id_for(&order.order_id));
    assert_eq!(headers.get("Event-Type").unwrap().as_str(), "game.gift.v1.GiftExchanged");
    assert_eq!(headers.get("Mission-Id").unwrap().as_str(), request.mission_id);
    assert_eq!(headers.get("Customer-Id").unwrap().as_str(), "player-1");
    let event: pb::GiftExchanged = prost::Message::decode(message.payload.as_ref()).unwrap();
    assert_eq!(
        event,
        pb::GiftExchanged {
            event_id: event_id_for(&order.order_id),
            order_id: order.order_id.clone(),
            customer_id: "player-1".into(),
            reward_id: request.reward_id.clone(),
            mission_id: request.mission_id.clone(),
            product_sku: "PLUSH-MASCOT".into(),
            points: 800,
            vendor_cost: 1250,
            currency: "EUR".into(),
            placed_at: order.placed_at,
            exchange_id: String::new(),
            vendor: "gift".into(),
        }
    );
}

#[tokio::test]
async fn a_gift_service_names_its_vendor_on_every_order_it_places() {
    let vendor = kernel::Vendor::parse("acme-toys").unwrap();
    let app = spawn_configured(None, |config| config.vendor = vendor).await;

    app.exchange(exchange_request("entry-1:1", "PLUSH-MASCOT", 800)).await;

    assert_eq!(app.gift_exchanged(1).await[0].vendor, "acme-toys");
}

#[tokio::test]
async fn replaying_the_same_key_returns_the_same_order_and_publishes_nothing_more() {
    let app = spawn_app(None).await;
    let request = exchange_request("entry-1:1", "PLUSH-MASCOT", 800);
    let first = app.exchange(request.clone()).await;
    let again = app.exchange(request).await;
    assert_eq!(again, first);
    assert_eq!(app.stock_of("PLUSH-MASCOT").await, 24);

    // A later exchange's event arriving proves the replay staged none before it.
    let later = app.exchange(exchange_request("entry-2:1", "STICKER-PACK", 100)).await;
    let events = app.gift_exchanged(2).await;
    let orders: Vec<&str> = events.iter().map(|e| e.order_id.as_str()).collect();
    assert_eq!(orders, [first.order_id.as_str(), later.order_id.as_str()]);
}

#[tokio::test]
async fn a_reward_asked_again_for_the_same_product_under_a_new_key_gets_its_existing_order() {
    let app = spawn_app(None).await;
    let request = exchange_request("entry-1:1", "GAME-SOUNDTRACK", 500);
    let first = app.exchange(request.clone()).await;
    let again = app.exchange(pb::ExchangeRequest { idempotency_key: "entry-1:2".into(), ..request }).await;
    assert_eq!(again, first, "the wallet completes with the order it already has");
    assert_eq!(again.idempotency_key, "entry-1:1");
    assert_eq!(app.stock_of("GAME-SOUNDTRACK").await, 199);
}

#[tokio::test]
async fn a_reward_worth_more_than_the_price_still_buys_one_unit() {
    let app = spawn_app(None).await;
    let order = app.exchange(exchange_request("entry-1:1", "AVATAR-FRAME", 2000)).await;
    assert_eq!(order.points, 2000);
    assert_eq!(app.stock_of("AVATAR-FRAME").await, 499);
}

#[tokio::test]
async fn a_wallet_exchange_pays_for_one_order_named_by_the_exchange_not_a_reward() {
    let app = spawn_app(None).await;
    let exchange_id = uuid::Uuid::new_v4().to_string();
    let request = pb::ExchangeRequest {
        idempotency_key: exchange_id.clone(),
        reward_id: String::new(),
        exchange_id: exchange_id.clone(),
        ..exchange_request("unused", "PLUSH-MASCOT", 800)
    };

    let order = app.exchange(request.clone()).await;

    assert_eq!((order.exchange_id.as_str(), order.reward_id.as_str()), (exchange_id.as_str(), ""));
    assert_eq!((order.points, order.status()), (800, GiftOrderStatus::Placed));
    let events = app.gift_exchanged(1).await;
    assert_eq!((events[0].exchange_id.as_str(), events[0].reward_id.as_str()), (exchange_id.as_str(), ""));
    assert_eq!(events[0].mission_id, request.mission_id, "the correlation key travels as ever");
    // The exchange asked again under another key: the same order, no second unit.
    let again = app.exchange(pb::ExchangeRequest { idempotency_key: "another-key".into(), ..request.clone() }).await;
    assert_eq!(again.order_id, order.order_id);
    assert_eq!(app.stock_of("PLUSH-MASCOT").await, 24);
    // Another product for the same exchange is refused, naming the exchange.
    let refused = app
        .refused(pb::ExchangeRequest { idempotency_key: "k-3".into(), product_sku: "STICKER-PACK".into(), ..request })
        .await;
    assert_eq!(refused.code(), tonic::Code::FailedPrecondition);
    assert_eq!(
        refused.message(),
        format!("wallet exchange {exchange_id} was already exchanged (order {})", order.order_id)
    );
}
