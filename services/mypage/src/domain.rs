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
    /// The wallet entry was exchanged for a gift (wallet context).
    RewardExchanged {
        entry_id: EntryId,
        reward_id: RewardId,
        mission_id: MissionId,
        gift_order_id: Option<String>,
        product_sku: Option<String>,
    },
}

impl PageEvent {
    /// What the event tells about the mission it belongs to, and about a
    /// wallet entry when it is a wallet event. A reward that was issued or
    /// exchanged was allocated, so every reward event makes the mission
    /// rewarded.
    fn fragments(&self) -> (MissionLine, Option<WalletLine>) {
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
        match self.clone() {
            Self::MissionAchieved { mission_id, mission_code, reward_points, achieved_at } => (
                MissionLine {
                    mission_code,
                    status: MissionStatus::Achieved,
                    promised_points: Some(reward_points),
                    achieved_at,
                    ..mission(mission_id)
                },
                None,
            ),
            Self::RewardAllocated { reward_id, mission_id, mission_code, points } => (
                MissionLine {
                    mission_code,
                    reward_id: Some(reward_id),
                    reward_status: Some(RewardStatus::Allocated),
                    reward_points: Some(points),
                    ..mission(mission_id)
                },
                None,
            ),
            Self::RewardIssued { entry_id, reward_id, mission_id, points, issued_at, expires_at } => (
                MissionLine {
                    reward_id: Some(reward_id),
                    reward_status: Some(RewardStatus::Issued),
                    reward_points: Some(points),
                    ..mission(mission_id)
                },
                Some(WalletLine {
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
            ),
            // An expired reward was issued first: it tells what RewardIssued
            // does but the date, and the entry's end; the reward is EXPIRED,
            // as the reward context records it from the same event.
            Self::PointsExpired { entry_id, reward_id, mission_id, points, expires_at } => {
                let issued =
                    Self::RewardIssued { entry_id, reward_id, mission_id, points, issued_at: None, expires_at };
                let (mission, entry) = issued.fragments();
                (
                    MissionLine { reward_status: Some(RewardStatus::Expired), ..mission },
                    entry.map(|line| WalletLine { status: EntryStatus::Expired, ..line }),
                )
            }
            Self::RewardExchanged { entry_id, reward_id, mission_id, gift_order_id, product_sku } => (
                MissionLine {
                    reward_id: Some(reward_id),
                    reward_status: Some(RewardStatus::Exchanged),
                    ..mission(mission_id)
                },
                Some(WalletLine {
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
            ),
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
/// Invariant: one line per mission id and per entry id, missions newest
/// achieved first (undated ones last), wallet newest issued first (undated
/// ones last), ties by id, so equal knowledge always gives an equal page.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MyPage {
    missions: Vec<MissionLine>,
    wallet: Vec<WalletLine>,
}

impl MyPage {
    /// A page holding `missions` and `wallet`; lines with the same id are
    /// merged, as if their events had been applied.
    pub fn from_lines(
        missions: impl IntoIterator<Item = MissionLine>,
        wallet: impl IntoIterator<Item = WalletLine>,
    ) -> Self {
        let mut page = Self::default();
        missions.into_iter().for_each(|line| page.join_mission(line));
        wallet.into_iter().for_each(|line| page.join_entry(line));
        page.sort();
        page
    }

    /// Merges `event` into the page.
    pub fn apply(&mut self, event: &PageEvent) -> Merge {
        let before = self.clone();
        let (mission, entry) = event.fragments();
        self.join_mission(mission);
        if let Some(entry) = entry {
            self.join_entry(entry);
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

    /// The points of the entries the player can still exchange.
    pub fn available_points(&self) -> Points {
        let total = self
            .wallet
            .iter()
            .filter(|line| line.status == EntryStatus::Available)
            .filter_map(|line| line.points)
            .map(Points::value)
            .fold(0, i64::saturating_add);
        Points::new(total).expect("a saturating sum of points, which are never negative, is never negative")
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

    fn sort(&mut self) {
        // `Reverse` of an Option puts the newest first and `None` last.
        self.missions.sort_by_key(|line| (Reverse(line.achieved_at), line.mission_id));
        self.wallet.sort_by_key(|line| (Reverse(line.issued_at), line.entry_id));
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
        let page = page_after(&[&one.achieved(1_000), &two.issued(), &one.exchanged()]);
        let rebuilt = MyPage::from_lines(page.missions().iter().rev().cloned(), page.wallet().iter().rev().cloned());
        assert_eq!(rebuilt, page);
    }

    #[test]
    fn statuses_are_ordered_by_how_far_a_life_has_gone() {
        assert!(MissionStatus::Achieved < MissionStatus::Rewarded);
        assert!(RewardStatus::Allocated < RewardStatus::Issued);
        assert!(RewardStatus::Issued < RewardStatus::Exchanged);
        assert!(EntryStatus::Available < EntryStatus::Exchanged);
        assert!(EntryStatus::Available < EntryStatus::Expired);
    }
}
