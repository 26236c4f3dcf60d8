//! The mission store on diesel (SQLite or PostgreSQL): the [`MissionStore`]
//! port, rows to aggregates and back, optimistic concurrency on every
//! update, and events staged in the outbox of the same transaction.

use diesel::prelude::*;
use kernel::{CustomerId, Points};
use platform::db::{CorruptRow, Database, DbConnection, DbError};
use platform::outbox::OutboxSignal;
use platform::store::{self, DbTx, StoreError};

use std::num::NonZeroU32;

use crate::adapters::events;
use crate::domain::programme::{AchievementId, MissionLimit, ProgrammeEvent, ProgrammeEventId, Slot, Window};
use crate::domain::{
    Mission, MissionCode, MissionDefinition, MissionEvent, MissionId, MissionStatus, ProgrammeChange, RewardId,
};
use crate::ports::{MissionStore, MissionTx};

/// The mission store in the service's database.
#[derive(Debug, Clone)]
pub struct DieselMissionStore {
    db: Database,
    /// Woken after a transaction that staged events.
    outbox: OutboxSignal,
}

impl DieselMissionStore {
    /// The store in `db`, waking the relay through `outbox`.
    pub fn new(db: Database, outbox: OutboxSignal) -> Self {
        Self { db, outbox }
    }
}

impl MissionStore for DieselMissionStore {
    async fn write<T, E, F>(&self, work: F) -> Result<T, E>
    where
        F: FnOnce(&mut dyn MissionTx) -> Result<T, E> + Send + 'static,
        T: Send + 'static,
        E: From<StoreError> + Send + 'static,
    {
        store::write(&self.db, &self.outbox, move |tx| work(tx)).await
    }

    async fn definitions(&self) -> Result<Vec<MissionDefinition>, StoreError> {
        store::read(&self.db, definitions).await
    }

    async fn programme_events(&self) -> Result<Vec<ProgrammeEvent>, StoreError> {
        store::read(&self.db, programme_events).await
    }

    async fn mission(&self, id: MissionId) -> Result<Option<Mission>, StoreError> {
        store::read(&self.db, move |conn| find(conn, id)).await
    }

    async fn missions(&self, customer: CustomerId) -> Result<Vec<Mission>, StoreError> {
        store::read(&self.db, move |conn| list(conn, &customer)).await
    }
}

/// The mission store within a transaction open on the database: the one
/// [`DieselMissionStore::write`] runs, or the consumer's applying a policy.
impl MissionTx for DbTx<'_> {
    fn definition(&mut self, code: &MissionCode) -> Result<Option<MissionDefinition>, StoreError> {
        Ok(definition(self.conn(), code)?)
    }

    fn programme_event(&mut self, id: &ProgrammeEventId) -> Result<Option<ProgrammeEvent>, StoreError> {
        Ok(programme_event(self.conn(), id)?)
    }

    fn definition_in_event(
        &mut self,
        code: &MissionCode,
    ) -> Result<Option<(MissionDefinition, Option<ProgrammeEvent>)>, StoreError> {
        Ok(definition_in_event(self.conn(), code)?)
    }

    fn mission(&mut self, id: MissionId) -> Result<Option<Mission>, StoreError> {
        Ok(find(self.conn(), id)?)
    }

    fn achieved(&mut self, customer: &CustomerId, code: &MissionCode) -> Result<Option<Mission>, StoreError> {
        Ok(find_achieved(self.conn(), customer, code)?)
    }

    fn achieved_as(
        &mut self,
        customer: &CustomerId,
        achievement_id: &AchievementId,
    ) -> Result<Option<Mission>, StoreError> {
        Ok(find_achieved_as(self.conn(), customer, achievement_id)?)
    }

    fn slots_taken(&mut self, customer: &CustomerId, code: &MissionCode) -> Result<Vec<Slot>, StoreError> {
        Ok(slots_taken(self.conn(), customer, code)?)
    }

    fn insert(&mut self, mission: &Mission) -> Result<(), StoreError> {
        Ok(insert(self.conn(), mission)?)
    }

    fn insert_programme_event(&mut self, event: &ProgrammeEvent) -> Result<(), StoreError> {
        diesel::insert_into(programme_events::table)
            .values(ProgrammeEventRow::from(event))
            .execute(self.conn())
            .map_err(DbError::from)?;
        Ok(())
    }

    fn insert_definition(&mut self, definition: &MissionDefinition) -> Result<(), StoreError> {
        Ok(insert_definition(self.conn(), definition)?)
    }

    fn update(&mut self, mission: &Mission) -> Result<(), StoreError> {
        Ok(update(self.conn(), mission)?)
    }

    fn stage(&mut self, event: &MissionEvent) -> Result<(), StoreError> {
        match event {
            MissionEvent::Achieved { mission } => DbTx::stage(self, &events::mission_achieved(mission)),
        }
    }

    fn stage_change(&mut self, change: &ProgrammeChange) -> Result<(), StoreError> {
        match change {
            ProgrammeChange::EventScheduled { event, operator, changed_at } => {
                DbTx::stage(self, &events::event_scheduled(event, operator, *changed_at))
            }
            ProgrammeChange::MissionDefined { definition, operator, changed_at } => {
                DbTx::stage(self, &events::mission_defined(definition, operator, *changed_at))
            }
        }
    }
}

