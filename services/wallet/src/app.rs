//! The wallet use cases: issuing rewards into wallets; exchanges — across
//! the player's balance (`exchange`) or from one entry (`exchange_reward`):
//! reserve in one transaction, call gift, settle in another —; the
//! re-driver that settles exchanges whose outcome was unknown; the expiry
//! job; the refund of orders the vendor cancelled; the prices learnt from
//! gift's catalogue. They speak domain types only, through the ports of
//! [`crate::ports`].

use std::sync::Arc;
use std::time::{Duration, Instant};

use kernel::{CustomerId, Points, StoreError, StoreErrorKind, StoreFailure};
use platform::CancellationToken;
use platform::db::now_millis;
use platform::store::retry_on_conflict;
use tracing::instrument;

use crate::domain::{
    EntryId, Exchange, ExchangeId, ExchangeRefused, ExchangeStatus, ExchangeTicket, GiftAnswer, IdempotencyKey,
    MissionId, ProductSku, Purchase, RewardExpiry, RewardId, Settlement, Totals, WalletEntry, WalletEvent,
};
use crate::ports::{GiftExchange, GiftOutcome, GiftRefusal, WalletStore, WalletTx};

#[cfg(test)]
mod tests;

/// What a wallet use case can answer besides success.
#[derive(Debug, thiserror::Error)]
pub enum WalletError {
    #[error("wallet entry {0} does not exist")]
    EntryNotFound(EntryId),
    #[error("product {0} does not exist")]
    UnknownProduct(ProductSku),
    #[error(transparent)]
    Refused(#[from] ExchangeRefused),
    #[error("the gift exchange placed no order")]
    Gift(GiftRefusal),
    #[error("the exchange of wallet entry {0} is not confirmed yet")]
    Unsettled(EntryId),
    #[error("exchange {0} is not confirmed yet")]
    ExchangeUnsettled(ExchangeId),
    #[error(transparent)]
    Storage(#[from] StoreError),
}

impl StoreFailure for WalletError {
    fn store_error(&self) -> Option<&StoreError> {
        match self {
            Self::Storage(error) => Some(error),
            _ => None,
        }
    }
}

/// A player's wallet: their entries and exchanges, newest first, and their
/// points in total.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WalletView {
    pub entries: Vec<WalletEntry>,
    pub exchanges: Vec<Exchange>,
    pub totals: Totals,
}

/// How the re-driver settles exchanges left pending.
#[derive(Debug, Clone)]
pub struct RedriveConfig {
    /// How often it looks for pending exchanges.
    pub interval: Duration,
    /// Exchanges pending for less than this are left to the call in flight.
    pub after: Duration,
}

impl Default for RedriveConfig {
    fn default() -> Self {
        Self { interval: Duration::from_secs(2), after: Duration::from_secs(5) }
    }
}

/// Pending exchanges one re-drive round takes on at most.
const REDRIVE_BATCH: u32 = 100;

/// How rewards expire, and how often the expiry job looks for due ones.
#[derive(Debug, Clone)]
pub struct ExpiryConfig {
    /// How long a reward stays spendable after its event ended.
    pub after: Duration,
    /// How often the job looks for entries past their expiry.
    pub interval: Duration,
}

impl ExpiryConfig {
    /// The rule rewards are issued under.
    pub fn rule(&self) -> RewardExpiry {
        RewardExpiry::after(self.after)
    }
}

impl Default for ExpiryConfig {
    fn default() -> Self {
        Self { after: RewardExpiry::DEFAULT_AFTER, interval: Duration::from_secs(60) }
    }
}

/// Due entries the expiry job reads at once: the rest waits for the next
/// batch of the same run.
const EXPIRY_BATCH: u32 = 100;

/// The wallet application service, over a store `S` and a gift exchange `G`.
#[derive(Debug)]
pub struct Wallets<S, G> {
    store: Arc<S>,
    gift: Arc<G>,
}

impl<S, G> Clone for Wallets<S, G> {
    fn clone(&self) -> Self {
        Self { store: Arc::clone(&self.store), gift: Arc::clone(&self.gift) }
    }
}

impl<S: WalletStore, G: GiftExchange> Wallets<S, G> {
    /// Use cases over `store`, calling gift through `gift`.
    pub fn new(store: S, gift: G) -> Self {
        let exchanges = &platform::metrics::metrics().exchanges;
        for result in GiftOutcome::LABELS {
            drop(exchanges.get_or_create(&[("result", result.to_owned())]));
        }
        Self { store: Arc::new(store), gift: Arc::new(gift) }
    }

