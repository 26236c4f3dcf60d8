//! Spawns the real mission service on a free port with a fresh store.

use std::future::Future;
use std::ops::Deref;
use std::time::Duration;

use api::game::mission::v1::mission_service_client::MissionServiceClient;
use api::game::programme::v1::programme_service_client::ProgrammeServiceClient;
use testkit::{Broker, Running, TempStore, service_config};
use tonic::transport::Channel;

pub struct TestApp {
    pub broker: Broker,
    pub client: MissionServiceClient<Channel>,
    /// The operators' API, served beside the players'.
    pub programme: ProgrammeServiceClient<Channel>,
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
    let config = service_config(&broker, database_url.unwrap_or_else(|| store.sqlite_url("mission")));
    let service = Running::serve(mission::build(config).await.expect("mission service starts"));
    let client = MissionServiceClient::connect(service.url()).await.expect("connects");
    let programme = ProgrammeServiceClient::connect(service.url()).await.expect("connects");
    TestApp { broker, client, programme, _service: service, _store: store }
}

/// Polls `check` until it returns `Some`, for at most 10 seconds.
pub async fn eventually<T, F, Fut>(what: &str, check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    testkit::eventually(what, Duration::from_secs(10), check).await
}
