//! The programme's migration on real SQLite and PostgreSQL: the seeded
//! products and the orders placed before it stay as they were, in LAUNCH.

use gift::adapters::store::DieselGiftStore;
use gift::ports::GiftStore as _;
use platform::db::Database;
use platform::outbox::OutboxSignal;
use testkit::{PostgresSchema, TempStore};

/// The gift service's own migrations, without the platform's.
const MIGRATIONS: diesel_migrations::EmbeddedMigrations = diesel_migrations::embed_migrations!("migrations");

/// An order placed before the programme's migration, on `$conn`: after it,
/// the order is still placed, the products are LAUNCH's, and LAUNCH is
/// known and never ends. (A macro: diesel's raw SQL is not generic over
/// backends.)
macro_rules! the_migration_keeps_earlier_orders {
    ($conn:expr) => {{
        use diesel::RunQueryDsl as _;
        use diesel_migrations::MigrationHarness as _;
        #[derive(diesel::QueryableByName, Debug, PartialEq)]
        struct Order {
            #[diesel(sql_type = diesel::sql_types::Integer)]
            status: i32,
            #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::BigInt>)]
            cancelled_at: Option<i64>,
        }
        #[derive(diesel::QueryableByName, Debug, PartialEq)]
        struct Event {
            #[diesel(sql_type = diesel::sql_types::Text)]
            programme_event_id: String,
            #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::BigInt>)]
            ends_at: Option<i64>,
        }
        #[derive(diesel::QueryableByName, Debug, PartialEq)]
        struct InEvent {
            #[diesel(sql_type = diesel::sql_types::Text)]
            programme_event_id: String,
        }
        let conn = $conn;
        conn.run_next_migration(MIGRATIONS).unwrap();
        diesel::sql_query(
            "INSERT INTO gift_orders (order_id, idempotency_key, customer_id, reward_id, mission_id, product_sku, \
             points, status, placed_at, version) VALUES ('0193f6a0-0000-7000-8000-000000000001', 'old:1', \
             'player-old', '0193f6a0-0000-7000-8000-000000000002', '0193f6a0-0000-7000-8000-000000000003', \
             'PLUSH-MASCOT', 800, 1, 1764000000000, 1)",
        )
        .execute(conn)
        .unwrap();

        conn.run_pending_migrations(MIGRATIONS).unwrap();

        let orders: Vec<Order> = diesel::sql_query("SELECT status, cancelled_at FROM gift_orders").load(conn).unwrap();
        assert_eq!(orders, [Order { status: 1, cancelled_at: None }]);
        let events: Vec<Event> =
            diesel::sql_query("SELECT programme_event_id, ends_at FROM programme_events").load(conn).unwrap();
        assert_eq!(events, [Event { programme_event_id: "LAUNCH".into(), ends_at: None }]);
        let products: Vec<InEvent> = diesel::sql_query("SELECT programme_event_id FROM products").load(conn).unwrap();
        assert_eq!(products.len(), 5);
        assert!(products.iter().all(|p| p.programme_event_id == "LAUNCH"), "{products:?}");

        conn.revert_last_migration(MIGRATIONS).unwrap();
        let orders: Vec<InEvent> =
            diesel::sql_query("SELECT product_sku AS programme_event_id FROM gift_orders").load(conn).unwrap();
        assert_eq!(orders, [InEvent { programme_event_id: "PLUSH-MASCOT".into() }], "reverted, the order stays");
    }};
}

#[test]
fn on_sqlite_the_migration_keeps_earlier_orders_and_puts_the_products_in_launch() {
    use diesel::Connection as _;
    let dir = TempStore::new();
    let mut conn = diesel::SqliteConnection::establish(&dir.sqlite_url("gift")).unwrap();
    the_migration_keeps_earlier_orders!(&mut conn);
}

#[test]
fn on_postgresql_the_migration_keeps_earlier_orders_and_puts_the_products_in_launch() {
    use diesel::Connection as _;
    let Some(schema) = PostgresSchema::create("gift_migrate") else { return };
    let mut conn = diesel::PgConnection::establish(schema.url()).unwrap();
    the_migration_keeps_earlier_orders!(&mut conn);
}

async fn the_store_reads_the_seeded_catalogue_in_launch(url: &str) {
    let db = Database::connect(url, gift::SPEC.migrations).await.unwrap();
    let store = DieselGiftStore::new(db, OutboxSignal::default());
    let events = store.programme_events().await.unwrap();
    assert_eq!(events.len(), 1);
    assert_eq!((events[0].id.as_str(), events[0].window.ends_at()), ("LAUNCH", None));
    let products = store.products().await.unwrap();
    assert_eq!(products.len(), 5);
    assert!(products.iter().all(|p| p.event_id.as_str() == "LAUNCH"));
}

#[tokio::test]
async fn on_sqlite_the_store_reads_the_seeded_catalogue_in_launch() {
    let dir = TempStore::new();
    the_store_reads_the_seeded_catalogue_in_launch(&dir.sqlite_url("gift")).await;
}

#[tokio::test]
async fn on_postgresql_the_store_reads_the_seeded_catalogue_in_launch() {
    let Some(schema) = PostgresSchema::create("gift_launch") else { return };
    the_store_reads_the_seeded_catalogue_in_launch(schema.url()).await;
}
