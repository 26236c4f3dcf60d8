//! The wallet domain, pure: entries holding points, exchanges paying for
//! products with them, and the rules of both.
//!
//! An entry is one issued reward. Its points are always in exactly one of
//! four places: `remaining` (spendable), `reserved` (held by an exchange
//! whose order is not confirmed yet), `spent` (paid for an order that
//! stands) or `expired`. An exchange reserves a product's price across the
//! player's entries — the ones expiring first, then the oldest — all or
//! nothing, asks the gift context, then is PLACED (the reservations are
//! spent) or, on a definite refusal, RELEASED (the points go back to
//! `remaining`); an unknown answer leaves it PENDING until a call under the
//! same key settles it. A placed order the vendor cancels later is REFUNDED
//! once: the points go back to `remaining`, or to `expired` for an entry past
//! its expiry. Unspent points expire once their entry's expiry passed;
//! reserved points never do.
//!
//! Times are milliseconds since the Unix epoch, UTC, always given by the
//! caller: the domain never reads a clock.

use std::time::Duration;

use kernel::{CustomerId, Points, rfc3339};
pub use kernel::{IdempotencyKey, ProductSku};

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
kernel::uuid_id!(
    /// One player request to spend points on a product.
    ExchangeId
);

/// How an entry reads for clients that know one reward as one exchange
/// (`WalletEntry.status`), derived from where its points are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Standing {
    /// Some points are spendable (or the job has yet to expire them).
    Available,
    /// Some points are reserved for an exchange whose outcome is not known yet.
    ExchangePending,
    /// Nothing is left, and it paid for an order that stands.
    Exchanged,
    /// Nothing is left, and its points expired.
    Expired,
}

/// The WalletEntry aggregate: one issued reward, and where its points are.
/// `points = remaining + reserved + spent + expired`, always.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WalletEntry {
    pub id: EntryId,
    pub reward_id: RewardId,
    pub mission_id: MissionId,
    pub customer_id: CustomerId,
    /// What the reward was worth: every point the entry ever held.
    pub points: Points,
    /// Spendable (until the expiry).
    pub remaining: i64,
    /// Held by pending exchanges.
    pub reserved: i64,
    /// Paid for orders that stand.
    pub spent: i64,
    /// Expired unspent.
    pub expired: i64,
    /// When the entry's points expire unless spent; `None` for a reward
    /// that never expires (one of an event that never ends).
    pub expires_at: Option<i64>,
    /// When points of the entry last expired.
    pub expired_at: Option<i64>,
    /// The product of the latest exchange it pays, or paid, for; kept (like
    /// the store's column) while it is pending or used up.
    pub product: Option<ProductSku>,
    /// The gift order of the latest placed exchange it paid for; kept (like
    /// the store's column) once it is used up.
    pub gift_order_id: Option<String>,
    /// Milliseconds since the Unix epoch.
    pub issued_at: i64,
    /// Optimistic-concurrency version, bumped on every change.
    pub version: i64,
}

/// Who pays gift for an exchange's order, as gift is asked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GiftPayer {
    /// The exchange itself (every exchange since points add up).
    Exchange,
    /// The one reward of its one reservation: an exchange begun before
    /// points added up, re-driven exactly as it was first asked.
    Reward,
}

/// The part of an exchange's price one entry pays.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reservation {
    pub entry_id: EntryId,
    pub reward_id: RewardId,
    pub points: Points,
}

/// Where an exchange is in its saga. PENDING → PLACED → REFUNDED, or
/// PENDING → RELEASED; never back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExchangeStatus {
    /// The points are reserved; gift's answer is not known yet.
    Pending,
    /// Gift placed `gift_order_id`: the reserved points are spent.
    Placed { gift_order_id: String, at: i64 },
    /// Gift placed no order (`reason`): the points went back to their entries.
    Released { reason: String, at: i64 },
    /// The vendor cancelled the order (`reason`): the points came back.
    Refunded { gift_order_id: String, placed_at: i64, reason: String, at: i64 },
}

