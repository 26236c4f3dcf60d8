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
//! the wallet exports it). At the end it checks what must hold: every
//! exchange the player was turned away from left its entry AVAILABLE and its
//! reward ISSUED, the exchanges whose answer timed out were settled by the
//! re-driver, and every mission achieved meanwhile was rewarded.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use api::game::gift::admin::v1::{self as admin, vendor_simulation_service_client::VendorSimulationServiceClient};
use api::game::mission::v1 as mission;
use api::game::reward::v1 as reward;
use api::game::wallet::v1::{self as wallet, WalletEntryStatus};
use platform::CancellationToken;
use platform::resilience::RETRY_AFTER_MS;
use tokio::task::JoinSet;
use tonic::Code;

use crate::chaos::clients::Clients;
use crate::chaos::load::CODES;
use crate::mesh::{Layout, Member, Mesh, MeshConfig, Replicas, scrape, sum_metric};

/// The product every exchange asks for: cheap and plentiful, so that only
/// gift's health decides the answer.
const PRODUCT: &str = "STICKER-PACK";
/// How slow gift becomes: well beyond the wallet's 2 s deadline.
const SLOW_VENDOR_MS: u32 = 4_000;

/// Options of `rewardsctl overload`.
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

impl Options {
    /// The defaults, with binaries from `bin_dir` and a run directory
    /// `.run/overload-<UTC time>`.
    pub fn new(bin_dir: PathBuf) -> Self {
        let stamp = crate::chaos::utc_stamp(std::time::SystemTime::now());
        Self {
            players: 120,
            concurrency: 16,
            rate: 25,
            phase: Duration::from_secs(8),
            run_dir: PathBuf::from(".run").join(format!("overload-{stamp}")),
            bin_dir,
            nats_server: None,
        }
    }

    /// Parses the arguments after `overload`.
    ///
    /// # Errors
    /// On an unknown or incomplete argument.
    pub fn parse(args: &[String], bin_dir: PathBuf) -> Result<Self, String> {
        let mut options = Self::new(bin_dir);
        let mut args = crate::args::Args::new(args);
        while let Some(option) = args.next_option() {
            match option {
                "--players" => options.players = args.number("a count")?,
                "--concurrency" => options.concurrency = args.number("a count")?,
                "--rate" => options.rate = args.number("exchanges per second")?,
                "--phase-secs" => options.phase = args.seconds()?.max(Duration::from_secs(2)),
                "--run-dir" => options.run_dir = args.value("a directory")?.into(),
                _ => return Err(args.unknown()),
            }
        }
        if options.players == 0 || options.concurrency == 0 || options.rate == 0 {
            return Err("--players, --concurrency and --rate must be at least 1".into());
        }
        Ok(options)
    }
}

/// The phases of the run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Phase {
    Healthy,
    Slowed,
    Recovered,
}

impl Phase {
    fn label(self) -> &'static str {
        match self {
            Self::Healthy => "healthy",
            Self::Slowed => "gift slowed",
            Self::Recovered => "gift recovered",
        }
    }
}

/// What one exchange call came back with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Answer {
    /// EXCHANGED: the player has the gift.
    Exchanged,
    /// UNAVAILABLE with `retry-after-ms`: the fallback, "try again later".
    TurnedAway,
    /// UNAVAILABLE "stays pending": gift did not answer within the deadline;
    /// the re-driver settles it.
    TimedOut,
    /// Anything else (a bug, for this run).
    Other,
}

/// Latencies of one kind of answer in one phase.
#[derive(Debug, Default, Clone)]
pub struct Latencies(Vec<Duration>);

impl Latencies {
    fn record(&mut self, latency: Duration) {
        self.0.push(latency);
    }

    /// How many calls.
    pub fn count(&self) -> usize {
        self.0.len()
    }

