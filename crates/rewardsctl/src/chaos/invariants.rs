//! The invariants, checked once the system is quiet, from the stores and
//! through the APIs:
//!
//! - every achieved mission has exactly one reward, exactly one wallet entry,
//!   and its reward id recorded (REWARDED);
//! - every exchanged entry has exactly one gift order and exactly one
//!   settlement, and every gift order and settlement belongs to one;
//! - each reward's status follows its entry: EXCHANGED iff exchanged, else ISSUED;
//! - every exchange confirmed to a player is EXCHANGED, and nothing else is;
//! - the APIs answer what the stores hold, and every player's page matches
//!   the sources (missions, reward statuses, entries with their gift orders);
//! - the finale's entries expired once their expiry passed, and no other entry
//!   expired; an achievement the programme refused left nothing stored;
//! - every order the vendor cancelled has exactly one reversal, of its
//!   charge's amount, and no other order has one;
//! - nothing was dead-lettered.
//!
//! A finding is a duplicate (an effect applied twice, or one nobody asked
//! for), a loss (an effect missing), or a mismatch (two views disagreeing).

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use api::game::mission::v1 as mission;
use api::game::mypage::v1 as mypage;
use api::game::reward::v1 as reward;
use api::game::wallet::v1 as wallet;
use async_nats::jetstream;
use futures::StreamExt as _;
use platform::events::{DEAD_LETTER_CONSUMER_HEADER, DEAD_LETTER_REASON_HEADER, DEAD_LETTER_STREAM};
use tonic::Code;

use super::load::Driven;
use super::programme::FINALE;
use crate::clients::Clients;
use crate::stores::{EntryRow, ExchangeRow, SettlementRow, Snapshot};

const REWARDED: i32 = mission::MissionStatus::Rewarded as i32;
const ISSUED: i32 = reward::RewardStatus::Issued as i32;
const REWARD_EXCHANGED: i32 = reward::RewardStatus::Exchanged as i32;
const ENTRY_EXCHANGED: i32 = wallet::WalletEntryStatus::Exchanged as i32;
const EXCHANGE_PLACED: i32 = wallet::ExchangeStatus::Placed as i32;
const EXCHANGE_RELEASED: i32 = wallet::ExchangeStatus::Released as i32;
const EXCHANGE_REFUNDED: i32 = wallet::ExchangeStatus::Refunded as i32;
const ORDER_CANCELLED: i32 = api::game::gift::v1::GiftOrderStatus::Cancelled as i32;

/// What the checks found.
#[derive(Debug, Default)]
pub struct Findings {
    /// Effects applied twice, or applied though nobody asked.
    pub duplicates: Vec<String>,
    /// Effects missing.
    pub losses: Vec<String>,
    /// Two views of the same thing disagreeing.
    pub mismatches: Vec<String>,
}

/// What the APIs answered, through the gateway, once the system was quiet.
#[derive(Debug, Default)]
pub struct Api {
    pub missions: BTreeMap<String, Vec<mission::Mission>>,
    pub wallets: BTreeMap<String, wallet::Wallet>,
    /// `None` when the page does not exist.
    pub pages: BTreeMap<String, Option<mypage::MyPage>>,
    /// `None` when the reward does not exist.
    pub rewards: BTreeMap<String, Option<reward::Reward>>,
    /// Reads that failed for good.
    pub failures: Vec<String>,
}

/// Reads every player's missions, wallet and page, and every reward of the
/// snapshot, through the gateway.
pub async fn read_api(clients: &Clients, players: &[String], snapshot: &Snapshot) -> Api {
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    let mut api = Api::default();
    let mut per_player = futures::stream::iter(players.iter().cloned())
        .map(|player| async move {
            let missions =
                clients
                    .patiently(deadline, || {
                        let (mut c, customer_id) = (clients.missions.clone(), player.clone());
                        async move {
                            c.list_missions(clients.as_operator(mission::ListMissionsRequest { customer_id })).await
                        }
                    })
                    .await
                    .map(|r| r.into_inner().missions);
            let wallet = clients
                .patiently(deadline, || {
                    let (mut c, customer_id) = (clients.wallets.clone(), player.clone());
                    async move { c.get_wallet(clients.as_operator(wallet::GetWalletRequest { customer_id })).await }
                })
                .await
                .map(|r| r.into_inner().wallet.unwrap_or_default());
            let page = clients
                .patiently(deadline, || {
                    let (mut c, customer_id) = (clients.pages.clone(), player.clone());
                    async move { c.get_my_page(clients.as_operator(mypage::GetMyPageRequest { customer_id })).await }
                })
                .await
                .map(|r| r.into_inner().my_page);
            (player, missions, wallet, page)
        })
        .buffer_unordered(8);
    while let Some((player, missions, wallet, page)) = per_player.next().await {
        match missions {
            Ok(missions) => drop(api.missions.insert(player.clone(), missions)),
            Err(s) => api.failures.push(format!("ListMissions({player}): {:?} {}", s.code(), s.message())),
        }
        match wallet {
            Ok(held) => drop(api.wallets.insert(player.clone(), held)),
            Err(s) => api.failures.push(format!("GetWallet({player}): {:?} {}", s.code(), s.message())),
        }
        match page {
            Ok(page) => drop(api.pages.insert(player, page)),
            Err(s) if s.code() == Code::NotFound => drop(api.pages.insert(player, None)),
            Err(s) => api.failures.push(format!("GetMyPage({player}): {:?} {}", s.code(), s.message())),
        }
    }
    let mut rewards = futures::stream::iter(snapshot.rewards.iter().map(|r| r.reward_id.clone()))
        .map(|reward_id| async move {
            let answer = clients
                .patiently(deadline, || {
                    let (mut c, reward_id) = (clients.rewards.clone(), reward_id.clone());
                    async move { c.get_reward(clients.as_operator(reward::GetRewardRequest { reward_id })).await }
                })
                .await;
            (reward_id, answer)
        })
        .buffer_unordered(8);
    while let Some((reward_id, answer)) = rewards.next().await {
        match answer {
            Ok(answer) => drop(api.rewards.insert(reward_id, answer.into_inner().reward)),
            Err(s) if s.code() == Code::NotFound => drop(api.rewards.insert(reward_id, None)),
            Err(s) => api.failures.push(format!("GetReward({reward_id}): {:?} {}", s.code(), s.message())),
        }
    }
    api
}

