//! The load: concurrent players achieving missions and exchanging some of
//! their rewards through the gateway, retrying like patient players while
//! processes die under them. It records what the system confirmed.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use api::game::mission::v1 as mission;
use api::game::wallet::v1 as wallet;
use loadgen::Catalogue;
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tonic::Code;

use crate::clients::{Clients, pause, worth_retrying};

/// How long one mission or exchange may take, retries included, before
/// the test reports it as failed.
const PATIENCE: Duration = Duration::from_secs(300);

/// Which missions are achieved and which of their rewards are exchanged.
#[derive(Debug, Clone)]
pub struct Plan {
    pub players: Vec<String>,
    /// (player index, mission code), in the order they are driven.
    pub missions: Vec<(usize, String)>,
    /// The missions whose reward is exchanged, spread over the players.
    pub exchanges: BTreeSet<(usize, String)>,
}

impl Plan {
    /// `missions` achievements by players who each achieve the whole
    /// `catalogue`, `exchanges` of them exchanged.
    ///
    /// # Errors
    /// When there are more exchanges than missions.
    pub fn new(missions: usize, exchanges: usize, catalogue: &Catalogue) -> Result<Self, String> {
        check_counts(missions, exchanges)?;
        let codes: Vec<&str> = catalogue.codes().collect();
        let count = missions.div_ceil(codes.len());
        let players = (0..count).map(|p| format!("player-{p:05}")).collect();
        let driven: Vec<(usize, String)> =
            (0..count).flat_map(|p| codes.iter().map(move |code| (p, (*code).to_owned()))).take(missions).collect();
        // Spread over the players, one code after the other; any pair the
        // spread misses (a short last player) is made up from the start.
        let mut chosen = BTreeSet::new();
        for j in 0..exchanges {
            let candidate = (j * count / exchanges.max(1), codes[j % codes.len()].to_owned());
            if driven.contains(&candidate) {
                chosen.insert(candidate);
            }
        }
        for pair in &driven {
            if chosen.len() >= exchanges {
                break;
            }
            chosen.insert(pair.clone());
        }
        Ok(Self { players, missions: driven, exchanges: chosen })
    }
}

/// Whether `exchanges` can be made of `missions`.
///
/// # Errors
/// When there are more exchanges than missions.
pub fn check_counts(missions: usize, exchanges: usize) -> Result<(), String> {
    if exchanges > missions {
        return Err(format!("{exchanges} exchanges need at least as many missions, not {missions}"));
    }
    Ok(())
}

/// An exchange the system confirmed to its player.
#[derive(Debug, Clone)]
pub struct Exchanged {
    pub customer_id: String,
    pub mission_id: String,
    pub product_sku: String,
    /// The gift order the answer named; `None` when a retry learnt that an
    /// earlier attempt had succeeded ("already exchanged"), empty when the
    /// entry kept some points (the answer names the order of an entry all spent).
    pub gift_order_id: Option<String>,
    /// The calls made: each may have exchanged the entry (an answer lost,
    /// the order cancelled and refunded before the retry).
    pub attempts: u32,
}

/// What the system confirmed to the players, and what failed for good.
#[derive(Debug, Default)]
pub struct Driven {
    /// (customer, mission code) → mission id.
    pub missions: BTreeMap<(String, String), String>,
    /// entry id → the exchange.
    pub exchanges: BTreeMap<String, Exchanged>,
    /// Achievements the programme refused by its rules: (customer, mission
    /// code, the refusal). Nothing of them may be stored.
    pub refused: Vec<(String, String, String)>,
    /// Calls that failed in a way no retry could fix, or never succeeded.
    pub failures: Vec<String>,
}

type Shared = Arc<Mutex<Driven>>;

fn record(driven: &Shared, change: impl FnOnce(&mut Driven)) {
    change(&mut driven.lock().unwrap_or_else(PoisonError::into_inner));
}

/// One exchange to make once its mission is achieved.
struct ExchangeTask {
    customer_id: String,
    mission_id: String,
    /// Alternates the products, so more than one is exchanged.
    index: usize,
}

