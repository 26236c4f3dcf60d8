//! The gift context: a third-party-like product exchange. The wallet calls
//! `Exchange` synchronously to turn a reward's points into a product.
//!
//! - [`domain`]: the product catalogue, the GiftOrder aggregate and the
//!   exchange rules, pure.
//! - [`app`]: the use cases, one store transaction each, events via the outbox.
//! - [`adapters`]: gRPC in, the diesel store.
//!
//! Publishes `GiftExchanged`; reacts to no events. Never places two orders
//! for one idempotency key, nor two for one reward.

pub mod adapters;
pub mod app;
pub mod domain;

use api::game::gift::v1::gift_service_server::GiftServiceServer;
use diesel_migrations::{EmbeddedMigrations, embed_migrations};
use platform::config::ServiceConfig;
use platform::host::{ServiceApp, ServiceHost, ServiceSpec, StartError};

use crate::adapters::grpc::GiftGrpc;

static MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations");

/// How the gift service presents itself.
pub const SPEC: ServiceSpec = ServiceSpec {
    name: "gift",
    grpc_service: "game.gift.v1.GiftService",
    migrations: &MIGRATIONS,
    publishes: &[platform::events::GIFT_STREAM],
};

/// The default gRPC port of the gift service.
pub const DEFAULT_PORT: u16 = 50054;

/// The gift service, wired and ready to serve.
pub type App = ServiceApp;

/// Opens the store, connects to NATS and wires the use cases.
///
/// # Errors
/// When the service cannot start; see [`StartError`].
pub async fn build(config: ServiceConfig) -> Result<App, StartError> {
    let mut host = ServiceHost::start(SPEC, &config).await?;
    let gifts = app::Gifts::new(host.db().clone(), host.outbox().clone());
    host.spawn_relay();
    Ok(host.serving(vendor_behaviour(GiftGrpc::new(gifts))))
}

/// SEAM (later issue, deliberately not implemented yet): how the gift
/// service behaves as a vendor under strain. Load shedding (answer
/// RESOURCE_EXHAUSTED before doing any work, which the wallet treats as a
/// definite "no order") and the admin "slow/failing" mode (to show the
/// wallet's timeout, circuit breaker and re-driver in a demo) wrap the
/// service here, as one tower stack, so neither the use cases nor the gRPC
/// adapter learn of them. Today it serves the adapter as it is.
fn vendor_behaviour(grpc: GiftGrpc) -> GiftServiceServer<GiftGrpc> {
    GiftServiceServer::new(grpc)
}