/// The events some consumer gave up on, described.
///
/// # Errors
/// When the dead-letter stream cannot be read.
pub async fn dead_letters(js: &jetstream::Context) -> anyhow::Result<Vec<String>> {
    let Ok(stream) = js.get_stream(DEAD_LETTER_STREAM.name).await else {
        return Ok(Vec::new());
    };
    let count = stream.get_info().await?.state.messages;
    if count == 0 {
        return Ok(Vec::new());
    }
    let consumer: jetstream::consumer::PullConsumer =
        stream.create_consumer(jetstream::consumer::pull::Config::default()).await?;
    let mut batch = consumer.fetch().max_messages(50).expires(Duration::from_secs(1)).messages().await?;
    let mut letters = vec![format!("{count} events were dead-lettered")];
    while let Some(Ok(message)) = batch.next().await {
        let header = |name: &str| {
            message.headers.as_ref().and_then(|h| h.get(name)).map(|v| v.as_str().to_owned()).unwrap_or_default()
        };
        letters.push(format!(
            "dead letter on {} from {}: {}",
            message.subject,
            header(DEAD_LETTER_CONSUMER_HEADER),
            header(DEAD_LETTER_REASON_HEADER)
        ));
    }
    Ok(letters)
}

/// What the programme's paths after the fact did in the run.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Tally {
    pub finale_achieved: usize,
    pub finale_refused: usize,
    pub entries_expired: usize,
    pub orders_cancelled: usize,
    pub reversals: usize,
}

/// Counts what the programme did, from what was driven and the stores.
pub fn tally(driven: &Driven, s: &Snapshot) -> Tally {
    Tally {
        finale_achieved: driven.missions.keys().filter(|(_, code)| code == FINALE).count(),
        finale_refused: driven.refused.iter().filter(|(_, code, _)| code == FINALE).count(),
        entries_expired: s.entries.iter().filter(|e| e.expired > 0).count(),
        orders_cancelled: s.gift_orders.iter().filter(|o| o.status == ORDER_CANCELLED).count(),
        reversals: s.settlements.iter().filter(|x| x.kind == SettlementRow::REVERSAL).count(),
    }
}

/// Checks the invariants over what was driven, the stores and the APIs.
pub fn check(driven: &Driven, players: &[String], snapshot: &Snapshot, api: &Api) -> Findings {
    let mut f = Findings::default();
    check_missions(driven, snapshot, &mut f);
    check_entries(snapshot, &mut f);
    check_exchanges(driven, snapshot, &mut f);
    check_expiries(driven, snapshot, &mut f);
    check_cancellations(snapshot, &mut f);
    check_api(players, snapshot, api, &mut f);
    check_pages(players, snapshot, api, &mut f);
    f
}

pub(super) fn group<T>(rows: &[T], key: impl Fn(&T) -> &str) -> BTreeMap<&str, Vec<&T>> {
    let mut groups: BTreeMap<&str, Vec<&T>> = BTreeMap::new();
    for row in rows {
        groups.entry(key(row)).or_default().push(row);
    }
    groups
}

