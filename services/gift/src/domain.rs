//! The gift domain, pure: the product catalogue, the GiftOrder aggregate and
//! the exchange rules. No I/O, no async, no framework types.
//!
//! - [`catalogue`]: the events products are sold in, and operators'
//!   listings and restocks.

pub mod catalogue;

use kernel::programme::ProgrammeEventId;
use kernel::rfc3339;
pub use kernel::{Currency, CurrencyError, IdempotencyKey, IdempotencyKeyError, ProductSku, ProductSkuError, Vendor};
use kernel::{CustomerId, Points};

use self::catalogue::{CatalogueChange, ProgrammeEvent, StockFull};

kernel::uuid_id!(
    /// One product handed out for one reward.
    GiftOrderId
);
kernel::uuid_id!(
    /// The reward whose points pay for an order; at most one order each.
    RewardId
);
kernel::uuid_id!(
    /// The wallet exchange whose points pay for an order, paid from as many
    /// rewards as it needed; at most one order each.
    ExchangeId
);

/// Who pays for an order: at most one order per payer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Payer {
    /// One reward's points, all of them (the wallet's exchanges before its
    /// points added up, re-driven under their old keys).
    Reward(RewardId),
    /// A wallet exchange: the points it reserved across the player's rewards.
    Exchange(ExchangeId),
}

impl Payer {
    /// The payer's id; rewards and exchanges never share one.
    pub fn as_uuid(&self) -> kernel::Uuid {
        match self {
            Self::Reward(id) => id.as_uuid(),
            Self::Exchange(id) => id.as_uuid(),
        }
    }

    /// The reward paying, when one reward does.
    pub fn reward(&self) -> Option<RewardId> {
        match self {
            Self::Reward(id) => Some(*id),
            Self::Exchange(_) => None,
        }
    }

    /// The wallet exchange paying, when an exchange does.
    pub fn exchange(&self) -> Option<ExchangeId> {
        match self {
            Self::Exchange(id) => Some(*id),
            Self::Reward(_) => None,
        }
    }
}

impl std::fmt::Display for Payer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Reward(id) => write!(f, "reward {id}"),
            Self::Exchange(id) => write!(f, "wallet exchange {id}"),
        }
    }
}
kernel::uuid_id!(
    /// The mission the reward was earned for: the correlation key of its life.
    MissionId
);

/// The namespace of order ids derived from idempotency keys. Fixed forever:
/// changing it would give a replayed key a different order id.
const ORDER_ID_NAMESPACE: uuid::Uuid = uuid::Uuid::from_u128(0x123a_8de6_af92_4df5_95ce_dfd1_f94b_4884);

impl GiftOrderId {
    /// The id of the order placed under `key`.
    ///
    /// Derived rather than random, so that whatever path an exchange takes
    /// (first call, replay, retried transaction) one key names one order, and
    /// the primary key refuses a second order for a key even if the unique
    /// index on the key were ever lost.
    pub fn for_key(key: &IdempotencyKey) -> Self {
        Self::from_uuid(uuid::Uuid::new_v5(&ORDER_ID_NAMESPACE, key.as_str().as_bytes()))
    }
}

/// One product of the catalogue, with the units left to hand out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Product {
    pub sku: ProductSku,
    pub name: String,
    /// What a reward must be worth to buy one unit.
    pub price: Points,
    /// Units left; an exchange reserves one.
    pub stock: u32,
    /// What the vendor bills us per unit, in minor units of `currency`;
    /// the settlement context records it for every order.
    pub vendor_cost: i64,
    pub currency: Currency,
    /// The event of the programme whose window the product is sold in.
    pub event_id: ProgrammeEventId,
    /// Optimistic-concurrency version, bumped on every change.
    pub version: i64,
}

/// What the wallet asks for: a payer's points for one product, under the
/// caller's idempotency key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exchange {
    pub key: IdempotencyKey,
    pub customer_id: CustomerId,
    pub payer: Payer,
    pub mission_id: MissionId,
    pub sku: ProductSku,
    /// What the payer offers.
    pub points: Points,
}

