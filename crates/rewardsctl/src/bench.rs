//! `rewardsctl bench`: the benchmarks, each a subcommand with its own
//! options.
//!
//! - [`suite`]: with no name (`just bench [--quick]`), every measurement in
//!   one run, a table and `results.json`; `compare A B` sets two side by side.
//! - [`baselines`]: bare tonic, JetStream and SQLite on this machine.
//! - [`chain`]: AchieveMission at fixed rates until my page shows ISSUED.
//! - [`resources`]: each process's memory and CPU time, from `/proc`.
//! - [`report`]: figures, their baselines and targets; table and JSON.
//! - [`drain`]: how fast the reward service drains a backlog of
//!   MissionAchieved, with 1 and then 2 replicas.
//! - [`exchange`]: ExchangeReward at a fixed rate with gift healthy, then
//!   with the wallet's circuit breaker open.
//! - [`gateway`]: one query straight to its service and through the gateway.
//! - [`system`]: the whole system started for a benchmark, and its seeding.
//! - [`gateway_auth`]: the latency the gateway (token, roles, rate limit,
//!   proxy) adds to a call, against calling its service directly.
//!
//! A benchmark is a module with its options and a `run`, listed in
//! [`BENCHMARKS`] and in [`run`].

pub mod baselines;
pub mod chain;
pub mod drain;
pub mod exchange;
pub mod gateway;
pub mod gateway_auth;
pub mod report;
pub mod resources;
pub mod suite;
pub mod system;

use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use anyhow::Context as _;

/// The benchmarks: name and what it measures.
pub const BENCHMARKS: [(&str, &str); 3] = [
    ("drain", "a backlog of MissionAchieved drained by 1, then 2 reward replicas"),
    ("exchange", "ExchangeReward at 1,000/s with gift healthy and with the breaker open; the gateway's cost"),
    ("gateway-auth", "the latency the gateway adds to an authenticated call (p50/p99), against the service directly"),
];

/// Where a benchmark's processes, stores and logs go: `.run/bench-<UTC time>/<name>`.
pub fn run_dir(name: &str) -> PathBuf {
    PathBuf::from(".run").join(format!("bench-{}", crate::chaos::utc_stamp(SystemTime::now()))).join(name)
}

/// The directory of the service binaries: next to `rewardsctl`.
///
/// # Errors
/// When the running executable has no directory.
pub fn bin_dir() -> anyhow::Result<PathBuf> {
    Ok(std::env::current_exe()?.parent().context("rewardsctl has no directory")?.to_path_buf())
}

/// Runs the benchmark named first in `args` with the rest as its options;
/// with no name (only options such as `--quick`), the whole suite.
///
/// # Errors
/// On an unknown benchmark or option, or when a benchmark fails.
pub async fn run(args: &[String]) -> anyhow::Result<()> {
    match args.first().map(String::as_str) {
        None => suite::run(suite::Options::parse(args).map_err(anyhow::Error::msg)?).await.map(drop),
        Some(option) if option.starts_with("--") => {
            suite::run(suite::Options::parse(args).map_err(anyhow::Error::msg)?).await.map(drop)
        }
        Some("compare") => match &args[1..] {
            [before, after] => suite::compare(before.as_ref(), after.as_ref()),
            _ => anyhow::bail!("usage: rewardsctl bench compare BEFORE/results.json AFTER/results.json"),
        },
        Some(name) => run_one(name, &args[1..]).await,
    }
}

async fn run_one(name: &str, args: &[String]) -> anyhow::Result<()> {
    match name {
        "drain" => drain::run(drain::Options::parse(args).map_err(anyhow::Error::msg)?).await,
        "exchange" => run_exchange(args).await,
        "gateway-auth" => gateway_auth::run(gateway_auth::Options::parse(args).map_err(anyhow::Error::msg)?).await,
        other => {
            let known: Vec<String> = BENCHMARKS.iter().map(|(name, what)| format!("  {name}: {what}")).collect();
            anyhow::bail!("no benchmark called {other:?}; there are:\n{}", known.join("\n"))
        }
    }
}

/// `rewardsctl bench exchange [--quick] [--duration SECS] [--rate N]`: the
/// whole system, seeded, then the exchange and the gateway's cost.
async fn run_exchange(args: &[String]) -> anyhow::Result<()> {
    let mut duration = Duration::from_secs(30);
    let mut rate = 1_000.0;
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--quick" => duration = Duration::from_secs(5),
            "--duration" => {
                let value = args.next().context("--duration needs seconds")?;
                duration = Duration::from_secs(value.parse().context("--duration: not a number of seconds")?);
            }
            "--rate" => rate = args.next().context("--rate needs calls/s")?.parse().context("--rate: not a number")?,
            other => anyhow::bail!("unknown argument {other:?}"),
        }
    }
    let dir = run_dir("exchange");
    println!("\n== Exchange and gateway cost (processes, stores and logs in {}) ==", dir.display());
    let system = system::System::start(crate::mesh::Shape::Single, dir, bin_dir()?, exchange::system_env()).await?;
    println!("  all SERVING {:.1}s after start", system.serving_after.as_secs_f64());
    let options = exchange::Options { rate, duration };
    let result = async {
        let entries = system::seed_entries(&system, "bench-x", options.entries_needed()).await?;
        system::restock_gift(&system, 10_000_000).await?;
        let quiet = system::wait_until_quiet(&system, Duration::from_secs(120)).await?;
        println!("  every consumer idle {:.1}s after seeding", quiet.as_secs_f64());
        exchange::run(&system, &entries, &options).await?;
        system::wait_until_quiet(&system, Duration::from_secs(120)).await?;
        let cost = gateway::Options { rate: 1_000.0, concurrency: 16, duration: duration.min(Duration::from_secs(10)) };
        gateway::run(&system, &entries[0].customer_id, &cost).await?;
        anyhow::Ok(())
    }
    .await;
    system.stop().await;
    result
}
