//! The my page domain, pure: one player's view of their missions and wallet,
//! merged from the events of three contexts in whatever order they arrive.
//!
//! Each event is cut into fragments of the lines it knows about (always a
//! mission line, sometimes a wallet line), and a fragment is joined into the
//! page field by field with `max`: a missing value is below every value, and
//! statuses are ordered by how far a life has gone. Such a join is
//! commutative, associative and idempotent, so any order of a set of events,
//! with any repeats, yields the same page; nothing ever waits for an event
//! that "should" have come first. No I/O, no async, no framework types.
//!
//! Exchanges (the player's requests to spend points on a product) are lines
//! of their own, joined the same way. What an entry still holds is not
//! joined but worked out from the joined facts ([`MyPage::remaining_points`]):
//! its points less what the exchanges standing now took from it. A derived
//! value may go down and up again as events arrive (a refund gives points
//! back), while the facts it is derived from only grow, so any order of the
//! same events still gives the same page.

use std::cmp::Reverse;

use kernel::{CustomerId, Points};

kernel::uuid_id!(
    /// A mission the player achieved, as the mission context names it.
    MissionId
);
kernel::uuid_id!(
    /// The reward the reward context allocated for a mission.
    RewardId
);
kernel::uuid_id!(
    /// A reward held in the player's wallet, as the wallet context names it.
    EntryId
);
kernel::uuid_id!(
    /// One request of the player to spend points on a product, as the wallet
    /// context names it.
    ExchangeId
);

/// How far a mission has gone. Ordered: a later status wins a merge.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum MissionStatus {
    /// MissionAchieved arrived; no reward event yet.
    Achieved,
    /// A reward exists for it (allocated, or already issued or exchanged).
    Rewarded,
}

/// How far a mission's reward has gone. Ordered: a later status wins a merge.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum RewardStatus {
    /// The reward context allocated it (RewardAllocated).
    Allocated,
    /// It is in the player's wallet (RewardIssued).
    Issued,
    /// The player exchanged it for a gift (RewardExchanged).
    Exchanged,
    /// Its points expired unspent in the wallet (PointsExpired), as the
    /// reward context shows it too. A reward is exchanged or expired, never
    /// both, so their order only has to be fixed.
    Expired,
}

/// How far a wallet entry has gone, as far as published events tell: the
/// wallet's transient "exchange pending" is never published, so the view
/// only knows available, exchanged and expired. Ordered: a later status wins
/// a merge (an entry is exchanged or expired, never both, so their order
/// only has to be fixed).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum EntryStatus {
    /// Issued and neither exchanged nor expired: its points count as available.
    Available,
    /// Exchanged for a gift.
    Exchanged,
    /// Its points expired unspent (PointsExpired).
    Expired,
}

/// How far an exchange has gone, as far as published events tell: the
/// wallet publishes an exchange once gift placed its order, and again if the
/// vendor cancelled it and the points came back (an exchange still pending,
/// or released because no order was placed, is never published). Ordered: a
/// later status wins a merge.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum ExchangeStatus {
    /// The order was placed: the points are spent (ExchangePlaced).
    Placed,
    /// The vendor cancelled the order: the points are back (PointsRefunded).
    Refunded,
}

/// One mission on the page, with its reward. Fields are `None` until an
/// event carrying them has arrived.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MissionLine {
    pub mission_id: MissionId,
    pub mission_code: Option<String>,
    pub status: MissionStatus,
    pub reward_id: Option<RewardId>,
    pub reward_status: Option<RewardStatus>,
    /// What the mission definition promised (MissionAchieved).
    pub promised_points: Option<Points>,
    /// What the reward is actually worth (RewardAllocated, RewardIssued);
    /// it is what the player gets, so it is shown over the promise.
    pub reward_points: Option<Points>,
    /// Milliseconds since the Unix epoch (MissionAchieved).
    pub achieved_at: Option<i64>,
}

impl MissionLine {
    /// The points to show for the mission: the reward's once known, the
    /// definition's promise before that.
    pub fn points(&self) -> Option<Points> {
        self.reward_points.or(self.promised_points)
    }

    fn join(&mut self, other: Self) {
        // Destructured in full so that a new field cannot be forgotten here.
        let Self {
            mission_id: _,
            mission_code,
            status,
            reward_id,
            reward_status,
            promised_points,
            reward_points,
            achieved_at,
        } = other;
        join(&mut self.mission_code, mission_code);
        join(&mut self.status, status);
        join(&mut self.reward_id, reward_id);
        join(&mut self.reward_status, reward_status);
        join(&mut self.promised_points, promised_points);
        join(&mut self.reward_points, reward_points);
        join(&mut self.achieved_at, achieved_at);
    }
}

/// One wallet entry on the page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WalletLine {
    pub entry_id: EntryId,
    pub reward_id: RewardId,
    pub mission_id: MissionId,
    /// Only RewardIssued carries the points, so an entry first seen through
    /// RewardExchanged has none yet.
    pub points: Option<Points>,
    /// The furthest the entry's own events took it: RewardExchanged (it was
    /// used up) or PointsExpired. What the page shows is
    /// [`MyPage::entry_status`], which also weighs the exchanges that paid
    /// from it (one refunded gives points back).
    pub status: EntryStatus,
    pub gift_order_id: Option<String>,
    pub product_sku: Option<String>,
    /// Milliseconds since the Unix epoch (RewardIssued).
    pub issued_at: Option<i64>,
    /// When the entry's points expire unless spent (RewardIssued,
    /// PointsExpired); `None` for one that never expires, or not known yet.
    pub expires_at: Option<i64>,
}

impl WalletLine {
    fn join(&mut self, other: Self) {
        let Self {
            entry_id: _,
            reward_id,
            mission_id,
            points,
            status,
            gift_order_id,
            product_sku,
            issued_at,
            expires_at,
        } = other;
        join(&mut self.reward_id, reward_id);
        join(&mut self.mission_id, mission_id);
        join(&mut self.points, points);
        join(&mut self.status, status);
        join(&mut self.gift_order_id, gift_order_id);
        join(&mut self.product_sku, product_sku);
        join(&mut self.issued_at, issued_at);
        join(&mut self.expires_at, expires_at);
    }
}

/// What one entry paid for an exchange, and what came back of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Payment {
    pub entry_id: EntryId,
    pub reward_id: RewardId,
    /// The points the entry paid (ExchangePlaced's reservation; a refund
    /// tells it too, as what came back and what expired).
    pub points: Option<Points>,
    /// The points a refund put back in the entry, spendable again.
    pub refunded: Option<Points>,
    /// The points a refund found past the entry's expiry: expired at once.
    pub expired: Option<Points>,
}