/// Missions, their one reward each, the reward id recorded on the mission.
fn check_missions(driven: &Driven, s: &Snapshot, f: &mut Findings) {
    let stored: BTreeMap<&str, &crate::stores::MissionRow> =
        s.missions.iter().map(|m| (m.mission_id.as_str(), m)).collect();
    for ((customer, code), mission_id) in &driven.missions {
        if !stored.contains_key(mission_id.as_str()) {
            f.losses.push(format!("mission {mission_id} ({customer}, {code}) was achieved but is not stored"));
        }
    }
    let driven_ids: BTreeSet<&str> = driven.missions.values().map(String::as_str).collect();
    for (key, copies) in group(&s.missions, |m| m.customer_id.as_str()) {
        let mut codes: BTreeMap<&str, usize> = BTreeMap::new();
        for m in copies {
            *codes.entry(m.mission_code.as_str()).or_default() += 1;
        }
        for (code, n) in codes.into_iter().filter(|(_, n)| *n > 1) {
            f.duplicates.push(format!("{key} achieved {code} {n} times"));
        }
    }
    for m in s.missions.iter().filter(|m| !driven_ids.contains(m.mission_id.as_str())) {
        f.duplicates.push(format!(
            "mission {} ({}, {}) was never achieved by a player",
            m.mission_id, m.customer_id, m.mission_code
        ));
    }
    let rewards = group(&s.rewards, |r| r.mission_id.as_str());
    for m in &s.missions {
        match rewards.get(m.mission_id.as_str()).map(Vec::as_slice) {
            None | Some([]) => f.losses.push(format!("mission {} has no reward", m.mission_id)),
            Some([reward]) => {
                if m.reward_id.as_deref() != Some(reward.reward_id.as_str()) {
                    f.losses.push(format!(
                        "mission {} records reward {:?}, not its reward {}",
                        m.mission_id, m.reward_id, reward.reward_id
                    ));
                }
                if m.status != REWARDED {
                    f.losses.push(format!("mission {} is {}, not REWARDED", m.mission_id, mission_name(m.status)));
                }
                if reward.customer_id != m.customer_id {
                    f.mismatches.push(format!(
                        "reward {} is {}'s, its mission {}'s",
                        reward.reward_id, reward.customer_id, m.customer_id
                    ));
                }
            }
            Some(many) => f.duplicates.push(format!("mission {} has {} rewards", m.mission_id, many.len())),
        }
    }
    for r in s.rewards.iter().filter(|r| !stored.contains_key(r.mission_id.as_str())) {
        f.duplicates.push(format!("reward {} belongs to no achieved mission ({})", r.reward_id, r.mission_id));
    }
}

/// One entry per reward, worth its points and agreeing with it, and each
/// reward's status following where its entry's points are: EXCHANGED when
/// they are all spent, EXPIRED when they all expired unspent, ISSUED while
/// some remain — except that a reward whose entry was refunded keeps
/// EXCHANGED (the reward context never takes an exchange back).
fn check_entries(s: &Snapshot, f: &mut Findings) {
    let entries = group(&s.entries, |e| e.reward_id.as_str());
    let refunded = refunded_entries(s);
    for r in &s.rewards {
        match entries.get(r.reward_id.as_str()).map(Vec::as_slice) {
            None | Some([]) => f.losses.push(format!("reward {} never reached the wallet", r.reward_id)),
            Some([entry]) => {
                if entry.mission_id != r.mission_id || entry.customer_id != r.customer_id || entry.points != r.points {
                    f.mismatches.push(format!(
                        "entry {} is {} points for mission {} of {}, its reward {} {} points for mission {} of {}",
                        entry.entry_id,
                        entry.points,
                        entry.mission_id,
                        entry.customer_id,
                        r.reward_id,
                        r.points,
                        entry.mission_id,
                        r.customer_id
                    ));
                }
                let expected = expected_reward_statuses(entry, refunded.contains(entry.entry_id.as_str()));
                if !expected.contains(&r.status) {
                    f.mismatches.push(format!(
                        "reward {} is {} while its entry {} holds {} remaining, {} reserved, {} spent, {} expired",
                        r.reward_id,
                        reward_name(r.status),
                        entry.entry_id,
                        entry.remaining,
                        entry.reserved,
                        entry.spent,
                        entry.expired
                    ));
                }
            }
            Some(many) => f.duplicates.push(format!("reward {} has {} wallet entries", r.reward_id, many.len())),
        }
    }
    let rewards: BTreeSet<&str> = s.rewards.iter().map(|r| r.reward_id.as_str()).collect();
    for e in s.entries.iter().filter(|e| !rewards.contains(e.reward_id.as_str())) {
        f.duplicates.push(format!("entry {} holds reward {}, which does not exist", e.entry_id, e.reward_id));
    }
    for (mission_id, many) in group(&s.entries, |e| e.mission_id.as_str()).into_iter().filter(|(_, v)| v.len() > 1) {
        f.duplicates.push(format!("mission {mission_id} has {} wallet entries", many.len()));
    }
}

/// The entries some refunded exchange reserved.
fn refunded_entries(s: &Snapshot) -> BTreeSet<&str> {
    let refunded: BTreeSet<&str> =
        s.exchanges.iter().filter(|x| x.status == EXCHANGE_REFUNDED).map(|x| x.exchange_id.as_str()).collect();
    s.reservations.iter().filter(|r| refunded.contains(r.exchange_id.as_str())).map(|r| r.entry_id.as_str()).collect()
}

