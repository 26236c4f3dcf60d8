//! When each call of a fixed-rate run should start.

use std::time::{Duration, Instant};

/// The intended start times of a run at a fixed rate: call `i` starts at
/// `start + i / rate`, whatever happened to the calls before it.
#[derive(Debug, Clone, Copy)]
pub struct Schedule {
    start: Instant,
    /// Nanoseconds between two intended starts.
    interval_nanos: f64,
    calls: u64,
}

impl Schedule {
    /// `rate` calls per second for `duration`, from `start`.
    ///
    /// # Panics
    /// Never: a rate that is not positive and finite gives an empty schedule.
    pub fn new(start: Instant, rate: f64, duration: Duration) -> Self {
        if !(rate.is_finite() && rate > 0.0) {
            return Self { start, interval_nanos: 0.0, calls: 0 };
        }
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)] // positive and far below 2^53
        let calls = (rate * duration.as_secs_f64()).round() as u64;
        Self { start, interval_nanos: 1e9 / rate, calls }
    }

    /// How many calls the run makes.
    pub fn calls(&self) -> u64 {
        self.calls
    }

    /// When the run starts.
    pub fn start(&self) -> Instant {
        self.start
    }

    /// When call `i` should start.
    pub fn at(&self, i: u64) -> Instant {
        #[allow(clippy::cast_precision_loss, clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        // i * interval stays far below 2^53 ns (104 days) for any run
        let offset = Duration::from_nanos((i as f64 * self.interval_nanos) as u64);
        self.start + offset
    }

    /// How long the schedule lasts: the intended start of the call after the last.
    pub fn span(&self) -> Duration {
        self.at(self.calls) - self.start
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calls_are_spread_evenly_over_the_duration() {
        let start = Instant::now();
        let schedule = Schedule::new(start, 1_000.0, Duration::from_secs(2));
        assert_eq!(schedule.calls(), 2_000);
        assert_eq!(schedule.at(0), start);
        assert_eq!(schedule.at(1) - start, Duration::from_millis(1));
        assert_eq!(schedule.at(1_500) - start, Duration::from_millis(1_500));
        assert_eq!(schedule.span(), Duration::from_secs(2));
    }

    #[test]
    fn fractional_intervals_do_not_drift() {
        let start = Instant::now();
        let schedule = Schedule::new(start, 3_000.0, Duration::from_secs(60));
        assert_eq!(schedule.calls(), 180_000);
        let last = schedule.at(179_999) - start;
        let expected = Duration::from_secs_f64(179_999.0 / 3_000.0);
        assert!(last.abs_diff(expected) < Duration::from_micros(1), "{last:?} vs {expected:?}");
    }

    #[test]
    fn a_rate_that_is_not_positive_schedules_nothing() {
        for rate in [0.0, -5.0, f64::NAN, f64::INFINITY] {
            assert_eq!(Schedule::new(Instant::now(), rate, Duration::from_secs(1)).calls(), 0);
        }
    }
}