impl Payment {
    fn join(&mut self, other: Self) {
        let Self { entry_id: _, reward_id, points, refunded, expired } = other;
        join(&mut self.reward_id, reward_id);
        join(&mut self.points, points);
        join(&mut self.refunded, refunded);
        join(&mut self.expired, expired);
    }
}

/// One exchange on the page: what the player bought with how many points,
/// and its fate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExchangeLine {
    pub exchange_id: ExchangeId,
    pub product_sku: Option<String>,
    /// The product's price the exchange paid (ExchangePlaced).
    pub price_points: Option<Points>,
    pub status: ExchangeStatus,
    pub gift_order_id: Option<String>,
    /// The entries that paid, one payment per entry, ordered by entry id.
    pub payments: Vec<Payment>,
    /// Milliseconds since the Unix epoch (ExchangePlaced).
    pub placed_at: Option<i64>,
    /// Milliseconds since the Unix epoch (PointsRefunded).
    pub refunded_at: Option<i64>,
    /// Why the vendor cancelled the order (PointsRefunded).
    pub cancel_reason: Option<String>,
}

impl ExchangeLine {
    /// Whether the exchange holds the points its entries paid: placed and
    /// not refunded.
    pub fn stands(&self) -> bool {
        self.status == ExchangeStatus::Placed
    }

    /// The points the refund made spendable again; 0 before a refund.
    pub fn refunded_points(&self) -> Points {
        sum(self.payments.iter().filter_map(|payment| payment.refunded))
    }

    /// The points the refund found past their entry's expiry; 0 before a refund.
    pub fn expired_points(&self) -> Points {
        sum(self.payments.iter().filter_map(|payment| payment.expired))
    }

    fn join(&mut self, other: Self) {
        let Self {
            exchange_id: _,
            product_sku,
            price_points,
            status,
            gift_order_id,
            payments,
            placed_at,
            refunded_at,
            cancel_reason,
        } = other;
        join(&mut self.product_sku, product_sku);
        join(&mut self.price_points, price_points);
        join(&mut self.status, status);
        join(&mut self.gift_order_id, gift_order_id);
        for payment in payments {
            match self.payments.iter_mut().find(|p| p.entry_id == payment.entry_id) {
                Some(existing) => existing.join(payment),
                None => self.payments.push(payment),
            }
        }
        self.payments.sort_by_key(|payment| payment.entry_id);
        join(&mut self.placed_at, placed_at);
        join(&mut self.refunded_at, refunded_at);
        join(&mut self.cancel_reason, cancel_reason);
    }
}

/// The sum of `points`, saturating.
fn sum(points: impl Iterator<Item = Points>) -> Points {
    let total = points.map(Points::value).fold(0, i64::saturating_add);
    Points::new(total).expect("a saturating sum of points, which are never negative, is never negative")
}

/// Keeps the larger of two values; `None` is below every `Some`. Events of
/// one life never disagree on a value; were they ever to, the larger one
/// would win whatever the order, so replays and replicas still converge.
fn join<T: Ord>(slot: &mut T, value: T) {
    if value > *slot {
        *slot = value;
    }
}

/// An event of a mission's life, as the page needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PageEvent {
    /// The player achieved a mission (mission context).
    MissionAchieved {
        mission_id: MissionId,
        mission_code: Option<String>,
        reward_points: Points,
        achieved_at: Option<i64>,
    },
    /// A reward was allocated for the mission (reward context).
    RewardAllocated { reward_id: RewardId, mission_id: MissionId, mission_code: Option<String>, points: Points },
    /// The reward entered the player's wallet (wallet context).
    RewardIssued {
        entry_id: EntryId,
        reward_id: RewardId,
        mission_id: MissionId,
        points: Points,
        issued_at: Option<i64>,
        expires_at: Option<i64>,
    },
    /// The wallet entry's points expired unspent (wallet context).
    PointsExpired {
        entry_id: EntryId,
        reward_id: RewardId,
        mission_id: MissionId,
        points: Points,
        expires_at: Option<i64>,
    },
    /// The wallet entry was exchanged for a gift (wallet context): used up.
    RewardExchanged {
        entry_id: EntryId,
        reward_id: RewardId,
        mission_id: MissionId,
        gift_order_id: Option<String>,
        product_sku: Option<String>,
    },
    /// Gift placed the order an exchange asked for; its points are spent
    /// (wallet context).
    ExchangePlaced {
        exchange_id: ExchangeId,
        product_sku: Option<String>,
        price_points: Points,
        gift_order_id: Option<String>,
        /// Each paying entry, its reward and the points it paid.
        reservations: Vec<(EntryId, RewardId, Points)>,
        placed_at: Option<i64>,
    },
    /// The vendor cancelled an exchange's order and its points came back
    /// (wallet context).
    PointsRefunded {
        exchange_id: ExchangeId,
        product_sku: Option<String>,
        gift_order_id: Option<String>,
        refunds: Vec<Refund>,
        reason: Option<String>,
        refunded_at: Option<i64>,
    },
}

/// What one entry got back from a refunded exchange.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Refund {
    pub entry_id: EntryId,
    pub reward_id: RewardId,
    /// Back in the entry, spendable again.
    pub refunded: Points,
    /// Came back past the entry's expiry: expired at once.
    pub expired: Points,
}

/// What one event tells about each kind of line.
#[derive(Debug, Clone, Default)]
struct Fragments {
    mission: Option<MissionLine>,
    entry: Option<WalletLine>,
    exchange: Option<ExchangeLine>,
}

