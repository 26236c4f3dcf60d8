//! The witness of "no status goes backwards": while the chaos runs, it
//! keeps reading a few players' missions, rewards, wallets and pages
//! through the gateway and records any status that moved back, any id that
//! changed, and anything that vanished once seen.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use api::game::mission::v1 as mission;
use api::game::mypage::v1 as mypage;
use api::game::reward::v1 as reward;
use api::game::wallet::v1 as wallet;
use platform::CancellationToken;

use crate::clients::Clients;

/// How often each sampled player is read.
const EVERY: Duration = Duration::from_millis(300);

/// What the sampler saw.
#[derive(Debug, Default)]
pub struct Samples {
    /// Reads that succeeded.
    pub reads: u64,
    /// Every regression, described.
    pub regressions: Vec<String>,
}

/// The furthest each thing of one player was seen.
#[derive(Debug, Default)]
struct Seen {
    /// mission id → (status, reward id).
    missions: BTreeMap<String, (i32, String)>,
    /// reward id → status.
    rewards: BTreeMap<String, i32>,
    /// entry ids seen in the wallet.
    entries: BTreeSet<String>,
    /// exchange id → (status, gift order id).
    exchanges: BTreeMap<String, (i32, String)>,
    /// The most points the wallet was seen to have issued.
    earned: i64,
    page_version: i64,
    /// mission id → (status, reward status) on the page.
    page_missions: BTreeMap<String, (i32, i32)>,
    /// entry id → (status, gift order id) on the page.
    page_entries: BTreeMap<String, (i32, String)>,
}

/// Reads `players` until `stop`, and reports what it saw.
pub async fn run(clients: Clients, players: Vec<String>, stop: CancellationToken) -> Samples {
    let mut samples = Samples::default();
    let mut seen: BTreeMap<String, Seen> = BTreeMap::new();
    while !stop.is_cancelled() {
        for player in &players {
            let state = seen.entry(player.clone()).or_default();
            sample(&clients, player, state, &mut samples).await;
        }
        tokio::select! {
            () = tokio::time::sleep(EVERY) => {}
            () = stop.cancelled() => {}
        }
    }
    samples
}

async fn sample(clients: &Clients, player: &str, seen: &mut Seen, samples: &mut Samples) {
    let mut regressions = Vec::new();
    let mut reads = 0;
    let mut regress = |what: String| regressions.push(format!("{player}: {what}"));
    let request = mission::ListMissionsRequest { customer_id: player.to_owned() };
    if let Ok(answer) = clients.missions.clone().list_missions(clients.as_operator(request)).await {
        let missions = answer.into_inner().missions;
        for (id, (status, _)) in &seen.missions {
            if !missions.iter().any(|m| &m.mission_id == id) {
                regress(format!("mission {id} ({}) vanished", name(*status)));
            }
        }
        for m in missions {
            let before = seen.missions.entry(m.mission_id.clone()).or_insert((m.status, m.reward_id.clone()));
            if m.status < before.0 {
                regress(format!("mission {} went from {} back to {}", m.mission_id, name(before.0), name(m.status)));
            }
            if !before.1.is_empty() && m.reward_id != before.1 {
                regress(format!("mission {} changed its reward from {} to {:?}", m.mission_id, before.1, m.reward_id));
            }
            *before = (before.0.max(m.status), if m.reward_id.is_empty() { before.1.clone() } else { m.reward_id });
        }
        reads += 1;
    }

    let reward_ids: Vec<String> = seen.missions.values().map(|(_, r)| r.clone()).filter(|r| !r.is_empty()).collect();
    for reward_id in reward_ids {
        let request = reward::GetRewardRequest { reward_id: reward_id.clone() };
        let Ok(answer) = clients.rewards.clone().get_reward(clients.as_operator(request)).await else { continue };
        let Some(r) = answer.into_inner().reward else { continue };
        let before = seen.rewards.entry(reward_id.clone()).or_insert(r.status);
        if r.status < *before {
            regress(format!("reward {reward_id} went from {} back to {}", reward_name(*before), reward_name(r.status)));
        }
        *before = (*before).max(r.status);
        reads += 1;
    }

    let request = wallet::GetWalletRequest { customer_id: player.to_owned() };
    if let Ok(answer) = clients.wallets.clone().get_wallet(clients.as_operator(request)).await {
        let held = answer.into_inner().wallet.unwrap_or_default();
        compare_wallets(seen, &held, &mut regress);
        reads += 1;
    }

    let request = mypage::GetMyPageRequest { customer_id: player.to_owned() };
    if let Ok(answer) = clients.pages.clone().get_my_page(clients.as_operator(request)).await
        && let Some(page) = answer.into_inner().my_page
    {
        if page.version < seen.page_version {
            regress(format!("my page went from version {} back to {}", seen.page_version, page.version));
        }
        seen.page_version = seen.page_version.max(page.version);
        for line in &page.missions {
            let before = seen.page_missions.entry(line.mission_id.clone()).or_insert((line.status, line.reward_status));
            if line.status < before.0 || line.reward_status < before.1 {
                regress(format!(
                    "my page's mission {} went from ({}, {}) back to ({}, {})",
                    line.mission_id,
                    name(before.0),
                    reward_name(before.1),
                    name(line.status),
                    reward_name(line.reward_status)
                ));
            }
            *before = (before.0.max(line.status), before.1.max(line.reward_status));
        }
        for id in seen.page_missions.keys() {
            if !page.missions.iter().any(|m| &m.mission_id == id) {
                regress(format!("my page's mission {id} vanished"));
            }
        }
        let now: BTreeMap<String, (i32, String)> =
            page.wallet.into_iter().map(|e| (e.entry_id, (e.status, e.gift_order_id))).collect();
        compare_entries("my page's wallet entry", &mut seen.page_entries, &now, &mut regress);
        reads += 1;
    }
    samples.reads += reads;
    samples.regressions.append(&mut regressions);
}

