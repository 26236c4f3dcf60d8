//! The ports the settlement use cases own: the ledger of settlements and
//! periods, and the clock. `adapters::store` and `adapters::clock`
//! implement them; `lib.rs` alone picks them.
//!
//! Recording and reversing are policies: they run in the consumer's
//! transaction, over a [`LedgerTx`], so that the settlement they append and
//! the event they stage commit with the inbox entry of the event they
//! applied. Closing a period is the closing job's, in a transaction of its
//! own ([`Ledger::write`]). A failure reaches the use case as a
//! [`StoreError`] of a kind it acts on: a lost race is a `Conflict`, decided
//! again (the consumer applies the event again; the job closes again).

use kernel::StoreError;

use crate::domain::{
    LedgerPosition, OrderId, Period, PeriodId, PeriodTotal, ProductSku, Settlement, SettlementEvent, SettlementKind,
};

/// What time it is: use cases never read the system clock themselves, so
/// that periods are tested at the times that matter.
pub trait Clock: std::fmt::Debug + Send + Sync + 'static {
    /// Milliseconds since the Unix epoch, UTC.
    fn now(&self) -> i64;
}

/// One transaction's view of the ledger.
pub trait LedgerTx {
    /// The settlement of this kind for this gift order, if it was recorded.
    ///
    /// # Errors
    /// When the store fails.
    fn settlement_of(&mut self, order: OrderId, kind: SettlementKind) -> Result<Option<Settlement>, StoreError>;

    /// The period that starts last, if any.
    ///
    /// # Errors
    /// When the store fails.
    fn latest_period(&mut self) -> Result<Option<Period>, StoreError>;

    /// The period with this id.
    ///
    /// # Errors
    /// When the store fails.
    fn period(&mut self, id: PeriodId) -> Result<Option<Period>, StoreError>;

    /// Adds a newly opened period.
    ///
    /// # Errors
    /// A `Conflict` when a concurrent transaction opened it (or another
    /// period with the same start) first: applied again, the recording
    /// lands in it. Or a store failure.
    fn open_period(&mut self, period: &Period) -> Result<(), StoreError>;

    /// Holds the open `period` for a settlement this transaction records in
    /// it: its version moves on, so that a closing that read it before
    /// loses, and a closing under way makes this wait (on PostgreSQL, the
    /// row's lock) and then lose.
    ///
    /// # Errors
    /// A `Conflict` when the period was closed meanwhile (applied again, the
    /// recording lands in the next period), or a store failure.
    fn take_period(&mut self, period: &Period) -> Result<(), StoreError>;

    /// The totals of the settlements recorded in `period`.
    ///
    /// # Errors
    /// When the store fails.
    fn totals_of(&mut self, period: PeriodId) -> Result<Vec<PeriodTotal>, StoreError>;

    /// Saves `period` as closed (at `period.version`, over `period.version
    /// - 1`) with its final `totals`.
    ///
    /// # Errors
    /// A `Conflict` when the period changed since it was read (a settlement
    /// recorded in it, or a rival closed it), or a store failure.
    fn close_period(&mut self, period: &Period, totals: &[PeriodTotal]) -> Result<(), StoreError>;

    /// Appends a new settlement at the end of the ledger; returns its place.
    ///
    /// # Errors
    /// A `Conflict` when a concurrent transaction took the same place or
    /// recorded the same settlement first (the event is applied again, and
    /// finds the next place or the settlement), or a store failure.
    fn append(&mut self, settlement: &Settlement) -> Result<LedgerPosition, StoreError>;

    /// Stages `event` for publication when the transaction commits.
    ///
    /// # Errors
    /// When the store fails.
    fn stage(&mut self, event: &SettlementEvent) -> Result<(), StoreError>;
}

/// The ledger, as the queries and the closing job use it.
pub trait Ledger: Send + Sync + 'static {
    /// Runs `work` in one transaction: all of it is stored, or none.
    ///
    /// # Errors
    /// Whatever `work` returns, or the store's failure.
    fn write<T, E, F>(&self, work: F) -> impl Future<Output = Result<T, E>> + Send
    where
        F: FnOnce(&mut dyn LedgerTx) -> Result<T, E> + Send + 'static,
        T: Send + 'static,
        E: From<StoreError> + Send + 'static;

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

    /// Up to `limit` open periods whose end is at or before `now`, the
    /// earliest first.
    ///
    /// # Errors
    /// When the store fails.
    fn due_periods(&self, now: i64, limit: usize) -> impl Future<Output = Result<Vec<PeriodId>, StoreError>> + Send;

    /// Up to `limit` periods starting before `before` (the latest when
    /// `None`), the latest first.
    ///
    /// # Errors
    /// When the store fails.
    fn periods(
        &self,
        before: Option<i64>,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<Period>, StoreError>> + Send;

    /// The period with this id and its totals: as stored when it closed, or
    /// so far while it is open.
    ///
    /// # Errors
    /// When the store fails.
    fn period_with_totals(
        &self,
        id: PeriodId,
    ) -> impl Future<Output = Result<Option<(Period, Vec<PeriodTotal>)>, StoreError>> + Send;
}
