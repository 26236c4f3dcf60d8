//! The `rewardsctl` binary: parses the command line ([`rewardsctl::cli`])
//! and runs the command. `rewardsctl --help` lists the commands,
//! `rewardsctl COMMAND --help` their options.

use std::process::ExitCode;

use clap::Parser as _;
use rewardsctl::cli::{Cli, Command};
use rewardsctl::{attack, bench, chaos, dead_letters, demo, overload, runs, token, up};

#[tokio::main]
async fn main() -> ExitCode {
    let result = match Cli::parse().command {
        Command::Up(options) => up::run(options).await,
        Command::Demo(options) => demo::run(&options).await,
        Command::Token(options) => token::run(&options),
        Command::Chaos(args) => {
            return match runs::bin_dir().and_then(|dir| args.options(dir).map_err(anyhow::Error::msg)) {
                Ok(options) => verdict(chaos::run(options).await, chaos::Report::print, chaos::Report::passed),
                Err(error) => failed(&error),
            };
        }
        Command::Overload(args) => {
            return match runs::bin_dir() {
                Ok(dir) => {
                    verdict(overload::run(args.options(dir)).await, overload::Report::print, overload::Report::passed)
                }
                Err(error) => failed(&error),
            };
        }
        Command::Attack(args) => {
            return match runs::bin_dir() {
                Ok(dir) => verdict(attack::run(args.options(dir)).await, attack::Report::print, attack::Report::passed),
                Err(error) => failed(&error),
            };
        }
        Command::Bench(args) => bench::run(args).await,
        Command::DeadLetters(options) => dead_letters::run(options).await,
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
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
