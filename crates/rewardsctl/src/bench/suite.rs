//! `rewardsctl bench` with no name: every measurement in one run — the
//! baselines, the chain at each rate, the exchange healthy and with the
//! breaker open, the gateway's cost and each process's resources — then the
//! table, and `results.json` (git revision, baselines, figures, ratios, and
//! every report in full) for comparing two runs.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use anyhow::Context as _;
use serde::Serialize;

use super::chain::Step;
use super::report::Figures;
use super::system::{self, System};
use super::{bare_chain, baselines, chain, exchange, gateway, targets};
use crate::mesh::Shape;
use crate::resources::{self, LOAD_GENERATOR};

/// What the run measures and for how long.
#[derive(Debug, Clone, Serialize)]
pub struct Options {
    pub quick: bool,
    /// Runs of the chain at 1,000/s whose median latency is the figure.
    pub latency_runs: usize,
    pub latency_duration: Duration,
    /// Rates the throughput search tries first; it goes on from them.
    pub rates: Vec<f64>,
    /// Steps of the throughput search at most.
    pub search_steps: usize,
    pub search_duration: Duration,
    pub chain_drain: Duration,
    /// Players whose page is watched per second (the chain's latency samples).
    pub samples_per_s: f64,
    pub exchange_rate: f64,
    pub exchange_duration: Duration,
    pub gateway_duration: Duration,
    pub baseline_duration: Duration,
    /// Of each bare-chain run.
    pub bare_chain_duration: Duration,
    /// Also measure the production shape, beside the single box.
    pub cluster: bool,
    #[serde(skip)]
    pub dir: PathBuf,
    #[serde(skip)]
    pub bin_dir: PathBuf,
}

/// The command line of `rewardsctl bench` with no benchmark named.
#[derive(Debug, Clone, clap::Args)]
#[group(id = "suite")]
pub struct Args {
    /// Every step shorter (one 10 s run at 1,000/s, search steps of 5 s): a few minutes in all;
    /// its latency figures are indicative only.
    #[arg(long)]
    quick: bool,
    /// Then the chain at 500 and 1000/s and the exchange on the production shape (see up --cluster),
    /// with a PostgreSQL commit baseline, both shapes side by side.
    #[arg(long)]
    cluster: bool,
    /// The rates the throughput search tries first, in missions a second; it goes on from them.
    #[arg(long, value_delimiter = ',', value_name = "R,R,...", default_value = "2000")]
    rates: Vec<f64>,
    /// How long each chain run lasts, in seconds (default 30; with --quick 10 at 1,000/s, 5 a search step).
    #[arg(long, value_name = "SECS")]
    duration: Option<u64>,
    /// Runs at 1,000/s whose median is the latency figure (default 5, 1 with --quick).
    #[arg(long, value_name = "N")]
    runs: Option<usize>,
    /// Steps of the throughput search at most (default 6, 4 with --quick).
    #[arg(long, value_name = "N")]
    search_steps: Option<usize>,
    /// Where the run's processes, stores, logs and results.json go (default .run/bench-<UTC time>).
    #[arg(long, value_name = "DIR")]
    run_dir: Option<PathBuf>,
}

impl Args {
    /// The run these arguments ask for.
    ///
    /// # Errors
    /// When the running executable has no directory (the service binaries are beside it).
    pub fn options(self) -> anyhow::Result<Options> {
        let quick = self.quick;
        let secs = Duration::from_secs;
        Ok(Options {
            quick,
            latency_runs: self.runs.unwrap_or(if quick { 1 } else { 5 }).max(1),
            latency_duration: secs(self.duration.unwrap_or(if quick { 10 } else { 30 })),
            rates: self.rates,
            search_steps: self.search_steps.unwrap_or(if quick { 4 } else { 6 }),
            search_duration: secs(self.duration.unwrap_or(if quick { 5 } else { 30 })),
            chain_drain: if quick { secs(10) } else { secs(60) },
            samples_per_s: chain::SAMPLES_PER_S,
            exchange_rate: 1_000.0,
            exchange_duration: if quick { secs(5) } else { secs(30) },
            gateway_duration: if quick { secs(3) } else { secs(10) },
            baseline_duration: if quick { secs(2) } else { secs(5) },
            bare_chain_duration: if quick { secs(5) } else { secs(15) },
            cluster: self.cluster,
            dir: self.run_dir.unwrap_or_else(|| crate::runs::fresh("bench")),
            bin_dir: crate::runs::bin_dir()?,
        })
    }
}

