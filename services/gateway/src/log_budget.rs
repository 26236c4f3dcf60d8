//! Logging under attack: one line per kind of event per interval, saying how
//! many were left out since, so that a flood of refusals shows in the log as
//! a few lines with counts rather than as the flood itself.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

/// At most one line per kind per `interval`.
#[derive(Debug)]
pub struct LogBudget {
    interval: Duration,
    kinds: Mutex<HashMap<&'static str, Kind>>,
}

#[derive(Debug)]
struct Kind {
    last: Instant,
    suppressed: u64,
}

impl LogBudget {
    /// A budget of one line per kind per `interval`.
    pub fn new(interval: Duration) -> Self {
        Self { interval, kinds: Mutex::default() }
    }

    /// Whether a line of `kind` may be written now; if so, how many lines
    /// of that kind were left out since the last one.
    pub fn allow(&self, kind: &'static str) -> Option<u64> {
        self.allow_at(kind, Instant::now())
    }

    fn allow_at(&self, kind: &'static str, now: Instant) -> Option<u64> {
        let mut kinds = self.kinds.lock().unwrap_or_else(PoisonError::into_inner);
        match kinds.get_mut(kind) {
            Some(seen) if now.saturating_duration_since(seen.last) < self.interval => {
                seen.suppressed += 1;
                None
            }
            Some(seen) => {
                let suppressed = std::mem::take(&mut seen.suppressed);
                seen.last = now;
                Some(suppressed)
            }
            None => {
                kinds.insert(kind, Kind { last: now, suppressed: 0 });
                Some(0)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_line_per_kind_per_interval_with_the_count_left_out() {
        let log = LogBudget::new(Duration::from_secs(10));
        let start = Instant::now();
        assert_eq!(log.allow_at("reset", start), Some(0));
        assert_eq!(log.allow_at("reset", start + Duration::from_secs(1)), None);
        assert_eq!(log.allow_at("reset", start + Duration::from_secs(2)), None);
        assert_eq!(log.allow_at("refused", start + Duration::from_secs(2)), Some(0), "each kind has its own");
        assert_eq!(log.allow_at("reset", start + Duration::from_secs(11)), Some(2));
    }
}
