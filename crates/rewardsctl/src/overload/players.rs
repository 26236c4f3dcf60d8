//! The players of an overload run: some exchange their rewards at a steady
//! pace, others keep achieving missions, and all of it is tallied per phase.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use api::game::mission::v1 as mission;
use api::game::wallet::v1::{self as wallet, WalletEntryStatus};
use loadgen::Catalogue;
use platform::CancellationToken;
use platform::resilience::RETRY_AFTER_MS;
use tokio::task::JoinSet;
use tonic::Code;

use super::report::{Answer, Answers, Phase};
use crate::clients::Clients;

/// The product every exchange asks for: cheap and plentiful, so that only
/// gift's health decides the answer.
pub const PRODUCT: &str = "STICKER-PACK";

/// The state shared by the players and the ticker.
#[derive(Debug)]
pub struct Shared {
    phase: Mutex<(Phase, Instant)>,
    /// Entries ready to be exchanged: (customer, entry id).
    available: Mutex<Vec<(String, String)>>,
    /// Paces the exchanges started, over all the players.
    pace: tokio::sync::Mutex<tokio::time::Interval>,
    pub answers: Mutex<Answers>,
    pub missions: Mutex<BTreeMap<Phase, usize>>,
    /// Missions achieved while gift was in trouble: (customer, mission id).
    pub achieved: Mutex<Vec<(String, String)>>,
    /// Entries whose exchange the player was turned away from, in any phase.
    pub turned_away: Mutex<Vec<(String, String)>>,
    /// Every player who exchanges.
    pub exchangers: Mutex<Vec<String>>,
    /// Answers nobody expected: each a bug, for this run.
    pub others: Mutex<Vec<String>>,
}

/// The value behind `mutex`, even if a player panicked holding it.
pub fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Shared {
    /// The healthy phase, with these entries to exchange at `rate` a second.
    pub fn new(entries: Vec<(String, String)>, rate: u32) -> Self {
        let mut exchangers: Vec<String> = entries.iter().map(|(customer, _)| customer.clone()).collect();
        exchangers.dedup();
        Self {
            exchangers: Mutex::new(exchangers),
            phase: Mutex::new((Phase::Healthy, Instant::now())),
            available: Mutex::new(entries),
            pace: tokio::sync::Mutex::new(pace(rate)),
            answers: Mutex::default(),
            missions: Mutex::default(),
            achieved: Mutex::default(),
            turned_away: Mutex::default(),
            others: Mutex::default(),
        }
    }

    /// The phase the run is in.
    pub fn phase(&self) -> Phase {
        lock(&self.phase).0
    }

    /// When the current phase began.
    pub fn phase_began(&self) -> Instant {
        lock(&self.phase).1
    }

    /// Enters `phase` now.
    pub fn enter(&self, phase: Phase) {
        *lock(&self.phase) = (phase, Instant::now());
    }
}

/// A steady `rate` a second that never bursts to catch up: players held up
/// by slow answers do not come back all at once.
fn pace(rate: u32) -> tokio::time::Interval {
    let mut pace = tokio::time::interval(Duration::from_secs(1) / rate.max(1));
    pace.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    pace
}

/// Every player achieves the whole catalogue; returns their wallet entries
/// once every one is AVAILABLE.
///
/// # Errors
/// When a mission cannot be achieved or the rewards do not all arrive within a minute.
pub async fn setup(clients: &Clients, catalogue: &Catalogue, players: usize) -> anyhow::Result<Vec<(String, String)>> {
    let customers: Vec<String> = (0..players).map(|p| format!("exchanger-{p:03}")).collect();
    let mut achieving = JoinSet::new();
    for customer in customers.clone() {
        let (clients, catalogue) = (clients.clone(), catalogue.clone());
        achieving.spawn(async move {
            for code in catalogue.codes() {
                let request = mission::AchieveMissionRequest {
                    customer_id: customer.clone(),
                    mission_code: code.to_owned(),
                    achievement_id: None,
                };
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
            if ready.len() == catalogue.codes().len() {
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
pub async fn wallet_entries(clients: &Clients, customer_id: &str) -> Vec<wallet::WalletEntry> {
    let request = wallet::GetWalletRequest { customer_id: customer_id.to_owned() };
    let answer = clients.wallets.clone().get_wallet(clients.as_player(customer_id, request)).await;
    answer.ok().and_then(|r| r.into_inner().wallet).map(|w| w.entries).unwrap_or_default()
}

/// One player exchanging entry after entry; turned away, they come back later.
pub async fn exchanging(clients: Clients, shared: Arc<Shared>, stop: CancellationToken) {
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

/// Other players achieving missions all along, one new player every 20 ms,
/// each the first mission of the catalogue.
pub async fn achieving(clients: Clients, catalogue: Catalogue, shared: Arc<Shared>, stop: CancellationToken) {
    let first = catalogue.first_code().to_owned();
    let mut n = 0u64;
    let mut pace = tokio::time::interval(Duration::from_millis(20));
    while !stop.is_cancelled() {
        pace.tick().await;
        n += 1;
        let customer_id = format!("achiever-{n:05}");
        let phase = shared.phase();
        let request = mission::AchieveMissionRequest {
            customer_id: customer_id.clone(),
            mission_code: first.clone(),
            achievement_id: None,
        };
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