    /// A player's wallet at `now`.
    ///
    /// # Errors
    /// When the store fails.
    pub async fn wallet(&self, customer: CustomerId, now: i64) -> Result<WalletView, WalletError> {
        let entries = self.store.wallet(customer.clone()).await?;
        let exchanges = self.store.exchanges(customer).await?;
        let totals = Totals::of(&entries, &exchanges, now);
        Ok(WalletView { entries, exchanges, totals })
    }

    /// Spends the player's points on a product: reserves its price across
    /// their entries, asks gift, settles. Idempotent per (player, `key`): a
    /// repeated call answers with the first call's exchange, asking gift
    /// again under the same key while it is pending.
    ///
    /// # Errors
    /// [`WalletError::UnknownProduct`], [`WalletError::Refused`] (not
    /// enough points, a key reused for another product: nothing reserved),
    /// [`WalletError::Gift`] (gift placed no order: the points are back, or,
    /// for an exchange begun earlier, still reserved), or
    /// [`WalletError::ExchangeUnsettled`] (the outcome is unknown: the
    /// exchange stays pending until a retry or the re-driver settles it).
    #[instrument(skip_all, fields(customer_id = %customer, product_sku = %product, idempotency_key = %key), err(level = "debug"))]
    pub async fn exchange(
        &self,
        customer: CustomerId,
        product: ProductSku,
        key: IdempotencyKey,
        deadline: Option<Instant>,
    ) -> Result<Exchange, WalletError> {
        let begun = retry_on_conflict(|| {
            let purchase = Asked { customer: customer.clone(), product: product.clone(), key: Some(key.clone()) };
            self.store.write(move |tx| begin_exchange(tx, purchase, now_millis()))
        })
        .await?;
        let (exchange, ticket) = match begun {
            Begun::Call(exchange, ticket) => (exchange, ticket),
            Begun::Settled(exchange) => return Ok(exchange),
        };
        let id = exchange.id;
        let (outcome, settled, _) = self.call_and_settle(&exchange, &ticket, deadline).await?;
        match outcome {
            GiftOutcome::Placed { gift_order_id } if holds_order(&settled, &gift_order_id) => Ok(settled),
            GiftOutcome::Placed { gift_order_id } => {
                tracing::warn!(%gift_order_id, "gift placed an order the exchange does not hold");
                Err(WalletError::ExchangeUnsettled(id))
            }
            GiftOutcome::Refused(refusal) => Err(WalletError::Gift(refusal)),
            GiftOutcome::Unknown { reason } => {
                tracing::warn!(%reason, "exchange outcome unknown; left pending for the re-driver");
                Err(WalletError::ExchangeUnsettled(id))
            }
        }
    }

