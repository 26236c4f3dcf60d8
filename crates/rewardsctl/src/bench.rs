//! `rewardsctl bench`: the benchmarks, each a subcommand with its own
//! options.
//!
//! - [`suite`]: with no name (`just bench [--quick]`), every measurement in
//!   one run, a table and `results.json`; `compare A B` sets two side by side.
//! - [`baselines`]: bare tonic, JetStream and SQLite on this machine.
//! - [`bare_chain`]: the chain's gRPC hops, SQLite transactions and
//!   JetStream publishes and consumes per mission, in one process with no
//!   logic: the physical limit the chain is read against.
//! - [`chain`]: AchieveMission at fixed rates until my page shows ISSUED.
//! - [`report`]: figures, their baselines and targets; table and JSON.
//! - [`targets`]: issue 15's targets read from a run's figures, met or NOT
//!   MET beside the same run's baselines; the median, the search's next rate.
//! - [`drain`]: how fast the reward service drains a backlog of
//!   MissionAchieved, with 1 and then 2 replicas.
//! - [`exchange`]: ExchangeReward at a fixed rate with gift healthy, then
//!   with the wallet's circuit breaker open.
//! - [`gateway`]: one query straight to its service, through the gateway,
//!   and through nginx's `grpc_pass` (the peer proxy, [`nginx`]).
//! - [`hops`]: where the chain's time went, hop by hop, from a run's stores.
//! - [`system`]: the whole system started for a benchmark, and its seeding.
//! - [`gateway_auth`]: the latency the gateway (token, roles, rate limit,
//!   proxy) adds to a call, against calling its service directly.
//!
//! A benchmark is a module with its options and a `run`, a subcommand of
//! [`Args`].

pub mod bare_chain;
pub mod baselines;
pub mod chain;
pub mod drain;
pub mod exchange;
pub mod gateway;
pub mod gateway_auth;
pub mod hops;
pub mod nginx;
pub mod report;
pub mod suite;
pub mod system;
pub mod targets;

use std::path::PathBuf;
use std::time::Duration;

/// The command line of `rewardsctl bench`: a benchmark's name and its
/// options, or with no name the options of the whole suite.
#[derive(Debug, clap::Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct Args {
    #[command(subcommand)]
    benchmark: Option<Benchmark>,
    #[command(flatten)]
    suite: suite::Args,
}

/// One benchmark, or two runs' figures side by side.
#[derive(Debug, clap::Subcommand)]
enum Benchmark {
    /// Two runs side by side, the targets first (default: the start of the work against the newest run).
    Compare {
        /// The earlier run's results.json (default .run/bench-start.json, see save-start; without one, the start
        /// the repository keeps, docs/bench/start-d0cdadb.json).
        before: Option<PathBuf>,
        /// The later run's results.json (default the newest .run/bench-*/results.json).
        after: Option<PathBuf>,
    },
    /// Keeps a run (default the newest) as the start of the work, for compare: .run/bench-start.json.
    SaveStart {
        /// The run's results.json.
        results: Option<PathBuf>,
    },
    /// A backlog of MissionAchieved drained by 1, then 2 reward replicas.
    Drain(drain::Args),
    /// The chain's hops, commits, publishes and consumes in one process with no logic: CPU per mission at
    /// --rate, then the throughput with --concurrency missions in flight.
    BareChain(BareChainArgs),
    /// ExchangeReward healthy and with the breaker open, and the gateway's cost, on one seeded system.
    Exchange(ExchangeArgs),
    /// The latency the gateway adds to an authenticated GetWallet (p50/p90/p99), against wallet directly.
    GatewayAuth(gateway_auth::Args),
    /// Where the chain's time went, hop by hop (p50/p90/p99/max), from the stores a chain step left.
    Hops(hops::Args),
    /// One chain run on a fresh system: latency to ISSUED and CPU per mission by process, for measuring one
    /// change with and without it.
    Chain(ChainArgs),
}

/// The command line of `rewardsctl bench chain`.
#[derive(Debug, clap::Args)]
struct ChainArgs {
    /// Missions a second.
    #[arg(long, default_value_t = 1_000.0, value_name = "N")]
    rate: f64,
    /// How long the missions are driven, in seconds.
    #[arg(long, default_value_t = 20, value_name = "SECS")]
    duration: u64,
}

