//! The gift use cases against an in-memory store: no database, no network.
//! The diesel store behind the same port is tested in `tests/api`.

#![allow(clippy::unwrap_used)] // a test that cannot proceed should stop right there

use std::collections::BTreeMap;

use kernel::StoreErrorKind;
use kernel::programme::{Title, Window};
use kernel::{Currency, CustomerId, Points};
use testkit::{MemoryStore, TestClock, save_if_unchanged};

use super::*;
use crate::domain::{GiftEvent, GiftOrderStatus, IdempotencyKey, MissionId, Payer, RewardId};
use crate::ports::GiftTx;

/// 2026-12-24T00:00:00Z.
const WINTER_OPENS: i64 = 1_798_070_400_000;
/// 2027-01-10T00:00:00Z.
const WINTER_ENDS: i64 = 1_799_539_200_000;

/// What the store holds.
#[derive(Debug, Clone, Default)]
struct Stored {
    products: BTreeMap<ProductSku, Product>,
    events: BTreeMap<ProgrammeEventId, ProgrammeEvent>,
    orders: BTreeMap<GiftOrderId, GiftOrder>,
    planned: BTreeMap<GiftOrderId, PlannedCancellation>,
    restocks: BTreeMap<IdempotencyKey, Restock>,
    published: Vec<GiftEvent>,
}

impl Clock for TestClock {
    fn now(&self) -> i64 {
        TestClock::now(self)
    }
}

/// The gift store in memory (see [`MemoryStore`]).
#[derive(Debug, Clone, Default)]
struct InMemoryGiftStore(MemoryStore<Stored>);

impl GiftStore for InMemoryGiftStore {
    async fn write<T, E, F>(&self, work: F) -> Result<T, E>
    where
        F: FnOnce(&mut dyn GiftTx) -> Result<T, E> + Send + 'static,
        T: Send + 'static,
        E: From<StoreError> + Send + 'static,
    {
        self.0.write(|stored| work(stored))
    }

    async fn products(&self) -> Result<Vec<Product>, StoreError> {
        Ok(self.0.read(|s| s.products.values().cloned().collect()))
    }

    async fn programme_events(&self) -> Result<Vec<ProgrammeEvent>, StoreError> {
        Ok(self.0.read(|s| s.events.values().cloned().collect()))
    }

    async fn order(&self, id: GiftOrderId) -> Result<Option<GiftOrder>, StoreError> {
        Ok(self.0.read(|s| s.orders.get(&id).cloned()))
    }

    async fn due_cancellations(&self, now: i64, limit: usize) -> Result<Vec<PlannedCancellation>, StoreError> {
        Ok(self.0.read(|s| {
            let mut due: Vec<_> = s.planned.values().filter(|p| p.due_at <= now).cloned().collect();
            due.sort_by_key(|p| (p.due_at, p.order_id));
            due.truncate(limit);
            due
        }))
    }
}

impl GiftTx for Stored {
    fn product(&mut self, sku: &ProductSku) -> Result<Option<Product>, StoreError> {
        Ok(self.products.get(sku).cloned())
    }

    fn programme_event(&mut self, id: &ProgrammeEventId) -> Result<Option<ProgrammeEvent>, StoreError> {
        Ok(self.events.get(id).cloned())
    }

    fn order(&mut self, id: GiftOrderId) -> Result<Option<GiftOrder>, StoreError> {
        Ok(self.orders.get(&id).cloned())
    }

    fn order_by_key(&mut self, key: &IdempotencyKey) -> Result<Option<GiftOrder>, StoreError> {
        Ok(self.orders.values().find(|o| o.idempotency_key == *key).cloned())
    }

    fn order_by_payer(&mut self, payer: Payer) -> Result<Option<GiftOrder>, StoreError> {
        Ok(self.orders.values().find(|o| o.payer == payer).cloned())
    }

    fn planned_cancellation(&mut self, order: GiftOrderId) -> Result<Option<PlannedCancellation>, StoreError> {
        Ok(self.planned.get(&order).cloned())
    }

    fn update_stock(&mut self, product: &Product) -> Result<(), StoreError> {
        save_if_unchanged(&mut self.products, &product.sku, product, |p| p.version, "product")
    }

