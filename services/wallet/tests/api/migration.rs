//! The points migration on real stores: entries from before keep their
//! points where their status said, their exchanges become exchanges (under
//! the keys gift knows them by), and an order placed the old way is
//! refunded like any other when the vendor cancels it.

use kernel::CustomerId;
use platform::db::{Database, now_millis};
use platform::outbox::OutboxSignal;
use testkit::{PostgresSchema, TempStore};
use wallet::adapters::store::DieselWalletStore;
use wallet::app::{CancelledOrder, Refund, refund};
use wallet::domain::{ExchangeStatus, GiftPayer, Standing};
use wallet::ports::WalletStore as _;

/// The wallet service's own migrations, without the platform's.
const MIGRATIONS: diesel_migrations::EmbeddedMigrations = diesel_migrations::embed_migrations!("migrations");

const AVAILABLE: &str = "0193f6a0-0000-7000-8000-0000000000a1";
const PENDING: &str = "0193f6a0-0000-7000-8000-0000000000a2";
const EXCHANGED: &str = "0193f6a0-0000-7000-8000-0000000000a3";
const EXPIRED: &str = "0193f6a0-0000-7000-8000-0000000000a4";

/// Entries of every status written by the code before the points step, on
/// `$conn` migrated that far; then every migration. (A macro: diesel's raw
/// SQL is not generic over backends.)
macro_rules! entries_before_the_points_step {
    ($conn:expr) => {{
        use diesel::RunQueryDsl as _;
        use diesel_migrations::MigrationHarness as _;
        let conn = $conn;
        conn.run_next_migration(MIGRATIONS).unwrap();
        conn.run_next_migration(MIGRATIONS).unwrap();
        for (n, (entry, status, product, order, attempt)) in [
            (AVAILABLE, 1, "NULL", "NULL", 0),
            (PENDING, 2, "'AVATAR-FRAME'", "NULL", 2),
            (EXCHANGED, 3, "'STICKER-PACK'", "'0193f6a0-0000-7000-8000-0000000000f3'", 1),
            (EXPIRED, 4, "NULL", "NULL", 0),
        ]
        .into_iter()
        .enumerate()
        {
            diesel::sql_query(format!(
                "INSERT INTO wallet_entries (entry_id, reward_id, mission_id, customer_id, points, status, \
                 product_sku, gift_order_id, exchange_attempt, pending_since, issued_at, exchanged_at, version, \
                 expires_at, expired_at) VALUES ('{entry}', '0193f6a0-0000-7000-8000-00000000000{n}', \
                 '0193f6a0-0000-7000-8000-0000000000b{n}', 'player-old', 300, {status}, {product}, {order}, \
                 {attempt}, {pending}, 1764000000000, {exchanged}, 3, {expires}, {expired})",
                pending = if status == 2 { "1764000000100" } else { "NULL" },
                exchanged = if status == 3 { "1764000000200" } else { "NULL" },
                expires = if status == 4 { "1764000000300" } else { "NULL" },
                expired = if status == 4 { "1764000000400" } else { "NULL" },
            ))
            .execute(conn)
            .unwrap();
        }
        conn.run_pending_migrations(MIGRATIONS).unwrap();
    }};
}

async fn earlier_entries_keep_their_points_and_an_old_order_is_refunded_like_any_other(url: &str) {
    let store =
        DieselWalletStore::new(Database::connect(url, wallet::SPEC.migrations).await.unwrap(), OutboxSignal::default());
    let customer = CustomerId::parse("player-old").unwrap();
    let entries = store.wallet(customer.clone()).await.unwrap();
    let by_id = |id: &str| entries.iter().find(|e| e.id.to_string() == id).unwrap();
    let points = |id: &str| {
        let e = by_id(id);
        [e.remaining, e.reserved, e.spent, e.expired]
    };
    assert_eq!(points(AVAILABLE), [300, 0, 0, 0]);
    assert_eq!(points(PENDING), [0, 300, 0, 0]);
    assert_eq!(points(EXCHANGED), [0, 0, 300, 0]);
    assert_eq!(points(EXPIRED), [0, 0, 0, 300]);
    let standings: Vec<Standing> = [AVAILABLE, PENDING, EXCHANGED, EXPIRED].map(|id| by_id(id).standing()).to_vec();
    assert_eq!(standings, [Standing::Available, Standing::ExchangePending, Standing::Exchanged, Standing::Expired]);

    let exchanges = store.exchanges(customer.clone()).await.unwrap();
    assert_eq!(exchanges.len(), 2, "{exchanges:?}");
    let pending = exchanges.iter().find(|e| e.id.to_string() == PENDING).unwrap();
    assert_eq!((pending.gift_key.as_str(), pending.payer), (format!("{PENDING}:2").as_str(), GiftPayer::Reward));
    assert_eq!(
        (pending.status.clone(), pending.price.value(), pending.requested_at),
        (ExchangeStatus::Pending, 300, 1_764_000_000_100)
    );
    let exchanged = exchanges.iter().find(|e| e.id.to_string() == EXCHANGED).unwrap();
    assert!(matches!(&exchanged.status, ExchangeStatus::Placed { at: 1_764_000_000_200, .. }), "{exchanged:?}");

    // The vendor cancels the order placed the old way, under its old key.
    let cancelled = CancelledOrder {
        gift_key: format!("{EXCHANGED}:1"),
        gift_order_id: "0193f6a0-0000-7000-8000-0000000000f3".into(),
        reason: "no supply".into(),
    };
    let again = cancelled.clone();
    assert_eq!(store.write(move |tx| refund(tx, &cancelled, now_millis())).await.unwrap(), Refund::Refunded);
    assert_eq!(store.write(move |tx| refund(tx, &again, now_millis())).await.unwrap(), Refund::AlreadySettled);
    let refunded = store.wallet(customer).await.unwrap().into_iter().find(|e| e.id.to_string() == EXCHANGED).unwrap();
    assert_eq!([refunded.remaining, refunded.spent], [300, 0]);
}

#[tokio::test]
async fn on_sqlite_earlier_entries_keep_their_points_and_an_old_order_is_refunded_like_any_other() {
    use diesel::Connection as _;
    let dir = TempStore::new();
    let url = dir.sqlite_url("wallet");
    entries_before_the_points_step!(&mut diesel::SqliteConnection::establish(&url).unwrap());
    earlier_entries_keep_their_points_and_an_old_order_is_refunded_like_any_other(&url).await;
}

#[tokio::test]
async fn on_postgresql_earlier_entries_keep_their_points_and_an_old_order_is_refunded_like_any_other() {
    use diesel::Connection as _;
    let Some(schema) = PostgresSchema::create("wallet_points_migrate") else { return };
    entries_before_the_points_step!(&mut diesel::PgConnection::establish(schema.url()).unwrap());
    earlier_entries_keep_their_points_and_an_old_order_is_refunded_like_any_other(schema.url()).await;
}
