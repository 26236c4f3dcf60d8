//! The settlement use cases against an in-memory ledger and a clock the
//! test sets: no database, no broker. The diesel ledger, the policies and
//! the closing job across replicas are tested in `tests/api`.

#![allow(clippy::unwrap_used)] // a test that cannot proceed should stop right there

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use kernel::CustomerId;
use kernel::StoreErrorKind;
use testkit::{MemoryStore, save_if_unchanged};

use super::*;
use crate::domain::{Currency, MissionId, Money, OrderId, PeriodStatus, SettlementEvent, Vendor};

/// What the ledger holds: settlements in recording order (position = index
/// + 1), the periods, the totals of the closed ones, the events staged.
#[derive(Debug, Clone, Default)]
struct Stored {
    settlements: Vec<Settlement>,
    periods: BTreeMap<PeriodId, Period>,
    totals: BTreeMap<PeriodId, Vec<PeriodTotal>>,
    published: Vec<SettlementEvent>,
}

/// The ledger in memory (see [`MemoryStore`]).
#[derive(Debug, Clone, Default)]
struct InMemoryLedger(MemoryStore<Stored>);

fn position(index: usize) -> LedgerPosition {
    LedgerPosition::new(i64::try_from(index).unwrap() + 1).unwrap()
}

impl Ledger for InMemoryLedger {
    async fn write<T, E, F>(&self, work: F) -> Result<T, E>
    where
        F: FnOnce(&mut dyn LedgerTx) -> Result<T, E> + Send + 'static,
        T: Send + 'static,
        E: From<StoreError> + Send + 'static,
    {
        self.0.write(|s| work(s))
    }

    async fn page(
        &self,
        product_sku: Option<ProductSku>,
        after: Option<LedgerPosition>,
        limit: usize,
    ) -> Result<Vec<(LedgerPosition, Settlement)>, StoreError> {
        Ok(self.0.read(|s| {
            s.settlements
                .iter()
                .enumerate()
                .map(|(index, settlement)| (position(index), settlement.clone()))
                .filter(|(at, settlement)| {
                    after.is_none_or(|after| *at > after)
                        && product_sku.as_ref().is_none_or(|sku| settlement.product_sku == *sku)
                })
                .take(limit)
                .collect()
        }))
    }

    async fn due_periods(&self, now: i64, limit: usize) -> Result<Vec<PeriodId>, StoreError> {
        Ok(self.0.read(|s| {
            let mut due: Vec<&Period> = s.periods.values().filter(|p| p.is_due(now)).collect();
            due.sort_by_key(|p| p.ends_at);
            due.into_iter().take(limit).map(|p| p.id).collect()
        }))
    }

    async fn periods(&self, before: Option<i64>, limit: usize) -> Result<Vec<Period>, StoreError> {
        Ok(self.0.read(|s| {
            let mut periods: Vec<Period> =
                s.periods.values().filter(|p| before.is_none_or(|before| p.starts_at < before)).cloned().collect();
            periods.sort_by_key(|p| std::cmp::Reverse(p.starts_at));
            periods.truncate(limit);
            periods
        }))
    }

    async fn period_with_totals(&self, id: PeriodId) -> Result<Option<(Period, Vec<PeriodTotal>)>, StoreError> {
        Ok(self.0.read(|s| {
            let period = s.periods.get(&id)?.clone();
            let totals = match period.status {
                PeriodStatus::Closed { .. } => s.totals.get(&id).cloned().unwrap_or_default(),
                PeriodStatus::Open => s.live_totals(id),
            };
            Some((period, totals))
        }))
    }
}

impl Stored {
    fn live_totals(&self, id: PeriodId) -> Vec<PeriodTotal> {
        PeriodTotal::of(self.settlements.iter().filter(|s| s.period == id))
    }
}

