//! Operators run the catalogue (`game.gift.admin.v1.CatalogueService`):
//! products listed in the programme's events, which gift learns from the
//! MISSION stream; players see and exchange only what is on sale now.

use api::game::gift::admin::v1::{self as admin, catalogue_service_client::CatalogueServiceClient};
use api::game::gift::v1 as pb;
use api::game::mission::v1::{ProgrammeEvent, ProgrammeEventScheduled};
use platform::events::{MISSION_STREAM, timestamp};
use testkit::AsCaller;
use tonic::Code;
use tonic::transport::Channel;

use crate::helpers::{TestApp, exchange_request, spawn_app};

const HOUR: i64 = 3_600_000;

async fn catalogue(app: &TestApp) -> CatalogueServiceClient<Channel> {
    CatalogueServiceClient::connect(app.service.url()).await.unwrap()
}

/// Publishes what the mission context publishes when `id` is scheduled from
/// `starts_at` until `ends_at`, and waits until gift kept it.
async fn schedule(app: &TestApp, id: &str, starts_at: i64, ends_at: i64) {
    app.publish(&ProgrammeEventScheduled {
        event_id: uuid::Uuid::new_v4().to_string(),
        programme_event: Some(ProgrammeEvent {
            programme_event_id: id.into(),
            title: id.into(),
            starts_at: Some(timestamp(starts_at)),
            ends_at: Some(timestamp(ends_at)),
        }),
        operator: "operator".into(),
        changed_at: Some(timestamp(starts_at)),
    })
    .await;
    app.settled(MISSION_STREAM, "gift-keep-programme-event").await;
}

fn listing(sku: &str, event: &str) -> admin::ListProductRequest {
    admin::ListProductRequest {
        sku: sku.into(),
        name: format!("{sku} of {event}"),
        price_points: 300,
        stock: 10,
        vendor_cost: 990,
        currency: "EUR".into(),
        programme_event_id: event.into(),
    }
}

async fn on_sale(app: &TestApp, request: tonic::Request<pb::ListProductsRequest>) -> Vec<String> {
    let products = app.client.clone().list_products(request).await.unwrap().into_inner().products;
    products.into_iter().map(|p| p.sku).collect()
}

#[tokio::test]
async fn an_operator_lists_products_in_events_and_players_see_and_exchange_only_what_is_open() {
    let app = spawn_app(None).await;
    let now = platform::db::now_millis();
    schedule(&app, "WINTER-2026", now - HOUR, now + HOUR).await;
    schedule(&app, "SPRING-2027", now + HOUR, now + 2 * HOUR).await;
    let mut catalogue = catalogue(&app).await;

    let sled = catalogue.list_product(listing("SNOW-SLED", "WINTER-2026").by_operator()).await.unwrap().into_inner();
    catalogue.list_product(listing("TULIP", "SPRING-2027").by_operator()).await.unwrap();

    let sled = sled.product.unwrap();
    assert_eq!((sled.sku.as_str(), sled.stock, sled.vendor_cost), ("SNOW-SLED", 10, 990));
    assert_eq!((sled.currency.as_str(), sled.programme_event_id.as_str()), ("EUR", "WINTER-2026"));
    let player = on_sale(&app, pb::ListProductsRequest {}.by_player("player-1")).await;
    assert_eq!(player[5..], ["SNOW-SLED"], "the five of LAUNCH, then the open event's; not SPRING-2027's");
    let operator = on_sale(&app, pb::ListProductsRequest {}.by_operator()).await;
    assert_eq!(operator[5..], ["SNOW-SLED", "TULIP"]);
    let all = catalogue.list_catalogue(admin::ListCatalogueRequest {}.by_operator()).await.unwrap().into_inner();
    assert_eq!(all.products.len(), 7);
    assert!(all.products[..5].iter().all(|p| p.programme_event_id == "LAUNCH"), "the seeded products");

    let placed = app.exchange(exchange_request("entry-1:1", "SNOW-SLED", 300)).await;
    assert_eq!(placed.status(), pb::GiftOrderStatus::Placed);
    let early = app.refused(exchange_request("entry-2:1", "TULIP", 300)).await;
    assert_eq!(early.code(), Code::FailedPrecondition, "{early:?}");
    assert!(early.message().starts_with("event SPRING-2027 opens at "), "{}", early.message());
    assert!(early.message().ends_with("; TULIP is not exchanged before"), "{}", early.message());
}

