//! The chaos itself: every few seconds, SIGKILL one process — any service
//! replica, a gateway, or the broker — and let its supervisor bring it back.
//!
//! On a single nats-server, the broker dies at the second tick for sure and
//! at random after. On a cluster ([`Victims::cluster`]) the broker's kills
//! aim where they hurt most: the JetStream meta leader and the leader of a
//! stream, one node at a time (never while a node is still catching up, so
//! a quorum always remains), and the database is stopped for several
//! seconds (SIGKILL of the postmaster, restarted only after the outage) at
//! least twice.

use std::time::{Duration, Instant};

use localinfra::nats::Node;
use localinfra::postgres::Instance;
use platform::CancellationToken;
use rand::rngs::StdRng;
use rand::{Rng as _, SeedableRng as _};

use crate::mesh::is_broker;
use crate::supervisor::ProcessHandle;

/// What the killer did.
#[derive(Debug, Default, Clone)]
pub struct Kills {
    /// Processes killed with SIGKILL (the broker's and the database's included).
    pub processes: u64,
    /// Of which broker nodes.
    pub broker: u64,
    /// Of which the JetStream meta leader (cluster only).
    pub meta_leader: u64,
    /// Of which a stream's leader (cluster only).
    pub stream_leader: u64,
    /// How long the database refused connections, for each of its kills.
    pub database_outages: Vec<Duration>,
    /// (seconds since the start, process) of every kill.
    pub log: Vec<(f64, String)>,
}

/// The processes the killer may pick.
#[derive(Debug, Clone)]
pub struct Victims {
    /// Service replicas and gateways.
    services: Vec<ProcessHandle>,
    /// The broker's processes, in the order of `nodes`.
    brokers: Vec<ProcessHandle>,
    /// The cluster's nodes, to ask who leads; empty on a single server.
    nodes: Vec<Node>,
    /// The database and its instance, to tell when it answers again.
    database: Option<(ProcessHandle, Instance)>,
}

impl Victims {
    /// Every process of a single-server system.
    pub fn single(processes: Vec<ProcessHandle>) -> Self {
        let (brokers, services) = processes.into_iter().partition(|p| is_broker(p.name()));
        Self { services, brokers, nodes: Vec::new(), database: None }
    }

    /// Every process of a cluster-shaped system: the broker's nodes (in the
    /// order of `nodes`), the database and the services.
    pub fn cluster(processes: Vec<ProcessHandle>, nodes: Vec<Node>, database_instance: Instance) -> Self {
        let (brokers, others): (Vec<ProcessHandle>, Vec<ProcessHandle>) =
            processes.into_iter().partition(|p| is_broker(p.name()));
        let (database, services): (Vec<ProcessHandle>, Vec<ProcessHandle>) =
            others.into_iter().partition(|p| p.name() == crate::mesh::POSTGRES);
        // The handles in the nodes' order, so that a leader's index names its process.
        let brokers = nodes.iter().filter_map(|node| brokers.iter().find(|p| p.name() == node.name).cloned()).collect();
        Self {
            services,
            brokers,
            nodes,
            database: database.into_iter().next().map(|handle| (handle, database_instance)),
        }
    }

    fn is_cluster(&self) -> bool {
        !self.nodes.is_empty()
    }
}

/// The tick at which the broker is killed for sure; later ticks pick it at
/// random too (a single server), or every fifth tick (a cluster).
const BROKER_TICK: u64 = 2;
/// The ticks at which the database is stopped (cluster), whatever the dice say.
const DATABASE_TICKS: [u64; 2] = [4, 9];
/// How long the database stays down at each outage, at least.
pub const DATABASE_DOWN: Duration = Duration::from_secs(5);
/// The streams whose leaders the killer aims at.
const STREAMS: [&str; 4] = ["MISSION", "REWARD", "WALLET", "GIFT"];

