//! The command line of `rewardsctl`: one subcommand per command module,
//! each module owning its options; `--help` is generated from them.

use clap::{Parser, Subcommand};

use crate::{attack, bench, chaos, dead_letters, demo, overload, token, up};

/// Runs the whole mesh locally, plays the player's story against it, proves
/// its delivery guarantees under chaos, and measures it.
#[derive(Debug, Parser)]
#[command(name = "rewardsctl")]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

/// What `rewardsctl` was asked to do.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Start nats-server and every service locally (supervised), wait until all are SERVING, and run
    /// until Ctrl-C.
    Up(up::Options),
    /// Play the player's story against a running system.
    Demo(demo::Options),
    /// Print a bearer token signed with the development key of `up` (DIR/auth, made if missing), for
    /// grpcurl -H "authorization: Bearer $TOKEN".
    Token(token::Options),
    /// Start the whole system (2 replicas of reward, wallet and mypage) in a fresh directory, drive
    /// missions and exchanges through the gateway while SIGKILLing a random process every few
    /// seconds (nats-server at least once), wait for quiescence and check that nothing was lost or
    /// applied twice.
    Chaos(chaos::Args),
    /// Start the whole system in a fresh directory; players exchange rewards while others achieve
    /// missions, gift is slowed beyond the wallet's deadline, then recovers: watch the breaker open,
    /// players turned away at once, missions flowing, and the breaker close again.
    Overload(overload::Args),
    /// Start the whole system in a fresh directory and run each attack of issue 17 beside a canary
    /// player: the canary's success and p50/p99, the gateway's CPU, peak memory and recovery, and
    /// whether each target is met (build with --release for figures that mean anything).
    Attack(attack::Args),
    /// The benchmarks: with no name, every measurement in one run (a table and
    /// .run/bench-<time>/results.json); or one benchmark, or two runs compared.
    Bench(bench::Args),
    /// The events consumers gave up on: list them, or send one back to its consumer.
    DeadLetters(dead_letters::Options),
}

/// Parses `line` (the arguments after `rewardsctl`, split on whitespace) as the binary would.
///
/// # Errors
/// clap's message, naming the argument at fault.
#[cfg(test)]
pub fn parse(line: &str) -> Result<Command, String> {
    Cli::try_parse_from(std::iter::once("rewardsctl").chain(line.split_whitespace()))
        .map(|cli| cli.command)
        .map_err(|error| error.to_string())
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory as _;

    use super::*;

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn every_documented_invocation_parses() {
        for line in [
            "up --cluster --demo --prometheus --replicas reward=2,wallet=2 --run-dir .run",
            "demo --gateway http://127.0.0.1:8080",
            "token player-1 --role operator --ttl 60",
            "chaos --cluster --missions 10 --exchanges 2 --kill-every 2 --seed 7",
            "overload --players 10 --rate 5 --concurrency 2 --phase-secs 3",
            "attack --secs 10 --idle-wait 5 --gateway-env MALLOC_ARENA_MAX=2",
            "bench --quick --cluster --rates 500,1000 --duration 5",
            "bench compare a.json b.json",
            "bench drain --events 100",
            "bench exchange --quick --rate 100",
            "bench gateway-auth --calls 10 --warmup 1",
            "bench hops .run/bench-20261206-000000/chain-1000/data",
            "dead-letters list --limit 5",
            "dead-letters redrive 42",
        ] {
            assert!(parse(line).is_ok(), "{line}: {:?}", parse(line).err());
        }
    }

    #[test]
    fn a_command_is_required_and_unknown_ones_are_refused() {
        assert!(parse("").is_err());
        assert!(parse("teleport").unwrap_err().contains("teleport"));
        assert!(parse("up --replicas gift=12").unwrap_err().contains("1 to 9"));
        assert!(parse("bench drain --events 0").is_err());
        assert!(parse("bench --quick drain").is_err(), "the suite's options are not a benchmark's");
    }
}