/// Drives `plan` with `concurrency` players at a time, the missions spread
/// over at least `spread` when given; returns once every mission and
/// exchange succeeded or failed for good.
pub async fn drive(clients: &Clients, plan: &Plan, concurrency: usize, spread: Option<Duration>) -> Driven {
    let driven: Shared = Arc::default();
    let queue = Arc::new(Mutex::new(plan.missions.iter().cloned().enumerate().collect::<VecDeque<_>>()));
    let started = tokio::time::Instant::now();
    let count = u32::try_from(plan.missions.len()).unwrap_or(u32::MAX).max(1);
    let interval = spread.map_or(Duration::ZERO, |spread| spread / count);
    let (exchanges, to_exchange) = mpsc::unbounded_channel::<ExchangeTask>();
    let to_exchange = Arc::new(tokio::sync::Mutex::new(to_exchange));
    let deadline = Instant::now() + PATIENCE;
    let mut workers = JoinSet::new();
    for _ in 0..concurrency.max(1) {
        let (clients, driven, queue, exchanges) = (clients.clone(), driven.clone(), queue.clone(), exchanges.clone());
        let plan = plan.clone();
        workers.spawn(async move {
            loop {
                let next = queue.lock().unwrap_or_else(PoisonError::into_inner).pop_front();
                let Some((index, (player, code))) = next else { break };
                let due = started + interval * u32::try_from(index).unwrap_or(u32::MAX);
                tokio::time::sleep_until(due).await;
                let customer = plan.players[player].clone();
                let Some(mission_id) = achieve(&clients, &driven, &customer, &code, deadline).await else { continue };
                if plan.exchanges.contains(&(player, code)) {
                    let _ = exchanges.send(ExchangeTask { customer_id: customer, mission_id, index });
                }
            }
        });
    }
    // The exchangers end when every mission worker is done and the queue is empty.
    drop(exchanges);
    for _ in 0..(concurrency / 2).max(1) {
        let (clients, driven, to_exchange) = (clients.clone(), driven.clone(), to_exchange.clone());
        workers.spawn(async move {
            loop {
                let task = to_exchange.lock().await.recv().await;
                let Some(task) = task else { break };
                exchange(&clients, &driven, task, deadline).await;
            }
        });
    }
    while workers.join_next().await.is_some() {}
    std::mem::take(&mut *driven.lock().unwrap_or_else(PoisonError::into_inner))
}

async fn achieve(clients: &Clients, driven: &Shared, customer: &str, code: &str, deadline: Instant) -> Option<String> {
    let request = mission::AchieveMissionRequest {
        customer_id: customer.to_owned(),
        mission_code: code.to_owned(),
        achievement_id: None,
    };
    let answer = clients
        .patiently(deadline, || {
            let (mut missions, request) = (clients.missions.clone(), clients.as_player(customer, request.clone()));
            async move { missions.achieve_mission(request).await }
        })
        .await;
    match answer.map(|r| r.into_inner().mission) {
        Ok(Some(achieved)) => {
            let mission_id = achieved.mission_id.clone();
            record(driven, |d| {
                d.missions.insert((customer.to_owned(), code.to_owned()), achieved.mission_id);
            });
            Some(mission_id)
        }
        Ok(None) => {
            record(driven, |d| d.failures.push(format!("AchieveMission({customer}, {code}) returned no mission")));
            None
        }
        Err(status) if super::programme::refused_by_the_window(code, &status) => {
            let refusal = (customer.to_owned(), code.to_owned(), status.message().to_owned());
            record(driven, |d| d.refused.push(refusal));
            None
        }
        Err(status) => {
            let failure =
                format!("AchieveMission({customer}, {code}) failed: {:?} {}", status.code(), status.message());
            record(driven, |d| d.failures.push(failure));
            None
        }
    }
}

