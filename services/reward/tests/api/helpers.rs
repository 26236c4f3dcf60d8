//! Spawns the real reward service on a free port with a fresh store, and
//! plays the mission and wallet contexts by publishing their events.

use std::future::Future;
use std::time::Duration;

use api::game::mission::v1::MissionAchieved;
use api::game::reward::v1::{self as pb, reward_service_client::RewardServiceClient};
use api::game::wallet::v1::{RewardExchanged, RewardIssued};
use async_nats::jetstream;
use futures::StreamExt as _;
use platform::CancellationToken;
use platform::config::ServiceConfig;
use platform::events::{Event, StreamDef};
use testkit::NatsServer;
use tonic::transport::Channel;

pub struct TestApp {
    _nats: NatsServer,
    pub client: RewardServiceClient<Channel>,
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
    let dir = std::env::temp_dir().join(format!("reward-test-{}", uuid::Uuid::new_v4().simple()));
    let config = ServiceConfig {
        grpc_addr: "127.0.0.1:0".parse().unwrap(),
        database_url: database_url.unwrap_or_else(|| dir.join("reward.sqlite").display().to_string()),
        nats_url: nats.url(),
        shutdown_grace: Duration::from_secs(2),
    };
    let app = reward::App::build(config).await.expect("reward service starts");
    let port = app.port();
    let stop = CancellationToken::new();
    tokio::spawn(app.run_until_stopped(stop.clone().cancelled_owned()));
    let client = RewardServiceClient::connect(format!("http://127.0.0.1:{port}"))
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

/// A MissionAchieved as the mission context publishes it, for a new mission.
pub fn mission_achieved(customer: &str, points: i64) -> MissionAchieved {
    let mission_id = uuid::Uuid::new_v4();
    MissionAchieved {
        event_id: uuid::Uuid::new_v5(&mission_id, b"MissionAchieved").to_string(),
        mission_id: mission_id.to_string(),
        customer_id: customer.into(),
        mission_code: "FIRST_WIN".into(),
        reward_points: points,
        achieved_at: Some(platform::events::timestamp(1_764_000_000_000)),
    }
}

/// The id the reward context gives the reward of this mission.
pub fn reward_id_for(achieved: &MissionAchieved) -> String {
    uuid::Uuid::new_v5(&achieved.mission_id.parse().unwrap(), b"Reward").to_string()
}

/// A RewardIssued as the wallet publishes it.
pub fn reward_issued(achieved: &MissionAchieved) -> RewardIssued {
    RewardIssued {
        event_id: uuid::Uuid::new_v4().to_string(),
        entry_id: uuid::Uuid::new_v4().to_string(),
        reward_id: reward_id_for(achieved),
        mission_id: achieved.mission_id.clone(),
        customer_id: achieved.customer_id.clone(),
        points: achieved.reward_points,
        issued_at: None,
    }
}

/// A RewardExchanged as the wallet publishes it.
pub fn reward_exchanged(achieved: &MissionAchieved) -> RewardExchanged {
    RewardExchanged {
        event_id: uuid::Uuid::new_v4().to_string(),
        entry_id: uuid::Uuid::new_v4().to_string(),
        reward_id: reward_id_for(achieved),
        mission_id: achieved.mission_id.clone(),
        customer_id: achieved.customer_id.clone(),
        gift_order_id: uuid::Uuid::new_v4().to_string(),
        product_sku: "COFFEE-S".into(),
        exchanged_at: None,
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

    /// The reward as GetReward answers it, or `None` while it is not there.
    pub async fn reward(&self, reward_id: &str) -> Option<pb::Reward> {
        let request = pb::GetRewardRequest {
            reward_id: reward_id.into(),
        };
        self.client.clone().get_reward(request).await.ok()?.into_inner().reward
    }

    /// Waits until the reward exists with `status`.
    pub async fn reward_in(&self, reward_id: &str, status: pb::RewardStatus) -> pb::Reward {
        eventually(&format!("reward {reward_id} to be {status:?}"), || async move {
            self.reward(reward_id).await.filter(|r| r.status() == status)
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
