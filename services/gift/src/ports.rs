//! The port the gift use cases own: the store of products and orders.
//! `adapters::store` implements it on diesel; `lib.rs` alone picks it.
//!
//! The store is a unit of work, as in the wallet: [`GiftStore::write`] runs
//! one exchange in one transaction over a [`GiftTx`], so that the unit it
//! reserves, the order it places and the event it stages commit together,
//! and a failure reaches the use case as a [`StoreError`] of a kind it acts
//! on (a concurrent exchange took the unit: a `Conflict`; placed the same
//! order: a `Duplicate`; both decided again).

use kernel::StoreError;

use crate::domain::{GiftEvent, GiftOrder, GiftOrderId, IdempotencyKey, Product, ProductSku, RewardId};

/// One transaction's view of the gift store.
pub trait GiftTx {
    /// The product of the catalogue with this sku, with its current stock.
    ///
    /// # Errors
    /// When the store fails.
    fn product(&mut self, sku: &ProductSku) -> Result<Option<Product>, StoreError>;

    /// The order placed under this idempotency key, if any.
    ///
    /// # Errors
    /// When the store fails.
    fn order_by_key(&mut self, key: &IdempotencyKey) -> Result<Option<GiftOrder>, StoreError>;

    /// The order this reward paid for, if any.
    ///
    /// # Errors
    /// When the store fails.
    fn order_by_reward(&mut self, reward: RewardId) -> Result<Option<GiftOrder>, StoreError>;

    /// Saves a product's new stock if nobody changed the product since it
    /// was read at `product.version - 1`.
    ///
    /// # Errors
    /// A `Conflict` when somebody did, or a store failure.
    fn update_stock(&mut self, product: &Product) -> Result<(), StoreError>;

    /// Adds a newly placed order.
    ///
    /// # Errors
    /// A `Duplicate` when an order under the same key or for the same reward
    /// was placed meanwhile, or a store failure.
    fn insert_order(&mut self, order: &GiftOrder) -> Result<(), StoreError>;

    /// Stages `event` for publication when the transaction commits.
    ///
    /// # Errors
    /// When the store fails.
    fn stage(&mut self, event: &GiftEvent) -> Result<(), StoreError>;
}

/// The catalogue and the orders, kept transactionally.
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

    /// The catalogue with current stock, in display order.
    ///
    /// # Errors
    /// When the store fails.
    fn products(&self) -> impl Future<Output = Result<Vec<Product>, StoreError>> + Send;

    /// The order with this id.
    ///
    /// # Errors
    /// When the store fails.
    fn order(&self, id: GiftOrderId) -> impl Future<Output = Result<Option<GiftOrder>, StoreError>> + Send;
}
