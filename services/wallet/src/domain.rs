//! The wallet domain, pure: the WalletEntry aggregate, the exchange saga's
//! rules and the expiry of unspent rewards. An exchange reserves the entry
//! (EXCHANGE_PENDING), asks the gift context, then completes it (EXCHANGED)
//! or, on a definite refusal, releases it (AVAILABLE again) — an
//! indeterminate answer leaves it pending until a re-drive with the same
//! idempotency key settles it. An entry still AVAILABLE when its expiry
//! passes can no longer be exchanged, and is then EXPIRED, once.
//!
//! Times are milliseconds since the Unix epoch, UTC, always given by the
//! caller: the domain never reads a clock.

use std::time::Duration;

pub use kernel::ProductSku;
use kernel::{CustomerId, Points, rfc3339};

kernel::uuid_id!(
    /// One issued reward held in a player's wallet.
    EntryId
);
kernel::uuid_id!(
    /// The reward the entry holds.
    RewardId
);
kernel::uuid_id!(
    /// The mission the reward was earned for: the correlation key.
    MissionId
);

/// Where an entry is in the exchange saga.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EntryStatus {
    /// Can be exchanged.
    Available,
    /// Reserved for an exchange whose outcome is not known yet.
    ExchangePending { product: ProductSku, since: i64 },
    /// Exchanged for a gift order: final.
    Exchanged { product: ProductSku, gift_order_id: String, at: i64 },
    /// Its points expired unspent (`at`: when the wallet expired it): final.
    Expired { at: i64 },
}

/// The WalletEntry aggregate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WalletEntry {
    pub id: EntryId,
    pub reward_id: RewardId,
    pub mission_id: MissionId,
    pub customer_id: CustomerId,
    pub points: Points,
    pub status: EntryStatus,
    /// When the entry's points expire unless spent; `None` for a reward
    /// that never expires (one of an event that never ends).
    pub expires_at: Option<i64>,
    /// How many exchanges were begun; names the current attempt's key.
    pub exchange_attempt: i64,
    /// Milliseconds since the Unix epoch.
    pub issued_at: i64,
    /// Optimistic-concurrency version, bumped on every change.
    pub version: i64,
}

/// An exchange in flight: what to ask the gift context for, under which key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExchangeTicket {
    pub entry_id: EntryId,
    pub attempt: i64,
    pub product: ProductSku,
    /// Whether the attempt was begun earlier (a player's retry, the
    /// re-driver): a call under its key may already have placed an order.
    pub resumed: bool,
}

impl ExchangeTicket {
    /// The idempotency key of this attempt: gift places at most one order per key.
    pub fn idempotency_key(&self) -> String {
        format!("{}:{}", self.entry_id, self.attempt)
    }
}

/// Why an entry cannot be exchanged now.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExchangeRefused {
    #[error("wallet entry {entry_id} does not belong to customer {customer_id}")]
    NotYours { entry_id: EntryId, customer_id: CustomerId },
    #[error("wallet entry {entry_id} was already exchanged (gift order {gift_order_id})")]
    AlreadyExchanged { entry_id: EntryId, gift_order_id: String },
    #[error("wallet entry {entry_id} is being exchanged for {product}; wait for that exchange to settle")]
    PendingForAnotherProduct { entry_id: EntryId, product: ProductSku },
    #[error("reward {reward_id} (wallet entry {entry_id}) expired at {}", rfc3339(*expires_at))]
    Expired { entry_id: EntryId, reward_id: RewardId, expires_at: i64 },
}

/// How long a reward stays spendable after the end of the event it was
/// earned in (`REWARD_EXPIRY_AFTER_MS`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RewardExpiry {
    after: Duration,
}

impl RewardExpiry {
    /// Thirty days: the default grace after an event ends.
    pub const DEFAULT_AFTER: Duration = Duration::from_secs(30 * 24 * 3600);

    /// Rewards expire `after` their event ended.
    pub fn after(after: Duration) -> Self {
        Self { after }
    }

    /// When a reward of an event ending at `event_ends_at` expires: `after`
    /// that end, or never for an event that never ends (`LAUNCH`).
    pub fn expires_at(self, event_ends_at: Option<i64>) -> Option<i64> {
        let after = i64::try_from(self.after.as_millis()).unwrap_or(i64::MAX);
        event_ends_at.map(|ends_at| ends_at.saturating_add(after))
    }
}

