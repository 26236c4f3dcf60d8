//! The mission context: players achieve missions from the event's catalogue.
//!
//! - [`domain`]: the Mission aggregate and its rules, pure.
//! - [`app`]: the use cases, one store transaction each, events via the outbox.
//! - [`ports`]: the store the use cases need, as a trait they own (a unit of work).
//! - [`adapters`]: gRPC in, the diesel store, the policy on RewardAllocated,
//!   the published form of events.
//!
//! [`build`] alone picks the concrete store behind the port.
//!
//! Publishes `MissionAchieved`, and the audit records of the programme's
//! changes (`ProgrammeEventScheduled`, `MissionDefined`); reacts to
//! `RewardAllocated` by recording the reward on the mission. Serves players
//! `game.mission.v1.MissionService` and operators
//! `game.programme.v1.ProgrammeService`.

pub mod adapters;
pub mod app;
pub mod domain;
pub mod ports;

use api::catalogue;
use api::game::mission::v1::mission_service_server::MissionServiceServer;
use api::game::programme::v1::programme_service_server::ProgrammeServiceServer;
use diesel_migrations::{EmbeddedMigrations, embed_migrations};
use platform::config::{ConfigError, Env, ServiceConfig};
use platform::grpc::MAX_MESSAGE_BYTES;
use platform::host::{ServiceApp, ServiceHost, ServiceSpec, StartError};

static MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations");

/// How the mission service presents itself.
pub const SPEC: ServiceSpec = ServiceSpec {
    name: catalogue::MISSION.name,
    grpc_service: catalogue::MISSION.grpc_service,
    migrations: &MIGRATIONS,
    publishes: &[platform::events::MISSION_STREAM],
    consumes: catalogue::MISSION.consumes,
};

/// The mission service's configuration: what every service needs, and
/// nothing more, read from the process's environment. The one place it is
/// read.
///
/// # Errors
/// When a variable is set to something unusable.
pub fn config_from_env() -> Result<ServiceConfig, ConfigError> {
    ServiceConfig::read(&Env::process(), &catalogue::MISSION)
}

/// The mission service, wired and ready to serve.
pub type App = ServiceApp;

/// Opens the store, connects to NATS and wires the use cases.
///
/// # Errors
/// When the service cannot start; see [`StartError`].
pub async fn build(config: ServiceConfig) -> Result<App, StartError> {
    let mut host = ServiceHost::start(SPEC, &config).await?;
    let missions = app::Missions::new(
        adapters::store::DieselMissionStore::new(host.db().clone(), host.outbox().clone()),
        adapters::clock::SystemClock,
    );
    host.spawn_relay();
    host.spawn_policy(adapters::policies::RecordReward).await?;
    Ok(host
        .serving(
            MissionServiceServer::new(adapters::grpc::MissionGrpc::new(missions.clone()))
                .max_decoding_message_size(MAX_MESSAGE_BYTES),
        )
        .also_serving(
            ProgrammeServiceServer::new(adapters::programme_grpc::ProgrammeGrpc::new(missions))
                .max_decoding_message_size(MAX_MESSAGE_BYTES),
        ))
}
