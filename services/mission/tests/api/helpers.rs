//! Spawns the real mission service on a free port with a fresh store.

use std::future::Future;
use std::time::Duration;

use api::game::mission::v1::mission_service_client::MissionServiceClient;
use platform::CancellationToken;
use platform::config::ServiceConfig;
use testkit::NatsServer;
use tonic::transport::Channel;

pub struct TestApp {
    pub nats: NatsServer,
    pub client: MissionServiceClient<Channel>,
    pub stop: CancellationToken,
    _store: tempfile_dir::Dir,
}

/// A temporary directory for the SQLite file, removed at the end of the test.
pub mod tempfile_dir {
    pub struct Dir(pub std::path::PathBuf);
    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

pub async fn spawn_app(database_url: Option<String>) -> TestApp {
    let nats = NatsServer::start().expect("nats-server starts");
    let dir = std::env::temp_dir().join(format!("mission-test-{}", uuid::Uuid::new_v4().simple()));
    let config = ServiceConfig {
        grpc_addr: "127.0.0.1:0".parse().unwrap(),
        database_url: database_url.unwrap_or_else(|| dir.join("mission.sqlite").display().to_string()),
        nats_url: nats.url(),
        shutdown_grace: Duration::from_secs(2),
    };
    let app = mission::App::build(config).await.expect("mission service starts");
    let port = app.port();
    let stop = CancellationToken::new();
    let stopped = stop.clone();
    tokio::spawn(async move { app.run_until_stopped(stopped.cancelled_owned()).await });
    let client = MissionServiceClient::connect(format!("http://127.0.0.1:{port}"))
        .await
        .expect("connects");
    TestApp {
        nats,
        client,
        stop,
        _store: tempfile_dir::Dir(dir),
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.stop.cancel();
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