/// Where an order is in its life. The vendor's fulfilment is not modelled:
/// an order is placed, and stays so unless the vendor cancels it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum GiftOrderStatus {
    Placed,
    Cancelled,
}

/// Why the vendor cancelled an order, and when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cancellation {
    /// Milliseconds since the Unix epoch.
    pub cancelled_at: i64,
    /// In the vendor's words.
    pub reason: String,
}

/// What the vendor told us, when the order was placed, it would do later:
/// cancel it `after_ms` milliseconds on, for `reason`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CancellationPlan {
    pub after_ms: i64,
    pub reason: String,
}

/// An order the vendor will cancel at `due_at`: kept with the order, done
/// once by whichever replica's job claims it when it is due.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedCancellation {
    pub order_id: GiftOrderId,
    /// Milliseconds since the Unix epoch.
    pub due_at: i64,
    pub reason: String,
}

/// The GiftOrder aggregate: one product handed out for one reward.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GiftOrder {
    pub id: GiftOrderId,
    pub idempotency_key: IdempotencyKey,
    pub customer_id: CustomerId,
    pub payer: Payer,
    pub mission_id: MissionId,
    pub product_sku: ProductSku,
    /// What the payer paid.
    pub points: Points,
    pub status: GiftOrderStatus,
    /// Milliseconds since the Unix epoch.
    pub placed_at: i64,
    /// When and why the vendor cancelled it; `Some` exactly when it is cancelled.
    pub cancellation: Option<Cancellation>,
    /// Optimistic-concurrency version, bumped on every change.
    pub version: i64,
}

/// What happened in the gift context.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GiftEvent {
    /// An order was placed; `vendor` bills `vendor_cost` in `currency` for
    /// it, as priced at the moment of the exchange.
    Exchanged { order: GiftOrder, vendor: Vendor, vendor_cost: i64, currency: Currency },
    /// The vendor cancelled an order (as it now stands): it no longer bills
    /// `vendor_cost` in `currency`, and the points go back to the player.
    OrderCancelled { order: GiftOrder, vendor_cost: i64, currency: Currency },
    /// An operator changed the catalogue: its audit record.
    Catalogue(CatalogueChange),
}

/// Why an exchange places no order. Each is definite: retrying the same
/// request gets the same answer, and nothing was reserved.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExchangeRefused {
    #[error(
        "not enough points: {sku} costs {} points, the reward is worth {}",
        .price.value(),
        .points.value()
    )]
    NotEnoughPoints { sku: ProductSku, price: Points, points: Points },
    #[error("{sku} is out of stock")]
    OutOfStock { sku: ProductSku },
    #[error("event {event} opens at {}; {sku} is not exchanged before", rfc3339(*opens_at))]
    EventNotOpenYet { sku: ProductSku, event: ProgrammeEventId, opens_at: i64 },
    #[error("event {event} ended at {}; {sku} is no longer exchanged", rfc3339(*ended_at))]
    EventEnded { sku: ProductSku, event: ProgrammeEventId, ended_at: i64 },
    /// The key already names an exchange of another reward, product or player.
    #[error("idempotency key {key} was already used for a different exchange")]
    KeyReused { key: IdempotencyKey },
    /// The payer already paid for another product (or another player's order).
    #[error("{payer} was already exchanged (order {order_id})")]
    RewardAlreadyExchanged { payer: Payer, order_id: GiftOrderId },
}

/// Why a vendor's cancellation changes nothing.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CancelRefused {
    /// Cancelling it again changes nothing.
    #[error("gift order {0} is cancelled already")]
    AlreadyCancelled(GiftOrderId),
    #[error(transparent)]
    StockFull(#[from] StockFull),
}

