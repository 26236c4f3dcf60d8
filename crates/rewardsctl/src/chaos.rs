//! `rewardsctl chaos`: the proof that nothing is lost and nothing applied
//! twice while processes crash.
//!
//! It starts the whole system in a fresh directory with 2 replicas of
//! reward, wallet and mypage, drives missions and exchanges from concurrent
//! clients through the gateway, and meanwhile SIGKILLs a random process
//! (any service replica, the gateway, nats-server at least once) every few
//! seconds, letting the supervisors restart them. Then it stops the load,
//! waits for quiescence and checks the invariants from the stores and the
//! APIs (see [`invariants`]), while a sampler has watched that no status
//! ever went backwards.
//!
//! - [`load`]: the players' calls, and what the system confirmed to them.
//! - [`killer`]: the random SIGKILLs.
//! - [`sampler`]: the witness of forward-only statuses.
//! - [`quiescence`]: when nothing is in flight any more.
//! - [`programme`]: the run's event, whose rewards expire, and the vendor
//!   that cancels orders after the fact.
//! - [`purchases`]: players spending their balance across several entries.
//! - [`invariants`]: the checks; [`points`]: the points that add up.

pub mod invariants;
pub mod killer;
pub mod load;
pub mod points;
pub mod programme;
pub mod purchases;
pub mod quiescence;
pub mod sampler;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use platform::CancellationToken;

use crate::mesh::{Layout, Mesh, MeshConfig, Replicas, Shape};

/// The finale's rewards expire this long after its event ends (the
/// wallet's `REWARD_EXPIRY_AFTER_MS` in a chaos run).
const FINALE_EXPIRY: Duration = Duration::from_secs(2);

/// Options of a chaos run.
#[derive(Debug, Clone)]
pub struct Options {
    /// AchieveMission calls to drive (players × the missions of the mission service's catalogue).
    pub missions: usize,
    /// Exchanges to drive.
    pub exchanges: usize,
    /// A random process is killed this often.
    pub kill_every: Duration,
    /// Seeds the choice of victims (timings still vary from run to run).
    pub seed: u64,
    /// A fresh directory for the stores, logs and the broker's store.
    pub run_dir: PathBuf,
    /// Where the service binaries are.
    pub bin_dir: PathBuf,
    /// The nats-server binary; looked up when `None`.
    pub nats_server: Option<PathBuf>,
    /// Players calling at the same time (half as many exchange on the side).
    pub concurrency: usize,
    /// When given, the missions are spread over at least this long, so that
    /// a short run still outlasts several kills.
    pub spread: Option<Duration>,
    /// How long the system may take to become quiet after the load.
    pub settle_within: Duration,
    /// Whether kills and progress are printed as they happen.
    pub progress: bool,
    /// Single server and SQLite, or the production shape (see [`Shape`]).
    pub shape: Shape,
    /// The share of placed orders the vendor cancels after the fact.
    pub cancel_percent: u32,
}

impl Options {
    /// The defaults of `rewardsctl chaos`, with binaries from `bin_dir` and
    /// a run directory `.run/chaos-<UTC time>`.
    pub fn new(bin_dir: PathBuf) -> Self {
        Self {
            missions: 2000,
            exchanges: 300,
            kill_every: Duration::from_secs(3),
            seed: rand::random(),
            run_dir: crate::runs::fresh("chaos"),
            bin_dir,
            nats_server: None,
            concurrency: 16,
            spread: None,
            settle_within: Duration::from_secs(180),
            progress: true,
            shape: Shape::Single,
            cancel_percent: 10,
        }
    }

    /// The defaults of `rewardsctl chaos --cluster`: more load, spread over
    /// a minute so that it outlasts several broker and database kills.
    pub fn cluster(bin_dir: PathBuf) -> Self {
        Self {
            missions: 5000,
            exchanges: 500,
            spread: Some(Duration::from_secs(60)),
            shape: Shape::Cluster,
            ..Self::new(bin_dir)
        }
    }
}