impl Default for RewardExpiry {
    fn default() -> Self {
        Self::after(Self::DEFAULT_AFTER)
    }
}

/// An entry's unspent points expired: other contexts must learn it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PointsExpired {
    /// The points that expired: all the entry held.
    pub points: Points,
    /// When the entry was due to expire.
    pub expires_at: i64,
    /// When it was expired (at or after `expires_at`).
    pub at: i64,
}

/// What the gift context answered to one exchange attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GiftAnswer {
    /// An order was placed (now or by an earlier call with the same key).
    Placed { gift_order_id: String },
    /// Gift itself refused the attempt's key (unknown product, not enough
    /// points, out of stock…): no order exists for it, nor ever will, since
    /// gift answers one key the same way every time.
    Refused,
    /// This call never reached gift's rules (the wallet's circuit open, gift
    /// shedding load or unreachable before the call was sent): no order from
    /// this call, but nothing learnt about an earlier call under the same key.
    NotAsked,
    /// Unknown: the call may or may not have placed an order (timeout,
    /// connection lost mid-call). Only a re-drive with the same key can tell.
    Unknown,
}

/// What settling an attempt did to the entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Settlement {
    /// EXCHANGED now: RewardExchanged must be published.
    Completed,
    /// AVAILABLE again: the reward is untouched.
    Released,
    /// Still pending: re-drive later with the same key.
    StillPending,
    /// The attempt was already settled (another call or the re-driver won): nothing changed.
    Stale,
}

/// The entry was exchanged for a gift order: other contexts must learn it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RewardExchanged {
    pub gift_order_id: String,
    pub product: ProductSku,
    pub at: i64,
}

/// What the wallet tells other contexts, in the domain's words; the
/// adapters give each its published form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WalletEvent {
    /// A reward entered a player's wallet.
    RewardIssued { entry: WalletEntry },
    /// An entry was exchanged for a gift order.
    RewardExchanged { entry: WalletEntry, exchanged: RewardExchanged },
    /// An entry's points expired unspent.
    PointsExpired { entry: WalletEntry, expired: PointsExpired },
}

impl WalletEntry {
    /// A reward allocated for a player enters their wallet (RewardIssued),
    /// spendable until `expires_at` (`None`: for good).
    pub fn issue(
        reward_id: RewardId,
        mission_id: MissionId,
        customer_id: CustomerId,
        points: Points,
        expires_at: Option<i64>,
        now: i64,
    ) -> Self {
        Self {
            // One entry per reward, whoever computes it.
            id: EntryId::from_uuid(kernel::derived_uuid(reward_id.as_uuid(), b"WalletEntry")),
            reward_id,
            mission_id,
            customer_id,
            points,
            status: EntryStatus::Available,
            expires_at,
            exchange_attempt: 0,
            issued_at: now,
            version: 1,
        }
    }

    /// The player asks to exchange this entry for `product`: reserves it.
    ///
    /// Asking again for the same product while the entry is pending resumes
    /// the same attempt (same key), so a player's retry settles the exchange
    /// instead of being turned away, and two concurrent calls place one order
    /// — even past the entry's expiry, since an order may already exist. A
    /// new attempt is refused once the expiry passed, expired by the job or
    /// not yet.
    ///
    /// # Errors
    /// See [`ExchangeRefused`].
    pub fn begin_exchange(
        &mut self,
        customer_id: &CustomerId,
        product: ProductSku,
        now: i64,
    ) -> Result<ExchangeTicket, ExchangeRefused> {
        if &self.customer_id != customer_id {
            return Err(ExchangeRefused::NotYours { entry_id: self.id, customer_id: customer_id.clone() });
        }
        match &self.status {
            EntryStatus::Exchanged { gift_order_id, .. } => {
                Err(ExchangeRefused::AlreadyExchanged { entry_id: self.id, gift_order_id: gift_order_id.clone() })
            }
            EntryStatus::ExchangePending { product: pending, .. } if *pending != product => {
                Err(ExchangeRefused::PendingForAnotherProduct { entry_id: self.id, product: pending.clone() })
            }
            EntryStatus::ExchangePending { .. } => Ok(self.ticket(product, true)),
            EntryStatus::Expired { at } => Err(self.expired(*at)),
            EntryStatus::Available if self.is_due(now) => Err(self.expired(now)),
            EntryStatus::Available => {
                self.exchange_attempt += 1;
                self.status = EntryStatus::ExchangePending { product: product.clone(), since: now };
                self.version += 1;
                Ok(self.ticket(product, false))
            }
        }
    }

