//! The mission use cases: each runs the domain inside one store transaction
//! and stages the events it produced in the outbox of that transaction.

use api::game::mission::v1 as pb;
use platform::db::{Database, DbConnection, DbError, is_unique_violation, now_millis};
use platform::events::timestamp;
use platform::kernel::CustomerId;
use platform::outbox::{self, OutboxSignal};
use tracing::instrument;

use crate::adapters::store;
use crate::domain::{Mission, MissionCode, MissionDefinition, MissionEvent, MissionId, RewardId, RewardRecording};

/// What a mission use case can answer besides success.
#[derive(Debug, thiserror::Error)]
pub enum MissionError {
    #[error("mission code {0} is not in the catalogue")]
    UnknownMissionCode(MissionCode),
    #[error("mission {0} does not exist")]
    MissionNotFound(MissionId),
    #[error(transparent)]
    Rule(#[from] crate::domain::MissionRuleViolation),
    #[error(transparent)]
    Storage(#[from] DbError),
}

impl From<diesel::result::Error> for MissionError {
    fn from(error: diesel::result::Error) -> Self {
        Self::Storage(DbError::from(error))
    }
}

/// The mission application service.
#[derive(Debug, Clone)]
pub struct Missions {
    db: Database,
    outbox: OutboxSignal,
}

impl Missions {
    /// Use cases over `db`, waking the relay through `outbox`.
    pub fn new(db: Database, outbox: OutboxSignal) -> Self {
        Self { db, outbox }
    }

    /// The mission catalogue.
    ///
    /// # Errors
    /// When the store fails.
    pub async fn definitions(&self) -> Result<Vec<MissionDefinition>, MissionError> {
        Ok(self.db.read(store::definitions).await?)
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
        let attempt =
            |customer: CustomerId, code: MissionCode| self.db.write(move |conn| achieve_in(conn, &customer, &code));
        let (mission, first) = match attempt(customer.clone(), code.clone()).await {
            // Two concurrent first calls: the loser's insert hit the unique
            // key; its retry finds the winner's mission.
            Err(MissionError::Storage(DbError::Query(ref e))) if is_unique_violation(e) => {
                attempt(customer, code).await?
            }
            other => other?,
        };
        if first {
            platform::metrics::metrics().missions_achieved.inc();
            self.outbox.wake();
        }
        Ok(mission)
    }

    /// One mission by id.
    ///
    /// # Errors
    /// [`MissionError::MissionNotFound`], or a store failure.
    pub async fn get(&self, id: MissionId) -> Result<Mission, MissionError> {
        self.db.read(move |conn| store::find(conn, id)?.ok_or(MissionError::MissionNotFound(id))).await
    }

    /// Every mission of a player, newest first.
    ///
    /// # Errors
    /// When the store fails.
    pub async fn list(&self, customer: CustomerId) -> Result<Vec<Mission>, MissionError> {
        Ok(self.db.read(move |conn| store::list(conn, &customer)).await?)
    }
}

/// The mission, and whether this call achieved it (rather than an earlier one).
fn achieve_in(
    conn: &mut DbConnection,
    customer: &CustomerId,
    code: &MissionCode,
) -> Result<(Mission, bool), MissionError> {
    if let Some(existing) = store::find_achieved(conn, customer, code)? {
        return Ok((existing, false));
    }
    let definition = store::definition(conn, code)?.ok_or_else(|| MissionError::UnknownMissionCode(code.clone()))?;
    let (mission, event) = Mission::achieve(MissionId::generate(), customer.clone(), &definition, now_millis());
    store::insert(conn, &mission)?;
    let MissionEvent::Achieved { mission: achieved } = event;
    outbox::stage(conn, &mission_achieved(&achieved))?;
    Ok((mission, true))
}

/// The published form of MissionAchieved.
fn mission_achieved(mission: &Mission) -> pb::MissionAchieved {
    pb::MissionAchieved {
        // Derived from the mission id, so a re-staged copy could never be a
        // second, different event.
        event_id: platform::kernel::derived_uuid(mission.id.as_uuid(), b"MissionAchieved").to_string(),
        mission_id: mission.id.to_string(),
        customer_id: mission.customer_id.to_string(),
        mission_code: mission.code.to_string(),
        reward_points: mission.reward_points.value(),
        achieved_at: Some(timestamp(mission.achieved_at)),
    }
}

/// Policy effect: the reward context allocated `reward_id` for `mission_id`.
///
/// # Errors
/// [`MissionError::MissionNotFound`] when the mission is not (yet) here,
/// a rule violation for a second reward, or a store failure.
pub fn record_reward(
    conn: &mut DbConnection,
    mission_id: MissionId,
    reward_id: RewardId,
) -> Result<RewardRecording, MissionError> {
    let mut mission = store::find(conn, mission_id)?.ok_or(MissionError::MissionNotFound(mission_id))?;
    let recording = mission.record_reward(reward_id)?;
    if recording == RewardRecording::Recorded {
        store::update(conn, &mission)?;
    }
    Ok(recording)
}
