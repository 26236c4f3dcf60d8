//! The mission use cases: each runs the domain inside one transaction of
//! the store port and stages the events it produced in that transaction.
//! They speak domain types only, through [`crate::ports`].

use std::sync::Arc;

use kernel::{CustomerId, StoreError, StoreFailure};
use platform::store::retry_on_conflict;
use tracing::instrument;

use crate::domain::programme::{AchievementId, Operator, ProgrammeEvent, ProgrammeEventId, ProgrammeRuleViolation};
use crate::domain::{
    AchieveRefusal, Achievement, AchievementIdRequired, Mission, MissionCode, MissionDefinition, MissionId,
    MissionRuleViolation, ProgrammeChange, RewardId, RewardRecording,
};
use crate::ports::{Clock, MissionStore, MissionTx};

#[cfg(test)]
mod tests;

/// What a mission use case can answer besides success.
#[derive(Debug, thiserror::Error)]
pub enum MissionError {
    #[error("mission code {0} is not in the catalogue")]
    UnknownMissionCode(MissionCode),
    #[error("mission {0} does not exist")]
    MissionNotFound(MissionId),
    #[error("event {0} is not in the programme")]
    UnknownEvent(ProgrammeEventId),
    #[error(transparent)]
    AchievementIdRequired(#[from] AchievementIdRequired),
    #[error("achievement {achievement_id} of {customer} was mission {recorded}, not {offered}")]
    AchievementIdReused {
        achievement_id: AchievementId,
        customer: CustomerId,
        recorded: MissionCode,
        offered: MissionCode,
    },
    #[error("event {0} is scheduled already, with another title or window")]
    EventScheduledOtherwise(ProgrammeEventId),
    #[error("mission code {code} is taken by another definition, in event {event}")]
    MissionDefinedOtherwise { code: MissionCode, event: ProgrammeEventId },
    #[error(transparent)]
    Rule(#[from] MissionRuleViolation),
    #[error(transparent)]
    Programme(#[from] ProgrammeRuleViolation),
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

impl From<AchieveRefusal> for MissionError {
    fn from(refusal: AchieveRefusal) -> Self {
        match refusal {
            AchieveRefusal::AchievementIdRequired(required) => Self::AchievementIdRequired(required),
            AchieveRefusal::Programme(violation) => Self::Programme(violation),
        }
    }
}

/// The mission application service, over a store `S`.
#[derive(Debug)]
pub struct Missions<S> {
    store: Arc<S>,
    clock: Arc<dyn Clock>,
}

impl<S> Clone for Missions<S> {
    fn clone(&self) -> Self {
        Self { store: Arc::clone(&self.store), clock: Arc::clone(&self.clock) }
    }
}

impl<S: MissionStore> Missions<S> {
    /// Use cases over `store`, telling the time by `clock`.
    pub fn new(store: S, clock: impl Clock) -> Self {
        Self { store: Arc::new(store), clock: Arc::new(clock) }
    }

    /// The catalogue players see: the missions of the events open now.
    ///
    /// # Errors
    /// When the store fails.
    pub async fn definitions(&self) -> Result<Vec<MissionDefinition>, MissionError> {
        let events = self.store.programme_events().await?;
        let open = kernel::programme::open_at(events.iter().map(|event| (&event.id, &event.window)), self.clock.now());
        let mut definitions = self.store.definitions().await?;
        definitions.retain(|definition| open.contains(&definition.event_id));
        Ok(definitions)
    }

    /// The catalogue of every event, open or not (operators).
    ///
    /// # Errors
    /// When the store fails.
    pub async fn all_definitions(&self) -> Result<Vec<MissionDefinition>, MissionError> {
        Ok(self.store.definitions().await?)
    }

    /// Every event of the programme, by start (operators).
    ///
    /// # Errors
    /// When the store fails.
    pub async fn programme_events(&self) -> Result<Vec<ProgrammeEvent>, MissionError> {
        Ok(self.store.programme_events().await?)
    }

    /// A player achieves a once-per-event mission, as clients that predate
    /// the programme call it: see [`Missions::record`].
    ///
    /// # Errors
    /// As [`Missions::record`].
    pub async fn achieve(&self, customer: CustomerId, code: MissionCode) -> Result<Mission, MissionError> {
        self.record(Achievement { customer_id: customer, code, achievement_id: None }).await
    }

    /// A player achieves a mission. Idempotent per (customer, mission code)
    /// for a once-per-event mission, and per (customer, achievement id) for a
    /// repeatable one: a retry returns the mission of the first call, and only
    /// the first call publishes MissionAchieved.
    ///
    /// # Errors
    /// [`MissionError::UnknownMissionCode`];
    /// [`MissionError::AchievementIdRequired`] for a repeatable mission
    /// without one; [`MissionError::AchievementIdReused`] for an achievement
    /// id given for another mission before; [`MissionError::Programme`]
    /// outside the event's window or beyond the mission's limit; or a store failure.
    // A refusal is an answer, not a fault: logged at debug (at ERROR, an open
    // breaker wrote a line per turned-away call, 1,000 a second in the
    // benchmark). Store failures are logged once where they become a status.
    #[instrument(
        skip_all,
        fields(customer_id = %achievement.customer_id, mission_code = %achievement.code),
        err(level = "debug")
    )]
    pub async fn record(&self, achievement: Achievement) -> Result<Mission, MissionError> {
        // Two concurrent calls racing for one slot (the first achievement,
        // or the last one the limit allows): the loser's insert is a
        // duplicate; its second decision finds the winner's mission, or the
        // slot taken and the limit reached.
        let (mission, first) = retry_on_conflict(|| {
            let (achievement, clock) = (achievement.clone(), Arc::clone(&self.clock));
            self.store.write(move |tx| achieve_in(tx, achievement, clock.now()))
        })
        .await?;
        if first {
            platform::metrics::metrics().missions_achieved.inc();
        }
        Ok(mission)
    }

    /// An operator schedules an event. Scheduling the same event again
    /// returns it and records nothing.
    ///
    /// # Errors
    /// [`MissionError::EventScheduledOtherwise`] when its id is taken by an
    /// event with another title or window, or a store failure.
    #[instrument(skip_all, fields(operator = operator.as_str(), event_id = %event.id), err(level = "debug"))]
    pub async fn schedule_event(
        &self,
        operator: Operator,
        event: ProgrammeEvent,
    ) -> Result<ProgrammeEvent, MissionError> {
        retry_on_conflict(|| {
            let (operator, event, clock) = (operator.clone(), event.clone(), Arc::clone(&self.clock));
            self.store.write(move |tx| schedule_in(tx, operator, event, clock.now()))
        })
        .await
    }

    /// An operator defines a mission in an event that has not ended.
    /// Defining the same mission again returns it and records nothing.
    ///
    /// # Errors
    /// [`MissionError::UnknownEvent`], [`MissionError::Programme`] when the
    /// event ended, [`MissionError::MissionDefinedOtherwise`] when its code
    /// is taken by another definition, or a store failure.
    #[instrument(skip_all, fields(operator = operator.as_str(), mission_code = %definition.code), err(level = "debug"))]
    pub async fn define_mission(
        &self,
        operator: Operator,
        definition: MissionDefinition,
    ) -> Result<MissionDefinition, MissionError> {
        retry_on_conflict(|| {
            let (operator, definition, clock) = (operator.clone(), definition.clone(), Arc::clone(&self.clock));
            self.store.write(move |tx| define_in(tx, operator, definition, clock.now()))
        })
        .await
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
fn achieve_in(tx: &mut dyn MissionTx, achievement: Achievement, now: i64) -> Result<(Mission, bool), MissionError> {
    let (customer, code) = (&achievement.customer_id, &achievement.code);
    // A retry is answered with the first call's mission, whatever the
    // window or the limit say by now.
    if let Some(achievement_id) = &achievement.achievement_id
        && let Some(existing) = tx.achieved_as(customer, achievement_id)?
    {
        if existing.code != *code {
            return Err(MissionError::AchievementIdReused {
                achievement_id: achievement_id.clone(),
                customer: customer.clone(),
                recorded: existing.code,
                offered: code.clone(),
            });
        }
        return Ok((existing, false));
    }
    let (definition, event) =
        tx.definition_in_event(code)?.ok_or_else(|| MissionError::UnknownMissionCode(code.clone()))?;
    if !definition.limit.is_repeatable()
        && let Some(existing) = tx.achieved(customer, code)?
    {
        return Ok((existing, false));
    }
    let event = event.ok_or_else(|| MissionError::UnknownEvent(definition.event_id.clone()))?;
    // A once-per-event mission the player has not achieved has no slot
    // taken: the read above already said so.
    let taken = if definition.limit.is_repeatable() { tx.slots_taken(customer, code)? } else { Vec::new() };
    let (mission, event) = Mission::achieve(MissionId::generate(), achievement, &definition, &event, &taken, now)?;
    tx.insert(&mission)?;
    tx.stage(&event)?;
    Ok((mission, true))
}

fn schedule_in(
    tx: &mut dyn MissionTx,
    operator: Operator,
    event: ProgrammeEvent,
    now: i64,
) -> Result<ProgrammeEvent, MissionError> {
    if let Some(existing) = tx.programme_event(&event.id)? {
        return if existing == event { Ok(existing) } else { Err(MissionError::EventScheduledOtherwise(event.id)) };
    }
    tx.insert_programme_event(&event)?;
    tx.stage_change(&ProgrammeChange::EventScheduled { event: event.clone(), operator, changed_at: now })?;
    Ok(event)
}

fn define_in(
    tx: &mut dyn MissionTx,
    operator: Operator,
    definition: MissionDefinition,
    now: i64,
) -> Result<MissionDefinition, MissionError> {
    if let Some(existing) = tx.definition(&definition.code)? {
        return if existing == definition {
            Ok(existing)
        } else {
            Err(MissionError::MissionDefinedOtherwise { code: definition.code, event: existing.event_id })
        };
    }
    let event = tx
        .programme_event(&definition.event_id)?
        .ok_or_else(|| MissionError::UnknownEvent(definition.event_id.clone()))?;
    event.check_not_ended(now)?;
    tx.insert_definition(&definition)?;
    tx.stage_change(&ProgrammeChange::MissionDefined { definition: definition.clone(), operator, changed_at: now })?;
    Ok(definition)
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