/// The Exchange aggregate: one player request to spend points on a product.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exchange {
    pub id: ExchangeId,
    pub customer_id: CustomerId,
    pub product: ProductSku,
    /// The product's price when the exchange was requested: what it reserved.
    pub price: Points,
    /// The player's key (`Exchange`); `None` for one of `ExchangeReward`.
    pub idempotency_key: Option<IdempotencyKey>,
    /// The key gift is asked under, every time: one order at most.
    pub gift_key: IdempotencyKey,
    pub payer: GiftPayer,
    /// The correlation key: the mission of the first entry paying.
    pub mission_id: MissionId,
    /// The entries paying, in the order they were taken.
    pub reservations: Vec<Reservation>,
    pub status: ExchangeStatus,
    /// Calls to gift begun so far: a call turned away before it reached gift
    /// releases the points only if no other call was begun since its own.
    pub calls: i64,
    /// Milliseconds since the Unix epoch.
    pub requested_at: i64,
    /// Optimistic-concurrency version, bumped on every change.
    pub version: i64,
}

/// One call to gift for an exchange: the answer is applied to the exchange
/// as it stands then.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExchangeTicket {
    pub exchange_id: ExchangeId,
    /// Which of the exchange's calls this is.
    pub call: i64,
    /// Whether the exchange was begun earlier (a player's retry, the
    /// re-driver): a call under its key may already have placed an order.
    pub resumed: bool,
}

/// Why an exchange cannot be begun; nothing was reserved.
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
    #[error(
        "not enough points: {product} costs {} points, reward {reward_id} (wallet entry {entry_id}) has {remaining} left",
        .price.value()
    )]
    NotEnoughInEntry { entry_id: EntryId, reward_id: RewardId, remaining: i64, product: ProductSku, price: Points },
    #[error("{customer_id} has {balance} points; {product} costs {}", .price.value())]
    NotEnoughPoints { customer_id: CustomerId, balance: i64, product: ProductSku, price: Points },
    #[error("idempotency key {key} was already used for an exchange of {product}")]
    KeyReused { key: IdempotencyKey, product: ProductSku },
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
    /// The points that expired now.
    pub points: Points,
    /// Every point of the entry expired so far, these included: each expiry
    /// of one entry is a different event.
    pub expired_total: i64,
    /// When the entry was due to expire.
    pub expires_at: i64,
    /// When it was expired (at or after `expires_at`).
    pub at: i64,
}

/// What the gift context answered to one call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GiftAnswer {
    /// An order was placed (now or by an earlier call with the same key).
    Placed { gift_order_id: String },
    /// Gift itself refused the key (unknown product, out of stock…): no
    /// order exists for it, nor ever will, since gift answers one key the
    /// same way every time.
    Refused { reason: String },
    /// This call never reached gift's rules (the wallet's circuit open, gift
    /// shedding load or unreachable before the call was sent): no order from
    /// this call, but nothing learnt about another call under the same key.
    NotAsked { reason: String },
    /// Unknown: the call may or may not have placed an order (timeout,
    /// connection lost mid-call). Only a call with the same key can tell.
    Unknown,
}

/// What applying an answer did to the exchange.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Settlement {
    /// PLACED now: the points are spent.
    Completed,
    /// RELEASED now: the points are back.
    Released,
    /// Still pending: settled later under the same key.
    StillPending,
    /// The exchange was settled already (another call, the re-driver, a
    /// refund): nothing changed.
    Stale,
}

/// An entry was used up paying for an order: other contexts must learn it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RewardExchanged {
    pub gift_order_id: String,
    pub product: ProductSku,
    pub at: i64,
}