/// Everything a run wrote into `results.json`.
#[derive(Debug, Serialize)]
struct Results<'a> {
    revision: String,
    started_at: String,
    machine: Machine,
    options: &'a Options,
    figures: &'a Figures,
    baselines: &'a baselines::Baselines,
    bare_chain: &'a bare_chain::BareChain,
    /// The chain at 1,000/s, each run on a fresh system: latency and CPU.
    latency_runs: &'a [Step],
    /// The throughput search's steps, in the order they ran.
    chain: &'a [Step],
    exchange: &'a exchange::Exchange,
    gateway: &'a gateway::GatewayCost,
    exchange_system_serving_after_s: f64,
    /// The production shape's figures, when measured.
    cluster: Option<&'a Cluster>,
}

/// What the production shape measured, in the same run as the single box.
#[derive(Debug, Serialize)]
struct Cluster {
    postgres: baselines::Commits,
    chain: Vec<Step>,
    exchange: exchange::Exchange,
    exchange_system_serving_after_s: f64,
}

#[derive(Debug, Serialize)]
struct Machine {
    cpus: usize,
    /// The 1-minute load average when the run ended: other work on the
    /// machine makes every figure noisier.
    load_average: String,
}

/// Runs everything, prints the table and returns the path of `results.json`.
///
/// # Errors
/// When a part cannot run.
pub async fn run(options: Options) -> anyhow::Result<PathBuf> {
    let started_at = crate::runs::utc_stamp(SystemTime::now());
    let dir = options.dir.clone();
    std::fs::create_dir_all(&dir)?;
    println!(
        "\n== Benchmarks{} (processes, stores and logs in {}) ==",
        if options.quick { " --quick" } else { "" },
        dir.display()
    );
    println!("-- baselines");
    let baselines = baselines::run(
        &dir.join("baselines"),
        &options.bin_dir,
        &baselines::Options {
            duration: options.baseline_duration,
            messages: if options.quick { 20_000 } else { 100_000 },
            commits: if options.quick { 5_000 } else { 20_000 },
        },
    )
    .await?;
    println!("-- bare chain: the chain's hops, commits, publishes and consumes in one process, no logic");
    let bare = bare_chain::run(
        &dir.join("bare-chain"),
        &options.bin_dir,
        &bare_chain::Options { rate: 1_000.0, concurrency: 256, duration: options.bare_chain_duration },
    )
    .await?;
    let chain_options = |duration| chain::Options {
        duration,
        drain: options.chain_drain,
        samples_per_s: options.samples_per_s,
        max_watches: chain::MAX_WATCHES,
        shape: Shape::Single,
    };
    println!(
        "-- chain at 1,000/s: {} run(s) of {}s (latency, CPU per mission)",
        options.latency_runs,
        options.latency_duration.as_secs()
    );
    let mut latency_runs = Vec::new();
    for run in 0..options.latency_runs {
        let step_dir = dir.join(format!("latency-{run}"));
        latency_runs.push(
            chain::run_step(&step_dir, &options.bin_dir, &chain_options(options.latency_duration), 1_000.0).await?,
        );
    }
    println!("-- throughput search: the highest rate held to ISSUED with p99 <= {HELD_P99_MS} ms");
    let steps = search(&dir, &options, &chain_options(options.search_duration), &latency_runs).await?;
    println!("-- exchange and gateway");
    let (exchange, gateway, exchange_serving) = exchange_and_gateway(Shape::Single, &dir.join("exchange"), &options)
        .await
        .and_then(|(exchange, gateway, serving)| Ok((exchange, gateway.context("no gateway figures")?, serving)))?;
    let cluster = if options.cluster {
        println!("-- the production shape: three NATS nodes, PostgreSQL, two replicas of everything");
        let cluster_dir = dir.join("cluster");
        let commits = if options.quick { 2_000 } else { 10_000 };
        let postgres = baselines::postgres(&cluster_dir.join("baseline"), commits).await?;
        let chain_options = chain::Options { shape: Shape::Cluster, ..chain_options(options.search_duration) };
        let chain = chain::run(&cluster_dir, &options.bin_dir, &chain_options, &[500.0, 1_000.0]).await?;
        let (exchange, _, serving) =
            exchange_and_gateway(Shape::Cluster, &cluster_dir.join("exchange"), &options).await?;
        Some(Cluster { postgres, chain, exchange, exchange_system_serving_after_s: serving })
    } else {
        None
    };

    let mut figures = figures(&baselines, &bare, &latency_runs, &steps, &exchange, &gateway, exchange_serving);
    figures.resolve_ratios();
    let every_step: Vec<Step> = latency_runs.iter().chain(&steps).cloned().collect();
    let results = Results {
        revision: revision(),
        started_at,
        machine: Machine {
            cpus: std::thread::available_parallelism().map_or(1, std::num::NonZero::get),
            load_average: std::fs::read_to_string("/proc/loadavg").unwrap_or_default().trim().to_owned(),
        },
        options: &options,
        figures: &figures,
        baselines: &baselines,
        bare_chain: &bare,
        latency_runs: &latency_runs,
        chain: &steps,
        exchange: &exchange,
        gateway: &gateway,
        exchange_system_serving_after_s: exchange_serving,
        cluster: cluster.as_ref(),
    };
    let path = dir.join("results.json");
    std::fs::write(&path, serde_json::to_string_pretty(&results)?)?;
    println!("\n{}", figures.table());
    if let Some(cluster) = &cluster {
        println!("\n{}", shapes_table(&baselines, &every_step, &exchange, cluster));
    }
    println!("\n== Issue 15's targets (release build, this machine, same run) ==");
    println!("{}", targets::table(&targets::evaluate(&named(&figures))));
    println!(
        "load average at the end: {} (other work on the machine makes figures noisy)",
        results.machine.load_average
    );
    println!("results: {}", path.display());
    Ok(path)
}