    /// Exchanges one entry's points for a product: an exchange paid from that
    /// entry alone, the change beyond the price left in it. Asking again for
    /// the same product while that exchange is pending resumes it (same key),
    /// so a player's retry settles it and two concurrent calls place one order.
    ///
    /// # Errors
    /// [`WalletError::EntryNotFound`], [`WalletError::UnknownProduct`],
    /// [`WalletError::Refused`] (not theirs, spent already, pending for another
    /// product, expired, not enough points left), [`WalletError::Gift`] (gift
    /// placed no order: the points are back, or, for an exchange begun
    /// earlier, still reserved), or [`WalletError::Unsettled`] (the outcome is
    /// unknown: the exchange stays pending until a retry or the re-driver
    /// settles it).
    // A refusal is an answer, not a fault: logged at debug (at ERROR, an open
    // breaker wrote a line per turned-away call, 1,000 a second in the
    // benchmark). Store failures are logged once where they become a status.
    #[instrument(skip_all, fields(customer_id = %customer, entry_id = %entry_id, product_sku = %product), err(level = "debug"))]
    pub async fn exchange_reward(
        &self,
        customer: CustomerId,
        entry_id: EntryId,
        product: ProductSku,
        deadline: Option<Instant>,
    ) -> Result<WalletEntry, WalletError> {
        let begun = retry_on_conflict(|| {
            let (customer, product) = (customer.clone(), product.clone());
            self.store.write(move |tx| begin_reward_exchange(tx, entry_id, &customer, product, now_millis()))
        })
        .await?;
        let (exchange, ticket) = match begun {
            Begun::Call(exchange, ticket) => (exchange, ticket),
            // Only a pending exchange is resumed; should it have settled in
            // between, the entry as it stands is the answer.
            Begun::Settled(_) => {
                let entry = self.store.write(move |tx| tx.entry(entry_id)).await?;
                return entry.ok_or(WalletError::EntryNotFound(entry_id));
            }
        };
        let (outcome, settled, entries) = self.call_and_settle(&exchange, &ticket, deadline).await?;
        let entry =
            entries.into_iter().find(|entry| entry.id == entry_id).ok_or(WalletError::EntryNotFound(entry_id))?;
        match outcome {
            GiftOutcome::Placed { gift_order_id } if holds_order(&settled, &gift_order_id) => Ok(entry),
            GiftOutcome::Placed { gift_order_id } => {
                tracing::warn!(%gift_order_id, "gift placed an order the exchange does not hold");
                Err(WalletError::Unsettled(entry_id))
            }
            GiftOutcome::Refused(refusal) => Err(WalletError::Gift(refusal)),
            GiftOutcome::Unknown { reason } => {
                tracing::warn!(%reason, "exchange outcome unknown; left pending for the re-driver");
                Err(WalletError::Unsettled(entry_id))
            }
        }
    }

    /// Asks gift for the order `exchange` pays for, then applies the answer.
    async fn call_and_settle(
        &self,
        exchange: &Exchange,
        ticket: &ExchangeTicket,
        deadline: Option<Instant>,
    ) -> Result<(GiftOutcome, Exchange, Vec<WalletEntry>), WalletError> {
        let outcome = self.gift.exchange(exchange, deadline).await;
        platform::metrics::metrics().exchanges.get_or_create(&[("result", outcome.label().to_owned())]).inc();
        let (settled, entries) = self.settle(ticket, outcome.answer()).await?;
        Ok((outcome, settled, entries))
    }

    /// Applies gift's answer to the call, in its own transaction.
    async fn settle(
        &self,
        ticket: &ExchangeTicket,
        answer: GiftAnswer,
    ) -> Result<(Exchange, Vec<WalletEntry>), WalletError> {
        retry_on_conflict(|| {
            let (ticket, answer) = (ticket.clone(), answer.clone());
            self.store.write(move |tx| settle_exchange(tx, &ticket, answer, now_millis()))
        })
        .await
    }

    /// Settles exchanges pending for longer than `config.after`, asking gift
    /// again under the same key, until `stopping` is cancelled.
    pub async fn run_redriver(self, config: RedriveConfig, stopping: CancellationToken) {
        loop {
            tokio::select! {
                () = tokio::time::sleep(config.interval) => {}
                () = stopping.cancelled() => return,
            }
            match self.redrive_once(config.after).await {
                Ok(0) => {}
                Ok(settled) => tracing::info!(settled, "re-driver settled pending exchanges"),
                Err(error) => tracing::warn!(%error, "re-driver round failed"),
            }
        }
    }