/// What one entry got back from a refund.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntryRefund {
    pub entry_id: EntryId,
    pub reward_id: RewardId,
    /// Back in `remaining`, spendable again.
    pub refunded: i64,
    /// Came back past the entry's expiry: expired at once.
    pub expired: i64,
}

/// What the wallet tells other contexts, in the domain's words; the
/// adapters give each its published form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WalletEvent {
    /// A reward entered a player's wallet.
    RewardIssued { entry: WalletEntry },
    /// An entry was used up paying for a gift order.
    RewardExchanged { entry: WalletEntry, exchanged: RewardExchanged },
    /// An entry's unspent points expired.
    PointsExpired { entry: WalletEntry, expired: PointsExpired },
    /// Gift placed the order an exchange asked for.
    ExchangePlaced { exchange: Exchange },
    /// The vendor cancelled an exchange's order: its points came back.
    PointsRefunded { exchange: Exchange, refunds: Vec<EntryRefund> },
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
            remaining: points.value(),
            reserved: 0,
            spent: 0,
            expired: 0,
            expires_at,
            expired_at: None,
            product: None,
            gift_order_id: None,
            issued_at: now,
            version: 1,
        }
    }

    /// Whether the entry's expiry has passed at `now`.
    pub fn is_due(&self, now: i64) -> bool {
        self.expires_at.is_some_and(|expires_at| expires_at <= now)
    }

    /// The points that can be spent at `now`: none once the expiry passed,
    /// expired by the job or not yet.
    pub fn spendable(&self, now: i64) -> i64 {
        if self.is_due(now) { 0 } else { self.remaining }
    }

    /// Whether every point the entry holds is in exactly one place.
    pub fn is_whole(&self) -> bool {
        [self.remaining, self.reserved, self.spent, self.expired].iter().all(|p| *p >= 0)
            && self.remaining + self.reserved + self.spent + self.expired == self.points.value()
    }

    /// How the entry reads for clients that know one reward as one exchange.
    pub fn standing(&self) -> Standing {
        if self.reserved > 0 {
            Standing::ExchangePending
        } else if self.remaining > 0 {
            Standing::Available
        } else if self.spent > 0 {
            Standing::Exchanged
        } else if self.expired > 0 {
            Standing::Expired
        } else {
            Standing::Available
        }
    }

    /// The expiry job found the entry due at `now`: its remaining points
    /// expire (PointsExpired). Nothing happens to an entry not due yet or
    /// with nothing remaining; reserved points are never expired — those an
    /// exchange releases expire at a later run.
    pub fn expire(&mut self, now: i64) -> Option<PointsExpired> {
        let expires_at = self.expires_at.filter(|expires_at| *expires_at <= now)?;
        let points = Points::new(self.remaining).ok().filter(|points| points.value() > 0)?;
        self.expired += self.remaining;
        self.remaining = 0;
        self.expired_at = Some(now);
        self.version += 1;
        Some(PointsExpired { points, expired_total: self.expired, expires_at, at: now })
    }

    /// Moves `points` from `remaining` to `reserved` for an exchange of `product`.
    fn reserve(&mut self, points: i64, product: &ProductSku) {
        self.remaining -= points;
        self.reserved += points;
        self.product = Some(product.clone());
        self.version += 1;
    }

    /// The refusal of an expired entry; `fallback` stands in for an expiry
    /// the entry does not know (it never lacks one once due).
    fn expired_refusal(&self, fallback: i64) -> ExchangeRefused {
        ExchangeRefused::Expired {
            entry_id: self.id,
            reward_id: self.reward_id,
            expires_at: self.expires_at.unwrap_or(fallback),
        }
    }
}

/// What a player asks to buy, as the wallet knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Purchase {
    pub id: ExchangeId,
    pub customer_id: CustomerId,
    pub product: ProductSku,
    /// The product's price, from the wallet's copy of gift's catalogue.
    pub price: Points,
    /// The player's key, when they gave one.
    pub idempotency_key: Option<IdempotencyKey>,
}

