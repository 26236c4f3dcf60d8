//! The chain benchmark: AchieveMission through the gateway at a fixed
//! offered rate (open loop), and the time from each mission's intended
//! start until the player's my page, watched through the gateway, shows its
//! reward ISSUED — the whole chain: mission → reward → wallet → mypage,
//! three event hops and five transactions. Each rate runs on a fresh
//! system, so no step inherits another's backlog, and the processes'
//! memory peaks belong to that step.
//!
//! The chain's latency is sampled: a few players per second have their page
//! watched (WatchMyPage) from the moment their call is due. Every watch
//! wakes on every change of every page in mypage, so the watches are few
//! and capped; how many samples the cap skipped is reported.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use api::game::mission::v1::mission_service_client::MissionServiceClient;
use api::game::mypage::v1::{WatchMyPageRequest, my_page_service_client::MyPageServiceClient};
use api::game::reward::v1::RewardStatus;
use async_nats::jetstream;
use futures::StreamExt as _;
use loadgen::grpc::{Target, outcome};
use loadgen::latency::{Latencies, Summary};
use loadgen::run::{OpenLoop, Report, open_loop};
use platform::events::WALLET_STREAM;
use serde::Serialize;
use tokio::sync::Semaphore;

use super::system::System;
use crate::resources::{self, Usage};

/// The consumer whose progress is the chain's last hop.
const LAST_HOP: &str = "mypage-wallet";

/// Players whose page is watched, per second, in every chain run.
pub const SAMPLES_PER_S: f64 = 50.0;
/// Watches open at once at most, in every chain run.
pub const MAX_WATCHES: usize = 16;

/// How each step runs.
#[derive(Debug, Clone)]
pub struct Options {
    pub duration: Duration,
    /// How long after the last call the chain may take to finish.
    pub drain: Duration,
    /// Players whose page is watched, per second.
    pub samples_per_s: f64,
    /// Watches open at once at most.
    pub max_watches: usize,
    /// The system's shape.
    pub shape: crate::mesh::Shape,
}

/// One offered rate's figures.
#[derive(Debug, Clone, Serialize)]
pub struct Step {
    pub offered_rate: f64,
    /// AchieveMission, as the player's client saw it.
    pub calls: Report,
    /// From a call's intended start until the page showed its reward ISSUED.
    pub chain: Summary,
    /// Samples skipped because the watches were at their cap.
    pub samples_skipped: u64,
    /// Watched missions whose reward was not ISSUED on the page before the
    /// watch gave up (the run and its drain time): recorded at the time
    /// they were given up, so the percentiles are lower bounds then.
    pub samples_censored: u64,
    /// Missions whose reward reached the page, per second, from the first
    /// call until the last reached it (or the drain time ran out).
    pub chain_rate: f64,
    /// Missions whose reward reached the page.
    pub completed: u64,
    /// From the last call until the chain finished (or gave up waiting).
    pub drain_s: f64,
    /// Whether everything offered went through the chain within the drain time.
    pub drained: bool,
    /// From starting nats-server until every process answered SERVING.
    pub serving_after_s: f64,
    /// Each process right after the system started.
    pub at_rest: BTreeMap<String, Usage>,
    /// Each process's CPU seconds during the step, and memory at its end.
    pub under_load: BTreeMap<String, Usage>,
}

impl Step {
    /// Whether the chain held this rate with its p99 at or under `p99_ms`:
    /// every call answered, the chain kept up, and the sampled p99 is within.
    pub fn held(&self, p99_ms: f64) -> bool {
        self.drained
            && self.calls.failed.is_empty()
            && self.chain.count > 0
            && self.chain.p99_ms <= p99_ms
            && self.chain_rate >= 0.95 * self.offered_rate
            && self.samples_censored == 0
    }
}

/// Runs a step at each of `rates`, each on a fresh system under `dir`.
///
/// # Errors
/// When a system cannot start.
pub async fn run(dir: &Path, bin_dir: &Path, options: &Options, rates: &[f64]) -> anyhow::Result<Vec<Step>> {
    let mut steps = Vec::new();
    for &rate in rates {
        steps.push(run_step(&dir.join(format!("chain-{rate:.0}")), bin_dir, options, rate).await?);
    }
    Ok(steps)
}

/// Runs one step at `rate` on a fresh system in `dir`, and prints it.
///
/// # Errors
/// When the system cannot start.
pub async fn run_step(dir: &Path, bin_dir: &Path, options: &Options, rate: f64) -> anyhow::Result<Step> {
    println!("  chain at {rate:.0} missions/s for {}s", options.duration.as_secs());
    let system = System::start(options.shape, dir.to_path_buf(), bin_dir.to_path_buf(), Vec::new()).await?;
    let step = step(&system, rate, options).await;
    system.stop().await;
    let step = step?;
    print_step(&step);
    Ok(step)
}

