//! `rewardsctl attack`: the edge under hostile load.
//!
//! Starts the whole system (production defaults: the gateway's limits are
//! not lifted), then runs each attack for a bounded time against the
//! gateway on loopback while a canary player reads their page every 50 ms
//! from its own address. Per attack it prints what the canary saw (success
//! rate, p50/p99), what the gateway spent (CPU, peak resident memory, how
//! long its memory took to come back, log lines), what the attack met, and
//! whether the targets of issue 17 hold:
//!
//! - the canary keeps ≥ 99 % of its calls, p99 < 100 ms (< 500 ms under a
//!   full-speed flood of one valid player's calls or of token-less calls);
//! - a refused forged-signature call costs the gateway ≤ 0.1 CPU-ms;
//! - the gateway stays under 150 MB resident and is back near its resting
//!   size within 60 s;
//! - each attack's own protection holds (a stalled watcher is closed, the
//!   connection over the cap is refused, …).
//!
//! Attackers bind other loopback addresses (127.0.0.2 …), so the gateway
//! sees other hosts (see [`origin`]).
//!
//! - [`canary`]: the legitimate player.
//! - [`gauge`]: the gateway's CPU, memory and log lines.
//! - [`origin`]: attacker addresses and connections.
//! - [`wire`]: gRPC requests and raw HTTP/2 frames.
//! - [`floods`], [`streams`], [`connections`], [`resets`], [`headers`]: the attacks.

pub mod canary;
pub mod connections;
pub mod floods;
pub mod gauge;
pub mod headers;
pub mod origin;
pub mod resets;
pub mod streams;
pub mod wire;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context as _;
use dev_issuer::DevIssuer;
use futures::future::BoxFuture;
use serde::Serialize;

use crate::mesh::{Layout, Mesh, MeshConfig, Replicas};
use canary::{Canary, CanaryReport};
use gauge::{Gauge, Spent};
use origin::Origins;

/// The canary's p99 target, and the one under a full-speed flood of one
/// valid player's calls or of token-less calls.
pub const P99_TARGET_MS: f64 = 100.0;
pub const P99_FLOOD_TARGET_MS: f64 = 500.0;
/// The share of the canary's calls that must succeed.
pub const SUCCESS_TARGET_PERCENT: f64 = 99.0;
/// The most a refused forged-signature call may cost the gateway.
pub const FORGED_CPU_MS_TARGET: f64 = 0.1;
/// The gateway's resident memory ceiling, and how soon it must be back near resting.
pub const RSS_TARGET_MB: f64 = 150.0;
pub const SETTLE_WITHIN: Duration = Duration::from_secs(60);

/// How big each attack is.
#[derive(Debug, Clone)]
pub struct Scale {
    /// Connections and calls in flight on each, of a unary flood.
    pub flood_connections: usize,
    pub flood_in_flight: usize,
    /// Stalled watchers: connections, watches on each (each a different
    /// player), the addresses they come from, and how many of those
    /// players' pages change during the attack.
    pub stalled_connections: usize,
    pub streams_per_connection: usize,
    pub stalled_origins: usize,
    pub stalled_missions: usize,
    /// Watches one player tries to hold at once.
    pub watches_per_player: usize,
    /// Requests opened (never finished) on one connection, beyond any limit.
    pub flood_streams: usize,
    /// Idle connections from one address, and from many (spread over `spread_origins`).
    pub peer_connections: usize,
    pub spread_connections: usize,
    pub spread_origins: usize,
    /// How long idle connections are held: more than the gateway's idle timeout.
    pub idle_wait: Duration,
    /// Connections resetting streams at once.
    pub reset_connections: usize,
    /// The size of an oversized header block.
    pub oversized_header_kib: usize,
}

impl Scale {
    /// The attacks as issue 17 describes them.
    pub fn full() -> Self {
        Self {
            flood_connections: 4,
            flood_in_flight: 16,
            stalled_connections: 200,
            streams_per_connection: 10,
            stalled_origins: 4,
            stalled_missions: 50,
            watches_per_player: 20,
            flood_streams: 5_000,
            peer_connections: 300,
            spread_connections: 4_800,
            spread_origins: 60,
            idle_wait: Duration::from_secs(45),
            reset_connections: 10,
            oversized_header_kib: 1024,
        }
    }