    /// Whether the entry's expiry has passed at `now`.
    pub fn is_due(&self, now: i64) -> bool {
        self.expires_at.is_some_and(|expires_at| expires_at <= now)
    }

    /// The refusal of an expired entry; `fallback` stands in for an expiry
    /// the entry does not know (it never lacks one once due).
    fn expired(&self, fallback: i64) -> ExchangeRefused {
        ExchangeRefused::Expired {
            entry_id: self.id,
            reward_id: self.reward_id,
            expires_at: self.expires_at.unwrap_or(fallback),
        }
    }

    /// The expiry job found the entry due at `now`: an AVAILABLE entry whose
    /// expiry passed becomes EXPIRED, and its points with it (PointsExpired).
    /// Anything else is left as it is: an entry not due yet, one exchanged or
    /// expired already, and one reserved for an exchange, which is expired
    /// once the exchange released it (a later run) or never, if it completed.
    pub fn expire(&mut self, now: i64) -> Option<PointsExpired> {
        let expires_at = self.expires_at.filter(|expires_at| *expires_at <= now)?;
        if self.status != EntryStatus::Available {
            return None;
        }
        self.status = EntryStatus::Expired { at: now };
        self.version += 1;
        Some(PointsExpired { points: self.points, expires_at, at: now })
    }

    fn ticket(&self, product: ProductSku, resumed: bool) -> ExchangeTicket {
        ExchangeTicket { entry_id: self.id, attempt: self.exchange_attempt, product, resumed }
    }

    /// Applies the gift context's answer to the attempt `ticket` began.
    pub fn settle(
        &mut self,
        ticket: &ExchangeTicket,
        answer: GiftAnswer,
        now: i64,
    ) -> (Settlement, Option<RewardExchanged>) {
        let latest = self.exchange_attempt == ticket.attempt;
        let pending = latest
            && matches!(&self.status, EntryStatus::ExchangePending { product, .. } if *product == ticket.product);
        // An order placed for the latest attempt is the truth even when a
        // concurrent call released the entry meanwhile (its own call was not
        // sent): the player asked for it, and gift holds the order.
        let placed_late = latest && matches!(self.status, EntryStatus::Available);
        match answer {
            GiftAnswer::Placed { gift_order_id } if pending || placed_late => {
                self.status = EntryStatus::Exchanged {
                    product: ticket.product.clone(),
                    gift_order_id: gift_order_id.clone(),
                    at: now,
                };
                self.version += 1;
                let event = RewardExchanged { gift_order_id, product: ticket.product.clone(), at: now };
                (Settlement::Completed, Some(event))
            }
            GiftAnswer::Placed { .. } => (Settlement::Stale, None),
            _ if !pending => (Settlement::Stale, None),
            GiftAnswer::Refused => self.release(),
            // A resumed attempt's earlier call may have placed an order.
            GiftAnswer::NotAsked if ticket.resumed => (Settlement::StillPending, None),
            GiftAnswer::NotAsked => self.release(),
            GiftAnswer::Unknown => (Settlement::StillPending, None),
        }
    }

    fn release(&mut self) -> (Settlement, Option<RewardExchanged>) {
        self.status = EntryStatus::Available;
        self.version += 1;
        (Settlement::Released, None)
    }