impl LedgerTx for Stored {
    fn settlement_of(&mut self, order: OrderId, kind: SettlementKind) -> Result<Option<Settlement>, StoreError> {
        Ok(self.settlements.iter().find(|s| s.order_id == order && s.kind == kind).cloned())
    }

    fn latest_period(&mut self) -> Result<Option<Period>, StoreError> {
        Ok(self.periods.values().max_by_key(|p| p.starts_at).cloned())
    }

    fn period(&mut self, id: PeriodId) -> Result<Option<Period>, StoreError> {
        Ok(self.periods.get(&id).cloned())
    }

    fn open_period(&mut self, period: &Period) -> Result<(), StoreError> {
        if self.periods.values().any(|p| p.id == period.id || p.starts_at == period.starts_at) {
            return Err(StoreError::conflict("settlement period", period.id.to_string()));
        }
        self.periods.insert(period.id, period.clone());
        Ok(())
    }

    fn take_period(&mut self, period: &Period) -> Result<(), StoreError> {
        match self.periods.get_mut(&period.id) {
            Some(stored) if stored.status == PeriodStatus::Open => {
                stored.version += 1;
                Ok(())
            }
            _ => Err(StoreError::conflict("settlement period", period.id.to_string())),
        }
    }

    fn totals_of(&mut self, period: PeriodId) -> Result<Vec<PeriodTotal>, StoreError> {
        Ok(self.live_totals(period))
    }

    fn close_period(&mut self, period: &Period, totals: &[PeriodTotal]) -> Result<(), StoreError> {
        save_if_unchanged(&mut self.periods, &period.id, period, |p| p.version, "settlement period")?;
        self.totals.insert(period.id, totals.to_vec());
        Ok(())
    }

    fn append(&mut self, settlement: &Settlement) -> Result<LedgerPosition, StoreError> {
        if self.settlement_of(settlement.order_id, settlement.kind)?.is_some() {
            return Err(StoreError::conflict("settlement for order", settlement.order_id.to_string()));
        }
        self.settlements.push(settlement.clone());
        Ok(position(self.settlements.len() - 1))
    }

    fn stage(&mut self, event: &SettlementEvent) -> Result<(), StoreError> {
        self.published.push(event.clone());
        Ok(())
    }
}

/// A clock the test moves; clones share it.
#[derive(Debug, Clone)]
struct TestClock(Arc<AtomicI64>);

impl TestClock {
    fn at(now: i64) -> Self {
        Self(Arc::new(AtomicI64::new(now)))
    }

    fn set(&self, now: i64) {
        self.0.store(now, Ordering::SeqCst);
    }
}

impl Clock for TestClock {
    fn now(&self) -> i64 {
        self.0.load(Ordering::SeqCst)
    }
}

/// 2026-12-24T00:00:00Z.
const DAY_0: i64 = 1_798_070_400_000;
const DAY: i64 = 86_400_000;

/// The ledger and its use cases at `now`, in daily periods.
struct Books {
    ledger: InMemoryLedger,
    clock: TestClock,
    settlements: Settlements<InMemoryLedger>,
}

impl Books {
    fn at(now: i64) -> Self {
        let (ledger, clock) = (InMemoryLedger::default(), TestClock::at(now));
        let settlements = Settlements::new(ledger.clone(), clock.clone());
        Self { ledger, clock, settlements }
    }

    fn record(&self, exchange: &GiftExchange) -> Result<Recording, SettlementError> {
        let (exchange, now) = (exchange.clone(), self.clock.now());
        self.ledger.0.write(move |s| record(s, exchange, now, PeriodLength::DAY))
    }

    fn reverse(&self, order: OrderId) -> Result<Reversal, SettlementError> {
        let now = self.clock.now();
        self.ledger.0.write(move |s| reverse(s, order, now, PeriodLength::DAY))
    }

    fn published(&self) -> Vec<SettlementEvent> {
        self.ledger.0.read(|s| s.published.clone())
    }