    /// Small versions, for the tests (with a gateway configured to match).
    pub fn quick() -> Self {
        Self {
            flood_connections: 2,
            flood_in_flight: 8,
            stalled_connections: 10,
            streams_per_connection: 4,
            stalled_origins: 2,
            stalled_missions: 10,
            watches_per_player: 12,
            flood_streams: 300,
            peer_connections: 16,
            spread_connections: 80,
            spread_origins: 10,
            idle_wait: Duration::from_secs(8),
            reset_connections: 2,
            oversized_header_kib: 256,
        }
    }
}

/// What an attack needs: where the gateway is, whose tokens it trusts,
/// addresses to attack from, and how big to be.
#[derive(Debug, Clone)]
pub struct Arena {
    pub gateway: SocketAddr,
    pub identity: DevIssuer,
    pub origins: Origins,
    pub scale: Scale,
    /// The missions players achieve: the mission service's catalogue.
    pub catalogue: loadgen::Catalogue,
}

/// What an attack saw, and the checks of its own protection.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Findings {
    pub facts: Vec<String>,
    pub checks: Vec<Check>,
    /// The attacker's calls (or streams, or connections) the gateway refused.
    pub refused: u64,
}

/// One protection checked by behaviour.
#[derive(Debug, Clone, Serialize)]
pub struct Check {
    pub what: String,
    pub met: bool,
}

impl Findings {
    /// Notes a fact.
    pub fn fact(&mut self, fact: impl Into<String>) {
        self.facts.push(fact.into());
    }

    /// Records whether a protection held.
    pub fn check(&mut self, what: impl Into<String>, met: bool) {
        self.checks.push(Check { what: what.into(), met });
    }
}

type AttackRun = for<'a> fn(&'a Arena, Duration) -> BoxFuture<'a, anyhow::Result<Findings>>;

/// One attack of the harness.
#[derive(Clone, Copy)]
pub struct Attack {
    pub name: &'static str,
    pub about: &'static str,
    /// A full-speed flood of valid or token-less calls: the canary's p99
    /// target is then [`P99_FLOOD_TARGET_MS`].
    pub flood: bool,
    /// Whether the gateway's CPU per refused call is held to [`FORGED_CPU_MS_TARGET`].
    pub priced: bool,
    run: AttackRun,
}

impl std::fmt::Debug for Attack {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Attack").field("name", &self.name).finish_non_exhaustive()
    }
}

/// Every attack, in the order they run.
pub const ATTACKS: [Attack; 9] = [
    Attack {
        name: "forged-signature",
        about: "calls whose token has a real header and key id and a made-up signature, a fresh one each call",
        flood: false,
        priced: true,
        run: |arena, duration| Box::pin(floods::flood(arena, floods::forged(arena, "forger"), "forger", duration)),
    },
    Attack {
        name: "tokenless-flood",
        about: "calls with no token, at full speed",
        flood: true,
        priced: false,
        run: |arena, duration| Box::pin(floods::flood(arena, floods::Credential::Missing, "nobody", duration)),
    },
    Attack {
        name: "valid-user-flood",
        about: "one valid player's calls at full speed, far over their rate limit",
        flood: true,
        priced: false,
        run: |arena, duration| {
            Box::pin(async move {
                let token = arena.identity.player("flooder");
                floods::flood(arena, floods::Credential::Valid(token), "flooder", duration).await
            })
        },
    },
    Attack {
        name: "stalled-streams",
        about: "watchers that never read (window 0) while their pages change; one player opening watch after watch",
        flood: false,
        priced: false,
        run: |arena, duration| {
            Box::pin(async move {
                let mut findings = streams::stalled(arena, duration).await?;
                let (held, tried) = streams::watches_of_one_player(arena).await?;
                findings.fact(format!("one player opened {tried} watches at once: {held} held"));
                findings.check("watch streams per player are capped", held < tried);
                Ok(findings)
            })
        },
    },
    Attack {
        name: "stream-flood",
        about: "one connection opening streams beyond MAX_CONCURRENT_STREAMS, never finishing them",
        flood: false,
        priced: false,
        run: |arena, duration| Box::pin(streams::stream_flood(arena, duration)),
    },
    Attack {
        name: "connection-flood",
        about: "idle connections answering PINGs: many from one address, then from many addresses",
        flood: false,
        priced: false,
        run: |arena, duration| Box::pin(connections::flood(arena, duration.max(arena.scale.idle_wait))),
    },
    Attack {
        name: "rapid-reset",
        about: "streams opened and reset at once, reconnecting whenever cut off",
        flood: false,
        priced: false,
        run: |arena, duration| Box::pin(resets::rapid(arena, duration)),
    },
    Attack {
        name: "timed-out-client",
        about: "a player cancelling calls at their 20 ms deadline while token-less calls flood the gateway",
        flood: true,
        priced: false,
        run: |arena, duration| Box::pin(resets::timed_out_client(arena, duration)),
    },
    Attack {
        name: "header-limits",
        about: "calls just under and over the advertised header-list limit; 1 MiB header blocks",
        flood: false,
        priced: false,
        run: |arena, duration| Box::pin(headers::limits(arena, duration)),
    },
];

