//! The settlement use cases: the paged ledger and its periods served over
//! gRPC; the policy effects that record a settlement and reverse it inside
//! the consumer's inbox transaction, each in the period open at the time;
//! and the closing job, which closes every period whose end passed, once.
//! They speak domain types only, through [`crate::ports`].

use std::sync::Arc;
use std::time::Duration;

use kernel::{StoreError, StoreFailure};
use platform::CancellationToken;
use platform::store::retry_on_conflict;

use crate::domain::{
    GiftExchange, Landing, LedgerPosition, OrderId, Period, PeriodId, PeriodLength, PeriodTotal, ProductSku,
    Settlement, SettlementId, SettlementKind,
};
use crate::ports::{Clock, Ledger, LedgerTx};

#[cfg(test)]
mod tests;

/// What a settlement use case can answer besides success.
#[derive(Debug, thiserror::Error)]
pub enum SettlementError {
    /// A cancellation arrived before the settlement of its order: the
    /// consumer applies it again later (see [`reverse`]).
    #[error("gift order {0} has no settlement to reverse yet")]
    NotSettledYet(OrderId),
    #[error("settlement period {0} not found")]
    PeriodNotFound(PeriodId),
    #[error(transparent)]
    Storage(#[from] StoreError),
}

impl StoreFailure for SettlementError {
    fn store_error(&self) -> Option<&StoreError> {
        match self {
            Self::Storage(error) => Some(error),
            Self::NotSettledYet(_) | Self::PeriodNotFound(_) => None,
        }
    }
}

/// How many settlements, or periods, one page holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageSize(u16);

/// Why a number is not a page size.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("must be between 0 and {max}", max = PageSize::MAX)]
pub struct PageSizeError;

impl PageSize {
    /// The size of a page when the caller does not say.
    pub const DEFAULT: u16 = 50;
    /// The largest page served, so one call never loads the whole ledger.
    pub const MAX: u16 = 500;

    /// A page size from a request, where 0 means [`PageSize::DEFAULT`].
    ///
    /// # Errors
    /// [`PageSizeError`] below 0 or above [`PageSize::MAX`].
    pub fn new(requested: i32) -> Result<Self, PageSizeError> {
        match u16::try_from(requested) {
            Ok(0) => Ok(Self(Self::DEFAULT)),
            Ok(size) if size <= Self::MAX => Ok(Self(size)),
            _ => Err(PageSizeError),
        }
    }

    /// How many rows.
    pub fn get(self) -> u16 {
        self.0
    }
}

/// Which page of the ledger to list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SettlementQuery {
    /// Only settlements of this product when set.
    pub product_sku: Option<ProductSku>,
    /// Only settlements recorded after this position; the first page when `None`.
    pub after: Option<LedgerPosition>,
    pub page_size: PageSize,
}

/// One page of the ledger, oldest first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SettlementPage {
    pub settlements: Vec<Settlement>,
    /// Where the next page starts after; `None` on the last page.
    pub next_after: Option<LedgerPosition>,
}

/// Which page of the periods to list, the latest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PeriodQuery {
    /// Only periods starting before this time; the first page when `None`.
    pub before: Option<i64>,
    pub page_size: PageSize,
}

/// One page of the periods, the latest first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeriodPage {
    pub periods: Vec<Period>,
    /// The start the next page lists periods before; `None` on the last page.
    pub next_before: Option<i64>,
}

/// How many due periods one closing round takes on at most; the rest wait
/// for the next round.
const CLOSE_BATCH: usize = 100;

/// The settlement application service (queries and the closing job; the
/// commands are policies), over a ledger `L`.
#[derive(Debug)]
pub struct Settlements<L> {
    ledger: Arc<L>,
    clock: Arc<dyn Clock>,
}

impl<L> Clone for Settlements<L> {
    fn clone(&self) -> Self {
        Self { ledger: Arc::clone(&self.ledger), clock: Arc::clone(&self.clock) }
    }
}

/// The rows of one page read with one row more than `size`, and the key of
/// its last row when that row showed another page follows: so the last page
/// never hands out a token to an empty one.
fn one_page<T, K>(mut rows: Vec<T>, size: usize, key: impl Fn(&T) -> K) -> (Vec<T>, Option<K>) {
    if rows.len() > size {
        rows.truncate(size);
        let next = rows.last().map(key);
        (rows, next)
    } else {
        (rows, None)
    }
}

