//! Typed configuration: defaults, overridden by environment variables.
//! Bad values stop the service before it binds anything, with the variable's
//! name in the message. Tests build the structs directly and never touch the
//! environment.

use std::net::SocketAddr;
use std::str::FromStr;
use std::time::Duration;

use crate::auth::AuthConfig;
use crate::consumer::ConsumerConfig;
use crate::events::Replicas;

/// A configuration value that cannot be used.
#[derive(Debug, thiserror::Error)]
#[error("invalid {name}={value:?}: {reason}")]
pub struct ConfigError {
    name: String,
    value: String,
    reason: String,
}

impl ConfigError {
    /// `name` holds `value`, which is unusable for `reason`.
    pub fn new(name: &str, value: impl Into<String>, reason: impl Into<String>) -> Self {
        Self { name: name.to_owned(), value: value.into(), reason: reason.into() }
    }
}

/// Reads `name` from the environment, or `default` when unset.
///
/// # Errors
/// When the variable is set but does not parse as `T`.
pub fn env_or<T>(name: &str, default: T) -> Result<T, ConfigError>
where
    T: FromStr,
    T::Err: std::fmt::Display,
{
    match std::env::var(name) {
        Ok(value) if !value.trim().is_empty() => value.trim().parse().map_err(|e: T::Err| ConfigError {
            name: name.to_owned(),
            value,
            reason: e.to_string(),
        }),
        _ => Ok(default),
    }
}

/// Reads `name` from the environment, `None` when unset or empty.
///
/// # Errors
/// When the variable is set but does not parse as `T`.
pub fn env_optional<T>(name: &str) -> Result<Option<T>, ConfigError>
where
    T: FromStr,
    T::Err: std::fmt::Display,
{
    match std::env::var(name) {
        Ok(value) if !value.trim().is_empty() => value.trim().parse().map(Some).map_err(|e: T::Err| ConfigError {
            name: name.to_owned(),
            value,
            reason: e.to_string(),
        }),
        _ => Ok(None),
    }
}

/// Reads a duration given in milliseconds.
///
/// # Errors
/// When the variable is set but is not a whole number.
pub fn env_millis(name: &str, default: Duration) -> Result<Duration, ConfigError> {
    let millis = env_or(name, u64::try_from(default.as_millis()).unwrap_or(u64::MAX))?;
    Ok(Duration::from_millis(millis))
}

/// What every service needs: where to listen, its store, its broker.
#[derive(Debug, Clone)]
pub struct ServiceConfig {
    /// The gRPC listen address (`GRPC_ADDR`); port 0 picks a free port.
    pub grpc_addr: SocketAddr,
    /// The service's own store (`DATABASE_URL`): a SQLite path or a postgres:// URL.
    pub database_url: String,
    /// The NATS servers (`NATS_URL`): one URL, or several separated by
    /// commas (the nodes of a cluster; any live one will do).
    pub nats_url: String,
    /// Copies JetStream keeps of every stream and durable consumer the
    /// service declares (`STREAM_REPLICAS`, 1 to 5): 1 on a single server,
    /// 3 on a cluster of three.
    pub stream_replicas: Replicas,
    /// How long a stopping service may take to drain (`SHUTDOWN_GRACE_MS`).
    pub shutdown_grace: Duration,
    /// How long a stopping service keeps serving after it turned NOT_SERVING
    /// (`DRAIN_DELAY_MS`), so that the balancers in front of it (the
    /// gateway's health rounds) stop sending it calls before it refuses
    /// them. 0 where the orchestrator already does this (a Kubernetes
    /// preStop pause while the endpoint is removed).
    pub drain_delay: Duration,
    /// Where Prometheus scrapes `/metrics` (`METRICS_ADDR`); none when unset.
    pub metrics_addr: Option<SocketAddr>,
    /// How the service's event consumers retry and give up (`CONSUMER_*`).
    pub consumer: ConsumerConfig,
    /// How callers' bearer tokens are verified (`JWKS_FILE` or `JWKS_URL`,
    /// `JWT_ISSUER`, `JWT_AUDIENCE`); with none, every call that needs a
    /// caller is refused.
    pub auth: Option<AuthConfig>,
}

impl ServiceConfig {
    /// Defaults for `service` listening on `port`, with the store in `data/`.
    pub fn local(service: &str, port: u16) -> Self {
        Self {
            grpc_addr: SocketAddr::from(([127, 0, 0, 1], port)),
            database_url: format!("data/{service}.sqlite"),
            nats_url: "nats://127.0.0.1:4222".to_owned(),
            stream_replicas: Replicas::ONE,
            shutdown_grace: Duration::from_secs(20),
            drain_delay: Duration::ZERO,
            metrics_addr: None,
            consumer: ConsumerConfig::default(),
            auth: None,
        }
    }

    /// The defaults of [`ServiceConfig::local`], overridden by the environment.
    ///
    /// # Errors
    /// When a variable is set to something unusable.
    pub fn from_env(service: &str, default_port: u16) -> Result<Self, ConfigError> {
        let defaults = Self::local(service, default_port);
        Ok(Self {
            grpc_addr: env_or("GRPC_ADDR", defaults.grpc_addr)?,
            database_url: env_or("DATABASE_URL", defaults.database_url)?,
            nats_url: env_or("NATS_URL", defaults.nats_url)?,
            stream_replicas: env_or("STREAM_REPLICAS", defaults.stream_replicas)?,
            shutdown_grace: env_millis("SHUTDOWN_GRACE_MS", defaults.shutdown_grace)?,
            drain_delay: env_millis("DRAIN_DELAY_MS", defaults.drain_delay)?,
            metrics_addr: env_optional("METRICS_ADDR")?,
            consumer: ConsumerConfig {
                ack_wait: env_millis("CONSUMER_ACK_WAIT_MS", defaults.consumer.ack_wait)?,
                max_deliveries: env_or("CONSUMER_MAX_DELIVERIES", defaults.consumer.max_deliveries)?,
                max_deliveries_not_yet: env_or(
                    "CONSUMER_MAX_DELIVERIES_NOT_YET",
                    defaults.consumer.max_deliveries_not_yet,
                )?,
                retry_base: env_millis("CONSUMER_RETRY_BASE_MS", defaults.consumer.retry_base)?,
                retry_max: env_millis("CONSUMER_RETRY_MAX_MS", defaults.consumer.retry_max)?,
                apply_batch: env_or("CONSUMER_APPLY_BATCH", defaults.consumer.apply_batch)?,
                ..defaults.consumer
            },
            auth: AuthConfig::from_env()?,
        })
    }
}
