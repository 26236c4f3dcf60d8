//! Settlements name the vendor they are owed to, and periods total per
//! vendor, product and currency; what was recorded before vendors were
//! named is the default vendor's (the migration, on SQLite and PostgreSQL).

use std::collections::BTreeMap;

use api::game::settlement::v1::{self as pb, SettlementReversed};
use diesel::backend::Backend;
use diesel::migration::{Migration, MigrationSource};
use diesel::{Connection as _, RunQueryDsl as _};
use diesel_migrations::MigrationHarness;
use platform::events::SETTLEMENT_STREAM;
use settlement::domain::PeriodId;
use testkit::TempStore;

use crate::helpers::{TestApp, gift_exchanged, gift_order_cancelled, period, short_periods, spawn_app, spawn_app_with};

/// What `totals` add up to per vendor and product: (charges, reversals, amount).
fn per_vendor_and_product(totals: &[pb::PeriodTotal]) -> BTreeMap<(String, String), (i64, i64, i64)> {
    let mut sums = BTreeMap::new();
    for total in totals {
        let sum = sums.entry((total.vendor.clone(), total.product_sku.clone())).or_insert((0, 0, 0));
        *sum = (sum.0 + total.charges, sum.1 + total.reversals, sum.2 + total.amount);
    }
    sums
}

#[tokio::test]
async fn periods_total_per_vendor_and_an_exchange_naming_none_is_the_default_vendors() {
    let app = spawn_app_with(None, short_periods).await;
    let at_acme = |cost| pb_exchanged("acme-toys", cost);
    let cancelled = at_acme(350);
    for exchanged in [cancelled.clone(), at_acme(120), pb_exchanged("", 100), pb_exchanged("gift", 200)] {
        app.publish(&exchanged).await;
    }
    app.recorded(4).await;
    app.publish(&gift_order_cancelled(&cancelled)).await;
    let settlements = app.recorded(5).await;

    let vendors: Vec<&str> = settlements.iter().map(|s| s.vendor.as_str()).collect();
    assert_eq!(vendors, ["acme-toys", "acme-toys", "gift", "gift", "acme-toys"], "a reversal is its charge's vendor's");
    let reversed: SettlementReversed = {
        let published = app.published(SETTLEMENT_STREAM, 5).await;
        let message = published.iter().find(|m| m.subject.as_str() == "settlement.reversed").unwrap();
        prost::Message::decode(message.payload.as_ref()).unwrap()
    };
    assert_eq!(reversed.vendor, "acme-toys");

    // Periods of a second: the five may have landed in two or three of them.
    let mut totals = Vec::new();
    let mut closed: Vec<&str> = settlements.iter().map(|s| s.period_id.as_str()).collect();
    closed.dedup();
    for period_id in closed {
        totals.extend(app.closed(period_id).await.totals);
    }
    let expected = BTreeMap::from([
        (("acme-toys".to_owned(), "COFFEE-S".to_owned()), (2, 1, 120)),
        (("gift".to_owned(), "COFFEE-S".to_owned()), (2, 0, 300)),
    ]);
    assert_eq!(per_vendor_and_product(&totals), expected);
}

fn pb_exchanged(vendor: &str, cost: i64) -> api::game::gift::v1::GiftExchanged {
    api::game::gift::v1::GiftExchanged { vendor: vendor.into(), ..gift_exchanged("COFFEE-S", cost) }
}

#[tokio::test]
async fn an_open_periods_totals_so_far_are_per_vendor_too() {
    let app = spawn_app(None).await;
    app.publish(&pb_exchanged("acme-toys", 350)).await;
    app.publish(&pb_exchanged("gift", 200)).await;
    let settlements = app.recorded(2).await;

    let open = app.client.clone().get_period(period(&settlements[0].period_id)).await.unwrap().into_inner();
    let totals = open.period.unwrap().totals;

    let shown: Vec<(&str, &str, i64)> =
        totals.iter().map(|t| (t.vendor.as_str(), t.product_sku.as_str(), t.amount)).collect();
    assert_eq!(shown, [("acme-toys", "COFFEE-S", 350), ("gift", "COFFEE-S", 200)], "by vendor, then product");
}