/// The command line of `rewardsctl chaos`.
#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// On the production shape (see `up --cluster`): 5000 missions and 500 exchanges by default,
    /// killing the JetStream meta leader and stream leaders (one node at a time) and stopping
    /// PostgreSQL for 5 s or more (SIGKILL of the postmaster) at least twice.
    #[arg(long)]
    cluster: bool,
    /// AchieveMission calls to drive (default 2000; 5000 with --cluster).
    #[arg(long, value_name = "N")]
    missions: Option<usize>,
    /// Exchanges to drive (default 300; 500 with --cluster).
    #[arg(long, value_name = "M")]
    exchanges: Option<usize>,
    /// A random process is SIGKILLed this often, in seconds (at least 1).
    #[arg(long = "kill-every", default_value_t = 3, value_name = "SECS")]
    kill_every: u64,
    /// Seeds the choice of victims (random by default).
    #[arg(long, value_name = "S")]
    seed: Option<u64>,
    /// A fresh directory for the stores, logs and the broker's store (default .run/chaos-<UTC time>).
    #[arg(long, value_name = "DIR")]
    run_dir: Option<PathBuf>,
}

impl Args {
    /// The run these arguments ask for, with the service binaries in `bin_dir`.
    ///
    /// # Errors
    /// When there are more exchanges than missions.
    pub fn options(self, bin_dir: PathBuf) -> Result<Options, String> {
        let mut options = if self.cluster { Options::cluster(bin_dir) } else { Options::new(bin_dir) };
        options.missions = self.missions.unwrap_or(options.missions);
        options.exchanges = self.exchanges.unwrap_or(options.exchanges);
        options.kill_every = Duration::from_secs(self.kill_every.max(1));
        options.seed = self.seed.unwrap_or(options.seed);
        options.run_dir = self.run_dir.unwrap_or(options.run_dir);
        load::check_counts(options.missions, options.exchanges)?;
        Ok(options)
    }
}

/// What a chaos run did and found.
#[derive(Debug, Default)]
pub struct Report {
    pub seed: u64,
    pub run_dir: PathBuf,
    pub missions_driven: usize,
    pub exchanges_driven: usize,
    /// Purchases paid from several entries, as confirmed to their players.
    pub purchases_driven: usize,
    /// Where every player's points are at the end.
    pub ledger: points::Ledger,
    pub processes_killed: u64,
    /// Times a broker node came back after a kill.
    pub broker_restarts: u64,
    /// The shape the run had.
    pub shape: Shape,
    /// Kills of the JetStream meta leader and of a stream's leader (cluster).
    pub meta_leader_kills: u64,
    pub stream_leader_kills: u64,
    /// How long the database refused connections, at each of its kills (cluster).
    pub database_outages: Vec<Duration>,
    /// How long the load ran, under the kills.
    pub load_time: Duration,
    /// From the end of the load until nothing was in flight; `None` when it
    /// never became quiet.
    pub time_to_quiescence: Option<Duration>,
    /// Failed calls that were retried, by status code.
    pub retried: BTreeMap<String, u64>,
    /// Reads made by the sampler.
    pub samples: u64,
    /// Redelivered events the consumers' inboxes recognised and skipped, as
    /// the processes alive at the end count them (a restart resets its count).
    pub redeliveries_absorbed: u64,
    pub duplicates: Vec<String>,
    pub losses: Vec<String>,
    /// Views disagreeing with their sources (APIs, my pages).
    pub mismatches: Vec<String>,
    /// Statuses seen going backwards.
    pub regressions: Vec<String>,
    /// Calls that failed for good, a system that never became quiet, dead letters.
    pub failures: Vec<String>,
    /// What the programme's paths after the fact did: finale, expiries, cancellations.
    pub programme: invariants::Tally,
    /// The share of orders the vendor was asked to cancel.
    pub cancel_percent: u32,
    /// (seconds since the start, process) of every kill.
    pub kills: Vec<(f64, String)>,
}

impl Report {
    /// Whether every invariant held.
    pub fn passed(&self) -> bool {
        self.duplicates.is_empty()
            && self.losses.is_empty()
            && self.mismatches.is_empty()
            && self.regressions.is_empty()
            && self.failures.is_empty()
            && self.time_to_quiescence.is_some()
            && self.ledger.conserved()
    }