fn print_step(step: &Step) {
    let (c, l) = (&step.chain, &step.calls.latency);
    println!(
        "    calls: {} ok of {} at {:.0}/s, ms p50 {:.2} p99 {:.2} max {:.1}{}",
        step.calls.ok,
        step.calls.sent,
        step.calls.achieved_rate,
        l.p50_ms,
        l.p99_ms,
        l.max_ms,
        if step.calls.failed.is_empty() { String::new() } else { format!("; failed {:?}", step.calls.failed) }
    );
    println!(
        "    chain to ISSUED on my page: {} samples ({} given up, {} skipped), ms p50 {:.1} p90 {:.1} p99 {:.1} max {:.1}; {} of {} through at \
         {:.0}/s{}",
        c.count,
        step.samples_censored,
        step.samples_skipped,
        c.p50_ms,
        c.p90_ms,
        c.p99_ms,
        c.max_ms,
        step.completed,
        step.calls.ok,
        step.chain_rate,
        if step.drained { String::new() } else { format!(" (not drained {:.0}s after the last call)", step.drain_s) }
    );
}

async fn step(system: &System, rate: f64, options: &Options) -> anyhow::Result<Step> {
    let at_rest = resources::snapshot(&system.mesh);
    let calls = Target::connect(&system.gateway(), 2, &[]).await?;
    let watches = Target::connect(&system.gateway(), 1, &[]).await?;
    let chain = Arc::new(Mutex::new(Latencies::new()));
    let skipped = Arc::new(AtomicU64::new(0));
    let censored = Arc::new(AtomicU64::new(0));
    let slots = Arc::new(Semaphore::new(options.max_watches));
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)] // a positive ratio of rates
    let sample_every = ((rate / options.samples_per_s).round() as u64).max(1);
    let watch_for = options.duration + options.drain;
    let prefix = format!("chain-{rate:.0}");
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)] // a positive count of calls
    let players = (rate * options.duration.as_secs_f64()).ceil() as u64 / system.catalogue.len() + 1;
    let catalogue = system.catalogue.clone();
    let bearers = system.bearers(&prefix, players).await?;
    let config = OpenLoop { rate, duration: options.duration, max_in_flight: 1_024, timeout: Duration::from_secs(10) };
    let mut watchers = tokio::task::JoinSet::new();
    let (spawn_watch, mut watch_requests) = tokio::sync::mpsc::unbounded_channel();
    let started = Instant::now();
    let driven = {
        let (chain, skipped, slots) = (Arc::clone(&chain), Arc::clone(&skipped), Arc::clone(&slots));
        let bearers = bearers.clone();
        let censored = Arc::clone(&censored);
        open_loop(&config, move |i, intended| {
            let request = catalogue.achieve_request(&prefix, i);
            let player = catalogue.player(i);
            if i % sample_every == 0 {
                match Arc::clone(&slots).try_acquire_owned() {
                    Ok(slot) => {
                        let mut watch_request =
                            watches.request(WatchMyPageRequest { customer_id: request.customer_id.clone() });
                        bearers.player(player, &mut watch_request);
                        let watch = watch_until_issued(
                            watches.clone(),
                            watch_request,
                            request.mission_code.clone(),
                            intended,
                            watch_for,
                            Arc::clone(&chain),
                            Arc::clone(&censored),
                        );
                        let _ = spawn_watch.send(async move {
                            watch.await;
                            drop(slot);
                        });
                    }
                    Err(_) => {
                        skipped.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
            let target = calls.clone();
            let mut request = target.request(request);
            bearers.player(player, &mut request);
            async move {
                let mut client = MissionServiceClient::new(target.channel(i));
                outcome(client.achieve_mission(request).await)
            }
        })
    };
    tokio::pin!(driven);
    let report = loop {
        tokio::select! {
            report = &mut driven => break report,
            Some(watch) = watch_requests.recv() => { watchers.spawn(watch); }
        }
    };
    while let Ok(watch) = watch_requests.try_recv() {
        watchers.spawn(watch);
    }
    let calls_done = Instant::now();
    let (completed, finished) = wait_for_last_hop(system, report.ok, options.drain).await;
    let chain_end = finished.unwrap_or_else(Instant::now);
    while watchers.join_next().await.is_some() {}
    let under_load = resources::spent(&at_rest, &resources::snapshot(&system.mesh));
    #[allow(clippy::cast_precision_loss)] // mission counts fit an f64 exactly
    let chain_rate = completed as f64 / chain_end.saturating_duration_since(started).as_secs_f64().max(1e-9);
    let chain = chain.lock().unwrap_or_else(PoisonError::into_inner).summary();
    Ok(Step {
        offered_rate: rate,
        calls: report,
        chain,
        samples_skipped: skipped.load(Ordering::Relaxed),
        samples_censored: censored.load(Ordering::Relaxed),
        chain_rate,
        completed,
        drain_s: chain_end.saturating_duration_since(calls_done).as_secs_f64(),
        drained: finished.is_some(),
        serving_after_s: system.serving_after.as_secs_f64(),
        at_rest,
        under_load,
    })
}

/// Watches `customer`'s page until its `code` mission shows the reward
/// ISSUED, and records the time since `intended`; a watch that gives up
/// records the time it gave up, and counts in `censored`.
async fn watch_until_issued(
    target: Target,
    request: tonic::Request<WatchMyPageRequest>,
    code: String,
    intended: Instant,
    within: Duration,
    chain: Arc<Mutex<Latencies>>,
    censored: Arc<AtomicU64>,
) {
    let watch = async {
        let mut client = MyPageServiceClient::new(target.channel(0));
        let mut pages = client.watch_my_page(request).await.ok()?.into_inner();
        while let Some(Ok(response)) = pages.next().await {
            let issued = response.my_page.is_some_and(|page| {
                page.missions.iter().any(|m| m.mission_code == code && m.reward_status() == RewardStatus::Issued)
            });
            if issued {
                return Some(intended.elapsed());
            }
        }
        None
    };
    let latency = match tokio::time::timeout(within, watch).await {
        Ok(Some(latency)) => latency,
        _ => {
            censored.fetch_add(1, Ordering::Relaxed);
            intended.elapsed()
        }
    };
    chain.lock().unwrap_or_else(PoisonError::into_inner).record(latency);
}

/// Waits until mypage has applied a RewardIssued for each of `expected`
/// missions, at most `within`; returns how many it applied, and when it
/// finished if it did.
async fn wait_for_last_hop(system: &System, expected: u64, within: Duration) -> (u64, Option<Instant>) {
    let deadline = Instant::now() + within;
    let mut applied = 0;
    let Ok(client) = async_nats::connect(system.mesh.layout().nats_urls()).await else { return (0, None) };
    let js = jetstream::new(client);
    loop {
        if let Some(now) = last_hop_applied(&js).await {
            applied = now.min(expected);
            if now >= expected {
                return (applied, Some(Instant::now()));
            }
        }
        if Instant::now() > deadline {
            return (applied, None);
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// RewardIssued events (the only events on the WALLET stream while no one
/// exchanges) that mypage has applied: those neither pending nor unacked.
async fn last_hop_applied(js: &jetstream::Context) -> Option<u64> {
    let mut stream = js.get_stream(WALLET_STREAM.name).await.ok()?;
    let messages = stream.info().await.ok()?.state.messages;
    let info = stream.consumer_info(LAST_HOP).await.ok()?;
    let outstanding = info.num_pending + u64::try_from(info.num_ack_pending).unwrap_or(u64::MAX);
    Some(messages.saturating_sub(outstanding))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn step(offered_rate: f64, chain_rate: f64, p99_ms: f64, drained: bool) -> Step {
        let calls = Report {
            offered_rate,
            sent: 100,
            ok: 100,
            failed: BTreeMap::new(),
            latency: Summary::default(),
            failed_latency: Summary::default(),
            achieved_rate: offered_rate,
            elapsed_s: 1.0,
            max_start_lag_ms: 0.0,
            histogram: Latencies::new(),
        };
        Step {
            offered_rate,
            calls,
            chain: Summary { count: 20, p99_ms, ..Summary::default() },
            samples_skipped: 0,
            samples_censored: 0,
            chain_rate,
            completed: 100,
            drain_s: 0.1,
            drained,
            serving_after_s: 1.0,
            at_rest: BTreeMap::new(),
            under_load: BTreeMap::new(),
        }
    }

    #[test]
    fn a_rate_is_held_when_the_chain_keeps_up_within_the_p99() {
        assert!(step(1_000.0, 990.0, 18.0, true).held(20.0));
        assert!(!step(1_000.0, 990.0, 21.0, true).held(20.0), "p99 over the limit");
        assert!(!step(1_000.0, 800.0, 18.0, true).held(20.0), "the chain fell behind");
        assert!(!step(1_000.0, 990.0, 18.0, false).held(20.0), "not drained");
        let mut failing = step(1_000.0, 990.0, 18.0, true);
        failing.calls.failed.insert("Unavailable".into(), 1);
        assert!(!failing.held(20.0), "a call failed");
    }
}
