//! Per-caller rate limits: a token bucket per key (a verified subject, or a
//! peer address for calls that carry no verified identity).
//!
//! Buckets live in memory, one map per gateway process; with several
//! gateway replicas each enforces the limit on the calls it sees. Idle
//! buckets are forgotten once they have refilled, so the map stays bounded
//! by the callers active within the last `burst / per_second` seconds.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

/// How many calls a caller may make.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RateLimit {
    /// Sustained calls per second (`GATEWAY_RATE_LIMIT_PER_SECOND`).
    pub per_second: f64,
    /// Calls that may come at once after a quiet spell (`GATEWAY_RATE_LIMIT_BURST`).
    pub burst: u32,
}

impl RateLimit {
    /// The gateway's default per caller: generous for a game client,
    /// tight enough that one token cannot flood the services.
    pub const DEFAULT: Self = Self { per_second: 50.0, burst: 100 };
}

#[derive(Debug)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

/// Token buckets by key.
#[derive(Debug)]
pub struct RateLimiter {
    limit: RateLimit,
    buckets: Mutex<HashMap<String, Bucket>>,
}

/// Above this many keys, full (idle) buckets are dropped.
const PRUNE_ABOVE: usize = 10_000;

impl RateLimiter {
    /// Buckets of `limit`.
    pub fn new(limit: RateLimit) -> Self {
        Self { limit, buckets: Mutex::new(HashMap::new()) }
    }

    /// The limit enforced.
    pub fn limit(&self) -> RateLimit {
        self.limit
    }

    /// Takes one call from `key`'s bucket.
    ///
    /// # Errors
    /// How long until the next call would be allowed, when the bucket is empty.
    pub fn take(&self, key: &str, now: Instant) -> Result<(), Duration> {
        self.with_bucket(key, now, |bucket| {
            if bucket.tokens >= 1.0 {
                bucket.tokens -= 1.0;
                Ok(())
            } else {
                Err(self.wait_for_one(bucket.tokens))
            }
        })
    }

    /// Whether `key`'s bucket holds a call, without taking it.
    ///
    /// # Errors
    /// How long until it would, when the bucket is empty.
    pub fn peek(&self, key: &str, now: Instant) -> Result<(), Duration> {
        self.with_bucket(
            key,
            now,
            |bucket| {
                if bucket.tokens >= 1.0 { Ok(()) } else { Err(self.wait_for_one(bucket.tokens)) }
            },
        )
    }

    fn wait_for_one(&self, tokens: f64) -> Duration {
        let per_second = self.limit.per_second.max(f64::MIN_POSITIVE);
        Duration::from_secs_f64(((1.0 - tokens) / per_second).min(3600.0)).max(Duration::from_millis(1))
    }

    fn with_bucket<T>(&self, key: &str, now: Instant, decide: impl FnOnce(&mut Bucket) -> T) -> T {
        let burst = f64::from(self.limit.burst.max(1));
        let mut buckets = self.buckets.lock().unwrap_or_else(PoisonError::into_inner);
        if buckets.len() > PRUNE_ABOVE {
            let per_second = self.limit.per_second;
            buckets.retain(|_, b| b.tokens + now.saturating_duration_since(b.at).as_secs_f64() * per_second < burst);
        }
        let bucket = buckets.entry(key.to_owned()).or_insert(Bucket { tokens: burst, at: now });
        let refill = now.saturating_duration_since(bucket.at).as_secs_f64() * self.limit.per_second;
        bucket.tokens = (bucket.tokens + refill).min(burst);
        bucket.at = now;
        decide(bucket)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_is_allowed_then_calls_are_refused_until_the_bucket_refills() {
        let limiter = RateLimiter::new(RateLimit { per_second: 10.0, burst: 3 });
        let start = Instant::now();
        for _ in 0..3 {
            assert!(limiter.take("player-1", start).is_ok());
        }
        let wait = limiter.take("player-1", start).unwrap_err();
        assert!(wait > Duration::from_millis(50) && wait <= Duration::from_millis(100), "{wait:?}");
        // Another caller has a bucket of its own.
        assert!(limiter.take("player-2", start).is_ok());
        assert!(limiter.take("player-1", start + Duration::from_millis(100)).is_ok());
        assert!(limiter.take("player-1", start + Duration::from_millis(100)).is_err());
    }

    #[test]
    fn idle_buckets_are_forgotten_when_there_are_many() {
        let limiter = RateLimiter::new(RateLimit { per_second: 100.0, burst: 1 });
        let start = Instant::now();
        for n in 0..=PRUNE_ABOVE {
            let _ = limiter.take(&format!("caller-{n}"), start);
        }
        let _ = limiter.take("late", start + Duration::from_secs(1));
        assert!(limiter.buckets.lock().unwrap_or_else(PoisonError::into_inner).len() < 10);
    }
}
