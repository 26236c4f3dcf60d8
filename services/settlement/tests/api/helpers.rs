//! Spawns the real settlement service on a free port with a fresh store, and
//! plays the gift context by publishing its events.

use std::future::Future;
use std::ops::Deref;
use std::time::Duration;

use api::game::gift::v1::GiftExchanged;
use api::game::settlement::v1::{self as pb, settlement_service_client::SettlementServiceClient};
use testkit::AsCaller;
use testkit::{Broker, Running, TempStore, service_config};
use tonic::transport::Channel;

pub struct TestApp {
    pub broker: Broker,
    pub client: SettlementServiceClient<Channel>,
    _service: Running,
    _store: TempStore,
}

/// The broker's helpers (`publish`, `settled`, `published`, `js`) on the app.
impl Deref for TestApp {
    type Target = Broker;

    fn deref(&self) -> &Broker {
        &self.broker
    }
}

/// The service on a fresh SQLite file, or on `database_url` when given.
pub async fn spawn_app(database_url: Option<String>) -> TestApp {
    let broker = Broker::start().await;
    let store = TempStore::new();
    let config = service_config(&broker, database_url.unwrap_or_else(|| store.sqlite_url("settlement")));
    let service = Running::serve(settlement::build(config).await.expect("settlement service starts"));
    let client = SettlementServiceClient::connect(service.url()).await.expect("connects");
    TestApp { broker, client, _service: service, _store: store }
}

/// A GiftExchanged as the gift context publishes it, for a new order.
pub fn gift_exchanged(product_sku: &str, vendor_cost: i64) -> GiftExchanged {
    GiftExchanged {
        event_id: uuid::Uuid::new_v4().to_string(),
        order_id: uuid::Uuid::new_v4().to_string(),
        customer_id: "player-1".into(),
        reward_id: uuid::Uuid::new_v4().to_string(),
        mission_id: uuid::Uuid::new_v4().to_string(),
        product_sku: product_sku.into(),
        points: 300,
        vendor_cost,
        currency: "JPY".into(),
        placed_at: Some(platform::events::timestamp(1_764_000_000_000)),
    }
}

/// The id the settlement context gives the settlement of this gift order.
pub fn settlement_id_for(exchanged: &GiftExchanged) -> String {
    kernel::derived_uuid(exchanged.order_id.parse().unwrap(), b"Settlement").to_string()
}

/// A ListSettlements request.
/// A page of settlements, asked by an operator (the only role that may).
pub fn list(product_sku: &str, page_size: i32, page_token: &str) -> tonic::Request<pb::ListSettlementsRequest> {
    pb::ListSettlementsRequest { product_sku: product_sku.into(), page_size, page_token: page_token.into() }
        .by_operator()
}

impl TestApp {
    /// Waits until the whole ledger holds `count` settlements, and returns them.
    pub async fn recorded(&self, count: usize) -> Vec<pb::Settlement> {
        eventually(&format!("{count} settlements"), || async move {
            let page = self.client.clone().list_settlements(list("", 500, "")).await.ok()?;
            let settlements = page.into_inner().settlements;
            (settlements.len() == count).then_some(settlements)
        })
        .await
    }
}

/// Polls `check` until it returns `Some`, for at most 10 seconds.
pub async fn eventually<T, F, Fut>(what: &str, check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    testkit::eventually(what, Duration::from_secs(10), check).await
}