impl Product {
    /// Reserves one unit for `exchange` and places its order, which
    /// `vendor` fulfils and bills.
    ///
    /// The caller loads the product `exchange.sku` names, and the event of
    /// the programme it is sold in; the order is for this product.
    ///
    /// # Errors
    /// [`ExchangeRefused::EventNotOpenYet`] or [`ExchangeRefused::EventEnded`]
    /// outside the event's window, [`ExchangeRefused::NotEnoughPoints`] when
    /// the reward is worth less than the price, [`ExchangeRefused::OutOfStock`]
    /// when no unit is left; the product is then unchanged.
    pub fn exchange(
        &mut self,
        exchange: &Exchange,
        event: &ProgrammeEvent,
        vendor: &Vendor,
        now: i64,
    ) -> Result<(GiftOrder, GiftEvent), ExchangeRefused> {
        event.check_on_sale(&self.sku, now)?;
        if exchange.points < self.price {
            return Err(ExchangeRefused::NotEnoughPoints {
                sku: self.sku.clone(),
                price: self.price,
                points: exchange.points,
            });
        }
        let Some(left) = self.stock.checked_sub(1) else {
            return Err(ExchangeRefused::OutOfStock { sku: self.sku.clone() });
        };
        self.stock = left;
        self.version += 1;
        let order = GiftOrder {
            id: GiftOrderId::for_key(&exchange.key),
            idempotency_key: exchange.key.clone(),
            customer_id: exchange.customer_id.clone(),
            payer: exchange.payer,
            mission_id: exchange.mission_id,
            product_sku: self.sku.clone(),
            points: exchange.points,
            status: GiftOrderStatus::Placed,
            placed_at: now,
            cancellation: None,
            version: 1,
        };
        let event = GiftEvent::Exchanged {
            order: order.clone(),
            vendor: vendor.clone(),
            vendor_cost: self.vendor_cost,
            currency: self.currency.clone(),
        };
        Ok((order, event))
    }

    /// Adds `units` to the stock.
    ///
    /// # Errors
    /// [`StockFull`] when the stock would exceed what it can count; it is
    /// then unchanged.
    pub fn add_units(&mut self, units: u32) -> Result<(), StockFull> {
        self.stock = self.stock.checked_add(units).ok_or_else(|| StockFull { sku: self.sku.clone(), units })?;
        self.version += 1;
        Ok(())
    }
}

impl GiftOrder {
    /// The vendor cancelled this order at `now`: it becomes CANCELLED, once,
    /// and its unit goes back to `product` (the one it was for).
    ///
    /// # Errors
    /// [`CancelRefused::AlreadyCancelled`] when it is, [`CancelRefused::StockFull`]
    /// when the unit cannot be counted back; the order and the product are
    /// then unchanged.
    pub fn cancel(&mut self, product: &mut Product, reason: String, now: i64) -> Result<GiftEvent, CancelRefused> {
        if self.status == GiftOrderStatus::Cancelled {
            return Err(CancelRefused::AlreadyCancelled(self.id));
        }
        product.add_units(1)?;
        self.status = GiftOrderStatus::Cancelled;
        self.cancellation = Some(Cancellation { cancelled_at: now, reason });
        self.version += 1;
        Ok(GiftEvent::OrderCancelled {
            order: self.clone(),
            vendor_cost: product.vendor_cost,
            currency: product.currency.clone(),
        })
    }

    /// Answers an exchange under this order's idempotency key: the same
    /// exchange (player, payer, product) is a replay and gets this order.
    ///
    /// # Errors
    /// [`ExchangeRefused::KeyReused`] when the key now names another exchange.
    pub fn replay_for_key(&self, exchange: &Exchange) -> Result<(), ExchangeRefused> {
        let same_exchange = self.customer_id == exchange.customer_id
            && self.payer == exchange.payer
            && self.product_sku == exchange.sku;
        if same_exchange { Ok(()) } else { Err(ExchangeRefused::KeyReused { key: exchange.key.clone() }) }
    }

