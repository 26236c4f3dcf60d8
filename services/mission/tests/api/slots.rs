//! The diesel mission store on real SQLite and PostgreSQL: (customer, code,
//! slot) is unique, so a mission's limit holds when achievements race for
//! its last slot — with no lock, under PostgreSQL's read committed (on
//! SQLite the service's single writer puts them in a row anyway; without
//! the unique key, the PostgreSQL race keeps more than the limit). And the
//! migration keeps what was achieved before it.

use std::num::NonZeroU32;

use kernel::{CustomerId, Points};
use mission::adapters::clock::SystemClock;
use mission::adapters::store::DieselMissionStore;
use mission::app::{MissionError, Missions};
use mission::domain::programme::{AchievementId, MissionLimit, Operator, ProgrammeEventId, ProgrammeRuleViolation};
use mission::domain::{Achievement, MissionCode, MissionDefinition, MissionId};
use mission::ports::MissionStore as _;
use platform::db::Database;
use platform::outbox::OutboxSignal;
use platform::store::StoreErrorKind;
use testkit::{PostgresSchema, TempStore};

/// How many achievements race for a mission that allows [`LIMIT`].
const RACERS: usize = 12;
const LIMIT: u32 = 3;

async fn store_at(url: &str) -> DieselMissionStore {
    let db = Database::connect(url, mission::SPEC.migrations).await.unwrap();
    DieselMissionStore::new(db, OutboxSignal::default())
}

fn player() -> CustomerId {
    CustomerId::parse("player-race").unwrap()
}

fn code() -> MissionCode {
    MissionCode::parse("WIN_THRICE").unwrap()
}

/// The use cases over `store`, with WIN_THRICE (3 times) defined in LAUNCH.
async fn with_win_thrice(store: DieselMissionStore) -> Missions<DieselMissionStore> {
    let missions = Missions::new(store, SystemClock);
    let definition = MissionDefinition {
        code: code(),
        title: "Win three matches".into(),
        reward_points: Points::new(10).unwrap(),
        event_id: ProgrammeEventId::launch(),
        limit: MissionLimit::Times(NonZeroU32::new(LIMIT).unwrap()),
    };
    missions.define_mission(Operator::new("operator"), definition).await.unwrap();
    missions
}

/// A second mission in a slot already taken is a `Duplicate`, and only the
/// first is kept.
async fn a_taken_slot_is_refused_by_the_store(url: &str) {
    let store = store_at(url).await;
    let missions = with_win_thrice(store.clone()).await;
    let kept = missions
        .record(Achievement {
            customer_id: player(),
            code: code(),
            achievement_id: Some(AchievementId::parse("match-1").unwrap()),
        })
        .await
        .unwrap();
    let mut racing = kept.clone();
    racing.id = MissionId::generate();
    racing.achievement_id = Some(AchievementId::parse("match-1b").unwrap());

    let clash = store.write(move |tx| tx.insert(&racing)).await;

    assert!(matches!(&clash, Err(e) if e.kind() == StoreErrorKind::Duplicate), "{clash:?}");
    assert_eq!(missions.list(player()).await.unwrap(), [kept]);
}

/// [`RACERS`] achievements with distinct ids at once: exactly [`LIMIT`] are
/// kept; every other is refused by the limit or, having lost a race twice,
/// reported as a conflict to retry — never kept beyond the limit.
async fn racing_achievements_never_exceed_the_limit(url: &str) {
    let missions = with_win_thrice(store_at(url).await).await;
    // Polled together: each runs its transaction on a blocking thread of
    // its own, side by side on PostgreSQL's pool.
    let races = (0..RACERS).map(|i| {
        let achievement_id = Some(AchievementId::parse(&format!("match-{i}")).unwrap());
        missions.record(Achievement { customer_id: player(), code: code(), achievement_id })
    });
    let outcomes: Vec<Result<_, MissionError>> = futures::future::join_all(races).await;

    let kept = outcomes.iter().filter(|o| o.is_ok()).count();
    assert_eq!(kept, LIMIT as usize, "{outcomes:?}");
    for refused in outcomes.iter().filter_map(|o| o.as_ref().err()) {
        let lost_twice = matches!(refused, MissionError::Storage(e) if e.kind() == StoreErrorKind::Duplicate);
        let limit = matches!(refused, MissionError::Programme(ProgrammeRuleViolation::TimesReached { .. }));
        assert!(lost_twice || limit, "{refused:?}");
    }
    let slots: Vec<i64> = missions.list(player()).await.unwrap().iter().map(|m| m.slot.value()).collect();
    let mut sorted = slots.clone();
    sorted.sort_unstable();
    assert_eq!(sorted, [1, 2, 3]);
}

