//! The mission use cases: each runs the domain inside one transaction of
//! the store port and stages the events it produced in that transaction.
//! They speak domain types only, through [`crate::ports`].

use std::sync::Arc;

use kernel::{CustomerId, StoreError, StoreFailure};
use platform::db::now_millis;
use platform::store::retry_on_conflict;
use tracing::instrument;

use crate::domain::{
    Mission, MissionCode, MissionDefinition, MissionId, MissionRuleViolation, RewardId, RewardRecording,
};
use crate::ports::{MissionStore, MissionTx};

#[cfg(test)]
mod tests;

/// What a mission use case can answer besides success.
#[derive(Debug, thiserror::Error)]
pub enum MissionError {
    #[error("mission code {0} is not in the catalogue")]
    UnknownMissionCode(MissionCode),
    #[error("mission {0} does not exist")]
    MissionNotFound(MissionId),
    #[error(transparent)]
    Rule(#[from] MissionRuleViolation),
    #[error(transparent)]
    Storage(#[from] StoreError),
}

impl StoreFailure for MissionError {
    fn store_error(&self) -> Option<&StoreError> {
        match self {
            Self::Storage(error) => Some(error),
            _ => None,
        }
    }
}

/// The mission application service, over a store `S`.
#[derive(Debug)]
pub struct Missions<S> {
    store: Arc<S>,
}

impl<S> Clone for Missions<S> {
    fn clone(&self) -> Self {
        Self { store: Arc::clone(&self.store) }
    }
}

impl<S: MissionStore> Missions<S> {
    /// Use cases over `store`.
    pub fn new(store: S) -> Self {
        Self { store: Arc::new(store) }
    }

    /// The mission catalogue.
    ///
    /// # Errors
    /// When the store fails.
    pub async fn definitions(&self) -> Result<Vec<MissionDefinition>, MissionError> {
        Ok(self.store.definitions().await?)
    }

    /// A player achieves a mission. Idempotent per (customer, mission code):
    /// a retry returns the mission of the first call, and only the first
    /// call publishes MissionAchieved.
    ///
    /// # Errors
    /// [`MissionError::UnknownMissionCode`], or a store failure.
    // A refusal is an answer, not a fault: logged at debug (at ERROR, an open
    // breaker wrote a line per turned-away call, 1,000 a second in the
    // benchmark). Store failures are logged once where they become a status.
    #[instrument(skip_all, fields(customer_id = %customer, mission_code = %code), err(level = "debug"))]
    pub async fn achieve(&self, customer: CustomerId, code: MissionCode) -> Result<Mission, MissionError> {
        // Two concurrent first calls: the loser's insert is a duplicate; its
        // second decision finds the winner's mission.
        let (mission, first) = retry_on_conflict(|| {
            let (customer, code) = (customer.clone(), code.clone());
            self.store.write(move |tx| achieve_in(tx, &customer, &code))
        })
        .await?;
        if first {
            platform::metrics::metrics().missions_achieved.inc();
        }
        Ok(mission)
    }

    /// One mission by id.
    ///
    /// # Errors
    /// [`MissionError::MissionNotFound`], or a store failure.
    pub async fn get(&self, id: MissionId) -> Result<Mission, MissionError> {
        self.store.mission(id).await?.ok_or(MissionError::MissionNotFound(id))
    }

    /// Every mission of a player, newest first.
    ///
    /// # Errors
    /// When the store fails.
    pub async fn list(&self, customer: CustomerId) -> Result<Vec<Mission>, MissionError> {
        Ok(self.store.missions(customer).await?)
    }
}

/// The mission, and whether this call achieved it (rather than an earlier one).
fn achieve_in(
    tx: &mut dyn MissionTx,
    customer: &CustomerId,
    code: &MissionCode,
) -> Result<(Mission, bool), MissionError> {
    if let Some(existing) = tx.achieved(customer, code)? {
        return Ok((existing, false));
    }
    let definition = tx.definition(code)?.ok_or_else(|| MissionError::UnknownMissionCode(code.clone()))?;
    let (mission, event) = Mission::achieve(MissionId::generate(), customer.clone(), &definition, now_millis());
    tx.insert(&mission)?;
    tx.stage(&event)?;
    Ok((mission, true))
}

/// Policy effect: the reward context allocated `reward_id` for `mission_id`,
/// in the caller's transaction.
///
/// # Errors
/// [`MissionError::MissionNotFound`] when the mission is not (yet) here,
/// a rule violation for a second reward, or a store failure.
pub fn record_reward(
    tx: &mut dyn MissionTx,
    mission_id: MissionId,
    reward_id: RewardId,
) -> Result<RewardRecording, MissionError> {
    let mut mission = tx.mission(mission_id)?.ok_or(MissionError::MissionNotFound(mission_id))?;
    let recording = mission.record_reward(reward_id)?;
    if recording == RewardRecording::Recorded {
        tx.update(&mission)?;
    }
    Ok(recording)
}