/// A wallet's entries and exchanges never vanish, its earned points never
/// shrink, and an exchange only moves forward — PENDING to PLACED or
/// RELEASED, PLACED to REFUNDED — keeping its gift order once it has one.
/// (An entry's own status may go back: a refund returns its points.)
fn compare_wallets(seen: &mut Seen, held: &wallet::Wallet, regress: &mut impl FnMut(String)) {
    if held.earned < seen.earned {
        regress(format!("the wallet's earned points went from {} back to {}", seen.earned, held.earned));
    }
    seen.earned = seen.earned.max(held.earned);
    for id in &seen.entries {
        if !held.entries.iter().any(|e| &e.entry_id == id) {
            regress(format!("wallet entry {id} vanished"));
        }
    }
    seen.entries.extend(held.entries.iter().map(|e| e.entry_id.clone()));
    for (id, (status, order)) in &seen.exchanges {
        match held.exchanges.iter().find(|x| &x.exchange_id == id) {
            None => regress(format!("exchange {id} vanished")),
            Some(now)
                if !exchange_may_follow(*status, now.status) || (!order.is_empty() && &now.gift_order_id != order) =>
            {
                regress(format!(
                    "exchange {id} went from {} (gift order {order:?}) to {} (gift order {:?})",
                    exchange_name(*status),
                    exchange_name(now.status),
                    now.gift_order_id
                ));
            }
            Some(_) => {}
        }
    }
    for x in &held.exchanges {
        seen.exchanges.insert(x.exchange_id.clone(), (x.status, x.gift_order_id.clone()));
    }
}

/// Whether an exchange seen `before` may be seen `now`.
fn exchange_may_follow(before: i32, now: i32) -> bool {
    use wallet::ExchangeStatus::{Pending, Placed, Refunded, Released};
    let (Ok(before), Ok(now)) = (wallet::ExchangeStatus::try_from(before), wallet::ExchangeStatus::try_from(now))
    else {
        return false;
    };
    matches!(
        (before, now),
        (Pending, Pending | Placed | Released | Refunded)
            | (Placed, Placed | Refunded)
            | (Released, Released)
            | (Refunded, Refunded)
    )
}

fn exchange_name(status: i32) -> &'static str {
    wallet::ExchangeStatus::try_from(status).map_or("?", |s| s.as_str_name())
}

/// My page's entries never vanish. (Their status may go back, as the
/// wallet's do: a refund returns the points of an exchanged entry.)
fn compare_entries(
    what: &str,
    seen: &mut BTreeMap<String, (i32, String)>,
    now: &BTreeMap<String, (i32, String)>,
    regress: &mut impl FnMut(String),
) {
    for id in seen.keys() {
        if !now.contains_key(id) {
            regress(format!("{what} {id} vanished"));
        }
    }
    seen.extend(now.iter().map(|(id, line)| (id.clone(), line.clone())));
}

fn name(status: i32) -> &'static str {
    mission::MissionStatus::try_from(status).map_or("?", |s| s.as_str_name())
}

fn reward_name(status: i32) -> &'static str {
    reward::RewardStatus::try_from(status).map_or("?", |s| s.as_str_name())
}