    fn insert_product(&mut self, product: &Product) -> Result<(), StoreError> {
        if self.products.contains_key(&product.sku) {
            return Err(StoreError::new(StoreErrorKind::Duplicate, format!("product {}", product.sku)));
        }
        self.products.insert(product.sku.clone(), product.clone());
        Ok(())
    }

    fn restock(&mut self, key: &IdempotencyKey) -> Result<Option<Restock>, StoreError> {
        Ok(self.restocks.get(key).cloned())
    }

    fn insert_restock(&mut self, restock: &Restock) -> Result<(), StoreError> {
        if self.restocks.contains_key(&restock.key) {
            return Err(StoreError::new(StoreErrorKind::Duplicate, format!("restock {}", restock.key)));
        }
        self.restocks.insert(restock.key.clone(), restock.clone());
        Ok(())
    }

    fn save_programme_event(&mut self, event: &ProgrammeEvent) -> Result<(), StoreError> {
        self.events.insert(event.id.clone(), event.clone());
        Ok(())
    }

    fn update_order(&mut self, order: &GiftOrder) -> Result<(), StoreError> {
        save_if_unchanged(&mut self.orders, &order.id, order, |o| o.version, "gift order")
    }

    fn plan_cancellation(&mut self, planned: &PlannedCancellation) -> Result<(), StoreError> {
        if self.planned.contains_key(&planned.order_id) {
            return Err(StoreError::new(
                StoreErrorKind::Duplicate,
                format!("vendor cancellation {}", planned.order_id),
            ));
        }
        self.planned.insert(planned.order_id, planned.clone());
        Ok(())
    }

    fn remove_planned_cancellation(&mut self, order: GiftOrderId) -> Result<(), StoreError> {
        self.planned
            .remove(&order)
            .map(drop)
            .ok_or_else(|| StoreError::conflict("vendor cancellation", order.to_string()))
    }

    fn insert_order(&mut self, order: &GiftOrder) -> Result<(), StoreError> {
        let taken = self.orders.contains_key(&order.id)
            || self.order_by_key(&order.idempotency_key)?.is_some()
            || self.order_by_payer(order.payer)?.is_some();
        if taken {
            return Err(StoreError::new(StoreErrorKind::Duplicate, format!("gift order {}", order.id)));
        }
        self.orders.insert(order.id, order.clone());
        Ok(())
    }

    fn stage(&mut self, event: &GiftEvent) -> Result<(), StoreError> {
        self.published.push(event.clone());
        Ok(())
    }
}

impl InMemoryGiftStore {
    fn stock_of(&self, sku: &str) -> u32 {
        self.0.read(|s| s.products[&self::sku(sku)].stock)
    }

    /// The orders GiftExchanged was committed for, in order.
    fn published(&self) -> Vec<GiftOrderId> {
        self.0.read(|s| {
            s.published
                .iter()
                .filter_map(|event| match event {
                    GiftEvent::Exchanged { order, .. } => Some(order.id),
                    _ => None,
                })
                .collect()
        })
    }

    /// The orders GiftOrderCancelled was committed for, in order.
    fn cancelled(&self) -> Vec<GiftOrderId> {
        self.0.read(|s| {
            s.published
                .iter()
                .filter_map(|event| match event {
                    GiftEvent::OrderCancelled { order, .. } => Some(order.id),
                    _ => None,
                })
                .collect()
        })
    }

    /// The catalogue's audit records committed, in order.
    fn changes(&self) -> Vec<CatalogueChange> {
        self.0.read(|s| {
            s.published
                .iter()
                .filter_map(|event| match event {
                    GiftEvent::Catalogue(change) => Some(change.clone()),
                    _ => None,
                })
                .collect()
        })
    }

    /// The next exchange loses its race to `rival`, placed at 2,000 ms.
    fn rival_places(&self, rival: Exchange) {
        self.0.lose_next_write_to(move |s| {
            let product = s.products.get_mut(&rival.sku).unwrap();
            let event = s.events[&product.event_id].clone();
            let (order, event) = product.exchange(&rival, &event, &Vendor::default(), 2_000).unwrap();
            s.orders.insert(order.id, order);
            s.published.push(event);
        });
    }
}

fn sku(value: &str) -> ProductSku {
    ProductSku::parse(value).unwrap()
}