    fn settlement(&self, id: SettlementId) -> Settlement {
        self.ledger.0.read(|s| s.settlements.iter().find(|s| s.id == id).cloned()).unwrap()
    }

    async fn totals(&self, period: PeriodId) -> (PeriodStatus, Vec<(String, String, String, i64, i64, i64)>) {
        let (period, totals) = self.settlements.period(period).await.unwrap();
        let totals = totals
            .into_iter()
            .map(|t| {
                let (vendor, sku, currency) = (t.vendor.to_string(), t.product_sku.to_string(), t.currency.to_string());
                (vendor, sku, currency, t.charges, t.reversals, t.amount)
            })
            .collect();
        (period.status, totals)
    }
}

/// An exchange of `sku` billed `cost` EUR cents.
fn exchanged(sku: &str, cost: i64) -> GiftExchange {
    GiftExchange {
        order_id: OrderId::generate(),
        mission_id: MissionId::generate(),
        customer_id: CustomerId::parse("player-1").unwrap(),
        product_sku: ProductSku::parse(sku).unwrap(),
        vendor: Vendor::default(),
        vendor_cost: Money::new(cost, Currency::parse("EUR").unwrap()).unwrap(),
    }
}

fn recorded(recording: Recording) -> SettlementId {
    match recording {
        Recording::Recorded(id) => id,
        Recording::AlreadyRecorded(id) => panic!("{id} was recorded before"),
    }
}

fn query(product: Option<&str>, after: Option<LedgerPosition>, size: i32) -> SettlementQuery {
    SettlementQuery {
        product_sku: product.map(|sku| ProductSku::parse(sku).unwrap()),
        after,
        page_size: PageSize::new(size).unwrap(),
    }
}

#[tokio::test]
async fn a_gift_order_is_settled_once_at_its_first_cost() {
    let books = Books::at(DAY_0);
    let exchange = exchanged("PLUSH-MASCOT", 1250);
    let rebilled =
        GiftExchange { vendor_cost: Money::new(999, Currency::parse("EUR").unwrap()).unwrap(), ..exchange.clone() };

    let first = books.record(&exchange).unwrap();
    let again = books.record(&rebilled).unwrap();

    let id = SettlementId::for_order(exchange.order_id);
    assert_eq!((first, again), (Recording::Recorded(id), Recording::AlreadyRecorded(id)));
    assert_eq!(books.published().len(), 1);
    let page = books.settlements.list(query(None, None, 0)).await.unwrap();
    assert_eq!(page.settlements.len(), 1);
    assert_eq!(page.settlements[0].amount.minor_units(), 1250, "the first bill stands");
}

#[tokio::test]
async fn a_recording_that_lost_to_a_concurrent_one_conflicts_and_applied_again_finds_it() {
    let books = Books::at(DAY_0);
    let exchange = exchanged("PLUSH-MASCOT", 1250);
    let rival = exchange.clone();
    books.ledger.0.lose_next_write_to(move |s| {
        record(s, rival, DAY_0, PeriodLength::DAY).unwrap();
    });

    let lost = books.record(&exchange);
    let again = books.record(&exchange).unwrap();

    assert!(matches!(&lost, Err(SettlementError::Storage(e)) if e.kind() == StoreErrorKind::Conflict), "{lost:?}");
    assert_eq!(again, Recording::AlreadyRecorded(SettlementId::for_order(exchange.order_id)));
    assert_eq!(books.published().len(), 1);
}

