//! The gift context: a third-party-like product exchange. The wallet calls
//! `Exchange` synchronously to turn a reward's points into a product.
//!
//! - [`domain`]: the product catalogue, the events products are sold in,
//!   the GiftOrder aggregate and the exchange and cancellation rules, pure.
//! - [`app`]: the use cases, one store transaction each, events via the outbox.
//! - [`ports`]: the store the use cases need, as a trait they own (a unit of
//!   work), and the clock.
//! - [`adapters`]: gRPC in (players' `game.gift.v1`, operators'
//!   `game.gift.admin.v1.CatalogueService`), the diesel store, the policy
//!   that keeps the programme's events, the published form of events, and
//!   the vendor's capacity and simulated slowness, failures and
//!   cancellations (`game.gift.admin.v1.VendorSimulationService`, served
//!   only when configured, to operators only, not forwarded by the gateway).
//!
//! [`build`] alone picks the concrete store behind the port.
//!
//! Publishes `GiftExchanged`, `GiftOrderCancelled` and the audit records of
//! the catalogue's changes (`ProductListed`, `ProductRestocked`); reacts to
//! `ProgrammeEventScheduled` by keeping the event's window. Never places two
//! orders for one idempotency key, nor two for one reward, and cancels an
//! order at most once.

pub mod adapters;
pub mod app;
pub mod domain;
pub mod ports;

use api::catalogue;
use std::time::Duration;

use api::game::gift::admin::v1::catalogue_service_server::CatalogueServiceServer;
use api::game::gift::admin::v1::vendor_simulation_service_server::VendorSimulationServiceServer;
use api::game::gift::v1::gift_service_server::GiftServiceServer;
use diesel_migrations::{EmbeddedMigrations, embed_migrations};
use platform::config::{ConfigError, Env, ServiceConfig};
use platform::grpc::MAX_MESSAGE_BYTES;
use platform::host::{ServiceApp, ServiceHost, ServiceSpec, StartError};

use crate::adapters::catalogue_grpc::CatalogueGrpc;
use crate::adapters::clock::SystemClock;
use crate::adapters::grpc::GiftGrpc;
use crate::adapters::policies::KeepProgrammeEvent;
use crate::adapters::store::DieselGiftStore;
use crate::adapters::vendor::{Vendor, VendorSimulationGrpc};

static MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations");

/// How the gift service presents itself.
pub const SPEC: ServiceSpec = ServiceSpec {
    name: catalogue::GIFT.name,
    grpc_service: catalogue::GIFT.grpc_service,
    migrations: &MIGRATIONS,
    publishes: &[platform::events::GIFT_STREAM],
    consumes: catalogue::GIFT.consumes,
};

/// The gift service, wired and ready to serve.
pub type App = ServiceApp;

/// Opens the store, connects to NATS and wires the use cases.
///
/// # Errors
/// When the service cannot start; see [`StartError`].
pub async fn build(config: impl Into<GiftConfig>) -> Result<App, StartError> {
    let config = config.into();
    let mut host = ServiceHost::start(SPEC, &config.service).await?;
    let gifts = app::Gifts::new(DieselGiftStore::new(host.db().clone(), host.outbox().clone()), SystemClock)
        .for_vendor(config.vendor.clone());
    host.spawn_relay();
    host.spawn_policy(KeepProgrammeEvent).await?;
    // Always run, simulation or not: cancellations planned before a restart
    // with the simulation off are still the vendor's word.
    let cancellations = gifts.clone();
    let interval = config.vendor_cancellation_interval;
    host.spawn(move |stopping| cancellations.run_vendor_cancellations(interval, stopping));
    let vendor = Vendor::new(config.max_exchanges_in_flight);
    let app = host
        .serving(
            GiftServiceServer::new(GiftGrpc::new(gifts.clone(), vendor.clone()))
                .max_decoding_message_size(MAX_MESSAGE_BYTES),
        )
        .also_serving(
            CatalogueServiceServer::new(CatalogueGrpc::new(gifts)).max_decoding_message_size(MAX_MESSAGE_BYTES),
        );
    if !config.vendor_simulation {
        return Ok(app);
    }
    tracing::warn!("the vendor simulation is served: operators can make gift slow or failing (GIFT_VENDOR_SIMULATION)");
    Ok(app.also_serving(VendorSimulationServiceServer::new(VendorSimulationGrpc::new(vendor))))
}

/// The gift service's configuration.
#[derive(Debug, Clone)]
pub struct GiftConfig {
    pub service: ServiceConfig,
    /// Exchanges served at once; beyond, RESOURCE_EXHAUSTED at once
    /// (`GIFT_MAX_EXCHANGES_IN_FLIGHT`).
    pub max_exchanges_in_flight: usize,
    /// Whether `game.gift.admin.v1.VendorSimulationService` is served, to
    /// operators only (`GIFT_VENDOR_SIMULATION`, off by default): fault
    /// injection for drills and tests, which must never be reachable in
    /// production.
    pub vendor_simulation: bool,
    /// How often the orders the vendor cancels are looked for, due.
    pub vendor_cancellation_interval: Duration,
    /// The vendor this gift service places orders with, named on every
    /// `GiftExchanged` (`GIFT_VENDOR`, `gift` by default); settlement
    /// totals each period per vendor.
    pub vendor: kernel::Vendor,
}

impl From<ServiceConfig> for GiftConfig {
    fn from(service: ServiceConfig) -> Self {
        Self {
            service,
            max_exchanges_in_flight: 64,
            vendor_simulation: false,
            vendor_cancellation_interval: Duration::from_millis(500),
            vendor: kernel::Vendor::default(),
        }
    }
}

impl GiftConfig {
    /// The defaults, overridden by the process's environment: the one place
    /// the gift service's configuration is read.
    ///
    /// # Errors
    /// When a variable is set to something unusable.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::read(&Env::process())
    }

    /// The defaults, overridden by `env`.
    ///
    /// # Errors
    /// When a variable is set to something unusable.
    pub fn read(env: &Env) -> Result<Self, ConfigError> {
        let defaults = Self::from(ServiceConfig::read(env, &catalogue::GIFT)?);
        Ok(Self {
            max_exchanges_in_flight: env
                .above_zero("GIFT_MAX_EXCHANGES_IN_FLIGHT", defaults.max_exchanges_in_flight)?,
            vendor_simulation: env.or("GIFT_VENDOR_SIMULATION", defaults.vendor_simulation)?,
            vendor: env.or("GIFT_VENDOR", defaults.vendor.clone())?,
            ..defaults
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // a test that cannot proceed should stop right there

    use super::*;

    #[test]
    fn the_vendor_is_gift_unless_gift_vendor_names_another() {
        let defaults = GiftConfig::read(&Env::from_pairs([])).unwrap();
        let acme = GiftConfig::read(&Env::from_pairs([("GIFT_VENDOR", "acme-toys")])).unwrap();
        let error = GiftConfig::read(&Env::from_pairs([("GIFT_VENDOR", "Acme Toys")])).unwrap_err();

        assert_eq!((defaults.vendor.as_str(), acme.vendor.as_str()), ("gift", "acme-toys"));
        assert_eq!(error.to_string(), "invalid GIFT_VENDOR=\"Acme Toys\": may only contain a-z, 0-9, '-' and '_'");
    }
}
