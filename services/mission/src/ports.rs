//! The ports the mission use cases own: the store of missions and of the
//! programme (events and the catalogue), and the clock. `adapters::store`
//! and `adapters::clock` implement them; `lib.rs` alone picks them.
//!
//! The store is a unit of work, as in the wallet: [`MissionStore::write`]
//! runs a use case's step in one transaction over a [`MissionTx`], so that
//! the mission it saves and the event it stages commit together, and a
//! failure reaches the step as a [`StoreError`] of a kind it acts on (two
//! first achievements racing: a `Duplicate`, decided again). The steps stay
//! in `app.rs`; the diesel adapter runs each inside `Database::write`, or
//! inside the consumer's transaction for a policy.

use kernel::{CustomerId, StoreError};

use crate::domain::programme::{AchievementId, ProgrammeEvent, ProgrammeEventId, Slot};
use crate::domain::{Mission, MissionCode, MissionDefinition, MissionEvent, MissionId, ProgrammeChange};

/// What time it is: use cases never read the system clock themselves, so
/// that windows and days are tested at the times that matter.
pub trait Clock: std::fmt::Debug + Send + Sync + 'static {
    /// Milliseconds since the Unix epoch, UTC.
    fn now(&self) -> i64;
}

/// One transaction's view of the mission store.
pub trait MissionTx {
    /// The catalogue's definition of `code`.
    ///
    /// # Errors
    /// When the store fails.
    fn definition(&mut self, code: &MissionCode) -> Result<Option<MissionDefinition>, StoreError>;

    /// The event of the programme with this id.
    ///
    /// # Errors
    /// When the store fails.
    fn programme_event(&mut self, id: &ProgrammeEventId) -> Result<Option<ProgrammeEvent>, StoreError>;

    /// The catalogue's definition of `code` and the event it belongs to
    /// (`None` if that event is missing): what every achievement decides on.
    /// A store that can answer both in one read should.
    ///
    /// # Errors
    /// When the store fails.
    fn definition_in_event(
        &mut self,
        code: &MissionCode,
    ) -> Result<Option<(MissionDefinition, Option<ProgrammeEvent>)>, StoreError> {
        let Some(definition) = self.definition(code)? else { return Ok(None) };
        let event = self.programme_event(&definition.event_id)?;
        Ok(Some((definition, event)))
    }

    /// The mission with this id.
    ///
    /// # Errors
    /// When the store fails.
    fn mission(&mut self, id: MissionId) -> Result<Option<Mission>, StoreError>;

    /// The (first) mission this player achieved with this code, if any.
    ///
    /// # Errors
    /// When the store fails.
    fn achieved(&mut self, customer: &CustomerId, code: &MissionCode) -> Result<Option<Mission>, StoreError>;

    /// The mission this player achieved under the game's `achievement_id`, if any.
    ///
    /// # Errors
    /// When the store fails.
    fn achieved_as(
        &mut self,
        customer: &CustomerId,
        achievement_id: &AchievementId,
    ) -> Result<Option<Mission>, StoreError>;

    /// The slots this player's achievements of this code took.
    ///
    /// # Errors
    /// When the store fails.
    fn slots_taken(&mut self, customer: &CustomerId, code: &MissionCode) -> Result<Vec<Slot>, StoreError>;

    /// Adds a newly achieved mission.
    ///
    /// # Errors
    /// A `Duplicate` when the player took the same slot of the code, or used
    /// the same achievement id, meanwhile; or a store failure.
    fn insert(&mut self, mission: &Mission) -> Result<(), StoreError>;

    /// Adds an event to the programme.
    ///
    /// # Errors
    /// A `Duplicate` when an event with its id was scheduled meanwhile, or a
    /// store failure.
    fn insert_programme_event(&mut self, event: &ProgrammeEvent) -> Result<(), StoreError>;

    /// Adds a mission to the catalogue, after every mission already in it.
    ///
    /// # Errors
    /// A `Duplicate` when a mission with its code was defined meanwhile, or
    /// a store failure.
    fn insert_definition(&mut self, definition: &MissionDefinition) -> Result<(), StoreError>;

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

    /// Stages the audit record of an operator's change for publication when
    /// the transaction commits.
    ///
    /// # Errors
    /// When the store fails.
    fn stage_change(&mut self, change: &ProgrammeChange) -> Result<(), StoreError>;
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

    /// The catalogue of every event, in display order.
    ///
    /// # Errors
    /// When the store fails.
    fn definitions(&self) -> impl Future<Output = Result<Vec<MissionDefinition>, StoreError>> + Send;

    /// Every event of the programme, by start.
    ///
    /// # Errors
    /// When the store fails.
    fn programme_events(&self) -> impl Future<Output = Result<Vec<ProgrammeEvent>, StoreError>> + Send;

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
