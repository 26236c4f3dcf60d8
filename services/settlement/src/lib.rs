//! The settlement context: records what each gift exchange costs, i.e. what
//! is owed to the gift vendor, exactly once per gift order.
//!
//! - [`domain`]: the Settlement aggregate and its values, pure.
//! - [`app`]: the use cases, one store transaction each, events via the outbox.
//! - [`ports`]: the ledger the use cases need, as traits they own.
//! - [`adapters`]: gRPC in (paged listing), the diesel ledger, the policy on
//!   GiftExchanged, the published form of events.
//!
//! [`build`] alone picks the concrete ledger behind the port.
//!
//! Publishes `SettlementRecorded`.

pub mod adapters;
pub mod app;
pub mod domain;
pub mod ports;

use api::catalogue;
use api::game::settlement::v1::settlement_service_server::SettlementServiceServer;
use diesel_migrations::{EmbeddedMigrations, embed_migrations};
use platform::config::{ConfigError, Env, ServiceConfig};
use platform::grpc::MAX_MESSAGE_BYTES;
use platform::host::{ServiceApp, ServiceHost, ServiceSpec, StartError};

static MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations");

/// How the settlement service presents itself.
pub const SPEC: ServiceSpec = ServiceSpec {
    name: catalogue::SETTLEMENT.name,
    grpc_service: catalogue::SETTLEMENT.grpc_service,
    migrations: &MIGRATIONS,
    publishes: &[platform::events::SETTLEMENT_STREAM],
};

/// The settlement service's configuration: what every service needs, and
/// nothing more, read from the process's environment. The one place it is
/// read.
///
/// # Errors
/// When a variable is set to something unusable.
pub fn config_from_env() -> Result<ServiceConfig, ConfigError> {
    ServiceConfig::read(&Env::process(), &catalogue::SETTLEMENT)
}

/// The settlement service, wired and ready to serve.
pub type App = ServiceApp;

/// Opens the store, connects to NATS and wires the use cases.
///
/// # Errors
/// When the service cannot start; see [`StartError`].
pub async fn build(config: ServiceConfig) -> Result<App, StartError> {
    let mut host = ServiceHost::start(SPEC, &config).await?;
    let settlements = app::Settlements::new(adapters::store::DieselLedger::new(host.db().clone()));
    host.spawn_relay();
    host.spawn_policy(adapters::policies::RecordSettlement).await?;
    Ok(host.serving(
        SettlementServiceServer::new(adapters::grpc::SettlementGrpc::new(settlements))
            .max_decoding_message_size(MAX_MESSAGE_BYTES),
    ))
}
