//! A clock for use-case tests: the time is what the test sets, so that
//! windows, days and due times are tested at the moments that matter. Each
//! service's tests implement their clock port on it.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

/// A clock the test sets, in milliseconds since the Unix epoch: shared by
/// its clones, so the use cases see what the test set last.
#[derive(Debug, Clone, Default)]
pub struct TestClock(Arc<AtomicI64>);

impl TestClock {
    /// A clock showing `millis`.
    pub fn at(millis: i64) -> Self {
        Self(Arc::new(AtomicI64::new(millis)))
    }

    /// Moves the clock to `millis`.
    pub fn set(&self, millis: i64) {
        self.0.store(millis, Ordering::SeqCst);
    }

    /// What the clock shows.
    pub fn now(&self) -> i64 {
        self.0.load(Ordering::SeqCst)
    }
}
