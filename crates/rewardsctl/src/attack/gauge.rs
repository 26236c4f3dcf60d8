//! What an attack costs the gateway: CPU time over the attack, the highest
//! resident memory seen (sampled every 100 ms, since the kernel's own peak
//! is the process's lifetime peak), how long memory took to come back near
//! its resting size afterwards, and how many lines the gateway logged.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use platform::CancellationToken;
use serde::Serialize;

use crate::resources::{clock_ticks, of_process};

/// Memory counts as back near resting within this of the resting size
/// (or a quarter of it, when more): allocators keep some freed memory.
const NEAR_RESTING_MB: f64 = 10.0;

/// What the gateway spent during one attack.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct Spent {
    /// CPU seconds (user + system) between start and finish.
    pub cpu_s: f64,
    /// How long the attack ran.
    pub wall_s: f64,
    /// Resident memory before the attack.
    pub resting_mb: f64,
    /// The highest resident memory sampled during the attack.
    pub peak_mb: f64,
    /// Lines the gateway wrote to its log during the attack.
    pub log_lines: u64,
    /// Of those, lines saying a replica was taken out of the balance.
    pub replicas_dropped: u64,
}

impl Spent {
    /// The CPU used, in cores (1.0 = one core busy the whole time).
    pub fn cores(&self) -> f64 {
        if self.wall_s > 0.0 { self.cpu_s / self.wall_s } else { 0.0 }
    }
}

/// Samples the gateway while an attack runs.
#[derive(Debug)]
pub struct Gauge {
    pid: u32,
    log: PathBuf,
    ticks: f64,
    started: Instant,
    cpu_before: f64,
    resting_mb: f64,
    log_before: u64,
    stop: CancellationToken,
    sampler: tokio::task::JoinHandle<f64>,
}

impl Gauge {
    /// Starts sampling process `pid`, whose log is `log`.
    pub fn start(pid: u32, log: &Path) -> Self {
        let ticks = clock_ticks();
        let now = of_process(pid, ticks).unwrap_or_default();
        let stop = CancellationToken::new();
        let stopping = stop.clone();
        let sampler = tokio::spawn(async move {
            let mut peak = now.rss_mb;
            let mut every = tokio::time::interval(Duration::from_millis(100));
            loop {
                tokio::select! {
                    _ = every.tick() => {}
                    () = stopping.cancelled() => break,
                }
                if let Some(usage) = of_process(pid, ticks) {
                    peak = peak.max(usage.rss_mb);
                }
            }
            peak
        });
        Self {
            pid,
            log: log.to_path_buf(),
            ticks,
            started: Instant::now(),
            cpu_before: now.cpu_s,
            resting_mb: now.rss_mb,
            log_before: count_lines(log),
            stop,
            sampler,
        }
    }

    /// Stops sampling and reports.
    pub async fn finish(self) -> Spent {
        let wall_s = self.started.elapsed().as_secs_f64();
        let now = of_process(self.pid, self.ticks).unwrap_or_default();
        self.stop.cancel();
        let peak = self.sampler.await.unwrap_or_default().max(now.rss_mb);
        let (log_lines, replicas_dropped) = lines_since(&self.log, self.log_before);
        Spent {
            cpu_s: (now.cpu_s - self.cpu_before).max(0.0),
            wall_s,
            resting_mb: self.resting_mb,
            peak_mb: peak,
            log_lines,
            replicas_dropped,
        }
    }
}

/// Waits until process `pid`'s memory is back near `resting_mb`, at most
/// `within`; how long that took, or `None` when it did not.
pub async fn settle(pid: u32, resting_mb: f64, within: Duration) -> (Option<Duration>, f64) {
    let ticks = clock_ticks();
    let near = resting_mb + NEAR_RESTING_MB.max(resting_mb / 4.0);
    let started = Instant::now();
    loop {
        let rss = of_process(pid, ticks).map_or(0.0, |u| u.rss_mb);
        if rss <= near {
            return (Some(started.elapsed()), rss);
        }
        if started.elapsed() >= within {
            return (None, rss);
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

fn count_lines(path: &Path) -> u64 {
    std::fs::read(path).map_or(0, |bytes| bytes.iter().filter(|b| **b == b'\n').count() as u64)
}

/// Lines after the first `skip`, and how many of them say a replica was dropped.
fn lines_since(path: &Path, skip: u64) -> (u64, u64) {
    let Ok(bytes) = std::fs::read(path) else { return (0, 0) };
    let text = String::from_utf8_lossy(&bytes);
    let fresh: Vec<&str> = text.lines().skip(usize::try_from(skip).unwrap_or(usize::MAX)).collect();
    let dropped = fresh.iter().filter(|line| line.contains("replica not serving")).count();
    (fresh.len() as u64, dropped as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_lines_are_counted_after_the_mark() {
        let dir = std::env::temp_dir().join(format!("gauge-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let log = dir.join("gateway.log");
        std::fs::write(&log, "a\nb\n").unwrap();
        let mark = count_lines(&log);
        std::fs::write(&log, "a\nb\nWARN replica not serving\nc\n").unwrap();
        assert_eq!(lines_since(&log, mark), (2, 1));
        let _ = std::fs::remove_dir_all(dir);
    }
}
