//! The settlement context: records what each gift exchange costs, i.e. what
//! is owed to the gift vendor, exactly once per gift order, and its reversal
//! once when the vendor cancels the order; each in the period open when it
//! is recorded. A closing job closes every period whose end passed, once
//! across replicas, with its totals per product and currency.
//!
//! - [`domain`]: the Settlement aggregate, periods and their values, pure.
//! - [`app`]: the use cases, one store transaction each, events via the
//!   outbox, and the closing job.
//! - [`ports`]: the ledger and the clock the use cases need, as traits they own.
//! - [`adapters`]: gRPC in (paged listings, periods), the diesel ledger, the
//!   policies on GiftExchanged and GiftOrderCancelled, the system clock, the
//!   published form of events.
//!
//! [`build`] alone picks the concrete ledger behind the port.
//!
//! Publishes `SettlementRecorded`, `SettlementReversed` and
//! `SettlementPeriodClosed`.

pub mod adapters;
pub mod app;
pub mod domain;
pub mod ports;

use std::time::Duration;

use api::catalogue;
use api::game::settlement::v1::settlement_service_server::SettlementServiceServer;
use diesel_migrations::{EmbeddedMigrations, embed_migrations};
use platform::config::{ConfigError, Env, ServiceConfig};
use platform::grpc::MAX_MESSAGE_BYTES;
use platform::host::{ServiceApp, ServiceHost, ServiceSpec, StartError};

use crate::adapters::clock::SystemClock;
use crate::adapters::grpc::SettlementGrpc;
use crate::adapters::policies::{RecordSettlement, ReverseSettlement};
use crate::adapters::store::DieselLedger;
use crate::domain::PeriodLength;

static MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations");

/// How the settlement service presents itself.
pub const SPEC: ServiceSpec = ServiceSpec {
    name: catalogue::SETTLEMENT.name,
    grpc_service: catalogue::SETTLEMENT.grpc_service,
    migrations: &MIGRATIONS,
    publishes: &[platform::events::SETTLEMENT_STREAM],
    consumes: catalogue::SETTLEMENT.consumes,
};

/// The settlement service, wired and ready to serve.
pub type App = ServiceApp;

/// Opens the store, connects to NATS and wires the use cases and the
/// closing job.
///
/// # Errors
/// When the service cannot start; see [`StartError`].
pub async fn build(config: impl Into<SettlementConfig>) -> Result<App, StartError> {
    let config = config.into();
    let mut host = ServiceHost::start(SPEC, &config.service).await?;
    let ledger = DieselLedger::new(host.db().clone(), host.outbox().clone());
    let settlements = app::Settlements::new(ledger, SystemClock);
    host.spawn_relay();
    host.spawn_policy(RecordSettlement { clock: SystemClock, period: config.period }).await?;
    host.spawn_policy(ReverseSettlement { clock: SystemClock, period: config.period }).await?;
    tracing::info!(period = %config.period, close_interval = ?config.close_interval, "settlement periods");
    let closer = settlements.clone();
    host.spawn(|stopping| closer.run_closer(config.close_interval, stopping));
    Ok(host.serving(
        SettlementServiceServer::new(SettlementGrpc::new(settlements)).max_decoding_message_size(MAX_MESSAGE_BYTES),
    ))
}

/// The settlement service's configuration.
#[derive(Debug, Clone)]
pub struct SettlementConfig {
    pub service: ServiceConfig,
    /// How long a settlement period lasts (`SETTLEMENT_PERIOD`: `1d`, `6h`,
    /// `15m`, …; a day by default), aligned to UTC.
    pub period: PeriodLength,
    /// How often the closing job looks for periods whose end passed
    /// (`SETTLEMENT_CLOSE_INTERVAL_MS`); it also looks at start.
    pub close_interval: Duration,
}

impl From<ServiceConfig> for SettlementConfig {
    fn from(service: ServiceConfig) -> Self {
        Self { service, period: PeriodLength::DAY, close_interval: Duration::from_secs(30) }
    }
}

impl SettlementConfig {
    /// The defaults, overridden by the process's environment: the one place
    /// the settlement service's configuration is read.
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
        let defaults = Self::from(ServiceConfig::read(env, &catalogue::SETTLEMENT)?);
        Ok(Self {
            period: env.or("SETTLEMENT_PERIOD", defaults.period)?,
            close_interval: env.above_zero_millis("SETTLEMENT_CLOSE_INTERVAL_MS", defaults.close_interval)?,
            ..defaults
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_period_is_a_day_unless_set_and_a_bad_one_is_refused_naming_it() {
        let defaults = SettlementConfig::read(&Env::from_pairs([])).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(defaults.period, PeriodLength::DAY);
        let hourly = SettlementConfig::read(&Env::from_pairs([("SETTLEMENT_PERIOD", "1h")]));
        assert_eq!(hourly.map(|c| c.period.millis()).ok(), Some(3_600_000));
        let error = SettlementConfig::read(&Env::from_pairs([("SETTLEMENT_PERIOD", "7h")])).unwrap_err();
        assert_eq!(
            error.to_string(),
            "invalid SETTLEMENT_PERIOD=\"7h\": must divide a day or be whole days, so that periods start at UTC midnight"
        );
    }
}