/// The statuses the reward of `entry` may show once the system is quiet.
fn expected_reward_statuses(entry: &EntryRow, refunded: bool) -> Vec<i32> {
    let mut expected = if entry.remaining > 0 || entry.reserved > 0 {
        vec![ISSUED]
    } else if entry.spent > 0 {
        vec![REWARD_EXCHANGED]
    } else if entry.expired > 0 {
        vec![expired_reward_status()]
    } else {
        vec![ISSUED]
    };
    if refunded {
        expected.push(REWARD_EXCHANGED);
    }
    expected
}

/// Exchanges of one reward (ExchangeReward): each one confirmed to a player
/// is an exchange of that entry which stands or was refunded, with the order
/// the answer named; no entry is exchanged more often than its player asked;
/// no exchange nobody asked for; one charge per gift order.
fn check_exchanges(driven: &Driven, s: &Snapshot, f: &mut Findings) {
    let by_exchange = group(&s.reservations, |r| r.exchange_id.as_str());
    let mut of_entry: BTreeMap<&str, Vec<&ExchangeRow>> = BTreeMap::new();
    for x in s.exchanges.iter().filter(|x| x.idempotency_key.is_none()) {
        for r in by_exchange.get(x.exchange_id.as_str()).into_iter().flatten() {
            of_entry.entry(r.entry_id.as_str()).or_default().push(x);
        }
    }
    for (entry_id, confirmed) in &driven.exchanges {
        let standing: Vec<&&ExchangeRow> = of_entry
            .get(entry_id.as_str())
            .into_iter()
            .flatten()
            .filter(|x| x.status == EXCHANGE_PLACED || x.status == EXCHANGE_REFUNDED)
            .collect();
        match standing.as_slice() {
            [] => f.losses.push(format!(
                "entry {entry_id} ({}) was exchanged for {} but no exchange of it stands",
                confirmed.customer_id, confirmed.product_sku
            )),
            [x, ..] if standing.len() <= confirmed.attempts as usize => {
                if let Some(order) = confirmed.gift_order_id.as_ref().filter(|o| !o.is_empty())
                    && !standing.iter().any(|x| x.gift_order_id.as_ref() == Some(order))
                {
                    f.mismatches.push(format!(
                        "entry {entry_id} was confirmed with gift order {order}, its exchange {} holds {:?}",
                        x.exchange_id, x.gift_order_id
                    ));
                }
            }
            many => f.duplicates.push(format!(
                "entry {entry_id} was exchanged {} times in {} calls",
                many.len(),
                confirmed.attempts
            )),
        }
    }
    for (entry_id, exchanges) in &of_entry {
        if !driven.exchanges.contains_key(*entry_id) {
            for x in exchanges.iter().filter(|x| x.status != EXCHANGE_RELEASED) {
                f.duplicates.push(format!("exchange {} of entry {entry_id}: no player exchanged it", x.exchange_id));
            }
        }
    }
    for x in &s.exchanges {
        if let Some(key) = x.idempotency_key.as_deref()
            && key != super::purchases::KEY
        {
            f.duplicates.push(format!("exchange {} under key {key}: no player asked for it", x.exchange_id));
        }
    }

    let charges: Vec<&SettlementRow> = s.settlements.iter().filter(|x| x.kind == SettlementRow::CHARGE).collect();
    let settlements = group(&charges, |x| x.order_id.as_str());
    for order in &s.gift_orders {
        match settlements.get(order.order_id.as_str()).map(Vec::len) {
            None | Some(0) => f.losses.push(format!("gift order {} has no settlement", order.order_id)),
            Some(1) => {}
            Some(n) => f.duplicates.push(format!("gift order {} has {n} settlements", order.order_id)),
        }
    }
    let orders: BTreeSet<&str> = s.gift_orders.iter().map(|o| o.order_id.as_str()).collect();
    for x in s.settlements.iter().filter(|x| !orders.contains(x.order_id.as_str())) {
        f.duplicates.push(format!("settlement {} is for order {}, which does not exist", x.settlement_id, x.order_id));
    }
}

/// Expiries: nothing remains of the finale's entries (the run waited until
/// they fell due: each point was spent or expired), no other entry expired
/// a point; a refused achievement left nothing stored.
fn check_expiries(driven: &Driven, s: &Snapshot, f: &mut Findings) {
    let codes: BTreeMap<&str, &str> =
        s.missions.iter().map(|m| (m.mission_id.as_str(), m.mission_code.as_str())).collect();
    for e in &s.entries {
        let finale = codes.get(e.mission_id.as_str()) == Some(&FINALE);
        if finale && e.remaining > 0 {
            f.losses.push(format!(
                "entry {} of the finale still holds {} points after its expiry",
                e.entry_id, e.remaining
            ));
        }
        if !finale && e.expired > 0 {
            f.duplicates
                .push(format!("entry {} expired {} points, though its event never ends", e.entry_id, e.expired));
        }
    }
    let stored: BTreeSet<(&str, &str)> =
        s.missions.iter().map(|m| (m.customer_id.as_str(), m.mission_code.as_str())).collect();
    for (customer, code, refusal) in &driven.refused {
        if stored.contains(&(customer.as_str(), code.as_str())) {
            f.duplicates.push(format!("{customer} was refused {code} ({refusal}) but it is stored"));
        }
    }
}