#[tokio::test]
async fn the_ledger_is_listed_in_pages_and_the_last_page_points_nowhere() {
    let books = Books::at(DAY_0);
    for _ in 0..5 {
        books.record(&exchanged("PLUSH-MASCOT", 1250)).unwrap();
    }
    let settlements = books.settlements;

    let first = settlements.list(query(None, None, 2)).await.unwrap();
    let second = settlements.list(query(None, first.next_after, 2)).await.unwrap();
    let last = settlements.list(query(None, second.next_after, 2)).await.unwrap();

    assert_eq!((first.settlements.len(), first.next_after), (2, Some(position(1))));
    assert_eq!((second.settlements.len(), second.next_after), (2, Some(position(3))));
    assert_eq!((last.settlements.len(), last.next_after), (1, None));
    let exact = settlements.list(query(None, None, 5)).await.unwrap();
    assert_eq!((exact.settlements.len(), exact.next_after), (5, None), "no token to an empty page");
}

#[tokio::test]
async fn a_page_of_one_product_holds_only_its_settlements() {
    let books = Books::at(DAY_0);
    for sku in ["PLUSH-MASCOT", "STICKER-PACK", "PLUSH-MASCOT"] {
        books.record(&exchanged(sku, 100)).unwrap();
    }

    let page = books.settlements.list(query(Some("PLUSH-MASCOT"), None, 0)).await.unwrap();

    assert_eq!(page.settlements.len(), 2);
    assert!(page.settlements.iter().all(|s| s.product_sku.as_str() == "PLUSH-MASCOT"));
}

#[tokio::test]
async fn settlements_land_in_the_period_open_when_they_are_recorded() {
    let books = Books::at(DAY_0 + 10);
    let morning = recorded(books.record(&exchanged("PLUSH-MASCOT", 100)).unwrap());
    books.clock.set(DAY_0 + DAY - 1);
    let last_thing = recorded(books.record(&exchanged("PLUSH-MASCOT", 200)).unwrap());
    // Past midnight, the day's period has not been closed yet: still, it
    // takes nothing more.
    books.clock.set(DAY_0 + DAY);
    let after_midnight = recorded(books.record(&exchanged("PLUSH-MASCOT", 400)).unwrap());

    let periods: Vec<PeriodId> =
        [morning, last_thing, after_midnight].into_iter().map(|id| books.settlement(id).period).collect();
    assert_eq!(
        periods,
        [PeriodId::starting_at(DAY_0), PeriodId::starting_at(DAY_0), PeriodId::starting_at(DAY_0 + DAY)]
    );
    let page =
        books.settlements.periods(PeriodQuery { before: None, page_size: PageSize::new(0).unwrap() }).await.unwrap();
    let spans: Vec<(i64, i64)> = page.periods.iter().map(|p| (p.starts_at, p.ends_at)).collect();
    assert_eq!(spans, [(DAY_0 + DAY, DAY_0 + 2 * DAY), (DAY_0, DAY_0 + DAY)], "the latest first");
    assert_eq!(
        books.totals(PeriodId::starting_at(DAY_0)).await,
        (PeriodStatus::Open, vec![("gift".into(), "PLUSH-MASCOT".into(), "EUR".into(), 2, 0, 300)]),
        "an open period's totals so far"
    );
}

#[tokio::test]
async fn a_period_whose_end_passed_is_closed_once_with_its_totals() {
    let books = Books::at(DAY_0 + 10);
    books.record(&exchanged("PLUSH-MASCOT", 100)).unwrap();
    let day_0 = PeriodId::starting_at(DAY_0);
    assert_eq!(books.settlements.close_due_periods().await.unwrap(), [], "not before its end");

    books.clock.set(DAY_0 + DAY + 5);
    let first = books.settlements.close_due_periods().await.unwrap();
    let again = books.settlements.close_due_periods().await.unwrap();

    assert_eq!((first, again), (vec![day_0], vec![]));
    let closings: Vec<SettlementEvent> =
        books.published().into_iter().filter(|e| matches!(e, SettlementEvent::PeriodClosed { .. })).collect();
    let (period, totals) = books.settlements.period(day_0).await.unwrap();
    assert_eq!(period.status, PeriodStatus::Closed { at: DAY_0 + DAY + 5 });
    assert_eq!(closings, [SettlementEvent::PeriodClosed { period, totals }]);
}

