//! Spawns the real gift service on a free port with a fresh store, and
//! plays the wallet by calling Exchange.

use std::ops::Deref;

use api::game::gift::v1::{self as pb, gift_service_client::GiftServiceClient};
use gift::GiftConfig;
use platform::events::GIFT_STREAM;
use testkit::AsCaller;
use testkit::{Broker, Running, TempStore, service_config};
use tonic::transport::Channel;

pub struct TestApp {
    pub broker: Broker,
    pub client: GiftServiceClient<Channel>,
    pub service: Running,
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
    spawn_configured(database_url, |_| {}).await
}

/// The service on a fresh SQLite file with its vendor simulation served.
pub async fn spawn_with_vendor_simulation() -> TestApp {
    spawn_configured(None, |config| config.vendor_simulation = true).await
}

/// The service as [`spawn_app`] starts it, its configuration changed by `configure`.
pub async fn spawn_configured(database_url: Option<String>, configure: impl FnOnce(&mut GiftConfig)) -> TestApp {
    let broker = Broker::start().await;
    let store = TempStore::new();
    let mut config =
        GiftConfig::from(service_config(&broker, database_url.unwrap_or_else(|| store.sqlite_url("gift"))));
    configure(&mut config);
    let service = Running::serve(gift::build(config).await.expect("gift service starts"));
    let client = GiftServiceClient::connect(service.url()).await.expect("connects");
    TestApp { broker, client, service, _store: store }
}

/// An Exchange request as the wallet sends it, for a new reward of `points`.
pub fn exchange_request(key: &str, product_sku: &str, points: i64) -> pb::ExchangeRequest {
    pb::ExchangeRequest {
        idempotency_key: key.into(),
        customer_id: "player-1".into(),
        reward_id: uuid::Uuid::new_v4().to_string(),
        product_sku: product_sku.into(),
        points,
        mission_id: uuid::Uuid::new_v4().to_string(),
        exchange_id: String::new(),
    }
}

/// The id GiftExchanged carries for `order_id`.
pub fn event_id_for(order_id: &str) -> String {
    kernel::derived_uuid(order_id.parse().unwrap(), b"GiftExchanged").to_string()
}

impl TestApp {
    /// Exchanges, expecting an order.
    pub async fn exchange(&self, request: pb::ExchangeRequest) -> pb::GiftOrder {
        self.client.clone().exchange(request).await.unwrap().into_inner().order.unwrap()
    }

    /// Exchanges, expecting a refusal.
    pub async fn refused(&self, request: pb::ExchangeRequest) -> tonic::Status {
        self.client.clone().exchange(request).await.unwrap_err()
    }

    /// The current stock of `sku`, as the catalogue shows it.
    pub async fn stock_of(&self, sku: &str) -> i64 {
        let products = self
            .client
            .clone()
            .list_products(pb::ListProductsRequest {}.by_operator())
            .await
            .unwrap()
            .into_inner()
            .products;
        products.into_iter().find(|p| p.sku == sku).unwrap().stock
    }

    /// Every message on the GIFT stream so far, once at least `at_least`
    /// are there. The relay publishes in commit order, so waiting for a later
    /// event proves that nothing staged before it is still on its way.
    pub async fn published(&self, at_least: u64) -> Vec<async_nats::jetstream::Message> {
        self.broker.published(GIFT_STREAM, at_least).await
    }

    /// The GiftExchanged events on the GIFT stream, once at least `at_least` are there.
    pub async fn gift_exchanged(&self, at_least: u64) -> Vec<pb::GiftExchanged> {
        self.published(at_least).await.iter().map(|m| prost::Message::decode(m.payload.as_ref()).unwrap()).collect()
    }
}
