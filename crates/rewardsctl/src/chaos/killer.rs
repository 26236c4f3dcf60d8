//! The chaos itself: every few seconds, SIGKILL one process at random — any
//! service replica, the gateway, or nats-server — and let its supervisor
//! bring it back.

use std::time::{Duration, Instant};

use platform::CancellationToken;
use rand::rngs::StdRng;
use rand::{Rng as _, SeedableRng as _};

use crate::mesh::NATS;
use crate::supervisor::ProcessHandle;

/// What the killer did.
#[derive(Debug, Default, Clone)]
pub struct Kills {
    /// Processes killed with SIGKILL (nats-server included).
    pub processes: u64,
    /// Of which nats-server.
    pub broker: u64,
    /// (seconds since the start, process) of every kill.
    pub log: Vec<(f64, String)>,
}

/// The tick at which nats-server is killed for sure; later ticks pick it
/// at random too.
const BROKER_TICK: u64 = 2;

/// Kills a random process of `processes` every `every` until `stop`, with
/// nats-server among the victims at least once. Kill times count from
/// `started`; every kill is printed when `progress` is set.
pub async fn run(
    processes: Vec<ProcessHandle>,
    every: Duration,
    seed: u64,
    started: Instant,
    stop: CancellationToken,
    progress: bool,
) -> Kills {
    let mut rng = StdRng::seed_from_u64(seed);
    let (brokers, services): (Vec<ProcessHandle>, Vec<ProcessHandle>) =
        processes.into_iter().partition(|p| p.name() == NATS);
    let mut kills = Kills::default();
    let mut tick = 0u64;
    loop {
        tokio::select! {
            () = tokio::time::sleep(every) => {}
            () = stop.cancelled() => break,
        }
        tick += 1;
        let broker = tick == BROKER_TICK || (tick > BROKER_TICK && rng.random_ratio(1, 8));
        let victim = match (broker, brokers.first()) {
            (true, Some(nats)) => nats,
            _ if services.is_empty() => continue,
            _ => &services[rng.random_range(0..services.len())],
        };
        kill(victim, started, &mut kills, progress).await;
    }
    kills
}

/// Kills nats-server now, when the run ended before the killer got to it.
pub async fn kill_broker(processes: &[ProcessHandle], started: Instant, kills: &mut Kills, progress: bool) {
    if let Some(nats) = processes.iter().find(|p| p.name() == NATS) {
        kill(nats, started, kills, progress).await;
    }
}

async fn kill(victim: &ProcessHandle, started: Instant, kills: &mut Kills, progress: bool) {
    if !victim.kill().await {
        // It was already down, waiting for its restart.
        return;
    }
    let at = started.elapsed().as_secs_f64();
    kills.processes += 1;
    if victim.name() == NATS {
        kills.broker += 1;
    }
    if progress {
        println!("[chaos] {at:6.1}s  SIGKILL {}", victim.name());
    }
    kills.log.push((at, victim.name().to_owned()));
}
