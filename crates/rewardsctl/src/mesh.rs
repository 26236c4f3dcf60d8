//! The whole mesh as local OS processes: which processes there are (every
//! service, some in several replicas, and the gateway in front), on which
//! ports, with which environment; starting them supervised, waiting until
//! they serve, and stopping them.
//!
//! Replicas of a service share its SQLite file (WAL, a busy timeout and
//! `BEGIN IMMEDIATE` make that safe across processes) and its durable
//! consumers; each has its own gRPC and metrics port.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use dev_issuer::DevIssuer;
use platform::CancellationToken;
use tokio::task::JoinSet;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};

use localinfra::nats::Node;
use localinfra::postgres::{Binaries, Instance, Owner};

use crate::stores::Stores;
use crate::supervisor::{ProcessHandle, ProcessSpec, supervised};

/// One service of the mesh as the runner starts it.
#[derive(Debug)]
pub struct Service {
    /// Its short name, which is also its binary's.
    pub name: &'static str,
    /// The gRPC port of its first replica on the well-known layout.
    pub port: u16,
    /// The health entry that turns SERVING when the service is ready.
    pub health: &'static str,
    /// The variable that tells the gateway where it is.
    pub url_variable: &'static str,
}

/// Every service, the gateway last, as the catalogue lists them.
pub const SERVICES: [Service; api::catalogue::SERVICES.len() + 1] = {
    use api::catalogue::{GATEWAY, SERVICES as BEHIND};
    const LAST: Service = Service { name: GATEWAY.name, port: GATEWAY.port, health: GATEWAY.health, url_variable: "" };
    let mut all = [LAST; BEHIND.len() + 1];
    let mut i = 0;
    while i < BEHIND.len() {
        let s = &BEHIND[i];
        all[i] = Service { name: s.name, port: s.port, health: s.health(), url_variable: s.url_variable };
        i += 1;
    }
    all
};

/// The name of the broker's process when it runs alone.
pub const NATS: &str = "nats-server";

/// The name of the runner's PostgreSQL process.
pub const POSTGRES: &str = "postgres";

/// Whether the process called `name` is a node of the broker.
pub fn is_broker(name: &str) -> bool {
    name == NATS || name.starts_with("nats-")
}

/// At most this many replicas of one service: the well-known layout puts
/// replica `i` at `port + 100 * i`, and the metrics ports 1000 above.
pub const MAX_REPLICAS: usize = 9;

fn service(name: &str) -> Option<&'static Service> {
    SERVICES.iter().find(|s| s.name == name)
}

/// How many processes of each service run; one unless said otherwise.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Replicas(BTreeMap<&'static str, usize>);

impl Replicas {
    /// Parses `SERVICE=N,…`, e.g. `reward=2,wallet=2`.
    ///
    /// # Errors
    /// On an unknown service, the gateway, or a count outside 1..=9.
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut replicas = Self::default();
        for pair in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (name, count) = pair.split_once('=').ok_or_else(|| format!("{pair:?} is not SERVICE=N"))?;
            let count: usize = count.trim().parse().map_err(|_| format!("{pair:?}: the count is not a number"))?;
            replicas.set(name.trim(), count)?;
        }
        Ok(replicas)
    }

    /// Runs `count` replicas of `name`.
    ///
    /// # Errors
    /// As [`Replicas::parse`].
    pub fn set(&mut self, name: &str, count: usize) -> Result<(), String> {
        let service = service(name).ok_or_else(|| {
            let known: Vec<&str> = SERVICES.iter().map(|s| s.name).collect();
            format!("no service called {name:?} (one of {})", known.join(", "))
        })?;
        if !(1..=MAX_REPLICAS).contains(&count) {
            return Err(format!("{name}={count}: a service runs 1 to {MAX_REPLICAS} replicas"));
        }
        self.0.insert(service.name, count);
        Ok(())
    }

    /// How many replicas of `name` run.
    pub fn of(&self, name: &str) -> usize {
        self.0.get(name).copied().unwrap_or(1)
    }

    /// `count` replicas of every service and of the gateway.
    pub fn everywhere(count: usize) -> Self {
        Self(SERVICES.iter().map(|s| (s.name, count.clamp(1, MAX_REPLICAS))).collect())
    }

    /// These counts, with `other`'s wherever it names a service.
    #[must_use]
    pub fn overlay(mut self, other: &Self) -> Self {
        self.0.extend(other.0.iter().map(|(name, count)| (*name, *count)));
        self
    }
}

