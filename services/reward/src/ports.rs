//! The port the reward use cases own: the store of rewards. `adapters::store`
//! implements it on diesel; `lib.rs` alone picks it.
//!
//! The reward's commands are policies: each runs in the consumer's
//! transaction, over a [`RewardTx`], so that the reward it saves and the
//! event it stages commit with the inbox entry of the event it applied. A
//! failure reaches the use case as a [`StoreError`] of a kind the consumer
//! acts on: a lost race is a `Conflict`, and the event is applied again.

use kernel::StoreError;

use crate::domain::{MissionId, Reward, RewardEvent, RewardId};

/// One transaction's view of the reward store.
pub trait RewardTx {
    /// The reward with this id.
    ///
    /// # Errors
    /// When the store fails.
    fn reward(&mut self, id: RewardId) -> Result<Option<Reward>, StoreError>;

    /// The reward allocated for this mission, if any.
    ///
    /// # Errors
    /// When the store fails.
    fn reward_for_mission(&mut self, mission: MissionId) -> Result<Option<Reward>, StoreError>;

    /// Adds a newly allocated reward.
    ///
    /// # Errors
    /// A `Conflict` when the mission's reward was allocated meanwhile (the
    /// event is applied again, and finds it), or a store failure.
    fn insert(&mut self, reward: &Reward) -> Result<(), StoreError>;

    /// Saves a changed reward if nobody changed it since it was read at
    /// `reward.version - 1`.
    ///
    /// # Errors
    /// A `Conflict` when somebody did, or a store failure.
    fn update(&mut self, reward: &Reward) -> Result<(), StoreError>;

    /// Stages `event` for publication when the transaction commits.
    ///
    /// # Errors
    /// When the store fails.
    fn stage(&mut self, event: &RewardEvent) -> Result<(), StoreError>;
}

/// The rewards, as the queries read them.
pub trait RewardStore: Send + Sync + 'static {
    /// The reward with this id.
    ///
    /// # Errors
    /// When the store fails.
    fn reward(&self, id: RewardId) -> impl Future<Output = Result<Option<Reward>, StoreError>> + Send;
}
