//! The wallet context: holds each player's points, made of issued rewards,
//! and spends them on gifts.
//!
//! - [`domain`]: the WalletEntry and Exchange aggregates, the exchange
//!   saga's rules, expiry and refunds, pure.
//! - [`app`]: the use cases, the re-driver of unsettled exchanges and the
//!   expiry job.
//! - [`ports`]: what the use cases need, as traits they own: the store of
//!   wallet entries (a unit of work) and the gift exchange.
//! - [`adapters`]: gRPC in, the gift client out, the diesel store, the
//!   policy on RewardAllocated, the published form of events.
//!
//! [`build`] alone picks the concrete adapters behind the ports.
//!
//! Publishes `RewardIssued`, `RewardExchanged`, `PointsExpired`,
//! `ExchangePlaced` and `PointsRefunded`; consumes `RewardAllocated`, gift's
//! `ProductListed` (prices) and `GiftOrderCancelled` (refunds); calls gift's
//! `Exchange`, the mesh's only synchronous service-to-service call.

pub mod adapters;
pub mod app;
pub mod domain;
pub mod ports;

use api::catalogue;
use api::game::wallet::v1::wallet_service_server::WalletServiceServer;
use diesel_migrations::{EmbeddedMigrations, embed_migrations};
use platform::config::{ConfigError, Env, ServiceConfig};
use platform::grpc::MAX_MESSAGE_BYTES;
use platform::host::{ServiceApp, ServiceHost, ServiceSpec, StartError};
use platform::resilience::ResilienceConfig;

static MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations");

/// How the wallet service presents itself.
pub const SPEC: ServiceSpec = ServiceSpec {
    name: catalogue::WALLET.name,
    grpc_service: catalogue::WALLET.grpc_service,
    migrations: &MIGRATIONS,
    publishes: &[platform::events::WALLET_STREAM],
    consumes: catalogue::WALLET.consumes,
};

/// The wallet service's configuration.
#[derive(Debug, Clone)]
pub struct WalletConfig {
    pub service: ServiceConfig,
    /// The gift service (`GIFT_URL`).
    pub gift_url: String,
    /// How calls to gift are shaped: deadline, concurrency, circuit breaker,
    /// retries (`GIFT_TIMEOUT_MS`, `GIFT_MAX_IN_FLIGHT`, `GIFT_BREAKER_*`,
    /// `GIFT_RETRY_*`; see `platform::resilience::ResilienceConfig::read`).
    pub gift: ResilienceConfig,
    /// How the re-driver settles exchanges left pending
    /// (`EXCHANGE_REDRIVE_INTERVAL_MS`, `EXCHANGE_REDRIVE_AFTER_MS`).
    pub redrive: app::RedriveConfig,
    /// When rewards expire and how often the expiry job runs
    /// (`REWARD_EXPIRY_AFTER_MS`, `REWARD_EXPIRY_INTERVAL_MS`).
    pub expiry: app::ExpiryConfig,
}

impl WalletConfig {
    /// Local defaults, for `service`.
    pub fn local(service: ServiceConfig) -> Self {
        Self {
            service,
            gift_url: catalogue::GIFT.local_url(),
            gift: ResilienceConfig::default(),
            redrive: app::RedriveConfig::default(),
            expiry: app::ExpiryConfig::default(),
        }
    }

    /// The local defaults, overridden by the process's environment: the one
    /// place the wallet's configuration is read.
    ///
    /// # Errors
    /// When a variable is set to something unusable.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::read(&Env::process())
    }

    /// The local defaults, overridden by `env`.
    ///
    /// # Errors
    /// When a variable is set to something unusable.
    pub fn read(env: &Env) -> Result<Self, ConfigError> {
        let defaults = Self::local(ServiceConfig::read(env, &catalogue::WALLET)?);
        Ok(Self {
            gift_url: env.or(catalogue::GIFT.url_variable, defaults.gift_url)?,
            gift: ResilienceConfig::read(env, "GIFT", defaults.gift)?,
            redrive: app::RedriveConfig {
                interval: env.millis("EXCHANGE_REDRIVE_INTERVAL_MS", defaults.redrive.interval)?,
                after: env.millis("EXCHANGE_REDRIVE_AFTER_MS", defaults.redrive.after)?,
            },
            expiry: app::ExpiryConfig {
                after: env.millis("REWARD_EXPIRY_AFTER_MS", defaults.expiry.after)?,
                interval: env.above_zero_millis("REWARD_EXPIRY_INTERVAL_MS", defaults.expiry.interval)?,
            },
            service: defaults.service,
        })
    }
}

/// Why the wallet service could not start.
#[derive(Debug, thiserror::Error)]
pub enum WalletStartError {
    #[error(transparent)]
    Host(#[from] StartError),
    #[error("GIFT_URL is not a valid URI")]
    GiftUrl(#[from] tonic::transport::Error),
}

/// The wallet service, wired and ready to serve.
pub type App = ServiceApp;

/// Opens the store, connects to NATS, prepares the gift client and wires
/// the use cases, the policy, the re-driver and the expiry job.
///
/// # Errors
/// When the service cannot start.
pub async fn build(config: WalletConfig) -> Result<App, WalletStartError> {
    let gift = adapters::gift_client::GiftClient::new(&config.gift_url, &config.gift)?;
    let mut host = ServiceHost::start(SPEC, &config.service).await?;
    let store = adapters::store::DieselWalletStore::new(host.db().clone(), host.outbox().clone());
    let wallets = app::Wallets::new(store, gift);
    host.spawn_relay();
    host.spawn_policy(adapters::policies::IssueReward::new(config.expiry.rule())).await?;
    host.spawn_policy(adapters::policies::KeepProductPrice).await?;
    host.spawn_policy(adapters::policies::RefundPoints).await?;
    let redriver = wallets.clone();
    host.spawn(|stopping| redriver.run_redriver(config.redrive, stopping));
    let expiry = wallets.clone();
    host.spawn(|stopping| expiry.run_expiry(config.expiry.interval, stopping));
    Ok(host.serving(
        WalletServiceServer::new(adapters::grpc::WalletGrpc::new(wallets)).max_decoding_message_size(MAX_MESSAGE_BYTES),
    ))
}
