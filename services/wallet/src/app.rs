//! The wallet use cases: issuing rewards into wallets, and the exchange saga
//! (reserve in one transaction, call gift, settle in another), plus the
//! re-driver that settles exchanges whose outcome was unknown.

use std::time::{Duration, Instant};

use api::game::wallet::v1 as pb;
use platform::CancellationToken;
use platform::db::{Database, DbConnection, DbError, now_millis};
use platform::events::timestamp;
use platform::kernel::CustomerId;
use platform::outbox::{self, OutboxSignal};
use tracing::instrument;

use crate::adapters::gift_client::{GiftClient, GiftOutcome, GiftRefusal};
use crate::adapters::store;
use crate::domain::{
    EntryId, EntryStatus, ExchangeRefused, ExchangeTicket, GiftAnswer, MissionId, ProductSku, RewardExchanged,
    RewardId, Settlement, WalletEntry,
};

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
    Storage(#[from] DbError),
}

impl From<diesel::result::Error> for WalletError {
    fn from(error: diesel::result::Error) -> Self {
        Self::Storage(DbError::from(error))
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

/// The wallet application service.
#[derive(Debug, Clone)]
pub struct Wallets {
    db: Database,
    outbox: OutboxSignal,
    gift: GiftClient,
}

/// Optimistic-concurrency losses are retried this many times.
const CONFLICT_RETRIES: usize = 3;

impl Wallets {
    /// Use cases over `db`, calling gift through `gift`.
    pub fn new(db: Database, outbox: OutboxSignal, gift: GiftClient) -> Self {
        let exchanges = &platform::metrics::metrics().exchanges;
        for result in GiftOutcome::LABELS {
            drop(exchanges.get_or_create(&[("result", result.to_owned())]));
        }
        Self { db, outbox, gift }
    }

    /// Every entry of a player's wallet, newest first.
    ///
    /// # Errors
    /// When the store fails.
    pub async fn wallet(&self, customer: CustomerId) -> Result<Vec<WalletEntry>, WalletError> {
        Ok(self.db.read(move |conn| store::list(conn, &customer)).await?)
    }

    /// Exchanges one entry for a product: reserve, ask gift, settle.
    ///
    /// # Errors
    /// [`WalletError::EntryNotFound`], [`WalletError::Refused`] (not theirs,
    /// already exchanged, pending for another product), [`WalletError::Gift`]
    /// (gift placed no order: the entry is AVAILABLE again), or
    /// [`WalletError::Unsettled`] (the outcome is unknown: the entry stays
    /// pending until a retry or the re-driver settles it).
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
        let (entry, ticket) = self
            .with_conflict_retries(|| {
                let (customer, product) = (customer.clone(), product.clone());
                self.db.write(move |conn| begin_exchange(conn, entry_id, &customer, product))
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
        let entry = self
            .with_conflict_retries(|| {
                let (ticket, answer) = (ticket.clone(), answer.clone());
                self.db.write(move |conn| settle_exchange(conn, &ticket, answer))
            })
            .await?;
        self.outbox.wake();
        Ok(entry)
    }

    async fn with_conflict_retries<T, F, Fut>(&self, mut work: F) -> Result<T, WalletError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, WalletError>>,
    {
        let mut attempt = 0;
        loop {
            attempt += 1;
            match work().await {
                Err(WalletError::Storage(DbError::Conflict { .. })) if attempt < CONFLICT_RETRIES => {}
                other => return other,
            }
        }
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
        let pending = self.db.read(move |conn| store::pending_since_before(conn, cutoff, 100)).await?;
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

fn begin_exchange(
    conn: &mut DbConnection,
    entry_id: EntryId,
    customer: &CustomerId,
    product: ProductSku,
) -> Result<(WalletEntry, ExchangeTicket), WalletError> {
    let mut entry = store::find(conn, entry_id)?.ok_or(WalletError::EntryNotFound(entry_id))?;
    let before = entry.version;
    let ticket = entry.begin_exchange(customer, product, now_millis())?;
    if entry.version != before {
        store::update(conn, &entry)?;
    }
    Ok((entry, ticket))
}

fn settle_exchange(
    conn: &mut DbConnection,
    ticket: &ExchangeTicket,
    answer: GiftAnswer,
) -> Result<WalletEntry, WalletError> {
    let mut entry = store::find(conn, ticket.entry_id)?.ok_or(WalletError::EntryNotFound(ticket.entry_id))?;
    let (settlement, event) = entry.settle(ticket, answer, now_millis());
    if matches!(settlement, Settlement::Completed | Settlement::Released) {
        store::update(conn, &entry)?;
    }
    if let Some(RewardExchanged { gift_order_id, product, at }) = event {
        outbox::stage(conn, &reward_exchanged(&entry, gift_order_id, &product, at))?;
    }
    Ok(entry)
}

/// Policy effect: a reward allocated for a player enters their wallet, once.
///
/// # Errors
/// When the store fails.
pub fn issue(
    conn: &mut DbConnection,
    reward_id: RewardId,
    mission_id: MissionId,
    customer: CustomerId,
    points: platform::kernel::Points,
) -> Result<(), DbError> {
    if store::holds_reward(conn, reward_id)? {
        return Ok(());
    }
    let entry = WalletEntry::issue(reward_id, mission_id, customer, points, now_millis());
    store::insert(conn, &entry)?;
    outbox::stage(conn, &reward_issued(&entry))?;
    Ok(())
}

fn reward_issued(entry: &WalletEntry) -> pb::RewardIssued {
    pb::RewardIssued {
        event_id: platform::kernel::derived_uuid(entry.id.as_uuid(), b"RewardIssued").to_string(),
        entry_id: entry.id.to_string(),
        reward_id: entry.reward_id.to_string(),
        mission_id: entry.mission_id.to_string(),
        customer_id: entry.customer_id.to_string(),
        points: entry.points.value(),
        issued_at: Some(timestamp(entry.issued_at)),
    }
}

fn reward_exchanged(entry: &WalletEntry, gift_order_id: String, product: &ProductSku, at: i64) -> pb::RewardExchanged {
    pb::RewardExchanged {
        event_id: platform::kernel::derived_uuid(entry.id.as_uuid(), b"RewardExchanged").to_string(),
        entry_id: entry.id.to_string(),
        reward_id: entry.reward_id.to_string(),
        mission_id: entry.mission_id.to_string(),
        customer_id: entry.customer_id.to_string(),
        gift_order_id,
        product_sku: product.to_string(),
        exchanged_at: Some(timestamp(at)),
    }
}
