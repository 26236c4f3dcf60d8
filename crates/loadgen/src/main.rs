//! The `loadgen` binary: drives one gRPC method against any address, open
//! loop at a fixed rate or closed loop at a fixed concurrency, and prints
//! the latency percentiles (and, with `--json`, the whole report).

use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use clap::{Parser, Subcommand, ValueEnum};
use loadgen::Catalogue;
use loadgen::grpc::{Target, decode_hex, parse_header};
use loadgen::methods::Method;
use loadgen::run::{self, ClosedLoop, OpenLoop};

/// Drives one gRPC method against any address and prints the latency
/// percentiles, measured from each call's intended start.
#[derive(Debug, Parser)]
#[command(name = "loadgen", args_conflicts_with_subcommands = true)]
struct Cli {
    #[command(subcommand)]
    serve: Option<Serve>,
    #[command(flatten)]
    drive: Drive,
}

#[derive(Debug, Subcommand)]
enum Serve {
    /// Serve grpc.health.v1 only: the bare tonic baseline (--method health --service loadgen.Echo).
    ServeEcho {
        #[arg(long, default_value = "127.0.0.1:50099")]
        addr: SocketAddr,
    },
}

/// What to call, how hard and for how long.
#[derive(Debug, clap::Args)]
struct Drive {
    /// The server (http:// is added when missing).
    #[arg(long, default_value_t = api::catalogue::GATEWAY.local_url(), value_name = "URL")]
    addr: String,
    /// health: grpc.health.v1 Check of --service; achieve: a new mission per call (players <prefix>-N,
    /// the codes of the mission service's catalogue); definitions; mypage and wallet of --customer;
    /// raw: --path and --body-hex, any unary method with its request encoded as protobuf.
    #[arg(long, value_enum, default_value_t = MethodName::Health)]
    method: MethodName,
    /// Open loop: calls start at this rate whatever the server does, and latency is measured from
    /// each call's intended start.
    #[arg(long, default_value_t = 1000.0, value_name = "CALLS_PER_SECOND")]
    rate: f64,
    /// Closed loop instead: this many calls in flight, each starting when one ends.
    #[arg(long, value_name = "N")]
    concurrency: Option<usize>,
    /// How long to drive, in seconds.
    #[arg(long, default_value = "10", value_name = "SECS", value_parser = seconds)]
    duration: Duration,
    /// Open loop: calls due beyond this wait for a slot, which counts in their latency.
    #[arg(long, default_value_t = 1024, value_name = "N")]
    max_in_flight: usize,
    /// HTTP/2 connections the calls are spread over.
    #[arg(long, default_value_t = 2, value_name = "N")]
    connections: usize,
    /// A call not answered within this long counts as failed.
    #[arg(long = "timeout-ms", default_value_t = 10_000, value_name = "MS")]
    timeout_ms: u64,
    /// Metadata on every call, e.g. --header 'authorization=Bearer <jwt>' (repeatable).
    #[arg(long = "header", value_name = "NAME=VALUE", value_parser = parse_header)]
    headers: Vec<(String, String)>,
    /// The service whose health --method health checks ("" for the server).
    #[arg(long, default_value = "")]
    service: String,
    /// The player whose page or wallet --method mypage and wallet read.
    #[arg(long, default_value = "player-1", value_name = "ID")]
    customer: String,
    /// The players of --method achieve are <prefix>-0, <prefix>-1, … (default loadgen-<pid>).
    #[arg(long)]
    prefix: Option<String>,
    /// The method --method raw calls.
    #[arg(long, value_name = "/package.Service/Method")]
    path: Option<String>,
    /// The request --method raw sends, protobuf in hexadecimal.
    #[arg(long = "body-hex", value_name = "HEX", value_parser = decode_hex)]
    body: Option<Bytes>,
    /// Also print the whole report as JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum MethodName {
    Health,
    Achieve,
    Definitions,
    Mypage,
    Wallet,
    Raw,
}

fn seconds(text: &str) -> Result<Duration, String> {
    let seconds: f64 = text.parse().map_err(|_| format!("{text:?} is not a number of seconds"))?;
    Duration::try_from_secs_f64(seconds.max(0.0)).map_err(|e| e.to_string())
}

impl Drive {
    fn url(&self) -> String {
        if self.addr.contains("://") { self.addr.clone() } else { format!("http://{}", self.addr) }
    }