/// Options of `rewardsctl attack`.
#[derive(Debug, Clone)]
pub struct Options {
    /// The attacks to run (all when empty).
    pub only: Vec<String>,
    /// How long each attack runs.
    pub duration: Duration,
    pub scale: Scale,
    pub run_dir: PathBuf,
    pub bin_dir: PathBuf,
    /// Extra environment of the mesh's processes (service or `*`, variable, value).
    pub env: Vec<(String, String, String)>,
    /// Which services run besides the gateway (all when empty).
    pub services: Vec<&'static str>,
    /// The nats-server binary; looked up when `None`.
    pub nats_server: Option<PathBuf>,
}

/// The command line of `rewardsctl attack`.
#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// Only these attacks, separated by commas (all by default).
    #[arg(long, value_delimiter = ',', value_name = "NAME,...", value_parser = attack_name)]
    only: Vec<String>,
    /// How long each attack runs, in seconds (at least 1).
    #[arg(long, default_value_t = 20, value_name = "S")]
    secs: u64,
    /// How long idle connections are held, in seconds: more than the gateway's idle timeout (default 45).
    #[arg(long = "idle-wait", value_name = "S")]
    idle_wait: Option<u64>,
    /// A fresh directory for the stores and logs (default .run/bench-<UTC time>/attack).
    #[arg(long, value_name = "DIR")]
    run_dir: Option<PathBuf>,
    /// A variable of the gateway's environment, to measure another setting without a rebuild
    /// (repeatable).
    #[arg(long = "gateway-env", value_name = "VARIABLE=VALUE", value_parser = setting)]
    gateway_env: Vec<(String, String)>,
}

impl Args {
    /// The run these arguments ask for, with the service binaries in `bin_dir`.
    pub fn options(self, bin_dir: PathBuf) -> Options {
        let mut scale = Scale::full();
        if let Some(idle_wait) = self.idle_wait {
            scale.idle_wait = Duration::from_secs(idle_wait);
        }
        Options {
            only: self.only,
            duration: Duration::from_secs(self.secs.max(1)),
            scale,
            run_dir: self.run_dir.unwrap_or_else(|| crate::runs::benchmark("attack")),
            bin_dir,
            env: self.gateway_env.into_iter().map(|(variable, value)| ("gateway".into(), variable, value)).collect(),
            services: Vec::new(),
            nats_server: None,
        }
    }
}

/// One of [`ATTACKS`], by name.
fn attack_name(name: &str) -> Result<String, String> {
    let known = ATTACKS.iter().find(|a| a.name == name.trim()).ok_or_else(|| {
        let names: Vec<&str> = ATTACKS.iter().map(|a| a.name).collect();
        format!("no attack called {name:?} (one of {})", names.join(", "))
    })?;
    Ok(known.name.to_owned())
}

/// `VARIABLE=VALUE`, the value possibly holding `=` itself.
fn setting(text: &str) -> Result<(String, String), String> {
    let (variable, value) = text
        .split_once('=')
        .filter(|(variable, _)| !variable.is_empty())
        .ok_or_else(|| format!("{text:?} is not VARIABLE=VALUE"))?;
    Ok((variable.to_owned(), value.to_owned()))
}

/// One attack's row: what the canary saw, what the gateway spent, the
/// attack's findings, and the verdict on each target.
#[derive(Debug, Clone, Serialize)]
pub struct Row {
    pub attack: String,
    pub canary: CanaryReport,
    pub gateway: Spent,
    /// Seconds until the gateway's memory was back near resting; `None` when not within 60 s.
    pub settled_s: Option<f64>,
    /// The gateway's resident memory then (or after 60 s), in MB.
    pub after_mb: f64,
    pub findings: Findings,
    pub targets: Vec<Check>,
}

