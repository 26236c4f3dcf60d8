use std::collections::HashSet;

use api::game::gift::v1 as pb;
use tonic::Code;

use crate::helpers::{TestApp, exchange_request, spawn_app};

/// Ten calls at once under one key: one order, one unit, one event.
async fn one_key_called_ten_times_at_once(app: &TestApp) {
    let request = exchange_request("entry-1:1", "PLUSH-MASCOT", 800);
    let calls = (0..10).map(|_| {
        let mut client = app.client.clone();
        let request = request.clone();
        tokio::spawn(async move { client.exchange(request).await })
    });
    let orders: HashSet<String> = futures::future::join_all(calls)
        .await
        .into_iter()
        .map(|call| call.unwrap().unwrap().into_inner().order.unwrap().order_id)
        .collect();
    assert_eq!(orders.len(), 1, "one order for one key");
    assert_eq!(app.stock_of("PLUSH-MASCOT").await, 24);

    // A later exchange's event arriving proves no second one was staged before it.
    let later = app.exchange(exchange_request("entry-2:1", "STICKER-PACK", 100)).await;
    let events = app.gift_exchanged(2).await;
    let published: Vec<&str> = events.iter().map(|e| e.order_id.as_str()).collect();
    let placed = orders.into_iter().next().unwrap();
    assert_eq!(published, [placed.as_str(), later.order_id.as_str()]);
}

/// Ten buyers for the three units left: three orders, seven told it is gone.
async fn ten_buyers_for_three_units(app: &TestApp) {
    let calls = (0..10).map(|n| {
        let mut client = app.client.clone();
        let request = exchange_request(&format!("entry-{n}:1"), "LIMITED-FIGURE", 2000);
        tokio::spawn(async move { client.exchange(request).await })
    });
    let mut placed = HashSet::new();
    let mut refused = 0;
    for call in futures::future::join_all(calls).await {
        match call.unwrap() {
            Ok(response) => {
                placed.insert(response.into_inner().order.unwrap().order_id);
            }
            Err(status) => {
                assert_eq!(
                    (status.code(), status.message()),
                    (Code::FailedPrecondition, "LIMITED-FIGURE is out of stock")
                );
                refused += 1;
            }
        }
    }
    assert_eq!((placed.len(), refused), (3, 7));
    assert_eq!(app.stock_of("LIMITED-FIGURE").await, 0);
    let published: HashSet<String> = app.gift_exchanged(3).await.into_iter().map(|e| e.order_id).collect();
    assert_eq!(published, placed);
}

/// One reward offered for every product at once, under ten keys: one order.
async fn one_reward_offered_for_every_product_at_once(app: &TestApp) {
    const SKUS: [&str; 5] = ["STICKER-PACK", "AVATAR-FRAME", "GAME-SOUNDTRACK", "PLUSH-MASCOT", "LIMITED-FIGURE"];
    let reward = exchange_request("entry-1:1", "STICKER-PACK", 2000);
    let calls = (0..10).map(|n| {
        let mut client = app.client.clone();
        let request = pb::ExchangeRequest {
            idempotency_key: format!("entry-1:{n}"),
            product_sku: SKUS[n % SKUS.len()].into(),
            ..reward.clone()
        };
        tokio::spawn(async move { client.exchange(request).await })
    });
    let mut placed = HashSet::new();
    let mut refusals = Vec::new();
    for call in futures::future::join_all(calls).await {
        match call.unwrap() {
            Ok(response) => {
                placed.insert(response.into_inner().order.unwrap().order_id);
            }
            Err(status) => refusals.push((status.code(), status.message().to_owned())),
        }
    }
    assert_eq!(placed.len(), 1, "one order for one reward");
    let order_id = placed.into_iter().next().unwrap();
    let expected = format!("reward {} was already exchanged (order {order_id})", reward.reward_id);
    assert!(!refusals.is_empty());
    for refusal in refusals {
        assert_eq!(refusal, (Code::FailedPrecondition, expected.clone()));
    }
    let mut taken = 0;
    for (sku, initial) in SKUS.into_iter().zip([1000, 500, 200, 25, 3]) {
        taken += initial - app.stock_of(sku).await;
    }
    assert_eq!(taken, 1, "one unit taken across the catalogue");
}

#[tokio::test]
async fn ten_concurrent_exchanges_under_one_key_place_one_order_and_take_one_unit() {
    one_key_called_ten_times_at_once(&spawn_app(None).await).await;
}

#[tokio::test]
async fn ten_concurrent_buyers_for_three_units_get_three_orders_and_the_rest_are_told_out_of_stock() {
    ten_buyers_for_three_units(&spawn_app(None).await).await;
}

#[tokio::test]
async fn one_reward_offered_for_every_product_at_once_places_one_order() {
    one_reward_offered_for_every_product_at_once(&spawn_app(None).await).await;
}

#[tokio::test]
async fn on_postgresql_concurrent_exchanges_never_place_twice_nor_oversell() {
    let Some(schema) = testkit::PostgresSchema::create("gift") else {
        return;
    };
    one_key_called_ten_times_at_once(&spawn_app(Some(schema.url().to_owned())).await).await;
    let Some(schema) = testkit::PostgresSchema::create("gift") else {
        return;
    };
    ten_buyers_for_three_units(&spawn_app(Some(schema.url().to_owned())).await).await;
    let Some(schema) = testkit::PostgresSchema::create("gift") else {
        return;
    };
    one_reward_offered_for_every_product_at_once(&spawn_app(Some(schema.url().to_owned())).await).await;
}
