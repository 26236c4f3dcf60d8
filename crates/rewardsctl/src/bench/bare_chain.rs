//! The bare chain: the physical limit beside the chain. One process with no
//! logic does per mission what the real chain does — the same gRPC hops,
//! SQLite transactions, JetStream publishes and consumes — so the chain's
//! throughput and CPU per mission can be read as a fraction of it:
//!
//! - 2 gRPC hops: the client calls a forwarder (the gateway's place), which
//!   calls an endpoint (mission's), both tonic servers on loopback;
//! - 8 transactions on 4 SQLite files (mission 2, reward 2, wallet 1,
//!   mypage 3), each store with one writer thread that commits what queued
//!   while it was busy in one transaction (the services' group commit), and
//!   the relays' marks of what they published, riding on the store's next
//!   commit as the services' marks do (`Database::write_with_next`);
//! - 3 publishes (with `Nats-Msg-Id`, PubAcks awaited per batch) and 7
//!   durable pull consumers (pulling and applying as many at a time as the
//!   services' do, `platform::consumer`) acking each event after their
//!   batch committed, on a nats-server of its own.
//!
//! The relays are handed the rows just committed (no outbox read). CPU is
//! this process's and its nats-server's, less the client's own thread.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use async_nats::HeaderMap;
use async_nats::jetstream::{self, consumer::pull, stream};
use bytes::Bytes;
use futures::StreamExt as _;
use loadgen::grpc::{Target, outcome};
use loadgen::latency::{Latencies, Summary};
use loadgen::run::{ClosedLoop, OpenLoop, Report, closed_loop, open_loop};
use serde::Serialize;
use tokio::sync::{mpsc, oneshot};
use tonic::{Request, Response, Status};
use tonic_health::pb::health_client::HealthClient;
use tonic_health::pb::health_server::{Health, HealthServer};
use tonic_health::pb::{HealthCheckRequest, HealthCheckResponse};

use crate::mesh::{Layout, Mesh, MeshConfig, Replicas};
use crate::resources;

/// What the bare chain does per mission, as the real chain does.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct PerMission {
    pub grpc_hops: u32,
    pub transactions: u32,
    pub publishes: u32,
    pub consumes: u32,
}

/// mission → reward → wallet → mypage: AchieveMission (1 transaction), and
/// one per consumer (mission-record-reward, reward-allocate,
/// reward-track-wallet, wallet-issue-reward, mypage-missions,
/// mypage-rewards, mypage-wallet).
pub const PER_MISSION: PerMission = PerMission { grpc_hops: 2, transactions: 8, publishes: 3, consumes: 7 };

/// How it is driven.
#[derive(Debug, Clone)]
pub struct Options {
    /// Missions per second of the CPU run.
    pub rate: f64,
    /// Missions in flight of the throughput run.
    pub concurrency: usize,
    pub duration: Duration,
}

/// What it measured.
#[derive(Debug, Clone, Serialize)]
pub struct BareChain {
    pub per_mission: PerMission,
    /// At the fixed rate: CPU per mission.
    pub at_rate: Run,
    /// Closed loop: the highest throughput.
    pub saturated: Run,
}

/// One run.
#[derive(Debug, Clone, Serialize)]
pub struct Run {
    pub calls: Report,
    /// Missions whose last consumer committed.
    pub completed: u64,
    /// Completed missions per second, from the first call until the last completed.
    pub missions_per_s: f64,
    /// This process and its nats-server, less the client's thread.
    pub cpu_ms_per_mission: f64,
    pub client_cpu_s: f64,
    /// Context switches per mission of this process and its nats-server,
    /// less the client's thread: the wake-ups the chain's shape costs.
    pub switches_per_mission: f64,
    /// From the call's start until the last consumer committed.
    pub chain: Summary,
}

#[derive(Debug, Clone, Copy)]
enum Load {
    Open { rate: f64 },
    Closed { concurrency: usize },
}

