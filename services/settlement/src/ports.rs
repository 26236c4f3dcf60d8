//! The port the settlement use cases own: the ledger of settlements.
//! `adapters::store` implements it on diesel; `lib.rs` alone picks it.
//!
//! Recording is a policy: it runs in the consumer's transaction, over a
//! [`LedgerTx`], so that the settlement it appends and the event it stages
//! commit with the inbox entry of the event it applied. A failure reaches
//! the use case as a [`StoreError`] of a kind the consumer acts on: a lost
//! race is a `Conflict`, and the event is applied again.

use kernel::StoreError;

use crate::domain::{LedgerPosition, OrderId, ProductSku, Settlement, SettlementEvent};

/// One transaction's view of the ledger.
pub trait LedgerTx {
    /// The settlement of this gift order, if it was recorded.
    ///
    /// # Errors
    /// When the store fails.
    fn settlement_of(&mut self, order: OrderId) -> Result<Option<Settlement>, StoreError>;

    /// Appends a new settlement at the end of the ledger; returns its place.
    ///
    /// # Errors
    /// A `Conflict` when a concurrent transaction took the same place or
    /// settled the same order first (the event is applied again, and finds
    /// the next place or the settlement), or a store failure.
    fn append(&mut self, settlement: &Settlement) -> Result<LedgerPosition, StoreError>;

    /// Stages `event` for publication when the transaction commits.
    ///
    /// # Errors
    /// When the store fails.
    fn stage(&mut self, event: &SettlementEvent) -> Result<(), StoreError>;
}

/// The ledger, as the queries read it.
pub trait Ledger: Send + Sync + 'static {
    /// Up to `limit` settlements after `after` (from the start when `None`),
    /// of one product when `product_sku` is set, oldest first, each with its
    /// place.
    ///
    /// # Errors
    /// When the store fails.
    fn page(
        &self,
        product_sku: Option<ProductSku>,
        after: Option<LedgerPosition>,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<(LedgerPosition, Settlement)>, StoreError>> + Send;
}