/// The exchange at the run's rate, healthy and with the breaker open, on a
/// fresh system of `shape` seeded with enough entries; on the single box,
/// the gateway's cost too. Returns them and how long the system took to serve.
async fn exchange_and_gateway(
    shape: Shape,
    dir: &Path,
    options: &Options,
) -> anyhow::Result<(exchange::Exchange, Option<gateway::GatewayCost>, f64)> {
    let system = System::start(shape, dir.to_path_buf(), options.bin_dir.clone(), exchange::system_env()).await?;
    let exchange_options = exchange::Options { rate: options.exchange_rate, duration: options.exchange_duration };
    let measured = async {
        let entries = system::seed_entries(&system, "bench-x", exchange_options.entries_needed()).await?;
        system::restock_gift(&system, 10_000_000).await?;
        let quiet = system::wait_until_quiet(&system, Duration::from_secs(120)).await?;
        println!("  every consumer idle {:.1}s after seeding", quiet.as_secs_f64());
        let exchange = exchange::run(&system, &entries, &exchange_options).await?;
        let gateway = if shape == Shape::Single {
            system::wait_until_quiet(&system, Duration::from_secs(120)).await?;
            let cost = gateway::Options { rate: 1_000.0, concurrency: 16, duration: options.gateway_duration };
            Some(gateway::run(&system, &entries[0].customer_id, &cost, dir).await?)
        } else {
            None
        };
        anyhow::Ok((exchange, gateway))
    }
    .await;
    let serving = system.serving_after.as_secs_f64();
    system.stop().await;
    let (exchange, gateway) = measured?;
    Ok((exchange, gateway, serving))
}

/// The figures of both shapes side by side: the chain's sustained rate and
/// p99 at 500 and 1,000 missions/s, the exchange's p99, the commit
/// baselines and CPU seconds per 1,000 missions by kind of process.
fn shapes_table(
    baselines: &baselines::Baselines,
    single: &[Step],
    single_exchange: &exchange::Exchange,
    cluster: &Cluster,
) -> String {
    use std::fmt::Write as _;
    let at = |steps: &[Step], rate: f64| steps.iter().find(|s| (s.offered_rate - rate).abs() < 0.5).cloned();
    let mut rows: Vec<(String, String, String)> = Vec::new();
    let value = |v: Option<f64>| v.map_or_else(|| "-".to_owned(), |v| format!("{v:.2}"));
    for rate in [500.0, 1_000.0] {
        let (a, b) = (at(single, rate), at(&cluster.chain, rate));
        rows.push((
            format!("chain at {rate:.0}/s: sustained missions/s"),
            value(a.as_ref().map(|s| s.chain_rate)),
            value(b.as_ref().map(|s| s.chain_rate)),
        ));
        rows.push((
            format!("chain at {rate:.0}/s: p99 ms (achieve → ISSUED on my page)"),
            value(a.as_ref().map(|s| s.chain.p99_ms)),
            value(b.as_ref().map(|s| s.chain.p99_ms)),
        ));
    }
    rows.push((
        format!("exchange at {:.0}/s: p99 ms", single_exchange.healthy.offered_rate),
        value(Some(single_exchange.healthy.latency.p99_ms)),
        value(Some(cluster.exchange.healthy.latency.p99_ms)),
    ));
    rows.push((
        "store baseline: single-row commits/s".into(),
        format!("{:.0} (SQLite)", baselines.sqlite.commits_per_s),
        format!("{:.0} (PostgreSQL)", cluster.postgres.commits_per_s),
    ));
    let cpu = |steps: &[Step]| -> BTreeMap<String, f64> {
        let mut by_kind = BTreeMap::new();
        if let Some(step) = at(steps, 1_000.0) {
            #[allow(clippy::cast_precision_loss)] // mission counts fit an f64 exactly
            let thousands = (step.calls.ok as f64 / 1_000.0).max(1e-9);
            for (name, usage) in &step.under_load {
                *by_kind.entry(resources::kind(name).to_owned()).or_insert(0.0) += usage.cpu_s / thousands;
            }
        }
        by_kind
    };
    let (a, b) = (cpu(single), cpu(&cluster.chain));
    let kinds: std::collections::BTreeSet<&String> = a.keys().chain(b.keys()).collect();
    for kind in kinds {
        rows.push((
            format!("CPU-s per 1,000 missions at 1,000/s: {kind}"),
            value(a.get(kind).copied()),
            value(b.get(kind).copied()),
        ));
    }
    rows.push((
        "CPU-s per 1,000 missions at 1,000/s: all but the load".into(),
        value(Some(system_total(&a))),
        value(Some(system_total(&b))),
    ));
    let width = rows.iter().map(|(n, _, _)| n.len()).max().unwrap_or(10);
    let mut table = format!("{:<width$}  {:>18}  {:>18}\n", "the two shapes, same run", "single box", "cluster");
    let _ = writeln!(table, "{}", "-".repeat(width + 40));
    for (name, single, cluster) in rows {
        let _ = writeln!(table, "{name:<width$}  {single:>18}  {cluster:>18}");
    }
    table
}

