//! The end of a mission's event travels on to the wallet: the reward keeps
//! it in its store (real SQLite and PostgreSQL) and publishes it on
//! RewardAllocated. The migration that added it keeps the rewards allocated
//! before it, with no event and no end.

use api::game::reward::v1::{RewardAllocated, RewardStatus};
use kernel::{CustomerId, Points};
use platform::db::Database;
use platform::events::{REWARD_STREAM, timestamp};
use platform::outbox::OutboxSignal;
use reward::adapters::store::DieselRewardStore;
use reward::app::{RewardError, allocate};
use reward::domain::{AchievedMission, MissionId, RewardId};
use reward::ports::RewardStore as _;
use testkit::{PostgresSchema, TempStore};

use crate::helpers::{mission_achieved, reward_id_for, spawn_app};

/// 2027-01-10T00:00:00Z, when WINTER-2026 ends.
const WINTER_ENDS: i64 = 1_799_539_200_000;

fn achieved(programme_event_id: Option<&str>, event_ends_at: Option<i64>) -> AchievedMission {
    AchievedMission {
        mission_id: MissionId::generate(),
        customer_id: CustomerId::parse("player-8").unwrap(),
        mission_code: "WIN_A_MATCH".into(),
        promised_points: Points::new(50).unwrap(),
        programme_event_id: programme_event_id.map(str::to_owned),
        event_ends_at,
    }
}

async fn the_store_keeps_the_event_and_its_end(url: &str) {
    let db = Database::connect(url, reward::SPEC.migrations).await.unwrap();
    let store = DieselRewardStore::new(db.clone());
    for mission in
        [achieved(Some("WINTER-2026"), Some(WINTER_ENDS)), achieved(Some("LAUNCH"), None), achieved(None, None)]
    {
        let id = RewardId::for_mission(mission.mission_id);
        let expected = (mission.programme_event_id.clone(), mission.event_ends_at);
        platform::store::write(&db, &OutboxSignal::default(), move |tx| -> Result<_, RewardError> {
            allocate(tx, mission)
        })
        .await
        .unwrap();
        let stored = store.reward(id).await.unwrap().unwrap();
        assert_eq!((stored.programme_event_id, stored.event_ends_at), expected);
    }
}

#[tokio::test]
async fn on_sqlite_the_store_keeps_a_rewards_event_and_its_end() {
    let dir = TempStore::new();
    the_store_keeps_the_event_and_its_end(&dir.sqlite_url("reward")).await;
}

#[tokio::test]
async fn on_postgresql_the_store_keeps_a_rewards_event_and_its_end() {
    let Some(schema) = PostgresSchema::create("reward_event_end") else { return };
    the_store_keeps_the_event_and_its_end(schema.url()).await;
}

#[tokio::test]
async fn the_end_of_a_missions_event_is_published_on_reward_allocated() {
    let app = spawn_app(None).await;
    let mut achieved = mission_achieved("player-9", 50);
    achieved.programme_event_id = "WINTER-2026".into();
    achieved.event_ends_at = Some(timestamp(WINTER_ENDS));
    app.publish(&achieved).await;
    app.reward_in(&reward_id_for(&achieved), RewardStatus::Allocated).await;

    let published = app.published(REWARD_STREAM, 1).await;
    let event: RewardAllocated = prost::Message::decode(published[0].payload.as_ref()).unwrap();
    assert_eq!(event.programme_event_id, "WINTER-2026");
    assert_eq!(event.event_ends_at, Some(timestamp(WINTER_ENDS)));
}

/// A reward allocated before the migration, on `$conn`: after it, the
/// reward has no event and no end. (A macro: diesel's raw SQL is not
/// generic over backends.)
macro_rules! the_migration_keeps_earlier_rewards {
    ($conn:expr) => {{
        use diesel::RunQueryDsl as _;
        use diesel_migrations::MigrationHarness as _;
        #[derive(diesel::QueryableByName, Debug, PartialEq)]
        struct Carried {
            #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Text>)]
            programme_event_id: Option<String>,
            #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::BigInt>)]
            event_ends_at: Option<i64>,
        }
        let conn = $conn;
        conn.run_next_migration(MIGRATIONS).unwrap();
        diesel::sql_query(
            "INSERT INTO rewards (reward_id, mission_id, customer_id, mission_code, points, status, allocated_at, \
             version) VALUES ('0193f6a0-0000-7000-8000-000000000002', '0193f6a0-0000-7000-8000-000000000001', \
             'player-old', 'FIRST_WIN', 300, 2, 1764000000000, 2)",
        )
        .execute(conn)
        .unwrap();

        conn.run_pending_migrations(MIGRATIONS).unwrap();

        let carried: Vec<Carried> =
            diesel::sql_query("SELECT programme_event_id, event_ends_at FROM rewards").load(conn).unwrap();
        assert_eq!(carried, [Carried { programme_event_id: None, event_ends_at: None }]);
    }};
}

/// The reward service's own migrations, without the platform's.
const MIGRATIONS: diesel_migrations::EmbeddedMigrations = diesel_migrations::embed_migrations!("migrations");

#[test]
fn on_sqlite_the_migration_keeps_earlier_rewards_with_no_end() {
    use diesel::Connection as _;
    let dir = TempStore::new();
    let mut conn = diesel::SqliteConnection::establish(&dir.sqlite_url("reward")).unwrap();
    the_migration_keeps_earlier_rewards!(&mut conn);
}

#[test]
fn on_postgresql_the_migration_keeps_earlier_rewards_with_no_end() {
    use diesel::Connection as _;
    let Some(schema) = PostgresSchema::create("reward_migrate") else { return };
    let mut conn = diesel::PgConnection::establish(schema.url()).unwrap();
    the_migration_keeps_earlier_rewards!(&mut conn);
}