diesel::table! {
    programme_events (programme_event_id) {
        programme_event_id -> Text,
        title -> Text,
        starts_at -> BigInt,
        ends_at -> Nullable<BigInt>,
    }
}

diesel::table! {
    mission_definitions (mission_code) {
        mission_code -> Text,
        title -> Text,
        reward_points -> BigInt,
        position -> Integer,
        programme_event_id -> Text,
        limit_kind -> Integer,
        limit_times -> Nullable<Integer>,
    }
}

diesel::allow_tables_to_appear_in_same_query!(mission_definitions, programme_events);

diesel::table! {
    missions (mission_id) {
        mission_id -> Text,
        customer_id -> Text,
        mission_code -> Text,
        status -> Integer,
        reward_id -> Nullable<Text>,
        reward_points -> BigInt,
        achieved_at -> BigInt,
        version -> BigInt,
        programme_event_id -> Text,
        event_ends_at -> Nullable<BigInt>,
        slot -> BigInt,
        achievement_id -> Nullable<Text>,
    }
}

#[derive(Queryable, Selectable, Insertable)]
#[diesel(table_name = missions)]
struct MissionRow {
    mission_id: String,
    customer_id: String,
    mission_code: String,
    status: i32,
    reward_id: Option<String>,
    reward_points: i64,
    achieved_at: i64,
    version: i64,
    programme_event_id: String,
    event_ends_at: Option<i64>,
    slot: i64,
    achievement_id: Option<String>,
}

const ACHIEVED: i32 = 1;
const REWARDED: i32 = 2;

impl TryFrom<MissionRow> for Mission {
    type Error = CorruptRow;

    fn try_from(row: MissionRow) -> Result<Self, CorruptRow> {
        let corrupt = |reason: String| CorruptRow::new("mission", &row.mission_id, reason);
        Ok(Self {
            id: MissionId::parse(&row.mission_id).map_err(|e| corrupt(format!("mission_id {e}")))?,
            customer_id: CustomerId::parse(&row.customer_id).map_err(|e| corrupt(format!("customer_id {e}")))?,
            code: MissionCode::parse(&row.mission_code).map_err(|e| corrupt(format!("mission_code {e}")))?,
            status: match row.status {
                ACHIEVED => MissionStatus::Achieved,
                REWARDED => MissionStatus::Rewarded,
                other => return Err(corrupt(format!("status {other}"))),
            },
            reward_id: row
                .reward_id
                .as_deref()
                .map(RewardId::parse)
                .transpose()
                .map_err(|e| corrupt(format!("reward_id {e}")))?,
            reward_points: Points::new(row.reward_points).map_err(|e| corrupt(e.to_string()))?,
            achieved_at: row.achieved_at,
            version: row.version,
            event_id: ProgrammeEventId::parse(&row.programme_event_id)
                .map_err(|e| corrupt(format!("programme_event_id {e}")))?,
            event_ends_at: row.event_ends_at,
            slot: Slot::from_stored(row.slot),
            achievement_id: row
                .achievement_id
                .as_deref()
                .map(AchievementId::parse)
                .transpose()
                .map_err(|e| corrupt(format!("achievement_id {e}")))?,
        })
    }
}

