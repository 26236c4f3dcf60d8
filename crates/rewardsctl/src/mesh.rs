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

/// Every service, the gateway last.
pub const SERVICES: [Service; 7] = [
    Service { name: "mission", port: 50051, health: "game.mission.v1.MissionService", url_variable: "MISSION_URL" },
    Service { name: "reward", port: 50052, health: "game.reward.v1.RewardService", url_variable: "REWARD_URL" },
    Service { name: "wallet", port: 50053, health: "game.wallet.v1.WalletService", url_variable: "WALLET_URL" },
    Service { name: "gift", port: 50054, health: "game.gift.v1.GiftService", url_variable: "GIFT_URL" },
    Service { name: "mypage", port: 50055, health: "game.mypage.v1.MyPageService", url_variable: "MYPAGE_URL" },
    Service {
        name: "settlement",
        port: 50056,
        health: "game.settlement.v1.SettlementService",
        url_variable: "SETTLEMENT_URL",
    },
    Service { name: "gateway", port: 8080, health: "", url_variable: "" },
];

/// The name of the broker's process.
pub const NATS: &str = "nats-server";

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
            let known: Vec<&str> = SERVICES.iter().map(|s| s.name).filter(|n| *n != "gateway").collect();
            format!("no service called {name:?} (one of {})", known.join(", "))
        })?;
        if service.name == "gateway" {
            return Err("the gateway runs as one process; replicate the services behind it".into());
        }
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
    pub nats_port: u16,
    pub nats_monitor_port: u16,
    pub members: Vec<Member>,
}

impl Layout {
    /// The ports `rewardsctl up` documents: the gateway on 8080, mission on
    /// 50051 and so on; replica `i` (from 2) of a service 100 above the
    /// previous one; every metrics port 1000 above its gRPC port.
    pub fn well_known(replicas: &Replicas) -> Self {
        let mut ports = |service: &Service, replica: usize| {
            let offset = u16::try_from(100 * (replica - 1)).unwrap_or_default();
            (service.port + offset, service.port + offset + 1000)
        };
        Self { nats_port: 14222, nats_monitor_port: 18222, members: members(replicas, &mut ports) }
    }

    /// Ports that are free now, below the range the OS hands out for
    /// outgoing connections, so that a killed process gets its port back.
    ///
    /// # Errors
    /// When no free port is found.
    pub fn free(replicas: &Replicas) -> anyhow::Result<Self> {
        let picker = &localinfra::ports::RUNNER;
        let nats_port = picker.take()?;
        let nats_monitor_port = picker.take()?;
        let mut failed = None;
        let mut ports = |_: &Service, _: usize| match (picker.take(), picker.take()) {
            (Ok(grpc), Ok(metrics)) => (grpc, metrics),
            (Err(error), _) | (_, Err(error)) => {
                failed = Some(error);
                (0, 0)
            }
        };
        let members = members(replicas, &mut ports);
        if let Some(error) = failed {
            return Err(error);
        }
        Ok(Self { nats_port, nats_monitor_port, members })
    }

    /// The replicas of `service`.
    pub fn members_of<'a>(&'a self, service: &'a str) -> impl Iterator<Item = &'a Member> + 'a {
        self.members.iter().filter(move |m| m.service.name == service)
    }

    /// The comma-separated URLs of `service`'s replicas.
    pub fn urls(&self, service: &str) -> String {
        self.members_of(service).map(Member::url).collect::<Vec<_>>().join(",")
    }

    /// The gateway's URL, the one entry point.
    pub fn gateway_url(&self) -> String {
        self.urls("gateway")
    }

    /// The broker's URL.
    pub fn nats_url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.nats_port)
    }
}

fn members(replicas: &Replicas, ports: &mut impl FnMut(&Service, usize) -> (u16, u16)) -> Vec<Member> {
    let mut members = Vec::new();
    for service in &SERVICES {
        let count = if service.name == "gateway" { 1 } else { replicas.of(service.name) };
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
    /// …then the broker, which they still need to drain (ack, flush the outbox).
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

    /// The SQLite file every replica of `service` shares.
    pub fn database(&self, service: &str) -> PathBuf {
        self.config.run_dir.join("data").join(format!("{service}.sqlite"))
    }

    /// Starts nats-server (supervised, on the run directory's store) and
    /// waits until it listens.
    ///
    /// # Errors
    /// When it does not listen within 20 seconds.
    pub async fn start_nats(&mut self) -> anyhow::Result<()> {
        let program = self.config.nats_server.clone().context("nats-server not found")?;
        let layout = &self.config.layout;
        let spec = ProcessSpec {
            name: NATS.into(),
            program,
            args: vec![
                "-a".into(),
                "127.0.0.1".into(),
                "-p".into(),
                layout.nats_port.to_string(),
                "-m".into(),
                layout.nats_monitor_port.to_string(),
                "-js".into(),
                "-sd".into(),
                self.config.run_dir.join("nats").display().to_string(),
            ],
            env: Vec::new(),
            log: self.config.run_dir.join("logs/nats-server.log"),
            announce: self.config.announce,
        };
        let port = layout.nats_port;
        let (handle, supervision) = supervised(spec, self.stop_broker.clone());
        self.broker.spawn(supervision);
        self.processes.insert(NATS.into(), handle);
        wait_for_port(port, Duration::from_secs(20)).await.context("nats-server did not start")
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
            env.push(("DATABASE_URL".into(), self.database(name).display().to_string()));
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
    fn the_gateway_and_unknown_services_cannot_be_replicated() {
        assert!(Replicas::parse("gateway=2").unwrap_err().contains("the gateway runs as one process"));
        assert!(Replicas::parse("rewards=2").unwrap_err().contains("no service called \"rewards\""));
        assert!(Replicas::parse("reward=0").unwrap_err().contains("1 to 9"));
        assert!(Replicas::parse("reward").unwrap_err().contains("is not SERVICE=N"));
    }

    #[test]
    fn replicas_get_their_own_ports_and_the_gateway_lists_them() {
        let layout = Layout::well_known(&Replicas::parse("reward=2").unwrap());
        let rewards: Vec<(&str, u16, u16)> =
            layout.members_of("reward").map(|m| (m.name.as_str(), m.grpc_port, m.metrics_port)).collect();
        assert_eq!(rewards, [("reward-1", 50052, 51052), ("reward-2", 50152, 51152)]);
        assert_eq!(layout.urls("reward"), "http://127.0.0.1:50052,http://127.0.0.1:50152");
        assert_eq!(layout.gateway_url(), "http://127.0.0.1:8080");
        let mission: Vec<&str> = layout.members_of("mission").map(|m| m.name.as_str()).collect();
        assert_eq!(mission, ["mission"], "a single replica keeps the service's name");
    }

    #[test]
    fn free_layouts_use_distinct_ports_outside_the_ephemeral_range() {
        let layout = Layout::free(&Replicas::parse("reward=2,wallet=2").unwrap()).unwrap();
        let mut ports: Vec<u16> = layout.members.iter().flat_map(|m| [m.grpc_port, m.metrics_port]).collect();
        ports.extend([layout.nats_port, layout.nats_monitor_port]);
        let count = ports.len();
        ports.sort_unstable();
        ports.dedup();
        assert_eq!(ports.len(), count);
        assert!(ports.iter().all(|p| localinfra::ports::RUNNER.contains(*p)));
    }
}