/// An exchange by player-1 of a new reward worth `points`, under `key`.
fn exchange(key: &str, product: &str, points: i64) -> Exchange {
    Exchange {
        key: IdempotencyKey::parse(key).unwrap(),
        customer_id: CustomerId::parse("player-1").unwrap(),
        payer: Payer::Reward(RewardId::generate()),
        mission_id: MissionId::generate(),
        sku: sku(product),
        points: Points::new(points).unwrap(),
    }
}

fn winter() -> ProgrammeEvent {
    ProgrammeEvent {
        id: ProgrammeEventId::parse("WINTER-2026").unwrap(),
        window: Window::new(WINTER_OPENS, WINTER_ENDS).unwrap(),
    }
}

/// The use cases over a catalogue of one product, PLUSH-MASCOT: 800 points,
/// `stock` units, billed 12.50 EUR each, sold in LAUNCH; at 1,000 ms.
fn gifts(stock: u32) -> (Gifts<InMemoryGiftStore>, InMemoryGiftStore) {
    let (gifts, store, _) = gifts_at(stock, 1_000);
    (gifts, store)
}

/// The use cases over PLUSH-MASCOT (in LAUNCH) and SNOW-SLED (300 points,
/// 10 units, in WINTER-2026), at `now` on the clock returned.
fn gifts_at(stock: u32, now: i64) -> (Gifts<InMemoryGiftStore>, InMemoryGiftStore, TestClock) {
    let store = InMemoryGiftStore::default();
    let launch = ProgrammeEvent { id: ProgrammeEventId::launch(), window: Window::open_ended(0) };
    let plush = Product {
        sku: sku("PLUSH-MASCOT"),
        name: "Plush mascot".into(),
        price: Points::new(800).unwrap(),
        stock,
        vendor_cost: 1250,
        currency: Currency::parse("EUR").unwrap(),
        event_id: launch.id.clone(),
        version: 1,
    };
    store
        .0
        .write(|s| {
            s.products.insert(plush.sku.clone(), plush);
            s.events.insert(launch.id.clone(), launch);
            s.events.insert(winter().id, winter());
            s.products.insert(sku("SNOW-SLED"), sled().list_in(&winter(), WINTER_OPENS).unwrap());
            Ok::<_, StoreError>(())
        })
        .unwrap();
    let clock = TestClock::at(now);
    (Gifts::new(store.clone(), clock.clone()), store, clock)
}

fn sled() -> Listing {
    Listing {
        sku: sku("SNOW-SLED"),
        name: Title::parse("Snow sled").unwrap(),
        price: Points::new(300).unwrap(),
        stock: 10,
        vendor_cost: 990,
        currency: Currency::parse("EUR").unwrap(),
        event_id: winter().id,
    }
}

fn operator() -> Operator {
    Operator::new("operator-ann")
}

#[tokio::test]
async fn an_exchange_places_an_order_reserves_a_unit_and_publishes_gift_exchanged() {
    let (gifts, store) = gifts(5);
    let asked = exchange("entry-1:1", "PLUSH-MASCOT", 800);

    let order = gifts.exchange(asked.clone()).await.unwrap();

    assert_eq!(order.id, GiftOrderId::for_key(&asked.key));
    assert_eq!(
        (order.payer, order.product_sku.clone(), order.status),
        (asked.payer, asked.sku, GiftOrderStatus::Placed)
    );
    assert_eq!(store.stock_of("PLUSH-MASCOT"), 4);
    assert_eq!(store.published(), [order.id]);
    let billed = store.0.read(|s| s.published[0].clone());
    assert_eq!(
        billed,
        GiftEvent::Exchanged {
            order: order.clone(),
            vendor: Vendor::default(),
            vendor_cost: 1250,
            currency: Currency::parse("EUR").unwrap()
        }
    );
    assert_eq!(gifts.order(order.id).await.unwrap(), order);
}

#[tokio::test]
async fn asking_again_under_the_same_key_returns_the_same_order_and_nothing_more() {
    let (gifts, store) = gifts(5);
    let asked = exchange("entry-1:1", "PLUSH-MASCOT", 800);

    let first = gifts.exchange(asked.clone()).await.unwrap();
    let again = gifts.exchange(asked).await.unwrap();

    assert_eq!(again, first);
    assert_eq!(store.stock_of("PLUSH-MASCOT"), 4, "one unit reserved, not two");
    assert_eq!(store.published(), [first.id], "GiftExchanged once");
}

