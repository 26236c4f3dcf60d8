//! The wallet use cases: issuing rewards into wallets, the exchange saga
//! (reserve in one transaction, call gift, settle in another), the
//! re-driver that settles exchanges whose outcome was unknown, and the
//! expiry job that expires rewards left unspent past their expiry. They
//! speak domain types only, through the ports of [`crate::ports`].

use std::sync::Arc;
use std::time::{Duration, Instant};

use kernel::{CustomerId, Points, StoreError, StoreFailure};
use platform::CancellationToken;
use platform::db::now_millis;
use platform::store::retry_on_conflict;
use tracing::instrument;

use crate::domain::{
    EntryId, EntryStatus, ExchangeRefused, ExchangeTicket, GiftAnswer, MissionId, ProductSku, RewardExchanged,
    RewardExpiry, RewardId, Settlement, WalletEntry, WalletEvent,
};
use crate::ports::{GiftExchange, GiftOutcome, GiftRefusal, WalletStore, WalletTx};

#[cfg(test)]
mod tests;

/// What a wallet use case can answer besides success.
#[derive(Debug, thiserror::Error)]
pub enum WalletError {
    #[error("wallet entry {0} does not exist")]
    EntryNotFound(EntryId),
    #[error(transparent)]
    Refused(#[from] ExchangeRefused),
    #[error("the gift exchange placed no order")]
    Gift(GiftRefusal),
    #[error("the exchange of wallet entry {0} is not confirmed yet")]
    Unsettled(EntryId),
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

    /// Every entry of a player's wallet, newest first.
    ///
    /// # Errors
    /// When the store fails.
    pub async fn wallet(&self, customer: CustomerId) -> Result<Vec<WalletEntry>, WalletError> {
        Ok(self.store.wallet(customer).await?)
    }

    /// Exchanges one entry for a product: reserve, ask gift, settle.
    ///
    /// # Errors
    /// [`WalletError::EntryNotFound`], [`WalletError::Refused`] (not theirs,
    /// already exchanged, pending for another product, expired), [`WalletError::Gift`]
    /// (gift placed no order: the entry is AVAILABLE again, or, for an
    /// attempt begun earlier, still pending), or [`WalletError::Unsettled`]
    /// (the outcome is unknown: the entry stays pending until a retry or the
    /// re-driver settles it).
    // A refusal is an answer, not a fault: logged at debug (at ERROR, an open
    // breaker wrote a line per turned-away call, 1,000 a second in the
    // benchmark). Store failures are logged once where they become a status.
    #[instrument(skip_all, fields(customer_id = %customer, entry_id = %entry_id, product_sku = %product), err(level = "debug"))]
    pub async fn exchange(
        &self,
        customer: CustomerId,
        entry_id: EntryId,
        product: ProductSku,
        deadline: Option<Instant>,
    ) -> Result<WalletEntry, WalletError> {
        let (entry, ticket) = retry_on_conflict(|| {
            let (customer, product) = (customer.clone(), product.clone());
            self.store.write(move |tx| begin_exchange(tx, entry_id, &customer, product))
        })
        .await?;
        let outcome = self.gift.exchange(&entry, &ticket, deadline).await;
        platform::metrics::metrics().exchanges.get_or_create(&[("result", outcome.label().to_owned())]).inc();
        let settled = self.settle(&ticket, outcome.answer()).await?;
        match outcome {
            GiftOutcome::Placed { gift_order_id } => match &settled.status {
                EntryStatus::Exchanged { gift_order_id: settled_order, .. } if *settled_order == gift_order_id => {
                    Ok(settled)
                }
                // A newer attempt owns the entry: this order is not the player's exchange.
                _ => {
                    tracing::warn!(%gift_order_id, "gift placed an order for a superseded attempt");
                    Err(WalletError::Unsettled(entry_id))
                }
            },
            GiftOutcome::Refused(refusal) => Err(WalletError::Gift(refusal)),
            GiftOutcome::Unknown { reason } => {
                tracing::warn!(%reason, "exchange outcome unknown; left pending for the re-driver");
                Err(WalletError::Unsettled(entry_id))
            }
        }
    }

    /// Applies gift's answer to the attempt, in its own transaction.
    async fn settle(&self, ticket: &ExchangeTicket, answer: GiftAnswer) -> Result<WalletEntry, WalletError> {
        retry_on_conflict(|| {
            let (ticket, answer) = (ticket.clone(), answer.clone());
            self.store.write(move |tx| settle_exchange(tx, &ticket, answer))
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

    /// One re-drive round; returns how many exchanges it settled.
    ///
    /// # Errors
    /// When the store fails.
    pub async fn redrive_once(&self, after: Duration) -> Result<usize, WalletError> {
        let cutoff = now_millis() - i64::try_from(after.as_millis()).unwrap_or(i64::MAX);
        let pending = self.store.pending_since_before(cutoff, REDRIVE_BATCH).await?;
        let mut settled = 0;
        for entry in pending {
            let Some(ticket) = entry.pending_ticket() else { continue };
            let outcome = self.gift.exchange(&entry, &ticket, None).await;
            // Still unknown, or gift not asked at all (its circuit open): the
            // attempt stays pending for the next round.
            if matches!(outcome.answer(), GiftAnswer::Unknown | GiftAnswer::NotAsked) {
                continue;
            }
            let after_settle = self.settle(&ticket, outcome.answer()).await?;
            tracing::info!(entry_id = %after_settle.id, outcome = ?outcome, "pending exchange settled");
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

    /// One expiry run at `now`: every AVAILABLE entry whose expiry passed
    /// becomes EXPIRED, each in a transaction of its own that checks its
    /// version and stages PointsExpired, read from the store in batches of
    /// [`EXPIRY_BATCH`]. Replicas running at once race for the same entries:
    /// the loser of each race decides again, finds the entry expired, and
    /// stages nothing. Entries reserved for an exchange are left for a run
    /// after the exchange is decided. Returns how many entries this run
    /// expired.
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

fn begin_exchange(
    tx: &mut dyn WalletTx,
    entry_id: EntryId,
    customer: &CustomerId,
    product: ProductSku,
) -> Result<(WalletEntry, ExchangeTicket), WalletError> {
    let mut entry = tx.entry(entry_id)?.ok_or(WalletError::EntryNotFound(entry_id))?;
    let before = entry.version;
    let ticket = entry.begin_exchange(customer, product, now_millis())?;
    if entry.version != before {
        tx.update(&entry)?;
    }
    Ok((entry, ticket))
}

fn settle_exchange(
    tx: &mut dyn WalletTx,
    ticket: &ExchangeTicket,
    answer: GiftAnswer,
) -> Result<WalletEntry, WalletError> {
    let mut entry = tx.entry(ticket.entry_id)?.ok_or(WalletError::EntryNotFound(ticket.entry_id))?;
    let (settlement, event) = entry.settle(ticket, answer, now_millis());
    if matches!(settlement, Settlement::Completed | Settlement::Released) {
        tx.update(&entry)?;
    }
    if let Some(exchanged @ RewardExchanged { .. }) = event {
        tx.stage(&WalletEvent::RewardExchanged { entry: entry.clone(), exchanged })?;
    }
    Ok(entry)
}

/// Expires the entry if it is due at `now`; returns the points it expired,
/// `None` when it was not there to expire (a rival replica was first, or an
/// exchange reserved it meanwhile).
fn expire_entry(tx: &mut dyn WalletTx, id: EntryId, now: i64) -> Result<Option<Points>, WalletError> {
    let Some(mut entry) = tx.entry(id)? else { return Ok(None) };
    let Some(expired) = entry.expire(now) else { return Ok(None) };
    let points = expired.points;
    tx.update(&entry)?;
    tx.stage(&WalletEvent::PointsExpired { entry, expired })?;
    Ok(Some(points))
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