impl From<&Mission> for MissionRow {
    fn from(mission: &Mission) -> Self {
        Self {
            mission_id: mission.id.to_string(),
            customer_id: mission.customer_id.to_string(),
            mission_code: mission.code.to_string(),
            status: match mission.status {
                MissionStatus::Achieved => ACHIEVED,
                MissionStatus::Rewarded => REWARDED,
            },
            reward_id: mission.reward_id.map(|r| r.to_string()),
            reward_points: mission.reward_points.value(),
            achieved_at: mission.achieved_at,
            version: mission.version,
            programme_event_id: mission.event_id.to_string(),
            event_ends_at: mission.event_ends_at,
            slot: mission.slot.value(),
            achievement_id: mission.achievement_id.as_ref().map(ToString::to_string),
        }
    }
}

#[derive(Queryable, Selectable, Insertable)]
#[diesel(table_name = programme_events)]
struct ProgrammeEventRow {
    programme_event_id: String,
    title: String,
    starts_at: i64,
    ends_at: Option<i64>,
}

impl TryFrom<ProgrammeEventRow> for ProgrammeEvent {
    type Error = CorruptRow;

    fn try_from(row: ProgrammeEventRow) -> Result<Self, CorruptRow> {
        let corrupt = |reason: String| CorruptRow::new("programme event", &row.programme_event_id, reason);
        Ok(Self {
            id: ProgrammeEventId::parse(&row.programme_event_id).map_err(|e| corrupt(e.to_string()))?,
            window: match row.ends_at {
                Some(ends_at) => Window::new(row.starts_at, ends_at).map_err(|e| corrupt(format!("ends_at {e}")))?,
                None => Window::open_ended(row.starts_at),
            },
            title: row.title,
        })
    }
}

impl From<&ProgrammeEvent> for ProgrammeEventRow {
    fn from(event: &ProgrammeEvent) -> Self {
        Self {
            programme_event_id: event.id.to_string(),
            title: event.title.clone(),
            starts_at: event.window.starts_at(),
            ends_at: event.window.ends_at(),
        }
    }
}

/// How a limit is stored: its kind, and the count of `TIMES`.
const LIMIT_ONCE: i32 = 1;
const LIMIT_TIMES: i32 = 2;
const LIMIT_DAILY: i32 = 3;

#[derive(Queryable, Selectable)]
#[diesel(table_name = mission_definitions)]
struct DefinitionRow {
    mission_code: String,
    title: String,
    reward_points: i64,
    programme_event_id: String,
    limit_kind: i32,
    limit_times: Option<i32>,
}

impl TryFrom<DefinitionRow> for MissionDefinition {
    type Error = CorruptRow;

    fn try_from(row: DefinitionRow) -> Result<Self, CorruptRow> {
        let corrupt = |reason: String| CorruptRow::new("mission definition", &row.mission_code, reason);
        let times = || {
            row.limit_times
                .and_then(|times| u32::try_from(times).ok())
                .and_then(NonZeroU32::new)
                .ok_or_else(|| corrupt(format!("limit_times {:?}", row.limit_times)))
        };
        Ok(Self {
            code: MissionCode::parse(&row.mission_code).map_err(|e| corrupt(e.to_string()))?,
            reward_points: Points::new(row.reward_points).map_err(|e| corrupt(e.to_string()))?,
            event_id: ProgrammeEventId::parse(&row.programme_event_id)
                .map_err(|e| corrupt(format!("programme_event_id {e}")))?,
            limit: match row.limit_kind {
                LIMIT_ONCE => MissionLimit::Once,
                LIMIT_TIMES => MissionLimit::Times(times()?),
                LIMIT_DAILY => MissionLimit::Daily,
                other => return Err(corrupt(format!("limit_kind {other}"))),
            },
            title: row.title,
        })
    }
}