#[tokio::test]
async fn a_reward_asked_again_under_another_key_gets_its_order_not_a_second_one() {
    let (gifts, store) = gifts(5);
    let asked = exchange("entry-1:1", "PLUSH-MASCOT", 800);
    let first = gifts.exchange(asked.clone()).await.unwrap();

    let again = gifts.exchange(Exchange { key: IdempotencyKey::parse("entry-1:2").unwrap(), ..asked }).await.unwrap();

    assert_eq!(again, first);
    assert_eq!(store.published(), [first.id]);
}

#[tokio::test]
async fn a_key_reused_for_another_exchange_is_refused() {
    let (gifts, store) = gifts(5);
    let first = gifts.exchange(exchange("entry-1:1", "PLUSH-MASCOT", 800)).await.unwrap();

    let answer = gifts.exchange(exchange("entry-1:1", "PLUSH-MASCOT", 800)).await;

    assert!(matches!(answer, Err(GiftError::Refused(ExchangeRefused::KeyReused { .. }))), "{answer:?}");
    assert_eq!(store.published(), [first.id]);
}

#[tokio::test]
async fn an_unknown_product_is_refused_and_nothing_is_stored() {
    let (gifts, store) = gifts(5);

    let answer = gifts.exchange(exchange("entry-1:1", "NO-SUCH-THING", 800)).await;

    assert!(matches!(&answer, Err(GiftError::UnknownProduct(s)) if *s == sku("NO-SUCH-THING")), "{answer:?}");
    assert!(store.0.read(|s| s.orders.is_empty()));
    assert!(store.published().is_empty());
}

#[tokio::test]
async fn an_empty_stock_is_refused_and_reserves_nothing() {
    let (gifts, store) = gifts(0);

    let answer = gifts.exchange(exchange("entry-1:1", "PLUSH-MASCOT", 800)).await;

    assert!(matches!(answer, Err(GiftError::Refused(ExchangeRefused::OutOfStock { .. }))), "{answer:?}");
    assert_eq!(store.stock_of("PLUSH-MASCOT"), 0);
    assert!(store.published().is_empty());
}

#[tokio::test]
async fn a_reward_worth_less_than_the_price_is_refused_and_reserves_nothing() {
    let (gifts, store) = gifts(5);

    let answer = gifts.exchange(exchange("entry-1:1", "PLUSH-MASCOT", 500)).await;

    assert!(matches!(answer, Err(GiftError::Refused(ExchangeRefused::NotEnoughPoints { .. }))), "{answer:?}");
    assert_eq!(store.stock_of("PLUSH-MASCOT"), 5);
    assert!(store.published().is_empty());
}

#[tokio::test]
async fn a_store_that_cannot_be_reached_reaches_the_caller_as_unavailable() {
    let (gifts, store) = gifts(5);
    store.0.script_writes([Some(StoreErrorKind::Unavailable)]);

    let answer = gifts.exchange(exchange("entry-1:1", "PLUSH-MASCOT", 800)).await;

    assert!(matches!(&answer, Err(GiftError::Storage(e)) if e.kind() == StoreErrorKind::Unavailable), "{answer:?}");
    assert_eq!(store.stock_of("PLUSH-MASCOT"), 5);
    assert!(store.published().is_empty());
}

#[tokio::test]
async fn an_exchange_that_lost_a_unit_to_a_rival_is_decided_again_on_the_stock_left() {
    let (gifts, store) = gifts(2);
    // Another player's exchange takes a unit between our read and our write.
    store.rival_places(exchange("rival:1", "PLUSH-MASCOT", 800));

    let order = gifts.exchange(exchange("entry-1:1", "PLUSH-MASCOT", 800)).await.unwrap();

    assert_eq!(store.stock_of("PLUSH-MASCOT"), 0, "the rival's unit and ours");
    assert_eq!(store.published().len(), 2);
    assert_eq!(store.published()[1], order.id);
}

