//! Points that add up: every point a player earned is in exactly one place —
//! available, reserved, spent or expired (refunded points are available
//! again, or expired) — checked entry by entry, exchange by exchange and
//! player by player, from the wallet's store, against the reward and gift
//! stores that hold the other side of each point, and through GetWallet.

use std::collections::{BTreeMap, BTreeSet};

use api::game::gift::v1 as gift;
use api::game::wallet::v1 as wallet;

use super::invariants::{Findings, group};
use super::purchases::Purchases;
use crate::stores::{EntryRow, ExchangeRow, Snapshot};

const PENDING: i32 = wallet::ExchangeStatus::Pending as i32;
const PLACED: i32 = wallet::ExchangeStatus::Placed as i32;
const RELEASED: i32 = wallet::ExchangeStatus::Released as i32;
const REFUNDED: i32 = wallet::ExchangeStatus::Refunded as i32;
const ORDER_PLACED: i32 = gift::GiftOrderStatus::Placed as i32;
const ORDER_CANCELLED: i32 = gift::GiftOrderStatus::Cancelled as i32;

/// Where the points of every player are, in total, once the system is quiet.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Ledger {
    pub players: usize,
    /// Every point issued into a wallet.
    pub earned: i64,
    pub available: i64,
    pub reserved: i64,
    pub spent: i64,
    pub expired: i64,
    /// Points that came back from cancelled orders (already in available or expired).
    pub refunded: i64,
    /// Exchanges by how they ended.
    pub placed: usize,
    pub refunds: usize,
    pub released: usize,
}

impl Ledger {
    /// Whether the totals add up: earned = available + reserved + spent + expired.
    pub fn conserved(&self) -> bool {
        self.earned == self.available + self.reserved + self.spent + self.expired
    }

    /// One line for the report.
    pub fn describe(&self) -> String {
        format!(
            "earned {} = available {} + reserved {} + spent {} + expired {} ({}; {} refunded from {} cancelled orders, \
             {} orders standing, {} exchanges released) over {} players",
            self.earned,
            self.available,
            self.reserved,
            self.spent,
            self.expired,
            if self.conserved() { "conserved" } else { "NOT conserved" },
            self.refunded,
            self.refunds,
            self.placed,
            self.released,
            self.players
        )
    }
}

/// Checks that the points add up, and what the players were told about
/// their purchases; returns the totals.
pub fn check(
    s: &Snapshot,
    wallets: &BTreeMap<String, wallet::Wallet>,
    purchases: &Purchases,
    f: &mut Findings,
) -> Ledger {
    let mut ledger = Ledger::default();
    for e in &s.entries {
        check_entry(e, f);
    }
    let held = held_by_entry(s, f);
    for e in &s.entries {
        let (reserved, spent) = held.get(e.entry_id.as_str()).copied().unwrap_or_default();
        if (e.reserved, e.spent) != (reserved, spent) {
            f.mismatches.push(format!(
                "entry {} holds {} reserved and {} spent, its exchanges' reservations {reserved} and {spent}",
                e.entry_id, e.reserved, e.spent
            ));
        }
    }
    check_orders(s, f);
    let earned_by_reward = sum_by(s.rewards.iter().map(|r| (r.customer_id.as_str(), r.points)));
    let standing_orders =
        sum_by(s.gift_orders.iter().filter(|o| o.status == ORDER_PLACED).map(|o| (o.customer_id.as_str(), o.points)));
    let entries = group(&s.entries, |e| e.customer_id.as_str());
    let exchanges = group(&s.exchanges, |x| x.customer_id.as_str());
    let players: BTreeSet<&str> = entries.keys().chain(exchanges.keys()).copied().collect();
    for player in players {
        let own = entries.get(player).cloned().unwrap_or_default();
        let own_exchanges = exchanges.get(player).cloned().unwrap_or_default();
        let totals = Totals::of(&own, &own_exchanges);
        if totals.earned != totals.available + totals.reserved + totals.spent + totals.expired {
            f.losses.push(format!("{player}'s points do not add up: {totals:?}"));
        }
        let rewarded = earned_by_reward.get(player).copied().unwrap_or_default();
        if totals.earned != rewarded {
            f.mismatches.push(format!(
                "{player} holds {} points in the wallet, the rewards are worth {rewarded}",
                totals.earned
            ));
        }
        let ordered = standing_orders.get(player).copied().unwrap_or_default();
        if totals.spent != ordered {
            f.mismatches.push(format!("{player} spent {} points, gift holds orders worth {ordered}", totals.spent));
        }
        if let Some(answered) = wallets.get(player) {
            let told = (
                answered.earned,
                answered.balance,
                answered.reserved,
                answered.spent,
                answered.expired,
                answered.refunded,
            );
            let held =
                (totals.earned, totals.available, totals.reserved, totals.spent, totals.expired, totals.refunded);
            if told != held {
                f.mismatches.push(format!(
                    "GetWallet({player}) answers (earned, balance, reserved, spent, expired, refunded) {told:?}, the store holds {held:?}"
                ));
            }
        }
        ledger.players += 1;
        ledger.earned += totals.earned;
        ledger.available += totals.available;
        ledger.reserved += totals.reserved;
        ledger.spent += totals.spent;
        ledger.expired += totals.expired;
        ledger.refunded += totals.refunded;
    }
    ledger.placed = s.exchanges.iter().filter(|x| x.status == PLACED).count();
    ledger.refunds = s.exchanges.iter().filter(|x| x.status == REFUNDED).count();
    ledger.released = s.exchanges.iter().filter(|x| x.status == RELEASED).count();
    check_purchases(s, purchases, f);
    ledger
}

