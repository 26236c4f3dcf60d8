//! `rewardsctl token`: a bearer token of the development identity provider
//! (the key pair `rewardsctl up` made under `.run/auth/`), printed alone on
//! stdout so that `TOKEN=$(rewardsctl token player-1)` works.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::bail;

/// Options of `rewardsctl token`.
#[derive(Debug, clap::Args)]
pub struct Options {
    /// The player the token is for (an operator's defaults to `operator`).
    #[arg(value_name = "CUSTOMER_ID")]
    subject: Option<String>,
    /// What the bearer may do.
    #[arg(long, value_enum, default_value_t = Role::Player)]
    role: Role,
    /// How long the token lives, in seconds (default the development issuer's lifetime).
    #[arg(long, value_name = "SECONDS")]
    ttl: Option<u64>,
    /// Where the development key pair is (made if missing).
    #[arg(long, default_value = ".run", value_name = "DIR")]
    run_dir: PathBuf,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Role {
    Player,
    Operator,
}

impl Role {
    fn name(self) -> &'static str {
        match self {
            Self::Player => "player",
            Self::Operator => "operator",
        }
    }
}

impl Options {
    /// Whom the token is for: the customer id given (checked as the services
    /// check it), or the operator's default subject.
    ///
    /// # Errors
    /// When a player's token has no customer id, or an invalid one.
    fn subject(&self) -> anyhow::Result<String> {
        let subject = match (&self.subject, self.role) {
            (Some(subject), _) => subject.clone(),
            (None, Role::Operator) => dev_issuer::OPERATOR.to_owned(),
            (None, Role::Player) => bail!("a customer id is required (e.g. rewardsctl token player-1)"),
        };
        kernel::CustomerId::parse(&subject).map_err(|e| anyhow::anyhow!("{subject:?}: {e}"))?;
        Ok(subject)
    }

    fn lifetime(&self) -> Duration {
        self.ttl.map_or(dev_issuer::TOKEN_LIFETIME, |seconds| Duration::from_secs(seconds.max(1)))
    }
}

/// Prints the token.
///
/// # Errors
/// On a missing or invalid customer id, or when the run directory cannot hold the key pair.
pub fn run(options: &Options) -> anyhow::Result<()> {
    let subject = options.subject()?;
    let identity = crate::mesh::identity(&options.run_dir)?;
    println!("{}", identity.token(&subject, &[options.role.name()], options.lifetime()));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::{Command, parse};

    fn options(line: &str) -> Result<Options, String> {
        match parse(&format!("token {line}"))? {
            Command::Token(options) => Ok(options),
            other => Err(format!("not token: {other:?}")),
        }
    }

    fn subject(line: &str) -> Result<String, String> {
        options(line)?.subject().map_err(|e| e.to_string())
    }

    #[test]
    fn a_player_token_needs_a_valid_customer_id_and_an_operator_has_a_default_subject() {
        assert_eq!(subject("player-1").unwrap(), "player-1");
        assert_eq!(subject("--role operator").unwrap(), "operator");
        assert!(subject("").unwrap_err().contains("a customer id is required"));
        assert!(subject("p --role admin").unwrap_err().contains("admin"));
        assert!(subject("player-1 player-2").is_err(), "one subject only");
        assert_eq!(options("p --ttl 60").unwrap().lifetime(), Duration::from_secs(60));
        assert_eq!(options("p").unwrap().lifetime(), dev_issuer::TOKEN_LIFETIME);
    }

    #[test]
    fn an_invalid_customer_id_is_refused() {
        let options =
            Options { subject: Some("player 1".into()), role: Role::Player, ttl: None, run_dir: ".run".into() };
        assert!(options.subject().is_err());
    }
}
