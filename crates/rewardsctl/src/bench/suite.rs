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
use super::resources::{self, LOAD_GENERATOR};
use super::system::{self, System};
use super::{baselines, chain, exchange, gateway};
use crate::mesh::Shape;

/// What the run measures and for how long.
#[derive(Debug, Clone, Serialize)]
pub struct Options {
    pub quick: bool,
    pub rates: Vec<f64>,
    pub chain_duration: Duration,
    pub chain_drain: Duration,
    pub exchange_rate: f64,
    pub exchange_duration: Duration,
    pub gateway_duration: Duration,
    pub baseline_duration: Duration,
    /// Also measure the production shape, beside the single box.
    pub cluster: bool,
    #[serde(skip)]
    pub dir: PathBuf,
    #[serde(skip)]
    pub bin_dir: PathBuf,
}

impl Options {
    /// Parses `[--quick] [--cluster] [--rates R,R,…] [--duration SECS] [--run-dir DIR]`.
    ///
    /// # Errors
    /// On an unknown or malformed argument.
    pub fn parse(args: &[String]) -> Result<Self, String> {
        let quick = args.iter().any(|a| a == "--quick");
        let secs = Duration::from_secs;
        let mut options = Self {
            quick,
            rates: vec![500.0, 1_000.0, 2_000.0, 3_000.0, 5_000.0],
            chain_duration: if quick { secs(5) } else { secs(60) },
            chain_drain: if quick { secs(10) } else { secs(60) },
            exchange_rate: 1_000.0,
            exchange_duration: if quick { secs(5) } else { secs(30) },
            gateway_duration: if quick { secs(3) } else { secs(10) },
            baseline_duration: if quick { secs(2) } else { secs(5) },
            cluster: false,
            dir: PathBuf::from(".run").join(format!("bench-{}", crate::chaos::utc_stamp(SystemTime::now()))),
            bin_dir: super::bin_dir().map_err(|e| e.to_string())?,
        };
        let mut args = args.iter();
        while let Some(arg) = args.next() {
            match arg.as_str() {
                "--quick" => {}
                "--cluster" => options.cluster = true,
                "--rates" => {
                    let value = args.next().ok_or("--rates needs R,R,…")?;
                    options.rates = value
                        .split(',')
                        .map(|r| r.trim().parse::<f64>().map_err(|_| format!("--rates: {r:?} is not a rate")))
                        .collect::<Result<_, _>>()?;
                }
                "--duration" => {
                    let value = args.next().ok_or("--duration needs seconds")?;
                    options.chain_duration =
                        secs(value.parse().map_err(|_| format!("--duration: {value:?} is not a number of seconds"))?);
                }
                "--run-dir" => options.dir = args.next().ok_or("--run-dir needs a directory")?.into(),
                other => return Err(format!("unknown argument {other:?}")),
            }
        }
        Ok(options)
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
    let started_at = crate::chaos::utc_stamp(SystemTime::now());
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
    println!("-- chain");
    let chain_options = chain::Options {
        rates: options.rates.clone(),
        duration: options.chain_duration,
        drain: options.chain_drain,
        samples_per_s: 20.0,
        max_watches: 16,
        shape: Shape::Single,
    };
    let steps = chain::run(&dir, &options.bin_dir, &chain_options).await?;
    println!("-- exchange and gateway");
    let (exchange, gateway, exchange_serving) = exchange_and_gateway(Shape::Single, &dir.join("exchange"), &options)
        .await
        .and_then(|(exchange, gateway, serving)| Ok((exchange, gateway.context("no gateway figures")?, serving)))?;
    let cluster = if options.cluster {
        println!("-- the production shape: three NATS nodes, PostgreSQL, two replicas of everything");
        let cluster_dir = dir.join("cluster");
        let commits = if options.quick { 2_000 } else { 10_000 };
        let postgres = baselines::postgres(&cluster_dir.join("baseline"), commits).await?;
        let rates: Vec<f64> = [500.0, 1_000.0].into_iter().filter(|r| options.rates.contains(r)).collect();
        let chain_options = chain::Options { rates, shape: Shape::Cluster, ..chain_options };
        let chain = chain::run(&cluster_dir, &options.bin_dir, &chain_options).await?;
        let (exchange, _, serving) =
            exchange_and_gateway(Shape::Cluster, &cluster_dir.join("exchange"), &options).await?;
        Some(Cluster { postgres, chain, exchange, exchange_system_serving_after_s: serving })
    } else {
        None
    };

    let mut figures = figures(&baselines, &steps, &exchange, &gateway, exchange_serving);
    figures.resolve_ratios();
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
        println!("\n{}", shapes_table(&baselines, &steps, &exchange, cluster));
    }
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
            Some(gateway::run(&system, &entries[0].customer_id, &cost).await?)
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
    let total = |m: &BTreeMap<String, f64>| m.iter().filter(|(k, _)| *k != LOAD_GENERATOR).map(|(_, v)| v).sum();
    rows.push((
        "CPU-s per 1,000 missions at 1,000/s: all but the load".into(),
        value(Some(total(&a))),
        value(Some(total(&b))),
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

const ECHO_P50: &str = "baseline.echo.p50_ms";
const ECHO_P99: &str = "baseline.echo.p99_ms";
const ECHO_RATE: &str = "baseline.echo.calls_per_s";
const SQLITE_RATE: &str = "baseline.sqlite.commits_per_s";

fn figures(
    baselines: &baselines::Baselines,
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

    for step in steps {
        let name = |what: &str| format!("chain.{:.0}.{what}", step.offered_rate);
        let (calls, chain) = (&step.calls.latency, &step.chain);
        f.add(name("call_p50_ms"), calls.p50_ms, "ms").against(ECHO_P50);
        f.add(name("call_p99_ms"), calls.p99_ms, "ms").against(ECHO_P99);
        f.add(name("p50_ms"), chain.p50_ms, "ms").against(ECHO_P50);
        f.add(name("p90_ms"), chain.p90_ms, "ms").against(ECHO_P99);
        let p99 = f.add(name("p99_ms"), chain.p99_ms, "ms").against(ECHO_P99);
        if (step.offered_rate - 1_000.0).abs() < 0.5 {
            p99.at_most(20.0);
        } else if (step.offered_rate - 3_000.0).abs() < 0.5 {
            p99.at_most(50.0);
        }
        f.add(name("max_ms"), chain.max_ms, "ms").against(ECHO_P99);
        let rate = f.add(name("sustained_per_s"), step.chain_rate, "missions/s").against(SQLITE_RATE);
        if [1_000.0, 3_000.0].iter().any(|r| (step.offered_rate - r).abs() < 0.5) {
            rate.at_least(0.95 * step.offered_rate);
        }
    }
    let held = steps.iter().filter(|s| s.held(50.0)).map(|s| s.offered_rate).fold(0.0, f64::max);
    f.add("chain.highest_rate_held_p99_50ms", held, "missions/s").against(SQLITE_RATE).at_least(3_000.0);

    let (healthy, open) = (&exchange.healthy, &exchange.breaker_open);
    f.add("exchange.healthy.p50_ms", healthy.latency.p50_ms, "ms").against(ECHO_P50);
    f.add("exchange.healthy.p99_ms", healthy.latency.p99_ms, "ms").against(ECHO_P99).at_most(5.0);
    #[allow(clippy::cast_precision_loss)] // call counts fit an f64 exactly
    let failed = healthy.failed.values().sum::<u64>() as f64;
    f.add("exchange.healthy.failed_calls", failed, "calls");
    f.add("exchange.breaker_open.p50_ms", open.latency.p50_ms, "ms").against(ECHO_P50);
    f.add("exchange.breaker_open.p99_ms", open.latency.p99_ms, "ms").against(ECHO_P99);

    let (direct, via) = (&gateway.direct, &gateway.gateway);
    f.add("gateway.direct.p50_ms", direct.latency.latency.p50_ms, "ms").against(ECHO_P50);
    f.add("gateway.via.p50_ms", via.latency.latency.p50_ms, "ms").against(ECHO_P50);
    let added = 100.0 * (via.latency.latency.p50_ms / direct.latency.latency.p50_ms.max(1e-9) - 1.0);
    f.add("gateway.added_p50_pct", added, "%").at_most(10.0);
    f.add("gateway.direct.calls_per_s", direct.throughput.achieved_rate, "calls/s").against(ECHO_RATE);
    f.add("gateway.via.calls_per_s", via.throughput.achieved_rate, "calls/s").against(ECHO_RATE);
    let kept = 100.0 * via.throughput.achieved_rate / direct.throughput.achieved_rate.max(1e-9);
    f.add("gateway.throughput_kept_pct", kept, "%").at_least(85.0);

    resources(&mut f, steps);
    let serving = steps.iter().map(|s| s.serving_after_s).fold(exchange_serving_s, f64::max);
    f.add("startup.all_serving_s_worst", serving, "s").at_most(5.0);
    f
}

/// Memory at rest (the first step's start), the peak at the top rate (the
/// last step), and CPU seconds per 1,000 missions at the top rate.
fn resources(f: &mut Figures, steps: &[Step]) {
    let (Some(first), Some(top)) = (steps.first(), steps.last()) else { return };
    let is_service = |name: &str| name != LOAD_GENERATOR && name != crate::mesh::NATS;
    for (name, usage) in &first.at_rest {
        let figure = f.add(format!("rss_at_rest_mb.{name}"), usage.rss_mb, "MB");
        if is_service(name) {
            figure.at_most(40.0);
        }
    }
    #[allow(clippy::cast_precision_loss)] // mission counts fit an f64 exactly
    let thousands = (top.calls.ok as f64 / 1_000.0).max(1e-9);
    let cpu: BTreeMap<&String, f64> = top.under_load.iter().map(|(n, u)| (n, u.cpu_s / thousands)).collect();
    for (name, usage) in &top.under_load {
        let figure = f.add(format!("peak_rss_mb_at_{:.0}.{name}", top.offered_rate), usage.peak_rss_mb, "MB");
        if is_service(name) {
            figure.at_most(150.0);
        }
    }
    for (name, per_thousand) in cpu {
        f.add(format!("cpu_s_per_1000_at_{:.0}.{name}", top.offered_rate), per_thousand, "cpu-s");
    }
}

/// A figure as `compare` reads it back: name, value, unit.
type Compared = (String, f64, String);

/// Prints two runs' figures side by side: `rewardsctl bench compare A B`.
///
/// # Errors
/// When a file cannot be read or holds no figures.
pub fn compare(before: &Path, after: &Path) -> anyhow::Result<()> {
    let read = |path: &Path| -> anyhow::Result<(String, Vec<Compared>)> {
        let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
        let json: serde_json::Value = serde_json::from_str(&text)?;
        let figures = json["figures"].as_array().with_context(|| format!("{} has no figures", path.display()))?;
        let figures = figures
            .iter()
            .filter_map(|f| {
                Some((f["name"].as_str()?.to_owned(), f["value"].as_f64()?, f["unit"].as_str()?.to_owned()))
            })
            .collect();
        Ok((json["revision"].as_str().unwrap_or("?").to_owned(), figures))
    };
    let (rev_a, a) = read(before)?;
    let (rev_b, b) = read(after)?;
    println!("before {rev_a}\nafter  {rev_b}");
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

    #[test]
    fn quick_runs_are_short_and_rates_can_be_chosen() {
        let args = |a: &[&str]| a.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        let full = Options::parse(&[]).unwrap();
        assert_eq!(full.rates, [500.0, 1_000.0, 2_000.0, 3_000.0, 5_000.0]);
        assert_eq!(full.chain_duration, Duration::from_secs(60));
        let quick = Options::parse(&args(&["--quick", "--rates", "100, 200"])).unwrap();
        assert!(quick.quick);
        assert_eq!(quick.rates, [100.0, 200.0]);
        assert_eq!(quick.chain_duration, Duration::from_secs(5));
        assert!(Options::parse(&args(&["--rates", "fast"])).is_err());
        assert!(Options::parse(&args(&["--bogus"])).is_err());
    }
}