/// The shape of the infrastructure under the services.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Shape {
    /// One nats-server and a SQLite file per service: the embedded defaults.
    #[default]
    Single,
    /// Production on one machine: three nats-server processes clustered with
    /// JetStream (streams replicated three times), a PostgreSQL instance of
    /// the runner's own with a database per service, and two replicas of
    /// every service and of the gateway unless said otherwise.
    Cluster,
}

impl Shape {
    /// The nats-server processes of the shape.
    pub fn nats_nodes(self) -> usize {
        match self {
            Self::Single => 1,
            Self::Cluster => 3,
        }
    }

    /// The replica count of every stream and durable consumer.
    pub fn stream_replicas(self) -> usize {
        self.nats_nodes()
    }

    /// The replicas the shape runs, with `asked` where it says otherwise.
    pub fn replicas(self, asked: &Replicas) -> Replicas {
        match self {
            Self::Single => asked.clone(),
            Self::Cluster => Replicas::everywhere(2).overlay(asked),
        }
    }
}

/// The ports of one nats-server process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NatsPorts {
    pub client: u16,
    pub monitor: u16,
    /// Its routes' port; unused when it runs alone.
    pub cluster: u16,
}

/// One process of the mesh: a replica of a service, or the gateway.
#[derive(Debug, Clone)]
pub struct Member {
    pub service: &'static Service,
    /// 1-based.
    pub replica: usize,
    /// `reward` when the service runs once, `reward-1`, `reward-2`, … when replicated.
    pub name: String,
    pub grpc_port: u16,
    pub metrics_port: u16,
}

impl Member {
    /// Its gRPC URL.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.grpc_port)
    }
}

/// Every process of the mesh and its ports.
#[derive(Debug, Clone)]
pub struct Layout {
    pub shape: Shape,
    /// One node, or the cluster's.
    pub nats: Vec<NatsPorts>,
    /// The runner's own PostgreSQL, in the cluster shape.
    pub postgres_port: Option<u16>,
    pub members: Vec<Member>,
}

impl Layout {
    /// The ports `rewardsctl up` documents: the gateway on 8080, mission on
    /// 50051 and so on; replica `i` (from 2) of a service 100 above the
    /// previous one; every metrics port 1000 above its gRPC port; nats-server
    /// on 14222 (monitoring 18222), the cluster's nodes on 14222–14224
    /// (routes 16222–16224, monitoring 18222–18224); PostgreSQL on 15432.
    pub fn well_known(shape: Shape, replicas: &Replicas) -> Self {
        let mut ports = |service: &Service, replica: usize| {
            let offset = u16::try_from(100 * (replica - 1)).unwrap_or_default();
            (service.port + offset, service.port + offset + 1000)
        };
        let nats = (0..shape.nats_nodes())
            .map(|n| {
                let n = u16::try_from(n).unwrap_or_default();
                NatsPorts { client: 14222 + n, monitor: 18222 + n, cluster: 16222 + n }
            })
            .collect();
        Self {
            shape,
            nats,
            postgres_port: (shape == Shape::Cluster).then_some(15432),
            members: members(&shape.replicas(replicas), &mut ports),
        }
    }