    /// The `q` quantile (0..=1), nearest rank.
    pub fn quantile(&self, q: f64) -> Option<Duration> {
        let mut sorted = self.0.clone();
        sorted.sort_unstable();
        let last = sorted.len().checked_sub(1)?;
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss, clippy::cast_precision_loss)]
        let rank = ((q * sorted.len() as f64).ceil() as usize).saturating_sub(1).min(last);
        sorted.get(rank).copied()
    }
}

/// What the run saw and found.
#[derive(Debug, Default)]
pub struct Report {
    pub run_dir: PathBuf,
    /// Per phase and answer, the latencies the players saw.
    pub answers: BTreeMap<(Phase, Answer), Latencies>,
    /// Missions achieved (and confirmed) per phase.
    pub missions: BTreeMap<Phase, usize>,
    /// Seconds into the slowed phase when the breaker was first seen open.
    pub opened_after: Option<Duration>,
    /// Seconds into the recovered phase when the breaker was seen closed again.
    pub closed_after: Option<Duration>,
    /// Broken promises; empty when the run passed.
    pub violations: Vec<String>,
}

impl Report {
    /// Whether the breaker opened and closed again and every promise held.
    pub fn passed(&self) -> bool {
        self.opened_after.is_some() && self.closed_after.is_some() && self.violations.is_empty()
    }

    /// Prints the figures per phase and the verdict.
    pub fn print(&self) {
        let ms = |d: Option<Duration>| d.map_or("-".to_owned(), |d| format!("{:.1}", d.as_secs_f64() * 1000.0));
        println!("\n== Exchange under pressure ==");
        println!(
            "  {:<16} {:>9} {:>9} {:>9} {:>9} {:>10} {:>10}",
            "phase", "missions", "exchanged", "timed out", "turned", "p50 ms", "p99 ms"
        );
        println!(
            "  {:<16} {:>9} {:>9} {:>9} {:>9} {:>10} {:>10}",
            "", "achieved", "", "", "away", "(answers)", "(answers)"
        );
        for phase in [Phase::Healthy, Phase::Slowed, Phase::Recovered] {
            let of = |answer| self.answers.get(&(phase, answer)).map_or(0, Latencies::count);
            let mut all = Latencies::default();
            for ((p, _), latencies) in &self.answers {
                if *p == phase {
                    all.0.extend_from_slice(&latencies.0);
                }
            }
            println!(
                "  {:<16} {:>9} {:>9} {:>9} {:>9} {:>10} {:>10}",
                phase.label(),
                self.missions.get(&phase).copied().unwrap_or_default(),
                of(Answer::Exchanged),
                of(Answer::TimedOut),
                of(Answer::TurnedAway),
                ms(all.quantile(0.5)),
                ms(all.quantile(0.99)),
            );
        }
        let turned: Latencies = Latencies(
            self.answers
                .iter()
                .filter(|((_, answer), _)| *answer == Answer::TurnedAway)
                .flat_map(|(_, l)| l.0.iter().copied())
                .collect(),
        );
        println!(
            "  fallback ('try again later') latency: p50 {} ms, p99 {} ms over {} answers",
            ms(turned.quantile(0.5)),
            ms(turned.quantile(0.99)),
            turned.count()
        );
        let after = |d: Option<Duration>| d.map_or("never".to_owned(), |d| format!("{:.1}s", d.as_secs_f64()));
        println!("  breaker opened         {} after gift slowed down", after(self.opened_after));
        println!("  breaker closed         {} after gift recovered", after(self.closed_after));
        for violation in &self.violations {
            println!("  ! {violation}");
        }
        println!("  logs and stores in {}", self.run_dir.display());
        println!(
            "{}",
            if self.passed() {
                "PASSED: players were turned away at once while gift was overloaded, rewards unchanged, missions kept flowing"
            } else {
                "FAILED"
            }
        );
    }
}