/// Kills a process of `victims` every `every` until `stop`. Kill times
/// count from `started`; every kill is printed when `progress` is set.
pub async fn run(
    victims: Victims,
    every: Duration,
    seed: u64,
    started: Instant,
    stop: CancellationToken,
    progress: bool,
) -> Kills {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut kills = Kills::default();
    let mut tick = 0u64;
    let mut outages = tokio::task::JoinSet::new();
    loop {
        tokio::select! {
            () = tokio::time::sleep(every) => {}
            () = stop.cancelled() => break,
        }
        tick += 1;
        if victims.is_cluster() {
            if let Some((database, instance)) = victims.database.as_ref().filter(|_| DATABASE_TICKS.contains(&tick)) {
                if kill(database, DATABASE_DOWN, started, &mut kills, progress).await {
                    outages.spawn(outage(instance.clone()));
                }
                continue;
            }
            if tick == BROKER_TICK || (tick > BROKER_TICK && tick % 5 == BROKER_TICK) {
                let stream = tick.is_multiple_of(2).then(|| STREAMS[rng.random_range(0..STREAMS.len())]);
                kill_leader(&victims, stream, started, &mut kills, progress).await;
                continue;
            }
        } else if (tick == BROKER_TICK || (tick > BROKER_TICK && rng.random_ratio(1, 8)))
            && let Some(broker) = victims.brokers.first()
        {
            kill(broker, crate::supervisor::RESTART_AFTER_KILL, started, &mut kills, progress).await;
            continue;
        }
        if !victims.services.is_empty() {
            let victim = &victims.services[rng.random_range(0..victims.services.len())];
            kill(victim, crate::supervisor::RESTART_AFTER_KILL, started, &mut kills, progress).await;
        }
    }
    while let Some(outage) = outages.join_next().await {
        kills.database_outages.extend(outage.ok());
    }
    kills
}

/// Makes sure the run killed the broker (and, on a cluster, the database
/// twice and both kinds of leader) when the load ended before the killer
/// got to it all.
pub async fn complete(victims: &Victims, started: Instant, kills: &mut Kills, progress: bool) {
    if kills.broker == 0
        && !victims.is_cluster()
        && let Some(broker) = victims.brokers.first()
    {
        kill(broker, crate::supervisor::RESTART_AFTER_KILL, started, kills, progress).await;
    }
    if !victims.is_cluster() {
        return;
    }
    if kills.meta_leader == 0 {
        wait_for_quorum(victims).await;
        kill_leader(victims, None, started, kills, progress).await;
    }
    if kills.stream_leader == 0 {
        wait_for_quorum(victims).await;
        kill_leader(victims, Some(STREAMS[0]), started, kills, progress).await;
    }
    if let Some((database, instance)) = &victims.database {
        while kills.database_outages.len() < DATABASE_TICKS.len() {
            if !kill(database, DATABASE_DOWN, started, kills, progress).await {
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
            kills.database_outages.push(outage(instance.clone()).await);
        }
    }
}

/// Kills the node leading the meta group (`stream` is `None`) or `stream`,
/// provided every node is healthy: one node down at a time keeps a quorum.
async fn kill_leader(victims: &Victims, stream: Option<&str>, started: Instant, kills: &mut Kills, progress: bool) {
    if !localinfra::nats::all_healthy(&victims.nodes).await {
        if progress {
            println!("[chaos] {:6.1}s  a NATS node is still catching up: no broker kill this time", secs(started));
        }
        return;
    }
    let Some(leader) = localinfra::nats::leader_of(&victims.nodes, stream).await else { return };
    let Some(process) = victims.brokers.get(leader) else { return };
    let what = stream.map_or("the JetStream meta leader".to_owned(), |s| format!("the {s} stream's leader"));
    if kill_as(process, &what, crate::supervisor::RESTART_AFTER_KILL, started, kills, progress).await {
        match stream {
            None => kills.meta_leader += 1,
            Some(_) => kills.stream_leader += 1,
        }
    }
}

async fn wait_for_quorum(victims: &Victims) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !localinfra::nats::all_healthy(&victims.nodes).await && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// How long the database refuses connections from now (it was just killed).
async fn outage(instance: Instance) -> Duration {
    let killed = Instant::now();
    // The supervisor starts it again after DATABASE_DOWN; then recovery runs.
    tokio::time::sleep(DATABASE_DOWN).await;
    let _ = instance.wait_ready(Duration::from_secs(120)).await;
    killed.elapsed()
}

async fn kill(victim: &ProcessHandle, down: Duration, started: Instant, kills: &mut Kills, progress: bool) -> bool {
    let role = if victim.name() == crate::mesh::POSTGRES {
        format!("the database, down for {}s", down.as_secs())
    } else {
        String::new()
    };
    kill_as(victim, &role, down, started, kills, progress).await
}

/// Kills `victim`, which plays `role` (shown when not empty).
async fn kill_as(
    victim: &ProcessHandle,
    role: &str,
    down: Duration,
    started: Instant,
    kills: &mut Kills,
    progress: bool,
) -> bool {
    if !victim.kill_for(down).await {
        // It was already down, waiting for its restart.
        return false;
    }
    let at = secs(started);
    kills.processes += 1;
    if is_broker(victim.name()) {
        kills.broker += 1;
    }
    let name = if role.is_empty() { victim.name().to_owned() } else { format!("{} ({role})", victim.name()) };
    if progress {
        println!("[chaos] {at:6.1}s  SIGKILL {name}");
    }
    kills.log.push((at, name));
    true
}

fn secs(started: Instant) -> f64 {
    started.elapsed().as_secs_f64()
}
