//! `rewardsctl overload`: watch the wallet's circuit breaker protect the
//! players and the system from an overloaded gift vendor.
//!
//! It starts the whole system in a fresh directory, gives a few dozen
//! players rewards, and then keeps players exchanging them while other
//! players keep achieving missions, through three phases:
//!
//! 1. **healthy**: exchanges go through;
//! 2. **gift slowed** (through gift's admin API, every exchange takes longer
//!    than the wallet's deadline): the first exchanges time out, the breaker
//!    opens, and from then on players are told at once that the gift
//!    exchange is busy, with a `retry-after-ms` hint; missions keep being
//!    achieved and rewarded all along;
//! 3. **gift recovered**: after its cool-down the breaker lets a probe
//!    through, closes, and exchanges go through again.
//!
//! Every second it prints what the players saw and the breaker's state (as
//! the wallet exports it). At the end it checks what must hold.
//!
//! - [`players`]: the exchanging and achieving players, and their tallies.
//! - [`ticker`]: the line a second, and the breaker's state.
//! - [`checks`]: what must hold once the dust settled.
//! - [`report`]: the phases, the answers and the verdict.

pub mod checks;
pub mod players;
pub mod report;
pub mod ticker;

use std::num::NonZeroUsize;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, bail};
use api::game::gift::admin::v1::{self as admin, vendor_simulation_service_client::VendorSimulationServiceClient};
use platform::CancellationToken;
use tokio::task::JoinSet;

use self::players::{PRODUCT, Shared, lock};
pub use self::report::{Answer, Phase, Report};
use self::ticker::{Breaker, Until, say, tick_through};
use crate::clients::Clients;
use crate::mesh::{Layout, Mesh, MeshConfig, Replicas};

/// How slow gift becomes: well beyond the wallet's 2 s deadline.
const SLOW_VENDOR_MS: u32 = 4_000;

/// The vendor cancels this share of the orders it placed, this long after,
/// all run long: refunds go on while the breaker opens and closes.
const CANCEL_PERCENT: u32 = 10;
const CANCEL_AFTER_MS: u32 = 400;

/// The shortest phase that still shows the breaker at work.
const SHORTEST_PHASE: Duration = Duration::from_secs(2);

/// The command line of `rewardsctl overload`.
#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// Players holding rewards to exchange (each achieves the whole mission catalogue).
    #[arg(long, default_value = "120", value_name = "N")]
    players: NonZeroUsize,
    /// Exchanges started per second, over all the players.
    #[arg(long, default_value = "25", value_name = "R", value_parser = clap::value_parser!(u32).range(1..))]
    rate: u32,
    /// Players exchanging at the same time.
    #[arg(long, default_value = "16", value_name = "C")]
    concurrency: NonZeroUsize,
    /// How long each phase lasts (at least 2; the recovered phase lasts until the breaker closed, and
    /// then this long again).
    #[arg(long = "phase-secs", default_value_t = 8, value_name = "S")]
    phase_secs: u64,
    /// A fresh directory for the stores and logs (default .run/overload-<UTC time>).
    #[arg(long, value_name = "DIR")]
    run_dir: Option<PathBuf>,
}

/// Options of an overload run.
#[derive(Debug, Clone)]
pub struct Options {
    /// Players holding rewards to exchange (each achieves the whole catalogue).
    pub players: usize,
    /// Players exchanging at the same time.
    pub concurrency: usize,
    /// Exchanges started per second, over all of them.
    pub rate: u32,
    /// How long each phase lasts (the recovered phase lasts until the breaker
    /// closed, and then this long again).
    pub phase: Duration,
    pub run_dir: PathBuf,
    pub bin_dir: PathBuf,
    /// The nats-server binary; looked up when `None`.
    pub nats_server: Option<PathBuf>,
}

impl Args {
    /// The run these arguments ask for, with the service binaries in `bin_dir`.
    pub fn options(self, bin_dir: PathBuf) -> Options {
        Options {
            players: self.players.get(),
            concurrency: self.concurrency.get(),
            rate: self.rate,
            phase: Duration::from_secs(self.phase_secs).max(SHORTEST_PHASE),
            run_dir: self.run_dir.unwrap_or_else(|| crate::runs::fresh("overload")),
            bin_dir,
            nats_server: None,
        }
    }
}

/// Runs the overload demonstration.
///
/// # Errors
/// When the system cannot be started or set up; broken promises are in the report.
pub async fn run(options: Options) -> anyhow::Result<Report> {
    if options.run_dir.exists() && std::fs::read_dir(&options.run_dir)?.next().is_some() {
        bail!("{} is not empty: the overload run needs a fresh directory", options.run_dir.display());
    }
    let config = MeshConfig {
        run_dir: options.run_dir.clone(),
        bin_dir: options.bin_dir.clone(),
        nats_server: options.nats_server.clone(),
        layout: Layout::free(crate::mesh::Shape::Single, &Replicas::default())?,
        // Exchanges left pending by a timeout are settled within seconds;
        // gift serves the vendor simulation this run slows it down with.
        env: [
            ("wallet", "EXCHANGE_REDRIVE_INTERVAL_MS", "500"),
            ("wallet", "EXCHANGE_REDRIVE_AFTER_MS", "2000"),
            ("gift", "GIFT_VENDOR_SIMULATION", "true"),
        ]
        .iter()
        .map(|(s, k, v)| ((*s).to_owned(), (*k).to_owned(), (*v).to_owned()))
        .collect(),
        announce: false,
    };
    let mut mesh = Mesh::new(config)?;
    say(format!("starting the system in {}", mesh.run_dir().display()));
    mesh.start_infrastructure().await?;
    mesh.start_members(|_| true);
    mesh.wait_until_serving(Duration::from_secs(120), true).await?;
    let report = exercise(&mesh, &options).await;
    mesh.stop().await;
    report
}