/// Cancellations: one reversal of the charge's amount per cancelled order,
/// none for an order the vendor kept.
fn check_cancellations(s: &Snapshot, f: &mut Findings) {
    let by_order = group(&s.settlements, |x| x.order_id.as_str());
    for order in &s.gift_orders {
        let records = by_order.get(order.order_id.as_str()).cloned().unwrap_or_default();
        let charged: i64 = records.iter().filter(|x| x.kind == SettlementRow::CHARGE).map(|x| x.amount).sum();
        let reversals: Vec<&&SettlementRow> = records.iter().filter(|x| x.kind == SettlementRow::REVERSAL).collect();
        match (order.status == ORDER_CANCELLED, reversals.as_slice()) {
            (true, []) => f.losses.push(format!("cancelled order {} was never reversed", order.order_id)),
            (true, [one]) if one.amount != -charged => {
                f.mismatches.push(format!("order {} was charged {charged} and reversed {}", order.order_id, one.amount))
            }
            (true, [_]) | (false, []) => {}
            (true, many) => {
                f.duplicates.push(format!("cancelled order {} was reversed {} times", order.order_id, many.len()))
            }
            (false, _) => f.duplicates.push(format!("order {} was reversed but never cancelled", order.order_id)),
        }
    }
}

/// The APIs answer what the stores hold.
fn check_api(players: &[String], s: &Snapshot, api: &Api, f: &mut Findings) {
    f.mismatches.extend(api.failures.iter().cloned());
    let missions = group(&s.missions, |m| m.customer_id.as_str());
    let entries = group(&s.entries, |e| e.customer_id.as_str());
    for player in players {
        if let Some(listed) = api.missions.get(player) {
            let stored: BTreeMap<&str, (i32, String)> = missions
                .get(player.as_str())
                .into_iter()
                .flatten()
                .map(|m| (m.mission_id.as_str(), (m.status, m.reward_id.clone().unwrap_or_default())))
                .collect();
            let answered: BTreeMap<&str, (i32, String)> =
                listed.iter().map(|m| (m.mission_id.as_str(), (m.status, m.reward_id.clone()))).collect();
            if stored != answered {
                f.mismatches.push(format!("ListMissions({player}) answers {answered:?}, the store holds {stored:?}"));
            }
        }
        if let Some(listed) = api.wallets.get(player) {
            type Held = (i32, String, i64, i64);
            let stored: BTreeMap<&str, Held> = entries
                .get(player.as_str())
                .into_iter()
                .flatten()
                .map(|e| {
                    // The API names an entry's order only once the entry is
                    // all spent (EXCHANGED), as its contract says.
                    let order = e.gift_order_id.clone().filter(|_| e.status == ENTRY_EXCHANGED).unwrap_or_default();
                    (e.entry_id.as_str(), (e.status, order, e.remaining, e.expired))
                })
                .collect();
            let answered: BTreeMap<&str, Held> = listed
                .entries
                .iter()
                .map(|e| {
                    let held = (e.status, e.gift_order_id.clone(), e.remaining_points, e.expired_points);
                    (e.entry_id.as_str(), held)
                })
                .collect();
            if stored != answered {
                f.mismatches.push(format!("GetWallet({player}) answers {answered:?}, the store holds {stored:?}"));
            }
        }
    }
    for r in &s.rewards {
        match api.rewards.get(&r.reward_id) {
            Some(Some(answered)) if answered.status == r.status && answered.mission_id == r.mission_id => {}
            Some(Some(answered)) => f.mismatches.push(format!(
                "GetReward({}) answers {} for mission {}, the store holds {} for mission {}",
                r.reward_id,
                reward_name(answered.status),
                answered.mission_id,
                reward_name(r.status),
                r.mission_id
            )),
            Some(None) => f.mismatches.push(format!("GetReward({}) answers NOT_FOUND", r.reward_id)),
            None => {}
        }
    }
}

