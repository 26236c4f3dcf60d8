//! Spawns the real settlement service on a free port with a fresh store, and
//! plays the gift context by publishing its events.

use std::future::Future;
use std::ops::Deref;
use std::time::Duration;

use api::game::gift::v1::{GiftExchanged, GiftOrderCancelled};
use api::game::settlement::v1::{self as pb, settlement_service_client::SettlementServiceClient};
use settlement::SettlementConfig;
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

/// The service on a fresh SQLite file, or on `database_url` when given,
/// in daily periods.
pub async fn spawn_app(database_url: Option<String>) -> TestApp {
    spawn_app_with(database_url, |_| {}).await
}

/// The service as [`spawn_app`] starts it, its configuration changed by `configure`.
pub async fn spawn_app_with(database_url: Option<String>, configure: impl FnOnce(&mut SettlementConfig)) -> TestApp {
    let broker = Broker::start().await;
    let store = TempStore::new();
    let mut config =
        SettlementConfig::from(service_config(&broker, database_url.unwrap_or_else(|| store.sqlite_url("settlement"))));
    configure(&mut config);
    let service = Running::serve(settlement::build(config).await.expect("settlement service starts"));
    let client = SettlementServiceClient::connect(service.url()).await.expect("connects");
    TestApp { broker, client, _service: service, _store: store }
}

/// Periods of one second, closed within a tenth of a second of their end:
/// a test sees periods close as they would over days.
pub fn short_periods(config: &mut SettlementConfig) {
    config.period = "1s".parse().expect("a period length");
    config.close_interval = Duration::from_millis(100);
}

/// The GiftOrderCancelled the gift context publishes when the vendor
/// cancelled the order `exchanged` placed.
pub fn gift_order_cancelled(exchanged: &GiftExchanged) -> GiftOrderCancelled {
    GiftOrderCancelled {
        event_id: uuid::Uuid::new_v4().to_string(),
        order_id: exchanged.order_id.clone(),
        idempotency_key: uuid::Uuid::new_v4().to_string(),
        customer_id: exchanged.customer_id.clone(),
        reward_id: exchanged.reward_id.clone(),
        mission_id: exchanged.mission_id.clone(),
        product_sku: exchanged.product_sku.clone(),
        points: exchanged.points,
        vendor_cost: exchanged.vendor_cost,
        currency: exchanged.currency.clone(),
        reason: "out of stock at the vendor".into(),
        cancelled_at: Some(platform::events::timestamp(1_764_000_100_000)),
        exchange_id: String::new(),
    }
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
        exchange_id: String::new(),
        vendor: "gift".into(),
    }
}

/// The id the settlement context gives the settlement of this gift order.
pub fn settlement_id_for(exchanged: &GiftExchanged) -> String {
    kernel::derived_uuid(exchanged.order_id.parse().unwrap(), b"Settlement").to_string()
}

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

/// A page of periods, asked by an operator.
pub fn periods(page_size: i32, page_token: &str) -> tonic::Request<pb::ListPeriodsRequest> {
    pb::ListPeriodsRequest { page_size, page_token: page_token.into() }.by_operator()
}

/// One period with its totals, asked by an operator.
pub fn period(period_id: &str) -> tonic::Request<pb::GetPeriodRequest> {
    pb::GetPeriodRequest { period_id: period_id.into() }.by_operator()
}

impl TestApp {
    /// Waits until the period `period_id` is closed, and returns it.
    pub async fn closed(&self, period_id: &str) -> pb::SettlementPeriod {
        eventually(&format!("period {period_id} closed"), || async move {
            let answer = self.client.clone().get_period(period(period_id)).await.ok()?;
            let closed = answer.into_inner().period?;
            (closed.status() == pb::PeriodStatus::Closed).then_some(closed)
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