/// Runs both measurements; its nats-server and stores go under `dir`.
///
/// # Errors
/// When nats-server or a store cannot start.
pub async fn run(dir: &Path, bin_dir: &Path, options: &Options) -> anyhow::Result<BareChain> {
    std::fs::create_dir_all(dir)?;
    let mut layout = Layout::free(crate::mesh::Shape::Single, &Replicas::default())?;
    layout.members.clear();
    let config = MeshConfig {
        run_dir: dir.join("nats"),
        bin_dir: bin_dir.to_path_buf(),
        nats_server: None,
        layout,
        env: Vec::new(),
        announce: true,
    };
    let mut mesh = Mesh::new(config)?;
    mesh.start_infrastructure().await?;
    let measured = async {
        let chain = Chain::start(dir, &mesh.layout().nats_url()).await?;
        let at_rate = chain.drive(&mesh, Load::Open { rate: options.rate }, options.duration, 0).await?;
        print_run(&format!("at {:.0}/s", options.rate), &at_rate);
        let offset = at_rate.calls.sent + 1;
        let load = Load::Closed { concurrency: options.concurrency };
        let saturated = chain.drive(&mesh, load, options.duration, offset).await?;
        print_run(&format!("{} in flight", options.concurrency), &saturated);
        chain.stop();
        anyhow::Ok(BareChain { per_mission: PER_MISSION, at_rate, saturated })
    }
    .await;
    mesh.stop().await;
    measured
}

fn print_run(what: &str, run: &Run) {
    println!(
        "  bare chain {what}: {} of {} missions through at {:.0}/s; {:.3} CPU-ms and {:.1} context switches per \
         mission (client excluded); chain ms p50 {:.2} p99 {:.2}",
        run.completed,
        run.calls.sent,
        run.missions_per_s,
        run.cpu_ms_per_mission,
        run.switches_per_mission,
        run.chain.p50_ms,
        run.chain.p99_ms
    );
}

/// The running bare chain: servers, stores, relays, consumers.
struct Chain {
    url: String,
    stop: platform::CancellationToken,
    done: Arc<Completion>,
    origin: Instant,
}

/// What the last consumer saw.
struct Completion {
    completed: AtomicU64,
    last: Mutex<Option<Instant>>,
    latencies: Mutex<Latencies>,
}

/// The stores, as the services own theirs.
#[derive(Debug, Clone, Copy)]
enum Store {
    Mission,
    Reward,
    Wallet,
    MyPage,
}

/// The streams, one per producing store.
const STREAMS: [(&str, &str); 3] =
    [("BARE_MISSION", "bare.mission"), ("BARE_REWARD", "bare.reward"), ("BARE_WALLET", "bare.wallet")];

/// The consumers: name, stream (index in [`STREAMS`]), store, and the
/// stream it publishes to.
const CONSUMERS: [(&str, usize, Store, Option<usize>); 7] = [
    ("reward-allocate", 0, Store::Reward, Some(1)),
    ("mypage-missions", 0, Store::MyPage, None),
    ("wallet-issue-reward", 1, Store::Wallet, Some(2)),
    ("mission-record-reward", 1, Store::Mission, None),
    ("mypage-rewards", 1, Store::MyPage, None),
    ("reward-track-wallet", 2, Store::Reward, None),
    ("mypage-wallet", 2, Store::MyPage, None),
];

/// The consumer whose commit completes a mission.
const LAST: &str = "mypage-wallet";

/// An event handed to a relay: its id and payload.
type Event = (String, Bytes);