/// The git revision of the working tree, `-dirty` when it has changes.
fn revision() -> String {
    let git = |args: &[&str]| {
        std::process::Command::new("git")
            .args(args)
            .output()
            .ok()
            .filter(|out| out.status.success())
            .map(|out| String::from_utf8_lossy(&out.stdout).trim().to_owned())
    };
    let head = git(&["rev-parse", "HEAD"]).unwrap_or_else(|| "unknown".into());
    let dirty = git(&["status", "--porcelain", "--untracked-files=no"]).is_some_and(|s| !s.is_empty());
    if dirty { format!("{head}-dirty") } else { head }
}

const ECHO_P50: &str = targets::ECHO_P50;
const ECHO_P99: &str = targets::ECHO_P99;
const ECHO_RATE: &str = "baseline.echo.calls_per_s";
const SQLITE_RATE: &str = "baseline.sqlite.commits_per_s";

/// The p99 the throughput search holds the chain to, in ms.
const HELD_P99_MS: f64 = 50.0;

/// The throughput search: the rates of `--rates` first, then
/// [`targets::next_rate`] from every step so far (the runs at 1,000/s
/// included), each step on a fresh system, until the edge is found within
/// 10 % or the steps run out.
async fn search(
    dir: &Path,
    options: &Options,
    chain_options: &chain::Options,
    latency_runs: &[Step],
) -> anyhow::Result<Vec<Step>> {
    let mut tried: Vec<(f64, bool)> = latency_runs.iter().map(|s| (s.offered_rate, s.held(HELD_P99_MS))).collect();
    let mut steps = Vec::new();
    let mut first = options.rates.iter().copied();
    for _ in 0..options.search_steps {
        let rate = loop {
            match first.next() {
                Some(rate) if tried.iter().any(|(r, _)| (r - rate).abs() < 0.5) => {}
                Some(rate) => break Some(rate),
                None => break targets::next_rate(&tried, 0.1),
            }
        };
        let Some(rate) = rate else { break };
        let step =
            chain::run_step(&dir.join(format!("chain-{rate:.0}")), &options.bin_dir, chain_options, rate).await?;
        let held = step.held(HELD_P99_MS);
        println!("    {rate:.0}/s {}", if held { "held" } else { "NOT held" });
        tried.push((rate, held));
        steps.push(step);
    }
    Ok(steps)
}

/// The figures as name, value and unit, as `compare` reads them back.
fn named(figures: &Figures) -> Vec<Compared> {
    figures.all().iter().map(|f| (f.name.clone(), f.value, f.unit.to_owned())).collect()
}

