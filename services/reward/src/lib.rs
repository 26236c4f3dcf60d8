//! The reward context: exactly one reward is allocated for each achieved
//! mission, and its status follows the player's wallet.
//!
//! - [`domain`]: the Reward aggregate and its rules, pure.
//! - [`app`]: the use cases, one store transaction each, events via the outbox.
//! - [`adapters`]: gRPC in, the diesel store, the policies on MissionAchieved
//!   and on the wallet's RewardIssued / RewardExchanged.
//!
//! Publishes `RewardAllocated`.

pub mod adapters;
pub mod app;
pub mod domain;

use std::future::Future;

use api::game::reward::v1::reward_service_server::RewardServiceServer;
use diesel_migrations::{EmbeddedMigrations, embed_migrations};
use platform::config::ServiceConfig;
use platform::host::{ServiceHost, ServiceSpec, StartError};
use tonic::service::RoutesBuilder;

static MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations");

/// How the reward service presents itself.
pub const SPEC: ServiceSpec = ServiceSpec {
    name: "reward",
    grpc_service: "game.reward.v1.RewardService",
    migrations: &MIGRATIONS,
    publishes: &[platform::events::REWARD_STREAM],
};

/// The default gRPC port of the reward service.
pub const DEFAULT_PORT: u16 = 50052;

/// The reward service, wired and ready to serve.
#[derive(Debug)]
pub struct App {
    host: ServiceHost,
    routes: RoutesBuilder,
}

impl App {
    /// Opens the store, connects to NATS and wires the use cases.
    ///
    /// # Errors
    /// When the service cannot start; see [`StartError`].
    pub async fn build(config: ServiceConfig) -> Result<Self, StartError> {
        let mut host = ServiceHost::start(SPEC, &config).await?;
        let rewards = app::Rewards::new(host.db().clone());
        host.spawn_relay();
        host.spawn_policy(adapters::policies::AllocateReward);
        host.spawn_policy(adapters::policies::TrackWallet);
        let mut routes = RoutesBuilder::default();
        routes.add_service(RewardServiceServer::new(adapters::grpc::RewardGrpc::new(rewards)));
        Ok(Self { host, routes })
    }

    /// The port the service listens on.
    pub fn port(&self) -> u16 {
        self.host.port()
    }

    /// Serves until `stop` resolves, then drains.
    ///
    /// # Errors
    /// When the gRPC server fails.
    pub async fn run_until_stopped(self, stop: impl Future<Output = ()> + Send) -> Result<(), StartError> {
        self.host.serve(self.routes, stop).await
    }
}
