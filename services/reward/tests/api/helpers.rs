//! Spawns the real reward service on a free port with a fresh store, and
//! plays the mission and wallet contexts by publishing their events.

use std::future::Future;
use std::ops::Deref;
use std::time::Duration;

use api::game::mission::v1::MissionAchieved;
use api::game::reward::v1::{self as pb, reward_service_client::RewardServiceClient};
use api::game::wallet::v1::{PointsExpired, RewardExchanged, RewardIssued};
use platform::config::ServiceConfig;
use testkit::AsCaller;
use testkit::{Broker, Running, TempStore, service_config};
use tonic::transport::Channel;

pub struct TestApp {
    pub broker: Broker,
    pub client: RewardServiceClient<Channel>,
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
    spawn_app_with(database_url, |_| {}).await
}

/// The service as [`spawn_app`] starts it, with its configuration tuned first.
pub async fn spawn_app_with(database_url: Option<String>, tune: impl FnOnce(&mut ServiceConfig)) -> TestApp {
    let broker = Broker::start().await;
    let store = TempStore::new();
    let mut config = service_config(&broker, database_url.unwrap_or_else(|| store.sqlite_url("reward")));
    tune(&mut config);
    let service = Running::serve(reward::build(config).await.expect("reward service starts"));
    let client = RewardServiceClient::connect(service.url()).await.expect("connects");
    TestApp { broker, client, _service: service, _store: store }
}

/// A MissionAchieved as the mission context publishes it, for a new mission.
pub fn mission_achieved(customer: &str, points: i64) -> MissionAchieved {
    let mission_id = uuid::Uuid::now_v7();
    MissionAchieved {
        event_id: kernel::derived_uuid(mission_id, b"MissionAchieved").to_string(),
        mission_id: mission_id.to_string(),
        customer_id: customer.into(),
        mission_code: "FIRST_WIN".into(),
        reward_points: points,
        achieved_at: Some(platform::events::timestamp(1_764_000_000_000)),
        programme_event_id: "LAUNCH".into(),
        event_ends_at: None,
    }
}

/// The id the reward context gives the reward of this mission.
pub fn reward_id_for(achieved: &MissionAchieved) -> String {
    kernel::derived_uuid(achieved.mission_id.parse().unwrap(), b"Reward").to_string()
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
        expires_at: None,
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

/// A PointsExpired as the wallet's expiry job publishes it.
pub fn points_expired(achieved: &MissionAchieved) -> PointsExpired {
    PointsExpired {
        event_id: uuid::Uuid::new_v4().to_string(),
        entry_id: uuid::Uuid::new_v4().to_string(),
        reward_id: reward_id_for(achieved),
        mission_id: achieved.mission_id.clone(),
        customer_id: achieved.customer_id.clone(),
        points: achieved.reward_points,
        expires_at: Some(platform::events::timestamp(1_766_000_000_000)),
        expired_at: Some(platform::events::timestamp(1_766_000_060_000)),
    }
}

impl TestApp {
    /// The reward as GetReward answers it, or `None` while it is not there.
    pub async fn reward(&self, reward_id: &str) -> Option<pb::Reward> {
        let request = pb::GetRewardRequest { reward_id: reward_id.into() };
        self.client.clone().get_reward(request.by_operator()).await.ok()?.into_inner().reward
    }

    /// Waits until the reward exists with `status`.
    pub async fn reward_in(&self, reward_id: &str, status: pb::RewardStatus) -> pb::Reward {
        eventually(&format!("reward {reward_id} to be {status:?}"), || async move {
            self.reward(reward_id).await.filter(|r| r.status() == status)
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