#[tokio::test]
async fn a_closer_that_lost_the_race_to_a_rival_finds_the_period_closed_and_closes_nothing() {
    let books = Books::at(DAY_0 + 10);
    books.record(&exchanged("PLUSH-MASCOT", 100)).unwrap();
    books.clock.set(DAY_0 + DAY);
    let day_0 = PeriodId::starting_at(DAY_0);
    books.ledger.0.lose_next_write_to(move |s| {
        close_in(s, day_0, DAY_0 + DAY).unwrap();
    });

    let closed = books.settlements.close_due_periods().await.unwrap();

    assert_eq!(closed, [], "the rival closed it");
    let closings = books.published().into_iter().filter(|e| matches!(e, SettlementEvent::PeriodClosed { .. })).count();
    assert_eq!(closings, 1);
    assert_eq!(books.totals(day_0).await.1, [("gift".into(), "PLUSH-MASCOT".into(), "EUR".into(), 1, 0, 100)]);
}

#[tokio::test]
async fn a_recording_whose_period_was_closed_meanwhile_conflicts_and_applied_again_lands_in_the_next() {
    let books = Books::at(DAY_0 + 10);
    books.record(&exchanged("PLUSH-MASCOT", 100)).unwrap();
    // A replica whose clock runs ahead closes the day while this one still
    // records in it.
    books.clock.set(DAY_0 + DAY - 1);
    let day_0 = PeriodId::starting_at(DAY_0);
    books.ledger.0.lose_next_write_to(move |s| {
        close_in(s, day_0, DAY_0 + DAY).unwrap();
    });
    let late = exchanged("PLUSH-MASCOT", 200);

    let lost = books.record(&late);
    let again = recorded(books.record(&late).unwrap());

    assert!(matches!(&lost, Err(SettlementError::Storage(e)) if e.kind() == StoreErrorKind::Conflict), "{lost:?}");
    assert_eq!(books.settlement(again).period, PeriodId::starting_at(DAY_0 + DAY));
    assert_eq!(
        books.totals(day_0).await.1,
        [("gift".into(), "PLUSH-MASCOT".into(), "EUR".into(), 1, 0, 100)],
        "closed, unchanged"
    );
}

#[tokio::test]
async fn a_late_reversal_lands_in_the_next_period_and_the_closed_one_never_changes() {
    let books = Books::at(DAY_0 + 10);
    let exchange = exchanged("PLUSH-MASCOT", 1250);
    let charge = recorded(books.record(&exchange).unwrap());
    books.clock.set(DAY_0 + DAY + 60_000);
    books.settlements.close_due_periods().await.unwrap();
    let day_0 = books.totals(PeriodId::starting_at(DAY_0)).await;

    let reversal = match books.reverse(exchange.order_id).unwrap() {
        Reversal::Reversed(id) => books.settlement(id),
        Reversal::AlreadyReversed(id) => panic!("{id} was reversed before"),
    };

    assert_eq!((reversal.period, reversal.owed()), (PeriodId::starting_at(DAY_0 + DAY), -1250));
    assert_eq!(books.settlement(charge).period, PeriodId::starting_at(DAY_0), "the charge stays where it was");
    assert_eq!(books.totals(PeriodId::starting_at(DAY_0)).await, day_0, "the closed period never changes");
    assert_eq!(day_0.1, [("gift".into(), "PLUSH-MASCOT".into(), "EUR".into(), 1, 0, 1250)]);
    assert_eq!(
        books.totals(PeriodId::starting_at(DAY_0 + DAY)).await.1,
        [("gift".into(), "PLUSH-MASCOT".into(), "EUR".into(), 0, 1, -1250)]
    );
    assert!(books.published().contains(&SettlementEvent::Reversed { reversal, reversed: charge }));
}