impl<L: Ledger> Settlements<L> {
    /// Use cases over `ledger`, telling the time by `clock`.
    pub fn new(ledger: L, clock: impl Clock) -> Self {
        Self { ledger: Arc::new(ledger), clock: Arc::new(clock) }
    }

    /// One page of the ledger, oldest first, in a stable order.
    ///
    /// # Errors
    /// When the store fails.
    pub async fn list(&self, query: SettlementQuery) -> Result<SettlementPage, SettlementError> {
        let size = usize::from(query.page_size.get());
        let rows = self.ledger.page(query.product_sku, query.after, size + 1).await?;
        let (rows, next_after) = one_page(rows, size, |(position, _)| *position);
        Ok(SettlementPage { settlements: rows.into_iter().map(|(_, settlement)| settlement).collect(), next_after })
    }

    /// One page of the periods, the latest first.
    ///
    /// # Errors
    /// When the store fails.
    pub async fn periods(&self, query: PeriodQuery) -> Result<PeriodPage, SettlementError> {
        let size = usize::from(query.page_size.get());
        let rows = self.ledger.periods(query.before, size + 1).await?;
        let (periods, next_before) = one_page(rows, size, |period| period.starts_at);
        Ok(PeriodPage { periods, next_before })
    }

    /// A period and its totals: final once closed, so far while open.
    ///
    /// # Errors
    /// [`SettlementError::PeriodNotFound`], or a store failure.
    pub async fn period(&self, id: PeriodId) -> Result<(Period, Vec<PeriodTotal>), SettlementError> {
        self.ledger.period_with_totals(id).await?.ok_or(SettlementError::PeriodNotFound(id))
    }

    /// Closes every period whose end passed, each in a transaction of its
    /// own; returns the ones this call closed. A period a rival closer
    /// closed first (its transaction conflicts, and deciding again finds it
    /// closed) is not among them. The work is read from the store, so a
    /// restarted or another replica's closer finds what is left.
    ///
    /// # Errors
    /// When the store fails; the periods closed before stay closed.
    pub async fn close_due_periods(&self) -> Result<Vec<PeriodId>, SettlementError> {
        let due = self.ledger.due_periods(self.clock.now(), CLOSE_BATCH).await?;
        let mut closed = Vec::new();
        for id in due {
            let closing = retry_on_conflict(|| {
                let now = self.clock.now();
                self.ledger.write(move |tx| close_in(tx, id, now))
            })
            .await?;
            if let Some(period) = closing {
                tracing::info!(period_id = %period.id, starts_at = period.starts_at, ends_at = period.ends_at, "settlement period closed");
                closed.push(period.id);
            }
        }
        Ok(closed)
    }

    /// Closes due periods at once and then every `interval`, until
    /// `stopping` is cancelled.
    pub async fn run_closer(self, interval: Duration, stopping: CancellationToken) {
        loop {
            match self.close_due_periods().await {
                Ok(closed) if closed.is_empty() => {}
                Ok(closed) => tracing::info!(periods = closed.len(), "closing job closed settlement periods"),
                Err(error) => tracing::warn!(%error, "closing round failed; the next round tries again"),
            }
            tokio::select! {
                () = tokio::time::sleep(interval) => {}
                () = stopping.cancelled() => return,
            }
        }
    }
}

/// Closes period `id` at `now` if it is still due: its totals computed and
/// stored, SettlementPeriodClosed staged. `None` when a rival closed it.
fn close_in(tx: &mut dyn LedgerTx, id: PeriodId, now: i64) -> Result<Option<Period>, SettlementError> {
    let Some(period) = tx.period(id)? else {
        return Err(SettlementError::PeriodNotFound(id));
    };
    // Not due any more: a rival closed it first.
    if !period.is_due(now) {
        return Ok(None);
    }
    let totals = tx.totals_of(id)?;
    let Ok((closed, event)) = period.close(totals.clone(), now) else {
        return Ok(None);
    };
    tx.close_period(&closed, &totals)?;
    tx.stage(&event)?;
    Ok(Some(closed))
}

