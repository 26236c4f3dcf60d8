//! The ports the gift use cases own: the store of products, orders and the
//! programme's events, and the clock. `adapters::store` and
//! `adapters::clock` implement them; `lib.rs` alone picks them.
//!
//! The store is a unit of work, as in the wallet: [`GiftStore::write`] runs
//! one use case's step in one transaction over a [`GiftTx`], so that the
//! unit it reserves, the order it places and the event it stages commit
//! together, and a failure reaches the use case as a [`StoreError`] of a
//! kind it acts on (a concurrent exchange took the unit: a `Conflict`;
//! placed the same order: a `Duplicate`; both decided again).

use kernel::StoreError;
use kernel::programme::ProgrammeEventId;

use crate::domain::catalogue::{ProgrammeEvent, Restock};
use crate::domain::{
    GiftEvent, GiftOrder, GiftOrderId, IdempotencyKey, Payer, PlannedCancellation, Product, ProductSku,
};

/// What time it is: use cases never read the system clock themselves, so
/// that windows and due cancellations are tested at the times that matter.
pub trait Clock: std::fmt::Debug + Send + Sync + 'static {
    /// Milliseconds since the Unix epoch, UTC.
    fn now(&self) -> i64;
}

/// One transaction's view of the gift store.
pub trait GiftTx {
    /// The product of the catalogue with this sku, with its current stock.
    ///
    /// # Errors
    /// When the store fails.
    fn product(&mut self, sku: &ProductSku) -> Result<Option<Product>, StoreError>;

    /// The event of the programme with this id, as gift knows it.
    ///
    /// # Errors
    /// When the store fails.
    fn programme_event(&mut self, id: &ProgrammeEventId) -> Result<Option<ProgrammeEvent>, StoreError>;

    /// The product with this sku and the event it is sold in (`None` if
    /// gift does not know that event): what every exchange decides on. A
    /// store that can answer both in one read should.
    ///
    /// # Errors
    /// When the store fails.
    fn product_in_event(&mut self, sku: &ProductSku) -> Result<Option<(Product, Option<ProgrammeEvent>)>, StoreError> {
        let Some(product) = self.product(sku)? else { return Ok(None) };
        let event = self.programme_event(&product.event_id)?;
        Ok(Some((product, event)))
    }

    /// The order with this id.
    ///
    /// # Errors
    /// When the store fails.
    fn order(&mut self, id: GiftOrderId) -> Result<Option<GiftOrder>, StoreError>;

    /// The order placed under this idempotency key, if any.
    ///
    /// # Errors
    /// When the store fails.
    fn order_by_key(&mut self, key: &IdempotencyKey) -> Result<Option<GiftOrder>, StoreError>;

    /// The order this payer (a reward, a wallet exchange) paid for, if any.
    ///
    /// # Errors
    /// When the store fails.
    fn order_by_payer(&mut self, payer: Payer) -> Result<Option<GiftOrder>, StoreError>;

    /// The cancellation the vendor planned for this order, until it is done.
    ///
    /// # Errors
    /// When the store fails.
    fn planned_cancellation(&mut self, order: GiftOrderId) -> Result<Option<PlannedCancellation>, StoreError>;

    /// Saves a product's new stock if nobody changed the product since it
    /// was read at `product.version - 1`.
    ///
    /// # Errors
    /// A `Conflict` when somebody did, or a store failure.
    fn update_stock(&mut self, product: &Product) -> Result<(), StoreError>;

    /// Adds a product to the catalogue, after every product already in it.
    ///
    /// # Errors
    /// A `Duplicate` when a product with its sku was listed meanwhile, or a
    /// store failure.
    fn insert_product(&mut self, product: &Product) -> Result<(), StoreError>;

    /// The restock done under this idempotency key, if any.
    ///
    /// # Errors
    /// When the store fails.
    fn restock(&mut self, key: &IdempotencyKey) -> Result<Option<Restock>, StoreError>;

    /// Keeps a restock done under its key.
    ///
    /// # Errors
    /// A `Duplicate` when a restock under the key was done meanwhile, or a
    /// store failure.
    fn insert_restock(&mut self, restock: &Restock) -> Result<(), StoreError>;

    /// Keeps `event` as the programme now has it, replacing what gift knew.
    ///
    /// # Errors
    /// When the store fails.
    fn save_programme_event(&mut self, event: &ProgrammeEvent) -> Result<(), StoreError>;

    /// Adds a newly placed order.
    ///
    /// # Errors
    /// A `Duplicate` when an order under the same key or for the same reward
    /// was placed meanwhile, or a store failure.
    fn insert_order(&mut self, order: &GiftOrder) -> Result<(), StoreError>;

    /// Saves a changed order if nobody changed it since it was read at
    /// `order.version - 1`.
    ///
    /// # Errors
    /// A `Conflict` when somebody did, or a store failure.
    fn update_order(&mut self, order: &GiftOrder) -> Result<(), StoreError>;

    /// Keeps the vendor's plan to cancel an order.
    ///
    /// # Errors
    /// A `Duplicate` when the order has one, or a store failure.
    fn plan_cancellation(&mut self, planned: &PlannedCancellation) -> Result<(), StoreError>;

    /// Forgets a planned cancellation, done.
    ///
    /// # Errors
    /// A `Conflict` when it was gone already (done by a concurrent
    /// transaction), or a store failure.
    fn remove_planned_cancellation(&mut self, order: GiftOrderId) -> Result<(), StoreError>;

    /// Stages `event` for publication when the transaction commits.
    ///
    /// # Errors
    /// When the store fails.
    fn stage(&mut self, event: &GiftEvent) -> Result<(), StoreError>;
}

/// The catalogue, the orders and the programme's events, kept transactionally.
pub trait GiftStore: Send + Sync + 'static {
    /// Runs `work` in one write transaction: all it did is stored, or none.
    ///
    /// # Errors
    /// Whatever `work` returns, or the store's failure (as a [`StoreError`]).
    fn write<T, E, F>(&self, work: F) -> impl Future<Output = Result<T, E>> + Send
    where
        F: FnOnce(&mut dyn GiftTx) -> Result<T, E> + Send + 'static,
        T: Send + 'static,
        E: From<StoreError> + Send + 'static;

    /// The catalogue with current stock, in display order, open or not.
    ///
    /// # Errors
    /// When the store fails.
    fn products(&self) -> impl Future<Output = Result<Vec<Product>, StoreError>> + Send;

    /// Every event of the programme gift knows.
    ///
    /// # Errors
    /// When the store fails.
    fn programme_events(&self) -> impl Future<Output = Result<Vec<ProgrammeEvent>, StoreError>> + Send;

    /// The order with this id.
    ///
    /// # Errors
    /// When the store fails.
    fn order(&self, id: GiftOrderId) -> impl Future<Output = Result<Option<GiftOrder>, StoreError>> + Send;

    /// Up to `limit` planned cancellations due at `now`, the earliest first.
    ///
    /// # Errors
    /// When the store fails.
    fn due_cancellations(
        &self,
        now: i64,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<PlannedCancellation>, StoreError>> + Send;
}