impl PageEvent {
    /// What the event tells about the mission it belongs to, about a wallet
    /// entry when it is a wallet event, and about an exchange when it is one
    /// of an exchange's. A reward that was issued or exchanged was allocated,
    /// so every reward event makes the mission rewarded.
    fn fragments(&self) -> Fragments {
        let mission = |mission_id: MissionId| MissionLine {
            mission_id,
            mission_code: None,
            status: MissionStatus::Rewarded,
            reward_id: None,
            reward_status: None,
            promised_points: None,
            reward_points: None,
            achieved_at: None,
        };
        let exchange = |exchange_id: ExchangeId, status: ExchangeStatus| ExchangeLine {
            exchange_id,
            product_sku: None,
            price_points: None,
            status,
            gift_order_id: None,
            payments: Vec::new(),
            placed_at: None,
            refunded_at: None,
            cancel_reason: None,
        };
        match self.clone() {
            Self::MissionAchieved { mission_id, mission_code, reward_points, achieved_at } => Fragments {
                mission: Some(MissionLine {
                    mission_code,
                    status: MissionStatus::Achieved,
                    promised_points: Some(reward_points),
                    achieved_at,
                    ..mission(mission_id)
                }),
                ..Fragments::default()
            },
            Self::RewardAllocated { reward_id, mission_id, mission_code, points } => Fragments {
                mission: Some(MissionLine {
                    mission_code,
                    reward_id: Some(reward_id),
                    reward_status: Some(RewardStatus::Allocated),
                    reward_points: Some(points),
                    ..mission(mission_id)
                }),
                ..Fragments::default()
            },
            Self::RewardIssued { entry_id, reward_id, mission_id, points, issued_at, expires_at } => Fragments {
                mission: Some(MissionLine {
                    reward_id: Some(reward_id),
                    reward_status: Some(RewardStatus::Issued),
                    reward_points: Some(points),
                    ..mission(mission_id)
                }),
                entry: Some(WalletLine {
                    entry_id,
                    reward_id,
                    mission_id,
                    points: Some(points),
                    status: EntryStatus::Available,
                    gift_order_id: None,
                    product_sku: None,
                    issued_at,
                    expires_at,
                }),
                exchange: None,
            },
            // An expired reward was issued first: it tells what RewardIssued
            // does but the date and the points (those that expired now may be
            // what an exchange left of them), and the entry's end; the reward
            // is EXPIRED, as the reward context records it from the same event.
            Self::PointsExpired { entry_id, reward_id, mission_id, points: _, expires_at } => Fragments {
                mission: Some(MissionLine {
                    reward_id: Some(reward_id),
                    reward_status: Some(RewardStatus::Expired),
                    ..mission(mission_id)
                }),
                entry: Some(WalletLine {
                    entry_id,
                    reward_id,
                    mission_id,
                    points: None,
                    status: EntryStatus::Expired,
                    gift_order_id: None,
                    product_sku: None,
                    issued_at: None,
                    expires_at,
                }),
                exchange: None,
            },
            Self::RewardExchanged { entry_id, reward_id, mission_id, gift_order_id, product_sku } => Fragments {
                mission: Some(MissionLine {
                    reward_id: Some(reward_id),
                    reward_status: Some(RewardStatus::Exchanged),
                    ..mission(mission_id)
                }),
                entry: Some(WalletLine {
                    entry_id,
                    reward_id,
                    mission_id,
                    points: None,
                    status: EntryStatus::Exchanged,
                    gift_order_id,
                    product_sku,
                    issued_at: None,
                    expires_at: None,
                }),
                exchange: None,
            },
            Self::ExchangePlaced { exchange_id, product_sku, price_points, gift_order_id, reservations, placed_at } => {
                let payments = reservations
                    .into_iter()
                    .map(|(entry_id, reward_id, points)| Payment {
                        entry_id,
                        reward_id,
                        points: Some(points),
                        refunded: None,
                        expired: None,
                    })
                    .collect();
                Fragments {
                    exchange: Some(ExchangeLine {
                        product_sku,
                        price_points: Some(price_points),
                        gift_order_id,
                        payments,
                        placed_at,
                        ..exchange(exchange_id, ExchangeStatus::Placed)
                    }),
                    ..Fragments::default()
                }
            }
            // A refund tells what each entry had paid: what came back, in
            // the entry or expired.
            Self::PointsRefunded { exchange_id, product_sku, gift_order_id, refunds, reason, refunded_at } => {
                let payments = refunds
                    .into_iter()
                    .map(|refund| Payment {
                        entry_id: refund.entry_id,
                        reward_id: refund.reward_id,
                        points: Some(sum([refund.refunded, refund.expired].into_iter())),
                        refunded: Some(refund.refunded),
                        expired: Some(refund.expired),
                    })
                    .collect();
                Fragments {
                    exchange: Some(ExchangeLine {
                        product_sku,
                        gift_order_id,
                        payments,
                        refunded_at,
                        cancel_reason: reason,
                        ..exchange(exchange_id, ExchangeStatus::Refunded)
                    }),
                    ..Fragments::default()
                }
            }
        }
    }
}

/// Whether merging an event changed the page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Merge {
    /// The page shows something new: it must be saved, at a new version.
    Changed,
    /// The event told nothing new (a repeat, or a stale event).
    Unchanged,
}

/// One player's view of their missions and wallet.
///
/// Invariant: one line per mission id, per entry id and per exchange id,
/// missions newest achieved first, wallet newest issued first, exchanges
/// newest placed first (undated ones last), ties by id, so equal knowledge
/// always gives an equal page.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MyPage {
    missions: Vec<MissionLine>,
    wallet: Vec<WalletLine>,
    exchanges: Vec<ExchangeLine>,
}

impl MyPage {
    /// A page holding `missions`, `wallet` and `exchanges`; lines with the
    /// same id are merged, as if their events had been applied.
    pub fn from_lines(
        missions: impl IntoIterator<Item = MissionLine>,
        wallet: impl IntoIterator<Item = WalletLine>,
        exchanges: impl IntoIterator<Item = ExchangeLine>,
    ) -> Self {
        let mut page = Self::default();
        missions.into_iter().for_each(|line| page.join_mission(line));
        wallet.into_iter().for_each(|line| page.join_entry(line));
        exchanges.into_iter().for_each(|line| page.join_exchange(line));
        page.sort();
        page
    }

    /// Merges `event` into the page.
    pub fn apply(&mut self, event: &PageEvent) -> Merge {
        let before = self.clone();
        let Fragments { mission, entry, exchange } = event.fragments();
        if let Some(mission) = mission {
            self.join_mission(mission);
        }
        if let Some(entry) = entry {
            self.join_entry(entry);
        }
        if let Some(exchange) = exchange {
            self.join_exchange(exchange);
        }
        self.sort();
        if *self == before { Merge::Unchanged } else { Merge::Changed }
    }

    /// The player's missions, newest achieved first.
    pub fn missions(&self) -> &[MissionLine] {
        &self.missions
    }

    /// The player's wallet entries, newest issued first.
    pub fn wallet(&self) -> &[WalletLine] {
        &self.wallet
    }

    /// The player's exchanges, newest placed first.
    pub fn exchanges(&self) -> &[ExchangeLine] {
        &self.exchanges
    }

