use api::game::settlement::v1::SettlementRecorded;
use platform::events::{GIFT_STREAM, SETTLEMENT_STREAM};

use crate::helpers::{gift_exchanged, list, settlement_id_for, spawn_app};

#[tokio::test]
async fn a_gift_exchange_records_one_settlement_at_the_vendors_cost_and_publishes_settlement_recorded() {
    let app = spawn_app(None).await;
    let exchanged = gift_exchanged("COFFEE-S", 350);
    app.publish(&exchanged).await;

    let settlements = app.recorded(1).await;
    let settlement = &settlements[0];
    let settlement_id = settlement_id_for(&exchanged);
    assert_eq!(settlement.settlement_id, settlement_id);
    assert_eq!(settlement.order_id, exchanged.order_id);
    assert_eq!(settlement.mission_id, exchanged.mission_id);
    assert_eq!(settlement.customer_id, "player-1");
    assert_eq!(settlement.product_sku, "COFFEE-S");
    assert_eq!(settlement.amount, 350);
    assert_eq!(settlement.currency, "JPY");
    assert!(settlement.recorded_at.is_some());
    assert_eq!(settlement.kind(), api::game::settlement::v1::SettlementKind::Charge);
    assert!(!settlement.period_id.is_empty(), "recorded in a period");

    let published = app.published(SETTLEMENT_STREAM, 1).await;
    assert_eq!(published.len(), 1, "exactly one SettlementRecorded");
    assert_eq!(published[0].subject.as_str(), "settlement.recorded");
    let headers = published[0].headers.as_ref().unwrap();
    let expected_event_id = kernel::derived_uuid(settlement_id.parse().unwrap(), b"SettlementRecorded").to_string();
    assert_eq!(headers.get("Nats-Msg-Id").unwrap().as_str(), expected_event_id);
    assert_eq!(headers.get("Mission-Id").unwrap().as_str(), exchanged.mission_id);
    assert_eq!(headers.get("Customer-Id").unwrap().as_str(), "player-1");
    assert_eq!(headers.get("Event-Type").unwrap().as_str(), "game.settlement.v1.SettlementRecorded");
    let event: SettlementRecorded = prost::Message::decode(published[0].payload.as_ref()).unwrap();
    assert_eq!(
        event,
        SettlementRecorded {
            event_id: expected_event_id,
            settlement_id,
            order_id: exchanged.order_id.clone(),
            mission_id: exchanged.mission_id.clone(),
            customer_id: "player-1".into(),
            product_sku: "COFFEE-S".into(),
            amount: 350,
            currency: "JPY".into(),
            recorded_at: settlement.recorded_at,
            period_id: settlement.period_id.clone(),
            vendor: "gift".into(),
        }
    );
}

#[tokio::test]
async fn a_redelivered_gift_exchanged_for_the_same_order_records_nothing_more() {
    let app = spawn_app(None).await;
    let exchanged = gift_exchanged("COFFEE-S", 350);
    app.publish(&exchanged).await;
    let first = app.recorded(1).await;

    // The same order again under a new message id, so JetStream keeps it and
    // the consumer's inbox does not know it: the order's unique settlement
    // makes it a no-op.
    let mut again = exchanged.clone();
    again.event_id = uuid::Uuid::new_v4().to_string();
    app.publish(&again).await;
    app.settled(GIFT_STREAM, "settlement-record").await;

    assert_eq!(app.recorded(1).await, first);
    let published = app.published(SETTLEMENT_STREAM, 1).await;
    assert_eq!(published.len(), 1, "still exactly one SettlementRecorded");
}

#[tokio::test]
async fn a_gift_exchanged_with_a_negative_cost_or_no_currency_records_nothing() {
    let mut app = spawn_app(None).await;
    let negative = gift_exchanged("COFFEE-S", -1);
    let mut no_currency = gift_exchanged("COFFEE-S", 350);
    no_currency.currency = String::new();
    for event in [negative, no_currency] {
        app.publish(&event).await;
    }
    app.settled(GIFT_STREAM, "settlement-record").await;
    let page = app.client.list_settlements(list("", 0, "")).await.unwrap().into_inner();
    assert!(page.settlements.is_empty());
    assert!(page.next_page_token.is_empty());
}