    /// One re-drive round; returns how many exchanges it settled. Each is
    /// resumed as a player's retry would be (a new call under the same key),
    /// so a call still in flight cannot release it meanwhile.
    ///
    /// # Errors
    /// When the store fails.
    pub async fn redrive_once(&self, after: Duration) -> Result<usize, WalletError> {
        let cutoff = now_millis() - i64::try_from(after.as_millis()).unwrap_or(i64::MAX);
        let pending = self.store.pending_since_before(cutoff, REDRIVE_BATCH).await?;
        let mut settled = 0;
        for exchange in pending {
            let id = exchange.id;
            let begun = retry_on_conflict(|| self.store.write(move |tx| resume_exchange(tx, id))).await?;
            let Begun::Call(exchange, ticket) = begun else { continue };
            let outcome = self.gift.exchange(&exchange, None).await;
            // Still unknown, or gift not asked at all (its circuit open): the
            // exchange stays pending for the next round.
            if matches!(outcome.answer(), GiftAnswer::Unknown | GiftAnswer::NotAsked { .. }) {
                continue;
            }
            let (after_settle, _) = self.settle(&ticket, outcome.answer()).await?;
            tracing::info!(exchange_id = %after_settle.id, outcome = ?outcome, "pending exchange settled");
            settled += 1;
        }
        Ok(settled)
    }
}

impl<S: WalletStore, G: GiftExchange> Wallets<S, G> {
    /// Expires due entries every `interval` until `stopping` is cancelled.
    /// Each run reads its work from the store, so an expiry missed while no
    /// replica ran is applied by the first run after.
    pub async fn run_expiry(self, interval: Duration, stopping: CancellationToken) {
        loop {
            tokio::select! {
                () = tokio::time::sleep(interval) => {}
                () = stopping.cancelled() => return,
            }
            match self.expire_due(now_millis()).await {
                Ok(0) => {}
                Ok(expired) => tracing::info!(expired, "expiry job expired unspent rewards"),
                Err(error) => tracing::warn!(%error, "expiry run failed; the next run picks up where it stopped"),
            }
        }
    }

