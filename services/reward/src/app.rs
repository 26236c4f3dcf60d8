//! The reward use cases: the query served over gRPC, and the policy effects
//! that run inside the consumer's inbox transaction, staging the events they
//! produce in the outbox of that same transaction.

use api::game::reward::v1 as pb;
use platform::db::{Database, DbConnection, DbError, now_millis};
use platform::events::timestamp;
use platform::outbox;

use crate::adapters::store;
use crate::domain::{AchievedMission, Reward, RewardEvent, RewardId, RewardRuleViolation};

/// What a reward use case can answer besides success.
#[derive(Debug, thiserror::Error)]
pub enum RewardError {
    #[error("reward {0} does not exist")]
    RewardNotFound(RewardId),
    #[error(transparent)]
    Rule(#[from] RewardRuleViolation),
    #[error(transparent)]
    Storage(#[from] DbError),
}

impl From<diesel::result::Error> for RewardError {
    fn from(error: diesel::result::Error) -> Self {
        Self::Storage(DbError::from(error))
    }
}

/// The reward application service (queries; the commands are policies).
#[derive(Debug, Clone)]
pub struct Rewards {
    db: Database,
}

impl Rewards {
    /// Use cases over `db`.
    pub fn new(db: Database) -> Self {
        Self { db }
    }

    /// One reward by id.
    ///
    /// # Errors
    /// [`RewardError::RewardNotFound`], or a store failure.
    pub async fn get(&self, id: RewardId) -> Result<Reward, RewardError> {
        self.db.read(move |conn| store::find(conn, id)?.ok_or(RewardError::RewardNotFound(id))).await
    }
}

/// What allocating a reward for a mission did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Allocation {
    /// A new reward was allocated and RewardAllocated staged.
    Allocated(RewardId),
    /// The mission already had its reward: nothing to do.
    AlreadyAllocated(RewardId),
}

/// Policy effect: a mission was achieved; allocate its one reward unless it
/// already has it.
///
/// # Errors
/// A rule violation when the mission promised no points, or a store failure
/// (a concurrent allocation for the same mission surfaces as a transient
/// [`DbError::Conflict`], and its retry finds the reward).
pub fn allocate(conn: &mut DbConnection, mission: AchievedMission) -> Result<Allocation, RewardError> {
    if let Some(existing) = store::find_by_mission(conn, mission.mission_id)? {
        return Ok(Allocation::AlreadyAllocated(existing.id));
    }
    let (reward, event) = Reward::allocate(mission, now_millis())?;
    store::insert(conn, &reward)?;
    let RewardEvent::Allocated { reward: allocated } = event;
    outbox::stage(conn, &reward_allocated(&allocated))?;
    tracing::info!(reward_id = %reward.id, mission_id = %reward.mission_id, points = reward.points.value(), "reward allocated");
    Ok(Allocation::Allocated(reward.id))
}

/// What the wallet did with a reward, as far as the reward's status goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WalletStep {
    /// The reward entered the player's wallet (RewardIssued).
    Issued,
    /// The player exchanged it for a gift (RewardExchanged).
    Exchanged,
}

/// Policy effect: the wallet took `step` with the reward. Returns whether the
/// reward's status changed; a status already at or past the step stays.
///
/// # Errors
/// [`RewardError::RewardNotFound`] when the reward is not (yet) allocated
/// here, or a store failure.
pub fn follow_wallet(conn: &mut DbConnection, id: RewardId, step: WalletStep) -> Result<bool, RewardError> {
    let mut reward = store::find(conn, id)?.ok_or(RewardError::RewardNotFound(id))?;
    let changed = match step {
        WalletStep::Issued => reward.issue(),
        WalletStep::Exchanged => reward.exchange(),
    };
    if changed {
        store::update(conn, &reward)?;
        tracing::info!(reward_id = %reward.id, status = ?reward.status, "reward status moved forward");
    } else {
        // A late or repeated wallet event: the status is already there or past it.
        tracing::debug!(reward_id = %reward.id, status = ?reward.status, ?step, "reward status unchanged");
    }
    Ok(changed)
}

/// The published form of RewardAllocated.
fn reward_allocated(reward: &Reward) -> pb::RewardAllocated {
    pb::RewardAllocated {
        // Derived from the reward id, so a re-staged copy could never be a
        // second, different event.
        event_id: kernel::derived_uuid(reward.id.as_uuid(), b"RewardAllocated").to_string(),
        reward_id: reward.id.to_string(),
        mission_id: reward.mission_id.to_string(),
        customer_id: reward.customer_id.to_string(),
        mission_code: reward.mission_code.clone(),
        points: reward.points.value(),
        allocated_at: Some(timestamp(reward.allocated_at)),
    }
}
