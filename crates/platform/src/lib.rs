//! The platform every service of the game rewards mesh stands on.
//!
//! - [`auth`]: bearer JWTs verified against a JWKS: who is calling.
//! - [`caller`]: who calls a service and what they may touch (players their own data).
//! - [`config`]: typed configuration from defaults and the environment.
//! - [`telemetry`]: structured logs (readable locally, JSON in production).
//! - [`db`]: the service's own diesel store, SQLite or PostgreSQL.
//! - [`store`]: what store ports answer when storage fails, and the retry after a lost race.
//! - [`events`]: streams, subjects and headers of the published language.
//! - [`outbox`]: the transactional outbox and the relay that publishes it.
//! - [`consumer`]: idempotent policies on durable JetStream consumers.
//! - [`dead_letters`]: listing and re-driving the events consumers gave up on.
//! - [`grpc`]: request parsing and error mapping shared by the gRPC adapters.
//! - [`host`]: starting, serving (health, reflection) and draining a service.
//! - [`nats`]: the connection to NATS, with logged reconnects.
//! - [`resilience`]: deadline, load shedding, circuit breaker and retries for calls to a dependency.
//! - [`metrics`]: Prometheus metrics of the process, served on `/metrics`.
//! - [`memory`]: freed memory given back to the operating system once a burst is over.
//! - [`failpoint`]: named crash points for tests that kill a process mid-step.

pub mod auth;
pub mod caller;
pub mod config;
pub mod consumer;
pub mod db;
pub mod dead_letters;
pub mod events;
pub mod failpoint;
pub mod grpc;
pub mod host;
pub mod memory;
pub mod metrics;
pub mod nats;
pub mod outbox;
pub mod resilience;
pub mod store;
pub mod telemetry;

use std::time::Duration;

pub use tokio_util::sync::CancellationToken;

/// The one back-off of the system, for everything that tries again (the
/// consumers, the outbox relay, NATS reconnects, a lost write race, a call
/// to a dependency, the runner's restarts): exponential with jitter.
/// Attempt 1 waits between half of `base` and `base`, each further attempt
/// up to twice as long, never beyond `max`.
pub fn backoff(attempt: u32, base: Duration, max: Duration) -> Duration {
    let exponent = attempt.saturating_sub(1).min(20);
    let ceiling = base.saturating_mul(1u32 << exponent).min(max);
    let millis = u64::try_from(ceiling.as_millis()).unwrap_or(u64::MAX).max(1);
    // Never below half the ceiling, so a retry storm still spreads out.
    Duration::from_millis(rand::random_range(millis / 2..=millis))
}

/// Resolves when the process is asked to stop (SIGINT or SIGTERM).
pub async fn shutdown_signal() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut terminate = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(signal) => signal,
            Err(error) => {
                tracing::warn!(%error, "cannot listen for SIGTERM; only Ctrl-C stops this process");
                let _ = interrupt.await;
                return;
            }
        };
        tokio::select! {
            _ = interrupt => {}
            _ = terminate.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = interrupt.await;
    }
    tracing::info!("shutdown requested");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_stays_bounded() {
        let base = Duration::from_millis(100);
        let max = Duration::from_secs(2);
        for attempt in 0..40 {
            let delay = backoff(attempt, base, max);
            assert!(delay <= max, "attempt {attempt}: {delay:?}");
            assert!(delay >= Duration::from_millis(50), "attempt {attempt}: {delay:?}");
        }
        assert!(backoff(10, base, max) >= Duration::from_secs(1));
    }
}