    /// One expiry run at `now`: every entry whose expiry passed has its
    /// remaining points expired, each in a transaction of its own that checks
    /// its version and stages PointsExpired, read from the store in batches
    /// of [`EXPIRY_BATCH`]. Replicas running at once race for the same
    /// entries: the loser of each race decides again, finds nothing left to
    /// expire, and stages nothing. Reserved points are left alone: those an
    /// exchange releases expire at a later run. Returns how many entries this
    /// run expired points of.
    ///
    /// # Errors
    /// When the store fails; what was expired until then stays expired.
    #[instrument(skip(self), err(level = "debug"))]
    pub async fn expire_due(&self, now: i64) -> Result<usize, WalletError> {
        let mut expired = 0;
        loop {
            let due = self.store.due_to_expire(now, EXPIRY_BATCH).await?;
            let (read, before) = (due.len(), expired);
            for entry in due {
                let id = entry.id;
                let outcome = retry_on_conflict(|| self.store.write(move |tx| expire_entry(tx, id, now))).await?;
                if let Some(points) = outcome {
                    tracing::debug!(entry_id = %id, customer_id = %entry.customer_id, points = points.value(), "reward expired unspent");
                    expired += 1;
                }
            }
            // A short batch was the last; a full one that expired nothing
            // was taken by a rival replica, which will finish the work.
            if read < EXPIRY_BATCH as usize || expired == before {
                return Ok(expired);
            }
        }
    }
}

/// What a player asked to buy, before the price is known.
#[derive(Debug, Clone)]
struct Asked {
    customer: CustomerId,
    product: ProductSku,
    key: Option<IdempotencyKey>,
}

/// An exchange ready for a call to gift, or one already settled (the
/// answer to a repeated request).
#[derive(Debug)]
enum Begun {
    Call(Exchange, ExchangeTicket),
    Settled(Exchange),
}

/// Whether the exchange holds the order gift placed (a refund since does not
/// change whose order it was).
fn holds_order(exchange: &Exchange, order: &str) -> bool {
    match &exchange.status {
        ExchangeStatus::Placed { gift_order_id, .. } | ExchangeStatus::Refunded { gift_order_id, .. } => {
            gift_order_id == order
        }
        ExchangeStatus::Pending | ExchangeStatus::Released { .. } => false,
    }
}

/// The player's exchange under their key, resumed while pending; else a
/// new one reserving the price across their entries.
fn begin_exchange(tx: &mut dyn WalletTx, asked: Asked, now: i64) -> Result<Begun, WalletError> {
    if let Some(key) = &asked.key
        && let Some(existing) = tx.exchange_by_key(&asked.customer, key)?
    {
        if existing.product != asked.product {
            return Err(ExchangeRefused::KeyReused { key: key.clone(), product: existing.product }.into());
        }
        return Ok(resume(tx, existing)?);
    }
    let price = tx.price(&asked.product)?.ok_or_else(|| WalletError::UnknownProduct(asked.product.clone()))?;
    let purchase = Purchase {
        id: ExchangeId::generate(),
        customer_id: asked.customer.clone(),
        product: asked.product,
        price,
        idempotency_key: asked.key,
    };
    let mut entries = tx.entries_with_points(&asked.customer)?;
    let read: Vec<i64> = entries.iter().map(|entry| entry.version).collect();
    let (exchange, ticket) = purchase.reserve_across(&mut entries, now)?;
    save_entries(tx, &entries, &read)?;
    tx.insert_exchange(&exchange)?;
    Ok(Begun::Call(exchange, ticket))
}

/// The pending exchange `ExchangeReward` began on this entry for this
/// product, resumed; else a new one paid from the entry.
fn begin_reward_exchange(
    tx: &mut dyn WalletTx,
    entry_id: EntryId,
    customer: &CustomerId,
    product: ProductSku,
    now: i64,
) -> Result<Begun, WalletError> {
    let mut entry = tx.entry(entry_id)?.ok_or(WalletError::EntryNotFound(entry_id))?;
    if entry.customer_id != *customer {
        return Err(ExchangeRefused::NotYours { entry_id, customer_id: customer.clone() }.into());
    }
    let pending = tx.pending_exchanges_of(entry_id)?;
    if let Some(existing) = pending.into_iter().find(|exchange| exchange.is_pending_exchange_of(entry_id, &product)) {
        return Ok(resume(tx, existing)?);
    }
    let price = tx.price(&product)?.ok_or_else(|| WalletError::UnknownProduct(product.clone()))?;
    let purchase =
        Purchase { id: ExchangeId::generate(), customer_id: customer.clone(), product, price, idempotency_key: None };
    let read = entry.version;
    let (exchange, ticket) = purchase.reserve_from(&mut entry, now)?;
    tx.update(&entry, read)?;
    tx.insert_exchange(&exchange)?;
    Ok(Begun::Call(exchange, ticket))
}

/// The re-driver's new call for a pending exchange.
fn resume_exchange(tx: &mut dyn WalletTx, id: ExchangeId) -> Result<Begun, WalletError> {
    let exchange = tx.exchange(id)?.ok_or_else(|| missing("exchange", id))?;
    Ok(resume(tx, exchange)?)
}

fn resume(tx: &mut dyn WalletTx, mut exchange: Exchange) -> Result<Begun, StoreError> {
    let read = exchange.version;
    match exchange.resume() {
        Some(ticket) => {
            tx.update_exchange(&exchange, read)?;
            Ok(Begun::Call(exchange, ticket))
        }
        None => Ok(Begun::Settled(exchange)),
    }
}

fn missing(what: &str, id: impl std::fmt::Display) -> StoreError {
    StoreError::new(StoreErrorKind::Corrupt, format!("{what} {id} is missing"))
}

/// The entries the exchange's reservations name, with the versions read.
fn paying_entries(tx: &mut dyn WalletTx, exchange: &Exchange) -> Result<(Vec<WalletEntry>, Vec<i64>), StoreError> {
    let mut entries = Vec::with_capacity(exchange.reservations.len());
    for reservation in &exchange.reservations {
        let entry = tx.entry(reservation.entry_id)?.ok_or_else(|| missing("wallet entry", reservation.entry_id))?;
        entries.push(entry);
    }
    let read = entries.iter().map(|entry| entry.version).collect();
    Ok((entries, read))
}

/// Saves the entries that changed since they were read at `read`.
fn save_entries(tx: &mut dyn WalletTx, entries: &[WalletEntry], read: &[i64]) -> Result<(), StoreError> {
    for (entry, read) in entries.iter().zip(read) {
        if entry.version != *read {
            tx.update(entry, *read)?;
        }
    }
    Ok(())
}

fn settle_exchange(
    tx: &mut dyn WalletTx,
    ticket: &ExchangeTicket,
    answer: GiftAnswer,
    now: i64,
) -> Result<(Exchange, Vec<WalletEntry>), WalletError> {
    let mut exchange = tx.exchange(ticket.exchange_id)?.ok_or_else(|| missing("exchange", ticket.exchange_id))?;
    let (mut entries, read) = paying_entries(tx, &exchange)?;
    let read_exchange = exchange.version;
    let (settlement, events) = exchange.settle(&mut entries, ticket, answer, now);
    if matches!(settlement, Settlement::Completed | Settlement::Released) {
        tx.update_exchange(&exchange, read_exchange)?;
        save_entries(tx, &entries, &read)?;
    }
    for event in &events {
        tx.stage(event)?;
    }
    Ok((exchange, entries))
}

/// Expires the entry's remaining points if it is due at `now`; returns the
/// points it expired, `None` when there was nothing to expire (a rival
/// replica was first).
fn expire_entry(tx: &mut dyn WalletTx, id: EntryId, now: i64) -> Result<Option<Points>, WalletError> {
    let Some(mut entry) = tx.entry(id)? else { return Ok(None) };
    let read = entry.version;
    let Some(expired) = entry.expire(now) else { return Ok(None) };
    let points = expired.points;
    tx.update(&entry, read)?;
    tx.stage(&WalletEvent::PointsExpired { entry, expired })?;
    Ok(Some(points))
}

/// An order gift placed that the vendor cancelled afterwards.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CancelledOrder {
    /// The key the order was placed under: the exchange's gift key.
    pub gift_key: String,
    pub gift_order_id: String,
    /// Why, in the vendor's words.
    pub reason: String,
}