    /// The points the player can spend: what the entries not expired still
    /// hold. Once every event arrived it is the wallet's balance; an
    /// exchange the wallet has not settled yet is never published, so its
    /// points count here until its order is placed.
    pub fn available_points(&self) -> Points {
        sum(self.wallet.iter().filter_map(|line| self.remaining_points(line)))
    }

    /// What `line`'s entry still holds to spend; `None` while its points are
    /// not known. An expired entry holds nothing (a refund after its expiry
    /// expires at once). Otherwise its points less what the exchanges that
    /// stand took from it; an entry used up (RewardExchanged) with no
    /// exchange known to have paid from it — exchanged before exchanges were
    /// published, or its exchange not arrived yet — holds nothing.
    pub fn remaining_points(&self, line: &WalletLine) -> Option<Points> {
        let points = line.points?;
        if self.is_expired(line) {
            return Some(Points::default());
        }
        let mut payments = self.payments_from(line.entry_id).peekable();
        if payments.peek().is_none() {
            return Some(if line.status == EntryStatus::Exchanged { Points::default() } else { points });
        }
        let spent = sum(payments.filter(|(exchange, _)| exchange.stands()).filter_map(|(_, payment)| payment.points));
        Some(Points::new(points.value().saturating_sub(spent.value())).unwrap_or_default())
    }

    /// How `line`'s entry stands, as the wallet reads it for clients that
    /// know one reward as one exchange: AVAILABLE while it holds points to
    /// spend, else EXCHANGED when exchanges that stand spent some of it, else
    /// EXPIRED when its points expired (by the expiry, or a refund after it).
    pub fn entry_status(&self, line: &WalletLine) -> EntryStatus {
        let Some(remaining) = self.remaining_points(line) else { return line.status };
        let payments: Vec<_> = self.payments_from(line.entry_id).collect();
        let spent = payments
            .iter()
            .any(|(exchange, payment)| exchange.stands() && payment.points.is_some_and(|points| points.value() > 0));
        if remaining.value() > 0 {
            EntryStatus::Available
        } else if spent || (payments.is_empty() && line.status == EntryStatus::Exchanged) {
            EntryStatus::Exchanged
        } else if self.is_expired(line) {
            EntryStatus::Expired
        } else {
            EntryStatus::Available
        }
    }

    /// The gift order and product of `line`'s entry, shown, as the wallet
    /// shows them, only while it reads EXCHANGED: those of the latest
    /// exchange standing that paid from it, or for an entry no known exchange
    /// paid from, what RewardExchanged told.
    pub fn entry_order(&self, line: &WalletLine) -> (Option<String>, Option<String>) {
        if self.entry_status(line) != EntryStatus::Exchanged {
            return (None, None);
        }
        let latest = self
            .payments_from(line.entry_id)
            .map(|(exchange, _)| exchange)
            .filter(|exchange| exchange.stands())
            .max_by_key(|exchange| (exchange.placed_at, exchange.exchange_id));
        match latest {
            Some(exchange) => (exchange.gift_order_id.clone(), exchange.product_sku.clone()),
            None => (line.gift_order_id.clone(), line.product_sku.clone()),
        }
    }

    fn is_expired(&self, line: &WalletLine) -> bool {
        line.status == EntryStatus::Expired
            || self
                .payments_from(line.entry_id)
                .any(|(_, payment)| payment.expired.is_some_and(|expired| expired.value() > 0))
    }

    /// Every payment `entry` made, with the exchange it paid.
    fn payments_from(&self, entry: EntryId) -> impl Iterator<Item = (&ExchangeLine, &Payment)> {
        self.exchanges.iter().flat_map(move |exchange| {
            exchange.payments.iter().filter(move |payment| payment.entry_id == entry).map(move |p| (exchange, p))
        })
    }

    fn join_mission(&mut self, line: MissionLine) {
        match self.missions.iter_mut().find(|m| m.mission_id == line.mission_id) {
            Some(existing) => existing.join(line),
            None => self.missions.push(line),
        }
    }

    fn join_entry(&mut self, line: WalletLine) {
        match self.wallet.iter_mut().find(|e| e.entry_id == line.entry_id) {
            Some(existing) => existing.join(line),
            None => self.wallet.push(line),
        }
    }

    fn join_exchange(&mut self, line: ExchangeLine) {
        match self.exchanges.iter_mut().find(|e| e.exchange_id == line.exchange_id) {
            Some(existing) => existing.join(line),
            // Joined into itself, so that its payments are one per entry and
            // ordered as every later join leaves them.
            None => {
                let mut fresh = line;
                let payments = std::mem::take(&mut fresh.payments);
                fresh.join(ExchangeLine { payments, ..fresh.clone() });
                self.exchanges.push(fresh);
            }
        }
    }

    fn sort(&mut self) {
        // `Reverse` of an Option puts the newest first and `None` last.
        self.missions.sort_by_key(|line| (Reverse(line.achieved_at), line.mission_id));
        self.wallet.sort_by_key(|line| (Reverse(line.issued_at), line.entry_id));
        self.exchanges.sort_by_key(|line| (Reverse(line.placed_at), line.exchange_id));
    }
}

/// A player's page as stored and served: the view and its version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlayerPage {
    pub customer_id: CustomerId,
    /// Grows by one with every change; 0 for a player with no events yet.
    pub version: i64,
    pub page: MyPage,
}