/// The period a settlement recorded at `now` lands in, held (or opened) by
/// this transaction.
fn land(tx: &mut dyn LedgerTx, now: i64, length: PeriodLength) -> Result<Period, StoreError> {
    match Period::landing(tx.latest_period()?, now, length) {
        Landing::Into(period) => {
            tx.take_period(&period)?;
            Ok(period)
        }
        Landing::Opening(period) => {
            tx.open_period(&period)?;
            Ok(period)
        }
    }
}

/// What recording a gift exchange did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recording {
    /// A new settlement was recorded and SettlementRecorded staged.
    Recorded(SettlementId),
    /// The gift order was settled before: nothing to do.
    AlreadyRecorded(SettlementId),
}

/// Policy effect: a gift was exchanged; record what it costs, in the period
/// open at `now`, unless its order is settled already.
///
/// # Errors
/// A store failure (a concurrent recording, or the period closed under it,
/// is a `Conflict`, and applying the event again finds the settlement, the
/// next place or the next period).
pub fn record(
    tx: &mut dyn LedgerTx,
    exchange: GiftExchange,
    now: i64,
    length: PeriodLength,
) -> Result<Recording, SettlementError> {
    if let Some(existing) = tx.settlement_of(exchange.order_id, SettlementKind::Charge)? {
        if existing.amount != exchange.vendor_cost {
            // The first bill stands; a different one for the same order is
            // the gift context's business to explain, not ours to overwrite.
            tracing::warn!(order_id = %exchange.order_id, "gift order settled before at another cost; kept the first");
        }
        return Ok(Recording::AlreadyRecorded(existing.id));
    }
    let period = land(tx, now, length)?;
    let (settlement, event) = Settlement::record(exchange, period.id, now);
    tx.append(&settlement)?;
    tx.stage(&event)?;
    // Per exchange, so at debug: the event staged beside it is the record.
    tracing::debug!(
        settlement_id = %settlement.id,
        order_id = %settlement.order_id,
        period_id = %settlement.period,
        amount = settlement.amount.minor_units(),
        currency = %settlement.amount.currency(),
        "settlement recorded"
    );
    Ok(Recording::Recorded(settlement.id))
}

/// What reversing a cancelled gift order did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reversal {
    /// The reversal was recorded and SettlementReversed staged.
    Reversed(SettlementId),
    /// The order's settlement was reversed before: nothing to do.
    AlreadyReversed(SettlementId),
}

/// Policy effect: the vendor cancelled a gift order; record the reversal of
/// its settlement, in the period open at `now` (never in the closed period
/// of the charge), unless it was reversed already.
///
/// A cancellation can overtake the exchange it cancels (the two arrive on
/// separate durable consumers). The reversal takes its amount from the
/// settlement it reverses, so it waits for it:
/// [`SettlementError::NotSettledYet`], and the consumer delivers the
/// cancellation again with back-off until the settlement is there. After
/// `CONSUMER_MAX_DELIVERIES_NOT_YET` deliveries it is dead-lettered, kept
/// and re-drivable, never dropped.
///
/// # Errors
/// [`SettlementError::NotSettledYet`], or a store failure as for [`record`].
pub fn reverse(
    tx: &mut dyn LedgerTx,
    order: OrderId,
    now: i64,
    length: PeriodLength,
) -> Result<Reversal, SettlementError> {
    if let Some(existing) = tx.settlement_of(order, SettlementKind::Reversal)? {
        return Ok(Reversal::AlreadyReversed(existing.id));
    }
    let charge = tx.settlement_of(order, SettlementKind::Charge)?.ok_or(SettlementError::NotSettledYet(order))?;
    let period = land(tx, now, length)?;
    let (reversal, event) = charge.reverse(period.id, now);
    tx.append(&reversal)?;
    tx.stage(&event)?;
    tracing::info!(
        settlement_id = %reversal.id,
        order_id = %order,
        period_id = %reversal.period,
        charged_in = %charge.period,
        amount = reversal.owed(),
        "settlement reversed"
    );
    Ok(Reversal::Reversed(reversal.id))
}