    /// Prints the figures and every violation (the first few of each kind).
    pub fn print(&self) {
        let quiet = self.time_to_quiescence.map_or("never".to_owned(), |t| format!("{:.1}s", t.as_secs_f64()));
        let retried: Vec<String> = self.retried.iter().map(|(code, n)| format!("{code} {n}")).collect();
        println!("\n== Chaos run (seed {}) ==", self.seed);
        println!("  missions driven        {}", self.missions_driven);
        println!("  exchanges driven       {}", self.exchanges_driven);
        println!("  purchases driven       {} (each paid from several entries)", self.purchases_driven);
        println!("  processes killed       {} (SIGKILL)", self.processes_killed);
        println!("  broker restarts        {}", self.broker_restarts);
        if self.shape == Shape::Cluster {
            println!(
                "  NATS node kills        {} ({} meta leader, {} stream leader; one node at a time)",
                self.meta_leader_kills + self.stream_leader_kills,
                self.meta_leader_kills,
                self.stream_leader_kills
            );
            let outages: Vec<String> =
                self.database_outages.iter().map(|d| format!("{:.1}s", d.as_secs_f64())).collect();
            println!(
                "  database kills         {} (PostgreSQL refused connections for {})",
                self.database_outages.len(),
                if outages.is_empty() { "-".into() } else { outages.join(", ") }
            );
        }
        let p = &self.programme;
        println!(
            "  programme              finale achieved by {} players ({} refused after its event ended), {} entries expired",
            p.finale_achieved, p.finale_refused, p.entries_expired
        );
        println!(
            "  vendor cancellations   {} orders cancelled after the fact ({} % asked), {} settlements reversed",
            p.orders_cancelled, self.cancel_percent, p.reversals
        );
        println!("  points                 {}", self.ledger.describe());
        println!("  load time              {:.1}s", self.load_time.as_secs_f64());
        println!("  time to quiescence     {quiet}");
        println!("  calls retried          {}", if retried.is_empty() { "none".into() } else { retried.join(", ") });
        println!("  sampler reads          {}", self.samples);
        println!(
            "  redeliveries absorbed  {} (by the inboxes, as counted by the processes alive at the end)",
            self.redeliveries_absorbed
        );
        println!("  duplicates found       {}", self.duplicates.len());
        println!("  losses found           {}", self.losses.len());
        println!("  view mismatches        {}", self.mismatches.len());
        println!("  statuses backwards     {}", self.regressions.len());
        println!("  failures               {}", self.failures.len());
        for (kind, found) in [
            ("duplicate", &self.duplicates),
            ("loss", &self.losses),
            ("mismatch", &self.mismatches),
            ("backwards", &self.regressions),
            ("failure", &self.failures),
        ] {
            for line in found.iter().take(10) {
                println!("  ! {kind}: {line}");
            }
            if found.len() > 10 {
                println!("  ! … and {} more of this kind", found.len() - 10);
            }
        }
        println!("  logs and stores in {}", self.run_dir.display());
        println!("{}", if self.passed() { "PASSED: nothing lost, nothing applied twice" } else { "FAILED" });
    }
}