#[tokio::test]
async fn an_order_is_reversed_once_and_a_cancellation_that_overtook_its_exchange_waits_for_it() {
    let books = Books::at(DAY_0 + 10);
    let exchange = exchanged("PLUSH-MASCOT", 1250);

    let early = books.reverse(exchange.order_id);
    books.record(&exchange).unwrap();
    let first = books.reverse(exchange.order_id).unwrap();
    let again = books.reverse(exchange.order_id).unwrap();

    assert!(matches!(early, Err(SettlementError::NotSettledYet(order)) if order == exchange.order_id), "{early:?}");
    let id = SettlementId::reversal_of(exchange.order_id);
    assert_eq!((first, again), (Reversal::Reversed(id), Reversal::AlreadyReversed(id)));
    assert_eq!(books.published().len(), 2, "one SettlementRecorded, one SettlementReversed");
}

#[tokio::test]
async fn totals_are_per_vendor_product_and_currency_and_count_reversals_against_charges() {
    let books = Books::at(DAY_0 + 10);
    let yen = |sku: &str, cost: i64| GiftExchange {
        vendor_cost: Money::new(cost, Currency::parse("JPY").unwrap()).unwrap(),
        ..exchanged(sku, 0)
    };
    let acme = |sku: &str, cost: i64| GiftExchange { vendor: Vendor::parse("acme").unwrap(), ..exchanged(sku, cost) };
    let cancelled = exchanged("STICKER-PACK", 300);
    let cancelled_at_acme = acme("STICKER-PACK", 310);
    for exchange in [
        exchanged("STICKER-PACK", 300),
        cancelled.clone(),
        yen("STICKER-PACK", 40),
        exchanged("CAKE_L", 900),
        acme("STICKER-PACK", 310),
        cancelled_at_acme.clone(),
    ] {
        books.record(&exchange).unwrap();
    }
    books.reverse(cancelled.order_id).unwrap();
    books.reverse(cancelled_at_acme.order_id).unwrap();
    books.clock.set(DAY_0 + DAY);

    books.settlements.close_due_periods().await.unwrap();

    let (status, totals) = books.totals(PeriodId::starting_at(DAY_0)).await;
    assert_eq!(status, PeriodStatus::Closed { at: DAY_0 + DAY });
    let total = |vendor: &str, sku: &str, currency: &str, charges, reversals, amount| {
        (vendor.to_owned(), sku.to_owned(), currency.to_owned(), charges, reversals, amount)
    };
    assert_eq!(
        totals,
        [
            total("acme", "STICKER-PACK", "EUR", 2, 1, 310),
            total("gift", "CAKE_L", "EUR", 1, 0, 900),
            total("gift", "STICKER-PACK", "EUR", 2, 1, 300),
            total("gift", "STICKER-PACK", "JPY", 1, 0, 40),
        ]
    );
}

#[tokio::test]
async fn periods_are_listed_latest_first_in_pages_and_an_unknown_one_is_not_found() {
    let books = Books::at(DAY_0);
    for day in 0..3 {
        books.clock.set(DAY_0 + day * DAY);
        books.record(&exchanged("PLUSH-MASCOT", 100)).unwrap();
    }
    let size = PageSize::new(2).unwrap();

    let first = books.settlements.periods(PeriodQuery { before: None, page_size: size }).await.unwrap();
    let last = books.settlements.periods(PeriodQuery { before: first.next_before, page_size: size }).await.unwrap();
    let unknown = books.settlements.period(PeriodId::starting_at(DAY_0 - DAY)).await;

    let starts = |page: &PeriodPage| page.periods.iter().map(|p| p.starts_at).collect::<Vec<_>>();
    assert_eq!((starts(&first), first.next_before), (vec![DAY_0 + 2 * DAY, DAY_0 + DAY], Some(DAY_0 + DAY)));
    assert_eq!((starts(&last), last.next_before), (vec![DAY_0], None));
    assert!(matches!(unknown, Err(SettlementError::PeriodNotFound(_))), "{unknown:?}");
}
