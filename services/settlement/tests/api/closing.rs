//! Two settlement replicas on one PostgreSQL store, recording and reversing
//! while both closing jobs race to close one-second periods: every period
//! is closed once, and no settlement lands in a period after it closed.

use std::time::Duration;

use platform::events::{GIFT_STREAM, SETTLEMENT_STREAM};
use settlement::SettlementConfig;
use testkit::{Broker, Running, service_config};

use crate::helpers::{eventually, gift_exchanged, gift_order_cancelled, short_periods};

const ORDERS: usize = 60;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_postgresql_two_replicas_close_each_period_once_and_nothing_lands_in_a_closed_one() {
    let Some(schema) = testkit::PostgresSchema::create("settlement_closing") else {
        return;
    };
    let broker = Broker::start().await;
    let mut replicas = Vec::new();
    for _ in 0..2 {
        let mut config = SettlementConfig::from(service_config(&broker, schema.url().to_owned()));
        short_periods(&mut config);
        config.close_interval = Duration::from_millis(20);
        replicas.push(Running::serve(settlement::build(config).await.expect("settlement service starts")));
    }

    // Three seconds of orders, every third one cancelled a little later:
    // recordings and reversals meet the closing at every boundary.
    let mut cancelled = 0;
    for i in 0..ORDERS {
        let exchanged = gift_exchanged(["COFFEE-S", "CAKE_L"][i % 2], 100 + i64::try_from(i).unwrap());
        broker.publish(&exchanged).await;
        if i % 3 == 0 {
            broker.publish(&gift_order_cancelled(&exchanged)).await;
            cancelled += 1;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    broker.settled(GIFT_STREAM, "settlement-record").await;
    broker.settled(GIFT_STREAM, "settlement-reverse").await;
    let count = |query: &str| schema.count(query).unwrap();
    eventually("every period closed", || async move {
        (count("SELECT COUNT(*) AS n FROM settlement_periods WHERE status = 'OPEN'") == 0).then_some(())
    })
    .await;

    let orders = i64::try_from(ORDERS).unwrap();
    assert_eq!(count("SELECT COUNT(*) AS n FROM settlements WHERE kind = 'CHARGE'"), orders);
    assert_eq!(count("SELECT COUNT(*) AS n FROM settlements WHERE kind = 'REVERSAL'"), cancelled);
    let periods = count("SELECT COUNT(*) AS n FROM settlement_periods");
    assert!(periods >= 3, "the orders spanned several periods: {periods}");
    assert_eq!(
        count("SELECT COUNT(*) AS n FROM outbox WHERE subject = 'settlement.period_closed'"),
        periods,
        "one SettlementPeriodClosed per period"
    );
    assert_eq!(
        count(
            "SELECT COUNT(*) AS n FROM settlements s JOIN settlement_periods p ON p.period_id = s.period_id \
             WHERE s.recorded_at < p.starts_at OR s.recorded_at >= p.ends_at OR s.recorded_at >= p.closed_at"
        ),
        0,
        "every settlement within its period, recorded before it closed"
    );
    // The stored totals are exactly the settlements of their period, both ways.
    assert_eq!(
        count(
            "SELECT COUNT(*) AS n FROM settlement_period_totals t WHERE \
               t.amount <> (SELECT SUM(s.amount) FROM settlements s WHERE s.period_id = t.period_id \
                            AND s.product_sku = t.product_sku AND s.currency = t.currency) \
               OR t.charges <> (SELECT COUNT(*) FROM settlements s WHERE s.period_id = t.period_id \
                            AND s.product_sku = t.product_sku AND s.currency = t.currency AND s.kind = 'CHARGE') \
               OR t.reversals <> (SELECT COUNT(*) FROM settlements s WHERE s.period_id = t.period_id \
                            AND s.product_sku = t.product_sku AND s.currency = t.currency AND s.kind = 'REVERSAL')"
        ),
        0,
        "no total differs from its settlements"
    );
    assert_eq!(
        count(
            "SELECT COUNT(*) AS n FROM settlements s WHERE NOT EXISTS (SELECT 1 FROM settlement_period_totals t \
             WHERE t.period_id = s.period_id AND t.product_sku = s.product_sku AND t.currency = s.currency)"
        ),
        0,
        "no settlement outside its period's totals"
    );
    let published = testkit::published_once(&broker, &schema, SETTLEMENT_STREAM, (ORDERS as u64) + 1).await.unwrap();
    assert_eq!(i64::try_from(published.len()).unwrap(), orders + cancelled + periods);
    drop(replicas);
}