    /// The method to drive; the catalogue of `achieve` is the mission service's, asked through `target`.
    async fn method(&self, target: &Target) -> anyhow::Result<Method> {
        Ok(match self.method {
            MethodName::Health => Method::Health { service: self.service.clone() },
            MethodName::Achieve => {
                let request = target.request(api::game::mission::v1::ListMissionDefinitionsRequest {});
                let missions =
                    api::game::mission::v1::mission_service_client::MissionServiceClient::new(target.channel(0));
                let catalogue = Catalogue::fetch(missions, request).await?;
                let prefix = self.prefix.clone().unwrap_or_else(|| format!("loadgen-{}", std::process::id()));
                Method::Achieve { prefix, catalogue }
            }
            MethodName::Definitions => Method::Definitions,
            MethodName::Mypage => Method::MyPage { customer: self.customer.clone() },
            MethodName::Wallet => Method::Wallet { customer: self.customer.clone() },
            MethodName::Raw => Method::Raw {
                path: self
                    .path
                    .clone()
                    .ok_or_else(|| anyhow::anyhow!("--method raw needs --path /package.Service/Method"))?,
                body: self.body.clone().unwrap_or_default(),
            },
        })
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.serve {
        Some(Serve::ServeEcho { addr }) => loadgen::echo::serve_until_ctrl_c(addr).await,
        None => drive(&cli.drive).await,
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("loadgen: {error:#}");
            ExitCode::FAILURE
        }
    }
}

async fn drive(options: &Drive) -> anyhow::Result<()> {
    let url = options.url();
    let target = Target::connect(&url, options.connections, &options.headers).await?;
    let method = Arc::new(options.method(&target).await?);
    let timeout = Duration::from_millis(options.timeout_ms);
    let call = move |i| {
        let (target, method) = (target.clone(), Arc::clone(&method));
        async move { method.call(&target, i).await }
    };
    let report = match options.concurrency {
        Some(concurrency) => {
            let config = ClosedLoop { concurrency, duration: options.duration, timeout };
            run::closed_loop(&config, call).await
        }
        None => {
            let config = OpenLoop {
                rate: options.rate,
                duration: options.duration,
                max_in_flight: options.max_in_flight,
                timeout,
            };
            run::open_loop(&config, move |i, _| call(i)).await
        }
    };
    let l = &report.latency;
    println!(
        "{} {url}: {} ok of {} at {:.0}/s{}; latency ms p50 {:.3} p90 {:.3} p99 {:.3} p99.9 {:.3} max {:.3}{}",
        options.method.to_possible_value().map_or_else(String::new, |v| v.get_name().to_owned()),
        report.ok,
        report.sent,
        report.achieved_rate,
        match options.concurrency {
            Some(c) => format!(" ({c} in flight)"),
            None => format!(" (offered {:.0}/s)", report.offered_rate),
        },
        l.p50_ms,
        l.p90_ms,
        l.p99_ms,
        l.p999_ms,
        l.max_ms,
        if report.failed.is_empty() { String::new() } else { format!("; failed {:?}", report.failed) },
    );
    if options.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory as _;

    use super::*;

    fn parse(args: &str) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("loadgen").chain(args.split_whitespace()))
    }

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn options_keep_their_defaults_and_read_their_values() {
        let cli =
            parse("--addr 127.0.0.1:50051 --method achieve --duration 2.5 --header authorization=Bearer:x").unwrap();
        assert!(cli.serve.is_none());
        assert_eq!(cli.drive.url(), "http://127.0.0.1:50051");
        assert_eq!(cli.drive.method, MethodName::Achieve);
        assert_eq!(cli.drive.duration, Duration::from_millis(2500));
        assert_eq!(cli.drive.rate, 1000.0);
        assert_eq!(cli.drive.headers, [("authorization".to_owned(), "Bearer:x".to_owned())]);
        assert!(parse("--method teleport").is_err());
        assert!(parse("--body-hex 0").is_err());
    }

    #[test]
    fn serve_echo_takes_its_address() {
        let cli = parse("serve-echo --addr 127.0.0.1:1234").unwrap();
        assert!(matches!(cli.serve, Some(Serve::ServeEcho { addr }) if addr.port() == 1234));
        assert!(matches!(parse("serve-echo").unwrap().serve, Some(Serve::ServeEcho { addr }) if addr.port() == 50099));
    }
}