impl Chain {
    async fn start(dir: &Path, nats_url: &str) -> anyhow::Result<Self> {
        let js = jetstream::new(async_nats::connect(nats_url).await.context("cannot connect to nats-server")?);
        for (name, subject) in STREAMS {
            js.get_or_create_stream(stream::Config {
                name: name.into(),
                subjects: vec![subject.into()],
                ..Default::default()
            })
            .await?;
        }
        let stores = [Store::Mission, Store::Reward, Store::Wallet, Store::MyPage]
            .map(|store| Writer::open(dir.join(format!("{store:?}.sqlite").to_lowercase())));
        let stores: Vec<Arc<Writer>> = stores.into_iter().map(|s| s.map(Arc::new)).collect::<anyhow::Result<_>>()?;
        let store = |s: Store| Arc::clone(&stores[s as usize]);
        let stop = platform::CancellationToken::new();
        // One relay per producing store, handed the events it committed.
        let relays: Vec<mpsc::UnboundedSender<Event>> = [Store::Mission, Store::Reward, Store::Wallet]
            .into_iter()
            .zip(STREAMS)
            .map(|(s, (_, subject))| {
                let (send, receive) = mpsc::unbounded_channel();
                tokio::spawn(report_failure(subject, stop.clone(), relay(js.clone(), subject, store(s), receive)));
                send
            })
            .collect();
        let origin = Instant::now();
        let done = Arc::new(Completion {
            completed: AtomicU64::new(0),
            last: Mutex::new(None),
            latencies: Mutex::new(Latencies::new()),
        });
        // Pulled and applied in batches as the services' consumers are.
        let tuning = platform::consumer::ConsumerConfig::default();
        for (name, stream, at, publishes) in CONSUMERS {
            let consumer = js
                .get_stream(STREAMS[stream].0)
                .await?
                .create_consumer(pull::Config {
                    durable_name: Some(name.into()),
                    ack_policy: jetstream::consumer::AckPolicy::Explicit,
                    ack_wait: tuning.ack_wait,
                    max_ack_pending: tuning.max_ack_pending,
                    ..Default::default()
                })
                .await?;
            let relay = publishes.map(|p| relays[p].clone());
            let last = (name == LAST).then(|| (Arc::clone(&done), origin));
            let consumer = consume(name, consumer, tuning.clone(), store(at), relay, last, stop.clone());
            tokio::spawn(report_failure(name, stop.clone(), consumer));
        }
        let endpoint = Endpoint { store: store(Store::Mission), relay: relays[0].clone() };
        let endpoint_url = serve(HealthServer::new(endpoint), stop.clone()).await?;
        let next = HealthClient::new(
            tonic::transport::Endpoint::from_shared(endpoint_url)?.tcp_nodelay(true).connect().await?,
        );
        let url = serve(HealthServer::new(Forwarder { next }), stop.clone()).await?;
        Ok(Self { url, stop, done, origin })
    }

    fn stop(&self) {
        self.stop.cancel();
    }

