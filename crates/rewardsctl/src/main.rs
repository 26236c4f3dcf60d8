//! The `rewardsctl` binary: parses the command line and runs the command.
//!
//! - `rewardsctl up [--demo] [--replicas SERVICE=N,…]`: starts a nats-server
//!   with JetStream and every service as its own supervised OS process, each
//!   service with its own SQLite file under `.run/`; waits until all are
//!   SERVING, prints the endpoints; Ctrl-C stops everything cleanly.
//! - `rewardsctl demo [--gateway URL]`: plays the story through the gateway.
//! - `rewardsctl token CUSTOMER_ID [--role operator]`: a development token.
//! - `rewardsctl chaos [...]`: the chaos test (see [`rewardsctl::chaos`]).
//! - `rewardsctl bench [NAME] [...]`: the benchmarks (see [`rewardsctl::bench`]).
//! - `rewardsctl dead-letters list|redrive SEQ`: the events consumers gave up on.

use std::process::ExitCode;

use anyhow::Context as _;
use rewardsctl::{bench, chaos, dead_letters, demo, token, up};

const USAGE: &str = "\
usage:
  rewardsctl up [--demo] [--replicas SERVICE=N,...] [--run-dir DIR]
      start nats-server and every service locally (supervised), wait until all
      are SERVING; with --demo, play the player's story once they are.
      --replicas reward=2,wallet=2 runs services (any but the gateway) as
      several processes behind the gateway
  rewardsctl demo [--gateway URL] [--run-dir DIR]
      play the player's story against a running system (default http://127.0.0.1:8080)
  rewardsctl token CUSTOMER_ID [--role player|operator] [--ttl SECONDS] [--run-dir DIR]
      print a bearer token signed with the development key of `up` (DIR/auth,
      made if missing), for grpcurl -H \"authorization: Bearer $TOKEN\";
      with --role operator the customer id may be left out
  rewardsctl chaos [--missions N] [--exchanges M] [--kill-every SECS] [--seed S] [--run-dir DIR]
      start the whole system (2 replicas of reward, wallet and mypage) in a fresh
      directory, drive N AchieveMission calls (default 2000) and M exchanges
      (default 300) through the gateway while killing a random process with
      SIGKILL every SECS seconds (default 3) and nats-server at least once, wait
      for quiescence and check that nothing was lost or applied twice
  rewardsctl dead-letters list [--limit N] [--nats URL]
  rewardsctl dead-letters redrive SEQUENCE [--nats URL]
      list the events consumers gave up on (with the reason), or send one back
      to its consumer under its own Event-Id (default NATS nats://127.0.0.1:14222)
  rewardsctl bench [NAME [OPTIONS]]
      run one benchmark, or all of them with their defaults:
      drain [--events N]   drain a backlog of N MissionAchieved (default 10000)
                           with 1, then 2 reward replicas
      gateway [--calls N] [--warmup N]
                           the latency the gateway adds to an authenticated
                           GetWallet (p50/p90/p99), against wallet directly";

#[tokio::main]
async fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("up") => match up::Options::parse(&args[1..]) {
            Ok(options) => up::run(options).await,
            Err(error) => usage_error(&error),
        },
        Some("demo") => match demo::Options::parse(&args[1..]) {
            Ok(options) => demo::run(&options).await,
            Err(error) => usage_error(&error),
        },
        Some("token") => match token::Options::parse(&args[1..]) {
            Ok(options) => token::run(&options),
            Err(error) => usage_error(&error),
        },
        Some("chaos") => return run_chaos(&args[1..]).await,
        Some("bench") => bench::run(&args[1..]).await,
        Some("dead-letters") => match dead_letters::Command::parse(&args[1..]) {
            Ok(command) => dead_letters::run(command).await,
            Err(error) => usage_error(&error),
        },
        Some("-h" | "--help" | "help") => {
            println!("{USAGE}");
            Ok(())
        }
        _ => usage_error("a command is required"),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("rewardsctl: {error:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run_chaos(args: &[String]) -> ExitCode {
    let options = std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(std::path::Path::to_path_buf))
        .context("rewardsctl has no directory")
        .and_then(|bin_dir| chaos::Options::parse(args, bin_dir).map_err(|e| anyhow::anyhow!("{e}\n{USAGE}")));
    let report = match options {
        Ok(options) => chaos::run(options).await,
        Err(error) => Err(error),
    };
    match report {
        Ok(report) => {
            report.print();
            if report.passed() { ExitCode::SUCCESS } else { ExitCode::FAILURE }
        }
        Err(error) => {
            eprintln!("rewardsctl: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn usage_error(message: &str) -> anyhow::Result<()> {
    anyhow::bail!("{message}\n{USAGE}")
}