/// Runs the chaos test.
///
/// # Errors
/// When the system cannot be started; violations are in the report.
pub async fn run(options: Options) -> anyhow::Result<Report> {
    load::check_counts(options.missions, options.exchanges).map_err(anyhow::Error::msg)?;
    let mut replicas = Replicas::default();
    for service in ["reward", "wallet", "mypage"] {
        replicas.set(service, 2).map_err(anyhow::Error::msg)?;
    }
    let replicas = options.shape.replicas(&replicas);
    if options.run_dir.exists() && std::fs::read_dir(&options.run_dir)?.next().is_some() {
        anyhow::bail!("{} is not empty: a chaos run needs a fresh directory", options.run_dir.display());
    }
    let env = [
        ("*", "SHUTDOWN_GRACE_MS", "2000"),
        // Exchanges left pending by a killed wallet are settled within seconds.
        ("wallet", "EXCHANGE_REDRIVE_INTERVAL_MS", "500"),
        ("wallet", "EXCHANGE_REDRIVE_AFTER_MS", "2000"),
        // The finale's rewards expire FINALE_EXPIRY after its event ends
        // (set below from the constant the run waits by), while the kills go
        // on; the vendor simulation cancels orders after the fact.
        ("wallet", "REWARD_EXPIRY_INTERVAL_MS", "500"),
        ("gift", "GIFT_VENDOR_SIMULATION", "true"),
        // The checks read every player's data as one operator, thousands of
        // calls a second: the per-caller limit is not what this run tests.
        ("gateway", "GATEWAY_RATE_LIMIT_PER_SECOND", "1000000"),
        ("gateway", "GATEWAY_RATE_LIMIT_BURST", "1000000"),
    ];
    let config = MeshConfig {
        run_dir: options.run_dir.clone(),
        bin_dir: options.bin_dir.clone(),
        nats_server: options.nats_server.clone(),
        layout: Layout::free(options.shape, &replicas)?,
        env: env
            .iter()
            .map(|(s, k, v)| ((*s).to_owned(), (*k).to_owned(), (*v).to_owned()))
            .chain([("wallet".to_owned(), "REWARD_EXPIRY_AFTER_MS".to_owned(), FINALE_EXPIRY.as_millis().to_string())])
            .collect(),
        announce: false,
    };
    let mut mesh = Mesh::new(config)?;
    let say = |line: String| {
        if options.progress {
            println!("[chaos] {line}");
        }
    };
    say(format!(
        "starting the system in {} (seed {}): {} processes",
        mesh.run_dir().display(),
        options.seed,
        mesh.layout().members.len() + mesh.layout().nats.len() + usize::from(mesh.layout().postgres_port.is_some())
    ));
    mesh.start_infrastructure().await?;
    mesh.start_members(|_| true);
    mesh.wait_until_serving(Duration::from_secs(120), options.progress).await?;
    let stores = mesh.stores();
    let clients = crate::clients::Clients::new(&mesh.layout().urls("gateway"), mesh.identity().clone())?;
    let catalogue = clients.catalogue().await?;
    let mut plan = load::Plan::new(options.missions, options.exchanges, &catalogue).map_err(anyhow::Error::msg)?;
    let programme = programme::schedule(&clients, options.seed, plan.players.len()).await?;
    plan.missions.splice(0..0, programme.finale());
    let exchanged: std::collections::BTreeSet<usize> = plan.exchanges.iter().map(|(p, _)| *p).collect();
    let purchasers: Vec<String> = purchases::purchasers(plan.players.len(), &exchanged, options.exchanges / 5)
        .into_iter()
        .map(|p| plan.players[p].clone())
        .collect();
    purchases::list_product(&clients, purchasers.len()).await?;
    let vendor_stop = CancellationToken::new();
    let gift_urls = mesh.layout().members_of("gift").map(crate::mesh::Member::url).collect();
    let vendor =
        tokio::spawn(programme::cancel_orders(gift_urls, options.cancel_percent, clients.clone(), vendor_stop.clone()));
    let nats = async_nats::ConnectOptions::new()
        .retry_on_initial_connect()
        .max_reconnects(None)
        .connect(mesh.layout().nats_urls())
        .await
        .context("cannot connect to nats-server")?;
    let js = async_nats::jetstream::new(nats);

    say(format!(
        "driving {} missions of {} players and {} exchanges; a random SIGKILL every {}s",
        plan.missions.len(),
        plan.players.len(),
        plan.exchanges.len(),
        options.kill_every.as_secs()
    ));
    let started = Instant::now();
    let chaos = CancellationToken::new();
    let watching = CancellationToken::new();
    let sampled: Vec<String> = {
        let mut players: Vec<String> = plan.exchanges.iter().map(|(p, _)| plan.players[*p].clone()).collect();
        players.dedup();
        let step = (players.len() / 6).max(1);
        players.into_iter().step_by(step).take(6).collect()
    };
    let sampler = tokio::spawn(sampler::run(clients.clone(), sampled, watching.clone()));
    let processes: Vec<_> = mesh.processes().cloned().collect();
    let victims = match mesh.postgres() {
        Some(database) => killer::Victims::cluster(processes, mesh.nats_nodes(), database),
        None => killer::Victims::single(processes),
    };
    let killer = tokio::spawn(killer::run(
        victims.clone(),
        options.kill_every,
        options.seed,
        started,
        chaos.clone(),
        options.progress,
    ));

    let purchasing = tokio::spawn({
        let clients = clients.clone();
        async move { purchases::drive(&clients, purchasers).await }
    });
    let driven = load::drive(&clients, &plan, options.concurrency, options.spread).await;
    let purchased = purchasing.await.unwrap_or_default();
    let load_time = started.elapsed();
    chaos.cancel();
    vendor_stop.cancel();
    let mut kills = killer.await.unwrap_or_default();
    killer::complete(&victims, started, &mut kills, options.progress).await;
    say(format!(
        "load done in {:.1}s: {} missions and {} exchanges confirmed; waiting for every process to serve",
        load_time.as_secs_f64(),
        driven.missions.len(),
        driven.exchanges.len()
    ));

    let mut report = Report {
        seed: options.seed,
        run_dir: mesh.run_dir().to_path_buf(),
        missions_driven: driven.missions.len(),
        exchanges_driven: driven.exchanges.len(),
        processes_killed: kills.processes,
        shape: options.shape,
        meta_leader_kills: kills.meta_leader,
        stream_leader_kills: kills.stream_leader,
        database_outages: kills.database_outages.clone(),
        load_time,
        cancel_percent: options.cancel_percent,
        kills: kills.log,
        purchases_driven: purchased.confirmed.len(),
        failures: driven.failures.iter().chain(&purchased.failures).cloned().collect(),
        ..Report::default()
    };
    let _ = vendor.await;
    // Quiescence counts the expiries that fell due: the finale's must have.
    let expired_by = programme.ends_at + FINALE_EXPIRY + Duration::from_secs(1);
    if let Ok(wait) = expired_by.duration_since(std::time::SystemTime::now()) {
        say(format!("waiting {:.1}s for the finale's rewards to fall due", wait.as_secs_f64()));
        tokio::time::sleep(wait).await;
    }
    let settle_started = Instant::now();
    if let Err(error) = mesh.wait_until_serving(Duration::from_secs(120), options.progress).await {
        report.failures.push(format!("{error:#}"));
    }
    match quiescence::wait(&js, &stores, options.settle_within, options.progress).await {
        Ok(_) => report.time_to_quiescence = Some(settle_started.elapsed()),
        Err(error) => report.failures.push(format!("{error:#}")),
    }
    watching.cancel();
    let samples = sampler.await.unwrap_or_default();
    report.samples = samples.reads;
    report.regressions = samples.regressions;
    say("checking the invariants from the stores and through the APIs".into());

    let snapshot = stores.snapshot().await?;
    // An order the vendor cancelled gives its entry the points back: from
    // EXCHANGED back to AVAILABLE is the refund, not a regression.
    let cancelled: Vec<String> = snapshot
        .gift_orders
        .iter()
        .filter(|o| o.status == api::game::gift::v1::GiftOrderStatus::Cancelled as i32)
        .map(|o| format!("(gift order {})", o.order_id))
        .collect();
    report.regressions.retain(|regression| !cancelled.iter().any(|order| regression.contains(order.as_str())));
    let api = invariants::read_api(&clients, &plan.players, &snapshot).await;
    let findings = invariants::check(&driven, &plan.players, &snapshot, &api);
    report.programme = invariants::tally(&driven, &snapshot);
    let mut points_findings = invariants::Findings::default();
    report.ledger = points::check(&snapshot, &api.wallets, &purchased, &mut points_findings);
    report.duplicates = findings.duplicates;
    report.losses = findings.losses;
    report.mismatches = findings.mismatches;
    report.duplicates.extend(points_findings.duplicates);
    report.losses.extend(points_findings.losses);
    report.mismatches.extend(points_findings.mismatches);
    match invariants::dead_letters(&js).await {
        Ok(letters) => report.losses.extend(letters),
        Err(error) => report.failures.push(format!("the dead letters could not be read: {error:#}")),
    }
    report.retried = clients.retried();
    report.redeliveries_absorbed = redeliveries_absorbed(&mesh).await;
    report.broker_restarts = mesh
        .layout()
        .nats_names()
        .iter()
        .filter_map(|name| mesh.process(name))
        .map(|nats| nats.starts().saturating_sub(1))
        .sum();
    mesh.stop().await;
    Ok(report)
}