    /// Drives missions `offset..` for `duration`, waits until they are all
    /// through (at most 60 s), and measures.
    async fn drive(&self, mesh: &Mesh, load: Load, duration: Duration, offset: u64) -> anyhow::Result<Run> {
        *self.done.latencies.lock().unwrap_or_else(PoisonError::into_inner) = Latencies::new();
        let completed_before = self.done.completed.load(Ordering::Relaxed);
        let before = resources::snapshot(mesh);
        let started = Instant::now();
        let (url, origin) = (self.url.clone(), self.origin);
        // The client runs on a thread of its own, so its CPU can be taken out.
        let client = std::thread::spawn(move || -> anyhow::Result<(Report, f64, u64)> {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
            runtime.block_on(async move {
                let target = Target::connect(&url, 2, &[]).await?;
                let (cpu_before, switches_before) = (resources::thread_cpu_s(), resources::thread_switches());
                let call = move |i: u64, intended: Instant| {
                    let target = target.clone();
                    let service = format!("{}:{}", offset + i, intended.saturating_duration_since(origin).as_nanos());
                    async move { outcome(HealthClient::new(target.channel(i)).check(HealthCheckRequest { service }).await) }
                };
                let timeout = Duration::from_secs(10);
                let report = match load {
                    Load::Open { rate } => {
                        open_loop(&OpenLoop { rate, duration, max_in_flight: 4_096, timeout }, call).await
                    }
                    Load::Closed { concurrency } => {
                        closed_loop(&ClosedLoop { concurrency, duration, timeout }, move |i| call(i, Instant::now()))
                            .await
                    }
                };
                let switches = resources::thread_switches().saturating_sub(switches_before);
                Ok((report, resources::thread_cpu_s() - cpu_before, switches))
            })
        });
        let (calls, client_cpu_s, client_switches) = tokio::task::spawn_blocking(move || client.join())
            .await?
            .map_err(|_| anyhow::anyhow!("the bare chain's client panicked"))??;
        let deadline = Instant::now() + Duration::from_secs(60);
        let completed = loop {
            let completed = self.done.completed.load(Ordering::Relaxed) - completed_before;
            if completed >= calls.ok || Instant::now() > deadline {
                break completed;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        };
        let after = resources::snapshot(mesh);
        let spent = resources::spent(&before, &after);
        let switches = spent.values().map(|u| u.context_switches).sum::<u64>().saturating_sub(client_switches);
        let spent: f64 = spent.values().map(|u| u.cpu_s).sum();
        let last = self.done.last.lock().unwrap_or_else(PoisonError::into_inner).unwrap_or_else(Instant::now);
        #[allow(clippy::cast_precision_loss)] // mission counts fit an f64 exactly
        let (missions_per_s, cpu_ms_per_mission, switches_per_mission) = (
            completed as f64 / last.saturating_duration_since(started).as_secs_f64().max(1e-9),
            1_000.0 * (spent - client_cpu_s).max(0.0) / (completed as f64).max(1.0),
            switches as f64 / (completed as f64).max(1.0),
        );
        let chain = self.done.latencies.lock().unwrap_or_else(PoisonError::into_inner).summary();
        Ok(Run { calls, completed, missions_per_s, cpu_ms_per_mission, client_cpu_s, switches_per_mission, chain })
    }
}

/// Runs `task`, and says so if it fails before the chain stops: the run
/// then shows missions that never completed.
async fn report_failure(
    name: &'static str,
    stop: platform::CancellationToken,
    task: impl Future<Output = anyhow::Result<()>>,
) {
    if let Err(error) = task.await
        && !stop.is_cancelled()
    {
        eprintln!("  bare chain: {name} stopped: {error:#}");
    }
}

/// Serves `service` on a free loopback port until `stop`; returns its URL.
async fn serve<S>(service: HealthServer<S>, stop: platform::CancellationToken) -> anyhow::Result<String>
where
    S: Health,
{
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}", listener.local_addr()?);
    tokio::spawn(tonic::transport::Server::builder().add_service(service).serve_with_incoming_shutdown(
        tonic::transport::server::TcpIncoming::from(listener).with_nodelay(Some(true)),
        stop.cancelled_owned(),
    ));
    Ok(url)
}

/// The gateway's place: passes each call on.
struct Forwarder {
    next: HealthClient<tonic::transport::Channel>,
}

#[tonic::async_trait]
impl Health for Forwarder {
    async fn check(&self, request: Request<HealthCheckRequest>) -> Result<Response<HealthCheckResponse>, Status> {
        self.next.clone().check(request.into_inner()).await
    }

    type WatchStream = futures::stream::Empty<Result<HealthCheckResponse, Status>>;

    async fn watch(&self, _: Request<HealthCheckRequest>) -> Result<Response<Self::WatchStream>, Status> {
        Err(Status::unimplemented("the bare chain has no watch"))
    }
}

/// Mission's place: commits the mission and its outbox row, hands the
/// event to the relay, answers.
struct Endpoint {
    store: Arc<Writer>,
    relay: mpsc::UnboundedSender<Event>,
}

#[tonic::async_trait]
impl Health for Endpoint {
    async fn check(&self, request: Request<HealthCheckRequest>) -> Result<Response<HealthCheckResponse>, Status> {
        let service = request.into_inner().service;
        let (number, started) = service
            .split_once(':')
            .and_then(|(n, t)| Some((n.parse::<u64>().ok()?, t.parse::<u64>().ok()?)))
            .ok_or_else(|| Status::invalid_argument(format!("expected NUMBER:NANOS, got {service:?}")))?;
        let id = format!("m{number:012}");
        self.store
            .write(format!(
                "INSERT INTO rows (id, at) VALUES ('{id}', {started}); INSERT INTO outbox (id, published) VALUES ('{id}', 0);"
            ))
            .await
            .map_err(Status::internal)?;
        let _ = self.relay.send((id, payload(number, started)));
        Ok(Response::new(HealthCheckResponse {
            status: tonic_health::pb::health_check_response::ServingStatus::Serving.into(),
        }))
    }

    type WatchStream = futures::stream::Empty<Result<HealthCheckResponse, Status>>;

