//! Rewards expire on real stores: the wallet shows when, refuses an expired
//! reward at exchange, and its expiry job expires each due entry once — run
//! by the service on its interval, or by two replicas at once on one SQLite
//! file or one PostgreSQL schema. The migration keeps the entries before it,
//! which never expire.

use std::time::Duration;

use api::game::wallet::v1::{self as pb, PointsExpired, WalletEntryStatus};
use kernel::{CustomerId, Points};
use platform::db::{Database, now_millis};
use platform::events::{WALLET_STREAM, timestamp};
use platform::outbox::OutboxSignal;
use platform::resilience::ResilienceConfig;
use testkit::{AsCaller, PostgresSchema, TempStore};
use tonic::Code;
use wallet::adapters::gift_client::GiftClient;
use wallet::adapters::store::DieselWalletStore;
use wallet::app::{AllocatedReward, WalletError, Wallets, issue};
use wallet::domain::{ExchangeRefused, MissionId, ProductSku, RewardExpiry, RewardId, Standing};
use wallet::ports::WalletStore as _;

use crate::helpers::{eventually, spawn_app, spawn_app_with};

const DAY: i64 = 24 * 3_600_000;

#[tokio::test]
async fn a_reward_past_its_expiry_is_refused_at_exchange_naming_when_it_expired() {
    let app = spawn_app().await;
    let ended = now_millis() - 31 * DAY;
    let allocated = app.allocate_in_event("player-1", 300, Some(ended)).await;
    let entry = app.entry_for("player-1", &allocated.reward_id).await;
    assert_eq!(entry.expires_at, Some(timestamp(ended + 30 * DAY)), "30 days after the event ended, by default");

    let request = pb::ExchangeRewardRequest {
        customer_id: "player-1".into(),
        entry_id: entry.entry_id.clone(),
        product_sku: "AVATAR-FRAME".into(),
    };
    let status = app.client.clone().exchange_reward(request.by_player("player-1")).await.unwrap_err();

    assert_eq!(status.code(), Code::FailedPrecondition);
    assert_eq!(
        status.message(),
        format!(
            "reward {} (wallet entry {}) expired at {}",
            allocated.reward_id,
            entry.entry_id,
            kernel::rfc3339(ended + 30 * DAY)
        )
    );
    let launch = app.allocate("player-1", 100).await;
    assert_eq!(app.entry_for("player-1", &launch.reward_id).await.expires_at, None, "LAUNCH's rewards never expire");
}

#[tokio::test]
async fn the_service_expires_a_due_reward_on_its_interval_and_publishes_points_expired_once() {
    let app = spawn_app_with(|config| config.expiry.interval = Duration::from_millis(100)).await;
    let ended = now_millis() - 31 * DAY;
    let due = app.allocate_in_event("player-1", 300, Some(ended)).await;
    let later = app.allocate_in_event("player-1", 100, Some(now_millis())).await;

    let expired = eventually("the due reward to expire", || async {
        let entry = app.entry_for("player-1", &due.reward_id).await;
        (entry.status() == WalletEntryStatus::Expired).then_some(entry)
    })
    .await;

    // Issued twice, expired once: three events on the stream, whatever the
    // runs since.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let events = app.published(WALLET_STREAM, 3).await;
    let points_expired: Vec<PointsExpired> = events
        .iter()
        .filter(|m| m.subject.as_str() == "wallet.points_expired")
        .map(|m| prost::Message::decode(m.payload.as_ref()).unwrap())
        .collect();
    assert_eq!(points_expired.len(), 1);
    assert_eq!(points_expired[0].entry_id, expired.entry_id);
    assert_eq!((points_expired[0].points, points_expired[0].expires_at), (300, Some(timestamp(ended + 30 * DAY))));
    assert_eq!(events.len(), 3);
    assert_eq!(app.entry_for("player-1", &later.reward_id).await.status(), WalletEntryStatus::Available);
}