/// Every player's page shows what the sources hold: its missions with their
/// rewards and reward statuses, its entries with their gift orders.
fn check_pages(players: &[String], s: &Snapshot, api: &Api, f: &mut Findings) {
    let missions = group(&s.missions, |m| m.customer_id.as_str());
    let entries = group(&s.entries, |e| e.customer_id.as_str());
    let rewards: BTreeMap<&str, i32> = s.rewards.iter().map(|r| (r.reward_id.as_str(), r.status)).collect();
    let stored_pages: BTreeSet<&str> = s.pages.iter().map(|p| p.customer_id.as_str()).collect();
    for player in players {
        let own_missions = missions.get(player.as_str()).cloned().unwrap_or_default();
        let own_entries = entries.get(player.as_str()).cloned().unwrap_or_default();
        if own_missions.is_empty() {
            continue;
        }
        if !stored_pages.contains(player.as_str()) {
            f.losses.push(format!("{player} has no my page in the store"));
        }
        let page = match api.pages.get(player) {
            Some(Some(page)) => page,
            Some(None) => {
                f.losses.push(format!("GetMyPage({player}) answers NOT_FOUND"));
                continue;
            }
            None => continue,
        };
        let mut lines: BTreeMap<&str, &mypage::MyPageMission> = BTreeMap::new();
        for line in &page.missions {
            if lines.insert(line.mission_id.as_str(), line).is_some() {
                f.duplicates.push(format!("{player}'s page shows mission {} twice", line.mission_id));
            }
        }
        for m in &own_missions {
            let Some(line) = lines.remove(m.mission_id.as_str()) else {
                f.losses.push(format!("{player}'s page lacks mission {}", m.mission_id));
                continue;
            };
            let reward_id = m.reward_id.clone().unwrap_or_default();
            let reward_status = rewards.get(reward_id.as_str()).copied().unwrap_or_default();
            if line.mission_code != m.mission_code
                || line.status != m.status
                || line.reward_id != reward_id
                || line.reward_status != reward_status
            {
                f.mismatches.push(format!(
                    "{player}'s page shows mission {} as ({}, {}, reward {} {}), the sources as ({}, {}, reward {} {})",
                    m.mission_id,
                    line.mission_code,
                    mission_name(line.status),
                    line.reward_id,
                    reward_name(line.reward_status),
                    m.mission_code,
                    mission_name(m.status),
                    reward_id,
                    reward_name(reward_status)
                ));
            }
        }
        for extra in lines.keys() {
            f.duplicates.push(format!("{player}'s page shows mission {extra}, which the player never achieved"));
        }

        let mut shown: BTreeMap<&str, &mypage::MyPageWalletEntry> = BTreeMap::new();
        for line in &page.wallet {
            if shown.insert(line.entry_id.as_str(), line).is_some() {
                f.duplicates.push(format!("{player}'s page shows entry {} twice", line.entry_id));
            }
        }
        let mut available = 0;
        for e in &own_entries {
            available += e.remaining;
            let Some(line) = shown.remove(e.entry_id.as_str()) else {
                f.losses.push(format!("{player}'s page lacks wallet entry {}", e.entry_id));
                continue;
            };
            if line.reward_id != e.reward_id
                || line.mission_id != e.mission_id
                || line.points != e.points
                || line.remaining_points != e.remaining
            {
                f.mismatches.push(format!(
                    "{player}'s page shows entry {} as ({} points, {} remaining), the wallet as ({} points, {} remaining)",
                    e.entry_id, line.points, line.remaining_points, e.points, e.remaining
                ));
            }
        }
        for extra in shown.keys() {
            f.duplicates.push(format!("{player}'s page shows entry {extra}, which the wallet does not hold"));
        }
        if page.available_points != available {
            f.mismatches.push(format!(
                "{player}'s page shows {} points available, the wallet {available}",
                page.available_points
            ));
        }
        check_page_exchanges(player, s, page, f);
    }
}

/// The page shows each exchange that placed an order, with its fate, as
/// the wallet holds it; none that did not.
fn check_page_exchanges(player: &str, s: &Snapshot, page: &mypage::MyPage, f: &mut Findings) {
    let held: BTreeMap<&str, (i32, String, i64)> = s
        .exchanges
        .iter()
        .filter(|x| x.customer_id == player && (x.status == EXCHANGE_PLACED || x.status == EXCHANGE_REFUNDED))
        .map(|x| (x.exchange_id.as_str(), (x.status, x.gift_order_id.clone().unwrap_or_default(), x.price_points)))
        .collect();
    let mut shown: BTreeMap<&str, (i32, String, i64)> = BTreeMap::new();
    for x in &page.exchanges {
        let line = (x.status, x.gift_order_id.clone(), x.price_points);
        if shown.insert(x.exchange_id.as_str(), line).is_some() {
            f.duplicates.push(format!("{player}'s page shows exchange {} twice", x.exchange_id));
        }
    }
    if held != shown {
        f.mismatches.push(format!("{player}'s page shows exchanges {shown:?}, the wallet holds {held:?}"));
    }
}

/// What an expired entry's reward shows: EXPIRED where the contract has
/// that status (the reward service follows the wallet's expiries), else ISSUED.
fn expired_reward_status() -> i32 {
    reward::RewardStatus::from_str_name("REWARD_STATUS_EXPIRED").map_or(ISSUED, |status| status as i32)
}

fn mission_name(status: i32) -> &'static str {
    mission::MissionStatus::try_from(status).map_or("?", |s| s.as_str_name())
}

