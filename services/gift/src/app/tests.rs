//! The gift use cases against an in-memory store: no database, no network.
//! The diesel store behind the same port is tested in `tests/api`.

#![allow(clippy::unwrap_used)] // a test that cannot proceed should stop right there

use std::collections::BTreeMap;

use kernel::StoreErrorKind;
use kernel::{Currency, CustomerId, Points};
use testkit::{MemoryStore, save_if_unchanged};

use super::*;
use crate::domain::{GiftEvent, GiftOrderStatus, IdempotencyKey, MissionId, RewardId};
use crate::ports::GiftTx;

/// What the store holds.
#[derive(Debug, Clone, Default)]
struct Stored {
    products: BTreeMap<ProductSku, Product>,
    orders: BTreeMap<GiftOrderId, GiftOrder>,
    published: Vec<GiftEvent>,
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

    async fn order(&self, id: GiftOrderId) -> Result<Option<GiftOrder>, StoreError> {
        Ok(self.0.read(|s| s.orders.get(&id).cloned()))
    }
}

impl GiftTx for Stored {
    fn product(&mut self, sku: &ProductSku) -> Result<Option<Product>, StoreError> {
        Ok(self.products.get(sku).cloned())
    }

    fn order_by_key(&mut self, key: &IdempotencyKey) -> Result<Option<GiftOrder>, StoreError> {
        Ok(self.orders.values().find(|o| o.idempotency_key == *key).cloned())
    }

    fn order_by_reward(&mut self, reward: RewardId) -> Result<Option<GiftOrder>, StoreError> {
        Ok(self.orders.values().find(|o| o.reward_id == reward).cloned())
    }

    fn update_stock(&mut self, product: &Product) -> Result<(), StoreError> {
        save_if_unchanged(&mut self.products, &product.sku, product, |p| p.version, "product")
    }

    fn insert_order(&mut self, order: &GiftOrder) -> Result<(), StoreError> {
        let taken = self.orders.contains_key(&order.id)
            || self.order_by_key(&order.idempotency_key)?.is_some()
            || self.order_by_reward(order.reward_id)?.is_some();
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
        self.0.read(|s| s.published.iter().map(|GiftEvent::Exchanged { order, .. }| order.id).collect())
    }

    /// The next exchange loses its race to `rival`, placed at 2,000 ms.
    fn rival_places(&self, rival: Exchange) {
        self.0.lose_next_write_to(move |s| {
            let product = s.products.get_mut(&rival.sku).unwrap();
            let (order, event) = product.exchange(&rival, 2_000).unwrap();
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
        reward_id: RewardId::generate(),
        mission_id: MissionId::generate(),
        sku: sku(product),
        points: Points::new(points).unwrap(),
    }
}

/// The use cases over a catalogue of one product, PLUSH-MASCOT: 800 points,
/// `stock` units, billed 12.50 EUR each.
fn gifts(stock: u32) -> (Gifts<InMemoryGiftStore>, InMemoryGiftStore) {
    let store = InMemoryGiftStore::default();
    let plush = Product {
        sku: sku("PLUSH-MASCOT"),
        name: "Plush mascot".into(),
        price: Points::new(800).unwrap(),
        stock,
        vendor_cost: 1250,
        currency: Currency::parse("EUR").unwrap(),
        version: 1,
    };
    store
        .0
        .write(|s| {
            s.products.insert(plush.sku.clone(), plush);
            Ok::<_, StoreError>(())
        })
        .unwrap();
    (Gifts::new(store.clone()), store)
}

#[tokio::test]
async fn an_exchange_places_an_order_reserves_a_unit_and_publishes_gift_exchanged() {
    let (gifts, store) = gifts(5);
    let asked = exchange("entry-1:1", "PLUSH-MASCOT", 800);

    let order = gifts.exchange(asked.clone()).await.unwrap();

    assert_eq!(order.id, GiftOrderId::for_key(&asked.key));
    assert_eq!(
        (order.reward_id, order.product_sku.clone(), order.status),
        (asked.reward_id, asked.sku, GiftOrderStatus::Placed)
    );
    assert_eq!(store.stock_of("PLUSH-MASCOT"), 4);
    assert_eq!(store.published(), [order.id]);
    let billed = store.0.read(|s| s.published[0].clone());
    assert_eq!(
        billed,
        GiftEvent::Exchanged { order: order.clone(), vendor_cost: 1250, currency: Currency::parse("EUR").unwrap() }
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
