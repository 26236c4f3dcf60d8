//! Free TCP ports on loopback, from ranges that never overlap.
//!
//! Both ranges lie below the ephemeral range the OS hands out for outgoing
//! connections (32768 and up on Linux): a client connection opened
//! between picking a port and binding it could otherwise take the port,
//! and a killed process could not get its port back.

use std::net::TcpListener;
use std::sync::atomic::{AtomicU16, Ordering};

use anyhow::bail;

/// A range of ports walked from a random point, so that one process never
/// hands out a port twice and two processes rarely do.
#[derive(Debug)]
pub struct PortRange {
    first: u16,
    last: u16,
    next: AtomicU16,
}

/// Ports for tests (`testkit`).
pub static TESTS: PortRange = PortRange::new(10_000, 20_000);

/// Ports for the runner's free layouts (`rewardsctl`), apart from the
/// tests' so that a test and a running mesh never collide.
pub static RUNNER: PortRange = PortRange::new(20_000, 32_000);

impl PortRange {
    /// The ports from `first` to `last`, `last` excluded.
    pub const fn new(first: u16, last: u16) -> Self {
        Self { first, last, next: AtomicU16::new(0) }
    }

    /// Whether `port` belongs to the range.
    pub fn contains(&self, port: u16) -> bool {
        (self.first..self.last).contains(&port)
    }

    /// A port of the range that accepts a listener now.
    ///
    /// # Errors
    /// When every port of the range is taken.
    pub fn take(&self) -> anyhow::Result<u16> {
        let start = rand::random_range(self.first..self.last);
        let _ = self.next.compare_exchange(0, start, Ordering::SeqCst, Ordering::SeqCst);
        for _ in self.first..self.last {
            let port = self
                .next
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |p| {
                    Some(if p + 1 >= self.last { self.first } else { p + 1 })
                })
                .unwrap_or(self.first);
            if TcpListener::bind(("127.0.0.1", port)).is_ok() {
                return Ok(port);
            }
        }
        bail!("no free port between {} and {}", self.first, self.last)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_are_distinct_and_inside_the_range() {
        let range = PortRange::new(40_000, 40_050);
        let mut ports: Vec<u16> = (0..20).map(|_| range.take().unwrap()).collect();
        assert!(ports.iter().all(|p| range.contains(*p)));
        ports.sort_unstable();
        ports.dedup();
        assert_eq!(ports.len(), 20);
    }

    #[test]
    fn the_ranges_do_not_overlap() {
        assert!(!TESTS.contains(20_000) && RUNNER.contains(20_000));
        assert!(!RUNNER.contains(32_768), "the runner stays below the ephemeral range");
    }
}