fn reward_name(status: i32) -> &'static str {
    reward::RewardStatus::try_from(status).map_or("?", |s| s.as_str_name())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chaos::load::Exchanged;
    use crate::stores::{GiftOrderRow, MissionRow, PageRow, ReservationRow, RewardRow, SettlementRow};

    const AVAILABLE: i32 = wallet::WalletEntryStatus::Available as i32;
    const ENTRY_EXPIRED: i32 = wallet::WalletEntryStatus::Expired as i32;

    /// One player, one mission, its reward exchanged: everything in order.
    fn consistent() -> (Driven, Snapshot) {
        let mut driven = Driven::default();
        driven.missions.insert(("p".into(), "FIRST_WIN".into()), "m1".into());
        driven.exchanges.insert(
            "e1".into(),
            Exchanged {
                customer_id: "p".into(),
                mission_id: "m1".into(),
                product_sku: "AVATAR-FRAME".into(),
                gift_order_id: Some("o1".into()),
                attempts: 1,
            },
        );
        let snapshot = Snapshot {
            missions: vec![MissionRow {
                mission_id: "m1".into(),
                customer_id: "p".into(),
                mission_code: "FIRST_WIN".into(),
                status: REWARDED,
                reward_id: Some("r1".into()),
            }],
            rewards: vec![RewardRow {
                reward_id: "r1".into(),
                mission_id: "m1".into(),
                customer_id: "p".into(),
                status: REWARD_EXCHANGED,
                points: 300,
            }],
            entries: vec![EntryRow {
                entry_id: "e1".into(),
                reward_id: "r1".into(),
                mission_id: "m1".into(),
                customer_id: "p".into(),
                points: 300,
                status: ENTRY_EXCHANGED,
                gift_order_id: Some("o1".into()),
                remaining: 0,
                reserved: 0,
                spent: 300,
                expired: 0,
            }],
            exchanges: vec![ExchangeRow {
                exchange_id: "x1".into(),
                customer_id: "p".into(),
                product_sku: "AVATAR-FRAME".into(),
                price_points: 300,
                idempotency_key: None,
                status: EXCHANGE_PLACED,
                gift_order_id: Some("o1".into()),
            }],
            reservations: vec![ReservationRow { exchange_id: "x1".into(), entry_id: "e1".into(), points: 300 }],
            gift_orders: vec![GiftOrderRow {
                order_id: "o1".into(),
                reward_id: "x1".into(),
                customer_id: "p".into(),
                status: 1,
                points: 300,
            }],
            settlements: vec![charge("s1", "o1")],
            pages: vec![PageRow { customer_id: "p".into() }],
        };
        (driven, snapshot)
    }

    fn findings(driven: &Driven, snapshot: &Snapshot) -> Findings {
        check(driven, &[], snapshot, &Api::default())
    }

    #[test]
    fn a_consistent_system_has_no_findings() {
        let (driven, snapshot) = consistent();
        let f = findings(&driven, &snapshot);
        assert!(f.duplicates.is_empty() && f.losses.is_empty() && f.mismatches.is_empty(), "{f:?}");
    }

    #[test]
    fn a_second_settlement_of_one_order_is_a_duplicate() {
        let (driven, mut snapshot) = consistent();
        snapshot.settlements.push(charge("s2", "o1"));
        assert_eq!(findings(&driven, &snapshot).duplicates, ["gift order o1 has 2 settlements"]);
    }

    fn charge(id: &str, order: &str) -> SettlementRow {
        SettlementRow {
            settlement_id: id.into(),
            order_id: order.into(),
            kind: SettlementRow::CHARGE.into(),
            amount: 500,
        }
    }

    fn reversal(id: &str, order: &str, amount: i64) -> SettlementRow {
        SettlementRow { settlement_id: id.into(), order_id: order.into(), kind: SettlementRow::REVERSAL.into(), amount }
    }

    #[test]
    fn an_entry_that_kept_its_change_or_got_its_points_back_is_no_loss() {
        let (driven, mut snapshot) = consistent();
        // Paid 100 of its 300 points and kept the change: AVAILABLE, its
        // reward ISSUED, the order on the wallet's exchange.
        snapshot.entries[0].status = AVAILABLE;
        snapshot.entries[0].gift_order_id = None;
        (snapshot.entries[0].remaining, snapshot.entries[0].spent) = (200, 100);
        snapshot.rewards[0].status = ISSUED;
        let f = findings(&driven, &snapshot);
        assert!(f.duplicates.is_empty() && f.losses.is_empty() && f.mismatches.is_empty(), "{f:?}");
        // The vendor cancelled the order: every point back, the reward as it was.
        (snapshot.entries[0].remaining, snapshot.entries[0].spent) = (300, 0);
        snapshot.exchanges[0].status = EXCHANGE_REFUNDED;
        snapshot.gift_orders[0].status = ORDER_CANCELLED;
        snapshot.settlements.push(reversal("s2", "o1", -500));
        for reward_status in [ISSUED, REWARD_EXCHANGED] {
            snapshot.rewards[0].status = reward_status;
            let f = findings(&driven, &snapshot);
            assert!(f.duplicates.is_empty() && f.losses.is_empty() && f.mismatches.is_empty(), "{f:?}");
        }
    }

    #[test]
    fn a_cancelled_order_is_reversed_once_by_its_charge() {
        let (driven, mut snapshot) = consistent();
        snapshot.gift_orders[0].status = ORDER_CANCELLED;
        assert_eq!(findings(&driven, &snapshot).losses, ["cancelled order o1 was never reversed"]);
        snapshot.settlements.push(reversal("s2", "o1", -500));
        let f = findings(&driven, &snapshot);
        assert!(f.duplicates.is_empty() && f.losses.is_empty() && f.mismatches.is_empty(), "{f:?}");
        snapshot.settlements.push(reversal("s3", "o1", -500));
        assert_eq!(findings(&driven, &snapshot).duplicates, ["cancelled order o1 was reversed 2 times"]);
        snapshot.settlements.truncate(1);
        snapshot.settlements.push(reversal("s2", "o1", -400));
        assert_eq!(findings(&driven, &snapshot).mismatches, ["order o1 was charged 500 and reversed -400"]);
    }

    #[test]
    fn a_reversal_of_a_kept_order_is_a_duplicate() {
        let (driven, mut snapshot) = consistent();
        snapshot.settlements.push(reversal("s2", "o1", -500));
        assert_eq!(findings(&driven, &snapshot).duplicates, ["order o1 was reversed but never cancelled"]);
    }

    #[test]
    fn the_finale_expires_and_nothing_else_does() {
        let (mut driven, mut snapshot) = consistent();
        snapshot.entries[0].status = ENTRY_EXPIRED;
        (snapshot.entries[0].spent, snapshot.entries[0].expired) = (0, 300);
        driven.exchanges.clear();
        snapshot.exchanges.clear();
        snapshot.reservations.clear();
        snapshot.gift_orders.clear();
        snapshot.settlements.clear();
        snapshot.rewards[0].status = expired_reward_status();
        assert_eq!(
            findings(&driven, &snapshot).duplicates,
            ["entry e1 expired 300 points, though its event never ends"]
        );
        snapshot.missions[0].mission_code = FINALE.into();
        driven.missions.clear();
        driven.missions.insert(("p".into(), FINALE.into()), "m1".into());
        let f = findings(&driven, &snapshot);
        assert!(f.duplicates.is_empty() && f.losses.is_empty() && f.mismatches.is_empty(), "{f:?}");
        snapshot.entries[0].status = AVAILABLE;
        (snapshot.entries[0].remaining, snapshot.entries[0].expired) = (300, 0);
        assert_eq!(
            findings(&driven, &snapshot).losses,
            ["entry e1 of the finale still holds 300 points after its expiry"]
        );
    }

    #[test]
    fn a_refused_achievement_that_was_stored_is_a_duplicate() {
        let (mut driven, snapshot) = consistent();
        driven.refused.push(("p".into(), "FIRST_WIN".into(), "event ended at …".into()));
        assert_eq!(
            findings(&driven, &snapshot).duplicates,
            ["p was refused FIRST_WIN (event ended at …) but it is stored"]
        );
    }

    #[test]
    fn a_reward_that_never_reached_the_wallet_is_a_loss() {
        let (mut driven, mut snapshot) = consistent();
        snapshot.entries.clear();
        snapshot.exchanges.clear();
        snapshot.reservations.clear();
        snapshot.gift_orders.clear();
        snapshot.settlements.clear();
        driven.exchanges.clear();
        snapshot.rewards[0].status = ISSUED;
        assert_eq!(findings(&driven, &snapshot).losses, ["reward r1 never reached the wallet"]);
    }

    #[test]
    fn an_exchange_confirmed_to_the_player_but_not_applied_is_a_loss() {
        let (driven, mut snapshot) = consistent();
        snapshot.exchanges[0].status = EXCHANGE_RELEASED;
        snapshot.exchanges[0].gift_order_id = None;
        (snapshot.entries[0].remaining, snapshot.entries[0].spent) = (300, 0);
        snapshot.entries[0].status = AVAILABLE;
        snapshot.rewards[0].status = ISSUED;
        snapshot.gift_orders.clear();
        snapshot.settlements.clear();
        let f = findings(&driven, &snapshot);
        assert_eq!(f.losses, ["entry e1 (p) was exchanged for AVATAR-FRAME but no exchange of it stands"]);
        assert!(f.duplicates.is_empty() && f.mismatches.is_empty(), "{f:?}");
    }

    #[test]
    fn a_reward_status_behind_its_entry_is_a_mismatch() {
        let (driven, mut snapshot) = consistent();
        snapshot.rewards[0].status = ISSUED;
        assert_eq!(
            findings(&driven, &snapshot).mismatches,
            [
                "reward r1 is REWARD_STATUS_ISSUED while its entry e1 holds 0 remaining, 0 reserved, 300 spent, 0 expired"
            ]
        );
    }
}
