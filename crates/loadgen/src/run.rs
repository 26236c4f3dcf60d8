//! The drivers: open loop at a fixed rate (the latency a caller sees at a
//! given load), and closed loop with a fixed number of calls in flight (the
//! most a server can do).

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde::Serialize;
use tokio::sync::{Semaphore, mpsc};
use tonic::Code;

use crate::latency::{Latencies, Summary};
use crate::schedule::Schedule;

/// What one call came to: done, or failed with a gRPC code (a call that
/// outlived the driver's timeout is `DeadlineExceeded`).
pub type Outcome = Result<(), Code>;

/// A fixed-rate run.
#[derive(Debug, Clone)]
pub struct OpenLoop {
    /// Calls started per second.
    pub rate: f64,
    pub duration: Duration,
    /// Calls in flight at most; a call due while the cap is reached waits
    /// for a slot, and that wait counts in its latency.
    pub max_in_flight: usize,
    /// A call still running after this has failed.
    pub timeout: Duration,
}

/// A run with a fixed number of calls in flight, each starting when the
/// one before it ends.
#[derive(Debug, Clone)]
pub struct ClosedLoop {
    pub concurrency: usize,
    pub duration: Duration,
    pub timeout: Duration,
}

/// What a run measured.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// Calls per second the schedule asked for (0 for a closed loop).
    pub offered_rate: f64,
    /// Calls started.
    pub sent: u64,
    /// Calls that succeeded.
    pub ok: u64,
    /// Calls that failed, by gRPC code.
    pub failed: BTreeMap<String, u64>,
    /// Latency of the calls that succeeded, from their intended start.
    pub latency: Summary,
    /// Latency of the calls that failed.
    pub failed_latency: Summary,
    /// Successful calls per second, from the first start to the last answer.
    pub achieved_rate: f64,
    /// From the first start to the last answer.
    pub elapsed_s: f64,
    /// How much later than intended the generator itself started a call, at
    /// worst: when this nears the latencies, the generator is the bottleneck.
    pub max_start_lag_ms: f64,
    /// Every successful call's latency, to merge or query further.
    #[serde(skip)]
    pub histogram: Latencies,
}

/// Tallies outcomes as calls end.
#[derive(Debug, Default)]
struct Tally {
    ok: Latencies,
    failed: Latencies,
    codes: BTreeMap<String, u64>,
    last_done: Option<Instant>,
}

impl Tally {
    fn record(&mut self, latency: Duration, done: Instant, outcome: Outcome) {
        match outcome {
            Ok(()) => self.ok.record(latency),
            Err(code) => {
                self.failed.record(latency);
                *self.codes.entry(format!("{code:?}")).or_default() += 1;
            }
        }
        self.last_done = Some(self.last_done.map_or(done, |last| last.max(done)));
    }

    fn merge(&mut self, other: Self) {
        self.ok.merge(&other.ok);
        self.failed.merge(&other.failed);
        for (code, n) in other.codes {
            *self.codes.entry(code).or_default() += n;
        }
        self.last_done = match (self.last_done, other.last_done) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        };
    }

    fn report(self, offered_rate: f64, start: Instant, max_start_lag: Duration) -> Report {
        let elapsed = self.last_done.map_or(Duration::ZERO, |last| last.saturating_duration_since(start));
        let ok = self.ok.len();
        #[allow(clippy::cast_precision_loss)] // call counts are far below 2^53
        let achieved_rate = if elapsed.is_zero() { 0.0 } else { ok as f64 / elapsed.as_secs_f64() };
        Report {
            offered_rate,
            sent: ok + self.failed.len(),
            ok,
            failed: self.codes,
            latency: self.ok.summary(),
            failed_latency: self.failed.summary(),
            achieved_rate,
            elapsed_s: elapsed.as_secs_f64(),
            max_start_lag_ms: max_start_lag.as_secs_f64() * 1000.0,
            histogram: self.ok,
        }
    }
}

