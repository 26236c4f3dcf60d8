//! The canary: one legitimate player reading their page through the gateway
//! on a fixed schedule while an attack runs beside them, on a thread and
//! runtime of its own, so that the attacker's tasks in this process never
//! delay it: what it measures is the system, seen from the same machine.
//!
//! Calls start on schedule whether or not the previous one ended (open
//! loop), and each latency counts from the call's scheduled start, so a
//! stall shows as the wait a player would have seen.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use api::game::mypage::v1::{GetMyPageRequest, my_page_service_client::MyPageServiceClient};
use loadgen::{Latencies, Summary};
use platform::CancellationToken;
use serde::Serialize;
use tokio::time::{Instant, MissedTickBehavior};
use tonic::metadata::AsciiMetadataValue;
use tonic::transport::Endpoint;

/// How often the canary calls: well inside a player's rate limit.
pub const EVERY: Duration = Duration::from_millis(50);
/// Each call's deadline: a call slower than this failed for the player.
pub const DEADLINE: Duration = Duration::from_secs(2);

/// What the canary saw.
#[derive(Debug, Clone, Default, Serialize)]
pub struct CanaryReport {
    pub calls: u64,
    pub ok: u64,
    /// Failures by status code and message (the first 80 characters).
    pub failures: BTreeMap<String, u64>,
    /// Latencies of every call, failed ones included, from its scheduled start.
    pub latency: Summary,
}

impl CanaryReport {
    /// The share of calls that succeeded, in percent (100 with no call).
    pub fn success_percent(&self) -> f64 {
        if self.calls == 0 {
            return 100.0;
        }
        #[allow(clippy::cast_precision_loss)] // call counts of a run fit an f64 exactly
        let share = self.ok as f64 / self.calls as f64;
        share * 100.0
    }
}

#[derive(Debug, Default)]
struct Tally {
    calls: u64,
    ok: u64,
    failures: BTreeMap<String, u64>,
    latencies: Latencies,
}

/// A running canary; [`Canary::stop`] ends it and returns what it saw.
#[derive(Debug)]
pub struct Canary {
    stop: CancellationToken,
    thread: Option<std::thread::JoinHandle<()>>,
    tally: Arc<Mutex<Tally>>,
}

impl Canary {
    /// Starts calling `GetMyPage` of `customer` (with `bearer`) through the
    /// gateway at `url`, on one connection made now.
    ///
    /// # Errors
    /// When the thread or the connection cannot be made.
    pub fn start(url: &str, customer: &str, bearer: AsciiMetadataValue) -> anyhow::Result<Self> {
        let stop = CancellationToken::new();
        let tally = Arc::new(Mutex::new(Tally::default()));
        let (ready_tx, ready_rx) = std::sync::mpsc::channel::<anyhow::Result<()>>();
        let (url, customer) = (url.to_owned(), customer.to_owned());
        let (stopping, counted) = (stop.clone(), tally.clone());
        let thread = std::thread::Builder::new().name("canary".into()).spawn(move || {
            let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
                Ok(runtime) => runtime,
                Err(error) => {
                    let _ = ready_tx.send(Err(error.into()));
                    return;
                }
            };
            runtime.block_on(async move {
                let channel = match Endpoint::from_shared(url) {
                    Ok(endpoint) => endpoint.tcp_nodelay(true).connect_timeout(Duration::from_secs(2)).connect().await,
                    Err(error) => {
                        let _ = ready_tx.send(Err(error.into()));
                        return;
                    }
                };
                let client = match channel {
                    Ok(channel) => MyPageServiceClient::new(channel),
                    Err(error) => {
                        let _ = ready_tx.send(Err(error.into()));
                        return;
                    }
                };
                let _ = ready_tx.send(Ok(()));
                call_on_schedule(client, customer, bearer, stopping, counted).await;
            });
        })?;
        ready_rx.recv()??;
        Ok(Self { stop, thread: Some(thread), tally })
    }

    /// Stops calling, lets the calls in flight end, and reports.
    pub fn stop(mut self) -> CanaryReport {
        self.stop.cancel();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
        let tally = self.tally.lock().unwrap_or_else(PoisonError::into_inner);
        CanaryReport {
            calls: tally.calls,
            ok: tally.ok,
            failures: tally.failures.clone(),
            latency: tally.latencies.summary(),
        }
    }
}

impl Drop for Canary {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

async fn call_on_schedule(
    client: MyPageServiceClient<tonic::transport::Channel>,
    customer: String,
    bearer: AsciiMetadataValue,
    stop: CancellationToken,
    tally: Arc<Mutex<Tally>>,
) {
    let mut ticks = tokio::time::interval(EVERY);
    // A tick the thread could not take on time is still a call the player
    // made then: it starts late and its latency counts from when it was due.
    ticks.set_missed_tick_behavior(MissedTickBehavior::Burst);
    let mut calls = tokio::task::JoinSet::new();
    loop {
        let due = tokio::select! {
            due = ticks.tick() => due,
            () = stop.cancelled() => break,
        };
        let (mut client, customer, bearer, tally) = (client.clone(), customer.clone(), bearer.clone(), tally.clone());
        calls.spawn(async move {
            let mut request = tonic::Request::new(GetMyPageRequest { customer_id: customer });
            request.metadata_mut().insert("authorization", bearer);
            request.set_timeout(DEADLINE);
            let answer = tokio::time::timeout(DEADLINE, client.get_my_page(request)).await;
            let latency = Instant::now().saturating_duration_since(due);
            let mut tally = tally.lock().unwrap_or_else(PoisonError::into_inner);
            tally.calls += 1;
            tally.latencies.record(latency);
            match answer {
                Ok(Ok(_)) => tally.ok += 1,
                Ok(Err(status)) => {
                    let message: String = status.message().chars().take(80).collect();
                    *tally.failures.entry(format!("{:?}: {message}", status.code())).or_default() += 1;
                }
                Err(_) => *tally.failures.entry("no answer within the deadline".into()).or_default() += 1,
            }
        });
        while calls.try_join_next().is_some() {}
    }
    while calls.join_next().await.is_some() {}
}