/// The state shared by the players and the ticker.
#[derive(Debug)]
struct Shared {
    phase: Mutex<(Phase, Instant)>,
    /// Entries ready to be exchanged: (customer, entry id).
    available: Mutex<Vec<(String, String)>>,
    /// Paces the exchanges started, over all the players.
    pace: tokio::sync::Mutex<tokio::time::Interval>,
    answers: Mutex<BTreeMap<(Phase, Answer), Latencies>>,
    missions: Mutex<BTreeMap<Phase, usize>>,
    /// Missions achieved while gift was in trouble: (customer, mission id).
    achieved: Mutex<Vec<(String, String)>>,
    /// Entries whose exchange the player was turned away from, in any phase.
    turned_away: Mutex<Vec<(String, String)>>,
    others: Mutex<Vec<String>>,
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Shared {
    fn phase(&self) -> Phase {
        lock(&self.phase).0
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

fn say(line: String) {
    println!("[overload] {line}");
}

async fn exercise(mesh: &Mesh, options: &Options) -> anyhow::Result<Report> {
    let clients = Clients::new(&mesh.layout().gateway_url(), mesh.identity().clone())?;
    let gift = mesh.layout().members_of("gift").next().context("no gift in the layout")?.clone();
    let wallet = mesh.layout().members_of("wallet").next().context("no wallet in the layout")?.clone();
    let vendor = VendorSimulationServiceClient::connect(gift.url()).await.context("gift's admin API")?;

    say(format!("giving {} players the whole mission catalogue ({} rewards)…", options.players, options.players * 5));
    let entries = setup(&clients, options.players).await?;
    say(format!(
        "{} wallet entries are AVAILABLE; {} players start exchanging them for {PRODUCT}",
        entries.len(),
        options.concurrency
    ));

    let shared = Arc::new(Shared {
        phase: Mutex::new((Phase::Healthy, Instant::now())),
        available: Mutex::new(entries),
        pace: tokio::sync::Mutex::new(pace(options.rate)),
        answers: Mutex::default(),
        missions: Mutex::default(),
        achieved: Mutex::default(),
        turned_away: Mutex::default(),
        others: Mutex::default(),
    });
    let stop = CancellationToken::new();
    let mut players = JoinSet::new();
    for _ in 0..options.concurrency {
        players.spawn(exchanging(clients.clone(), Arc::clone(&shared), stop.clone()));
    }
    players.spawn(achieving(clients.clone(), Arc::clone(&shared), stop.clone()));

    let mut report = Report { run_dir: mesh.run_dir().to_path_buf(), ..Report::default() };
    tick_through(&shared, &wallet, Phase::Healthy, options.phase, Until::PhaseEnds, |_| false).await;

    set_vendor(&clients, &vendor, admin::VendorBehaviour { latency_ms: SLOW_VENDOR_MS, ..Default::default() }).await?;
    say(format!("gift slowed down: every exchange now takes {SLOW_VENDOR_MS} ms, beyond the wallet's deadline"));
    enter(&shared, Phase::Slowed);
    report.opened_after =
        tick_through(&shared, &wallet, Phase::Slowed, options.phase, Until::PhaseEnds, |state| state == 2).await;

    set_vendor(&clients, &vendor, admin::VendorBehaviour::default()).await?;
    say("gift recovered".into());
    enter(&shared, Phase::Recovered);
    // Until the breaker closed (its cool-down, then a probe), then one more phase.
    if report.opened_after.is_some() {
        report.closed_after =
            tick_through(&shared, &wallet, Phase::Recovered, Duration::from_secs(60), Until::Seen, |state| state == 0)
                .await;
    }
    tick_through(&shared, &wallet, Phase::Recovered, options.phase, Until::PhaseEnds, |_| false).await;
    stop.cancel();
    while players.join_next().await.is_some() {}

    report.answers = lock(&shared.answers).clone();
    report.missions = lock(&shared.missions).clone();
    say("waiting for the re-driver to settle timed-out exchanges, then checking what must hold…".into());
    report.violations = check(&clients, &shared).await;
    if report.opened_after.is_none() {
        report.violations.push("the breaker never opened while gift was slowed".into());
    }
    if report.answers.get(&(Phase::Slowed, Answer::TurnedAway)).is_none_or(|l| l.count() == 0) {
        report.violations.push("no player was turned away while gift was slowed".into());
    }
    if report.answers.get(&(Phase::Recovered, Answer::Exchanged)).is_none_or(|l| l.count() == 0) {
        report.violations.push("no exchange went through after gift recovered".into());
    }
    if report.missions.get(&Phase::Slowed).copied().unwrap_or_default() == 0 {
        report.violations.push("no mission was achieved while gift was slowed".into());
    }
    Ok(report)
}

/// A steady `rate` a second that never bursts to catch up: players held up
/// by slow answers do not come back all at once.
fn pace(rate: u32) -> tokio::time::Interval {
    let mut pace = tokio::time::interval(Duration::from_secs(1) / rate);
    pace.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    pace
}

fn enter(shared: &Shared, phase: Phase) {
    *lock(&shared.phase) = (phase, Instant::now());
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

/// Every player achieves the whole catalogue; returns their wallet entries
/// once every one is AVAILABLE.
async fn setup(clients: &Clients, players: usize) -> anyhow::Result<Vec<(String, String)>> {
    let customers: Vec<String> = (0..players).map(|p| format!("exchanger-{p:03}")).collect();
    let mut achieving = JoinSet::new();
    for customer in customers.clone() {
        let clients = clients.clone();
        achieving.spawn(async move {
            for code in CODES {
                let request =
                    mission::AchieveMissionRequest { customer_id: customer.clone(), mission_code: code.into() };
                clients.missions.clone().achieve_mission(clients.as_player(&customer, request)).await?;
            }
            Ok::<_, tonic::Status>(())
        });
    }
    while let Some(done) = achieving.join_next().await {
        done?.context("achieving the setup missions")?;
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut entries = Vec::new();
    for customer in customers {
        loop {
            let wallet = wallet_entries(clients, &customer).await;
            let ready: Vec<_> = wallet.iter().filter(|e| e.status() == WalletEntryStatus::Available).collect();
            if ready.len() == CODES.len() {
                entries.extend(ready.into_iter().map(|e| (customer.clone(), e.entry_id.clone())));
                break;
            }
            if Instant::now() > deadline {
                bail!("{customer}'s rewards did not all reach the wallet within a minute");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    Ok(entries)
}

/// The player's wallet entries; none while the wallet does not answer.
async fn wallet_entries(clients: &Clients, customer_id: &str) -> Vec<wallet::WalletEntry> {
    let request = wallet::GetWalletRequest { customer_id: customer_id.to_owned() };
    let answer = clients.wallets.clone().get_wallet(clients.as_player(customer_id, request)).await;
    answer.ok().and_then(|r| r.into_inner().wallet).map(|w| w.entries).unwrap_or_default()
}

/// One player exchanging entry after entry; turned away, they come back later.
async fn exchanging(clients: Clients, shared: Arc<Shared>, stop: CancellationToken) {
    while !stop.is_cancelled() {
        shared.pace.lock().await.tick().await;
        let Some((customer_id, entry_id)) = lock(&shared.available).pop() else {
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        };
        let phase = shared.phase();
        let request = wallet::ExchangeRewardRequest {
            customer_id: customer_id.clone(),
            entry_id: entry_id.clone(),
            product_sku: PRODUCT.into(),
        };
        let started = Instant::now();
        let answered = clients.wallets.clone().exchange_reward(clients.as_player(&customer_id, request)).await;
        let latency = started.elapsed();
        let answer = match &answered {
            Ok(_) => Answer::Exchanged,
            Err(status) if status.code() == Code::Unavailable && status.metadata().get(RETRY_AFTER_MS).is_some() => {
                Answer::TurnedAway
            }
            Err(status) if status.code() == Code::Unavailable && status.message().contains("stays pending") => {
                Answer::TimedOut
            }
            Err(status) => {
                lock(&shared.others).push(format!(
                    "{customer_id}/{entry_id}: {:?} {}",
                    status.code(),
                    status.message()
                ));
                Answer::Other
            }
        };
        lock(&shared.answers).entry((phase, answer)).or_default().record(latency);
        if answer == Answer::TurnedAway {
            lock(&shared.turned_away).push((customer_id.clone(), entry_id.clone()));
            // The player comes back to the same entry later.
            lock(&shared.available).insert(0, (customer_id, entry_id));
        }
    }
}

/// Other players achieving missions all along, one new player every 20 ms.
async fn achieving(clients: Clients, shared: Arc<Shared>, stop: CancellationToken) {
    let mut n = 0u64;
    let mut pace = tokio::time::interval(Duration::from_millis(20));
    while !stop.is_cancelled() {
        pace.tick().await;
        n += 1;
        let customer_id = format!("achiever-{n:05}");
        let phase = shared.phase();
        let request =
            mission::AchieveMissionRequest { customer_id: customer_id.clone(), mission_code: "FIRST_WIN".into() };
        match clients.missions.clone().achieve_mission(clients.as_player(&customer_id, request)).await {
            Ok(response) => {
                *lock(&shared.missions).entry(phase).or_default() += 1;
                if let Some(mission) = response.into_inner().mission {
                    lock(&shared.achieved).push((customer_id, mission.mission_id));
                }
            }
            Err(status) => lock(&shared.others).push(format!("AchieveMission for {customer_id}: {status:?}")),
        }
    }
}

/// How long [`tick_through`] goes on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Until {
    /// For the whole length.
    PhaseEnds,
    /// Until the breaker state it watches for is seen (at most the length).
    Seen,
}

/// Prints a line a second for `phase`, for `length` (or, with
/// [`Until::Seen`], until `seen` holds for the breaker state); returns how
/// long into the phase `seen` first held.
async fn tick_through(
    shared: &Shared,
    wallet: &Member,
    phase: Phase,
    length: Duration,
    until: Until,
    seen: impl Fn(i64) -> bool,
) -> Option<Duration> {
    let mut first_seen = None;
    let started = lock(&shared.phase).1;
    let ends = Instant::now() + length;
    // Counted from what this phase already saw, when it is ticked through in parts.
    let mut last: BTreeMap<(Phase, Answer), usize> =
        lock(&shared.answers).iter().map(|(key, latencies)| (*key, latencies.count())).collect();
    let mut last_missions = lock(&shared.missions).get(&phase).copied().unwrap_or_default();
    let mut ticker = tokio::time::interval(Duration::from_secs(1));
    ticker.tick().await;
    while Instant::now() < ends {
        ticker.tick().await;
        let state = breaker_state(wallet).await;
        let answers = lock(&shared.answers).clone();
        let fresh = |answer: Answer| {
            let now = answers.get(&(phase, answer)).map_or(0, Latencies::count);
            now - last.get(&(phase, answer)).copied().unwrap_or_default()
        };
        let missions = lock(&shared.missions).get(&phase).copied().unwrap_or_default();
        say(format!(
            "{:>14} {:>5.1}s  breaker {:<9}  exchanged {:>3}  timed out {:>3}  turned away {:>4}  missions achieved {:>3}",
            phase.label(),
            started.elapsed().as_secs_f64(),
            state.map_or("?", |s| match s {
                0 => "closed",
                1 => "half-open",
                _ => "OPEN",
            }),
            fresh(Answer::Exchanged),
            fresh(Answer::TimedOut),
            fresh(Answer::TurnedAway),
            missions - last_missions,
        ));
        last_missions = missions;
        for answer in [Answer::Exchanged, Answer::TimedOut, Answer::TurnedAway, Answer::Other] {
            last.insert((phase, answer), answers.get(&(phase, answer)).map_or(0, Latencies::count));
        }
        if first_seen.is_none() && state.is_some_and(&seen) {
            first_seen = Some(started.elapsed());
            if until == Until::Seen {
                break;
            }
        }
    }
    first_seen
}

/// The wallet's breaker state towards gift: 0 closed, 1 half-open, 2 open.
async fn breaker_state(wallet: &Member) -> Option<i64> {
    let text = scrape(wallet).await?;
    #[allow(clippy::cast_possible_truncation)]
    Some(sum_metric(&text, "rewards_circuit_breaker_state", &[]) as i64)
}

/// What must hold once the dust settled.
async fn check(clients: &Clients, shared: &Shared) -> Vec<String> {
    let mut violations: Vec<String> =
        lock(&shared.others).iter().take(10).map(|o| format!("unexpected answer: {o}")).collect();
    let deadline = Instant::now() + Duration::from_secs(60);
    let turned_away = lock(&shared.turned_away).clone();
    let mut customers: Vec<String> = turned_away.iter().map(|(c, _)| c.clone()).collect();
    customers.sort();
    customers.dedup();
    for customer in customers {
        // Exchanges whose answer timed out stay pending until the re-driver
        // settles them.
        let entries = loop {
            let entries = wallet_entries(clients, &customer).await;
            if entries.iter().all(|e| e.status() != WalletEntryStatus::ExchangePending) || Instant::now() > deadline {
                break entries;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        };
        for entry in entries {
            let expected = match entry.status() {
                WalletEntryStatus::Available => reward::RewardStatus::Issued,
                WalletEntryStatus::Exchanged => reward::RewardStatus::Exchanged,
                other => {
                    violations.push(format!("entry {} of {customer} is still {other:?}", entry.entry_id));
                    continue;
                }
            };
            let status = eventually(deadline, || async {
                let request = reward::GetRewardRequest { reward_id: entry.reward_id.clone() };
                let answer = clients.rewards.clone().get_reward(clients.as_player(&customer, request)).await;
                let status = answer.ok()?.into_inner().reward?.status();
                (status == expected).then_some(status)
            })
            .await;
            if status.is_none() {
                violations.push(format!("reward {} of entry {} is not {expected:?}", entry.reward_id, entry.entry_id));
            }
        }
    }
    let achieved = lock(&shared.achieved).clone();
    for (customer, mission_id) in achieved {
        let rewarded = eventually(deadline, || async {
            let request = mission::GetMissionRequest { mission_id: mission_id.clone() };
            let answer = clients.missions.clone().get_mission(clients.as_player(&customer, request)).await;
            let found = answer.ok()?.into_inner().mission?;
            (found.status() == mission::MissionStatus::Rewarded).then_some(())
        })
        .await;
        if rewarded.is_none() {
            violations.push(format!("mission {mission_id} of {customer} was never rewarded"));
        }
    }
    violations
}

async fn eventually<T, F, Fut>(deadline: Instant, mut check: F) -> Option<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    loop {
        if let Some(value) = check().await {
            return Some(value);
        }
        if Instant::now() > deadline {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_take_the_nearest_rank() {
        let latencies = Latencies((1..=100).map(Duration::from_millis).collect());
        assert_eq!(latencies.quantile(0.5), Some(Duration::from_millis(50)));
        assert_eq!(latencies.quantile(0.99), Some(Duration::from_millis(99)));
        assert_eq!(latencies.quantile(1.0), Some(Duration::from_millis(100)));
        assert_eq!(Latencies::default().quantile(0.5), None);
    }

    #[test]
    fn options_parse_and_refuse_nonsense() {
        let args = |text: &str| text.split_whitespace().map(str::to_owned).collect::<Vec<_>>();
        let options = Options::parse(&args("--players 10 --phase-secs 5"), PathBuf::from("bin")).unwrap();
        assert_eq!((options.players, options.phase), (10, Duration::from_secs(5)));
        assert!(Options::parse(&args("--players 0"), PathBuf::new()).is_err());
        assert!(Options::parse(&args("--loud"), PathBuf::new()).unwrap_err().contains("unknown argument"));
    }
}