/// The service's migrations from before vendors were named.
struct BeforeVendors;

impl<DB: Backend> MigrationSource<DB> for BeforeVendors {
    fn migrations(&self) -> diesel::migration::Result<Vec<Box<dyn Migration<DB>>>> {
        let mut migrations = MigrationSource::<DB>::migrations(settlement::SPEC.migrations)?;
        migrations.retain(|m| !m.name().to_string().ends_with("_settlement_vendors"));
        assert_eq!(migrations.len(), 2, "the two migrations before vendors");
        Ok(migrations)
    }
}

/// 2025-11-25T00:00:00Z, the start of a day closed before vendors were named.
const DAY_BEFORE: i64 = 1_764_028_800_000;

/// A closed period, its settlement and its total, as the build before
/// vendors kept them.
fn kept_before() -> [String; 3] {
    let period = PeriodId::starting_at(DAY_BEFORE);
    let (ends_at, closed_at) = (DAY_BEFORE + 86_400_000, DAY_BEFORE + 86_430_000);
    [
        format!(
            "INSERT INTO settlement_periods (period_id, starts_at, ends_at, status, version, closed_at) \
             VALUES ('{period}', {DAY_BEFORE}, {ends_at}, 'CLOSED', 2, {closed_at})"
        ),
        format!(
            "INSERT INTO settlements \
             (settlement_id, seq, order_id, kind, period_id, mission_id, customer_id, product_sku, amount, \
              currency, recorded_at) \
             VALUES ('0190a0b0-0000-8000-8000-000000000001', 1, '0190a0b0-0000-7000-8000-000000000002', \
                     'CHARGE', '{period}', '0190a0b0-0000-7000-8000-000000000003', 'player-1', 'COFFEE-S', 500, \
                     'JPY', {recorded_at})",
            recorded_at = DAY_BEFORE + 3_600_000
        ),
        format!(
            "INSERT INTO settlement_period_totals (period_id, product_sku, currency, charges, reversals, amount) \
             VALUES ('{period}', 'COFFEE-S', 'JPY', 1, 0, 500)"
        ),
    ]
}

async fn what_was_kept_before_vendors_is_the_default_vendors(app: &TestApp) {
    let closed = app.closed(&PeriodId::starting_at(DAY_BEFORE).to_string()).await;
    app.publish(&pb_exchanged("acme-toys", 900)).await;
    let settlements = app.recorded(2).await;

    assert_eq!(
        closed.totals,
        [pb::PeriodTotal {
            vendor: "gift".into(),
            product_sku: "COFFEE-S".into(),
            currency: "JPY".into(),
            charges: 1,
            reversals: 0,
            amount: 500,
        }]
    );
    let vendors: Vec<&str> = settlements.iter().map(|s| s.vendor.as_str()).collect();
    assert_eq!(vendors, ["gift", "acme-toys"]);
}

#[tokio::test]
async fn on_sqlite_settlements_and_totals_kept_before_vendors_are_the_default_vendors() {
    let store = TempStore::new();
    let url = store.sqlite_url("settlement");
    let mut conn = diesel::SqliteConnection::establish(&url).unwrap();
    conn.run_pending_migrations(BeforeVendors).unwrap();
    for statement in kept_before() {
        diesel::sql_query(statement).execute(&mut conn).unwrap();
    }
    drop(conn);

    let app = spawn_app(Some(url)).await;

    what_was_kept_before_vendors_is_the_default_vendors(&app).await;
}

#[tokio::test]
async fn on_postgresql_settlements_and_totals_kept_before_vendors_are_the_default_vendors() {
    let Some(schema) = testkit::PostgresSchema::create("settlement_vendors") else {
        return;
    };
    let mut conn = diesel::PgConnection::establish(schema.url()).unwrap();
    conn.run_pending_migrations(BeforeVendors).unwrap();
    for statement in kept_before() {
        diesel::sql_query(statement).execute(&mut conn).unwrap();
    }
    drop(conn);

    let app = spawn_app(Some(schema.url().to_owned())).await;

    what_was_kept_before_vendors_is_the_default_vendors(&app).await;
}