#[tokio::test]
async fn on_sqlite_a_taken_slot_is_refused_by_the_store() {
    let dir = TempStore::new();
    a_taken_slot_is_refused_by_the_store(&dir.sqlite_url("mission")).await;
}

#[tokio::test]
async fn on_postgresql_a_taken_slot_is_refused_by_the_store() {
    let Some(schema) = PostgresSchema::create("mission_slot") else { return };
    a_taken_slot_is_refused_by_the_store(schema.url()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_sqlite_racing_achievements_never_exceed_the_limit() {
    let dir = TempStore::new();
    racing_achievements_never_exceed_the_limit(&dir.sqlite_url("mission")).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_postgresql_racing_achievements_never_exceed_the_limit() {
    let Some(schema) = PostgresSchema::create("mission_race") else { return };
    racing_achievements_never_exceed_the_limit(schema.url()).await;
}

#[tokio::test]
async fn on_postgresql_the_migration_moves_the_seeded_missions_into_launch() {
    let Some(schema) = PostgresSchema::create("mission_launch") else { return };
    let store = store_at(schema.url()).await;
    let events = store.programme_events().await.unwrap();
    let definitions = store.definitions().await.unwrap();
    assert_eq!(events.len(), 1);
    assert_eq!((events[0].id.as_str(), events[0].window.ends_at()), ("LAUNCH", None));
    assert_eq!(definitions.len(), 5);
    assert!(definitions.iter().all(|d| d.event_id == ProgrammeEventId::launch() && d.limit == MissionLimit::Once));
}

/// A mission achieved before the programme's migration, on `$conn`: after
/// it, the mission is in LAUNCH, in slot 1; a second achievement in slot 1
/// is refused by the new unique key. (A macro: diesel's raw SQL is not
/// generic over backends.)
macro_rules! the_migration_keeps_earlier_missions {
    ($conn:expr) => {{
        use diesel::RunQueryDsl as _;
        use diesel_migrations::MigrationHarness as _;
        #[derive(diesel::QueryableByName, Debug, PartialEq)]
        struct Moved {
            #[diesel(sql_type = diesel::sql_types::Text)]
            programme_event_id: String,
            #[diesel(sql_type = diesel::sql_types::BigInt)]
            slot: i64,
        }
        let conn = $conn;
        conn.run_next_migration(MIGRATIONS).unwrap();
        diesel::sql_query(
            "INSERT INTO missions (mission_id, customer_id, mission_code, status, reward_id, reward_points, \
             achieved_at, version) VALUES ('0193f6a0-0000-7000-8000-000000000001', 'player-old', 'FIRST_WIN', 2, \
             '0193f6a0-0000-7000-8000-000000000002', 300, 1764000000000, 2)",
        )
        .execute(conn)
        .unwrap();

        conn.run_pending_migrations(MIGRATIONS).unwrap();

        let moved: Vec<Moved> = diesel::sql_query("SELECT programme_event_id, slot FROM missions").load(conn).unwrap();
        assert_eq!(moved, [Moved { programme_event_id: "LAUNCH".into(), slot: 1 }]);
        let again = diesel::sql_query(
            "INSERT INTO missions (mission_id, customer_id, mission_code, status, reward_points, achieved_at, \
             version, programme_event_id, slot) VALUES ('0193f6a0-0000-7000-8000-000000000003', 'player-old', \
             'FIRST_WIN', 1, 300, 1764000000001, 1, 'LAUNCH', 1)",
        )
        .execute(conn);
        assert!(
            matches!(
                again,
                Err(diesel::result::Error::DatabaseError(diesel::result::DatabaseErrorKind::UniqueViolation, _))
            ),
            "{again:?}"
        );
    }};
}

/// The mission service's own migrations, without the platform's.
const MIGRATIONS: diesel_migrations::EmbeddedMigrations = diesel_migrations::embed_migrations!("migrations");

#[test]
fn on_sqlite_the_migration_keeps_earlier_missions_in_launch() {
    use diesel::Connection as _;
    let dir = TempStore::new();
    let mut conn = diesel::SqliteConnection::establish(&dir.sqlite_url("mission")).unwrap();
    the_migration_keeps_earlier_missions!(&mut conn);
}

#[test]
fn on_postgresql_the_migration_keeps_earlier_missions_in_launch() {
    use diesel::Connection as _;
    let Some(schema) = PostgresSchema::create("mission_migrate") else { return };
    let mut conn = diesel::PgConnection::establish(schema.url()).unwrap();
    the_migration_keeps_earlier_missions!(&mut conn);
}
