//! The whole mesh in one test process: a real nats-server, every service
//! with its own store (SQLite files, or PostgreSQL schemas where asked), and
//! the gateway in front, each on a port of its own that survives a restart.
//! Tests drive it through the gateway like any client would, and stop and
//! start services to show what survives.

use std::collections::HashMap;
use std::future::Future;
use std::path::PathBuf;
use std::time::Duration;

use api::catalogue;
use platform::CancellationToken;
use platform::config::ServiceConfig;
use testkit::{NatsServer, free_port};
use tokio::task::JoinHandle;
use tonic::transport::Channel;

/// Where each service keeps its store, and how the exchange path is tuned.
#[derive(Debug, Clone, Default)]
pub struct MeshOptions {
    /// Services whose store is a fresh PostgreSQL schema (URL per service);
    /// the others use SQLite files.
    pub postgres: HashMap<&'static str, String>,
    /// How the wallet calls gift; the service defaults when `None`.
    pub wallet_to_gift: Option<platform::resilience::ResilienceConfig>,
    /// Exchanges gift serves at once; its default when `None`.
    pub gift_max_exchanges_in_flight: Option<usize>,
    /// Whether gift serves its vendor simulation (to operators).
    pub gift_vendor_simulation: bool,
    /// What the gateway serves browsers (the page, the development sign-in).
    pub web: gateway::web::WebConfig,
}

struct Running {
    stop: CancellationToken,
    handle: JoinHandle<()>,
}

/// A running mesh. Everything stops when it is dropped.
pub struct Mesh {
    pub nats: NatsServer,
    dir: PathBuf,
    ports: HashMap<&'static str, u16>,
    gateway_port: u16,
    options: MeshOptions,
    running: HashMap<&'static str, Running>,
}

impl std::fmt::Debug for Mesh {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mesh").field("ports", &self.ports).field("gateway_port", &self.gateway_port).finish()
    }
}

impl Mesh {
    /// Starts nats-server, every service and the gateway.
    ///
    /// # Panics
    /// When a part does not start: the test cannot proceed.
    pub async fn start(options: MeshOptions) -> Self {
        let nats = NatsServer::start().expect("nats-server starts");
        let dir = std::env::temp_dir().join(format!("mesh-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let ports = catalogue::SERVICES.iter().map(|s| (s.name, free_port())).collect();
        let mut mesh = Self { nats, dir, ports, gateway_port: free_port(), options, running: HashMap::new() };
        for service in &catalogue::SERVICES {
            mesh.start_service(service.name).await;
        }
        mesh.start_gateway().await;
        mesh
    }

    /// The gateway's URL.
    pub fn gateway_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.gateway_port)
    }

    /// A service's own URL, for what the gateway does not route (admin APIs).
    pub fn service_url(&self, service: &str) -> String {
        format!("http://127.0.0.1:{}", self.ports[service])
    }

    /// A channel to the gateway: every client of the tests goes through it.
    ///
    /// # Panics
    /// When the gateway cannot be reached.
    pub async fn gateway(&self) -> Channel {
        Channel::from_shared(self.gateway_url()).expect("valid URL").connect().await.expect("gateway reachable")
    }

    fn config(&self, service: &'static str) -> ServiceConfig {
        let database_url = self
            .options
            .postgres
            .get(service)
            .cloned()
            .unwrap_or_else(|| self.dir.join(format!("{service}.sqlite")).display().to_string());
        ServiceConfig {
            grpc_addr: ([127, 0, 0, 1], self.ports[service]).into(),
            database_url,
            nats_url: self.nats.url(),
            shutdown_grace: Duration::from_secs(3),
            auth: Some(testkit::identity().auth_config()),
            ..ServiceConfig::local(service, 0)
        }
    }

