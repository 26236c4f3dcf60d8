//! The settlement context: records what each gift exchange costs, i.e. what
//! is owed to the gift vendor, exactly once per gift order.
//!
//! - [`domain`]: the Settlement aggregate and its values, pure.
//! - [`app`]: the use cases, one store transaction each, events via the outbox.
//! - [`adapters`]: gRPC in (paged listing), the diesel store, the policy on
//!   GiftExchanged.
//!
//! Publishes `SettlementRecorded`.

pub mod adapters;
pub mod app;
pub mod domain;

use std::future::Future;

use api::game::settlement::v1::settlement_service_server::SettlementServiceServer;
use diesel_migrations::{EmbeddedMigrations, embed_migrations};
use platform::config::ServiceConfig;
use platform::host::{ServiceHost, ServiceSpec, StartError};
use tonic::service::RoutesBuilder;

static MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations");

/// How the settlement service presents itself.
pub const SPEC: ServiceSpec = ServiceSpec {
    name: "settlement",
    grpc_service: "game.settlement.v1.SettlementService",
    migrations: &MIGRATIONS,
    publishes: &[platform::events::SETTLEMENT_STREAM],
};

/// The default gRPC port of the settlement service.
pub const DEFAULT_PORT: u16 = 50056;

/// The settlement service, wired and ready to serve.
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
        let settlements = app::Settlements::new(host.db().clone());
        host.spawn_relay();
        host.spawn_policy(adapters::policies::RecordSettlement);
        let mut routes = RoutesBuilder::default();
        routes.add_service(SettlementServiceServer::new(adapters::grpc::SettlementGrpc::new(
            settlements,
        )));
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