/// Every point of an entry in exactly one of its four places.
fn check_entry(e: &EntryRow, f: &mut Findings) {
    let places = [e.remaining, e.reserved, e.spent, e.expired];
    let held: i64 = places.iter().sum();
    if places.iter().any(|p| *p < 0) || held < e.points {
        f.losses.push(format!(
            "entry {} of {} points holds {} remaining + {} reserved + {} spent + {} expired",
            e.entry_id, e.points, e.remaining, e.reserved, e.spent, e.expired
        ));
    } else if held > e.points {
        f.duplicates.push(format!(
            "entry {} of {} points holds {held}: {} remaining + {} reserved + {} spent + {} expired",
            e.entry_id, e.points, e.remaining, e.reserved, e.spent, e.expired
        ));
    }
}

/// (reserved, spent) each entry's exchanges hold of it; checks each
/// exchange is paid in full, by entries of its own player.
fn held_by_entry<'a>(s: &'a Snapshot, f: &mut Findings) -> BTreeMap<&'a str, (i64, i64)> {
    let entries: BTreeMap<&str, &EntryRow> = s.entries.iter().map(|e| (e.entry_id.as_str(), e)).collect();
    let reservations = group(&s.reservations, |r| r.exchange_id.as_str());
    let mut held: BTreeMap<&str, (i64, i64)> = BTreeMap::new();
    for x in &s.exchanges {
        let own = reservations.get(x.exchange_id.as_str()).cloned().unwrap_or_default();
        let paid: i64 = own.iter().map(|r| r.points).sum();
        if paid != x.price_points {
            f.mismatches.push(format!("exchange {} costs {} but reserved {paid}", x.exchange_id, x.price_points));
        }
        for r in own {
            match entries.get(r.entry_id.as_str()) {
                Some(e) if e.customer_id == x.customer_id => {}
                Some(e) => f.mismatches.push(format!(
                    "exchange {} of {} is paid by entry {} of {}",
                    x.exchange_id, x.customer_id, e.entry_id, e.customer_id
                )),
                None => f
                    .losses
                    .push(format!("exchange {} is paid by entry {}, which does not exist", x.exchange_id, r.entry_id)),
            }
            let place = held.entry(r.entry_id.as_str()).or_default();
            match x.status {
                PENDING => place.0 += r.points,
                PLACED => place.1 += r.points,
                _ => {}
            }
        }
        if x.status == PENDING {
            f.mismatches.push(format!("exchange {} is still PENDING after quiescence", x.exchange_id));
        }
    }
    held
}

