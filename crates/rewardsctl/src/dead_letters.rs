//! `rewardsctl dead-letters`: list the events consumers gave up on, and
//! re-drive one after the cause is fixed.

use anyhow::Context as _;

/// The runner's nats-server (see `rewardsctl up`).
const DEFAULT_NATS_URL: &str = "nats://127.0.0.1:14222";

/// Options of `rewardsctl dead-letters`.
#[derive(Debug, PartialEq, Eq, clap::Args)]
pub struct Options {
    /// The NATS server whose dead letters these are.
    #[arg(long = "nats", global = true, default_value = DEFAULT_NATS_URL, value_name = "URL")]
    nats_url: String,
    #[command(subcommand)]
    command: Command,
}

/// What `rewardsctl dead-letters` was asked to do.
#[derive(Debug, PartialEq, Eq, clap::Subcommand)]
pub enum Command {
    /// List the events consumers gave up on, with the reason.
    List {
        /// At most this many.
        #[arg(long, default_value_t = 100, value_name = "N")]
        limit: usize,
    },
    /// Send one back to its consumer under its own Event-Id.
    Redrive {
        /// The dead letter's sequence, as `list` shows it.
        sequence: u64,
    },
}

/// Runs the command against the NATS server.
///
/// # Errors
/// When NATS cannot be reached or the dead letter cannot be re-driven.
pub async fn run(options: Options) -> anyhow::Result<()> {
    let Options { nats_url, command } = options;
    let client = async_nats::connect(&nats_url).await.with_context(|| format!("cannot reach NATS at {nats_url}"))?;
    let js = async_nats::jetstream::new(client);
    match command {
        Command::List { limit } => {
            let letters = platform::dead_letters::list(&js, limit).await?;
            if letters.is_empty() {
                println!("no dead letters");
            }
            for letter in letters {
                println!(
                    "#{seq} consumer={consumer} subject={subject} event_id={event_id} mission_id={mission} \
                     customer_id={customer} deliveries={deliveries}\n    reason: {reason}",
                    seq = letter.sequence,
                    consumer = letter.consumer,
                    subject = letter.subject,
                    event_id = letter.event_id,
                    mission = letter.mission_id,
                    customer = letter.customer_id,
                    deliveries = letter.deliveries,
                    reason = letter.reason,
                );
            }
        }
        Command::Redrive { sequence } => {
            let letter = platform::dead_letters::redrive(&js, sequence).await?;
            println!(
                "re-drove dead letter #{sequence}: event {} on {} goes back to {}",
                letter.event_id, letter.subject, letter.consumer
            );
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::parse;

    fn options(line: &str) -> Result<Options, String> {
        match parse(&format!("dead-letters {line}"))? {
            crate::cli::Command::DeadLetters(options) => Ok(options),
            other => Err(format!("not dead-letters: {other:?}")),
        }
    }

    #[test]
    fn list_and_redrive_parse_with_their_options() {
        assert_eq!(
            options("list --limit 5"),
            Ok(Options { nats_url: DEFAULT_NATS_URL.into(), command: Command::List { limit: 5 } })
        );
        let redrive = Options { nats_url: "nats://h:1".into(), command: Command::Redrive { sequence: 42 } };
        assert_eq!(options("redrive 42 --nats nats://h:1").as_ref(), Ok(&redrive));
        assert_eq!(options("--nats nats://h:1 redrive 42"), Ok(redrive));
    }

    #[test]
    fn bad_arguments_are_refused_with_a_reason() {
        assert!(options("redrive x").unwrap_err().contains("invalid value"));
        assert!(options("list --limit many").unwrap_err().contains("invalid value"));
        assert!(options("purge").is_err());
        assert!(options("list --force").unwrap_err().contains("--force"));
    }
}