/// An entry past its expiry, in the store at `url`, is refused at exchange
/// before anything is reserved or gift is asked (gift here is a port where
/// nothing listens: asking it would answer "busy", not "expired").
async fn an_expired_entry_is_refused_at_exchange(url: &str) {
    let db = Database::connect(url, wallet::SPEC.migrations).await.unwrap();
    let store = DieselWalletStore::new(db, OutboxSignal::default());
    let gift = GiftClient::new("http://127.0.0.1:9", &ResilienceConfig::default()).unwrap();
    let wallets = Wallets::new(store.clone(), gift);
    let customer = CustomerId::parse("player-late").unwrap();
    let ended = now_millis() - DAY;
    let reward = AllocatedReward {
        reward_id: RewardId::generate(),
        mission_id: MissionId::generate(),
        customer_id: customer.clone(),
        points: Points::new(50).unwrap(),
        event_ends_at: Some(ended),
    };
    store.write(move |tx| issue(tx, reward, RewardExpiry::after(Duration::ZERO))).await.unwrap();
    let entry = store.wallet(customer.clone()).await.unwrap().remove(0);

    let answer =
        wallets.exchange_reward(customer.clone(), entry.id, ProductSku::parse("AVATAR-FRAME").unwrap(), None).await;

    assert!(
        matches!(&answer, Err(WalletError::Refused(ExchangeRefused::Expired { expires_at, .. })) if *expires_at == ended),
        "{answer:?}"
    );
    assert_eq!(store.wallet(customer).await.unwrap(), [entry], "nothing reserved");
}

#[tokio::test]
async fn on_sqlite_an_expired_entry_is_refused_at_exchange() {
    let dir = TempStore::new();
    an_expired_entry_is_refused_at_exchange(&dir.sqlite_url("wallet")).await;
}

#[tokio::test]
async fn on_postgresql_an_expired_entry_is_refused_at_exchange() {
    let Some(schema) = PostgresSchema::create("wallet_refused") else { return };
    an_expired_entry_is_refused_at_exchange(schema.url()).await;
}

/// Entries the replicas race for: more than one batch of the job.
const DUE: usize = 250;

/// Two replicas (each its own store connection, as two processes have) run
/// the expiry job at once over [`DUE`] due entries: each expires exactly
/// once. The caller counts the PointsExpired staged in the outbox.
async fn two_replicas_expire_each_entry_exactly_once(url: &str) {
    let now = now_millis();
    let replica = |db: Database| {
        let gift = GiftClient::new("http://127.0.0.1:9", &ResilienceConfig::default()).unwrap();
        Wallets::new(DieselWalletStore::new(db, OutboxSignal::default()), gift)
    };
    let db = Database::connect(url, wallet::SPEC.migrations).await.unwrap();
    let store = DieselWalletStore::new(db.clone(), OutboxSignal::default());
    let customer = CustomerId::parse("player-due").unwrap();
    for _ in 0..DUE {
        let reward = AllocatedReward {
            reward_id: RewardId::generate(),
            mission_id: MissionId::generate(),
            customer_id: customer.clone(),
            points: Points::new(50).unwrap(),
            event_ends_at: Some(now - DAY),
        };
        store.write(move |tx| issue(tx, reward, RewardExpiry::after(Duration::ZERO))).await.unwrap();
    }
    let (a, b) = (replica(db), replica(Database::connect(url, wallet::SPEC.migrations).await.unwrap()));

    let (expired_a, expired_b) = tokio::join!(
        tokio::spawn(async move { a.expire_due(now).await.unwrap() }),
        tokio::spawn(async move { b.expire_due(now).await.unwrap() }),
    );

    assert_eq!(expired_a.unwrap() + expired_b.unwrap(), DUE, "between them, every due entry once");
    let wallet = store.wallet(customer).await.unwrap();
    assert_eq!(wallet.len(), DUE);
    assert!(wallet.iter().all(|entry| entry.standing() == Standing::Expired && entry.expired_at == Some(now)));
}