async fn exchange(clients: &Clients, driven: &Shared, task: ExchangeTask, deadline: Instant) {
    let ExchangeTask { customer_id, mission_id, index } = task;
    let Some(entry) = entry_of(clients, &customer_id, &mission_id, deadline).await else {
        let failure = format!("the reward of mission {mission_id} ({customer_id}) never reached the wallet");
        record(driven, |d| d.failures.push(failure));
        return;
    };
    let product = if entry.points >= 300 && index % 2 == 1 { "AVATAR-FRAME" } else { "STICKER-PACK" };
    let request = wallet::ExchangeRewardRequest {
        customer_id: customer_id.clone(),
        entry_id: entry.entry_id.clone(),
        product_sku: product.to_owned(),
    };
    let mut attempt = 0u32;
    let gift_order_id = loop {
        attempt = attempt.saturating_add(1);
        let failed =
            match clients.wallets.clone().exchange_reward(clients.as_player(&customer_id, request.clone())).await {
                Ok(answer) => break answer.into_inner().entry.map(|e| e.gift_order_id),
                Err(status) => status,
            };
        // A retry that finds the entry exchanged learns that an earlier
        // attempt, whose answer was lost, succeeded.
        if attempt > 1 && failed.code() == Code::FailedPrecondition && failed.message().contains("already exchanged") {
            break None;
        }
        if worth_retrying(&failed) && Instant::now() < deadline {
            clients.retrying(&failed);
            tokio::time::sleep(pause(attempt)).await;
            continue;
        }
        let failure = format!(
            "ExchangeReward({customer_id}, {}, {product}) failed: {:?} {}",
            entry.entry_id,
            failed.code(),
            failed.message()
        );
        record(driven, |d| d.failures.push(failure));
        return;
    };
    let exchanged =
        Exchanged { customer_id, mission_id, product_sku: product.to_owned(), gift_order_id, attempts: attempt };
    record(driven, |d| {
        d.exchanges.insert(entry.entry_id, exchanged);
    });
}

/// Waits until the mission's reward is in the player's wallet.
async fn entry_of(
    clients: &Clients,
    customer_id: &str,
    mission_id: &str,
    deadline: Instant,
) -> Option<wallet::WalletEntry> {
    let mut attempt = 0u32;
    while Instant::now() < deadline {
        attempt = attempt.saturating_add(1);
        let request = wallet::GetWalletRequest { customer_id: customer_id.to_owned() };
        match clients.wallets.clone().get_wallet(clients.as_player(customer_id, request)).await {
            Ok(answer) => {
                let entries = answer.into_inner().wallet.map(|w| w.entries).unwrap_or_default();
                if let Some(entry) = entries.into_iter().find(|e| e.mission_id == mission_id) {
                    return Some(entry);
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(status) => {
                clients.retrying(&status);
                tokio::time::sleep(pause(attempt)).await;
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn catalogue() -> Catalogue {
        let codes = ["FIRST_LOGIN", "FIRST_WIN", "INVITE_FRIEND", "WEEKLY_QUEST", "EVENT_CHAMPION"];
        Catalogue::of(loadgen::catalogue::definitions(&codes)).unwrap()
    }

    #[test]
    fn every_player_achieves_the_whole_catalogue() {
        let plan = Plan::new(12, 3, &catalogue()).unwrap();
        assert_eq!(plan.players.len(), 3);
        assert_eq!(plan.missions.len(), 12);
        assert_eq!(plan.missions[5], (1, "FIRST_LOGIN".to_owned()));
        assert_eq!(plan.missions[11], (2, "FIRST_WIN".to_owned()), "the last player achieves what is left");
    }

    #[test]
    fn exchanges_are_spread_over_the_players_and_only_of_driven_missions() {
        let plan = Plan::new(2000, 300, &catalogue()).unwrap();
        assert_eq!(plan.exchanges.len(), 300);
        let players: BTreeSet<usize> = plan.exchanges.iter().map(|(p, _)| *p).collect();
        assert_eq!(players.len(), 300, "one exchange per player when there are more players");
        let short = Plan::new(7, 7, &catalogue()).unwrap();
        assert_eq!(short.exchanges.len(), 7);
        assert!(short.exchanges.iter().all(|pair| short.missions.contains(pair)));
    }

    #[test]
    fn more_exchanges_than_missions_are_refused() {
        assert!(Plan::new(10, 11, &catalogue()).unwrap_err().contains("11 exchanges"));
    }
}
