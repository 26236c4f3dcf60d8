//! `rewardsctl bench`: the benchmarks, each a subcommand with its own
//! options; with no name, every benchmark runs with its defaults.
//!
//! - [`drain`]: how fast the reward service drains a backlog of
//!   MissionAchieved, with 1 and then 2 replicas.
//! - [`gateway_auth`]: the latency the gateway (token, roles, rate limit,
//!   proxy) adds to a call, against calling its service directly.
//!
//! A benchmark is a module with `Options::parse(args)` and `run(options)`,
//! listed in [`BENCHMARKS`] and in [`run`].

pub mod drain;
pub mod gateway_auth;

use std::path::PathBuf;
use std::time::SystemTime;

use anyhow::Context as _;

/// The benchmarks: name and what it measures.
pub const BENCHMARKS: [(&str, &str); 2] = [
    ("drain", "a backlog of MissionAchieved drained by 1, then 2 reward replicas"),
    ("gateway", "the latency the gateway adds to an authenticated call (p50/p99), against the service directly"),
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

/// Runs the benchmark named first in `args` with the rest as its options,
/// or every benchmark with its defaults.
///
/// # Errors
/// On an unknown benchmark or option, or when a benchmark fails.
pub async fn run(args: &[String]) -> anyhow::Result<()> {
    match args.first() {
        None => {
            for (name, _) in BENCHMARKS {
                run_one(name, &[]).await?;
            }
            Ok(())
        }
        Some(name) => run_one(name, &args[1..]).await,
    }
}

async fn run_one(name: &str, args: &[String]) -> anyhow::Result<()> {
    match name {
        "drain" => drain::run(drain::Options::parse(args).map_err(anyhow::Error::msg)?).await,
        "gateway" => gateway_auth::run(gateway_auth::Options::parse(args).map_err(anyhow::Error::msg)?).await,
        other => {
            let known: Vec<String> = BENCHMARKS.iter().map(|(name, what)| format!("  {name}: {what}")).collect();
            anyhow::bail!("no benchmark called {other:?}; there are:\n{}", known.join("\n"))
        }
    }
}
