//! The reward context: exactly one reward is allocated for each achieved
//! mission, and its status follows the player's wallet.
//!
//! - [`domain`]: the Reward aggregate and its rules, pure.
//! - [`app`]: the use cases, one store transaction each, events via the outbox.
//! - [`ports`]: the store the use cases need, as traits they own.
//! - [`adapters`]: gRPC in, the diesel store, the policies on MissionAchieved
//!   and on the wallet's RewardIssued / RewardExchanged / PointsExpired, the published form
//!   of events.
//!
//! [`build`] alone picks the concrete store behind the port.
//!
//! Publishes `RewardAllocated`.

pub mod adapters;
pub mod app;
pub mod domain;
pub mod ports;

use api::catalogue;
use api::game::reward::v1::reward_service_server::RewardServiceServer;
use diesel_migrations::{EmbeddedMigrations, embed_migrations};
use platform::config::{ConfigError, Env, ServiceConfig};
use platform::grpc::MAX_MESSAGE_BYTES;
use platform::host::{ServiceApp, ServiceHost, ServiceSpec, StartError};

static MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations");

/// How the reward service presents itself.
pub const SPEC: ServiceSpec = ServiceSpec {
    name: catalogue::REWARD.name,
    grpc_service: catalogue::REWARD.grpc_service,
    migrations: &MIGRATIONS,
    publishes: &[platform::events::REWARD_STREAM],
    consumes: catalogue::REWARD.consumes,
};

/// The reward service's configuration: what every service needs, and
/// nothing more, read from the process's environment. The one place it is
/// read.
///
/// # Errors
/// When a variable is set to something unusable.
pub fn config_from_env() -> Result<ServiceConfig, ConfigError> {
    ServiceConfig::read(&Env::process(), &catalogue::REWARD)
}

/// The reward service, wired and ready to serve.
pub type App = ServiceApp;

/// Opens the store, connects to NATS and wires the use cases.
///
/// # Errors
/// When the service cannot start; see [`StartError`].
pub async fn build(config: ServiceConfig) -> Result<App, StartError> {
    let mut host = ServiceHost::start(SPEC, &config).await?;
    let rewards = app::Rewards::new(adapters::store::DieselRewardStore::new(host.db().clone()));
    host.spawn_relay();
    host.spawn_policy(adapters::policies::AllocateReward).await?;
    host.spawn_policy(adapters::policies::TrackWallet).await?;
    host.spawn_policy(adapters::policies::TrackExpiry).await?;
    Ok(host.serving(
        RewardServiceServer::new(adapters::grpc::RewardGrpc::new(rewards)).max_decoding_message_size(MAX_MESSAGE_BYTES),
    ))
}
