//! Two settlement processes on one PostgreSQL store split a backlog of
//! GiftExchanged: each gift order is settled once, at one ledger position.

use std::time::Duration;

use platform::events::{GIFT_STREAM, SETTLEMENT_STREAM};
use testkit::{Broker, ServiceCommand};

use crate::helpers::gift_exchanged;

const BACKLOG: usize = 1_000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_postgresql_two_replicas_split_a_backlog_of_a_thousand_gift_orders_and_settle_each_once() {
    let Some(schema) = testkit::PostgresSchema::create("settlement_split") else {
        return;
    };
    let broker = Broker::start().await;
    for i in 0..BACKLOG {
        broker.publish(&gift_exchanged(["COFFEE-S", "CAKE_L", "STICKER-PACK"][i % 3], 500)).await;
    }
    let settlement = ServiceCommand::new(
        env!("CARGO_BIN_EXE_settlement"),
        settlement::SPEC.grpc_service,
        schema.url(),
        &broker.url(),
    );
    let split = testkit::split_backlog(
        &broker,
        &schema,
        settlement,
        2,
        &[(GIFT_STREAM, "settlement-record")],
        BACKLOG as u64,
        Duration::from_secs(60),
    )
    .await
    .unwrap();

    let backlog = i64::try_from(BACKLOG).unwrap();
    assert_eq!(schema.count("SELECT COUNT(DISTINCT order_id) AS n FROM settlements").unwrap(), backlog);
    assert_eq!(schema.count("SELECT COUNT(*) AS n FROM settlements").unwrap(), backlog);
    // Places 1 to 1,000, none shared, none skipped, whichever replica took them.
    assert_eq!(schema.count("SELECT MIN(seq) * 10000 + MAX(seq) AS n FROM settlements").unwrap(), 10_000 + backlog);
    let published = testkit::published_once(&broker, &schema, SETTLEMENT_STREAM, BACKLOG as u64).await.unwrap();
    assert_eq!(published.len(), BACKLOG, "exactly one SettlementRecorded per gift order");
    drop(split);
}