impl Row {
    /// Whether every target and check held.
    pub fn met(&self) -> bool {
        self.targets.iter().chain(&self.findings.checks).all(|c| c.met)
    }
}

/// Every row of a run.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub profile: &'static str,
    pub load_before: String,
    pub load_after: String,
    pub rows: Vec<Row>,
}

impl Report {
    /// Whether every attack met every target.
    pub fn passed(&self) -> bool {
        self.rows.iter().all(Row::met)
    }

    /// The row of `attack`.
    pub fn row(&self, attack: &str) -> Option<&Row> {
        self.rows.iter().find(|r| r.attack == attack)
    }

    /// The table and, under it, each attack's findings.
    pub fn print(&self) {
        print!("{}", self.render());
    }

    /// See [`Report::print`].
    pub fn render(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "\n== The edge under hostile load ({}) ==", self.profile);
        let _ = writeln!(out, "load average before: {}; after: {}", self.load_before, self.load_after);
        let _ = writeln!(
            out,
            "{:<18} {:>8} {:>8} {:>8} {:>7} {:>8} {:>8} {:>8} {:>9} {:>6}  verdict",
            "attack", "canary%", "p50 ms", "p99 ms", "gw CPU", "peak MB", "settle s", "after MB", "refused", "logs"
        );
        let _ = writeln!(out, "{}", "-".repeat(121));
        for row in &self.rows {
            let settled = row.settled_s.map_or_else(|| "> 60".to_owned(), |s| format!("{s:.1}"));
            let missed: Vec<&str> =
                row.targets.iter().chain(&row.findings.checks).filter(|c| !c.met).map(|c| c.what.as_str()).collect();
            let verdict = if missed.is_empty() { "met".to_owned() } else { format!("NOT MET: {}", missed.join("; ")) };
            let _ = writeln!(
                out,
                "{:<18} {:>8.2} {:>8.1} {:>8.1} {:>7.2} {:>8.1} {:>8} {:>8.1} {:>9} {:>6}  {verdict}",
                row.attack,
                row.canary.success_percent(),
                row.canary.latency.p50_ms,
                row.canary.latency.p99_ms,
                row.gateway.cores(),
                row.gateway.peak_mb,
                settled,
                row.after_mb,
                row.findings.refused,
                row.gateway.log_lines,
            );
        }
        let _ = writeln!(
            out,
            "\ngw CPU: cores the gateway used on average; settle s: until its memory was back near resting \
             (resting + 10 MB, or + 25 %); after MB: its memory then, or 60 s after the attack; logs: lines \
             it wrote during the attack"
        );
        for row in &self.rows {
            let _ = writeln!(out, "\n{}:", row.attack);
            for fact in &row.findings.facts {
                let _ = writeln!(out, "  - {fact}");
            }
            if !row.canary.failures.is_empty() {
                let failures: Vec<String> = row.canary.failures.iter().map(|(f, n)| format!("{f} ×{n}")).collect();
                let _ = writeln!(out, "  - canary failures: {}", failures.join(", "));
            }
            for check in row.targets.iter().chain(&row.findings.checks) {
                let _ = writeln!(out, "  [{}] {}", if check.met { "met" } else { "NOT MET" }, check.what);
            }
        }
        out
    }
}

/// Starts the system, runs the attacks one after another, and reports.
///
/// # Errors
/// When the system does not start or an attack cannot be set up.
pub async fn run(options: Options) -> anyhow::Result<Report> {
    let mut layout = Layout::free(crate::mesh::Shape::Single, &Replicas::default())?;
    if !options.services.is_empty() {
        layout.members.retain(|m| m.service.name == "gateway" || options.services.contains(&m.service.name));
    }
    let config = MeshConfig {
        run_dir: options.run_dir.clone(),
        bin_dir: options.bin_dir.clone(),
        nats_server: options.nats_server.clone(),
        layout,
        env: options.env.clone(),
        announce: true,
    };
    let mut mesh = Mesh::new(config)?;
    mesh.start_infrastructure().await?;
    mesh.start_members(|_| true);
    mesh.wait_until_serving(Duration::from_secs(60), true).await?;
    let result = attack_all(&mesh, &options).await;
    mesh.stop().await;
    let report = result?;
    let json = options.run_dir.join("results.json");
    std::fs::write(&json, serde_json::to_string_pretty(&report)?)
        .with_context(|| format!("cannot write {}", json.display()))?;
    println!("results in {}", json.display());
    Ok(report)
}

