//! `rewardsctl dead-letters`: list the events consumers gave up on, and
//! re-drive one after the cause is fixed.

use anyhow::Context as _;

/// The runner's nats-server (see `rewardsctl up`).
const DEFAULT_NATS_URL: &str = "nats://127.0.0.1:14222";

/// What `rewardsctl dead-letters` was asked to do.
#[derive(Debug, PartialEq, Eq)]
pub enum Command {
    List { nats_url: String, limit: usize },
    Redrive { nats_url: String, sequence: u64 },
}

impl Command {
    /// Parses the arguments after `dead-letters`.
    ///
    /// # Errors
    /// On an unknown, missing or malformed argument.
    pub fn parse(args: &[String]) -> Result<Self, String> {
        let mut nats_url = DEFAULT_NATS_URL.to_owned();
        let mut limit = 100;
        let mut positional = Vec::new();
        let mut args = args.iter();
        while let Some(arg) = args.next() {
            match arg.as_str() {
                "--nats" => nats_url = args.next().ok_or("--nats needs a URL")?.clone(),
                "--limit" => {
                    let value = args.next().ok_or("--limit needs a number")?;
                    limit = value.parse().map_err(|_| format!("--limit {value:?} is not a number"))?;
                }
                other if other.starts_with("--") => return Err(format!("unknown argument {other:?}")),
                other => positional.push(other.to_owned()),
            }
        }
        match positional.as_slice() {
            [list] if list == "list" => Ok(Self::List { nats_url, limit }),
            [redrive, sequence] if redrive == "redrive" => {
                let sequence = sequence.parse().map_err(|_| format!("{sequence:?} is not a dead-letter sequence"))?;
                Ok(Self::Redrive { nats_url, sequence })
            }
            _ => Err("expected `dead-letters list` or `dead-letters redrive SEQUENCE`".into()),
        }
    }
}

/// Runs the command against the NATS server.
///
/// # Errors
/// When NATS cannot be reached or the dead letter cannot be re-driven.
pub async fn run(command: Command) -> anyhow::Result<()> {
    let nats_url = match &command {
        Command::List { nats_url, .. } | Command::Redrive { nats_url, .. } => nats_url.clone(),
    };
    let client = async_nats::connect(&nats_url).await.with_context(|| format!("cannot reach NATS at {nats_url}"))?;
    let js = async_nats::jetstream::new(client);
    match command {
        Command::List { limit, .. } => {
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
        Command::Redrive { sequence, .. } => {
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

    fn args(text: &str) -> Vec<String> {
        text.split_whitespace().map(str::to_owned).collect()
    }

    #[test]
    fn list_and_redrive_parse_with_their_options() {
        assert_eq!(
            Command::parse(&args("list --limit 5")),
            Ok(Command::List { nats_url: DEFAULT_NATS_URL.into(), limit: 5 })
        );
        assert_eq!(
            Command::parse(&args("redrive 42 --nats nats://h:1")),
            Ok(Command::Redrive { nats_url: "nats://h:1".into(), sequence: 42 })
        );
    }

    #[test]
    fn bad_arguments_are_refused_with_a_reason() {
        assert!(Command::parse(&args("redrive x")).unwrap_err().contains("not a dead-letter sequence"));
        assert!(Command::parse(&args("list --limit many")).unwrap_err().contains("not a number"));
        assert!(Command::parse(&args("purge")).is_err());
        assert!(Command::parse(&args("list --force")).unwrap_err().contains("unknown argument"));
    }
}