fn figures(
    baselines: &baselines::Baselines,
    bare: &bare_chain::BareChain,
    latency_runs: &[Step],
    steps: &[Step],
    exchange: &exchange::Exchange,
    gateway: &gateway::GatewayCost,
    exchange_serving_s: f64,
) -> Figures {
    let mut f = Figures::default();
    f.add(ECHO_P50, baselines.echo_latency.latency.p50_ms, "ms");
    f.add(ECHO_P99, baselines.echo_latency.latency.p99_ms, "ms");
    f.add(ECHO_RATE, baselines.echo_throughput.achieved_rate, "calls/s");
    let js = &baselines.jetstream;
    f.add("baseline.jetstream.publish_p50_ms", js.publish_one_latency.p50_ms, "ms");
    f.add("baseline.jetstream.publish_p99_ms", js.publish_one_latency.p99_ms, "ms");
    f.add("baseline.jetstream.publish_batched_per_s", js.publish_batched_per_s, "msgs/s");
    f.add("baseline.jetstream.consume_per_s", js.consume_per_s, "msgs/s");
    f.add(SQLITE_RATE, baselines.sqlite.commits_per_s, "commits/s");
    f.add("baseline.sqlite.commit_p50_ms", baselines.sqlite.commit_latency.p50_ms, "ms");
    f.add("baseline.sqlite.commit_p99_ms", baselines.sqlite.commit_latency.p99_ms, "ms");

    f.add(targets::BARE_RATE, bare.saturated.missions_per_s, "missions/s").against(SQLITE_RATE);
    f.add(targets::BARE_CPU, bare.at_rate.cpu_ms_per_mission, "CPU-ms");
    f.add(targets::BARE_SWITCHES, bare.at_rate.switches_per_mission, "switches");
    f.add("bare_chain.at_1000.p50_ms", bare.at_rate.chain.p50_ms, "ms").against(ECHO_P50);
    f.add("bare_chain.at_1000.p99_ms", bare.at_rate.chain.p99_ms, "ms").against(ECHO_P99);

    latency(&mut f, latency_runs);
    cpu_per_mission(&mut f, latency_runs);
    if let Some(cpu) = f.get(targets::CPU_PER_MISSION).map(|f| f.value) {
        f.add(targets::CHAIN_OF_BARE_CPU, cpu / bare.at_rate.cpu_ms_per_mission.max(1e-9), "x");
    }
    for step in steps {
        let name = |what: &str| format!("chain.{:.0}.{what}", step.offered_rate);
        let (calls, chain) = (&step.calls.latency, &step.chain);
        f.add(name("call_p50_ms"), calls.p50_ms, "ms").against(ECHO_P50);
        f.add(name("call_p99_ms"), calls.p99_ms, "ms").against(ECHO_P99);
        f.add(name("p50_ms"), chain.p50_ms, "ms").against(ECHO_P50);
        f.add(name("p90_ms"), chain.p90_ms, "ms").against(ECHO_P99);
        f.add(name("p99_ms"), chain.p99_ms, "ms").against(ECHO_P99).at_most(HELD_P99_MS);
        f.add(name("max_ms"), chain.max_ms, "ms").against(ECHO_P99);
        f.add(name("sustained_per_s"), step.chain_rate, "missions/s")
            .against(SQLITE_RATE)
            .at_least(0.95 * step.offered_rate);
    }
    let held =
        latency_runs.iter().chain(steps).filter(|s| s.held(HELD_P99_MS)).map(|s| s.offered_rate).fold(0.0, f64::max);
    f.add(targets::HELD_RATE, held, "missions/s").against(targets::BARE_RATE).at_least(3_000.0);
    f.add(targets::CHAIN_OF_BARE_RATE, 100.0 * held / bare.saturated.missions_per_s.max(1e-9), "%");

    let (healthy, open) = (&exchange.healthy, &exchange.breaker_open);
    f.add("exchange.healthy.p50_ms", healthy.latency.p50_ms, "ms").against(ECHO_P50);
    f.add(targets::EXCHANGE_P99, healthy.latency.p99_ms, "ms").against(ECHO_P99).at_most(5.0);
    #[allow(clippy::cast_precision_loss)] // call counts fit an f64 exactly
    let failed = healthy.failed.values().sum::<u64>() as f64;
    f.add("exchange.healthy.failed_calls", failed, "calls");
    f.add(targets::EXCHANGE_CPU, exchange.healthy_cpu_ms_per_call.values().sum::<f64>(), "cpu-ms");
    for (kind, ms) in &exchange.healthy_cpu_ms_per_call {
        f.add(format!("exchange.healthy.cpu_ms_per_call.{kind}"), *ms, "cpu-ms");
    }
    f.add("exchange.breaker_open.p50_ms", open.latency.p50_ms, "ms").against(ECHO_P50);
    f.add("exchange.breaker_open.p99_ms", open.latency.p99_ms, "ms").against(ECHO_P99);

    let (direct, via) = (&gateway.direct, &gateway.gateway);
    f.add("gateway.direct.p50_ms", direct.latency.latency.p50_ms, "ms").against(ECHO_P50);
    f.add("gateway.via.p50_ms", via.latency.latency.p50_ms, "ms").against(ECHO_P50);
    let added = via.latency.latency.p50_ms - direct.latency.latency.p50_ms;
    f.add(targets::GATEWAY_ADDED, added, "ms").against(ECHO_P50).at_most(0.25);
    f.add("gateway.direct.calls_per_s", direct.throughput.achieved_rate, "calls/s").against(ECHO_RATE);
    f.add("gateway.via.calls_per_s", via.throughput.achieved_rate, "calls/s").against(ECHO_RATE);
    let kept = 100.0 * via.throughput.achieved_rate / direct.throughput.achieved_rate.max(1e-9);
    f.add(targets::GATEWAY_KEPT, kept, "%").at_least(75.0);
    if let Some(nginx) = &gateway.nginx {
        f.add("nginx.via.p50_ms", nginx.latency.latency.p50_ms, "ms").against(ECHO_P50);
        let added = nginx.latency.latency.p50_ms - direct.latency.latency.p50_ms;
        f.add(targets::NGINX_ADDED, added, "ms").against(ECHO_P50);
        f.add("nginx.via.calls_per_s", nginx.throughput.achieved_rate, "calls/s").against(ECHO_RATE);
        let kept = 100.0 * nginx.throughput.achieved_rate / direct.throughput.achieved_rate.max(1e-9);
        f.add(targets::NGINX_KEPT, kept, "%");
    }

    let every_step: Vec<Step> = latency_runs.iter().chain(steps).cloned().collect();
    resources(&mut f, &every_step);
    let serving = every_step.iter().map(|s| s.serving_after_s).fold(exchange_serving_s, f64::max);
    f.add("startup.all_serving_s_worst", serving, "s").at_most(5.0);
    f
}