/// What a cancellation did to the wallet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refund {
    /// The exchange is REFUNDED now, its points back (PointsRefunded staged).
    Refunded,
    /// Refunded before (a redelivery, another replica), or released without
    /// an order: nothing changed.
    AlreadySettled,
    /// No exchange of this wallet placed the order.
    NoExchange,
}

/// Policy effect: the vendor cancelled an order; its exchange is REFUNDED
/// once, in the caller's transaction, each reservation's points back in its
/// entry (or expired, past the entry's expiry). An exchange still PENDING is
/// PLACED first: the cancellation proves gift placed its order.
///
/// # Errors
/// When the store fails (a lost race is a `Conflict`: decided again on
/// redelivery).
pub fn refund(tx: &mut dyn WalletTx, cancelled: &CancelledOrder, now: i64) -> Result<Refund, StoreError> {
    let Some(mut exchange) = tx.exchange_by_gift_key(&cancelled.gift_key)? else { return Ok(Refund::NoExchange) };
    let (mut entries, read) = paying_entries(tx, &exchange)?;
    let read_exchange = exchange.version;
    let mut events = Vec::new();
    if exchange.status == ExchangeStatus::Pending {
        let ticket = ExchangeTicket { exchange_id: exchange.id, call: exchange.calls, resumed: true };
        let placed = GiftAnswer::Placed { gift_order_id: cancelled.gift_order_id.clone() };
        events.extend(exchange.settle(&mut entries, &ticket, placed, now).1);
    }
    let Some(refunded) = exchange.refund(&mut entries, cancelled.reason.clone(), now) else {
        return Ok(Refund::AlreadySettled);
    };
    events.push(refunded);
    tx.update_exchange(&exchange, read_exchange)?;
    save_entries(tx, &entries, &read)?;
    for event in &events {
        tx.stage(event)?;
    }
    Ok(Refund::Refunded)
}

/// Policy effect: gift listed a product at `price`; exchanges reserve it
/// from now on.
///
/// # Errors
/// When the store fails.
pub fn keep_price(tx: &mut dyn WalletTx, product: &ProductSku, price: Points) -> Result<(), StoreError> {
    tx.keep_price(product, price)
}

/// A reward the reward context allocated for a player, as the wallet issues it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AllocatedReward {
    pub reward_id: RewardId,
    pub mission_id: MissionId,
    pub customer_id: CustomerId,
    pub points: Points,
    /// When the event it was earned in ends; `None` for one that never ends.
    pub event_ends_at: Option<i64>,
}

/// Policy effect: a reward allocated for a player enters their wallet,
/// once, in the caller's transaction, expiring as `expiry` says.
///
/// # Errors
/// When the store fails.
pub fn issue(tx: &mut dyn WalletTx, reward: AllocatedReward, expiry: RewardExpiry) -> Result<(), StoreError> {
    if tx.holds_reward(reward.reward_id)? {
        return Ok(());
    }
    let expires_at = expiry.expires_at(reward.event_ends_at);
    let entry = WalletEntry::issue(
        reward.reward_id,
        reward.mission_id,
        reward.customer_id,
        reward.points,
        expires_at,
        now_millis(),
    );
    tx.insert(&entry)?;
    tx.stage(&WalletEvent::RewardIssued { entry })
}
