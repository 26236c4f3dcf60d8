//! The port the my page use cases own: the store of players' pages.
//! `adapters::store` implements it on diesel; `lib.rs` alone picks it.
//!
//! A page changes only by a policy merging an event into it, in the
//! consumer's transaction, over a [`PageTx`]; a failure reaches the merge as
//! a [`StoreError`] of a kind the consumer acts on: a lost race is a
//! `Conflict`, and the event is merged again into the page that won.

use kernel::CustomerId;
use kernel::StoreError;

use crate::domain::PlayerPage;

/// One transaction's view of the page store.
pub trait PageTx {
    /// The stored page of a player, if any event mentioned them.
    ///
    /// # Errors
    /// When the store fails.
    fn page(&mut self, customer: &CustomerId) -> Result<Option<PlayerPage>, StoreError>;

    /// Stores the first page of a player.
    ///
    /// # Errors
    /// A `Conflict` when another transaction stored it first, or a store failure.
    fn insert(&mut self, page: &PlayerPage) -> Result<(), StoreError>;

    /// Saves a changed page if nobody changed it since it was read at
    /// `page.version - 1`.
    ///
    /// # Errors
    /// A `Conflict` when somebody did, or a store failure.
    fn update(&mut self, page: &PlayerPage) -> Result<(), StoreError>;
}

/// The pages, as reading and watching them see them.
pub trait PageStore: Send + Sync + 'static {
    /// The stored page of a player, if any event mentioned them.
    ///
    /// # Errors
    /// When the store fails.
    fn page(&self, customer: CustomerId) -> impl Future<Output = Result<Option<PlayerPage>, StoreError>> + Send;
}
