//! The mission store on diesel (SQLite or PostgreSQL): the [`MissionStore`]
//! port, rows to aggregates and back, optimistic concurrency on every
//! update, and events staged in the outbox of the same transaction.

use diesel::prelude::*;
use kernel::{CustomerId, Points};
use platform::db::{CorruptRow, Database, DbConnection, DbError};
use platform::outbox::OutboxSignal;
use platform::store::{self, DbTx, StoreError};

use crate::adapters::events;
use crate::domain::{Mission, MissionCode, MissionDefinition, MissionEvent, MissionId, MissionStatus, RewardId};
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

    fn mission(&mut self, id: MissionId) -> Result<Option<Mission>, StoreError> {
        Ok(find(self.conn(), id)?)
    }

    fn achieved(&mut self, customer: &CustomerId, code: &MissionCode) -> Result<Option<Mission>, StoreError> {
        Ok(find_achieved(self.conn(), customer, code)?)
    }

    fn insert(&mut self, mission: &Mission) -> Result<(), StoreError> {
        Ok(insert(self.conn(), mission)?)
    }

    fn update(&mut self, mission: &Mission) -> Result<(), StoreError> {
        Ok(update(self.conn(), mission)?)
    }

    fn stage(&mut self, event: &MissionEvent) -> Result<(), StoreError> {
        match event {
            MissionEvent::Achieved { mission } => DbTx::stage(self, &events::mission_achieved(mission)),
        }
    }
}

diesel::table! {
    mission_definitions (mission_code) {
        mission_code -> Text,
        title -> Text,
        reward_points -> BigInt,
        position -> Integer,
    }
}

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
        }
    }
}

#[derive(Queryable)]
struct DefinitionRow {
    mission_code: String,
    title: String,
    reward_points: i64,
}

impl TryFrom<DefinitionRow> for MissionDefinition {
    type Error = CorruptRow;

    fn try_from(row: DefinitionRow) -> Result<Self, CorruptRow> {
        let corrupt = |reason: String| CorruptRow::new("mission definition", &row.mission_code, reason);
        Ok(Self {
            code: MissionCode::parse(&row.mission_code).map_err(|e| corrupt(e.to_string()))?,
            reward_points: Points::new(row.reward_points).map_err(|e| corrupt(e.to_string()))?,
            title: row.title,
        })
    }
}

fn definitions(conn: &mut DbConnection) -> Result<Vec<MissionDefinition>, DbError> {
    let rows: Vec<DefinitionRow> = mission_definitions::table
        .order(mission_definitions::position.asc())
        .select((mission_definitions::mission_code, mission_definitions::title, mission_definitions::reward_points))
        .load(conn)?;
    Ok(rows.into_iter().map(MissionDefinition::try_from).collect::<Result<_, _>>()?)
}

fn definition(conn: &mut DbConnection, code: &MissionCode) -> Result<Option<MissionDefinition>, DbError> {
    let row: Option<DefinitionRow> = mission_definitions::table
        .filter(mission_definitions::mission_code.eq(code.as_str()))
        .select((mission_definitions::mission_code, mission_definitions::title, mission_definitions::reward_points))
        .first(conn)
        .optional()?;
    Ok(row.map(MissionDefinition::try_from).transpose()?)
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
        .select(MissionRow::as_select())
        .first(conn)
        .optional()?;
    Ok(row.map(Mission::try_from).transpose()?)
}

fn list(conn: &mut DbConnection, customer: &CustomerId) -> Result<Vec<Mission>, DbError> {
    let rows: Vec<MissionRow> = missions::table
        .filter(missions::customer_id.eq(customer.as_str()))
        .order((missions::achieved_at.desc(), missions::mission_id.asc()))
        .select(MissionRow::as_select())
        .load(conn)?;
    Ok(rows.into_iter().map(Mission::try_from).collect::<Result<_, _>>()?)
}

/// A unique violation (a `Duplicate`) means the player achieved this mission
/// concurrently; the use case decides again.
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
