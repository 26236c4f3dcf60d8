//! `RestockProduct` under an idempotency key restocks once, over the real
//! store, on SQLite and PostgreSQL; without a key each call adds.

use api::game::gift::admin::v1::{self as admin, catalogue_service_client::CatalogueServiceClient};
use api::game::gift::v1::CatalogueProduct;
use testkit::{AsCaller, PostgresSchema};
use tonic::Code;

use crate::helpers::{TestApp, spawn_app};

fn restock(units: i64, key: &str) -> tonic::Request<admin::RestockProductRequest> {
    admin::RestockProductRequest { sku: "STICKER-PACK".into(), units, idempotency_key: key.into() }.by_operator()
}

async fn restocked(app: &TestApp, units: i64, key: &str) -> Result<CatalogueProduct, tonic::Status> {
    let mut catalogue = CatalogueServiceClient::connect(app.service.url()).await.unwrap();
    Ok(catalogue.restock_product(restock(units, key)).await?.into_inner().product.unwrap())
}

/// What every store must do: a key restocks once (eight at once too), the
/// same key for another restock is refused, no key restocks every time.
async fn a_restock_under_a_key_adds_its_units_once(app: &TestApp) {
    let stock = app.stock_of("STICKER-PACK").await;

    let first = restocked(app, 10, "restock-1").await.unwrap();
    let again = restocked(app, 10, "restock-1").await.unwrap();
    assert_eq!(again, first, "the first call's answer");
    assert_eq!(first.stock, stock + 10);
    assert_eq!(app.stock_of("STICKER-PACK").await, stock + 10, "added once");

    let racing = (0..8).map(|_| restocked(app, 5, "restock-2"));
    let answers = futures::future::join_all(racing).await;
    let answers: Vec<_> = answers.into_iter().map(Result::unwrap).collect();
    assert!(answers.iter().all(|answer| *answer == answers[0]), "{answers:?}");
    assert_eq!(app.stock_of("STICKER-PACK").await, stock + 15, "eight calls at once add once");

    let reused = restocked(app, 11, "restock-1").await.unwrap_err();
    assert_eq!(reused.code(), Code::AlreadyExists, "{reused:?}");
    assert_eq!(
        reused.message(),
        "idempotency key restock-1 restocked STICKER-PACK by 10 units already; another restock needs another key"
    );

    restocked(app, 1, "").await.unwrap();
    restocked(app, 1, "").await.unwrap();
    assert_eq!(app.stock_of("STICKER-PACK").await, stock + 17, "without a key, each call adds");

    let bad = restocked(app, 1, "two words").await.unwrap_err();
    assert_eq!(bad.code(), Code::InvalidArgument);
    assert!(bad.message().starts_with("idempotency_key: "), "{}", bad.message());

    let audited = app.published(4).await;
    let restocks = audited.iter().filter(|m| m.subject.as_str() == "gift.product_restocked").count();
    assert_eq!(restocks, 4, "one audit record per restock done: two keyed, two without");
}

#[tokio::test]
async fn a_restock_under_a_key_adds_its_units_once_on_sqlite() {
    let app = spawn_app(None).await;
    a_restock_under_a_key_adds_its_units_once(&app).await;
}

#[tokio::test]
async fn a_restock_under_a_key_adds_its_units_once_on_postgresql() {
    let Some(schema) = PostgresSchema::create("gift_restock") else { return };
    let app = spawn_app(Some(schema.url().to_owned())).await;
    a_restock_under_a_key_adds_its_units_once(&app).await;
}
