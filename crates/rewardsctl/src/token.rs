//! `rewardsctl token`: a bearer token of the development identity provider
//! (the key pair `rewardsctl up` made under `.run/auth/`), printed alone on
//! stdout so that `TOKEN=$(rewardsctl token player-1)` works.

use std::path::PathBuf;
use std::time::Duration;

/// Options of `rewardsctl token`.
#[derive(Debug)]
pub struct Options {
    subject: String,
    role: Role,
    lifetime: Duration,
    run_dir: PathBuf,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    Player,
    Operator,
}

impl Options {
    /// Parses the arguments after `token`.
    ///
    /// # Errors
    /// On an unknown, missing or invalid argument.
    pub fn parse(args: &[String]) -> Result<Self, String> {
        let mut subject = None;
        let mut options = Self {
            subject: String::new(),
            role: Role::Player,
            lifetime: dev_issuer::TOKEN_LIFETIME,
            run_dir: PathBuf::from(".run"),
        };
        let mut args = args.iter();
        while let Some(arg) = args.next() {
            match arg.as_str() {
                "--role" => {
                    options.role = match args.next().map(String::as_str) {
                        Some("player") => Role::Player,
                        Some("operator") => Role::Operator,
                        other => return Err(format!("--role is player or operator, not {other:?}")),
                    }
                }
                "--ttl" => {
                    let seconds = args.next().ok_or("--ttl needs seconds")?;
                    let seconds: u64 = seconds.parse().map_err(|_| format!("--ttl: {seconds:?} is not a number"))?;
                    options.lifetime = Duration::from_secs(seconds.max(1));
                }
                "--run-dir" => options.run_dir = args.next().ok_or("--run-dir needs a directory")?.into(),
                other if other.starts_with("--") => return Err(format!("unknown argument {other:?}")),
                other if subject.is_none() => subject = Some(other.to_owned()),
                other => return Err(format!("one subject only, not also {other:?}")),
            }
        }
        options.subject = match (subject, options.role) {
            (Some(subject), _) => subject,
            (None, Role::Operator) => dev_issuer::OPERATOR.to_owned(),
            (None, Role::Player) => return Err("a customer id is required (e.g. rewardsctl token player-1)".into()),
        };
        kernel::CustomerId::parse(&options.subject).map_err(|e| format!("{:?}: {e}", options.subject))?;
        Ok(options)
    }
}

/// Prints the token.
///
/// # Errors
/// When the run directory cannot hold the key pair.
pub fn run(options: &Options) -> anyhow::Result<()> {
    let identity = crate::mesh::identity(&options.run_dir)?;
    let role = match options.role {
        Role::Player => "player",
        Role::Operator => "operator",
    };
    println!("{}", identity.token(&options.subject, &[role], options.lifetime));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Options, String> {
        Options::parse(&args.iter().map(|a| (*a).to_owned()).collect::<Vec<_>>())
    }

    #[test]
    fn a_player_token_needs_a_valid_customer_id_and_an_operator_has_a_default_subject() {
        assert_eq!(parse(&["player-1"]).unwrap().subject, "player-1");
        assert_eq!(parse(&["--role", "operator"]).unwrap().subject, "operator");
        assert!(parse(&[]).unwrap_err().contains("a customer id is required"));
        assert!(parse(&["player 1"]).is_err());
        assert!(parse(&["p", "--role", "admin"]).unwrap_err().contains("player or operator"));
        assert_eq!(parse(&["p", "--ttl", "60"]).unwrap().lifetime, Duration::from_secs(60));
    }
}