/// Each exchange's order as gift holds it: PLACED stands, REFUNDED was
/// cancelled, RELEASED has none; no order belongs to two exchanges or none.
fn check_orders(s: &Snapshot, f: &mut Findings) {
    let orders: BTreeMap<&str, _> = s.gift_orders.iter().map(|o| (o.order_id.as_str(), o)).collect();
    let mut claimed: BTreeMap<&str, usize> = BTreeMap::new();
    for x in &s.exchanges {
        let order = x.gift_order_id.as_deref();
        if let Some(id) = order {
            *claimed.entry(id).or_default() += 1;
        }
        let found = order.and_then(|id| orders.get(id));
        match (x.status, found) {
            (PLACED, Some(o)) if o.status == ORDER_PLACED && o.points == x.price_points => {}
            (REFUNDED, Some(o)) if o.status == ORDER_CANCELLED => {}
            (RELEASED | PENDING, None) => {}
            (status, Some(o)) => f.mismatches.push(format!(
                "exchange {} is {} at {} points, its order {} is {} at {} points",
                x.exchange_id,
                exchange_name(status),
                x.price_points,
                o.order_id,
                order_name(o.status),
                o.points
            )),
            (status, None) => f.losses.push(format!(
                "exchange {} is {} but gift holds no order {:?}",
                x.exchange_id,
                exchange_name(status),
                x.gift_order_id
            )),
        }
    }
    for o in &s.gift_orders {
        match claimed.get(o.order_id.as_str()) {
            None => f.duplicates.push(format!("gift order {} ({}) belongs to no exchange", o.order_id, o.customer_id)),
            Some(1) => {}
            Some(n) => f.duplicates.push(format!("gift order {} belongs to {n} exchanges", o.order_id)),
        }
    }
}

/// What the players were told about their purchases is what the wallet
/// holds, and nobody purchased twice.
fn check_purchases(s: &Snapshot, purchases: &Purchases, f: &mut Findings) {
    let keyed = group(&s.exchanges, |x| x.customer_id.as_str());
    for (player, told) in &purchases.confirmed {
        let own: Vec<&&ExchangeRow> = keyed
            .get(player.as_str())
            .into_iter()
            .flatten()
            .filter(|x| x.idempotency_key.as_deref() == Some(super::purchases::KEY))
            .collect();
        match own.as_slice() {
            [] => f.losses.push(format!("{player}'s purchase {} is not in the wallet", told.exchange_id)),
            [x] if x.exchange_id != told.exchange_id => f.mismatches.push(format!(
                "{player} was told of purchase {}, the wallet holds {}",
                told.exchange_id, x.exchange_id
            )),
            [x] if told.status == RELEASED && x.status != RELEASED => f.mismatches.push(format!(
                "{player}'s purchase {} was answered RELEASED, the wallet holds it {}",
                x.exchange_id,
                exchange_name(x.status)
            )),
            [x] if told.status != RELEASED && x.status == RELEASED => f.losses.push(format!(
                "{player}'s purchase {} was answered {}, the wallet released it",
                x.exchange_id,
                exchange_name(told.status)
            )),
            [_] => {}
            many => f.duplicates.push(format!("{player} purchased {} times under one key", many.len())),
        }
    }
}

/// A player's points by place, from the wallet's store.
#[derive(Debug, Default, Clone, Copy)]
struct Totals {
    earned: i64,
    available: i64,
    reserved: i64,
    spent: i64,
    expired: i64,
    refunded: i64,
}

impl Totals {
    fn of(entries: &[&EntryRow], exchanges: &[&ExchangeRow]) -> Self {
        let sum = |place: fn(&EntryRow) -> i64| entries.iter().map(|e| place(e)).sum::<i64>();
        Self {
            earned: sum(|e| e.points),
            available: sum(|e| e.remaining),
            reserved: sum(|e| e.reserved),
            spent: sum(|e| e.spent),
            expired: sum(|e| e.expired),
            refunded: exchanges.iter().filter(|x| x.status == REFUNDED).map(|x| x.price_points).sum(),
        }
    }
}

fn sum_by<'a>(rows: impl Iterator<Item = (&'a str, i64)>) -> BTreeMap<&'a str, i64> {
    let mut sums = BTreeMap::new();
    for (key, points) in rows {
        *sums.entry(key).or_default() += points;
    }
    sums
}

fn exchange_name(status: i32) -> &'static str {
    wallet::ExchangeStatus::try_from(status).map_or("?", |s| s.as_str_name())
}