/// PointsExpired staged in the outbox (each under its own event id, which
/// the outbox keeps unique).
const STAGED: &str = "SELECT COUNT(*) AS n FROM outbox WHERE subject = 'wallet.points_expired'";

#[derive(diesel::QueryableByName)]
struct Count {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    n: i64,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_sqlite_two_replicas_expire_each_entry_exactly_once() {
    use diesel::{Connection as _, RunQueryDsl as _};
    let dir = TempStore::new();
    let url = dir.sqlite_url("wallet");
    two_replicas_expire_each_entry_exactly_once(&url).await;
    let mut conn = diesel::SqliteConnection::establish(&url).unwrap();
    // The replicas' stores may still be closing: wait for their lock.
    diesel::sql_query("PRAGMA busy_timeout = 10000").execute(&mut conn).unwrap();
    let staged = diesel::sql_query(STAGED).get_result::<Count>(&mut conn).unwrap().n;
    assert_eq!(staged, DUE as i64, "one PointsExpired per entry");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_postgresql_two_replicas_expire_each_entry_exactly_once() {
    use diesel::{Connection as _, RunQueryDsl as _};
    let Some(schema) = PostgresSchema::create("wallet_expiry") else { return };
    two_replicas_expire_each_entry_exactly_once(schema.url()).await;
    let mut conn = diesel::PgConnection::establish(schema.url()).unwrap();
    let staged = diesel::sql_query(STAGED).get_result::<Count>(&mut conn).unwrap().n;
    assert_eq!(staged, DUE as i64, "one PointsExpired per entry");
}

/// An entry issued before the migration, on `$conn`: after it, the entry is
/// as it was and has no expiry, so the job never finds it. (A macro:
/// diesel's raw SQL is not generic over backends.)
macro_rules! the_migration_keeps_earlier_entries {
    ($conn:expr) => {{
        use diesel::RunQueryDsl as _;
        use diesel_migrations::MigrationHarness as _;
        #[derive(diesel::QueryableByName, Debug, PartialEq)]
        struct Kept {
            #[diesel(sql_type = diesel::sql_types::Integer)]
            status: i32,
            #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::BigInt>)]
            expires_at: Option<i64>,
            #[diesel(sql_type = diesel::sql_types::BigInt)]
            version: i64,
        }
        let conn = $conn;
        conn.run_next_migration(MIGRATIONS).unwrap();
        diesel::sql_query(
            "INSERT INTO wallet_entries (entry_id, reward_id, mission_id, customer_id, points, status, \
             exchange_attempt, issued_at, version) VALUES ('0193f6a0-0000-7000-8000-000000000001', \
             '0193f6a0-0000-7000-8000-000000000002', '0193f6a0-0000-7000-8000-000000000003', 'player-old', 300, 1, \
             0, 1764000000000, 1)",
        )
        .execute(conn)
        .unwrap();

        conn.run_pending_migrations(MIGRATIONS).unwrap();

        let kept: Vec<Kept> =
            diesel::sql_query("SELECT status, expires_at, version FROM wallet_entries").load(conn).unwrap();
        assert_eq!(kept, [Kept { status: 1, expires_at: None, version: 1 }]);
    }};
}

/// The wallet service's own migrations, without the platform's.
const MIGRATIONS: diesel_migrations::EmbeddedMigrations = diesel_migrations::embed_migrations!("migrations");

#[test]
fn on_sqlite_the_migration_keeps_earlier_entries_without_expiry() {
    use diesel::Connection as _;
    let dir = TempStore::new();
    let mut conn = diesel::SqliteConnection::establish(&dir.sqlite_url("wallet")).unwrap();
    the_migration_keeps_earlier_entries!(&mut conn);
}

#[test]
fn on_postgresql_the_migration_keeps_earlier_entries_without_expiry() {
    use diesel::Connection as _;
    let Some(schema) = PostgresSchema::create("wallet_migrate") else { return };
    let mut conn = diesel::PgConnection::establish(schema.url()).unwrap();
    the_migration_keeps_earlier_entries!(&mut conn);
}
