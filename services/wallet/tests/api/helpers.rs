//! Spawns the real wallet service on a free port with a fresh store.

use std::future::Future;
use std::time::Duration;

use api::game::reward::v1::RewardAllocated;
use api::game::wallet::v1::{self as pb, wallet_service_client::WalletServiceClient};
use async_nats::jetstream;
use platform::CancellationToken;
use platform::config::ServiceConfig;
use platform::events::{Event as _, REWARD_STREAM};
use prost::Message as _;
use testkit::NatsServer;
use tonic::transport::Channel;

pub struct TestApp {
    _nats: NatsServer,
    pub client: WalletServiceClient<Channel>,
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

/// The wallet with gift expected at a port where nothing listens.
pub async fn spawn_app() -> TestApp {
    let nats = NatsServer::start().unwrap();
    let dir = std::env::temp_dir().join(format!("wallet-test-{}", uuid::Uuid::new_v4().simple()));
    let mut config = wallet::WalletConfig::local(ServiceConfig {
        grpc_addr: "127.0.0.1:0".parse().unwrap(),
        database_url: dir.join("wallet.sqlite").display().to_string(),
        nats_url: nats.url(),
        shutdown_grace: Duration::from_secs(2),
    });
    config.gift_url = format!("http://127.0.0.1:{}", testkit::free_port());
    let app = wallet::App::build(config).await.unwrap();
    let port = app.port();
    let stop = CancellationToken::new();
    tokio::spawn(app.run_until_stopped(stop.clone().cancelled_owned()));
    let client = WalletServiceClient::connect(format!("http://127.0.0.1:{port}"))
        .await
        .unwrap();
    let js = jetstream::new(async_nats::connect(nats.url()).await.unwrap());
    TestApp {
        _nats: nats,
        client,
        js,
        stop,
        dir,
    }
}

impl TestApp {
    /// Publishes a RewardAllocated as the reward context would.
    pub async fn allocate(&self, customer: &str, points: i64) -> RewardAllocated {
        let event = RewardAllocated {
            event_id: uuid::Uuid::new_v4().to_string(),
            reward_id: uuid::Uuid::new_v4().to_string(),
            mission_id: uuid::Uuid::new_v4().to_string(),
            customer_id: customer.into(),
            mission_code: "FIRST_WIN".into(),
            points,
            allocated_at: None,
        };
        self.publish(&event).await;
        event
    }

    pub async fn publish(&self, event: &RewardAllocated) {
        REWARD_STREAM.ensure(&self.js).await.unwrap();
        let message = jetstream::message::PublishMessage::build()
            .payload(event.encode_to_vec().into())
            .message_id(&event.event_id);
        self.js
            .send_publish(RewardAllocated::SUBJECT, message)
            .await
            .unwrap()
            .await
            .unwrap();
    }

    pub async fn wallet(&self, customer: &str) -> Vec<pb::WalletEntry> {
        let request = pb::GetWalletRequest {
            customer_id: customer.into(),
        };
        self.client
            .clone()
            .get_wallet(request)
            .await
            .unwrap()
            .into_inner()
            .wallet
            .unwrap()
            .entries
    }

    pub async fn entry_for(&self, customer: &str, reward_id: &str) -> pb::WalletEntry {
        eventually("the reward to reach the wallet", || async {
            self.wallet(customer)
                .await
                .into_iter()
                .find(|e| e.reward_id == reward_id)
        })
        .await
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
