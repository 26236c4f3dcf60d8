//! Spawns the real settlement service on a free port with a fresh store, and
//! plays the gift context by publishing its events.

use std::future::Future;
use std::time::Duration;

use api::game::gift::v1::GiftExchanged;
use api::game::settlement::v1::{self as pb, settlement_service_client::SettlementServiceClient};
use async_nats::jetstream;
use futures::StreamExt as _;
use platform::CancellationToken;
use platform::config::ServiceConfig;
use platform::events::{Event, StreamDef};
use testkit::NatsServer;
use tonic::transport::Channel;

pub struct TestApp {
    _nats: NatsServer,
    pub client: SettlementServiceClient<Channel>,
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
    let dir = std::env::temp_dir().join(format!("settlement-test-{}", uuid::Uuid::new_v4().simple()));
    let config = ServiceConfig {
        grpc_addr: "127.0.0.1:0".parse().unwrap(),
        database_url: database_url.unwrap_or_else(|| dir.join("settlement.sqlite").display().to_string()),
        nats_url: nats.url(),
        shutdown_grace: Duration::from_secs(2),
    };
    let app = settlement::App::build(config).await.expect("settlement service starts");
    let port = app.port();
    let stop = CancellationToken::new();
    tokio::spawn(app.run_until_stopped(stop.clone().cancelled_owned()));
    let client = SettlementServiceClient::connect(format!("http://127.0.0.1:{port}"))
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
    uuid::Uuid::new_v5(&exchanged.order_id.parse().unwrap(), b"Settlement").to_string()
}

/// A ListSettlements request.
pub fn list(product_sku: &str, page_size: i32, page_token: &str) -> pb::ListSettlementsRequest {
    pb::ListSettlementsRequest {
        product_sku: product_sku.into(),
        page_size,
        page_token: page_token.into(),
    }
}

impl TestApp {
    /// Publishes `event` as its producing context would, with its id as `Nats-Msg-Id`.
    pub async fn publish<E: Event>(&self, event: &E) {
        E::STREAM.ensure(&self.js).await.unwrap();
        let message = jetstream::message::PublishMessage::build()
            .payload(event.encode_to_vec().into())
            .message_id(event.event_id());
        self.js.send_publish(E::SUBJECT, message).await.unwrap().await.unwrap();
    }

    /// Waits until the whole ledger holds `count` settlements, and returns them.
    pub async fn recorded(&self, count: usize) -> Vec<pb::Settlement> {
        eventually(&format!("{count} settlements"), || async move {
            let page = self.client.clone().list_settlements(list("", 500, "")).await.ok()?;
            let settlements = page.into_inner().settlements;
            (settlements.len() == count).then_some(settlements)
        })
        .await
    }

    /// Waits until the policy's durable consumer has settled every event of
    /// its stream (applied, found already applied, or terminated).
    pub async fn settled(&self, stream: StreamDef, consumer: &str) {
        eventually(&format!("{consumer} to settle"), || async move {
            let stream = self.js.get_stream(stream.name).await.ok()?;
            let info = stream.consumer_info(consumer).await.ok()?;
            (info.num_pending == 0 && info.num_ack_pending == 0).then_some(())
        })
        .await;
    }

    /// Every message on `stream` so far, once at least `at_least` are there.
    pub async fn published(&self, stream: StreamDef, at_least: u64) -> Vec<jetstream::Message> {
        let stream = eventually(&format!("{at_least} messages on {}", stream.name), || async move {
            let stream = self.js.get_stream(stream.name).await.ok()?;
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