    /// Starts (or restarts) one service on its port with its store.
    ///
    /// # Panics
    /// When it does not start.
    pub async fn start_service(&mut self, service: &'static str) {
        assert!(!self.running.contains_key(service), "{service} is already running");
        let config = self.config(service);
        let stop = CancellationToken::new();
        let stopping = stop.clone().cancelled_owned();
        let handle = match service {
            "mission" => spawn(mission::build(config).await.expect("mission starts").run_until_stopped(stopping)),
            "reward" => spawn(reward::build(config).await.expect("reward starts").run_until_stopped(stopping)),
            "wallet" => {
                let mut wallet_config = wallet::WalletConfig::local(config);
                wallet_config.gift_url = self.service_url(catalogue::GIFT.name);
                if let Some(gift) = &self.options.wallet_to_gift {
                    wallet_config.gift = gift.clone();
                }
                wallet_config.redrive.interval = Duration::from_millis(200);
                wallet_config.redrive.after = Duration::from_millis(500);
                spawn(wallet::build(wallet_config).await.expect("wallet starts").run_until_stopped(stopping))
            }
            "gift" => {
                let mut gift_config = gift::GiftConfig::from(config);
                if let Some(max) = self.options.gift_max_exchanges_in_flight {
                    gift_config.max_exchanges_in_flight = max;
                }
                gift_config.vendor_simulation = self.options.gift_vendor_simulation;
                spawn(gift::build(gift_config).await.expect("gift starts").run_until_stopped(stopping))
            }
            "mypage" => spawn(mypage::build(config).await.expect("mypage starts").run_until_stopped(stopping)),
            "settlement" => {
                spawn(settlement::build(config).await.expect("settlement starts").run_until_stopped(stopping))
            }
            other => panic!("no service called {other}"),
        };
        self.running.insert(service, Running { stop, handle });
    }

    async fn start_gateway(&mut self) {
        let mut config = gateway::GatewayConfig::local();
        config.addr = ([127, 0, 0, 1], self.gateway_port).into();
        config.upstreams = catalogue::SERVICES
            .iter()
            .map(|s| (s.grpc_service, format!("http://127.0.0.1:{}", self.ports[s.name])))
            .collect();
        config.shutdown_grace = Duration::from_secs(3);
        config.auth = Some(testkit::identity().auth_config());
        config.web = self.options.web.clone();
        // The tests drive hundreds of calls per second as one operator.
        config.rate_limit = gateway::rate_limit::RateLimit { per_second: 1e6, burst: 1_000_000 };
        let stop = CancellationToken::new();
        let app = gateway::App::build(config).await.expect("gateway starts");
        let handle = spawn(app.run_until_stopped(stop.clone().cancelled_owned()));
        self.running.insert("gateway", Running { stop, handle });
    }

    /// Stops one service (graceful drain) and waits until it is gone.
    ///
    /// # Panics
    /// When it was not running.
    pub async fn stop_service(&mut self, service: &'static str) {
        let running = self.running.remove(service).unwrap_or_else(|| panic!("{service} is not running"));
        running.stop.cancel();
        let _ = running.handle.await;
    }
}

fn spawn<E: std::fmt::Debug>(serving: impl Future<Output = Result<(), E>> + Send + 'static) -> JoinHandle<()> {
    tokio::spawn(async move {
        if let Err(error) = serving.await {
            eprintln!("service stopped with an error: {error:?}");
        }
    })
}

impl Drop for Mesh {
    fn drop(&mut self) {
        for running in self.running.values() {
            running.stop.cancel();
            running.handle.abort();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_service_presents_itself_and_publishes_as_the_catalogue_says() {
        let specs = [&mission::SPEC, &reward::SPEC, &wallet::SPEC, &gift::SPEC, &mypage::SPEC, &settlement::SPEC];
        for (spec, entry) in specs.into_iter().zip(&catalogue::SERVICES) {
            assert_eq!((spec.name, spec.grpc_service), (entry.name, entry.grpc_service));
            let streams: Vec<&str> = spec.publishes.iter().map(|stream| stream.name).collect();
            assert_eq!(streams, entry.publishes.into_iter().collect::<Vec<_>>(), "{}", entry.name);
        }
    }
}
