//! The my page read model (CQRS): each player's view of their missions and
//! wallet, built from events alone; it never calls or reads another service.
//!
//! - [`domain`]: the page and its merge of events, pure.
//! - [`app`]: reading and watching a page; merging an event into it.
//! - [`ports`]: the store of pages the use cases need, as traits they own.
//! - [`adapters`]: gRPC in, the diesel store, the policies on the MISSION,
//!   REWARD and WALLET streams (decoding events into the page's own).
//!
//! [`build`] alone picks the concrete store behind the port.
//!
//! Publishes nothing; reacts to MissionAchieved, RewardAllocated,
//! RewardIssued, RewardExchanged, PointsExpired, ExchangePlaced and
//! PointsRefunded, in whatever order they arrive.

pub mod adapters;
pub mod app;
pub mod domain;
pub mod ports;

use api::catalogue;
use api::game::mypage::v1::my_page_service_server::MyPageServiceServer;
use diesel_migrations::{EmbeddedMigrations, embed_migrations};
use platform::config::{ConfigError, Env, ServiceConfig};
use platform::grpc::MAX_MESSAGE_BYTES;
use platform::host::{ServiceApp, ServiceHost, ServiceSpec, StartError};

use crate::adapters::policies::{MergeIntoPage, Source};

static MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations");

/// How the my page service presents itself.
pub const SPEC: ServiceSpec = ServiceSpec {
    name: catalogue::MYPAGE.name,
    grpc_service: catalogue::MYPAGE.grpc_service,
    migrations: &MIGRATIONS,
    publishes: &[],
    consumes: catalogue::MYPAGE.consumes,
};

/// The mypage service's configuration: what every service needs, and
/// nothing more, read from the process's environment. The one place it is
/// read.
///
/// # Errors
/// When a variable is set to something unusable.
pub fn config_from_env() -> Result<ServiceConfig, ConfigError> {
    ServiceConfig::read(&Env::process(), &catalogue::MYPAGE)
}

/// The my page service, wired and ready to serve.
pub type App = ServiceApp;

/// Opens the store, connects to NATS and wires the policies and the API.
///
/// # Errors
/// When the service cannot start; see [`StartError`].
pub async fn build(config: ServiceConfig) -> Result<App, StartError> {
    let mut host = ServiceHost::start(SPEC, &config).await?;
    let changes = app::PageChanges::default();
    // No relay: the read model publishes nothing.
    for source in Source::ALL {
        host.spawn_policy(MergeIntoPage::new(source, changes.clone())).await?;
    }
    let pages = app::MyPages::new(adapters::store::DieselPageStore::new(host.db().clone()), changes);
    let grpc = adapters::grpc::MyPageGrpc::new(pages, host.stopping());
    Ok(host.serving(MyPageServiceServer::new(grpc).max_decoding_message_size(MAX_MESSAGE_BYTES)))
}