async fn attack_all(mesh: &Mesh, options: &Options) -> anyhow::Result<Report> {
    let gateway_member = mesh.layout().members_of("gateway").next().context("no gateway")?.clone();
    let gateway: SocketAddr = ([127, 0, 0, 1], gateway_member.grpc_port).into();
    let pid = mesh
        .process("gateway")
        .and_then(crate::supervisor::ProcessHandle::pid)
        .context("the gateway is not running")?;
    let log = mesh.run_dir().join("logs/gateway.log");
    let catalogue = {
        use api::game::mission::v1::{ListMissionDefinitionsRequest, mission_service_client::MissionServiceClient};
        let missions = MissionServiceClient::new(origin::channel(std::net::Ipv4Addr::LOCALHOST.into(), gateway).await?);
        let request = dev_issuer::authorized(ListMissionDefinitionsRequest {}, &mesh.identity().operator());
        loadgen::Catalogue::fetch(missions, request).await?
    };
    let arena = Arena {
        gateway,
        identity: mesh.identity().clone(),
        origins: Origins::default(),
        scale: options.scale.clone(),
        catalogue,
    };
    let canary_player = "canary-player";
    let bearer = format!("Bearer {}", arena.identity.player(canary_player)).parse()?;
    let url = mesh.layout().gateway_url();
    prepare_canary(&arena, canary_player).await;

    let load_before = load_average();
    let mut rows = Vec::new();
    // The canary alone first: the reference every attack is read against.
    let resting =
        measure(&arena, pid, &log, &url, canary_player, &bearer, None, options.duration / 2, &gateway_member).await?;
    rows.push(resting);
    for attack in ATTACKS.iter().filter(|a| options.only.is_empty() || options.only.iter().any(|o| o == a.name)) {
        println!("[attack] {}: {}", attack.name, attack.about);
        let row =
            measure(&arena, pid, &log, &url, canary_player, &bearer, Some(attack), options.duration, &gateway_member)
                .await?;
        println!(
            "[attack] {}: canary {:.2} % ok, p99 {:.1} ms; gateway {:.2} cores, peak {:.1} MB",
            attack.name,
            row.canary.success_percent(),
            row.canary.latency.p99_ms,
            row.gateway.cores(),
            row.gateway.peak_mb
        );
        rows.push(row);
    }
    let profile =
        if cfg!(debug_assertions) { "debug build: figures mean little; use --release" } else { "release build" };
    Ok(Report { profile, load_before, load_after: load_average(), rows })
}

/// The canary player's page has a few missions to read: the first of the
/// catalogue.
async fn prepare_canary(arena: &Arena, customer: &str) {
    let Ok(channel) = origin::channel(std::net::Ipv4Addr::LOCALHOST.into(), arena.gateway).await else { return };
    let client = api::game::mission::v1::mission_service_client::MissionServiceClient::new(channel);
    let token = arena.identity.player(customer);
    for code in arena.catalogue.codes().take(3) {
        let request = api::game::mission::v1::AchieveMissionRequest {
            customer_id: customer.into(),
            mission_code: code.to_owned(),
            achievement_id: None,
        };
        let _ = client.clone().achieve_mission(dev_issuer::authorized(request, &token)).await;
    }
}