#[tokio::test]
async fn an_exchange_that_lost_the_last_unit_to_a_rival_is_decided_again_and_refused() {
    let (gifts, store) = gifts(1);
    // Another player's exchange takes a unit between our read and our write.
    store.rival_places(exchange("rival:1", "PLUSH-MASCOT", 800));

    let answer = gifts.exchange(exchange("entry-1:1", "PLUSH-MASCOT", 800)).await;

    assert!(matches!(answer, Err(GiftError::Refused(ExchangeRefused::OutOfStock { .. }))), "{answer:?}");
    assert_eq!(store.published().len(), 1, "the rival's order only");
}

#[tokio::test]
async fn the_loser_of_two_first_exchanges_under_one_key_gets_the_winners_order() {
    let (gifts, store) = gifts(5);
    let asked = exchange("entry-1:1", "PLUSH-MASCOT", 800);
    // The same exchange, asked twice at once: the other call commits first.
    store.rival_places(asked.clone());

    let order = gifts.exchange(asked.clone()).await.unwrap();

    assert_eq!(order.id, GiftOrderId::for_key(&asked.key));
    assert_eq!(order.placed_at, 2_000, "the winner's order");
    assert_eq!(store.stock_of("PLUSH-MASCOT"), 4);
    assert_eq!(store.published(), [order.id]);
}

#[tokio::test]
async fn a_race_lost_every_time_reaches_the_caller_as_a_conflict() {
    let (gifts, store) = gifts(5);
    store.0.script_writes([Some(StoreErrorKind::Conflict); 5]);

    let answer = gifts.exchange(exchange("entry-1:1", "PLUSH-MASCOT", 800)).await;

    assert!(matches!(&answer, Err(GiftError::Storage(e)) if e.kind() == StoreErrorKind::Conflict), "{answer:?}");
    assert_eq!(store.stock_of("PLUSH-MASCOT"), 5);
    assert!(store.published().is_empty());
}

#[tokio::test]
async fn an_order_that_does_not_exist_is_not_found() {
    let (gifts, _) = gifts(5);
    let id = GiftOrderId::generate();
    assert!(matches!(gifts.order(id).await, Err(GiftError::OrderNotFound(missing)) if missing == id));
}

fn plan(after_ms: i64) -> Option<CancellationPlan> {
    Some(CancellationPlan { after_ms, reason: "the item could not be supplied".into() })
}

#[tokio::test]
async fn players_see_only_the_products_of_open_events_and_operators_all() {
    let (gifts, _, clock) = gifts_at(5, WINTER_OPENS - 1);
    let skus = |products: Vec<Product>| products.into_iter().map(|p| p.sku.to_string()).collect::<Vec<_>>();

    assert_eq!(skus(gifts.products().await.unwrap()), ["PLUSH-MASCOT"], "before WINTER-2026 opens");
    clock.set(WINTER_OPENS);
    assert_eq!(skus(gifts.products().await.unwrap()), ["PLUSH-MASCOT", "SNOW-SLED"]);
    clock.set(WINTER_ENDS);
    assert_eq!(skus(gifts.products().await.unwrap()), ["PLUSH-MASCOT"], "after it ended: LAUNCH only");
    assert_eq!(skus(gifts.catalogue().await.unwrap()), ["PLUSH-MASCOT", "SNOW-SLED"], "operators see all");
}

#[tokio::test]
async fn an_exchange_outside_its_events_window_is_refused_naming_the_event_and_time() {
    let (gifts, store, clock) = gifts_at(5, WINTER_OPENS - 1);

    let early = gifts.exchange(exchange("entry-1:1", "SNOW-SLED", 300)).await.unwrap_err();
    clock.set(WINTER_ENDS);
    let late = gifts.exchange(exchange("entry-2:1", "SNOW-SLED", 300)).await.unwrap_err();

    assert_eq!(early.to_string(), "event WINTER-2026 opens at 2026-12-24T00:00:00Z; SNOW-SLED is not exchanged before");
    assert_eq!(late.to_string(), "event WINTER-2026 ended at 2027-01-10T00:00:00Z; SNOW-SLED is no longer exchanged");
    assert_eq!(store.stock_of("SNOW-SLED"), 10, "nothing reserved");
    assert!(store.published().is_empty());
    clock.set(WINTER_OPENS);
    assert!(gifts.exchange(exchange("entry-3:1", "SNOW-SLED", 300)).await.is_ok(), "open in its window");
}

