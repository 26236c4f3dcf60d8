//! Spawns the real wallet service on a free port with a fresh store.

use std::future::Future;
use std::ops::Deref;
use std::time::Duration;

use api::game::reward::v1::RewardAllocated;
use api::game::wallet::v1::{self as pb, wallet_service_client::WalletServiceClient};
use testkit::AsCaller;
use testkit::{Broker, Running, TempStore, service_config};
use tonic::transport::Channel;

pub struct TestApp {
    pub broker: Broker,
    pub client: WalletServiceClient<Channel>,
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

/// The wallet with gift expected at a port where nothing listens.
pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

/// The wallet as [`spawn_app`] starts it, with its configuration tuned first.
pub async fn spawn_app_with(tune: impl FnOnce(&mut wallet::WalletConfig)) -> TestApp {
    spawn_app_on(Broker::start().await, None, tune).await
}

/// The wallet on `broker`, its store at `database_url` (or a fresh SQLite
/// file), with gift expected where nothing listens unless `tune` says.
pub async fn spawn_app_on(
    broker: Broker,
    database_url: Option<&str>,
    tune: impl FnOnce(&mut wallet::WalletConfig),
) -> TestApp {
    let store = TempStore::new();
    let url = database_url.map_or_else(|| store.sqlite_url("wallet"), str::to_owned);
    let mut config = wallet::WalletConfig::local(service_config(&broker, url));
    config.gift_url = format!("http://127.0.0.1:{}", testkit::free_port());
    tune(&mut config);
    let service = Running::serve(wallet::build(config).await.unwrap());
    let client = WalletServiceClient::connect(service.url()).await.unwrap();
    TestApp { broker, client, _service: service, _store: store }
}

impl TestApp {
    /// Publishes a RewardAllocated as the reward context would, for a
    /// mission of an event that never ends.
    pub async fn allocate(&self, customer: &str, points: i64) -> RewardAllocated {
        self.allocate_in_event(customer, points, None).await
    }

    /// Publishes a RewardAllocated for a mission of an event ending at
    /// `event_ends_at` (milliseconds since the Unix epoch; `None`: never).
    pub async fn allocate_in_event(&self, customer: &str, points: i64, event_ends_at: Option<i64>) -> RewardAllocated {
        let event = RewardAllocated {
            event_id: uuid::Uuid::new_v4().to_string(),
            reward_id: uuid::Uuid::new_v4().to_string(),
            mission_id: uuid::Uuid::new_v4().to_string(),
            customer_id: customer.into(),
            mission_code: "FIRST_WIN".into(),
            points,
            allocated_at: None,
            programme_event_id: if event_ends_at.is_some() { "WINTER-2026" } else { "LAUNCH" }.into(),
            event_ends_at: event_ends_at.map(platform::events::timestamp),
        };
        self.publish(&event).await;
        event
    }

    pub async fn wallet(&self, customer: &str) -> Vec<pb::WalletEntry> {
        let request = pb::GetWalletRequest { customer_id: customer.into() };
        self.client.clone().get_wallet(request.by_player(customer)).await.unwrap().into_inner().wallet.unwrap().entries
    }

    pub async fn entry_for(&self, customer: &str, reward_id: &str) -> pb::WalletEntry {
        eventually("the reward to reach the wallet", || async {
            self.wallet(customer).await.into_iter().find(|e| e.reward_id == reward_id)
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