/// The chain's latency at 1,000/s: the median over the runs of each run's
/// p50 and p99, and how many runs, how long, how many samples.
fn latency(f: &mut Figures, runs: &[Step]) {
    if runs.is_empty() {
        return;
    }
    let median = |of: fn(&Step) -> f64| targets::median(&runs.iter().map(of).collect::<Vec<_>>()).unwrap_or(f64::NAN);
    f.add(targets::LATENCY_P50, median(|s| s.chain.p50_ms), "ms").against(ECHO_P50).at_most(8.0);
    f.add(targets::LATENCY_P99, median(|s| s.chain.p99_ms), "ms").against(ECHO_P99).at_most(20.0);
    f.add("latency.at_1000.call_p99_ms", median(|s| s.calls.latency.p99_ms), "ms").against(ECHO_P99);
    f.add("latency.at_1000.sustained_per_s", median(|s| s.chain_rate), "missions/s");
    #[allow(clippy::cast_precision_loss)] // small counts
    f.add(targets::LATENCY_RUNS, runs.len() as f64, "runs");
    f.add(targets::LATENCY_RUN_S, runs[0].calls.elapsed_s.round(), "s");
    #[allow(clippy::cast_precision_loss)] // sample counts fit an f64 exactly
    let samples = runs.iter().map(|s| s.chain.count).min().unwrap_or(0) as f64;
    f.add(targets::LATENCY_SAMPLES, samples, "samples");
    #[allow(clippy::cast_precision_loss)] // sample counts fit an f64 exactly
    let given_up = runs.iter().map(|s| s.samples_censored + s.samples_skipped).sum::<u64>() as f64;
    f.add("latency.at_1000.samples_given_up_or_skipped", given_up, "samples");
}

/// CPU milliseconds per mission at 1,000/s over every run at that rate,
/// each process (by kind) and in all: the services and nats-server, not
/// the load generator.
fn cpu_per_mission(f: &mut Figures, runs: &[Step]) {
    let per_process = cpu_ms_per_mission(runs);
    if per_process.is_empty() {
        return;
    }
    let total = system_total(&per_process);
    f.add(targets::CPU_PER_MISSION, total, "CPU-ms").at_most(0.5);
    let switches = switches_per_mission(runs);
    let all_switches = system_total(&switches);
    f.add(targets::SWITCHES_PER_MISSION, all_switches, "switches");
    if let Some(per_switch) = cpu_us_per_switch(total, all_switches) {
        f.add(targets::CPU_PER_SWITCH, per_switch, "CPU-µs");
    }
    for (kind, n) in switches.iter().filter(|(kind, _)| kind.as_str() != LOAD_GENERATOR) {
        f.add(format!("{}.{kind}", targets::SWITCHES_PER_MISSION), *n, "switches");
    }
    for (kind, ms) in per_process {
        if kind == LOAD_GENERATOR {
            // Not counted: the figure is the system's cost, not the load's.
            f.add("cpu.at_1000.load_generator_ms_per_mission", ms, "CPU-ms");
        } else {
            f.add(format!("{}{kind}", targets::CPU_PER_PROCESS), ms, "CPU-ms");
        }
    }
}

/// Prints one run's CPU milliseconds per mission answered, by process and
/// in all (the services and nats-server; the load generator apart).
pub fn print_cpu_per_mission(step: &Step) {
    let per_process = cpu_ms_per_mission(std::slice::from_ref(step));
    let total = system_total(&per_process);
    let each: Vec<String> = per_process.iter().map(|(kind, ms)| format!("{kind} {ms:.3}")).collect();
    println!("    CPU-ms per mission: {total:.3} in all ({}; the load generator not counted)", each.join(", "));
    let switches = switches_per_mission(std::slice::from_ref(step));
    let all = system_total(&switches);
    let each: Vec<String> = switches.iter().map(|(kind, n)| format!("{kind} {n:.1}")).collect();
    let per_switch =
        cpu_us_per_switch(total, all).map_or_else(String::new, |us| format!("; {us:.0} CPU-µs per switch"));
    println!("    context switches per mission: {all:.1} in all ({}){per_switch}", each.join(", "));
}

