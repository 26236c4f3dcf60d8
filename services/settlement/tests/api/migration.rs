//! The migration that introduced periods, on a store that holds settlements
//! recorded before it: they keep their places and land in a period of their
//! own, which the closing job closes at its first run.

use api::game::settlement::v1 as pb;
use diesel::backend::Backend;
use diesel::migration::{Migration, MigrationSource};
use diesel::{Connection as _, RunQueryDsl as _};
use diesel_migrations::MigrationHarness;
use settlement::domain::PeriodId;
use testkit::TempStore;

use crate::helpers::{TestApp, gift_exchanged, period, spawn_app};

/// The service's migrations from before periods.
struct BeforePeriods;

impl<DB: Backend> MigrationSource<DB> for BeforePeriods {
    fn migrations(&self) -> diesel::migration::Result<Vec<Box<dyn Migration<DB>>>> {
        let mut migrations = MigrationSource::<DB>::migrations(settlement::SPEC.migrations)?;
        migrations.retain(|m| m.name().to_string().ends_with("_create_settlements"));
        assert_eq!(migrations.len(), 1, "the first migration is there");
        Ok(migrations)
    }
}

/// A settlement as the build before periods recorded it.
const RECORDED_BEFORE: &str = "INSERT INTO settlements \
    (settlement_id, seq, order_id, mission_id, customer_id, product_sku, amount, currency, recorded_at) \
    VALUES ('0190a0b0-0000-8000-8000-000000000001', 1, '0190a0b0-0000-7000-8000-000000000002', \
            '0190a0b0-0000-7000-8000-000000000003', 'player-1', 'COFFEE-S', 500, 'JPY', 1764000000000)";

async fn the_old_settlement_is_closed_in_its_own_period_and_new_ones_land_after(app: &TestApp) {
    let before = PeriodId::BEFORE_PERIODS.to_string();
    let closed = app.closed(&before).await;
    app.publish(&gift_exchanged("CAKE_L", 900)).await;
    let settlements = app.recorded(2).await;

    assert_eq!(
        closed.totals,
        [pb::PeriodTotal {
            product_sku: "COFFEE-S".into(),
            currency: "JPY".into(),
            charges: 1,
            reversals: 0,
            amount: 500,
            vendor: "gift".into(),
        }]
    );
    assert_eq!(
        (settlements[0].order_id.as_str(), settlements[0].period_id.as_str(), settlements[0].kind()),
        ("0190a0b0-0000-7000-8000-000000000002", before.as_str(), pb::SettlementKind::Charge)
    );
    assert_ne!(settlements[1].period_id, before, "a new settlement lands in a new period");
    let again = app.client.clone().get_period(period(&before)).await.unwrap().into_inner().period.unwrap();
    assert_eq!(again, closed);
}

#[tokio::test]
async fn on_sqlite_settlements_recorded_before_periods_are_closed_in_a_period_of_their_own() {
    let store = TempStore::new();
    let url = store.sqlite_url("settlement");
    let mut conn = diesel::SqliteConnection::establish(&url).unwrap();
    conn.run_pending_migrations(BeforePeriods).unwrap();
    diesel::sql_query(RECORDED_BEFORE).execute(&mut conn).unwrap();
    drop(conn);

    let app = spawn_app(Some(url)).await;

    the_old_settlement_is_closed_in_its_own_period_and_new_ones_land_after(&app).await;
}

#[tokio::test]
async fn on_postgresql_settlements_recorded_before_periods_are_closed_in_a_period_of_their_own() {
    let Some(schema) = testkit::PostgresSchema::create("settlement_migration") else {
        return;
    };
    let mut conn = diesel::PgConnection::establish(schema.url()).unwrap();
    conn.run_pending_migrations(BeforePeriods).unwrap();
    diesel::sql_query(RECORDED_BEFORE).execute(&mut conn).unwrap();
    drop(conn);

    let app = spawn_app(Some(schema.url().to_owned())).await;

    the_old_settlement_is_closed_in_its_own_period_and_new_ones_land_after(&app).await;
}
