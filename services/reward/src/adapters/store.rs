//! The reward store on diesel (SQLite or PostgreSQL): the [`RewardStore`]
//! port, rows to aggregates and back, optimistic concurrency on every
//! update, and events staged in the outbox of the same transaction.

use diesel::prelude::*;
use kernel::{CustomerId, Points};
use platform::db::{CorruptRow, Database, DbConnection, DbError, is_unique_violation};
use platform::store::{self, DbTx, StoreError};

use crate::adapters::events;
use crate::domain::{MissionId, Reward, RewardEvent, RewardId, RewardStatus};
use crate::ports::{RewardStore, RewardTx};

/// The reward store in the service's database.
#[derive(Debug, Clone)]
pub struct DieselRewardStore {
    db: Database,
}

impl DieselRewardStore {
    /// The store in `db`.
    pub fn new(db: Database) -> Self {
        Self { db }
    }
}

impl RewardStore for DieselRewardStore {
    async fn reward(&self, id: RewardId) -> Result<Option<Reward>, StoreError> {
        store::read(&self.db, move |conn| find(conn, id)).await
    }
}

/// The reward store within the consumer's transaction applying a policy.
impl RewardTx for DbTx<'_> {
    fn reward(&mut self, id: RewardId) -> Result<Option<Reward>, StoreError> {
        Ok(find(self.conn(), id)?)
    }

    fn reward_for_mission(&mut self, mission: MissionId) -> Result<Option<Reward>, StoreError> {
        Ok(find_by_mission(self.conn(), mission)?)
    }

    fn insert(&mut self, reward: &Reward) -> Result<(), StoreError> {
        Ok(insert(self.conn(), reward)?)
    }

    fn update(&mut self, reward: &Reward) -> Result<(), StoreError> {
        Ok(update(self.conn(), reward)?)
    }

    fn stage(&mut self, event: &RewardEvent) -> Result<(), StoreError> {
        match event {
            RewardEvent::Allocated { reward } => DbTx::stage(self, &events::reward_allocated(reward)),
        }
    }
}

diesel::table! {
    rewards (reward_id) {
        reward_id -> Text,
        mission_id -> Text,
        customer_id -> Text,
        mission_code -> Text,
        points -> BigInt,
        status -> Integer,
        allocated_at -> BigInt,
        version -> BigInt,
        programme_event_id -> Nullable<Text>,
        event_ends_at -> Nullable<BigInt>,
    }
}

#[derive(Queryable, Selectable, Insertable)]
#[diesel(table_name = rewards)]
struct RewardRow {
    reward_id: String,
    mission_id: String,
    customer_id: String,
    mission_code: String,
    points: i64,
    status: i32,
    allocated_at: i64,
    version: i64,
    programme_event_id: Option<String>,
    event_ends_at: Option<i64>,
}

const ALLOCATED: i32 = 1;
const ISSUED: i32 = 2;
const EXCHANGED: i32 = 3;
const EXPIRED: i32 = 4;

impl TryFrom<RewardRow> for Reward {
    type Error = CorruptRow;

    fn try_from(row: RewardRow) -> Result<Self, CorruptRow> {
        let corrupt = |reason: String| CorruptRow::new("reward", &row.reward_id, reason);
        let points = Points::new(row.points).map_err(|e| corrupt(e.to_string()))?;
        if points.value() == 0 {
            return Err(corrupt("points 0".into()));
        }
        Ok(Self {
            id: RewardId::parse(&row.reward_id).map_err(|e| corrupt(format!("reward_id {e}")))?,
            mission_id: MissionId::parse(&row.mission_id).map_err(|e| corrupt(format!("mission_id {e}")))?,
            customer_id: CustomerId::parse(&row.customer_id).map_err(|e| corrupt(format!("customer_id {e}")))?,
            status: match row.status {
                ALLOCATED => RewardStatus::Allocated,
                ISSUED => RewardStatus::Issued,
                EXCHANGED => RewardStatus::Exchanged,
                EXPIRED => RewardStatus::Expired,
                other => return Err(corrupt(format!("status {other}"))),
            },
            mission_code: row.mission_code,
            points,
            programme_event_id: row.programme_event_id,
            event_ends_at: row.event_ends_at,
            allocated_at: row.allocated_at,
            version: row.version,
        })
    }
}

impl From<&Reward> for RewardRow {
    fn from(reward: &Reward) -> Self {
        Self {
            reward_id: reward.id.to_string(),
            mission_id: reward.mission_id.to_string(),
            customer_id: reward.customer_id.to_string(),
            mission_code: reward.mission_code.clone(),
            points: reward.points.value(),
            status: status_code(reward.status),
            allocated_at: reward.allocated_at,
            version: reward.version,
            programme_event_id: reward.programme_event_id.clone(),
            event_ends_at: reward.event_ends_at,
        }
    }
}

fn status_code(status: RewardStatus) -> i32 {
    match status {
        RewardStatus::Allocated => ALLOCATED,
        RewardStatus::Issued => ISSUED,
        RewardStatus::Exchanged => EXCHANGED,
        RewardStatus::Expired => EXPIRED,
    }
}

fn find(conn: &mut DbConnection, id: RewardId) -> Result<Option<Reward>, DbError> {
    let row: Option<RewardRow> = rewards::table
        .filter(rewards::reward_id.eq(id.to_string()))
        .select(RewardRow::as_select())
        .first(conn)
        .optional()?;
    Ok(row.map(Reward::try_from).transpose()?)
}

fn find_by_mission(conn: &mut DbConnection, mission_id: MissionId) -> Result<Option<Reward>, DbError> {
    let row: Option<RewardRow> = rewards::table
        .filter(rewards::mission_id.eq(mission_id.to_string()))
        .select(RewardRow::as_select())
        .first(conn)
        .optional()?;
    Ok(row.map(Reward::try_from).transpose()?)
}

/// Another transaction allocating the mission's reward first (the unique
/// keys held) is a `Conflict`, not a `Duplicate`: the consumer applies a
/// conflicting event again, and then finds the reward.
fn insert(conn: &mut DbConnection, reward: &Reward) -> Result<(), DbError> {
    match diesel::insert_into(rewards::table).values(RewardRow::from(reward)).execute(conn) {
        Ok(_) => Ok(()),
        Err(error) if is_unique_violation(&error) => {
            Err(DbError::Conflict { entity: "reward for mission", key: reward.mission_id.to_string() })
        }
        Err(error) => Err(error.into()),
    }
}

fn update(conn: &mut DbConnection, reward: &Reward) -> Result<(), DbError> {
    let updated = diesel::update(
        rewards::table
            .filter(rewards::reward_id.eq(reward.id.to_string()))
            .filter(rewards::version.eq(reward.version - 1)),
    )
    .set((rewards::status.eq(status_code(reward.status)), rewards::version.eq(reward.version)))
    .execute(conn)?;
    if updated == 0 {
        return Err(DbError::Conflict { entity: "reward", key: reward.id.to_string() });
    }
    Ok(())
}