fn order_name(status: i32) -> &'static str {
    gift::GiftOrderStatus::try_from(status).map_or("?", |s| s.as_str_name())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stores::{GiftOrderRow, ReservationRow, RewardRow};

    fn entry(id: &str, points: i64, [remaining, reserved, spent, expired]: [i64; 4]) -> EntryRow {
        EntryRow {
            entry_id: id.into(),
            reward_id: format!("r-{id}"),
            mission_id: format!("m-{id}"),
            customer_id: "p".into(),
            points,
            status: 1,
            gift_order_id: None,
            remaining,
            reserved,
            spent,
            expired,
        }
    }

    /// One player: two rewards (2,000 and 800) paying a 2,500-point
    /// purchase that stands, and a 150-point one that expired.
    fn purchase() -> Snapshot {
        let reward = |id: &str, points| RewardRow {
            reward_id: format!("r-{id}"),
            mission_id: format!("m-{id}"),
            customer_id: "p".into(),
            status: 2,
            points,
        };
        Snapshot {
            rewards: vec![reward("a", 2000), reward("b", 800), reward("c", 150)],
            entries: vec![
                entry("a", 2000, [0, 0, 2000, 0]),
                entry("b", 800, [300, 0, 500, 0]),
                entry("c", 150, [0, 0, 0, 150]),
            ],
            exchanges: vec![ExchangeRow {
                exchange_id: "x".into(),
                customer_id: "p".into(),
                product_sku: "CHAOS-CROWN".into(),
                price_points: 2500,
                idempotency_key: Some(super::super::purchases::KEY.into()),
                status: PLACED,
                gift_order_id: Some("o".into()),
            }],
            reservations: vec![
                ReservationRow { exchange_id: "x".into(), entry_id: "a".into(), points: 2000 },
                ReservationRow { exchange_id: "x".into(), entry_id: "b".into(), points: 500 },
            ],
            gift_orders: vec![GiftOrderRow {
                order_id: "o".into(),
                reward_id: "x".into(),
                customer_id: "p".into(),
                status: ORDER_PLACED,
                points: 2500,
            }],
            ..Snapshot::default()
        }
    }

    fn run(s: &Snapshot) -> (Ledger, Findings) {
        let mut f = Findings::default();
        let ledger = check(s, &BTreeMap::new(), &Purchases::default(), &mut f);
        (ledger, f)
    }

    #[test]
    fn points_paid_across_entries_and_expired_add_up() {
        let (ledger, f) = run(&purchase());
        assert!(f.duplicates.is_empty() && f.losses.is_empty() && f.mismatches.is_empty(), "{f:?}");
        assert_eq!((ledger.earned, ledger.available, ledger.spent, ledger.expired), (2950, 300, 2500, 150));
        assert!(ledger.conserved());
    }

    #[test]
    fn a_refund_given_twice_is_a_duplicate_and_a_cancelled_order_still_spent_a_mismatch() {
        let mut s = purchase();
        s.exchanges[0].status = REFUNDED;
        s.gift_orders[0].status = ORDER_CANCELLED;
        s.entries[0] = entry("a", 2000, [2000, 0, 0, 0]);
        s.entries[1] = entry("b", 800, [800 + 500, 0, 0, 0]);
        let (_, f) = run(&s);
        assert_eq!(
            f.duplicates,
            ["entry b of 800 points holds 1300: 1300 remaining + 0 reserved + 0 spent + 0 expired"]
        );

        let mut s = purchase();
        s.gift_orders[0].status = ORDER_CANCELLED;
        let (_, f) = run(&s);
        assert_eq!(
            f.mismatches,
            [
                "exchange x is EXCHANGE_STATUS_PLACED at 2500 points, its order o is GIFT_ORDER_STATUS_CANCELLED at 2500 points",
                "p spent 2500 points, gift holds orders worth 0",
            ]
        );
    }

    #[test]
    fn an_order_without_an_exchange_is_a_duplicate() {
        let mut s = purchase();
        s.gift_orders.push(GiftOrderRow {
            order_id: "o2".into(),
            reward_id: "r-b".into(),
            customer_id: "p".into(),
            status: ORDER_PLACED,
            points: 300,
        });
        let (_, f) = run(&s);
        assert!(f.duplicates.contains(&"gift order o2 (p) belongs to no exchange".to_owned()), "{f:?}");
    }
}