    /// Ports that are free now, from the runner's range (see
    /// [`localinfra::ports`]), so that a killed process gets its port back.
    ///
    /// # Errors
    /// When no free port is found.
    pub fn free(shape: Shape, replicas: &Replicas) -> anyhow::Result<Self> {
        let picker = &localinfra::ports::RUNNER;
        let mut nats = Vec::new();
        for _ in 0..shape.nats_nodes() {
            nats.push(NatsPorts { client: picker.take()?, monitor: picker.take()?, cluster: picker.take()? });
        }
        let postgres_port = if shape == Shape::Cluster { Some(picker.take()?) } else { None };
        let mut failed = None;
        let mut ports = |_: &Service, _: usize| match (picker.take(), picker.take()) {
            (Ok(grpc), Ok(metrics)) => (grpc, metrics),
            (Err(error), _) | (_, Err(error)) => {
                failed = Some(error);
                (0, 0)
            }
        };
        let members = members(&shape.replicas(replicas), &mut ports);
        if let Some(error) = failed {
            return Err(error);
        }
        Ok(Self { shape, nats, postgres_port, members })
    }

    /// The replicas of `service`.
    pub fn members_of<'a>(&'a self, service: &'a str) -> impl Iterator<Item = &'a Member> + 'a {
        self.members.iter().filter(move |m| m.service.name == service)
    }

    /// The comma-separated URLs of `service`'s replicas.
    pub fn urls(&self, service: &str) -> String {
        self.members_of(service).map(Member::url).collect::<Vec<_>>().join(",")
    }

    /// The first gateway's URL: the entry point for a tool that takes one.
    /// [`Layout::urls`]`("gateway")` lists every replica of the gateway.
    pub fn gateway_url(&self) -> String {
        self.members_of("gateway").next().map(Member::url).unwrap_or_default()
    }

    /// The broker's URLs, comma-separated: every node of a cluster.
    pub fn nats_url(&self) -> String {
        self.nats.iter().map(|n| format!("nats://127.0.0.1:{}", n.client)).collect::<Vec<_>>().join(",")
    }

    /// The broker's URLs, one per node, for a client of the runner's own.
    pub fn nats_urls(&self) -> Vec<String> {
        self.nats_url().split(',').map(str::to_owned).collect()
    }

    /// The names of the nats-server processes: `nats-server` alone, `nats-1`… in a cluster.
    pub fn nats_names(&self) -> Vec<String> {
        if self.nats.len() == 1 {
            return vec![NATS.to_owned()];
        }
        (1..=self.nats.len()).map(|n| format!("nats-{n}")).collect()
    }
}

fn members(replicas: &Replicas, ports: &mut impl FnMut(&Service, usize) -> (u16, u16)) -> Vec<Member> {
    let mut members = Vec::new();
    for service in &SERVICES {
        let count = replicas.of(service.name);
        for replica in 1..=count {
            let name = if count == 1 { service.name.to_owned() } else { format!("{}-{replica}", service.name) };
            let (grpc_port, metrics_port) = ports(service, replica);
            members.push(Member { service, replica, name, grpc_port, metrics_port });
        }
    }
    members
}

/// How to run the mesh.
#[derive(Debug, Clone)]
pub struct MeshConfig {
    /// Stores (`data/`), logs (`logs/`) and the broker's store (`nats/`) go here.
    pub run_dir: PathBuf,
    /// Where the service binaries are (next to `rewardsctl`).
    pub bin_dir: PathBuf,
    /// The nats-server binary; looked up when `None`.
    pub nats_server: Option<PathBuf>,
    pub layout: Layout,
    /// Extra environment: (service name, or `*` for every service; variable; value).
    pub env: Vec<(String, String, String)>,
    /// Whether restarts are announced on stderr (they are always logged).
    pub announce: bool,
}