#[allow(clippy::too_many_arguments)] // one call site, each argument a distinct thing
async fn measure(
    arena: &Arena,
    pid: u32,
    log: &std::path::Path,
    url: &str,
    customer: &str,
    bearer: &tonic::metadata::AsciiMetadataValue,
    attack: Option<&Attack>,
    duration: Duration,
    gateway: &crate::mesh::Member,
) -> anyhow::Result<Row> {
    let refusals_before = edge_refusals(gateway).await;
    let gauge = Gauge::start(pid, log);
    let canary = Canary::start(url, customer, bearer.clone())?;
    let findings = match attack {
        Some(attack) => (attack.run)(arena, duration).await?,
        None => {
            tokio::time::sleep(duration).await;
            Findings::default()
        }
    };
    let canary = tokio::task::spawn_blocking(move || canary.stop()).await?;
    let spent = gauge.finish().await;
    let (settled, after_mb) = gauge::settle(pid, spent.resting_mb, SETTLE_WITHIN).await;
    let mut findings = findings;
    let refusals = difference(&edge_refusals(gateway).await, &refusals_before);
    if !refusals.is_empty() {
        findings.fact(format!(
            "the gateway's refusals (rewards_edge_refusals_total): {}",
            refusals.iter().map(|(r, n)| format!("{r} {n:.0}")).collect::<Vec<_>>().join(", ")
        ));
    }
    if spent.replicas_dropped > 0 {
        findings.fact(format!("the gateway took a replica out of its balance {} times", spent.replicas_dropped));
    }
    let mut targets = Vec::new();
    let mut target = |what: String, met: bool| targets.push(Check { what, met });
    let p99 = if attack.is_some_and(|a| a.flood) { P99_FLOOD_TARGET_MS } else { P99_TARGET_MS };
    target(
        format!("canary keeps ≥ {SUCCESS_TARGET_PERCENT} % of its calls"),
        canary.success_percent() >= SUCCESS_TARGET_PERCENT,
    );
    target(format!("canary p99 < {p99} ms"), canary.latency.p99_ms < p99);
    target(format!("gateway RSS < {RSS_TARGET_MB} MB"), spent.peak_mb < RSS_TARGET_MB);
    target("gateway RSS back near resting within 60 s".into(), settled.is_some());
    if attack.is_some_and(|a| a.priced) {
        #[allow(clippy::cast_precision_loss)] // call counts of a run fit an f64 exactly
        let per_call =
            if findings.refused == 0 { f64::INFINITY } else { spent.cpu_s * 1000.0 / findings.refused as f64 };
        findings.fact(format!(
            "gateway CPU per refused call: {per_call:.4} ms ({:.2} CPU-s over {} refusals)",
            spent.cpu_s, findings.refused
        ));
        target(
            format!("a refused call costs the gateway ≤ {FORGED_CPU_MS_TARGET} CPU-ms"),
            per_call <= FORGED_CPU_MS_TARGET,
        );
    }
    Ok(Row {
        attack: attack.map_or("none (canary alone)", |a| a.name).to_owned(),
        canary,
        gateway: spent,
        settled_s: settled.map(|d| d.as_secs_f64()),
        after_mb,
        findings,
        targets,
    })
}

/// The gateway's `rewards_edge_refusals_total` by reason.
async fn edge_refusals(gateway: &crate::mesh::Member) -> BTreeMap<String, f64> {
    let Some(text) = crate::mesh::scrape(gateway).await else { return BTreeMap::new() };
    let mut refusals = BTreeMap::new();
    for line in text.lines().filter(|l| l.starts_with("rewards_edge_refusals_total{")) {
        let reason = line.split("reason=\"").nth(1).and_then(|r| r.split('"').next()).unwrap_or("?");
        let value: f64 = line.rsplit(' ').next().and_then(|v| v.parse().ok()).unwrap_or(0.0);
        *refusals.entry(reason.to_owned()).or_default() += value;
    }
    refusals
}

fn difference(after: &BTreeMap<String, f64>, before: &BTreeMap<String, f64>) -> BTreeMap<String, f64> {
    after
        .iter()
        .map(|(reason, n)| (reason.clone(), n - before.get(reason).copied().unwrap_or(0.0)))
        .filter(|(_, n)| *n > 0.0)
        .collect()
}

/// `/proc/loadavg`'s first three figures.
fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|text| text.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::{Command, parse};

    fn parse_options(line: &str) -> Result<Options, String> {
        match parse(&format!("attack {line}"))? {
            Command::Attack(args) => Ok(args.options(PathBuf::from("bin"))),
            other => Err(format!("not attack: {other:?}")),
        }
    }

    #[test]
    fn gateway_env_goes_to_the_gateway_alone() {
        let options = parse_options("--gateway-env MALLOC_ARENA_MAX=2 --gateway-env A=b=c").unwrap();
        assert_eq!(
            options.env,
            [
                ("gateway".to_owned(), "MALLOC_ARENA_MAX".to_owned(), "2".to_owned()),
                ("gateway".to_owned(), "A".to_owned(), "b=c".to_owned()),
            ]
        );
        assert!(parse_options("--gateway-env =2").unwrap_err().contains("\"=2\" is not VARIABLE=VALUE"));
        assert!(parse_options("--gateway-env NOVALUE").is_err());
    }

    #[test]
    fn only_known_attacks_are_run() {
        let first = ATTACKS[0].name;
        let options = parse_options(&format!("--only {first} --secs 0")).unwrap();
        assert_eq!((options.only, options.duration), (vec![first.to_owned()], Duration::from_secs(1)));
        assert!(parse_options("--only teleport").unwrap_err().contains("no attack called \"teleport\""));
    }
}