/// Runs `call(i, intended)` for every call `i` of a fixed-rate schedule,
/// `intended` being when it was due, and waits for the last to end.
///
/// A dedicated OS thread keeps the schedule (its sleeps are precise to tens
/// of microseconds, where the runtime's timer rounds up to a millisecond)
/// and spawns each call on the current runtime at its intended time.
///
/// # Panics
/// When called outside a tokio runtime.
pub async fn open_loop<F, Fut>(config: &OpenLoop, call: F) -> Report
where
    F: Fn(u64, Instant) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Outcome> + Send + 'static,
{
    let call = Arc::new(call);
    let runtime = tokio::runtime::Handle::current();
    let slots = Arc::new(Semaphore::new(config.max_in_flight.max(1)));
    let (done, mut finished) = mpsc::unbounded_channel::<(Duration, Instant, Outcome)>();
    // A few milliseconds ahead, so the first calls are not late already.
    let schedule = Schedule::new(Instant::now() + Duration::from_millis(5), config.rate, config.duration);
    let start = schedule.start();
    let max_lag_nanos = Arc::new(AtomicU64::new(0));
    let timeout = config.timeout;
    let lag = Arc::clone(&max_lag_nanos);
    let spawned = std::thread::Builder::new().name("loadgen-schedule".into()).spawn(move || {
        for i in 0..schedule.calls() {
            let intended = schedule.at(i);
            let now = Instant::now();
            if intended > now {
                std::thread::sleep(intended - now);
            }
            let late = u64::try_from(Instant::now().saturating_duration_since(intended).as_nanos()).unwrap_or(u64::MAX);
            lag.fetch_max(late, Ordering::Relaxed);
            let (call, slots, done) = (Arc::clone(&call), Arc::clone(&slots), done.clone());
            runtime.spawn(async move {
                let outcome = match slots.acquire_owned().await {
                    Ok(_slot) => {
                        tokio::time::timeout(timeout, call(i, intended)).await.unwrap_or(Err(Code::DeadlineExceeded))
                    }
                    Err(_) => Err(Code::Cancelled),
                };
                let ended = Instant::now();
                let _ = done.send((ended.saturating_duration_since(intended), ended, outcome));
            });
        }
    });
    let mut tally = Tally::default();
    if spawned.is_ok() {
        // Ends when the scheduler and every call have dropped their senders.
        while let Some((latency, ended, outcome)) = finished.recv().await {
            tally.record(latency, ended, outcome);
        }
    }
    tally.report(config.rate, start, Duration::from_nanos(max_lag_nanos.load(Ordering::Relaxed)))
}

/// Runs `concurrency` callers, each starting its next call when its last
/// ended, for the duration.
pub async fn closed_loop<F, Fut>(config: &ClosedLoop, call: F) -> Report
where
    F: Fn(u64) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Outcome> + Send + 'static,
{
    let call = Arc::new(call);
    let next = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let end = start + config.duration;
    let mut callers = tokio::task::JoinSet::new();
    for _ in 0..config.concurrency.max(1) {
        let (call, next, timeout) = (Arc::clone(&call), Arc::clone(&next), config.timeout);
        callers.spawn(async move {
            let mut tally = Tally::default();
            while Instant::now() < end {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let started = Instant::now();
                let outcome = tokio::time::timeout(timeout, call(i)).await.unwrap_or(Err(Code::DeadlineExceeded));
                let ended = Instant::now();
                tally.record(ended - started, ended, outcome);
            }
            tally
        });
    }
    let mut tally = Tally::default();
    while let Some(joined) = callers.join_next().await {
        if let Ok(caller) = joined {
            tally.merge(caller);
        }
    }
    tally.report(0.0, start, Duration::ZERO)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn every_scheduled_call_is_made_and_counted_by_outcome() {
        let config = OpenLoop {
            rate: 500.0,
            duration: Duration::from_millis(200),
            max_in_flight: 16,
            timeout: Duration::from_secs(5),
        };
        let report =
            open_loop(&config, |i, _| async move { if i % 10 == 0 { Err(Code::Unavailable) } else { Ok(()) } }).await;
        assert_eq!(report.sent, 100);
        assert_eq!(report.ok, 90);
        assert_eq!(report.failed.get("Unavailable"), Some(&10));
        assert_eq!(report.latency.count, 90);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_stalled_server_is_charged_to_every_call_that_waited_for_it() {
        // One slot and calls of 20 ms at 200/s: each call waits for the one
        // before, so latencies from the intended start keep growing.
        let config = OpenLoop {
            rate: 200.0,
            duration: Duration::from_millis(100),
            max_in_flight: 1,
            timeout: Duration::from_secs(5),
        };
        let report = open_loop(&config, |_, _| async {
            tokio::time::sleep(Duration::from_millis(20)).await;
            Ok(())
        })
        .await;
        assert_eq!(report.ok, 20);
        // The last call was due at 95 ms and ended at about 20 × 20 ms.
        assert!(report.latency.max_ms > 250.0, "{:?}", report.latency);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn calls_outliving_the_timeout_fail_as_deadline_exceeded() {
        let config = OpenLoop {
            rate: 100.0,
            duration: Duration::from_millis(50),
            max_in_flight: 8,
            timeout: Duration::from_millis(10),
        };
        let report = open_loop(&config, |_, _| async {
            tokio::time::sleep(Duration::from_secs(1)).await;
            Ok(())
        })
        .await;
        assert_eq!(report.ok, 0);
        assert_eq!(report.failed.get("DeadlineExceeded"), Some(&5));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_closed_loop_keeps_its_callers_busy_for_the_duration() {
        let config =
            ClosedLoop { concurrency: 4, duration: Duration::from_millis(100), timeout: Duration::from_secs(1) };
        let report = closed_loop(&config, |_| async {
            tokio::time::sleep(Duration::from_millis(5)).await;
            Ok(())
        })
        .await;
        // Every caller made calls; how many depends on the machine.
        assert!(report.ok >= 4, "{report:?}");
        assert!(report.achieved_rate > 0.0, "{report:?}");
        assert!(report.failed.is_empty());
    }
}
