//! The clock port on the system's clock.

use crate::ports::Clock;

/// The time as the operating system tells it.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> i64 {
        platform::db::now_millis()
    }
}