impl Purchase {
    fn exchange(self, reservations: Vec<Reservation>, mission_id: MissionId, now: i64) -> (Exchange, ExchangeTicket) {
        // The exchange's own id names it at gift: one order per exchange.
        let gift_key = IdempotencyKey::of_uuid(self.id.as_uuid());
        let exchange = Exchange {
            id: self.id,
            customer_id: self.customer_id,
            product: self.product,
            price: self.price,
            idempotency_key: self.idempotency_key,
            gift_key,
            payer: GiftPayer::Exchange,
            mission_id,
            reservations,
            status: ExchangeStatus::Pending,
            calls: 1,
            requested_at: now,
            version: 1,
        };
        let ticket = ExchangeTicket { exchange_id: exchange.id, call: 1, resumed: false };
        (exchange, ticket)
    }

    /// Reserves the price across `entries` (the player's), the ones expiring
    /// first, then the oldest, all or nothing: the exchange, PENDING, and the
    /// ticket of its first call. The entries used are changed; the others
    /// are left as they were.
    ///
    /// # Errors
    /// [`ExchangeRefused::NotEnoughPoints`], naming the balance and the
    /// price, when the spendable points fall short; nothing is changed.
    pub fn reserve_across(
        self,
        entries: &mut [WalletEntry],
        now: i64,
    ) -> Result<(Exchange, ExchangeTicket), ExchangeRefused> {
        let mut order: Vec<usize> = (0..entries.len())
            .filter(|&i| entries[i].customer_id == self.customer_id && entries[i].spendable(now) > 0)
            .collect();
        order.sort_by_key(|&i| {
            let entry = &entries[i];
            (entry.expires_at.unwrap_or(i64::MAX), entry.issued_at, entry.id)
        });
        let balance: i64 = order.iter().map(|&i| entries[i].spendable(now)).sum();
        // The correlation key of the exchange: the mission of the entry paying first.
        let mission_id = order.first().map_or(MissionId::from_uuid(self.id.as_uuid()), |&i| entries[i].mission_id);
        if balance < self.price.value() {
            return Err(ExchangeRefused::NotEnoughPoints {
                customer_id: self.customer_id,
                balance,
                product: self.product,
                price: self.price,
            });
        }
        let mut owed = self.price.value();
        let mut reservations = Vec::new();
        for i in order {
            if owed == 0 {
                break;
            }
            let entry = &mut entries[i];
            let take = owed.min(entry.spendable(now));
            entry.reserve(take, &self.product);
            owed -= take;
            reservations.push(Reservation {
                entry_id: entry.id,
                reward_id: entry.reward_id,
                points: Points::new(take).unwrap_or_default(),
            });
        }
        Ok(self.exchange(reservations, mission_id, now))
    }

    /// Reserves the price from one entry (`ExchangeReward`): the change
    /// beyond the price stays in the entry.
    ///
    /// # Errors
    /// [`ExchangeRefused::NotYours`], [`ExchangeRefused::Expired`] past the
    /// entry's expiry, and when the entry holds less than the price:
    /// [`ExchangeRefused::PendingForAnotherProduct`] while an exchange holds
    /// its points, [`ExchangeRefused::AlreadyExchanged`] when they are spent,
    /// [`ExchangeRefused::NotEnoughInEntry`] otherwise. Nothing is changed.
    pub fn reserve_from(
        self,
        entry: &mut WalletEntry,
        now: i64,
    ) -> Result<(Exchange, ExchangeTicket), ExchangeRefused> {
        if entry.customer_id != self.customer_id {
            return Err(ExchangeRefused::NotYours { entry_id: entry.id, customer_id: self.customer_id });
        }
        if entry.is_due(now) {
            return Err(entry.expired_refusal(now));
        }
        let price = self.price.value();
        if entry.remaining < price {
            return Err(match (&entry.product, &entry.gift_order_id) {
                (Some(product), _) if entry.reserved > 0 => {
                    ExchangeRefused::PendingForAnotherProduct { entry_id: entry.id, product: product.clone() }
                }
                (_, Some(gift_order_id)) if entry.remaining == 0 && entry.spent > 0 => {
                    ExchangeRefused::AlreadyExchanged { entry_id: entry.id, gift_order_id: gift_order_id.clone() }
                }
                _ if entry.remaining == 0 && entry.expired > 0 => entry.expired_refusal(now),
                _ => ExchangeRefused::NotEnoughInEntry {
                    entry_id: entry.id,
                    reward_id: entry.reward_id,
                    remaining: entry.remaining,
                    product: self.product,
                    price: self.price,
                },
            });
        }
        entry.reserve(price, &self.product);
        let reservation = Reservation { entry_id: entry.id, reward_id: entry.reward_id, points: self.price };
        Ok(self.exchange(vec![reservation], entry.mission_id, now))
    }
}

