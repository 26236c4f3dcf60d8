//! The reward use cases: the query served over gRPC, and the policy effects
//! that run inside the consumer's inbox transaction, staging the events they
//! produce in that same transaction. They speak domain types only, through
//! [`crate::ports`].

use std::sync::Arc;

use kernel::StoreError;
use platform::db::now_millis;

use crate::domain::{AchievedMission, Reward, RewardId, RewardRuleViolation};
use crate::ports::{RewardStore, RewardTx};

#[cfg(test)]
mod tests;

/// What a reward use case can answer besides success.
#[derive(Debug, thiserror::Error)]
pub enum RewardError {
    #[error("reward {0} does not exist")]
    RewardNotFound(RewardId),
    #[error(transparent)]
    Rule(#[from] RewardRuleViolation),
    #[error(transparent)]
    Storage(#[from] StoreError),
}

/// The reward application service (queries; the commands are policies),
/// over a store `S`.
#[derive(Debug)]
pub struct Rewards<S> {
    store: Arc<S>,
}

impl<S> Clone for Rewards<S> {
    fn clone(&self) -> Self {
        Self { store: Arc::clone(&self.store) }
    }
}

impl<S: RewardStore> Rewards<S> {
    /// Use cases over `store`.
    pub fn new(store: S) -> Self {
        Self { store: Arc::new(store) }
    }

    /// One reward by id.
    ///
    /// # Errors
    /// [`RewardError::RewardNotFound`], or a store failure.
    pub async fn get(&self, id: RewardId) -> Result<Reward, RewardError> {
        self.store.reward(id).await?.ok_or(RewardError::RewardNotFound(id))
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
/// (a concurrent allocation for the same mission is a `Conflict`, and
/// applying the event again finds the reward).
pub fn allocate(tx: &mut dyn RewardTx, mission: AchievedMission) -> Result<Allocation, RewardError> {
    if let Some(existing) = tx.reward_for_mission(mission.mission_id)? {
        return Ok(Allocation::AlreadyAllocated(existing.id));
    }
    let (reward, event) = Reward::allocate(mission, now_millis())?;
    tx.insert(&reward)?;
    tx.stage(&event)?;
    // Per event, so at debug: the RewardAllocated event is the record, and a
    // line per mission cost the service about 7 % of its CPU (docs/performance.md).
    tracing::debug!(reward_id = %reward.id, mission_id = %reward.mission_id, points = reward.points.value(), "reward allocated");
    Ok(Allocation::Allocated(reward.id))
}

/// What the wallet did with a reward, as far as the reward's status goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WalletStep {
    /// The reward entered the player's wallet (RewardIssued).
    Issued,
    /// The player exchanged it for a gift (RewardExchanged).
    Exchanged,
    /// Its points expired unspent (PointsExpired).
    Expired,
}

/// Policy effect: the wallet took `step` with the reward. Returns whether the
/// reward's status changed; a status already at or past the step stays.
///
/// # Errors
/// [`RewardError::RewardNotFound`] when the reward is not (yet) allocated
/// here, or a store failure.
pub fn follow_wallet(tx: &mut dyn RewardTx, id: RewardId, step: WalletStep) -> Result<bool, RewardError> {
    let mut reward = tx.reward(id)?.ok_or(RewardError::RewardNotFound(id))?;
    let changed = match step {
        WalletStep::Issued => reward.issue(),
        WalletStep::Exchanged => reward.exchange(),
        WalletStep::Expired => reward.expire(),
    };
    if changed {
        tx.update(&reward)?;
        tracing::debug!(reward_id = %reward.id, status = ?reward.status, "reward status moved forward");
    } else {
        // A late or repeated wallet event: the status is already there or past it.
        tracing::debug!(reward_id = %reward.id, status = ?reward.status, ?step, "reward status unchanged");
    }
    Ok(changed)
}
