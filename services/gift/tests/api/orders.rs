use api::game::gift::v1 as pb;
use tonic::Code;

use crate::helpers::{exchange_request, spawn_app};
use testkit::AsCaller;

fn get(order_id: &str) -> pb::GetOrderRequest {
    pb::GetOrderRequest { order_id: order_id.into() }
}

#[tokio::test]
async fn a_placed_order_can_be_read_back_by_its_id() {
    let app = spawn_app(None).await;
    let placed = app.exchange(exchange_request("entry-1:1", "AVATAR-FRAME", 300)).await;
    let read =
        app.client.clone().get_order(get(&placed.order_id).by_operator()).await.unwrap().into_inner().order.unwrap();
    assert_eq!(read, placed);
}

#[tokio::test]
async fn an_unknown_or_malformed_order_id_is_refused() {
    let app = spawn_app(None).await;
    let unknown = uuid::Uuid::new_v4().to_string();
    let cases = [
        (get(&unknown), Code::NotFound, format!("gift order {unknown} does not exist")),
        (get("nope"), Code::InvalidArgument, "order_id: must be a UUID".into()),
        (get(""), Code::InvalidArgument, "order_id: must not be empty".into()),
    ];
    for (request, code, message) in cases {
        let status = app.client.clone().get_order(request.by_operator()).await.unwrap_err();
        assert_eq!((status.code(), status.message()), (code, message.as_str()));
    }
}

#[tokio::test]
async fn malformed_exchanges_are_invalid_arguments_naming_the_field_and_take_no_unit() {
    let app = spawn_app(None).await;
    let valid = || exchange_request("entry-1:1", "PLUSH-MASCOT", 800);
    let cases = [
        (pb::ExchangeRequest { idempotency_key: String::new(), ..valid() }, "idempotency_key: must not be empty"),
        (
            pb::ExchangeRequest { idempotency_key: "entry 1".into(), ..valid() },
            "idempotency_key: may only contain printable ASCII characters other than space",
        ),
        (
            pb::ExchangeRequest { idempotency_key: "k".repeat(129), ..valid() },
            "idempotency_key: must be at most 128 characters",
        ),
        (pb::ExchangeRequest { customer_id: String::new(), ..valid() }, "customer_id: must not be empty"),
        (
            pb::ExchangeRequest { customer_id: "player 1".into(), ..valid() },
            "customer_id: may only contain letters, digits, '-', '_' and '.'",
        ),
        (pb::ExchangeRequest { reward_id: "nope".into(), ..valid() }, "reward_id: must be a UUID"),
        (
            pb::ExchangeRequest { exchange_id: "nope".into(), reward_id: String::new(), ..valid() },
            "exchange_id: must be a UUID",
        ),
        (
            pb::ExchangeRequest { exchange_id: uuid::Uuid::new_v4().to_string(), ..valid() },
            "reward_id: must be empty when exchange_id is set",
        ),
        (pb::ExchangeRequest { mission_id: String::new(), ..valid() }, "mission_id: must not be empty"),
        (pb::ExchangeRequest { mission_id: "mission-1".into(), ..valid() }, "mission_id: must be a UUID"),
        (pb::ExchangeRequest { product_sku: String::new(), ..valid() }, "product_sku: must not be empty"),
        (
            pb::ExchangeRequest { product_sku: "plush-mascot".into(), ..valid() },
            "product_sku: may only contain A-Z, 0-9, '-' and '_'",
        ),
        (pb::ExchangeRequest { product_sku: "P".repeat(65), ..valid() }, "product_sku: must be at most 64 characters"),
        (pb::ExchangeRequest { points: 0, ..valid() }, "points: must be greater than 0, got 0"),
        (pb::ExchangeRequest { points: -800, ..valid() }, "points: must be greater than 0, got -800"),
    ];
    for (request, message) in cases {
        let status = app.refused(request).await;
        assert_eq!((status.code(), status.message()), (Code::InvalidArgument, message));
    }
    assert_eq!(app.stock_of("PLUSH-MASCOT").await, 25);
}
