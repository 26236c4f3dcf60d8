//! What must hold once the dust of an overload run settled: every exchange
//! a player was turned away from left its entry AVAILABLE and its reward
//! ISSUED (or, if a later attempt went through, both EXCHANGED; or the entry
//! AVAILABLE again with its reward EXCHANGED when the vendor cancelled the
//! order and the points came back), timed-out exchanges were settled by the
//! re-driver, every player's points add up, and every mission achieved
//! meanwhile was rewarded.

use std::time::{Duration, Instant};

use api::game::mission::v1 as mission;
use api::game::reward::v1 as reward;
use api::game::wallet::v1::{self as wallet, ExchangeStatus, WalletEntryStatus};

use super::players::{Shared, lock};
use crate::clients::Clients;

/// How long the system may take to settle after the load.
const SETTLE_WITHIN: Duration = Duration::from_secs(60);

/// What the checks found.
#[derive(Debug, Default)]
pub struct Checked {
    /// The promises broken, each in words; empty when all held.
    pub violations: Vec<String>,
    /// Exchanges of the checked players refunded after a cancellation.
    pub refunds: usize,
}

/// Checks every promise of the run.
pub async fn check(clients: &Clients, shared: &Shared) -> Checked {
    let mut checked = Checked::default();
    let mut violations: Vec<String> =
        lock(&shared.others).iter().take(10).map(|o| format!("unexpected answer: {o}")).collect();
    let deadline = Instant::now() + SETTLE_WITHIN;
    let mut customers: Vec<String> = lock(&shared.exchangers).clone();
    customers.sort();
    customers.dedup();
    for customer in customers {
        // Exchanges whose answer timed out stay pending until the re-driver
        // settles them.
        let held = loop {
            let held = wallet_of(clients, &customer).await;
            let settled = held.exchanges.iter().all(|x| x.status() != ExchangeStatus::Pending);
            if settled || Instant::now() > deadline {
                break held;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        };
        if held.earned != held.balance + held.reserved + held.spent + held.expired {
            violations.push(format!(
                "{customer}'s points do not add up: earned {} = balance {} + reserved {} + spent {} + expired {}",
                held.earned, held.balance, held.reserved, held.spent, held.expired
            ));
        }
        let refunded = |entry_id: &str| {
            held.exchanges.iter().any(|x| {
                x.status() == ExchangeStatus::Refunded && x.reservations.iter().any(|r| r.entry_id == entry_id)
            })
        };
        checked.refunds += held.exchanges.iter().filter(|x| x.status() == ExchangeStatus::Refunded).count();
        for entry in &held.entries {
            let expected: &[reward::RewardStatus] = match entry.status() {
                // The reward context never takes an exchange back.
                WalletEntryStatus::Available if refunded(&entry.entry_id) => {
                    &[reward::RewardStatus::Issued, reward::RewardStatus::Exchanged]
                }
                WalletEntryStatus::Available => &[reward::RewardStatus::Issued],
                WalletEntryStatus::Exchanged => &[reward::RewardStatus::Exchanged],
                other => {
                    violations.push(format!("entry {} of {customer} is still {other:?}", entry.entry_id));
                    continue;
                }
            };
            let status = by_deadline(deadline, || async {
                let request = reward::GetRewardRequest { reward_id: entry.reward_id.clone() };
                let answer = clients.rewards.clone().get_reward(clients.as_player(&customer, request)).await;
                let status = answer.ok()?.into_inner().reward?.status();
                expected.contains(&status).then_some(status)
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
    checked.violations = violations;
    checked
}

/// The player's wallet; empty while the wallet does not answer.
async fn wallet_of(clients: &Clients, customer_id: &str) -> wallet::Wallet {
    let request = wallet::GetWalletRequest { customer_id: customer_id.to_owned() };
    let answer = clients.wallets.clone().get_wallet(clients.as_player(customer_id, request)).await;
    answer.ok().and_then(|r| r.into_inner().wallet).unwrap_or_default()
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