/// The deliveries every live process's consumers found already applied.
async fn redeliveries_absorbed(mesh: &Mesh) -> u64 {
    let mut total = 0.0;
    for member in &mesh.layout().members {
        if let Some(text) = crate::mesh::scrape(member).await {
            total += crate::mesh::sum_metric(&text, "rewards_consumer_events_total", &["outcome=\"duplicate\""]);
        }
    }
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)] // a count of events, never negative
    let total = total as u64;
    total
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::{Command, parse};

    fn options(line: &str) -> Result<Options, String> {
        match parse(&format!("chaos {line}"))? {
            Command::Chaos(args) => args.options(PathBuf::from("bin")),
            other => Err(format!("not chaos: {other:?}")),
        }
    }

    #[test]
    fn options_parse_with_their_defaults() {
        let options = options("--missions 300 --exchanges 40 --seed 7").unwrap();
        assert_eq!((options.missions, options.exchanges, options.seed), (300, 40, 7));
        assert_eq!(options.kill_every, Duration::from_secs(3));
        assert!(options.run_dir.starts_with(".run"));
        assert!(self::options("--fast").unwrap_err().contains("--fast"));
        assert!(self::options("--missions 10 --exchanges 11").unwrap_err().contains("11 exchanges"));
    }

    #[test]
    fn the_cluster_has_its_own_defaults_which_options_still_override() {
        let cluster = options("--cluster --exchanges 50").unwrap();
        assert_eq!((cluster.shape, cluster.missions, cluster.exchanges), (Shape::Cluster, 5000, 50));
        assert_eq!(options("--kill-every 0").unwrap().kill_every, Duration::from_secs(1));
    }
}