    async fn watch(&self, _: Request<HealthCheckRequest>) -> Result<Response<Self::WatchStream>, Status> {
        Err(Status::unimplemented("the bare chain has no watch"))
    }
}

/// An event's payload, the size of a MissionAchieved: the mission's number
/// and when its call started (ns since the chain's origin), then padding.
fn payload(number: u64, started_ns: u64) -> Bytes {
    let mut bytes = vec![0u8; 160];
    bytes[..8].copy_from_slice(&number.to_le_bytes());
    bytes[8..16].copy_from_slice(&started_ns.to_le_bytes());
    bytes.into()
}

fn read_payload(bytes: &[u8]) -> Option<(u64, u64)> {
    let number = u64::from_le_bytes(bytes.get(..8)?.try_into().ok()?);
    let started = u64::from_le_bytes(bytes.get(8..16)?.try_into().ok()?);
    Some((number, started))
}

/// Publishes what its store committed, in batches whose PubAcks are awaited
/// together, then marks the batch published on the store's next commit.
async fn relay(
    js: jetstream::Context,
    subject: &'static str,
    store: Arc<Writer>,
    mut events: mpsc::UnboundedReceiver<Event>,
) -> anyhow::Result<()> {
    while let Some(first) = events.recv().await {
        let mut batch = vec![first];
        while batch.len() < 256 {
            match events.try_recv() {
                Ok(event) => batch.push(event),
                Err(_) => break,
            }
        }
        let mut acks = Vec::with_capacity(batch.len());
        for (id, payload) in &batch {
            let mut headers = HeaderMap::new();
            headers.insert(platform::events::MSG_ID_HEADER, id.as_str());
            acks.push(js.publish_with_headers(subject, headers, payload.clone()).await?);
        }
        for ack in acks {
            ack.await?;
        }
        let ids = batch.iter().map(|(id, _)| format!("'{id}'")).collect::<Vec<_>>().join(",");
        store.ride(format!("UPDATE outbox SET published = 1 WHERE id IN ({ids})"));
    }
    Ok(())
}

/// One durable consumer: each batch that arrived together in one write
/// (inbox row and effect per event, and the outbox row when it publishes),
/// then the events to the relay, then the acks.
async fn consume(
    name: &'static str,
    consumer: jetstream::consumer::Consumer<pull::Config>,
    tuning: platform::consumer::ConsumerConfig,
    store: Arc<Writer>,
    relay: Option<mpsc::UnboundedSender<Event>>,
    last: Option<(Arc<Completion>, Instant)>,
    stop: platform::CancellationToken,
) -> anyhow::Result<()> {
    let messages =
        consumer.stream().max_messages_per_batch(tuning.batch).heartbeat(Duration::from_secs(5)).messages().await?;
    let mut batches = messages.ready_chunks(tuning.apply_batch.clamp(1, tuning.batch.max(1)));
    loop {
        let batch = tokio::select! {
            () = stop.cancelled() => return Ok(()),
            batch = batches.next() => match batch { Some(batch) => batch, None => return Ok(()) },
        };
        let messages: Vec<jetstream::Message> = batch.into_iter().filter_map(Result::ok).collect();
        let mut sql = String::new();
        let mut events = Vec::new();
        let mut starts = Vec::new();
        for message in &messages {
            let Some((number, started)) = read_payload(&message.payload) else { continue };
            let id = format!("{name}-{number:012}");
            let _ = write!(
                sql,
                "INSERT INTO inbox (event_id) VALUES ('{id}'); INSERT INTO rows (id, at) VALUES ('{id}', {started});"
            );
            if relay.is_some() {
                let _ = write!(sql, "INSERT INTO outbox (id, published) VALUES ('{id}', 0);");
                events.push((id, message.payload.clone()));
            }
            starts.push(started);
        }
        if !sql.is_empty() {
            store.write(sql).await.map_err(|e| anyhow::anyhow!("{name}: {e}"))?;
        }
        if let Some(relay) = &relay {
            for event in events {
                let _ = relay.send(event);
            }
        }
        for message in &messages {
            message.ack().await.map_err(|e| anyhow::anyhow!("{name}: ack failed: {e}"))?;
        }
        if let Some((done, origin)) = &last {
            let now = Instant::now();
            let mut latencies = done.latencies.lock().unwrap_or_else(PoisonError::into_inner);
            for started in &starts {
                latencies.record(now.saturating_duration_since(*origin + Duration::from_nanos(*started)));
            }
            drop(latencies);
            *done.last.lock().unwrap_or_else(PoisonError::into_inner) = Some(now);
            done.completed.fetch_add(starts.len() as u64, Ordering::Relaxed);
        }
    }
}

