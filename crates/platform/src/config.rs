//! Typed configuration: defaults, overridden by environment variables.
//! Each service's configuration is one structure, read in one place (its
//! `lib.rs`) through an [`Env`]; the sections every service shares
//! ([`ServiceConfig`], the auth and resilience settings) read their own
//! variables from it. Bad values stop the service before it binds
//! anything, with the variable's name and value in the message. Tests build
//! the structures directly, or read them from an [`Env`] of their own, and
//! never touch the process's environment. README.md lists every variable.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::str::FromStr;
use std::time::Duration;

use api::catalogue::Service;

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

/// Where a service's configuration comes from: the process's environment,
/// or, in tests, the variables given. Every setting is read through it, so
/// every variable a service reads is named in a call to one of its methods
/// (the README's table of variables is checked against those calls).
#[derive(Debug, Clone, Default)]
pub struct Env {
    /// The variables given; `None`: the process's environment.
    given: Option<HashMap<String, String>>,
}

impl Env {
    /// The process's environment.
    pub fn process() -> Self {
        Self { given: None }
    }

    /// Exactly the variables in `pairs`, for tests.
    pub fn from_pairs<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> Self {
        Self { given: Some(pairs.into_iter().map(|(k, v)| (k.to_owned(), v.to_owned())).collect()) }
    }

    /// The value of `name`, trimmed; `None` when unset or blank.
    fn get(&self, name: &str) -> Option<String> {
        let value = match &self.given {
            Some(given) => given.get(name).cloned(),
            None => std::env::var(name).ok(),
        };
        value.map(|v| v.trim().to_owned()).filter(|v| !v.is_empty())
    }

    /// `name` parsed as `T`, or `default` when unset.
    ///
    /// # Errors
    /// When the variable is set but does not parse as `T`.
    pub fn or<T>(&self, name: &str, default: T) -> Result<T, ConfigError>
    where
        T: FromStr,
        T::Err: std::fmt::Display,
    {
        Ok(self.optional(name)?.unwrap_or(default))
    }

    /// `name` parsed as `T`, `None` when unset or empty.
    ///
    /// # Errors
    /// When the variable is set but does not parse as `T`.
    pub fn optional<T>(&self, name: &str) -> Result<Option<T>, ConfigError>
    where
        T: FromStr,
        T::Err: std::fmt::Display,
    {
        self.get(name)
            .map(|value| value.parse().map_err(|e: T::Err| ConfigError::new(name, value.clone(), e.to_string())))
            .transpose()
    }

    /// A duration given in milliseconds.
    ///
    /// # Errors
    /// When the variable is set but is not a whole number.
    pub fn millis(&self, name: &str, default: Duration) -> Result<Duration, ConfigError> {
        let millis = self.or(name, u64::try_from(default.as_millis()).unwrap_or(u64::MAX))?;
        Ok(Duration::from_millis(millis))
    }

    /// A number that must be above zero: a limit of zero would refuse
    /// everything, forever, with no sign of why.
    ///
    /// # Errors
    /// When the variable does not parse or is not above zero.
    pub fn above_zero<T>(&self, name: &str, default: T) -> Result<T, ConfigError>
    where
        T: FromStr + PartialOrd + Default + std::fmt::Display,
        T::Err: std::fmt::Display,
    {
        let value = self.or(name, default)?;
        if value > T::default() {
            Ok(value)
        } else {
            Err(ConfigError::new(name, value.to_string(), "must be above zero"))
        }
    }

    /// A duration in milliseconds that must be above zero.
    ///
    /// # Errors
    /// When the variable is not a whole number or is zero.
    pub fn above_zero_millis(&self, name: &str, default: Duration) -> Result<Duration, ConfigError> {
        let value = self.millis(name, default)?;
        if value.is_zero() { Err(ConfigError::new(name, "0", "must be above zero")) } else { Ok(value) }
    }
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

    /// The defaults of [`ServiceConfig::local`] for `service` of the
    /// catalogue at its default port, overridden by `env`.
    ///
    /// # Errors
    /// When a variable is set to something unusable.
    pub fn read(env: &Env, service: &Service) -> Result<Self, ConfigError> {
        let defaults = Self::local(service.name, service.port);
        Ok(Self {
            grpc_addr: env.or("GRPC_ADDR", defaults.grpc_addr)?,
            database_url: env.or("DATABASE_URL", defaults.database_url)?,
            nats_url: env.or("NATS_URL", defaults.nats_url)?,
            stream_replicas: env.or("STREAM_REPLICAS", defaults.stream_replicas)?,
            shutdown_grace: env.millis("SHUTDOWN_GRACE_MS", defaults.shutdown_grace)?,
            drain_delay: env.millis("DRAIN_DELAY_MS", defaults.drain_delay)?,
            metrics_addr: env.optional("METRICS_ADDR")?,
            consumer: ConsumerConfig {
                ack_wait: env.millis("CONSUMER_ACK_WAIT_MS", defaults.consumer.ack_wait)?,
                max_deliveries: env.or("CONSUMER_MAX_DELIVERIES", defaults.consumer.max_deliveries)?,
                max_deliveries_not_yet: env
                    .or("CONSUMER_MAX_DELIVERIES_NOT_YET", defaults.consumer.max_deliveries_not_yet)?,
                retry_base: env.millis("CONSUMER_RETRY_BASE_MS", defaults.consumer.retry_base)?,
                retry_max: env.millis("CONSUMER_RETRY_MAX_MS", defaults.consumer.retry_max)?,
                apply_batch: env.or("CONSUMER_APPLY_BATCH", defaults.consumer.apply_batch)?,
                ..defaults.consumer
            },
            auth: AuthConfig::read(env)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MISSION: Service = api::catalogue::MISSION;

    #[test]
    fn unset_and_blank_variables_keep_the_defaults() {
        let env = Env::from_pairs([("NATS_URL", "  ")]);
        let config = ServiceConfig::read(&env, &MISSION).unwrap();
        assert_eq!(config.grpc_addr, SocketAddr::from(([127, 0, 0, 1], 50051)));
        assert_eq!(config.nats_url, "nats://127.0.0.1:4222");
        assert_eq!(config.database_url, "data/mission.sqlite");
        assert!(config.auth.is_none());
    }

    #[test]
    fn variables_override_the_defaults() {
        let env = Env::from_pairs([("GRPC_ADDR", "0.0.0.0:7000"), ("SHUTDOWN_GRACE_MS", " 1500 ")]);
        let config = ServiceConfig::read(&env, &MISSION).unwrap();
        assert_eq!(config.grpc_addr.port(), 7000);
        assert_eq!(config.shutdown_grace, Duration::from_millis(1500));
    }

    #[test]
    fn a_bad_value_is_refused_naming_the_variable_and_the_value() {
        let error = ServiceConfig::read(&Env::from_pairs([("CONSUMER_ACK_WAIT_MS", "soon")]), &MISSION).unwrap_err();
        assert!(error.to_string().starts_with("invalid CONSUMER_ACK_WAIT_MS=\"soon\": "), "{error}");
        let env = Env::from_pairs([("LIMIT", "0")]);
        assert_eq!(env.above_zero("LIMIT", 5u32).unwrap_err().to_string(), "invalid LIMIT=\"0\": must be above zero");
    }
}