#[tokio::test]
async fn an_order_placed_in_the_window_is_answered_again_after_it_closed() {
    let (gifts, _, clock) = gifts_at(5, WINTER_OPENS);
    let asked = exchange("entry-1:1", "SNOW-SLED", 300);
    let first = gifts.exchange(asked.clone()).await.unwrap();

    clock.set(WINTER_ENDS);

    assert_eq!(gifts.exchange(asked).await.unwrap(), first, "a retry is a replay, not a new exchange");
}

#[tokio::test]
async fn an_operator_lists_a_product_once_audited_and_a_retry_returns_it() {
    let (gifts, store, _) = gifts_at(5, WINTER_OPENS - 1);
    let sticker = Listing { sku: sku("WINTER-STICKER"), stock: 50, ..sled() };

    let listed = gifts.list_product(operator(), sticker.clone()).await.unwrap();
    let again = gifts.list_product(operator(), sticker.clone()).await.unwrap();

    assert_eq!((listed.stock, listed.event_id.as_str(), listed.version), (50, "WINTER-2026", 1));
    assert_eq!(again, listed);
    assert_eq!(
        store.changes(),
        [CatalogueChange::Listed { product: listed, operator: operator(), changed_at: WINTER_OPENS - 1 }],
        "one audit record"
    );
    let otherwise =
        gifts.list_product(operator(), Listing { stock: 51, name: Title::parse("Other").unwrap(), ..sticker });
    assert!(matches!(otherwise.await, Err(GiftError::Catalogue(CatalogueRefused::ListedOtherwise { .. }))));
}

#[tokio::test]
async fn a_product_cannot_be_listed_in_an_unknown_or_ended_event() {
    let (gifts, store, _) = gifts_at(5, WINTER_ENDS);
    let unknown = Listing { event_id: ProgrammeEventId::parse("SPRING-2027").unwrap(), sku: sku("TULIP"), ..sled() };

    let not_known = gifts.list_product(operator(), unknown).await;
    let ended = gifts.list_product(operator(), Listing { sku: sku("LATE-SLED"), ..sled() }).await;

    assert!(matches!(&not_known, Err(GiftError::UnknownEvent(id)) if id.as_str() == "SPRING-2027"), "{not_known:?}");
    assert_eq!(
        ended.unwrap_err().to_string(),
        "event WINTER-2026 ended at 2027-01-10T00:00:00Z; nothing can be listed in it"
    );
    assert!(store.changes().is_empty());
}

#[tokio::test]
async fn a_restock_adds_units_and_is_audited_with_the_operator_and_time() {
    let (gifts, store, _) = gifts_at(0, 5_000);

    let restocked = gifts.restock(operator(), sku("PLUSH-MASCOT"), NonZeroU32::new(7).unwrap(), None).await.unwrap();

    assert_eq!((restocked.stock, restocked.version), (7, 2));
    assert_eq!(store.stock_of("PLUSH-MASCOT"), 7);
    assert_eq!(
        store.changes(),
        [CatalogueChange::Restocked { product: restocked, units: 7, operator: operator(), changed_at: 5_000 }]
    );
    let unknown = gifts.restock(operator(), sku("NO-SUCH-THING"), NonZeroU32::MIN, None).await;
    assert!(matches!(unknown, Err(GiftError::UnknownProduct(_))), "{unknown:?}");
}

#[tokio::test]
async fn a_restock_that_lost_a_unit_to_an_exchange_adds_to_the_stock_it_left() {
    let (gifts, store, _) = gifts_at(5, 5_000);
    store.rival_places(exchange("rival:1", "PLUSH-MASCOT", 800));

    let restocked = gifts.restock(operator(), sku("PLUSH-MASCOT"), NonZeroU32::new(10).unwrap(), None).await.unwrap();

    assert_eq!(restocked.stock, 14, "5 - 1 + 10");
    assert_eq!(store.stock_of("PLUSH-MASCOT"), 14);
}

fn restock_key(value: &str) -> Option<IdempotencyKey> {
    Some(IdempotencyKey::parse(value).unwrap())
}

