//! The race between a recording and the closing of its period, on
//! PostgreSQL under read committed, made to happen: one transaction is held
//! open at the period's row while the other runs into it. Whichever came
//! second loses with a conflict, and decided again does the right thing.

use std::sync::mpsc;
use std::time::Duration;

use tokio::task::JoinHandle;

use kernel::{CustomerId, StoreError, StoreErrorKind};
use platform::db::Database;
use platform::outbox::OutboxSignal;
use platform::store;
use settlement::adapters::store::DieselLedger;
use settlement::app::{self, Recording, SettlementError, Settlements};
use settlement::domain::{
    Currency, GiftExchange, MissionId, Money, OrderId, PeriodId, PeriodLength, PeriodStatus, ProductSku,
};
use settlement::ports::{Clock, LedgerTx};

/// 2026-12-24T00:00:00Z.
const DAY_0: i64 = 1_798_070_400_000;
const DAY: i64 = 86_400_000;

#[derive(Debug, Clone, Copy)]
struct At(i64);

impl Clock for At {
    fn now(&self) -> i64 {
        self.0
    }
}

fn exchange() -> GiftExchange {
    GiftExchange {
        order_id: OrderId::generate(),
        mission_id: MissionId::generate(),
        customer_id: CustomerId::parse("player-1").unwrap(),
        product_sku: ProductSku::parse("COFFEE-S").unwrap(),
        vendor: kernel::Vendor::default(),
        vendor_cost: Money::new(350, Currency::parse("JPY").unwrap()).unwrap(),
    }
}

async fn record(db: &Database, exchange: GiftExchange, now: i64) -> Result<Recording, SettlementError> {
    store::write(db, &OutboxSignal::default(), move |tx| app::record(tx, exchange, now, PeriodLength::DAY)).await
}

/// The store in a fresh schema, with one settlement recorded in the day.
async fn a_day_with_one_settlement() -> Option<(testkit::PostgresSchema, Database)> {
    let schema = testkit::PostgresSchema::create("settlement_race")?;
    let db = Database::connect(schema.url(), settlement::SPEC.migrations).await.unwrap();
    record(&db, exchange(), DAY_0 + 10).await.unwrap();
    Some((schema, db))
}

/// Runs `work` in a transaction and then keeps the transaction open, with
/// the rows it wrote locked, until told to commit through the sender.
async fn held<T, E, F>(db: &Database, work: F) -> (JoinHandle<Result<T, E>>, mpsc::Sender<()>)
where
    F: FnOnce(&mut dyn LedgerTx) -> Result<T, E> + Send + 'static,
    T: Send + 'static,
    E: From<StoreError> + Send + 'static,
{
    let (locked, is_locked) = tokio::sync::oneshot::channel();
    let (commit, committed) = mpsc::channel::<()>();
    let db = db.clone();
    let holding = tokio::spawn(async move {
        store::write(&db, &OutboxSignal::default(), move |tx| {
            let done = work(tx)?;
            let _ = locked.send(());
            committed.recv().expect("told to commit");
            Ok(done)
        })
        .await
    });
    is_locked.await.expect("the held work succeeded");
    (holding, commit)
}

/// Shows that `waiting` waits for the transaction `holding` holds open, then
/// lets that one commit.
async fn release<A, B>(holding: &JoinHandle<A>, waiting: &JoinHandle<B>, commit: mpsc::Sender<()>) {
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!holding.is_finished() && !waiting.is_finished(), "the second transaction waits for the first's row");
    commit.send(()).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_postgresql_a_recording_that_meets_a_closing_under_way_waits_loses_and_lands_in_the_next_period() {
    let Some((_schema, db)) = a_day_with_one_settlement().await else {
        return;
    };
    let day_0 = PeriodId::starting_at(DAY_0);
    // The closing, holding the period's row.
    let (closing, commit) = held(&db, move |tx| {
        let period = tx.period(day_0)?.expect("the day's period");
        let totals = tx.totals_of(day_0)?;
        let (closed, _) = period.close(totals.clone(), DAY_0 + DAY).expect("due");
        tx.close_period(&closed, &totals)?;
        Ok::<_, StoreError>(())
    })
    .await;
    // A recording from a replica whose clock says the day is not over yet.
    let late = exchange();
    let recording = tokio::spawn({
        let (db, late) = (db.clone(), late.clone());
        async move { record(&db, late, DAY_0 + DAY - 5).await }
    });

    release(&closing, &recording, commit).await;
    closing.await.unwrap().unwrap();
    let lost = recording.await.unwrap();
    let again = record(&db, late, DAY_0 + DAY - 4).await.unwrap();

    assert!(matches!(&lost, Err(SettlementError::Storage(e)) if e.kind() == StoreErrorKind::Conflict), "{lost:?}");
    assert!(matches!(again, Recording::Recorded(_)));
    let ledger = Settlements::new(DieselLedger::new(db.clone(), OutboxSignal::default()), At(DAY_0 + DAY));
    let (closed, totals) = ledger.period(day_0).await.unwrap();
    assert_eq!((closed.status, totals[0].charges), (PeriodStatus::Closed { at: DAY_0 + DAY }, 1), "unchanged");
    let (next, totals) = ledger.period(PeriodId::starting_at(DAY_0 + DAY)).await.unwrap();
    assert_eq!((next.status, totals[0].charges), (PeriodStatus::Open, 1), "the late settlement is in the next period");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_postgresql_a_closing_that_meets_a_recording_under_way_waits_loses_and_closes_with_it_counted() {
    let Some((_schema, db)) = a_day_with_one_settlement().await else {
        return;
    };
    let day_0 = PeriodId::starting_at(DAY_0);
    // A recording in the day's last millisecond, holding the period's row.
    let (recording, commit) =
        held(&db, move |tx| app::record(tx, exchange(), DAY_0 + DAY - 1, PeriodLength::DAY)).await;
    let ledger = Settlements::new(DieselLedger::new(db.clone(), OutboxSignal::default()), At(DAY_0 + DAY));
    let closing = tokio::spawn({
        let ledger = ledger.clone();
        async move { ledger.close_due_periods().await }
    });

    release(&recording, &closing, commit).await;
    recording.await.unwrap().unwrap();
    let closed = closing.await.unwrap().unwrap();

    // The closing read the day before the recording committed, lost on the
    // version, and closed it again with the recording counted.
    assert_eq!(closed, [day_0]);
    let (period, totals) = ledger.period(day_0).await.unwrap();
    assert_eq!(
        (period.status, totals[0].charges, totals[0].amount),
        (PeriodStatus::Closed { at: DAY_0 + DAY }, 2, 700)
    );
}
