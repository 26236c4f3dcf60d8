//! The witness of "no status goes backwards": while the chaos runs, it
//! keeps reading a few players' missions, rewards, wallets and pages
//! through the gateway and records any status that moved back, any id that
//! changed, and anything that vanished once seen.

use std::collections::BTreeMap;
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
    /// entry id → (status, gift order id).
    entries: BTreeMap<String, (i32, String)>,
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
        let entries = answer.into_inner().wallet.map(|w| w.entries).unwrap_or_default();
        let now: BTreeMap<String, (i32, String)> =
            entries.into_iter().map(|e| (e.entry_id, (e.status, e.gift_order_id))).collect();
        compare_entries("wallet entry", &mut seen.entries, &now, &mut regress);
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

/// Entries never vanish, and an exchanged entry stays exchanged for the same
/// gift order. (Between AVAILABLE and EXCHANGE_PENDING an entry may go both
/// ways: a refused exchange releases it.)
fn compare_entries(
    what: &str,
    seen: &mut BTreeMap<String, (i32, String)>,
    now: &BTreeMap<String, (i32, String)>,
    regress: &mut impl FnMut(String),
) {
    let exchanged = wallet::WalletEntryStatus::Exchanged as i32;
    for (id, (status, order)) in seen.iter() {
        match now.get(id) {
            None => regress(format!("{what} {id} vanished")),
            Some((now_status, now_order))
                if *status == exchanged && (*now_status != exchanged || now_order != order) =>
            {
                regress(format!(
                    "{what} {id} went from EXCHANGED (gift order {order}) back to {} (gift order {now_order:?})",
                    entry_name(*now_status)
                ));
            }
            Some(_) => {}
        }
    }
    for (id, (status, order)) in now {
        let before = seen.entry(id.clone()).or_insert((*status, order.clone()));
        if before.0 != exchanged {
            *before = (*status, order.clone());
        }
    }
}

fn name(status: i32) -> &'static str {
    mission::MissionStatus::try_from(status).map_or("?", |s| s.as_str_name())
}

fn reward_name(status: i32) -> &'static str {
    reward::RewardStatus::try_from(status).map_or("?", |s| s.as_str_name())
}

fn entry_name(status: i32) -> &'static str {
    wallet::WalletEntryStatus::try_from(status).map_or("?", |s| s.as_str_name())
}