impl Exchange {
    /// Whether this is the pending exchange `ExchangeReward` began on
    /// `entry` for `product`: asking again resumes it.
    pub fn is_pending_exchange_of(&self, entry: EntryId, product: &ProductSku) -> bool {
        self.status == ExchangeStatus::Pending
            && self.idempotency_key.is_none()
            && self.product == *product
            && matches!(self.reservations.as_slice(), [only] if only.entry_id == entry)
    }

    /// A new call for a pending exchange (a player's retry, the re-driver),
    /// under the same key; `None` once it is settled (answer with it as it
    /// stands). A pending exchange is resumed past its entries' expiry, since
    /// its order may exist.
    pub fn resume(&mut self) -> Option<ExchangeTicket> {
        if self.status != ExchangeStatus::Pending {
            return None;
        }
        self.calls += 1;
        self.version += 1;
        Some(ExchangeTicket { exchange_id: self.id, call: self.calls, resumed: true })
    }

    /// The points its reservations hold in total.
    pub fn reserved_points(&self) -> i64 {
        self.reservations.iter().map(|r| r.points.value()).sum()
    }

    /// Applies gift's answer to the call `ticket` began. `entries` are the
    /// entries its reservations name (others are ignored); those changed
    /// must be saved with the exchange, and the events published.
    pub fn settle(
        &mut self,
        entries: &mut [WalletEntry],
        ticket: &ExchangeTicket,
        answer: GiftAnswer,
        now: i64,
    ) -> (Settlement, Vec<WalletEvent>) {
        if self.status != ExchangeStatus::Pending {
            return (Settlement::Stale, Vec::new());
        }
        match answer {
            GiftAnswer::Placed { gift_order_id } => (Settlement::Completed, self.place(entries, gift_order_id, now)),
            GiftAnswer::Refused { reason } => {
                self.release(entries, reason, now);
                (Settlement::Released, Vec::new())
            }
            // Only the call that was alone can tell that no call placed an
            // order: any call begun since may have reached gift.
            GiftAnswer::NotAsked { reason } if !ticket.resumed && ticket.call == self.calls => {
                self.release(entries, reason, now);
                (Settlement::Released, Vec::new())
            }
            GiftAnswer::NotAsked { .. } | GiftAnswer::Unknown => (Settlement::StillPending, Vec::new()),
        }
    }

    fn place(&mut self, entries: &mut [WalletEntry], gift_order_id: String, now: i64) -> Vec<WalletEvent> {
        self.status = ExchangeStatus::Placed { gift_order_id: gift_order_id.clone(), at: now };
        self.version += 1;
        let mut events = vec![WalletEvent::ExchangePlaced { exchange: self.clone() }];
        for (reservation, entry) in paying(&self.reservations, entries) {
            let points = reservation.points.value();
            entry.reserved -= points;
            entry.spent += points;
            entry.gift_order_id = Some(gift_order_id.clone());
            entry.product = Some(self.product.clone());
            entry.version += 1;
            if entry.standing() == Standing::Exchanged {
                let exchanged =
                    RewardExchanged { gift_order_id: gift_order_id.clone(), product: self.product.clone(), at: now };
                events.push(WalletEvent::RewardExchanged { entry: entry.clone(), exchanged });
            }
        }
        events
    }