#[tokio::test]
async fn every_change_to_the_catalogue_is_audited_on_the_gift_stream_with_the_operator() {
    let app = spawn_app(None).await;
    let mut catalogue = catalogue(&app).await;

    catalogue.list_product(listing("LAUNCH-CAP", "LAUNCH").by_operator()).await.unwrap();
    let again = catalogue.list_product(listing("LAUNCH-CAP", "LAUNCH").by_operator()).await.unwrap().into_inner();
    let restocked = catalogue
        .restock_product(
            admin::RestockProductRequest { sku: "LAUNCH-CAP".into(), units: 5, ..Default::default() }.by_operator(),
        )
        .await
        .unwrap()
        .into_inner();

    assert_eq!(again.product.unwrap().stock, 10, "a repeated listing returns what exists");
    assert_eq!(restocked.product.unwrap().stock, 15);
    let published = app.published(2).await;
    assert_eq!(published.len(), 2, "one listing and one restock; the repeat recorded nothing");
    assert_eq!(published[0].subject.as_str(), "gift.product_listed");
    let listed: pb::ProductListed = prost::Message::decode(published[0].payload.as_ref()).unwrap();
    assert_eq!((listed.operator.as_str(), listed.product.unwrap().sku.as_str()), ("operator", "LAUNCH-CAP"));
    assert!(listed.changed_at.is_some());
    assert_eq!(published[1].subject.as_str(), "gift.product_restocked");
    let restock: pb::ProductRestocked = prost::Message::decode(published[1].payload.as_ref()).unwrap();
    assert_eq!((restock.product_sku.as_str(), restock.units, restock.stock), ("LAUNCH-CAP", 5, 15));
    assert_eq!(restock.operator, "operator");
    assert!(restock.changed_at.is_some());
}

#[tokio::test]
async fn only_operators_run_the_catalogue_and_bad_requests_name_the_field() {
    let app = spawn_app(None).await;
    let mut catalogue = catalogue(&app).await;

    let by_player = catalogue.list_product(listing("CAP", "LAUNCH").by_player("player-1")).await.unwrap_err();
    let anonymous = catalogue.list_catalogue(admin::ListCatalogueRequest {}).await.unwrap_err();
    let no_units = catalogue
        .restock_product(
            admin::RestockProductRequest { sku: "STICKER-PACK".into(), units: 0, ..Default::default() }.by_operator(),
        )
        .await
        .unwrap_err();
    let free = catalogue
        .list_product(admin::ListProductRequest { price_points: 0, ..listing("CAP", "LAUNCH") }.by_operator())
        .await
        .unwrap_err();
    let unknown_event = catalogue.list_product(listing("CAP", "NEVER-SCHEDULED").by_operator()).await.unwrap_err();
    let taken = catalogue
        .list_product(
            admin::ListProductRequest { price_points: 100, ..listing("STICKER-PACK", "LAUNCH") }.by_operator(),
        )
        .await
        .unwrap_err();

    assert_eq!(
        (by_player.code(), by_player.message()),
        (Code::PermissionDenied, "player-1 lacks the operator role this needs")
    );
    assert_eq!(anonymous.code(), Code::Unauthenticated);
    assert_eq!((no_units.code(), no_units.message()), (Code::InvalidArgument, "units: must be from 1 to 4294967295"));
    assert_eq!((free.code(), free.message()), (Code::InvalidArgument, "price_points: must be above zero"));
    assert_eq!(unknown_event.code(), Code::NotFound, "{unknown_event:?}");
    assert_eq!(unknown_event.message(), "event NEVER-SCHEDULED is not in the programme gift knows");
    assert_eq!(taken.code(), Code::AlreadyExists, "{taken:?}");
    assert_eq!(taken.message(), "product STICKER-PACK is listed already, otherwise (in event LAUNCH)");
}