    /// Answers an exchange of this order's payer under another key: the
    /// payer already paid for this product, so the caller completes
    /// with this order rather than getting a second one.
    ///
    /// # Errors
    /// [`ExchangeRefused::RewardAlreadyExchanged`] when the exchange asks for
    /// another product, or comes from another player.
    pub fn replay_for_reward(&self, exchange: &Exchange) -> Result<(), ExchangeRefused> {
        if self.product_sku == exchange.sku && self.customer_id == exchange.customer_id {
            Ok(())
        } else {
            Err(ExchangeRefused::RewardAlreadyExchanged { payer: self.payer, order_id: self.id })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sku(value: &str) -> ProductSku {
        ProductSku::parse(value).unwrap()
    }

    fn points(value: i64) -> Points {
        Points::new(value).unwrap()
    }

    fn plush(stock: u32) -> Product {
        Product {
            sku: sku("PLUSH-MASCOT"),
            name: "Plush mascot".into(),
            price: points(800),
            stock,
            vendor_cost: 1250,
            currency: Currency::parse("EUR").unwrap(),
            event_id: ProgrammeEventId::launch(),
            version: 7,
        }
    }

    fn launch() -> ProgrammeEvent {
        ProgrammeEvent { id: ProgrammeEventId::launch(), window: kernel::programme::Window::open_ended(0) }
    }

    fn exchange_of(points_worth: i64) -> Exchange {
        Exchange {
            key: IdempotencyKey::parse("entry-1:1").unwrap(),
            customer_id: CustomerId::parse("player-1").unwrap(),
            payer: Payer::Reward(RewardId::generate()),
            mission_id: MissionId::generate(),
            sku: sku("PLUSH-MASCOT"),
            points: points(points_worth),
        }
    }

    fn placed(exchange: &Exchange) -> GiftOrder {
        plush(5).exchange(exchange, &launch(), &Vendor::default(), 1_000).unwrap().0
    }

    #[test]
    fn a_reward_worth_the_price_reserves_one_unit_and_places_an_order() {
        // Given a product with 5 units and a reward worth exactly its price
        let mut product = plush(5);
        let exchange = exchange_of(800);
        // When it is exchanged
        let (order, event) = product.exchange(&exchange, &launch(), &Vendor::default(), 1_000).unwrap();
        // Then one unit is reserved and the order records the exchange
        assert_eq!((product.stock, product.version), (4, 8));
        assert_eq!(order.id, GiftOrderId::for_key(&exchange.key));
        assert_eq!(order.idempotency_key, exchange.key);
        assert_eq!(order.customer_id, exchange.customer_id);
        assert_eq!(order.payer, exchange.payer);
        assert_eq!(order.mission_id, exchange.mission_id);
        assert_eq!(order.product_sku, sku("PLUSH-MASCOT"));
        assert_eq!(order.points, points(800));
        assert_eq!(order.status, GiftOrderStatus::Placed);
        assert_eq!((order.placed_at, order.version), (1_000, 1));
        // And the event carries what the vendor bills for it
        let (vendor, currency) = (Vendor::default(), Currency::parse("EUR").unwrap());
        assert_eq!(event, GiftEvent::Exchanged { order, vendor, vendor_cost: 1250, currency });
    }

    #[test]
    fn the_last_unit_can_be_exchanged() {
        let mut product = plush(1);
        assert!(product.exchange(&exchange_of(2000), &launch(), &Vendor::default(), 1_000).is_ok());
        assert_eq!(product.stock, 0);
    }

    #[test]
    fn a_reward_worth_less_than_the_price_is_refused_and_reserves_nothing() {
        // Given a product that costs 800 points
        let mut product = plush(5);
        // When a reward worth 500 asks for it
        let refused = product.exchange(&exchange_of(500), &launch(), &Vendor::default(), 1_000).unwrap_err();
        // Then it is refused with both amounts, and the stock is unchanged
        assert_eq!(
            refused,
            ExchangeRefused::NotEnoughPoints { sku: sku("PLUSH-MASCOT"), price: points(800), points: points(500) }
        );
        assert_eq!(refused.to_string(), "not enough points: PLUSH-MASCOT costs 800 points, the reward is worth 500");
        assert_eq!(product, plush(5));
    }

    #[test]
    fn a_product_without_stock_is_refused_and_stays_at_zero() {
        // Given a product with no unit left
        let mut product = plush(0);
        // When a reward worth enough asks for it
        let refused = product.exchange(&exchange_of(800), &launch(), &Vendor::default(), 1_000).unwrap_err();
        // Then it is out of stock, and nothing changed
        assert_eq!(refused, ExchangeRefused::OutOfStock { sku: sku("PLUSH-MASCOT") });
        assert_eq!(refused.to_string(), "PLUSH-MASCOT is out of stock");
        assert_eq!(product, plush(0));
    }

    #[test]
    fn too_few_points_are_reported_before_an_empty_stock() {
        let refused = plush(0).exchange(&exchange_of(100), &launch(), &Vendor::default(), 1_000).unwrap_err();
        assert!(matches!(refused, ExchangeRefused::NotEnoughPoints { .. }));
    }

    #[test]
    fn a_product_of_an_event_that_is_not_open_is_refused_and_reserves_nothing() {
        let mut product = plush(5);
        let closed = ProgrammeEvent {
            id: ProgrammeEventId::parse("WINTER-2026").unwrap(),
            window: kernel::programme::Window::new(2_000, 3_000).unwrap(),
        };
        let refused = product.exchange(&exchange_of(800), &closed, &Vendor::default(), 3_000).unwrap_err();
        assert!(matches!(refused, ExchangeRefused::EventEnded { ended_at: 3_000, .. }), "{refused:?}");
        let refused = plush(0).exchange(&exchange_of(100), &closed, &Vendor::default(), 1_999).unwrap_err();
        assert!(matches!(refused, ExchangeRefused::EventNotOpenYet { .. }), "reported before points and stock");
        assert_eq!(product, plush(5));
    }

    #[test]
    fn a_placed_order_is_cancelled_once_and_its_unit_goes_back() {
        // Given an order placed for the plush, one unit reserved
        let mut product = plush(5);
        let (mut order, _) = product.exchange(&exchange_of(800), &launch(), &Vendor::default(), 1_000).unwrap();
        // When the vendor cancels it
        let event = order.cancel(&mut product, "no supply".into(), 5_000).unwrap();
        // Then it is cancelled, when and why, and the unit is back
        assert_eq!((order.status, order.version), (GiftOrderStatus::Cancelled, 2));
        assert_eq!(order.cancellation, Some(Cancellation { cancelled_at: 5_000, reason: "no supply".into() }));
        assert_eq!((product.stock, product.version), (5, 9));
        assert_eq!(
            event,
            GiftEvent::OrderCancelled {
                order: order.clone(),
                vendor_cost: 1250,
                currency: Currency::parse("EUR").unwrap()
            }
        );
        // And cancelling it again changes nothing
        let (before, stock) = (order.clone(), product.stock);
        assert_eq!(order.cancel(&mut product, "again".into(), 6_000), Err(CancelRefused::AlreadyCancelled(order.id)));
        assert_eq!((order, product.stock), (before, stock));
    }

    #[test]
    fn the_same_exchange_under_the_same_key_is_a_replay_of_its_order() {
        // Given an order placed under a key
        let exchange = exchange_of(800);
        let order = placed(&exchange);
        // When the same exchange comes again under that key
        // Then the existing order answers it
        assert_eq!(order.replay_for_key(&exchange), Ok(()));
    }

    #[test]
    fn a_key_reused_for_another_reward_product_or_player_is_refused() {
        // Given an order placed under a key
        let exchange = exchange_of(800);
        let order = placed(&exchange);
        let other_reward = Exchange { payer: Payer::Reward(RewardId::generate()), ..exchange.clone() };
        let other_product = Exchange { sku: sku("STICKER-PACK"), ..exchange.clone() };
        let other_player = Exchange { customer_id: CustomerId::parse("player-2").unwrap(), ..exchange.clone() };
        // When the key comes with a different exchange
        for different in [other_reward, other_product, other_player] {
            // Then it is refused, naming the key
            let refused = order.replay_for_key(&different).unwrap_err();
            assert_eq!(refused, ExchangeRefused::KeyReused { key: exchange.key.clone() });
            assert_eq!(refused.to_string(), "idempotency key entry-1:1 was already used for a different exchange");
        }
    }

    #[test]
    fn a_reward_exchanged_for_the_same_product_under_another_key_answers_with_its_order() {
        // Given a reward exchanged under one key
        let exchange = exchange_of(800);
        let order = placed(&exchange);
        // When the same player asks for the same product under a new key
        let again = Exchange { key: IdempotencyKey::parse("entry-1:2").unwrap(), ..exchange };
        // Then the existing order answers it: no second order for the reward
        assert_eq!(order.replay_for_reward(&again), Ok(()));
    }

    #[test]
    fn a_reward_exchanged_for_another_product_or_by_another_player_is_refused() {
        // Given a reward exchanged under one key
        let exchange = exchange_of(800);
        let order = placed(&exchange);
        let key = IdempotencyKey::parse("entry-1:2").unwrap();
        let other_product = Exchange { key: key.clone(), sku: sku("STICKER-PACK"), ..exchange.clone() };
        let other_player = Exchange { key, customer_id: CustomerId::parse("player-2").unwrap(), ..exchange.clone() };
        for different in [other_product, other_player] {
            // When it is asked for again, differently
            let refused = order.replay_for_reward(&different).unwrap_err();
            // Then it is refused, naming the order that has it
            assert_eq!(refused, ExchangeRefused::RewardAlreadyExchanged { payer: exchange.payer, order_id: order.id });
            assert_eq!(refused.to_string(), format!("{} was already exchanged (order {})", exchange.payer, order.id));
        }
    }

    #[test]
    fn one_key_always_names_the_same_order_and_two_keys_two_orders() {
        let key = IdempotencyKey::parse("entry-1:1").unwrap();
        assert_eq!(GiftOrderId::for_key(&key), GiftOrderId::for_key(&key.clone()));
        let other = IdempotencyKey::parse("entry-1:2").unwrap();
        assert_ne!(GiftOrderId::for_key(&key), GiftOrderId::for_key(&other));
    }

    #[test]
    fn skus_are_upper_case_with_dashes_and_underscores() {
        assert!(ProductSku::parse("PLUSH-MASCOT").is_ok());
        assert!(ProductSku::parse("CAKE_L2").is_ok());
        assert!(ProductSku::parse(&"A".repeat(64)).is_ok());
        assert_eq!(ProductSku::parse(""), Err(ProductSkuError::Empty));
        assert_eq!(ProductSku::parse("plush"), Err(ProductSkuError::BadCharacter));
        assert_eq!(ProductSku::parse("PLUSH MASCOT"), Err(ProductSkuError::BadCharacter));
        assert_eq!(ProductSku::parse(&"A".repeat(65)), Err(ProductSkuError::TooLong));
    }

    #[test]
    fn idempotency_keys_are_printable_ascii_without_spaces() {
        assert!(IdempotencyKey::parse("b6c2:1").is_ok());
        assert!(IdempotencyKey::parse("~!#$%&'()*+,-./:;<=>?@[]^_`{|}").is_ok());
        assert!(IdempotencyKey::parse(&"k".repeat(128)).is_ok());
        assert_eq!(IdempotencyKey::parse(""), Err(IdempotencyKeyError::Empty));
        assert_eq!(IdempotencyKey::parse("a b"), Err(IdempotencyKeyError::BadCharacter));
        assert_eq!(IdempotencyKey::parse("a\tb"), Err(IdempotencyKeyError::BadCharacter));
        assert_eq!(IdempotencyKey::parse("clé"), Err(IdempotencyKeyError::BadCharacter));
        assert_eq!(IdempotencyKey::parse(&"k".repeat(129)), Err(IdempotencyKeyError::TooLong));
        assert_eq!(IdempotencyKeyError::TooLong.to_string(), "must be at most 128 characters");
    }

    #[test]
    fn currencies_are_three_upper_case_letters() {
        assert!(Currency::parse("EUR").is_ok());
        assert_eq!(Currency::parse("eur"), Err(CurrencyError));
        assert_eq!(Currency::parse("EURO"), Err(CurrencyError));
    }
}