    fn release(&mut self, entries: &mut [WalletEntry], reason: String, now: i64) {
        self.status = ExchangeStatus::Released { reason, at: now };
        self.version += 1;
        for (reservation, entry) in paying(&self.reservations, entries) {
            let points = reservation.points.value();
            entry.reserved -= points;
            entry.remaining += points;
            entry.version += 1;
        }
    }

    /// The vendor cancelled the order (`reason`) at `now`: a PLACED exchange
    /// is REFUNDED, once, each reservation's points back in its entry's
    /// `remaining` — or in `expired` for an entry past its expiry, since a
    /// refund never revives an expired point. `None` for an exchange that is
    /// not PLACED (refunded already, or never placed).
    pub fn refund(&mut self, entries: &mut [WalletEntry], reason: String, now: i64) -> Option<WalletEvent> {
        let ExchangeStatus::Placed { gift_order_id, at } = &self.status else { return None };
        self.status =
            ExchangeStatus::Refunded { gift_order_id: gift_order_id.clone(), placed_at: *at, reason, at: now };
        self.version += 1;
        let mut refunds = Vec::new();
        for (reservation, entry) in paying(&self.reservations, entries) {
            let points = reservation.points.value();
            entry.spent -= points;
            let (refunded, expired) = if entry.is_due(now) {
                entry.expired += points;
                entry.expired_at = Some(now);
                (0, points)
            } else {
                entry.remaining += points;
                (points, 0)
            };
            entry.version += 1;
            refunds.push(EntryRefund { entry_id: entry.id, reward_id: entry.reward_id, refunded, expired });
        }
        Some(WalletEvent::PointsRefunded { exchange: self.clone(), refunds })
    }
}

/// Each reservation with the entry it names, among `entries`.
fn paying<'a>(
    reservations: &'a [Reservation],
    entries: &'a mut [WalletEntry],
) -> impl Iterator<Item = (&'a Reservation, &'a mut WalletEntry)> {
    entries.iter_mut().filter_map(|entry| {
        reservations.iter().find(|r| r.entry_id == entry.id).map(|reservation| (reservation, entry))
    })
}

/// A player's points in total: every point earned is in exactly one of
/// `balance`, `reserved`, `spent` and `expired`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Totals {
    pub earned: i64,
    /// Spendable now.
    pub balance: i64,
    pub reserved: i64,
    pub spent: i64,
    /// Expired, counting the remaining points of entries past their expiry
    /// that the job has not reached yet.
    pub expired: i64,
    /// Came back from cancelled orders (already in `balance` or `expired`).
    pub refunded: i64,
}

impl Totals {
    /// The totals of a player's `entries` and `exchanges` at `now`.
    pub fn of(entries: &[WalletEntry], exchanges: &[Exchange], now: i64) -> Self {
        let mut totals = Self::default();
        for entry in entries {
            totals.earned += entry.points.value();
            totals.balance += entry.spendable(now);
            totals.reserved += entry.reserved;
            totals.spent += entry.spent;
            totals.expired += entry.expired + (entry.remaining - entry.spendable(now));
        }
        totals.refunded = exchanges
            .iter()
            .filter(|exchange| matches!(exchange.status, ExchangeStatus::Refunded { .. }))
            .map(Exchange::reserved_points)
            .sum();
        totals
    }

    /// Whether every point earned is in exactly one place.
    pub fn add_up(&self) -> bool {
        self.earned == self.balance + self.reserved + self.spent + self.expired
    }
}

#[cfg(test)]
mod tests;