/// The command line of `rewardsctl bench bare-chain`.
#[derive(Debug, clap::Args)]
struct BareChainArgs {
    /// Missions a second of the CPU run.
    #[arg(long, default_value_t = 1_000.0, value_name = "N")]
    rate: f64,
    /// Missions in flight of the throughput run.
    #[arg(long, default_value_t = 256, value_name = "N")]
    concurrency: usize,
    /// How long each run lasts, in seconds.
    #[arg(long, default_value_t = 10, value_name = "SECS")]
    duration: u64,
}

/// The command line of `rewardsctl bench exchange`.
#[derive(Debug, clap::Args)]
struct ExchangeArgs {
    /// 5 seconds instead of 30, unless --duration says otherwise.
    #[arg(long)]
    quick: bool,
    /// How long the exchange is driven, in seconds.
    #[arg(long, value_name = "SECS")]
    duration: Option<u64>,
    /// Exchanges a second.
    #[arg(long, default_value_t = 1_000.0, value_name = "N")]
    rate: f64,
}

/// Runs the benchmark asked for; with no name, the whole suite.
///
/// # Errors
/// When a benchmark fails.
pub async fn run(args: Args) -> anyhow::Result<()> {
    match args.benchmark {
        None => suite::run(args.suite.options()?).await.map(drop),
        Some(Benchmark::Compare { before, after }) => suite::compare(before.as_deref(), after.as_deref()),
        Some(Benchmark::SaveStart { results }) => suite::save_start(results.as_deref()),
        Some(Benchmark::Drain(args)) => drain::run(args.options()?).await,
        Some(Benchmark::BareChain(args)) => {
            let dir = crate::runs::benchmark("bare-chain");
            println!("\n== The bare chain (nats-server and stores in {}) ==", dir.display());
            let options = bare_chain::Options {
                rate: args.rate,
                concurrency: args.concurrency,
                duration: Duration::from_secs(args.duration),
            };
            bare_chain::run(&dir, &crate::runs::bin_dir()?, &options).await.map(drop)
        }
        Some(Benchmark::Exchange(args)) => {
            let duration = Duration::from_secs(args.duration.unwrap_or(if args.quick { 5 } else { 30 }));
            run_exchange(exchange::Options { rate: args.rate, duration }).await
        }
        Some(Benchmark::GatewayAuth(args)) => gateway_auth::run(args.options()?).await,
        Some(Benchmark::Hops(args)) => hops::run(args).await,
        Some(Benchmark::Chain(args)) => {
            let dir = crate::runs::benchmark("chain");
            println!("\n== The chain (processes, stores and logs in {}) ==", dir.display());
            let options = chain::Options {
                duration: Duration::from_secs(args.duration),
                drain: Duration::from_secs(30),
                samples_per_s: chain::SAMPLES_PER_S,
                max_watches: chain::MAX_WATCHES,
                shape: crate::mesh::Shape::Single,
            };
            let step = chain::run_step(&dir, &crate::runs::bin_dir()?, &options, args.rate).await?;
            suite::print_cpu_per_mission(&step);
            Ok(())
        }
    }
}

/// `rewardsctl bench exchange`: the whole system, seeded, then the exchange
/// and the gateway's cost.
async fn run_exchange(options: exchange::Options) -> anyhow::Result<()> {
    let duration = options.duration;
    let dir = crate::runs::benchmark("exchange");
    println!("\n== Exchange and gateway cost (processes, stores and logs in {}) ==", dir.display());
    let system =
        system::System::start(crate::mesh::Shape::Single, dir.clone(), crate::runs::bin_dir()?, exchange::system_env())
            .await?;
    println!("  all SERVING {:.1}s after start", system.serving_after.as_secs_f64());
    let result = async {
        let entries = system::seed_entries(&system, "bench-x", options.entries_needed()).await?;
        system::restock_gift(&system, 10_000_000).await?;
        let quiet = system::wait_until_quiet(&system, Duration::from_secs(120)).await?;
        println!("  every consumer idle {:.1}s after seeding", quiet.as_secs_f64());
        exchange::run(&system, &entries, &options).await?;
        system::wait_until_quiet(&system, Duration::from_secs(120)).await?;
        let cost = gateway::Options { rate: 1_000.0, concurrency: 16, duration: duration.min(Duration::from_secs(10)) };
        gateway::run(&system, &entries[0].customer_id, &cost, &dir).await?;
        anyhow::Ok(())
    }
    .await;
    system.stop().await;
    result
}