/// The mesh's processes, supervised. Dropping it kills them all.
#[derive(Debug)]
pub struct Mesh {
    config: MeshConfig,
    /// The development identity provider the gateway and every service
    /// trust (its key pair and JWKS under `auth/` of the run directory).
    identity: DevIssuer,
    /// Stops the gateway and the services, which drain first…
    stop: CancellationToken,
    tasks: JoinSet<()>,
    /// …then the broker and the database, which they still need to drain
    /// (ack, flush the outbox).
    stop_broker: CancellationToken,
    broker: JoinSet<()>,
    processes: BTreeMap<String, ProcessHandle>,
}

impl Mesh {
    /// Prepares the run directory and checks that every binary is there.
    ///
    /// # Errors
    /// When a directory cannot be created or a binary is missing.
    pub fn new(mut config: MeshConfig) -> anyhow::Result<Self> {
        for dir in ["data", "logs", "nats", "auth"] {
            let dir = config.run_dir.join(dir);
            std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
        }
        config.run_dir = config.run_dir.canonicalize()?;
        let mut missing = Vec::new();
        for service in SERVICES.iter().filter(|s| config.layout.members_of(s.name).next().is_some()) {
            let program = config.bin_dir.join(service.name);
            if !program.exists() {
                missing.push(program.display().to_string());
            }
        }
        if !missing.is_empty() {
            bail!(
                "missing service binaries: {}; build them first (`cargo build --workspace --bins`, which `just up` \
                 and `just chaos` do)",
                missing.join(", ")
            );
        }
        if config.nats_server.is_none() {
            config.nats_server = Some(
                find_nats_server().context("nats-server not found: run `./dev up` (it installs it into .tools/)")?,
            );
        }
        let identity = identity(&config.run_dir)?;
        Ok(Self {
            config,
            identity,
            stop: CancellationToken::new(),
            tasks: JoinSet::new(),
            stop_broker: CancellationToken::new(),
            broker: JoinSet::new(),
            processes: BTreeMap::new(),
        })
    }

    /// The identity provider whose tokens the mesh accepts.
    pub fn identity(&self) -> &DevIssuer {
        &self.identity
    }

    /// The processes and their ports.
    pub fn layout(&self) -> &Layout {
        &self.config.layout
    }

    /// The run directory (absolute).
    pub fn run_dir(&self) -> &Path {
        &self.config.run_dir
    }

    /// The SQLite file every replica of `service` shares (single shape).
    pub fn database(&self, service: &str) -> PathBuf {
        self.config.run_dir.join("data").join(format!("{service}.sqlite"))
    }

    /// The runner's PostgreSQL instance, in the cluster shape.
    pub fn postgres(&self) -> Option<Instance> {
        let port = self.config.layout.postgres_port?;
        Some(Instance { dir: self.config.run_dir.join("postgres"), port })
    }

    /// Where every replica of `service` keeps its state: its SQLite file, or
    /// its database on the runner's PostgreSQL.
    pub fn database_url(&self, service: &str) -> String {
        match self.postgres() {
            Some(postgres) => postgres.url(service),
            None => self.database(service).display().to_string(),
        }
    }

    /// The stores of every service, as the checks read them.
    pub fn stores(&self) -> Stores {
        match self.postgres() {
            Some(postgres) => Stores::postgres(move |service| postgres.url(service)),
            None => Stores::sqlite(self.config.run_dir.join("data")),
        }
    }

    /// Starts what the services stand on, supervised, and waits until it
    /// serves: nats-server (alone, or the cluster's nodes, until they have
    /// a meta leader and are current) and, in the cluster shape, PostgreSQL
    /// with a database per service.
    ///
    /// # Errors
    /// When a part does not come up in time.
    pub async fn start_infrastructure(&mut self) -> anyhow::Result<()> {
        let program = self.config.nats_server.clone().context("nats-server not found")?;
        let nodes = self.nats_nodes();
        for node in &nodes {
            let args =
                if nodes.len() == 1 { node.standalone_args() } else { node.cluster_args("game-rewards", &nodes) };
            let spec = ProcessSpec {
                name: node.name.clone(),
                program: program.clone(),
                args,
                env: nats_env(),
                log: self.config.run_dir.join("logs").join(format!("{}.log", node.name)),
                announce: self.config.announce,
                owner: None,
            };
            self.spawn_infrastructure(spec);
        }
        for node in &nodes {
            wait_for_port(node.client_port, Duration::from_secs(20)).await.context("nats-server did not start")?;
        }
        if nodes.len() > 1 {
            self.wait_for_cluster(Duration::from_secs(60)).await?;
        }
        if let Some(postgres) = self.postgres() {
            self.start_postgres(&postgres).await?;
        }
        Ok(())
    }