/// A store's one writer thread: the writes that queued while it was busy
/// commit together in one transaction.
struct Writer {
    queue: mpsc::UnboundedSender<(String, oneshot::Sender<Result<(), String>>)>,
    /// Writes carried by the next transaction without asking for one: the
    /// relays' marks. Under a steady load the next commit always comes; the
    /// services also commit them after 100 ms of quiet, which a run never has.
    riders: Arc<Mutex<Vec<String>>>,
}

impl Writer {
    fn open(path: PathBuf) -> anyhow::Result<Self> {
        use diesel::Connection as _;
        use diesel::connection::SimpleConnection as _;
        let _ = std::fs::remove_file(&path);
        let mut conn = diesel::SqliteConnection::establish(&path.display().to_string())?;
        conn.batch_execute(
            "PRAGMA busy_timeout = 10000; PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; \
             PRAGMA temp_store = MEMORY; PRAGMA cache_size = -8192; \
             CREATE TABLE rows (id TEXT PRIMARY KEY, at BIGINT NOT NULL); \
             CREATE TABLE inbox (event_id TEXT PRIMARY KEY); \
             CREATE TABLE outbox (id TEXT PRIMARY KEY, published INTEGER NOT NULL);",
        )?;
        let (queue, mut writes) = mpsc::unbounded_channel::<(String, oneshot::Sender<Result<(), String>>)>();
        let riders = Arc::new(Mutex::new(Vec::<String>::new()));
        let carried = Arc::clone(&riders);
        std::thread::spawn(move || {
            while let Some(first) = writes.blocking_recv() {
                let mut group = vec![first];
                while group.len() < 512 {
                    match writes.try_recv() {
                        Ok(write) => group.push(write),
                        Err(_) => break,
                    }
                }
                let riding = std::mem::take(&mut *carried.lock().unwrap_or_else(PoisonError::into_inner));
                let result = conn.batch_execute("BEGIN IMMEDIATE").and_then(|()| {
                    for sql in &riding {
                        conn.batch_execute(sql)?;
                    }
                    for (sql, _) in &group {
                        conn.batch_execute(sql)?;
                    }
                    conn.batch_execute("COMMIT")
                });
                if result.is_err() {
                    let _ = conn.batch_execute("ROLLBACK");
                }
                let answer = result.map_err(|e| e.to_string());
                for (_, done) in group {
                    let _ = done.send(answer.clone());
                }
            }
        });
        Ok(Self { queue, riders })
    }

    /// Queues `sql` for the next transaction, without waiting for it.
    fn ride(&self, sql: String) {
        self.riders.lock().unwrap_or_else(PoisonError::into_inner).push(sql);
    }

    async fn write(&self, sql: String) -> Result<(), String> {
        let (done, answer) = oneshot::channel();
        self.queue.send((sql, done)).map_err(|_| "the writer stopped".to_owned())?;
        answer.await.map_err(|_| "the writer stopped".to_owned())?
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bare_chain_does_what_the_real_chain_does_per_mission() {
        let transactions = 1 + CONSUMERS.len();
        assert_eq!(PER_MISSION.transactions as usize, transactions);
        assert_eq!(PER_MISSION.consumes as usize, CONSUMERS.len());
        assert_eq!(PER_MISSION.publishes as usize, CONSUMERS.iter().filter(|c| c.3.is_some()).count() + 1);
        assert!(CONSUMERS.iter().any(|c| c.0 == LAST));
    }

    #[test]
    fn a_payload_carries_its_mission_and_start() {
        assert_eq!(read_payload(&payload(42, 7_000)), Some((42, 7_000)));
        assert_eq!(read_payload(b"short"), None);
    }
}
