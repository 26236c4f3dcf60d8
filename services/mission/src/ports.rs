//! The port the mission use cases own: the store of missions and of the
//! catalogue. `adapters::store` implements it on diesel; `lib.rs` alone
//! picks it.
//!
//! The store is a unit of work, as in the wallet: [`MissionStore::write`]
//! runs a use case's step in one transaction over a [`MissionTx`], so that
//! the mission it saves and the event it stages commit together, and a
//! failure reaches the step as a [`StoreError`] of a kind it acts on (two
//! first achievements racing: a `Duplicate`, decided again). The steps stay
//! in `app.rs`; the diesel adapter runs each inside `Database::write`, or
//! inside the consumer's transaction for a policy.

use kernel::{CustomerId, StoreError};

use crate::domain::{Mission, MissionCode, MissionDefinition, MissionEvent, MissionId};

/// One transaction's view of the mission store.
pub trait MissionTx {
    /// The catalogue's definition of `code`.
    ///
    /// # Errors
    /// When the store fails.
    fn definition(&mut self, code: &MissionCode) -> Result<Option<MissionDefinition>, StoreError>;

    /// The mission with this id.
    ///
    /// # Errors
    /// When the store fails.
    fn mission(&mut self, id: MissionId) -> Result<Option<Mission>, StoreError>;

    /// The mission this player achieved with this code, if any.
    ///
    /// # Errors
    /// When the store fails.
    fn achieved(&mut self, customer: &CustomerId, code: &MissionCode) -> Result<Option<Mission>, StoreError>;

    /// Adds a newly achieved mission.
    ///
    /// # Errors
    /// A `Duplicate` when the player achieved the same code meanwhile, or a
    /// store failure.
    fn insert(&mut self, mission: &Mission) -> Result<(), StoreError>;

    /// Saves a changed mission if nobody changed it since it was read at
    /// `mission.version - 1`.
    ///
    /// # Errors
    /// A `Conflict` when somebody did, or a store failure.
    fn update(&mut self, mission: &Mission) -> Result<(), StoreError>;

    /// Stages `event` for publication when the transaction commits.
    ///
    /// # Errors
    /// When the store fails.
    fn stage(&mut self, event: &MissionEvent) -> Result<(), StoreError>;
}

/// The missions and the catalogue, kept transactionally.
pub trait MissionStore: Send + Sync + 'static {
    /// Runs `work` in one write transaction: all it did is stored, or none.
    ///
    /// # Errors
    /// Whatever `work` returns, or the store's failure (as a [`StoreError`]).
    fn write<T, E, F>(&self, work: F) -> impl Future<Output = Result<T, E>> + Send
    where
        F: FnOnce(&mut dyn MissionTx) -> Result<T, E> + Send + 'static,
        T: Send + 'static,
        E: From<StoreError> + Send + 'static;

    /// The catalogue, in display order.
    ///
    /// # Errors
    /// When the store fails.
    fn definitions(&self) -> impl Future<Output = Result<Vec<MissionDefinition>, StoreError>> + Send;

    /// The mission with this id.
    ///
    /// # Errors
    /// When the store fails.
    fn mission(&self, id: MissionId) -> impl Future<Output = Result<Option<Mission>, StoreError>> + Send;

    /// Every mission of a player, newest first.
    ///
    /// # Errors
    /// When the store fails.
    fn missions(&self, customer: CustomerId) -> impl Future<Output = Result<Vec<Mission>, StoreError>> + Send;
}