    async fn start_postgres(&mut self, postgres: &Instance) -> anyhow::Result<()> {
        let binaries = Binaries::find().context(Binaries::MISSING)?;
        let owner = Owner::needed()?;
        let (instance, init_binaries) = (postgres.clone(), binaries.clone());
        tokio::task::spawn_blocking(move || instance.init(&init_binaries, owner)).await??;
        let spec = ProcessSpec {
            name: POSTGRES.into(),
            program: binaries.postgres,
            args: postgres.server_args(),
            env: Vec::new(),
            log: self.config.run_dir.join("logs/postgres.log"),
            announce: self.config.announce,
            owner,
        };
        self.spawn_infrastructure(spec);
        postgres.wait_ready(Duration::from_secs(60)).await?;
        let services: Vec<&str> = SERVICES.iter().map(|s| s.name).filter(|name| *name != "gateway").collect();
        postgres.create_databases(&services).await
    }

    fn spawn_infrastructure(&mut self, spec: ProcessSpec) {
        let name = spec.name.clone();
        let (handle, supervision) = supervised(spec, self.stop_broker.clone());
        self.broker.spawn(supervision);
        self.processes.insert(name, handle);
    }

    /// The broker's nodes, their stores under the run directory.
    pub fn nats_nodes(&self) -> Vec<Node> {
        let layout = &self.config.layout;
        let single = layout.nats.len() == 1;
        layout
            .nats
            .iter()
            .zip(layout.nats_names())
            .map(|(ports, name)| Node {
                store: if single {
                    self.config.run_dir.join("nats")
                } else {
                    self.config.run_dir.join("nats").join(&name)
                },
                name,
                client_port: ports.client,
                monitor_port: ports.monitor,
                cluster_port: ports.cluster,
            })
            .collect()
    }