fn definitions(conn: &mut DbConnection) -> Result<Vec<MissionDefinition>, DbError> {
    let rows: Vec<DefinitionRow> = mission_definitions::table
        // Two operators defining missions at once may give both the same
        // position: the code breaks the tie.
        .order((mission_definitions::position.asc(), mission_definitions::mission_code.asc()))
        .select(DefinitionRow::as_select())
        .load(conn)?;
    Ok(rows.into_iter().map(MissionDefinition::try_from).collect::<Result<_, _>>()?)
}

fn definition(conn: &mut DbConnection, code: &MissionCode) -> Result<Option<MissionDefinition>, DbError> {
    let row: Option<DefinitionRow> = mission_definitions::table
        .filter(mission_definitions::mission_code.eq(code.as_str()))
        .select(DefinitionRow::as_select())
        .first(conn)
        .optional()?;
    Ok(row.map(MissionDefinition::try_from).transpose()?)
}

/// One read on the hot path of every achievement, instead of two.
fn definition_in_event(
    conn: &mut DbConnection,
    code: &MissionCode,
) -> Result<Option<(MissionDefinition, Option<ProgrammeEvent>)>, DbError> {
    let row: Option<(DefinitionRow, Option<ProgrammeEventRow>)> = mission_definitions::table
        .left_join(
            programme_events::table
                .on(programme_events::programme_event_id.eq(mission_definitions::programme_event_id)),
        )
        .filter(mission_definitions::mission_code.eq(code.as_str()))
        .select((DefinitionRow::as_select(), Option::<ProgrammeEventRow>::as_select()))
        .first(conn)
        .optional()?;
    let Some((definition, event)) = row else { return Ok(None) };
    Ok(Some((MissionDefinition::try_from(definition)?, event.map(ProgrammeEvent::try_from).transpose()?)))
}

/// A unique violation (a `Duplicate`) means the code was defined
/// concurrently; the use case decides again.
fn insert_definition(conn: &mut DbConnection, definition: &MissionDefinition) -> Result<(), DbError> {
    let last: Option<i32> =
        mission_definitions::table.select(diesel::dsl::max(mission_definitions::position)).first(conn)?;
    let (limit_kind, limit_times) = match definition.limit {
        MissionLimit::Once => (LIMIT_ONCE, None),
        MissionLimit::Times(times) => (LIMIT_TIMES, Some(i32::try_from(times.get()).unwrap_or(i32::MAX))),
        MissionLimit::Daily => (LIMIT_DAILY, None),
    };
    diesel::insert_into(mission_definitions::table)
        .values((
            mission_definitions::mission_code.eq(definition.code.as_str()),
            mission_definitions::title.eq(&definition.title),
            mission_definitions::reward_points.eq(definition.reward_points.value()),
            mission_definitions::position.eq(last.unwrap_or(0) + 1),
            mission_definitions::programme_event_id.eq(definition.event_id.as_str()),
            mission_definitions::limit_kind.eq(limit_kind),
            mission_definitions::limit_times.eq(limit_times),
        ))
        .execute(conn)?;
    Ok(())
}

fn programme_events(conn: &mut DbConnection) -> Result<Vec<ProgrammeEvent>, DbError> {
    let rows: Vec<ProgrammeEventRow> = programme_events::table
        .order((programme_events::starts_at.asc(), programme_events::programme_event_id.asc()))
        .select(ProgrammeEventRow::as_select())
        .load(conn)?;
    Ok(rows.into_iter().map(ProgrammeEvent::try_from).collect::<Result<_, _>>()?)
}

