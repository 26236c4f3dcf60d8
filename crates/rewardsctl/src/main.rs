//! `rewardsctl`: run the whole mesh on one machine, and play the player's
//! story against it.
//!
//! - `rewardsctl up [--demo] [--replicas SERVICE=N,…]`: starts a nats-server
//!   with JetStream and every service as its own supervised OS process, each
//!   with its own SQLite file under `.run/`; waits until all are SERVING,
//!   prints the endpoints; Ctrl-C stops everything cleanly.
//! - `rewardsctl demo [--gateway URL]`: plays the story through the gateway.

mod demo;
mod supervisor;
mod up;

use std::process::ExitCode;

const USAGE: &str = "\
usage:
  rewardsctl up [--demo] [--replicas SERVICE=N,...] [--run-dir DIR]
      start nats-server and every service locally (supervised), wait until all
      are SERVING; with --demo, play the player's story once they are
  rewardsctl demo [--gateway URL]
      play the player's story against a running system (default http://127.0.0.1:8080)";

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

fn usage_error(message: &str) -> anyhow::Result<()> {
    anyhow::bail!("{message}\n{USAGE}")
}