async fn exercise(mesh: &Mesh, options: &Options) -> anyhow::Result<Report> {
    let clients = Clients::new(&mesh.layout().gateway_url(), mesh.identity().clone())?;
    let gift = mesh.layout().members_of("gift").next().context("no gift in the layout")?.clone();
    let wallet = mesh.layout().members_of("wallet").next().context("no wallet in the layout")?.clone();
    let vendor = VendorSimulationServiceClient::connect(gift.url()).await.context("gift's admin API")?;
    let catalogue = clients.catalogue().await?;

    say(format!(
        "giving {} players the whole mission catalogue ({} rewards)…",
        options.players,
        options.players * catalogue.codes().len()
    ));
    let entries = players::setup(&clients, &catalogue, options.players).await?;
    say(format!(
        "{} wallet entries are AVAILABLE; {} players start exchanging them for {PRODUCT}",
        entries.len(),
        options.concurrency
    ));

    let shared = Arc::new(Shared::new(entries, options.rate));
    let stop = CancellationToken::new();
    let mut running = JoinSet::new();
    for _ in 0..options.concurrency {
        running.spawn(players::exchanging(clients.clone(), Arc::clone(&shared), stop.clone()));
    }
    running.spawn(players::achieving(clients.clone(), catalogue, Arc::clone(&shared), stop.clone()));

    let cancelling = admin::VendorBehaviour {
        cancel_percent: CANCEL_PERCENT,
        cancel_after_ms: CANCEL_AFTER_MS,
        ..Default::default()
    };
    set_vendor(&clients, &vendor, cancelling).await?;
    say(format!("the vendor cancels {CANCEL_PERCENT} % of the orders it places, {CANCEL_AFTER_MS} ms later"));
    let mut report = Report { run_dir: mesh.run_dir().to_path_buf(), ..Report::default() };
    tick_through(&shared, &wallet, Phase::Healthy, options.phase, Until::PhaseEnds, None).await;

    set_vendor(&clients, &vendor, admin::VendorBehaviour { latency_ms: SLOW_VENDOR_MS, ..cancelling }).await?;
    say(format!("gift slowed down: every exchange now takes {SLOW_VENDOR_MS} ms, beyond the wallet's deadline"));
    shared.enter(Phase::Slowed);
    report.opened_after =
        tick_through(&shared, &wallet, Phase::Slowed, options.phase, Until::PhaseEnds, Some(Breaker::Open)).await;

    set_vendor(&clients, &vendor, cancelling).await?;
    say("gift recovered".into());
    shared.enter(Phase::Recovered);
    // Until the breaker closed (its cool-down, then a probe), then one more phase.
    if report.opened_after.is_some() {
        let closing = Duration::from_secs(60);
        report.closed_after =
            tick_through(&shared, &wallet, Phase::Recovered, closing, Until::Seen, Some(Breaker::Closed)).await;
    }
    tick_through(&shared, &wallet, Phase::Recovered, options.phase, Until::PhaseEnds, None).await;
    stop.cancel();
    while running.join_next().await.is_some() {}

    report.answers = lock(&shared.answers).clone();
    report.missions = lock(&shared.missions).clone();
    say("waiting for the re-driver to settle timed-out exchanges, then checking what must hold…".into());
    let checked = checks::check(&clients, &shared).await;
    report.violations = checked.violations;
    report.refunds = checked.refunds;
    report.violations.extend(missed_promises(&report));
    Ok(report)
}

/// What the phases must have shown, whatever the checks found.
fn missed_promises(report: &Report) -> Vec<String> {
    let mut missed = Vec::new();
    if report.opened_after.is_none() {
        missed.push("the breaker never opened while gift was slowed".into());
    }
    if report::count(&report.answers, Phase::Slowed, Answer::TurnedAway) == 0 {
        missed.push("no player was turned away while gift was slowed".into());
    }
    if report::count(&report.answers, Phase::Recovered, Answer::Exchanged) == 0 {
        missed.push("no exchange went through after gift recovered".into());
    }
    if report.missions.get(&Phase::Slowed).copied().unwrap_or_default() == 0 {
        missed.push("no mission was achieved while gift was slowed".into());
    }
    missed
}

/// Sets gift's simulated behaviour, as the operator the simulation answers alone.
async fn set_vendor(
    clients: &Clients,
    vendor: &VendorSimulationServiceClient<tonic::transport::Channel>,
    behaviour: admin::VendorBehaviour,
) -> anyhow::Result<()> {
    let request = clients.as_operator(admin::SetVendorBehaviourRequest { behaviour: Some(behaviour) });
    vendor.clone().set_vendor_behaviour(request).await.context("gift refused the vendor behaviour")?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::{Command, parse};

    fn options(line: &str) -> Result<Options, String> {
        match parse(&format!("overload {line}"))? {
            Command::Overload(args) => Ok(args.options(PathBuf::from("bin"))),
            other => Err(format!("not overload: {other:?}")),
        }
    }

    #[test]
    fn options_parse_and_refuse_nonsense() {
        let parsed = options("--players 10 --phase-secs 5").unwrap();
        assert_eq!((parsed.players, parsed.phase, parsed.rate), (10, Duration::from_secs(5), 25));
        assert!(parsed.run_dir.starts_with(".run"));
        assert_eq!(options("--phase-secs 1").unwrap().phase, SHORTEST_PHASE);
        assert!(options("--players 0").is_err());
        assert!(options("--rate 0").is_err());
        assert!(options("--loud").unwrap_err().contains("--loud"));
    }

    #[test]
    fn every_promise_the_phases_missed_is_named() {
        assert_eq!(missed_promises(&Report::default()).len(), 4);
    }
}