fn programme_event(conn: &mut DbConnection, id: &ProgrammeEventId) -> Result<Option<ProgrammeEvent>, DbError> {
    let row: Option<ProgrammeEventRow> = programme_events::table
        .filter(programme_events::programme_event_id.eq(id.as_str()))
        .select(ProgrammeEventRow::as_select())
        .first(conn)
        .optional()?;
    Ok(row.map(ProgrammeEvent::try_from).transpose()?)
}

fn find(conn: &mut DbConnection, id: MissionId) -> Result<Option<Mission>, DbError> {
    let row: Option<MissionRow> = missions::table
        .filter(missions::mission_id.eq(id.to_string()))
        .select(MissionRow::as_select())
        .first(conn)
        .optional()?;
    Ok(row.map(Mission::try_from).transpose()?)
}

fn find_achieved(
    conn: &mut DbConnection,
    customer: &CustomerId,
    code: &MissionCode,
) -> Result<Option<Mission>, DbError> {
    let row: Option<MissionRow> = missions::table
        .filter(missions::customer_id.eq(customer.as_str()))
        .filter(missions::mission_code.eq(code.as_str()))
        .order(missions::slot.asc())
        .select(MissionRow::as_select())
        .first(conn)
        .optional()?;
    Ok(row.map(Mission::try_from).transpose()?)
}

fn find_achieved_as(
    conn: &mut DbConnection,
    customer: &CustomerId,
    achievement_id: &AchievementId,
) -> Result<Option<Mission>, DbError> {
    let row: Option<MissionRow> = missions::table
        .filter(missions::customer_id.eq(customer.as_str()))
        .filter(missions::achievement_id.eq(achievement_id.as_str()))
        .select(MissionRow::as_select())
        .first(conn)
        .optional()?;
    Ok(row.map(Mission::try_from).transpose()?)
}

fn slots_taken(conn: &mut DbConnection, customer: &CustomerId, code: &MissionCode) -> Result<Vec<Slot>, DbError> {
    let slots: Vec<i64> = missions::table
        .filter(missions::customer_id.eq(customer.as_str()))
        .filter(missions::mission_code.eq(code.as_str()))
        .order(missions::slot.asc())
        .select(missions::slot)
        .load(conn)?;
    Ok(slots.into_iter().map(Slot::from_stored).collect())
}

fn list(conn: &mut DbConnection, customer: &CustomerId) -> Result<Vec<Mission>, DbError> {
    let rows: Vec<MissionRow> = missions::table
        .filter(missions::customer_id.eq(customer.as_str()))
        .order((missions::achieved_at.desc(), missions::mission_id.asc()))
        .select(MissionRow::as_select())
        .load(conn)?;
    Ok(rows.into_iter().map(Mission::try_from).collect::<Result<_, _>>()?)
}

/// A unique violation (a `Duplicate`) means the player took the same slot of
/// this mission, or used the same achievement id, concurrently; the use case
/// decides again.
fn insert(conn: &mut DbConnection, mission: &Mission) -> Result<(), DbError> {
    diesel::insert_into(missions::table).values(MissionRow::from(mission)).execute(conn)?;
    Ok(())
}

fn update(conn: &mut DbConnection, mission: &Mission) -> Result<(), DbError> {
    let row = MissionRow::from(mission);
    let updated = diesel::update(
        missions::table
            .filter(missions::mission_id.eq(&row.mission_id))
            .filter(missions::version.eq(mission.version - 1)),
    )
    .set((missions::status.eq(row.status), missions::reward_id.eq(&row.reward_id), missions::version.eq(row.version)))
    .execute(conn)?;
    if updated == 0 {
        return Err(DbError::Conflict { entity: "mission", key: mission.id.to_string() });
    }
    Ok(())
}
