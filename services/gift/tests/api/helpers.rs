//! Spawns the real gift service on a free port with a fresh store, and
//! plays the wallet by calling Exchange.

use std::future::Future;
use std::time::Duration;

use api::game::gift::v1::{self as pb, gift_service_client::GiftServiceClient};
use async_nats::jetstream;
use futures::StreamExt as _;
use platform::CancellationToken;
use platform::config::ServiceConfig;
use platform::events::GIFT_STREAM;
use testkit::NatsServer;
use tonic::transport::Channel;

pub struct TestApp {
    _nats: NatsServer,
    pub client: GiftServiceClient<Channel>,
    pub js: jetstream::Context,
    stop: CancellationToken,
    dir: std::path::PathBuf,
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.stop.cancel();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The service on a fresh SQLite file, or on `database_url` when given.
pub async fn spawn_app(database_url: Option<String>) -> TestApp {
    let nats = NatsServer::start().expect("nats-server starts");
    let dir = std::env::temp_dir().join(format!("gift-test-{}", uuid::Uuid::new_v4().simple()));
    let config = ServiceConfig {
        grpc_addr: "127.0.0.1:0".parse().unwrap(),
        database_url: database_url.unwrap_or_else(|| dir.join("gift.sqlite").display().to_string()),
        nats_url: nats.url(),
        shutdown_grace: Duration::from_secs(2),
    };
    let app = gift::App::build(config).await.expect("gift service starts");
    let port = app.port();
    let stop = CancellationToken::new();
    tokio::spawn(app.run_until_stopped(stop.clone().cancelled_owned()));
    let client = GiftServiceClient::connect(format!("http://127.0.0.1:{port}"))
        .await
        .expect("connects");
    let js = jetstream::new(async_nats::connect(nats.url()).await.unwrap());
    TestApp {
        _nats: nats,
        client,
        js,
        stop,
        dir,
    }
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
    }
}

/// The id GiftExchanged carries for `order_id`.
pub fn event_id_for(order_id: &str) -> String {
    uuid::Uuid::new_v5(&order_id.parse().unwrap(), b"GiftExchanged").to_string()
}

impl TestApp {
    /// Exchanges, expecting an order.
    pub async fn exchange(&self, request: pb::ExchangeRequest) -> pb::GiftOrder {
        self.client
            .clone()
            .exchange(request)
            .await
            .unwrap()
            .into_inner()
            .order
            .unwrap()
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
            .list_products(pb::ListProductsRequest {})
            .await
            .unwrap()
            .into_inner()
            .products;
        products.into_iter().find(|p| p.sku == sku).unwrap().stock
    }

    /// Every message on the GIFT stream so far, once at least `at_least`
    /// are there. The relay publishes in commit order, so waiting for a later
    /// event proves that nothing staged before it is still on its way.
    pub async fn published(&self, at_least: u64) -> Vec<jetstream::Message> {
        let stream = eventually(&format!("{at_least} messages on GIFT"), || async move {
            let stream = self.js.get_stream(GIFT_STREAM.name).await.ok()?;
            let info = stream.get_info().await.ok()?;
            (info.state.messages >= at_least).then_some(stream)
        })
        .await;
        let consumer: jetstream::consumer::PullConsumer = stream
            .create_consumer(jetstream::consumer::pull::Config::default())
            .await
            .unwrap();
        let mut messages = consumer
            .fetch()
            .max_messages(100)
            .expires(Duration::from_secs(1))
            .messages()
            .await
            .unwrap();
        let mut seen = Vec::new();
        while let Some(message) = messages.next().await {
            seen.push(message.unwrap());
        }
        seen
    }

    /// The GiftExchanged events on the GIFT stream, once at least `at_least` are there.
    pub async fn gift_exchanged(&self, at_least: u64) -> Vec<pb::GiftExchanged> {
        self.published(at_least)
            .await
            .iter()
            .map(|m| prost::Message::decode(m.payload.as_ref()).unwrap())
            .collect()
    }
}

/// Polls `check` until it returns `Some`, for at most 10 seconds.
pub async fn eventually<T, F, Fut>(what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(tokio::time::Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}
