//! The settlement use cases against an in-memory ledger: no database, no
//! broker. The diesel ledger and the policy are tested in `tests/api`.

#![allow(clippy::unwrap_used)] // a test that cannot proceed should stop right there

use kernel::CustomerId;
use kernel::StoreErrorKind;
use testkit::MemoryStore;

use super::*;
use crate::domain::{Currency, MissionId, Money, OrderId, SettlementEvent};

/// What the ledger holds: settlements in recording order (position = index + 1).
#[derive(Debug, Clone, Default)]
struct Stored {
    settlements: Vec<Settlement>,
    published: Vec<SettlementEvent>,
}

/// The ledger in memory (see [`MemoryStore`]).
#[derive(Debug, Clone, Default)]
struct InMemoryLedger(MemoryStore<Stored>);

fn position(index: usize) -> LedgerPosition {
    LedgerPosition::new(i64::try_from(index).unwrap() + 1).unwrap()
}

impl Ledger for InMemoryLedger {
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
}

impl LedgerTx for Stored {
    fn settlement_of(&mut self, order: OrderId) -> Result<Option<Settlement>, StoreError> {
        Ok(self.settlements.iter().find(|s| s.order_id == order).cloned())
    }

    fn append(&mut self, settlement: &Settlement) -> Result<LedgerPosition, StoreError> {
        if self.settlement_of(settlement.order_id)?.is_some() {
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

impl InMemoryLedger {
    fn record(&self, exchange: &GiftExchange) -> Result<Recording, SettlementError> {
        let exchange = exchange.clone();
        self.0.write(move |s| record(s, exchange))
    }

    fn published(&self) -> usize {
        self.0.read(|s| s.published.len())
    }
}

/// An exchange of `sku` billed `cost` EUR cents.
fn exchanged(sku: &str, cost: i64) -> GiftExchange {
    GiftExchange {
        order_id: OrderId::generate(),
        mission_id: MissionId::generate(),
        customer_id: CustomerId::parse("player-1").unwrap(),
        product_sku: ProductSku::parse(sku).unwrap(),
        vendor_cost: Money::new(cost, Currency::parse("EUR").unwrap()).unwrap(),
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
    let ledger = InMemoryLedger::default();
    let exchange = exchanged("PLUSH-MASCOT", 1250);
    let rebilled =
        GiftExchange { vendor_cost: Money::new(999, Currency::parse("EUR").unwrap()).unwrap(), ..exchange.clone() };

    let first = ledger.record(&exchange).unwrap();
    let again = ledger.record(&rebilled).unwrap();

    let id = SettlementId::for_order(exchange.order_id);
    assert_eq!((first, again), (Recording::Recorded(id), Recording::AlreadyRecorded(id)));
    assert_eq!(ledger.published(), 1);
    let page = Settlements::new(ledger).list(query(None, None, 0)).await.unwrap();
    assert_eq!(page.settlements.len(), 1);
    assert_eq!(page.settlements[0].amount.minor_units(), 1250, "the first bill stands");
}

#[tokio::test]
async fn a_recording_that_lost_to_a_concurrent_one_conflicts_and_applied_again_finds_it() {
    let ledger = InMemoryLedger::default();
    let exchange = exchanged("PLUSH-MASCOT", 1250);
    let rival = exchange.clone();
    ledger.0.lose_next_write_to(move |s| {
        record(s, rival).unwrap();
    });

    let lost = ledger.record(&exchange);
    let again = ledger.record(&exchange).unwrap();

    assert!(matches!(&lost, Err(SettlementError::Storage(e)) if e.kind() == StoreErrorKind::Conflict), "{lost:?}");
    assert_eq!(again, Recording::AlreadyRecorded(SettlementId::for_order(exchange.order_id)));
    assert_eq!(ledger.published(), 1);
}

#[tokio::test]
async fn the_ledger_is_listed_in_pages_and_the_last_page_points_nowhere() {
    let ledger = InMemoryLedger::default();
    for _ in 0..5 {
        ledger.record(&exchanged("PLUSH-MASCOT", 1250)).unwrap();
    }
    let settlements = Settlements::new(ledger);

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
    let ledger = InMemoryLedger::default();
    for sku in ["PLUSH-MASCOT", "STICKER-PACK", "PLUSH-MASCOT"] {
        ledger.record(&exchanged(sku, 100)).unwrap();
    }

    let page = Settlements::new(ledger).list(query(Some("PLUSH-MASCOT"), None, 0)).await.unwrap();

    assert_eq!(page.settlements.len(), 2);
    assert!(page.settlements.iter().all(|s| s.product_sku.as_str() == "PLUSH-MASCOT"));
}
