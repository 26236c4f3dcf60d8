use platform::events::{GIFT_STREAM, SETTLEMENT_STREAM};

use crate::helpers::{gift_exchanged, list, spawn_app};

#[tokio::test]
async fn on_postgresql_settlements_are_recorded_once_and_page_oldest_first() {
    let Some(schema) = testkit::PostgresSchema::create("settlement") else {
        return;
    };
    let mut app = spawn_app(Some(schema.url().to_owned())).await;
    let mut orders = Vec::new();
    for sku in ["COFFEE-S", "CAKE_L", "COFFEE-S", "COFFEE-S"] {
        let exchanged = gift_exchanged(sku, 500);
        app.publish(&exchanged).await;
        orders.push(exchanged);
    }
    app.recorded(4).await;
    let mut again = orders[0].clone();
    again.event_id = uuid::Uuid::new_v4().to_string();
    app.publish(&again).await;
    app.settled(GIFT_STREAM, "settlement-record").await;
    assert_eq!(app.recorded(4).await.len(), 4);
    assert_eq!(app.published(SETTLEMENT_STREAM, 4).await.len(), 4);

    let first = app.client.list_settlements(list("COFFEE-S", 2, "")).await.unwrap().into_inner();
    let second = app.client.list_settlements(list("COFFEE-S", 2, &first.next_page_token)).await.unwrap().into_inner();
    assert!(second.next_page_token.is_empty());
    let listed: Vec<String> = first.settlements.into_iter().chain(second.settlements).map(|s| s.order_id).collect();
    let coffees: Vec<String> =
        orders.iter().filter(|o| o.product_sku == "COFFEE-S").map(|o| o.order_id.clone()).collect();
    assert_eq!(listed, coffees);
}