impl PlayerPage {
    /// The page of a player no event has mentioned yet.
    pub fn empty(customer_id: CustomerId) -> Self {
        Self { customer_id, version: 0, page: MyPage::default() }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn points(value: i64) -> Points {
        Points::new(value).unwrap()
    }

    /// The ids of one mission's life.
    struct Life {
        mission: MissionId,
        reward: RewardId,
        entry: EntryId,
    }

    impl Life {
        fn new() -> Self {
            Self { mission: MissionId::generate(), reward: RewardId::generate(), entry: EntryId::generate() }
        }

        fn achieved(&self, at: i64) -> PageEvent {
            PageEvent::MissionAchieved {
                mission_id: self.mission,
                mission_code: Some("FIRST_WIN".into()),
                reward_points: points(300),
                achieved_at: Some(at),
            }
        }

        fn allocated(&self) -> PageEvent {
            PageEvent::RewardAllocated {
                reward_id: self.reward,
                mission_id: self.mission,
                mission_code: Some("FIRST_WIN".into()),
                points: points(300),
            }
        }

        fn issued(&self) -> PageEvent {
            PageEvent::RewardIssued {
                entry_id: self.entry,
                reward_id: self.reward,
                mission_id: self.mission,
                points: points(300),
                issued_at: Some(2_000),
                expires_at: None,
            }
        }

        /// Issued as a reward of an event: it expires at [`EXPIRES_AT`].
        fn issued_expiring(&self) -> PageEvent {
            PageEvent::RewardIssued {
                entry_id: self.entry,
                reward_id: self.reward,
                mission_id: self.mission,
                points: points(300),
                issued_at: Some(2_000),
                expires_at: Some(EXPIRES_AT),
            }
        }

        fn expired(&self) -> PageEvent {
            PageEvent::PointsExpired {
                entry_id: self.entry,
                reward_id: self.reward,
                mission_id: self.mission,
                points: points(300),
                expires_at: Some(EXPIRES_AT),
            }
        }

        fn exchanged(&self) -> PageEvent {
            PageEvent::RewardExchanged {
                entry_id: self.entry,
                reward_id: self.reward,
                mission_id: self.mission,
                gift_order_id: Some("order-1".into()),
                product_sku: Some("COFFEE".into()),
            }
        }
    }

    /// When an expiring reward expires.
    const EXPIRES_AT: i64 = 9_000;

    /// When the vendor's cancellation came back as a refund.
    const REFUNDED_AT: i64 = 7_000;

    /// One exchange and the entries (of some lives) that paid for it.
    struct Spending {
        exchange: ExchangeId,
        paid: Vec<(EntryId, RewardId, i64)>,
    }

    impl Spending {
        fn of(paid: &[(&Life, i64)]) -> Self {
            Self {
                exchange: ExchangeId::generate(),
                paid: paid.iter().map(|(life, points)| (life.entry, life.reward, *points)).collect(),
            }
        }

        fn price(&self) -> i64 {
            self.paid.iter().map(|(_, _, points)| points).sum()
        }

        fn placed(&self, at: i64) -> PageEvent {
            PageEvent::ExchangePlaced {
                exchange_id: self.exchange,
                product_sku: Some("SNOW-SLED".into()),
                price_points: points(self.price()),
                gift_order_id: Some("order-9".into()),
                reservations: self.paid.iter().map(|(entry, reward, paid)| (*entry, *reward, points(*paid))).collect(),
                placed_at: Some(at),
            }
        }

        /// The vendor cancelled: the points back, but those of the `expired`
        /// entries, which expire at once.
        fn refunded(&self, expired: &[EntryId]) -> PageEvent {
            PageEvent::PointsRefunded {
                exchange_id: self.exchange,
                product_sku: Some("SNOW-SLED".into()),
                gift_order_id: Some("order-9".into()),
                refunds: self
                    .paid
                    .iter()
                    .map(|(entry, reward, paid)| {
                        let past_expiry = expired.contains(entry);
                        Refund {
                            entry_id: *entry,
                            reward_id: *reward,
                            refunded: points(if past_expiry { 0 } else { *paid }),
                            expired: points(if past_expiry { *paid } else { 0 }),
                        }
                    })
                    .collect(),
                reason: Some("out of stock at the vendor".into()),
                refunded_at: Some(REFUNDED_AT),
            }
        }

        /// The exchange's line as every event of it tells it.
        fn line(&self, status: ExchangeStatus, expired: &[EntryId]) -> ExchangeLine {
            let refunded = status == ExchangeStatus::Refunded;
            let mut payments: Vec<Payment> = self
                .paid
                .iter()
                .map(|(entry, reward, paid)| {
                    let past_expiry = expired.contains(entry);
                    Payment {
                        entry_id: *entry,
                        reward_id: *reward,
                        points: Some(points(*paid)),
                        refunded: refunded.then(|| points(if past_expiry { 0 } else { *paid })),
                        expired: refunded.then(|| points(if past_expiry { *paid } else { 0 })),
                    }
                })
                .collect();
            payments.sort_by_key(|payment| payment.entry_id);
            ExchangeLine {
                exchange_id: self.exchange,
                product_sku: Some("SNOW-SLED".into()),
                price_points: Some(points(self.price())),
                status,
                gift_order_id: Some("order-9".into()),
                payments,
                placed_at: Some(5_000),
                refunded_at: refunded.then_some(REFUNDED_AT),
                cancel_reason: refunded.then(|| "out of stock at the vendor".into()),
            }
        }
    }

    /// The page's view of `life`'s entry: what it still holds and how it stands.
    fn entry_of(page: &MyPage, life: &Life) -> (Option<Points>, EntryStatus) {
        let line = page.wallet().iter().find(|line| line.entry_id == life.entry).unwrap();
        (page.remaining_points(line), page.entry_status(line))
    }

    fn page_after(events: &[&PageEvent]) -> MyPage {
        let mut page = MyPage::default();
        for event in events {
            page.apply(event);
        }
        page
    }

    /// Every ordering of `items` (Heap's algorithm).
    fn permutations<T: Clone>(items: &[T]) -> Vec<Vec<T>> {
        fn heap<T: Clone>(k: usize, items: &mut Vec<T>, out: &mut Vec<Vec<T>>) {
            if k <= 1 {
                out.push(items.clone());
                return;
            }
            heap(k - 1, items, out);
            for i in 0..k - 1 {
                if k.is_multiple_of(2) {
                    items.swap(i, k - 1);
                } else {
                    items.swap(0, k - 1);
                }
                heap(k - 1, items, out);
            }
        }
        let mut items = items.to_vec();
        let mut out = Vec::new();
        heap(items.len(), &mut items, &mut out);
        out
    }

    #[test]
    fn an_achieved_mission_shows_with_the_points_its_definition_promised() {
        let life = Life::new();
        let mut page = MyPage::default();
        assert_eq!(page.apply(&life.achieved(1_000)), Merge::Changed);
        assert_eq!(
            page.missions(),
            [MissionLine {
                mission_id: life.mission,
                mission_code: Some("FIRST_WIN".into()),
                status: MissionStatus::Achieved,
                reward_id: None,
                reward_status: None,
                promised_points: Some(points(300)),
                reward_points: None,
                achieved_at: Some(1_000),
            }]
        );
        assert_eq!(page.missions()[0].points(), Some(points(300)));
        assert!(page.wallet().is_empty());
        assert_eq!(page.available_points(), points(0));
    }

    #[test]
    fn an_allocated_reward_makes_the_mission_rewarded_with_that_reward() {
        let life = Life::new();
        let mut page = page_after(&[&life.achieved(1_000)]);
        assert_eq!(page.apply(&life.allocated()), Merge::Changed);
        let mission = &page.missions()[0];
        assert_eq!(mission.status, MissionStatus::Rewarded);
        assert_eq!(mission.reward_id, Some(life.reward));
        assert_eq!(mission.reward_status, Some(RewardStatus::Allocated));
        assert_eq!(mission.achieved_at, Some(1_000));
    }

    #[test]
    fn an_issued_reward_arriving_first_shows_the_mission_and_an_available_entry() {
        let life = Life::new();
        let page = page_after(&[&life.issued()]);
        let mission = &page.missions()[0];
        assert_eq!(mission.mission_id, life.mission);
        assert_eq!(mission.status, MissionStatus::Rewarded);
        assert_eq!(mission.reward_status, Some(RewardStatus::Issued));
        assert_eq!(mission.mission_code, None);
        assert_eq!(mission.achieved_at, None);
        assert_eq!(
            page.wallet(),
            [WalletLine {
                entry_id: life.entry,
                reward_id: life.reward,
                mission_id: life.mission,
                points: Some(points(300)),
                status: EntryStatus::Available,
                gift_order_id: None,
                product_sku: None,
                issued_at: Some(2_000),
                expires_at: None,
            }]
        );
        assert_eq!(page.available_points(), points(300));
    }

    #[test]
    fn a_mission_first_seen_through_its_reward_gets_its_code_and_date_when_mission_achieved_arrives() {
        let life = Life::new();
        let mut page = page_after(&[&life.issued()]);
        assert_eq!(page.apply(&life.achieved(1_000)), Merge::Changed);
        let mission = &page.missions()[0];
        assert_eq!(mission.mission_code.as_deref(), Some("FIRST_WIN"));
        assert_eq!(mission.achieved_at, Some(1_000));
        // The mission achieved before its reward was issued does not move it back.
        assert_eq!(mission.status, MissionStatus::Rewarded);
        assert_eq!(mission.reward_status, Some(RewardStatus::Issued));
    }

    #[test]
    fn an_exchanged_reward_is_no_longer_available() {
        let life = Life::new();
        let page = page_after(&[&life.achieved(1_000), &life.allocated(), &life.issued(), &life.exchanged()]);
        assert_eq!(page.missions()[0].reward_status, Some(RewardStatus::Exchanged));
        let entry = &page.wallet()[0];
        assert_eq!(entry.status, EntryStatus::Exchanged);
        assert_eq!(entry.gift_order_id.as_deref(), Some("order-1"));
        assert_eq!(entry.product_sku.as_deref(), Some("COFFEE"));
        assert_eq!(entry.points, Some(points(300)));
        assert_eq!(page.available_points(), points(0));
    }

    #[test]
    fn a_stale_event_never_moves_a_status_back() {
        let life = Life::new();
        let mut page = page_after(&[&life.exchanged()]);
        assert_eq!(page.apply(&life.issued()), Merge::Changed, "the issue still brings the points");
        assert_eq!(page.apply(&life.allocated()), Merge::Changed, "the allocation still brings the code");
        assert_eq!(page.missions()[0].reward_status, Some(RewardStatus::Exchanged));
        assert_eq!(page.wallet()[0].status, EntryStatus::Exchanged);
        assert_eq!(page.available_points(), points(0));
    }

    #[test]
    fn applying_an_event_twice_changes_nothing() {
        let life = Life::new();
        for event in [life.achieved(1_000), life.allocated(), life.issued(), life.exchanged()] {
            let mut page = page_after(&[&event]);
            let before = page.clone();
            assert_eq!(page.apply(&event), Merge::Unchanged, "{event:?}");
            assert_eq!(page, before);
        }
    }

    #[test]
    fn every_order_of_a_missions_life_with_a_redelivery_gives_the_same_page() {
        let life = Life::new();
        let events = [life.achieved(1_000), life.allocated(), life.issued(), life.exchanged(), life.issued()];
        let expected = page_after(&events.iter().collect::<Vec<_>>());
        let orders = permutations(&events);
        assert_eq!(orders.len(), 120);
        for order in orders {
            assert_eq!(page_after(&order.iter().collect::<Vec<_>>()), expected, "{order:?}");
        }
        assert_eq!(
            expected.missions(),
            [MissionLine {
                mission_id: life.mission,
                mission_code: Some("FIRST_WIN".into()),
                status: MissionStatus::Rewarded,
                reward_id: Some(life.reward),
                reward_status: Some(RewardStatus::Exchanged),
                promised_points: Some(points(300)),
                reward_points: Some(points(300)),
                achieved_at: Some(1_000),
            }]
        );
        assert_eq!(
            expected.wallet(),
            [WalletLine {
                entry_id: life.entry,
                reward_id: life.reward,
                mission_id: life.mission,
                points: Some(points(300)),
                status: EntryStatus::Exchanged,
                gift_order_id: Some("order-1".into()),
                product_sku: Some("COFFEE".into()),
                issued_at: Some(2_000),
                expires_at: None,
            }]
        );
    }

    #[test]
    fn an_expiring_entry_shows_when_it_expires_and_once_expired_counts_no_more() {
        let (expiring, kept) = (Life::new(), Life::new());
        let mut page = page_after(&[&expiring.issued_expiring(), &kept.issued()]);
        let line = |page: &MyPage| page.wallet().iter().find(|e| e.entry_id == expiring.entry).cloned().unwrap();
        assert_eq!((line(&page).status, line(&page).expires_at), (EntryStatus::Available, Some(EXPIRES_AT)));
        assert_eq!(page.available_points(), points(600));

        assert_eq!(page.apply(&expiring.expired()), Merge::Changed);

        assert_eq!((line(&page).status, line(&page).expires_at), (EntryStatus::Expired, Some(EXPIRES_AT)));
        let reward = |life: &Life| page.missions().iter().find(|m| m.mission_id == life.mission).unwrap().reward_status;
        assert_eq!((reward(&expiring), reward(&kept)), (Some(RewardStatus::Expired), Some(RewardStatus::Issued)));
        assert_eq!(page.available_points(), points(300));
        assert_eq!(page.apply(&expiring.expired()), Merge::Unchanged);
    }

    #[test]
    fn every_order_of_an_expiring_life_with_a_redelivery_gives_the_same_page() {
        let life = Life::new();
        let events =
            [life.achieved(1_000), life.allocated(), life.issued_expiring(), life.expired(), life.issued_expiring()];
        let expected = page_after(&events.iter().collect::<Vec<_>>());
        for order in permutations(&events) {
            assert_eq!(page_after(&order.iter().collect::<Vec<_>>()), expected, "{order:?}");
        }
        assert_eq!(expected.missions()[0].reward_status, Some(RewardStatus::Expired));
        assert_eq!(
            expected.wallet(),
            [WalletLine {
                entry_id: life.entry,
                reward_id: life.reward,
                mission_id: life.mission,
                points: Some(points(300)),
                status: EntryStatus::Expired,
                gift_order_id: None,
                product_sku: None,
                issued_at: Some(2_000),
                expires_at: Some(EXPIRES_AT),
            }]
        );
        assert_eq!(expected.available_points(), points(0));
    }

    #[test]
    fn missions_are_listed_newest_first_and_undated_ones_last() {
        let (old, new, undated) = (Life::new(), Life::new(), Life::new());
        let page = page_after(&[&undated.allocated(), &old.achieved(1_000), &new.achieved(5_000)]);
        let order: Vec<MissionId> = page.missions().iter().map(|m| m.mission_id).collect();
        assert_eq!(order, [new.mission, old.mission, undated.mission]);
    }

    #[test]
    fn available_points_count_only_entries_not_yet_exchanged() {
        let (kept, spent) = (Life::new(), Life::new());
        let page = page_after(&[&kept.issued(), &spent.issued(), &spent.exchanged()]);
        assert_eq!(page.wallet().len(), 2);
        assert_eq!(page.available_points(), points(300));
    }

    #[test]
    fn a_page_rebuilt_from_its_lines_is_the_same_page() {
        let (one, two) = (Life::new(), Life::new());
        let (first, second) = (Spending::of(&[(&two, 100)]), Spending::of(&[(&two, 50)]));
        let page = page_after(&[
            &one.achieved(1_000),
            &two.issued(),
            &one.exchanged(),
            &first.placed(5_000),
            &second.placed(6_000),
            &first.refunded(&[]),
        ]);
        assert_eq!(page.exchanges().len(), 2);
        let rebuilt = MyPage::from_lines(
            page.missions().iter().rev().cloned(),
            page.wallet().iter().rev().cloned(),
            page.exchanges().iter().rev().cloned(),
        );
        assert_eq!(rebuilt, page);
    }

    #[test]
    fn an_exchange_paid_from_two_entries_leaves_the_change_in_the_last_one() {
        let (one, two) = (Life::new(), Life::new());
        let spending = Spending::of(&[(&one, 300), (&two, 200)]);
        let mut page = page_after(&[&one.issued(), &two.issued()]);
        assert_eq!(page.available_points(), points(600));

        assert_eq!(page.apply(&spending.placed(5_000)), Merge::Changed);

        assert_eq!(page.exchanges(), [spending.line(ExchangeStatus::Placed, &[])]);
        assert_eq!(entry_of(&page, &one), (Some(points(0)), EntryStatus::Exchanged));
        assert_eq!(entry_of(&page, &two), (Some(points(100)), EntryStatus::Available));
        assert_eq!(page.available_points(), points(100));
        // The wallet tells that the first entry was used up: nothing more to learn.
        assert_eq!(page.apply(&one.exchanged()), Merge::Changed);
        assert_eq!(entry_of(&page, &one), (Some(points(0)), EntryStatus::Exchanged));
        assert_eq!(page.available_points(), points(100));
        // The order shows on the entry used up, as the wallet shows it; the
        // exchange's, not RewardExchanged's, for the exchange is the newer news.
        let order = |life: &Life| page.entry_order(page.wallet().iter().find(|l| l.entry_id == life.entry).unwrap());
        assert_eq!(order(&one), (Some("order-9".into()), Some("SNOW-SLED".into())));
        assert_eq!(order(&two), (None, None));
    }

    #[test]
    fn a_refunded_exchange_gives_its_points_back_and_tells_why() {
        let (one, two) = (Life::new(), Life::new());
        let spending = Spending::of(&[(&one, 300), (&two, 200)]);
        let mut page = page_after(&[&one.issued(), &two.issued(), &spending.placed(5_000), &one.exchanged()]);

        assert_eq!(page.apply(&spending.refunded(&[])), Merge::Changed);

        let exchange = &page.exchanges()[0];
        assert_eq!(*exchange, spending.line(ExchangeStatus::Refunded, &[]));
        assert_eq!((exchange.refunded_points(), exchange.expired_points()), (points(500), points(0)));
        assert!(!exchange.stands());
        assert_eq!(entry_of(&page, &one), (Some(points(300)), EntryStatus::Available));
        assert_eq!(entry_of(&page, &two), (Some(points(300)), EntryStatus::Available));
        assert_eq!(page.available_points(), points(600));
        let line = page.wallet().iter().find(|l| l.entry_id == one.entry).unwrap();
        assert_eq!(page.entry_order(line), (None, None), "a refunded entry is no longer exchanged");
    }

    #[test]
    fn points_refunded_past_their_entrys_expiry_expire_at_once() {
        // Partly spent, then the rest expired, then the spent part refunded.
        let partly = Life::new();
        let spending = Spending::of(&[(&partly, 100)]);
        let page = page_after(&[
            &partly.issued_expiring(),
            &spending.placed(5_000),
            &partly.expired(),
            &spending.refunded(&[partly.entry]),
        ]);
        assert_eq!(entry_of(&page, &partly), (Some(points(0)), EntryStatus::Expired));
        assert_eq!(
            (page.exchanges()[0].refunded_points(), page.exchanges()[0].expired_points()),
            (points(0), points(100))
        );
        assert_eq!(page.available_points(), points(0));

        // Used up, so the expiry found nothing to expire: only the refund tells.
        let used_up = Life::new();
        let spending = Spending::of(&[(&used_up, 300)]);
        let page = page_after(&[
            &used_up.issued_expiring(),
            &spending.placed(5_000),
            &used_up.exchanged(),
            &spending.refunded(&[used_up.entry]),
        ]);
        assert_eq!(entry_of(&page, &used_up), (Some(points(0)), EntryStatus::Expired));
        assert_eq!(page.available_points(), points(0));
    }

    #[test]
    fn an_entry_partly_spent_whose_rest_expired_reads_exchanged_as_the_wallet_reads_it() {
        let life = Life::new();
        let spending = Spending::of(&[(&life, 100)]);
        let page = page_after(&[&life.issued_expiring(), &spending.placed(5_000), &life.expired()]);
        assert_eq!(entry_of(&page, &life), (Some(points(0)), EntryStatus::Exchanged));
        assert_eq!(page.available_points(), points(0));
    }

    #[test]
    fn a_refund_that_overtakes_its_placement_shows_the_exchange_refunded_and_the_points_whole() {
        let one = Life::new();
        let spending = Spending::of(&[(&one, 250)]);
        let page = page_after(&[&one.issued(), &spending.refunded(&[])]);
        let exchange = &page.exchanges()[0];
        assert_eq!(
            (exchange.status, exchange.placed_at, exchange.price_points),
            (ExchangeStatus::Refunded, None, None)
        );
        assert_eq!(exchange.payments[0].points, Some(points(250)));
        assert_eq!(entry_of(&page, &one), (Some(points(300)), EntryStatus::Available));
        assert_eq!(page.available_points(), points(300));
    }

    #[test]
    fn an_entry_exchanged_before_exchanges_were_published_holds_nothing() {
        let life = Life::new();
        let page = page_after(&[&life.issued(), &life.exchanged()]);
        assert_eq!(entry_of(&page, &life), (Some(points(0)), EntryStatus::Exchanged));
        assert_eq!(page.entry_order(&page.wallet()[0]), (Some("order-1".into()), Some("COFFEE".into())));
        let only_exchanged = page_after(&[&life.exchanged()]);
        let line = &only_exchanged.wallet()[0];
        assert_eq!(
            (only_exchanged.remaining_points(line), only_exchanged.entry_status(line)),
            (None, EntryStatus::Exchanged)
        );
    }

    #[test]
    fn applying_an_exchange_event_twice_changes_nothing() {
        let (one, two) = (Life::new(), Life::new());
        let spending = Spending::of(&[(&one, 300), (&two, 200)]);
        for event in [spending.placed(5_000), spending.refunded(&[]), spending.refunded(&[one.entry])] {
            let mut page = page_after(&[&one.issued(), &two.issued(), &event]);
            let before = page.clone();
            assert_eq!(page.apply(&event), Merge::Unchanged, "{event:?}");
            assert_eq!(page, before);
        }
    }

    #[test]
    fn every_order_of_an_exchange_kept_with_a_redelivery_gives_the_same_page() {
        let (one, two) = (Life::new(), Life::new());
        let spending = Spending::of(&[(&one, 300), (&two, 200)]);
        let events =
            [one.issued(), two.issued(), spending.placed(5_000), one.exchanged(), spending.placed(5_000), two.issued()];
        let expected = page_after(&events.iter().collect::<Vec<_>>());
        let orders = permutations(&events);
        assert_eq!(orders.len(), 720);
        for order in orders {
            assert_eq!(page_after(&order.iter().collect::<Vec<_>>()), expected, "{order:?}");
        }
        assert_eq!(expected.exchanges(), [spending.line(ExchangeStatus::Placed, &[])]);
        assert_eq!(entry_of(&expected, &one), (Some(points(0)), EntryStatus::Exchanged));
        assert_eq!(entry_of(&expected, &two), (Some(points(100)), EntryStatus::Available));
        assert_eq!(expected.available_points(), points(100));
    }

    #[test]
    fn every_order_of_an_exchange_refunded_with_a_redelivery_gives_the_same_page() {
        let (one, two) = (Life::new(), Life::new());
        let spending = Spending::of(&[(&one, 300), (&two, 200)]);
        let events = [
            one.issued(),
            two.issued(),
            spending.placed(5_000),
            one.exchanged(),
            spending.refunded(&[]),
            spending.placed(5_000),
        ];
        let expected = page_after(&events.iter().collect::<Vec<_>>());
        for order in permutations(&events) {
            assert_eq!(page_after(&order.iter().collect::<Vec<_>>()), expected, "{order:?}");
        }
        assert_eq!(expected.exchanges(), [spending.line(ExchangeStatus::Refunded, &[])]);
        assert_eq!(entry_of(&expected, &one), (Some(points(300)), EntryStatus::Available));
        assert_eq!(entry_of(&expected, &two), (Some(points(300)), EntryStatus::Available));
        assert_eq!(expected.available_points(), points(600));
    }

    #[test]
    fn every_order_of_an_exchange_refunded_past_expiry_with_a_redelivery_gives_the_same_page() {
        let (expiring, kept) = (Life::new(), Life::new());
        let spending = Spending::of(&[(&expiring, 100), (&kept, 50)]);
        let events = [
            expiring.issued_expiring(),
            kept.issued(),
            spending.placed(5_000),
            expiring.expired(),
            spending.refunded(&[expiring.entry]),
            spending.refunded(&[expiring.entry]),
        ];
        let expected = page_after(&events.iter().collect::<Vec<_>>());
        for order in permutations(&events) {
            assert_eq!(page_after(&order.iter().collect::<Vec<_>>()), expected, "{order:?}");
        }
        assert_eq!(expected.exchanges(), [spending.line(ExchangeStatus::Refunded, &[expiring.entry])]);
        assert_eq!(entry_of(&expected, &expiring), (Some(points(0)), EntryStatus::Expired));
        assert_eq!(entry_of(&expected, &kept), (Some(points(300)), EntryStatus::Available));
        assert_eq!(expected.available_points(), points(300));
    }

    #[test]
    fn exchanges_are_listed_newest_placed_first_and_undated_ones_last() {
        let life = Life::new();
        let (old, new, undated) =
            (Spending::of(&[(&life, 10)]), Spending::of(&[(&life, 20)]), Spending::of(&[(&life, 30)]));
        let page = page_after(&[&undated.refunded(&[]), &old.placed(1_000), &new.placed(3_000), &life.issued()]);
        let order: Vec<ExchangeId> = page.exchanges().iter().map(|e| e.exchange_id).collect();
        assert_eq!(order, [new.exchange, old.exchange, undated.exchange]);
        assert_eq!(page.available_points(), points(270));
    }

    #[test]
    fn statuses_are_ordered_by_how_far_a_life_has_gone() {
        assert!(ExchangeStatus::Placed < ExchangeStatus::Refunded);
        assert!(MissionStatus::Achieved < MissionStatus::Rewarded);
        assert!(RewardStatus::Allocated < RewardStatus::Issued);
        assert!(RewardStatus::Issued < RewardStatus::Exchanged);
        assert!(EntryStatus::Available < EntryStatus::Exchanged);
        assert!(EntryStatus::Available < EntryStatus::Expired);
    }
}