    /// Waits until the cluster has a meta leader and every node is current.
    ///
    /// # Errors
    /// When that does not happen within `within`.
    pub async fn wait_for_cluster(&self, within: Duration) -> anyhow::Result<()> {
        let nodes = self.nats_nodes();
        let deadline = Instant::now() + within;
        loop {
            if localinfra::nats::is_cluster_healthy(&nodes).await {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!("the NATS cluster has no healthy meta leader after {}s", within.as_secs());
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// The index (in [`Layout::nats`]) of the JetStream meta leader, or of
    /// `stream`'s leader, as the live nodes name it.
    pub async fn nats_leader(&self, stream: Option<&str>) -> Option<usize> {
        localinfra::nats::leader_of(&self.nats_nodes(), stream).await
    }

    /// Starts every member `which` selects that is not running yet.
    pub fn start_members(&mut self, which: impl Fn(&Member) -> bool) {
        let members: Vec<Member> = self.config.layout.members.iter().filter(|m| which(m)).cloned().collect();
        for member in members {
            if !self.processes.contains_key(&member.name) {
                let spec = self.member_process(&member);
                self.spawn(spec);
            }
        }
    }

    fn spawn(&mut self, spec: ProcessSpec) {
        let name = spec.name.clone();
        let (handle, supervision) = supervised(spec, self.stop.clone());
        self.tasks.spawn(supervision);
        self.processes.insert(name, handle);
    }

    /// Every process started so far, nats-server included.
    pub fn processes(&self) -> impl Iterator<Item = &ProcessHandle> {
        self.processes.values()
    }

    /// The process called `name`.
    pub fn process(&self, name: &str) -> Option<&ProcessHandle> {
        self.processes.get(name)
    }

    fn member_process(&self, member: &Member) -> ProcessSpec {
        let layout = &self.config.layout;
        let mut env = vec![
            ("NATS_URL".to_owned(), layout.nats_url()),
            ("RUST_LOG".to_owned(), std::env::var("RUST_LOG").unwrap_or_else(|_| "info".into())),
            ("METRICS_ADDR".to_owned(), format!("127.0.0.1:{}", member.metrics_port)),
        ];
        // The gateway and every service verify tokens with the same JWKS.
        env.extend(self.identity.env());
        let name = member.service.name;
        if name == "gateway" {
            env.push(("GATEWAY_ADDR".into(), format!("127.0.0.1:{}", member.grpc_port)));
            for service in SERVICES.iter().filter(|s| s.name != "gateway") {
                env.push((service.url_variable.into(), layout.urls(service.name)));
            }
        } else {
            env.push(("GRPC_ADDR".into(), format!("127.0.0.1:{}", member.grpc_port)));
            env.push(("DATABASE_URL".into(), self.database_url(name)));
            env.push(("STREAM_REPLICAS".into(), self.config.layout.shape.stream_replicas().to_string()));
            // Beyond the gateway's 1 s health round: a replica being replaced
            // leaves the gateway's balance before it stops taking calls.
            env.push(("DRAIN_DELAY_MS".into(), "1500".into()));
        }
        if name == "wallet" {
            // The wallet's gift client takes one URL: with several gift
            // replicas, the wallet replicas are spread over them.
            let gifts: Vec<String> = layout.members_of("gift").map(Member::url).collect();
            if let Some(gift) = gifts.get((member.replica - 1) % gifts.len().max(1)) {
                env.push(("GIFT_URL".into(), gift.clone()));
            }
        }
        for (service, variable, value) in &self.config.env {
            if service == "*" || service == name {
                env.retain(|(v, _)| v != variable);
                env.push((variable.clone(), value.clone()));
            }
        }
        ProcessSpec {
            name: member.name.clone(),
            program: self.config.bin_dir.join(name),
            args: Vec::new(),
            env,
            log: self.config.run_dir.join("logs").join(format!("{}.log", member.name)),
            announce: self.config.announce,
            owner: None,
        }
    }

    /// Waits until every started member reports SERVING, printing who is
    /// still awaited every few seconds when `report` is set.
    ///
    /// # Errors
    /// When some are not SERVING within `within`.
    pub async fn wait_until_serving(&self, within: Duration, report: bool) -> anyhow::Result<()> {
        let deadline = Instant::now() + within;
        let mut waiting: Vec<&Member> =
            self.config.layout.members.iter().filter(|m| self.processes.contains_key(&m.name)).collect();
        let mut last_report = Instant::now();
        loop {
            let mut still = Vec::new();
            for member in waiting {
                if !is_serving(member).await {
                    still.push(member);
                }
            }
            waiting = still;
            if waiting.is_empty() {
                return Ok(());
            }
            let names = || waiting.iter().map(|m| m.name.as_str()).collect::<Vec<_>>().join(", ");
            if Instant::now() > deadline {
                bail!(
                    "not SERVING after {}s: {} (see the logs in {})",
                    within.as_secs(),
                    names(),
                    self.config.run_dir.join("logs").display()
                );
            }
            if report && last_report.elapsed() > Duration::from_secs(5) {
                println!("[runner] waiting for {}…", names());
                last_report = Instant::now();
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Stops every process (SIGTERM, then SIGKILL after the grace period)
    /// and waits until they are gone: the gateway and the services first,
    /// so that they drain against a live broker, then nats-server.
    pub async fn stop(mut self) {
        self.stop.cancel();
        while self.tasks.join_next().await.is_some() {}
        self.stop_broker.cancel();
        while self.broker.join_next().await.is_some() {}
    }
}

impl Drop for Mesh {
    fn drop(&mut self) {
        // Aborting the supervisors drops their children, which kills them.
        self.stop.cancel();
        self.stop_broker.cancel();
        self.tasks.abort_all();
        self.broker.abort_all();
    }
}

/// The development identity provider of `run_dir`: its key pair and JWKS
/// in `run_dir/auth`, made on first use and reused after, so that tokens
/// printed by `rewardsctl token` stay valid across restarts.
///
/// # Errors
/// When the directory cannot be written or holds an unusable key.
pub fn identity(run_dir: &Path) -> anyhow::Result<DevIssuer> {
    DevIssuer::create_or_load(&run_dir.join("auth"))
}

/// The environment of a nats-server the runner starts: one Go processor
/// (`GOMAXPROCS=1`) unless the caller's environment sets its own. Go's
/// scheduler keeps idle processors spinning for work before they sleep; on
/// a machine the broker shares with the services it woke a thread for
/// almost every message, and one processor still carries several thousand
/// events a second. Measured with `rewardsctl bench chain --rate 250`:
/// nats-server 1.03 → 0.81 CPU-ms per mission, the chain's latency
/// unchanged (`docs/performance.md`, section 14).
fn nats_env() -> Vec<(String, String)> {
    match std::env::var_os("GOMAXPROCS") {
        Some(_) => Vec::new(),
        None => vec![("GOMAXPROCS".to_owned(), "1".to_owned())],
    }
}

/// Finds nats-server: `$NATS_SERVER_BIN`, the project's `.tools/bin`, then `PATH`.
pub fn find_nats_server() -> Option<PathBuf> {
    localinfra::nats::find_server(Path::new("."))
}

async fn wait_for_port(port: u16, within: Duration) -> anyhow::Result<()> {
    let deadline = Instant::now() + within;
    while tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_err() {
        if Instant::now() > deadline {
            bail!("nothing listens on port {port} after {}s", within.as_secs());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Ok(())
}

/// The member's metrics (Prometheus text), or `None` when it does not answer.
pub async fn scrape(member: &Member) -> Option<String> {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let read = async {
        let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", member.metrics_port)).await.ok()?;
        stream.write_all(b"GET /metrics HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").await.ok()?;
        let mut response = String::new();
        stream.read_to_string(&mut response).await.ok()?;
        let (head, body) = response.split_once("\r\n\r\n")?;
        (head.split_whitespace().nth(1) == Some("200")).then(|| body.to_owned())
    };
    tokio::time::timeout(Duration::from_secs(2), read).await.ok().flatten()
}

/// Sums the samples of `metric` whose labels include every one of `labels`
/// (`name="value"`), in Prometheus text.
pub fn sum_metric(text: &str, metric: &str, labels: &[&str]) -> f64 {
    text.lines()
        .filter(|line| line.strip_prefix(metric).is_some_and(|rest| rest.starts_with('{') || rest.starts_with(' ')))
        .filter(|line| labels.iter().all(|label| line.contains(label)))
        .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// Whether the member answers its health check with SERVING.
pub async fn is_serving(member: &Member) -> bool {
    let Ok(endpoint) = tonic::transport::Endpoint::from_shared(member.url()) else {
        return false;
    };
    let Ok(channel) = endpoint.connect_timeout(Duration::from_millis(500)).connect().await else {
        return false;
    };
    let mut request = tonic::Request::new(HealthCheckRequest { service: member.service.health.to_owned() });
    request.set_timeout(Duration::from_secs(2));
    matches!(
        HealthClient::new(channel).check(request).await.map(|r| r.into_inner().status()),
        Ok(ServingStatus::Serving)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metric_samples_are_summed_by_labels() {
        let text = "# TYPE rewards_consumer_events counter\n\
            rewards_consumer_events_total{consumer=\"reward-allocate\",outcome=\"duplicate\"} 3\n\
            rewards_consumer_events_total{consumer=\"reward-allocate\",outcome=\"applied\"} 40\n\
            rewards_consumer_events_total{consumer=\"reward-track-wallet\",outcome=\"duplicate\"} 2\n\
            rewards_consumer_events_total_other 9\n";
        assert_eq!(sum_metric(text, "rewards_consumer_events_total", &["outcome=\"duplicate\""]), 5.0);
        assert_eq!(sum_metric(text, "rewards_consumer_events_total", &[]), 45.0);
    }

    #[test]
    fn replicas_parse_from_service_counts() {
        let replicas = Replicas::parse("reward=2, wallet=3,mypage=1").unwrap();
        assert_eq!((replicas.of("reward"), replicas.of("wallet"), replicas.of("mypage")), (2, 3, 1));
        assert_eq!(replicas.of("mission"), 1);
    }

    #[test]
    fn unknown_services_and_counts_out_of_range_are_refused() {
        assert_eq!(Replicas::parse("gateway=2").unwrap().of("gateway"), 2);
        assert!(Replicas::parse("rewards=2").unwrap_err().contains("no service called \"rewards\""));
        assert!(Replicas::parse("reward=0").unwrap_err().contains("1 to 9"));
        assert!(Replicas::parse("reward").unwrap_err().contains("is not SERVICE=N"));
    }

    #[test]
    fn replicas_get_their_own_ports_and_the_gateway_lists_them() {
        let layout = Layout::well_known(Shape::Single, &Replicas::parse("reward=2").unwrap());
        let rewards: Vec<(&str, u16, u16)> =
            layout.members_of("reward").map(|m| (m.name.as_str(), m.grpc_port, m.metrics_port)).collect();
        assert_eq!(rewards, [("reward-1", 50052, 51052), ("reward-2", 50152, 51152)]);
        assert_eq!(layout.urls("reward"), "http://127.0.0.1:50052,http://127.0.0.1:50152");
        assert_eq!(layout.gateway_url(), "http://127.0.0.1:8080");
        let mission: Vec<&str> = layout.members_of("mission").map(|m| m.name.as_str()).collect();
        assert_eq!(mission, ["mission"], "a single replica keeps the service's name");
    }

    #[test]
    fn the_cluster_shape_runs_two_of_everything_unless_told_otherwise() {
        let layout = Layout::well_known(Shape::Cluster, &Replicas::parse("reward=3").unwrap());
        assert_eq!(layout.members_of("gateway").count(), 2);
        assert_eq!(layout.members_of("gift").count(), 2);
        assert_eq!(layout.members_of("reward").count(), 3);
        assert_eq!(layout.nats_url(), "nats://127.0.0.1:14222,nats://127.0.0.1:14223,nats://127.0.0.1:14224");
        assert_eq!(layout.nats_names(), ["nats-1", "nats-2", "nats-3"]);
        assert_eq!(layout.postgres_port, Some(15432));
        let single = Layout::well_known(Shape::Single, &Replicas::default());
        assert_eq!((single.nats_names(), single.postgres_port), (vec![NATS.to_owned()], None));
    }

    #[test]
    fn free_layouts_use_distinct_ports_outside_the_ephemeral_range() {
        let layout = Layout::free(Shape::Cluster, &Replicas::parse("reward=3").unwrap()).unwrap();
        let mut ports: Vec<u16> = layout.members.iter().flat_map(|m| [m.grpc_port, m.metrics_port]).collect();
        ports.extend(layout.nats.iter().flat_map(|n| [n.client, n.monitor, n.cluster]));
        ports.extend(layout.postgres_port);
        let count = ports.len();
        ports.sort_unstable();
        ports.dedup();
        assert_eq!(ports.len(), count);
        assert!(ports.iter().all(|p| localinfra::ports::RUNNER.contains(*p)));
    }
}