#[tokio::test]
async fn a_restock_under_a_key_adds_its_units_once_and_answers_the_same_when_asked_again() {
    let (gifts, store, _) = gifts_at(5, 5_000);
    let units = NonZeroU32::new(10).unwrap();

    let first = gifts.restock(operator(), sku("PLUSH-MASCOT"), units, restock_key("restock-7")).await.unwrap();
    gifts.exchange(exchange("entry-1:1", "PLUSH-MASCOT", 800)).await.unwrap();
    let again = gifts.restock(operator(), sku("PLUSH-MASCOT"), units, restock_key("restock-7")).await.unwrap();

    assert_eq!((first.stock, first.version), (15, 2));
    assert_eq!(again, first, "the first call's answer");
    assert_eq!(store.stock_of("PLUSH-MASCOT"), 14, "5 + 10 - 1: added once");
    assert_eq!(store.changes().len(), 1, "audited once");
}

#[tokio::test]
async fn restocks_without_a_key_each_add_their_units() {
    let (gifts, store, _) = gifts_at(5, 5_000);
    let units = NonZeroU32::new(10).unwrap();

    gifts.restock(operator(), sku("PLUSH-MASCOT"), units, None).await.unwrap();
    gifts.restock(operator(), sku("PLUSH-MASCOT"), units, None).await.unwrap();

    assert_eq!(store.stock_of("PLUSH-MASCOT"), 25);
    assert_eq!(store.changes().len(), 2);
}

#[tokio::test]
async fn a_restock_key_asked_for_another_restock_is_refused_and_adds_nothing() {
    let (gifts, store, _) = gifts_at(5, 5_000);
    gifts
        .restock(operator(), sku("PLUSH-MASCOT"), NonZeroU32::new(10).unwrap(), restock_key("restock-7"))
        .await
        .unwrap();

    let more =
        gifts.restock(operator(), sku("PLUSH-MASCOT"), NonZeroU32::new(11).unwrap(), restock_key("restock-7")).await;
    let other =
        gifts.restock(operator(), sku("SNOW-SLED"), NonZeroU32::new(10).unwrap(), restock_key("restock-7")).await;

    assert!(
        matches!(&more, Err(GiftError::Catalogue(CatalogueRefused::RestockKeyReused { units: 10, .. }))),
        "{more:?}"
    );
    assert!(matches!(&other, Err(GiftError::Catalogue(CatalogueRefused::RestockKeyReused { .. }))), "{other:?}");
    assert_eq!((store.stock_of("PLUSH-MASCOT"), store.stock_of("SNOW-SLED")), (15, 10));
    assert_eq!(store.changes().len(), 1);
}

#[tokio::test]
async fn a_restock_that_lost_to_the_same_restock_answers_with_the_winners_result() {
    let (gifts, store, _) = gifts_at(5, 5_000);
    let units = NonZeroU32::new(10).unwrap();
    store.0.lose_next_write_to(move |s| {
        restock_in(s, operator(), &sku("PLUSH-MASCOT"), units, restock_key("restock-7"), 4_000).unwrap();
    });

    let answer = gifts.restock(operator(), sku("PLUSH-MASCOT"), units, restock_key("restock-7")).await.unwrap();

    assert_eq!((answer.stock, answer.version), (15, 2));
    assert_eq!(store.stock_of("PLUSH-MASCOT"), 15, "added once, by the winner");
    assert_eq!(store.changes().len(), 1);
}

#[tokio::test]
async fn the_vendor_cancels_a_planned_order_once_when_it_is_due() {
    let (gifts, store, clock) = gifts_at(5, 1_000);
    let order = gifts.exchange_as_vendor_plans(exchange("entry-1:1", "PLUSH-MASCOT", 800), plan(500)).await.unwrap();
    assert_eq!(store.stock_of("PLUSH-MASCOT"), 4);

    assert_eq!(gifts.cancel_due().await.unwrap(), 0, "not due yet");
    clock.set(1_500);
    assert_eq!(gifts.cancel_due().await.unwrap(), 1);
    assert_eq!(gifts.cancel_due().await.unwrap(), 0, "done once");

    let cancelled = gifts.order(order.id).await.unwrap();
    assert_eq!((cancelled.status, cancelled.version), (GiftOrderStatus::Cancelled, 2));
    let cancellation = cancelled.cancellation.clone().unwrap();
    assert_eq!((cancellation.cancelled_at, cancellation.reason.as_str()), (1_500, "the item could not be supplied"));
    assert_eq!(store.stock_of("PLUSH-MASCOT"), 5, "the unit is back");
    assert_eq!(store.cancelled(), [order.id]);
    let event = store.0.read(|s| s.published.last().cloned().unwrap());
    assert_eq!(
        event,
        GiftEvent::OrderCancelled { order: cancelled, vendor_cost: 1250, currency: Currency::parse("EUR").unwrap() }
    );
}