/// The sum over every kind of process but the load generator: what the
/// system itself spent.
fn system_total(by_kind: &BTreeMap<String, f64>) -> f64 {
    by_kind.iter().filter(|(kind, _)| kind.as_str() != LOAD_GENERATOR).map(|(_, value)| value).sum()
}

/// CPU microseconds per context switch, from CPU-ms and switches per mission.
fn cpu_us_per_switch(cpu_ms: f64, switches: f64) -> Option<f64> {
    (switches > 0.0).then(|| 1_000.0 * cpu_ms / switches)
}

/// Context switches per mission answered, by kind of process, over `runs`:
/// at a rate the machine has room for, each one is a thread that slept and
/// was woken, which is what a mission's CPU goes into (docs/performance.md).
fn switches_per_mission(runs: &[Step]) -> BTreeMap<String, f64> {
    #[allow(clippy::cast_precision_loss)] // switch counts of a run fit an f64 exactly
    per_mission(runs, |usage| usage.context_switches as f64)
}

/// CPU ms per mission answered, by kind of process, over `runs`.
fn cpu_ms_per_mission(runs: &[Step]) -> BTreeMap<String, f64> {
    per_mission(runs, |usage| 1_000.0 * usage.cpu_s)
}

fn per_mission(runs: &[Step], value: impl Fn(&resources::Usage) -> f64) -> BTreeMap<String, f64> {
    let missions = runs.iter().map(|s| s.calls.ok).sum::<u64>();
    resources::per_kind(runs.iter().flat_map(|s| &s.under_load), missions, value)
}

/// Memory at rest (the first step's start), the peak at the top rate (the
/// last step), and CPU seconds per 1,000 missions at the top rate.
fn resources(f: &mut Figures, steps: &[Step]) {
    let Some(first) = steps.first() else { return };
    let Some(top) = steps.iter().max_by(|a, b| a.offered_rate.total_cmp(&b.offered_rate)) else { return };
    let is_service = |name: &str| name != LOAD_GENERATOR && name != crate::mesh::NATS;
    for (name, usage) in &first.at_rest {
        let figure = f.add(format!("rss_at_rest_mb.{name}"), usage.rss_mb, "MB");
        if is_service(name) {
            figure.at_most(40.0);
        }
    }
    for (name, usage) in &top.under_load {
        let figure = f.add(format!("peak_rss_mb_at_{:.0}.{name}", top.offered_rate), usage.peak_rss_mb, "MB");
        if is_service(name) {
            figure.at_most(150.0);
        }
    }
    for (name, ms) in cpu_ms_per_mission(std::slice::from_ref(top)) {
        f.add(format!("cpu_s_per_1000_at_{:.0}.{name}", top.offered_rate), ms, "cpu-s");
    }
}

/// A figure as `compare` reads it back: name, value, unit.
type Compared = (String, f64, String);

/// Where `rewardsctl bench save-start` keeps the run the work started from,
/// which `compare` reads when no earlier run is named.
pub const START: &str = ".run/bench-start.json";

/// The start of issue 15's work as the repository keeps it, for a clone that
/// has no [`START`] of its own: d0cdadb's own `./dev bench`, run on the same
/// host as the run its record in `docs/performance.md` compares it with.
const KEPT_START: (&str, &str) = (
    "docs/bench/start-d0cdadb.json (kept in the repository)",
    include_str!("../../../../docs/bench/start-d0cdadb.json"),
);

/// Keeps `results` (default: the newest run's) as the run the work started
/// from: `rewardsctl bench save-start [RESULTS]`.
///
/// # Errors
/// When there is no run, or it cannot be copied.
pub fn save_start(results: Option<&Path>) -> anyhow::Result<()> {
    let results = match results {
        Some(path) => path.to_path_buf(),
        None => newest_run()?,
    };
    std::fs::copy(&results, START).with_context(|| format!("cannot copy {} to {START}", results.display()))?;
    println!("{} kept as the start of the work: {START}", results.display());
    Ok(())
}

/// The `results.json` of the newest `.run/bench-*` run.
fn newest_run() -> anyhow::Result<PathBuf> {
    let mut runs: Vec<PathBuf> = std::fs::read_dir(".run")
        .context("no .run directory: run `./dev bench` first")?
        .flatten()
        .map(|entry| entry.path())
        .filter(|path| path.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.starts_with("bench-")))
        .map(|path| path.join("results.json"))
        .filter(|path| path.is_file())
        .collect();
    // Directory names end with the UTC time the run started.
    runs.sort();
    runs.pop().context("no .run/bench-*/results.json: run `./dev bench` first")
}

