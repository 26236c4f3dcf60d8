//! The `rewardsctl` binary: parses the command line and runs the command.
//!
//! - `rewardsctl up [--demo] [--prometheus] [--replicas SERVICE=N,…]`: starts a nats-server
//!   with JetStream and every service as its own supervised OS process, each
//!   service with its own SQLite file under `.run/`; waits until all are
//!   SERVING, prints the endpoints; Ctrl-C stops everything cleanly.
//! - `rewardsctl demo [--gateway URL]`: plays the story through the gateway.
//! - `rewardsctl token CUSTOMER_ID [--role operator]`: a development token.
//! - `rewardsctl chaos [...]`: the chaos test (see [`rewardsctl::chaos`]).
//! - `rewardsctl overload [...]`: the breaker against a slowed gift (see [`rewardsctl::overload`]).
//! - `rewardsctl bench [NAME] [...]`: the benchmarks (see [`rewardsctl::bench`]).
//! - `rewardsctl attack [...]`: the edge under hostile load (see [`rewardsctl::attack`]).
//! - `rewardsctl dead-letters list|redrive SEQ`: the events consumers gave up on.

use std::process::ExitCode;

use anyhow::Context as _;
use rewardsctl::{attack, bench, chaos, dead_letters, demo, overload, token, up};

const USAGE: &str = "\
usage:
  rewardsctl up [--cluster] [--demo] [--prometheus] [--replicas SERVICE=N,...] [--run-dir DIR]
      start nats-server and every service locally (supervised), wait until all
      are SERVING; with --demo, play the player's story once they are;
      with --prometheus, also a Prometheus on 127.0.0.1:9090 scraping every
      process (Debian's `prometheus`; ./dev up --prometheus installs it).
      --replicas reward=2,wallet=2 runs services (and the gateway) as
      several processes. --cluster: the production shape — three nats-servers
      clustered with JetStream (streams replicated 3 times), a PostgreSQL of
      the runner's own with a database per service (Debian's `postgresql`;
      ./dev up --cluster installs it), two replicas of everything
  rewardsctl demo [--gateway URL] [--run-dir DIR]
      play the player's story against a running system (default http://127.0.0.1:8080)
  rewardsctl token CUSTOMER_ID [--role player|operator] [--ttl SECONDS] [--run-dir DIR]
      print a bearer token signed with the development key of `up` (DIR/auth,
      made if missing), for grpcurl -H \"authorization: Bearer $TOKEN\";
      with --role operator the customer id may be left out
  rewardsctl chaos [--cluster] [--missions N] [--exchanges M] [--kill-every SECS] [--seed S] [--run-dir DIR]
      start the whole system (2 replicas of reward, wallet and mypage) in a fresh
      directory, drive N AchieveMission calls (default 2000) and M exchanges
      (default 300) through the gateway while killing a random process with
      SIGKILL every SECS seconds (default 3) and nats-server at least once, wait
      for quiescence and check that nothing was lost or applied twice.
      --cluster: on the production shape (see up), 5000 missions and 500
      exchanges by default, killing the JetStream meta leader and stream
      leaders (one node at a time) and stopping PostgreSQL for 5 s or more
      (SIGKILL of the postmaster) at least twice
  rewardsctl overload [--players N] [--rate R] [--concurrency C] [--phase-secs S] [--run-dir DIR]
      start the whole system in a fresh directory; players exchange rewards while
      others achieve missions, gift is slowed beyond the wallet's deadline, then
      recovers: watch the breaker open, players turned away at once, missions
      flowing, and the breaker close again
  rewardsctl attack [--only NAME,...] [--secs S] [--idle-wait S] [--run-dir DIR]
                    [--gateway-env VARIABLE=VALUE ...]
      start the whole system in a fresh directory and run each attack of issue 17
      for S seconds (default 20) while a canary player reads their page every
      50 ms: a table of the canary's success and p50/p99, the gateway's CPU,
      peak memory and recovery, and whether each target is met (build with
      --release for figures that mean anything); --gateway-env sets a variable
      of the gateway's environment, to measure another setting
  rewardsctl dead-letters list [--limit N] [--nats URL]
  rewardsctl dead-letters redrive SEQUENCE [--nats URL]
      list the events consumers gave up on (with the reason), or send one back
      to its consumer under its own Event-Id (default NATS nats://127.0.0.1:14222)
  rewardsctl bench [--quick] [--cluster] [--rates R,R,...] [--duration SECS] [--run-dir DIR]
      every measurement in one run (baselines; the chain at 500, 1000, 2000, 3000
      and 5000 missions/s, 60 s each, 5 s with --quick; the exchange healthy and
      with the breaker open; the gateway's cost; resources): prints a table and
      writes .run/bench-<time>/results.json. --cluster: then the chain at 500
      and 1000/s and the exchange on the production shape (see up --cluster)
      with a PostgreSQL commit baseline, both shapes side by side
  rewardsctl bench compare BEFORE.json AFTER.json
      two runs' figures side by side
  rewardsctl bench NAME [OPTIONS]
      one benchmark:
      drain [--events N]   drain a backlog of N MissionAchieved (default 10000)
                           with 1, then 2 reward replicas
      exchange [--quick] [--duration SECS] [--rate N]
                           ExchangeReward healthy and with the breaker open, and
                           the gateway's cost, on one seeded system
      gateway-auth [--calls N] [--warmup N]
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
        Some("overload") => return run_overload(&args[1..]).await,
        Some("attack") => return run_attack(&args[1..]).await,
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
        Err(error) => failed(&error),
    }
}

async fn run_chaos(args: &[String]) -> ExitCode {
    let options =
        bin_dir().and_then(|dir| chaos::Options::parse(args, dir).map_err(|e| anyhow::anyhow!("{e}\n{USAGE}")));
    match options {
        Ok(options) => verdict(chaos::run(options).await, chaos::Report::print, chaos::Report::passed),
        Err(error) => failed(&error),
    }
}

async fn run_overload(args: &[String]) -> ExitCode {
    let options =
        bin_dir().and_then(|dir| overload::Options::parse(args, dir).map_err(|e| anyhow::anyhow!("{e}\n{USAGE}")));
    match options {
        Ok(options) => verdict(overload::run(options).await, overload::Report::print, overload::Report::passed),
        Err(error) => failed(&error),
    }
}

async fn run_attack(args: &[String]) -> ExitCode {
    let options =
        bin_dir().and_then(|dir| attack::Options::parse(args, dir).map_err(|e| anyhow::anyhow!("{e}\n{USAGE}")));
    match options {
        Ok(options) => verdict(attack::run(options).await, attack::Report::print, attack::Report::passed),
        Err(error) => failed(&error),
    }
}

/// Prints a run's report and exits by whether it passed.
fn verdict<R>(report: anyhow::Result<R>, print: impl Fn(&R), passed: impl Fn(&R) -> bool) -> ExitCode {
    match report {
        Ok(report) => {
            print(&report);
            if passed(&report) { ExitCode::SUCCESS } else { ExitCode::FAILURE }
        }
        Err(error) => failed(&error),
    }
}

fn failed(error: &anyhow::Error) -> ExitCode {
    eprintln!("rewardsctl: {error:#}");
    ExitCode::FAILURE
}

/// Where the service binaries are: next to this one.
fn bin_dir() -> anyhow::Result<std::path::PathBuf> {
    std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(std::path::Path::to_path_buf))
        .context("rewardsctl has no directory")
}

fn usage_error(message: &str) -> anyhow::Result<()> {
    anyhow::bail!("{message}\n{USAGE}")
}
