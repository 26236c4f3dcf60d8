//! What must hold once the dust of an overload run settled: every exchange
//! a player was turned away from left its entry AVAILABLE and its reward
//! ISSUED (or, if a later attempt went through, both EXCHANGED), timed-out
//! exchanges were settled by the re-driver, and every mission achieved
//! meanwhile was rewarded.

use std::time::{Duration, Instant};

use api::game::mission::v1 as mission;
use api::game::reward::v1 as reward;
use api::game::wallet::v1::WalletEntryStatus;

use super::players::{Shared, lock, wallet_entries};
use crate::clients::Clients;

/// How long the system may take to settle after the load.
const SETTLE_WITHIN: Duration = Duration::from_secs(60);

/// The promises broken, each in words; empty when all held.
pub async fn check(clients: &Clients, shared: &Shared) -> Vec<String> {
    let mut violations: Vec<String> =
        lock(&shared.others).iter().take(10).map(|o| format!("unexpected answer: {o}")).collect();
    let deadline = Instant::now() + SETTLE_WITHIN;
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
            let status = by_deadline(deadline, || async {
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
        let rewarded = by_deadline(deadline, || async {
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

/// Polls `check` until it returns `Some` or `deadline` passes: a broken
/// promise is reported, not a panic, unlike the tests' `eventually`.
async fn by_deadline<T, F, Fut>(deadline: Instant, mut check: F) -> Option<T>
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