    /// The attempt to re-drive, when the entry is pending.
    pub fn pending_ticket(&self) -> Option<ExchangeTicket> {
        match &self.status {
            EntryStatus::ExchangePending { product, .. } => Some(self.ticket(product.clone(), true)),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn customer() -> CustomerId {
        CustomerId::parse("player-1").unwrap()
    }

    fn sku(value: &str) -> ProductSku {
        ProductSku::parse(value).unwrap()
    }

    fn issued() -> WalletEntry {
        let points = Points::new(300).unwrap();
        WalletEntry::issue(RewardId::generate(), MissionId::generate(), customer(), points, None, 10)
    }

    /// 2027-01-10T00:00:00Z: WINTER-2026 ends.
    const WINTER_ENDS: i64 = 1_799_539_200_000;
    /// 2027-02-09T00:00:00Z: 30 days later, its rewards expire.
    const WINTER_EXPIRES: i64 = WINTER_ENDS + 30 * 24 * 3600 * 1000;

    /// An entry of a WINTER-2026 reward, issued before the event ended.
    fn issued_in_winter() -> WalletEntry {
        let points = Points::new(50).unwrap();
        let expires_at = RewardExpiry::default().expires_at(Some(WINTER_ENDS));
        WalletEntry::issue(RewardId::generate(), MissionId::generate(), customer(), points, expires_at, WINTER_ENDS - 1)
    }

    #[test]
    fn an_issued_reward_is_available_and_its_entry_id_follows_from_the_reward() {
        let reward = RewardId::generate();
        let mission = MissionId::generate();
        let entry = WalletEntry::issue(reward, mission, customer(), Points::new(5).unwrap(), None, 10);
        assert_eq!(entry.status, EntryStatus::Available);
        let again = WalletEntry::issue(reward, mission, customer(), Points::new(5).unwrap(), None, 99);
        assert_eq!(entry.id, again.id);
    }

    #[test]
    fn beginning_an_exchange_reserves_the_entry_under_a_new_key() {
        let mut entry = issued();
        let ticket = entry.begin_exchange(&customer(), sku("AVATAR-FRAME"), 20).unwrap();
        assert_eq!(ticket.attempt, 1);
        assert_eq!(ticket.idempotency_key(), format!("{}:1", entry.id));
        assert_eq!(entry.status, EntryStatus::ExchangePending { product: sku("AVATAR-FRAME"), since: 20 });
    }

    #[test]
    fn another_players_entry_cannot_be_exchanged() {
        let mut entry = issued();
        let before = entry.clone();
        let intruder = CustomerId::parse("player-2").unwrap();
        assert!(matches!(entry.begin_exchange(&intruder, sku("X"), 20), Err(ExchangeRefused::NotYours { .. })));
        assert_eq!(entry, before);
    }

    #[test]
    fn a_placed_order_completes_the_exchange_and_publishes_reward_exchanged() {
        let mut entry = issued();
        let ticket = entry.begin_exchange(&customer(), sku("X"), 20).unwrap();
        let (settlement, event) = entry.settle(&ticket, GiftAnswer::Placed { gift_order_id: "o-1".into() }, 30);
        assert_eq!(settlement, Settlement::Completed);
        assert_eq!(event, Some(RewardExchanged { gift_order_id: "o-1".into(), product: sku("X"), at: 30 }));
        assert_eq!(entry.status, EntryStatus::Exchanged { product: sku("X"), gift_order_id: "o-1".into(), at: 30 });
    }

    #[test]
    fn gift_not_asked_releases_a_fresh_attempt_but_keeps_a_resumed_one_pending() {
        let mut entry = issued();
        let fresh = entry.begin_exchange(&customer(), sku("X"), 20).unwrap();
        assert!(!fresh.resumed);
        assert_eq!(entry.settle(&fresh, GiftAnswer::NotAsked, 30), (Settlement::Released, None));

        // The first call's outcome was unknown: its order may exist, so a
        // retry (or the re-driver) that cannot reach gift learns nothing.
        let first = entry.begin_exchange(&customer(), sku("X"), 40).unwrap();
        assert_eq!(entry.settle(&first, GiftAnswer::Unknown, 41), (Settlement::StillPending, None));
        let retry = entry.begin_exchange(&customer(), sku("X"), 50).unwrap();
        assert!(retry.resumed && retry.attempt == first.attempt);
        assert_eq!(entry.settle(&retry, GiftAnswer::NotAsked, 51), (Settlement::StillPending, None));
        let redrive = entry.pending_ticket().unwrap();
        assert!(redrive.resumed);
        assert_eq!(entry.settle(&redrive, GiftAnswer::NotAsked, 52), (Settlement::StillPending, None));
        assert!(matches!(entry.status, EntryStatus::ExchangePending { .. }));
    }

    #[test]
    fn an_order_placed_for_the_latest_attempt_completes_it_even_after_a_concurrent_release() {
        let mut entry = issued();
        let first = entry.begin_exchange(&customer(), sku("X"), 20).unwrap();
        let concurrent = entry.begin_exchange(&customer(), sku("X"), 21).unwrap();
        assert_eq!(entry.settle(&first, GiftAnswer::NotAsked, 22), (Settlement::Released, None));
        let (settlement, event) = entry.settle(&concurrent, GiftAnswer::Placed { gift_order_id: "o-1".into() }, 23);
        assert_eq!(settlement, Settlement::Completed);
        assert!(event.is_some());
        // An order for a superseded attempt changes nothing.
        let mut other = issued();
        let old = other.begin_exchange(&customer(), sku("X"), 20).unwrap();
        assert_eq!(other.settle(&old, GiftAnswer::Refused, 21), (Settlement::Released, None));
        let newer = other.begin_exchange(&customer(), sku("Y"), 22).unwrap();
        assert_eq!(
            other.settle(&old, GiftAnswer::Placed { gift_order_id: "o-2".into() }, 23),
            (Settlement::Stale, None)
        );
        assert_eq!(other.pending_ticket().map(|t| t.attempt), Some(newer.attempt));
    }

    #[test]
    fn a_refusal_releases_the_entry_as_it_was() {
        let mut entry = issued();
        let ticket = entry.begin_exchange(&customer(), sku("X"), 20).unwrap();
        assert_eq!(entry.settle(&ticket, GiftAnswer::Refused, 30), (Settlement::Released, None));
        assert_eq!(entry.status, EntryStatus::Available);
        // The next attempt gets a new key.
        assert_eq!(entry.begin_exchange(&customer(), sku("Y"), 40).unwrap().attempt, 2);
    }

    #[test]
    fn an_unknown_outcome_leaves_the_entry_pending_for_a_re_drive_with_the_same_key() {
        let mut entry = issued();
        let ticket = entry.begin_exchange(&customer(), sku("X"), 20).unwrap();
        assert_eq!(entry.settle(&ticket, GiftAnswer::Unknown, 30), (Settlement::StillPending, None));
        assert_eq!(entry.pending_ticket(), Some(ExchangeTicket { resumed: true, ..ticket }));
    }

    #[test]
    fn asking_again_for_the_same_product_resumes_the_pending_attempt() {
        let mut entry = issued();
        let first = entry.begin_exchange(&customer(), sku("X"), 20).unwrap();
        let second = entry.begin_exchange(&customer(), sku("X"), 25).unwrap();
        assert_eq!(second, ExchangeTicket { resumed: true, ..first });
    }

    #[test]
    fn a_pending_entry_cannot_be_exchanged_for_another_product() {
        let mut entry = issued();
        entry.begin_exchange(&customer(), sku("X"), 20).unwrap();
        assert!(matches!(
            entry.begin_exchange(&customer(), sku("Y"), 25),
            Err(ExchangeRefused::PendingForAnotherProduct { product, .. }) if product == sku("X")
        ));
    }

    #[test]
    fn an_exchanged_entry_is_final() {
        let mut entry = issued();
        let ticket = entry.begin_exchange(&customer(), sku("X"), 20).unwrap();
        entry.settle(&ticket, GiftAnswer::Placed { gift_order_id: "o-1".into() }, 30);
        let before = entry.clone();
        assert!(matches!(
            entry.begin_exchange(&customer(), sku("X"), 40),
            Err(ExchangeRefused::AlreadyExchanged { .. })
        ));
        // A late answer to the same attempt changes nothing either.
        assert_eq!(entry.settle(&ticket, GiftAnswer::Refused, 50), (Settlement::Stale, None));
        assert_eq!(entry, before);
    }

    #[test]
    fn a_reward_expires_the_configured_time_after_its_event_ends_and_never_without_an_end() {
        assert_eq!(RewardExpiry::default().expires_at(Some(WINTER_ENDS)), Some(WINTER_EXPIRES));
        assert_eq!(
            RewardExpiry::after(Duration::from_secs(60)).expires_at(Some(WINTER_ENDS)),
            Some(WINTER_ENDS + 60_000)
        );
        assert_eq!(RewardExpiry::default().expires_at(None), None, "LAUNCH never ends");
        assert_eq!(RewardExpiry::after(Duration::MAX).expires_at(Some(WINTER_ENDS)), Some(i64::MAX));
    }

    #[test]
    fn an_entry_is_due_from_its_expiry_on() {
        let entry = issued_in_winter();
        assert!(!entry.is_due(WINTER_EXPIRES - 1));
        assert!(entry.is_due(WINTER_EXPIRES));
        assert!(!issued().is_due(i64::MAX), "a reward that never expires is never due");
    }

    #[test]
    fn an_available_entry_past_its_expiry_expires_once_with_all_its_points() {
        let mut entry = issued_in_winter();
        assert_eq!(entry.expire(WINTER_EXPIRES - 1), None, "not due yet");
        assert_eq!(entry.status, EntryStatus::Available);

        let expired = entry.expire(WINTER_EXPIRES + 5).unwrap();

        assert_eq!(
            expired,
            PointsExpired { points: Points::new(50).unwrap(), expires_at: WINTER_EXPIRES, at: WINTER_EXPIRES + 5 }
        );
        assert_eq!(entry.status, EntryStatus::Expired { at: WINTER_EXPIRES + 5 });
        assert_eq!(entry.version, 2);
        let before = entry.clone();
        assert_eq!(entry.expire(WINTER_EXPIRES + 10), None, "expired once");
        assert_eq!(entry, before);
    }

    #[test]
    fn a_reserved_entry_expires_only_once_its_exchange_released_it() {
        let mut entry = issued_in_winter();
        let ticket = entry.begin_exchange(&customer(), sku("X"), WINTER_EXPIRES - 1).unwrap();
        assert_eq!(entry.expire(WINTER_EXPIRES), None, "the exchange is not decided yet");
        assert!(matches!(entry.status, EntryStatus::ExchangePending { .. }));

        assert_eq!(entry.settle(&ticket, GiftAnswer::Refused, WINTER_EXPIRES + 1), (Settlement::Released, None));

        assert!(entry.expire(WINTER_EXPIRES + 2).is_some(), "released, then expired at the next run");
        assert_eq!(entry.status, EntryStatus::Expired { at: WINTER_EXPIRES + 2 });
    }

    #[test]
    fn an_exchange_completed_past_the_expiry_stands_and_is_never_expired() {
        let mut entry = issued_in_winter();
        let ticket = entry.begin_exchange(&customer(), sku("X"), WINTER_EXPIRES - 1).unwrap();
        let (settlement, _) =
            entry.settle(&ticket, GiftAnswer::Placed { gift_order_id: "o-1".into() }, WINTER_EXPIRES + 1);
        assert_eq!(settlement, Settlement::Completed);
        assert_eq!(entry.expire(WINTER_EXPIRES + 2), None);
        assert!(matches!(entry.status, EntryStatus::Exchanged { .. }));
    }

    #[test]
    fn an_entry_past_its_expiry_cannot_be_exchanged_expired_by_the_job_or_not_yet() {
        let mut due = issued_in_winter();
        let refused = due.begin_exchange(&customer(), sku("X"), WINTER_EXPIRES).unwrap_err();
        assert_eq!(
            refused,
            ExchangeRefused::Expired { entry_id: due.id, reward_id: due.reward_id, expires_at: WINTER_EXPIRES }
        );
        assert_eq!(
            refused.to_string(),
            format!("reward {} (wallet entry {}) expired at 2027-02-09T00:00:00Z", due.reward_id, due.id)
        );
        assert_eq!(due.status, EntryStatus::Available, "refusing changes nothing");

        let mut expired = issued_in_winter();
        expired.expire(WINTER_EXPIRES + 60_000).unwrap();
        let refused = expired.begin_exchange(&customer(), sku("X"), WINTER_EXPIRES + 120_000).unwrap_err();
        assert!(matches!(refused, ExchangeRefused::Expired { expires_at: WINTER_EXPIRES, .. }), "{refused:?}");

        // Before the expiry the reward is spent as ever.
        assert!(issued_in_winter().begin_exchange(&customer(), sku("X"), WINTER_EXPIRES - 1).is_ok());
    }

    #[test]
    fn a_pending_exchange_is_resumed_past_the_expiry_since_its_order_may_exist() {
        let mut entry = issued_in_winter();
        let first = entry.begin_exchange(&customer(), sku("X"), WINTER_EXPIRES - 1).unwrap();
        assert_eq!(entry.settle(&first, GiftAnswer::Unknown, WINTER_EXPIRES - 1), (Settlement::StillPending, None));
        let retry = entry.begin_exchange(&customer(), sku("X"), WINTER_EXPIRES + 1).unwrap();
        assert_eq!(retry, ExchangeTicket { resumed: true, ..first });
    }
}
