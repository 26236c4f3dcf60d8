//! The settlement use cases: the paged ledger served over gRPC, and the
//! policy effect that records a settlement inside the consumer's inbox
//! transaction, staging SettlementRecorded in that transaction. They speak
//! domain types only, through [`crate::ports`].

use std::sync::Arc;

use kernel::StoreError;
use platform::db::now_millis;

use crate::domain::{GiftExchange, LedgerPosition, ProductSku, Settlement, SettlementId};
use crate::ports::{Ledger, LedgerTx};

#[cfg(test)]
mod tests;

/// What a settlement use case can answer besides success.
#[derive(Debug, thiserror::Error)]
pub enum SettlementError {
    #[error(transparent)]
    Storage(#[from] StoreError),
}

/// How many settlements one page holds.
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

    /// The number of settlements.
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

/// The settlement application service (queries; the command is a
/// policy), over a ledger `L`.
#[derive(Debug)]
pub struct Settlements<L> {
    ledger: Arc<L>,
}

impl<L> Clone for Settlements<L> {
    fn clone(&self) -> Self {
        Self { ledger: Arc::clone(&self.ledger) }
    }
}

impl<L: Ledger> Settlements<L> {
    /// Use cases over `ledger`.
    pub fn new(ledger: L) -> Self {
        Self { ledger: Arc::new(ledger) }
    }

    /// One page of the ledger, oldest first, in a stable order.
    ///
    /// # Errors
    /// When the store fails.
    pub async fn list(&self, query: SettlementQuery) -> Result<SettlementPage, SettlementError> {
        let size = usize::from(query.page_size.get());
        // One more than a page tells whether another page follows, so the
        // last page never hands out a token to an empty one.
        let mut rows = self.ledger.page(query.product_sku, query.after, size + 1).await?;
        let next_after = if rows.len() > size {
            rows.truncate(size);
            rows.last().map(|(position, _)| *position)
        } else {
            None
        };
        Ok(SettlementPage { settlements: rows.into_iter().map(|(_, settlement)| settlement).collect(), next_after })
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

/// Policy effect: a gift was exchanged; record what it costs unless its
/// order is settled already.
///
/// # Errors
/// A store failure (a concurrent recording is a `Conflict`, and applying
/// the event again finds the settlement or the next place).
pub fn record(tx: &mut dyn LedgerTx, exchange: GiftExchange) -> Result<Recording, SettlementError> {
    if let Some(existing) = tx.settlement_of(exchange.order_id)? {
        if existing.amount != exchange.vendor_cost {
            // The first bill stands; a different one for the same order is
            // the gift context's business to explain, not ours to overwrite.
            tracing::warn!(order_id = %exchange.order_id, "gift order settled before at another cost; kept the first");
        }
        return Ok(Recording::AlreadyRecorded(existing.id));
    }
    let (settlement, event) = Settlement::record(exchange, now_millis());
    tx.append(&settlement)?;
    tx.stage(&event)?;
    tracing::info!(
        settlement_id = %settlement.id,
        order_id = %settlement.order_id,
        amount = settlement.amount.minor_units(),
        currency = %settlement.amount.currency(),
        "settlement recorded"
    );
    Ok(Recording::Recorded(settlement.id))
}