#[tokio::test]
async fn an_order_the_vendor_does_not_cancel_stays_placed() {
    let (gifts, store, clock) = gifts_at(5, 1_000);
    let order = gifts.exchange(exchange("entry-1:1", "PLUSH-MASCOT", 800)).await.unwrap();

    clock.set(i64::MAX);

    assert_eq!(gifts.cancel_due().await.unwrap(), 0);
    assert_eq!(gifts.order(order.id).await.unwrap().status, GiftOrderStatus::Placed);
    assert!(store.cancelled().is_empty());
}

#[tokio::test]
async fn a_replayed_exchange_plans_nothing_more() {
    let (gifts, store, _) = gifts_at(5, 1_000);
    let asked = exchange("entry-1:1", "PLUSH-MASCOT", 800);
    gifts.exchange(asked.clone()).await.unwrap();

    gifts.exchange_as_vendor_plans(asked, plan(0)).await.unwrap();

    assert!(store.0.read(|s| s.planned.is_empty()), "the order's fate was decided when it was placed");
}

#[tokio::test]
async fn a_cancellation_carried_out_again_changes_nothing() {
    let (gifts, store, clock) = gifts_at(5, 1_000);
    let order = gifts.exchange_as_vendor_plans(exchange("entry-1:1", "PLUSH-MASCOT", 800), plan(0)).await.unwrap();
    let planned = store.0.read(|s| s.planned[&order.id].clone());
    assert_eq!(gifts.cancel_planned(planned.clone()).await.unwrap().map(|o| o.id), Some(order.id));

    // The same plan, as a replica that listed it before it was done holds it.
    clock.set(2_000);
    assert_eq!(gifts.cancel_planned(planned).await.unwrap(), None);

    assert_eq!(store.cancelled(), [order.id], "GiftOrderCancelled once");
    assert_eq!(store.stock_of("PLUSH-MASCOT"), 5, "the unit back once");
    assert_eq!(gifts.order(order.id).await.unwrap().version, 2);
}

#[tokio::test]
async fn a_cancellation_that_lost_its_race_to_another_replica_finds_it_done() {
    let (gifts, store, _) = gifts_at(5, 1_000);
    let order = gifts.exchange_as_vendor_plans(exchange("entry-1:1", "PLUSH-MASCOT", 800), plan(0)).await.unwrap();
    let planned = store.0.read(|s| s.planned[&order.id].clone());
    // Another replica cancels the same order between our reads and our write.
    let order_id = order.id;
    store.0.lose_next_write_to(move |s| {
        cancel_in(s, order_id, 900).unwrap();
    });

    let outcome = gifts.cancel_planned(planned).await.unwrap();

    assert_eq!(outcome, None, "decided again: done by the rival");
    assert_eq!(store.cancelled(), [order.id], "cancelled once");
    assert_eq!(store.stock_of("PLUSH-MASCOT"), 5);
    assert_eq!(gifts.order(order.id).await.unwrap().cancellation.unwrap().cancelled_at, 900, "the rival's");
}

#[tokio::test]
async fn the_programme_events_gift_learns_are_kept_once_and_as_they_now_stand() {
    let store = InMemoryGiftStore::default();
    let spring = ProgrammeEvent {
        id: ProgrammeEventId::parse("SPRING-2027").unwrap(),
        window: Window::new(WINTER_ENDS, WINTER_ENDS + 1_000).unwrap(),
    };

    store.0.write(|s| keep_programme_event(s, &spring)).unwrap();
    store.0.write(|s| keep_programme_event(s, &spring)).unwrap();
    let longer = ProgrammeEvent { window: Window::new(WINTER_ENDS, WINTER_ENDS + 2_000).unwrap(), ..spring.clone() };
    store.0.write(|s| keep_programme_event(s, &longer)).unwrap();

    assert_eq!(store.0.read(|s| s.events.values().cloned().collect::<Vec<_>>()), [longer]);
}
