//! HDR histograms of latencies in microseconds, and their summaries.
//!
//! Every percentile the tools print (loadgen, the benchmarks, `rewardsctl
//! overload`, the hops of the chain) comes from here, so one rank rule holds
//! for all of them: hdrhistogram's, the lowest recorded value that at least
//! the quantile's share of the samples do not exceed, to 3 significant digits.

use std::time::Duration;

use hdrhistogram::Histogram;
use serde::Serialize;

/// Latencies from 1 µs to 10 minutes at 3 significant digits (0.1 %
/// resolution at any magnitude); longer ones are clamped to the maximum.
#[derive(Debug, Clone)]
pub struct Latencies {
    histogram: Histogram<u64>,
}

/// The highest latency recorded exactly, in microseconds.
const MAX_MICROS: u64 = 600_000_000;

impl Default for Latencies {
    fn default() -> Self {
        Self::new()
    }
}

impl Latencies {
    /// An empty histogram.
    pub fn new() -> Self {
        // The bounds and precision are constants that hdrhistogram accepts.
        #[allow(clippy::unwrap_used)]
        let histogram = Histogram::new_with_bounds(1, MAX_MICROS, 3).unwrap();
        Self { histogram }
    }

    /// Records one latency.
    pub fn record(&mut self, latency: Duration) {
        let micros = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX).clamp(1, MAX_MICROS);
        self.histogram.saturating_record(micros);
    }

    /// Adds every sample of `other`.
    pub fn merge(&mut self, other: &Self) {
        // Both have the same bounds, so adding cannot fail.
        let _ = self.histogram.add(&other.histogram);
    }

    /// How many samples there are.
    pub fn len(&self) -> u64 {
        self.histogram.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.histogram.is_empty()
    }

    /// The latency at `quantile` (0..=1), in milliseconds.
    pub fn quantile_ms(&self, quantile: f64) -> f64 {
        micros_to_ms(self.histogram.value_at_quantile(quantile))
    }

    /// Percentiles, maximum and mean.
    pub fn summary(&self) -> Summary {
        if self.is_empty() {
            return Summary::default();
        }
        Summary {
            count: self.len(),
            p50_ms: self.quantile_ms(0.50),
            p90_ms: self.quantile_ms(0.90),
            p99_ms: self.quantile_ms(0.99),
            p999_ms: self.quantile_ms(0.999),
            max_ms: micros_to_ms(self.histogram.max()),
            mean_ms: self.histogram.mean() / 1000.0,
        }
    }
}

#[allow(clippy::cast_precision_loss)] // at most 6e8 µs: exact in an f64
fn micros_to_ms(micros: u64) -> f64 {
    micros as f64 / 1000.0
}

/// What a histogram says, in milliseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Summary {
    pub count: u64,
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    pub p999_ms: f64,
    pub max_ms: f64,
    pub mean_ms: f64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_come_from_the_recorded_samples() {
        let mut latencies = Latencies::new();
        for ms in 1..=100 {
            latencies.record(Duration::from_millis(ms));
        }
        let summary = latencies.summary();
        assert_eq!(summary.count, 100);
        // 3 significant digits: within 0.1 % of the exact value.
        let close = |actual: f64, expected: f64| (actual - expected).abs() <= expected * 0.001 + 0.001;
        assert!(close(summary.p50_ms, 50.0), "{summary:?}");
        assert!(close(summary.p90_ms, 90.0), "{summary:?}");
        assert!(close(summary.p99_ms, 99.0), "{summary:?}");
        assert!(close(summary.max_ms, 100.0), "{summary:?}");
        assert!(close(summary.mean_ms, 50.5), "{summary:?}");
    }

    #[test]
    fn one_slow_call_in_a_hundred_is_the_p99() {
        let mut latencies = Latencies::new();
        for _ in 0..98 {
            latencies.record(Duration::from_micros(300));
        }
        latencies.record(Duration::from_secs(2));
        latencies.record(Duration::from_secs(2));
        assert!(latencies.summary().p50_ms < 0.31);
        assert!(latencies.summary().p99_ms > 1_990.0);
    }

    #[test]
    fn extremes_are_clamped_not_lost_and_merges_add_up() {
        let mut a = Latencies::new();
        a.record(Duration::ZERO);
        a.record(Duration::from_secs(3_600));
        let mut b = Latencies::new();
        b.record(Duration::from_millis(5));
        b.merge(&a);
        assert_eq!(b.len(), 3);
        assert!(b.summary().max_ms >= 599_000.0);
    }

    #[test]
    fn an_empty_histogram_summarises_to_zeroes() {
        assert_eq!(Latencies::new().summary(), Summary::default());
    }
}