/// A run's revision, load average at its end and figures, from the text of
/// its `results.json` (`name` says which, in errors).
fn read_run(name: &str, text: &str) -> anyhow::Result<(String, String, Vec<Compared>)> {
    let json: serde_json::Value = serde_json::from_str(text).with_context(|| format!("{name} is not a run's JSON"))?;
    let figures = json["figures"].as_array().with_context(|| format!("{name} has no figures"))?;
    let figures = figures
        .iter()
        .filter_map(|f| Some((f["name"].as_str()?.to_owned(), f["value"].as_f64()?, f["unit"].as_str()?.to_owned())))
        .collect();
    let load = json["machine"]["load_average"].as_str().unwrap_or("?").to_owned();
    Ok((json["revision"].as_str().unwrap_or("?").to_owned(), load, figures))
}

/// Prints two runs side by side, the targets first: `rewardsctl bench
/// compare [BEFORE] [AFTER]`, by default the start of the work ([`START`],
/// else the one the repository keeps) against the newest run.
///
/// # Errors
/// When a file cannot be read or holds no figures.
pub fn compare(before: Option<&Path>, after: Option<&Path>) -> anyhow::Result<()> {
    let file = |path: &Path| -> anyhow::Result<(String, String)> {
        let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
        Ok((path.display().to_string(), text))
    };
    let (before_name, before_text) = match before {
        Some(path) => file(path)?,
        None if Path::new(START).is_file() => file(Path::new(START))?,
        None => (KEPT_START.0.to_owned(), KEPT_START.1.to_owned()),
    };
    let (after_name, after_text) = file(&match after {
        Some(path) => path.to_path_buf(),
        None => newest_run()?,
    })?;
    let (rev_a, load_a, a) = read_run(&before_name, &before_text)?;
    let (rev_b, load_b, b) = read_run(&after_name, &after_text)?;
    println!("before {rev_a} ({before_name}; load average at its end {load_a})");
    println!("after  {rev_b} ({after_name}; load average at its end {load_b})\n");
    println!("{}", targets::compare_table(&targets::evaluate(&a), &targets::evaluate(&b)));
    let width = a.iter().chain(&b).map(|(n, _, _)| n.len()).max().unwrap_or(6);
    println!("{:<width$}  {:>12} {:>12} {:>8}  unit", "figure", "before", "after", "after/before");
    for (name, after_value, unit) in &b {
        let before_value = a.iter().find(|(n, _, _)| n == name).map(|(_, v, _)| *v);
        let ratio = before_value.filter(|v| *v != 0.0).map_or_else(String::new, |v| format!("{:.2}", after_value / v));
        let before_text = before_value.map_or_else(|| "-".to_owned(), |v| format!("{v:.2}"));
        println!("{name:<width$}  {before_text:>12} {after_value:>12.2} {ratio:>8}  {unit}");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options(line: &str) -> Result<Options, String> {
        #[derive(clap::Parser)]
        struct Bench {
            #[command(flatten)]
            args: Args,
        }
        let bench = <Bench as clap::Parser>::try_parse_from(std::iter::once("bench").chain(line.split_whitespace()))
            .map_err(|e| e.to_string())?;
        bench.args.options().map_err(|e| e.to_string())
    }

    #[test]
    fn the_start_the_repository_keeps_is_d0cdadbs_run_with_every_target_measured() {
        let (revision, _, figures) = read_run(KEPT_START.0, KEPT_START.1).unwrap();
        assert!(revision.starts_with("d0cdadb"), "{revision}");
        let rows = targets::evaluate(&figures);
        let unmeasured: Vec<_> = rows.iter().filter(|row| row.value.is_none()).map(|row| row.what).collect();
        assert!(unmeasured.is_empty(), "{unmeasured:?}");
    }

    #[test]
    fn a_file_that_is_not_a_run_is_refused_by_name() {
        let refused = |text: &str| read_run("x.json", text).unwrap_err().to_string();
        assert_eq!(refused("{"), "x.json is not a run's JSON");
        assert_eq!(refused(r#"{"revision": "abc"}"#), "x.json has no figures");
    }

    #[test]
    fn quick_runs_are_short_and_rates_can_be_chosen() {
        let full = options("").unwrap();
        assert_eq!(full.rates, [2_000.0]);
        assert_eq!((full.latency_runs, full.latency_duration), (5, Duration::from_secs(30)));
        assert_eq!(full.search_duration, Duration::from_secs(30));
        let quick = options("--quick --rates 100,200").unwrap();
        assert!(quick.quick);
        assert_eq!(quick.rates, [100.0, 200.0]);
        assert_eq!((quick.latency_runs, quick.latency_duration), (1, Duration::from_secs(10)));
        assert_eq!(quick.search_duration, Duration::from_secs(5));
        let seven = options("--quick --duration 7 --runs 3").unwrap();
        assert_eq!((seven.latency_runs, seven.search_duration), (3, Duration::from_secs(7)));
        assert!(options("--rates fast").is_err());
        assert!(options("--bogus").is_err());
    }
}
