//! The settlement domain, pure: what a gift exchange costs, the Settlement
//! aggregate that records it once per gift order (and its reversal once,
//! when the vendor cancelled the order), the [`period`]s settlements are
//! recorded in and closed by, and the values they are made of. No I/O, no
//! async, no framework types.

pub mod period;

use kernel::CustomerId;
pub use kernel::{Currency, CurrencyError, ProductSku, ProductSkuError, Vendor};

pub use self::period::{Landing, Period, PeriodId, PeriodLength, PeriodStatus, PeriodTotal};

kernel::uuid_id!(
    /// What is owed to the gift vendor for one gift order.
    SettlementId
);
kernel::uuid_id!(
    /// One gift order, as the gift context names it.
    OrderId
);
kernel::uuid_id!(
    /// The mission the exchanged reward was earned for (the correlation key).
    MissionId
);

impl SettlementId {
    /// The one settlement id a gift order can ever have. Derived from the
    /// order id, so recording the same order again can only name the same
    /// settlement.
    pub fn for_order(order_id: OrderId) -> Self {
        Self::from_uuid(kernel::derived_uuid(order_id.as_uuid(), b"Settlement"))
    }

    /// The one id the reversal of a gift order's settlement can ever have.
    pub fn reversal_of(order_id: OrderId) -> Self {
        Self::from_uuid(kernel::derived_uuid(order_id.as_uuid(), b"SettlementReversal"))
    }
}

/// An amount of money in minor units of its currency (e.g. yen, cents);
/// integer, so sums are exact; never negative, since a vendor never owes us.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Money {
    minor_units: i64,
    currency: Currency,
}

/// Why an amount is not money owed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("must not be negative, got {0}")]
pub struct NegativeAmount(pub i64);

impl Money {
    /// `minor_units` of `currency`.
    ///
    /// # Errors
    /// [`NegativeAmount`] when `minor_units` is below zero.
    pub fn new(minor_units: i64, currency: Currency) -> Result<Self, NegativeAmount> {
        if minor_units < 0 {
            return Err(NegativeAmount(minor_units));
        }
        Ok(Self { minor_units, currency })
    }

    /// The amount in minor units of [`Money::currency`].
    pub fn minor_units(&self) -> i64 {
        self.minor_units
    }

    /// The currency of the amount.
    pub fn currency(&self) -> &Currency {
        &self.currency
    }
}

/// A gift order the vendor fulfilled, as far as settling it is concerned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GiftExchange {
    pub order_id: OrderId,
    pub mission_id: MissionId,
    pub customer_id: CustomerId,
    pub product_sku: ProductSku,
    /// Who fulfilled the order and bills for it.
    pub vendor: Vendor,
    /// What the vendor bills for the product.
    pub vendor_cost: Money,
}

/// Where a settlement sits in the ledger: settlements are numbered 1, 2, 3,
/// ... in the order they were recorded, which is the order they are listed in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct LedgerPosition(i64);

impl LedgerPosition {
    /// The first place in an empty ledger.
    pub const FIRST: Self = Self(1);

    /// A position from its number; `None` for numbers below 1, which no
    /// settlement ever has.
    pub fn new(value: i64) -> Option<Self> {
        (value >= 1).then_some(Self(value))
    }

    /// The place after this one.
    #[must_use]
    pub fn next(self) -> Self {
        Self(self.0.saturating_add(1))
    }

    /// The position's number.
    pub fn value(self) -> i64 {
        self.0
    }
}

/// Why a settlement is on the ledger.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SettlementKind {
    /// What the vendor bills for a placed gift order.
    Charge,
    /// The vendor cancelled the order: its charge no longer owed.
    Reversal,
}

/// The Settlement aggregate: what is owed to the vendor for one gift order
/// (a charge), or what no longer is once the vendor cancelled it (a
/// reversal). Each is recorded once per order, in the period open at the
/// time, and never changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settlement {
    pub id: SettlementId,
    pub kind: SettlementKind,
    pub order_id: OrderId,
    pub mission_id: MissionId,
    pub customer_id: CustomerId,
    pub product_sku: ProductSku,
    /// The vendor owed the amount (a charge) or no longer owed it (a reversal).
    pub vendor: Vendor,
    /// The vendor's cost of the product: owed for a charge, taken back by a
    /// reversal (see [`Settlement::owed`]).
    pub amount: Money,
    /// The period it was recorded in.
    pub period: PeriodId,
    /// Milliseconds since the Unix epoch.
    pub recorded_at: i64,
}

/// What happened to a settlement or a period.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SettlementEvent {
    Recorded { settlement: Settlement },
    Reversed { reversal: Settlement, reversed: SettlementId },
    PeriodClosed { period: Period, totals: Vec<PeriodTotal> },
}

impl Settlement {
    /// Records what a gift exchange costs, the vendor's bill for the
    /// product, in `period`.
    pub fn record(exchange: GiftExchange, period: PeriodId, now: i64) -> (Self, SettlementEvent) {
        let settlement = Self {
            id: SettlementId::for_order(exchange.order_id),
            kind: SettlementKind::Charge,
            order_id: exchange.order_id,
            mission_id: exchange.mission_id,
            customer_id: exchange.customer_id,
            product_sku: exchange.product_sku,
            vendor: exchange.vendor,
            amount: exchange.vendor_cost,
            period,
            recorded_at: now,
        };
        let event = SettlementEvent::Recorded { settlement: settlement.clone() };
        (settlement, event)
    }

    /// Reverses this charge in `period`: the same order and amount, taken
    /// back. The charge itself stays as it was, in the period it was
    /// recorded in.
    pub fn reverse(&self, period: PeriodId, now: i64) -> (Self, SettlementEvent) {
        let reversal = Self {
            id: SettlementId::reversal_of(self.order_id),
            kind: SettlementKind::Reversal,
            period,
            recorded_at: now,
            ..self.clone()
        };
        let event = SettlementEvent::Reversed { reversal: reversal.clone(), reversed: self.id };
        (reversal, event)
    }

    /// What the settlement adds to what is owed, in minor units: the amount
    /// for a charge, the amount negated for a reversal.
    pub fn owed(&self) -> i64 {
        match self.kind {
            SettlementKind::Charge => self.amount.minor_units(),
            SettlementKind::Reversal => -self.amount.minor_units(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exchange(order_id: OrderId) -> GiftExchange {
        GiftExchange {
            order_id,
            mission_id: MissionId::generate(),
            customer_id: CustomerId::parse("player-1").unwrap(),
            product_sku: ProductSku::parse("COFFEE-S").unwrap(),
            vendor: Vendor::parse("acme-toys").unwrap(),
            vendor_cost: Money::new(350, Currency::parse("JPY").unwrap()).unwrap(),
        }
    }

    #[test]
    fn a_gift_exchange_is_settled_at_the_vendors_cost() {
        let exchange = exchange(OrderId::generate());
        let period = PeriodId::starting_at(0);
        let (settlement, event) = Settlement::record(exchange.clone(), period, 1_000);
        assert_eq!(settlement.id, SettlementId::for_order(exchange.order_id));
        assert_eq!((settlement.kind, settlement.period, settlement.owed()), (SettlementKind::Charge, period, 350));
        assert_eq!(settlement.order_id, exchange.order_id);
        assert_eq!(settlement.mission_id, exchange.mission_id);
        assert_eq!(settlement.customer_id, exchange.customer_id);
        assert_eq!(settlement.product_sku.as_str(), "COFFEE-S");
        assert_eq!(settlement.vendor.as_str(), "acme-toys");
        assert_eq!(settlement.amount.minor_units(), 350);
        assert_eq!(settlement.amount.currency().as_str(), "JPY");
        assert_eq!(settlement.recorded_at, 1_000);
        assert_eq!(event, SettlementEvent::Recorded { settlement });
    }

    #[test]
    fn a_gift_order_always_gets_the_same_settlement_id() {
        let order = OrderId::generate();
        let period = PeriodId::starting_at(0);
        let first = Settlement::record(exchange(order), period, 1_000).0;
        let again = Settlement::record(exchange(order), period, 2_000).0;
        assert_eq!(first.id, again.id);
        assert_ne!(first.id, SettlementId::for_order(OrderId::generate()));
    }

    #[test]
    fn a_reversal_takes_back_the_charge_under_its_own_id_in_the_period_open_now() {
        let charged_in = PeriodId::starting_at(0);
        let reversed_in = PeriodId::starting_at(86_400_000);
        let (charge, _) = Settlement::record(exchange(OrderId::generate()), charged_in, 1_000);

        let (reversal, event) = charge.reverse(reversed_in, 90_000_000);

        assert_eq!(reversal.id, SettlementId::reversal_of(charge.order_id));
        assert_ne!(reversal.id, charge.id);
        assert_eq!(
            (reversal.kind, reversal.period, reversal.recorded_at),
            (SettlementKind::Reversal, reversed_in, 90_000_000)
        );
        assert_eq!((reversal.order_id, &reversal.product_sku), (charge.order_id, &charge.product_sku));
        assert_eq!(reversal.vendor, charge.vendor, "the vendor of the charge no longer owed it");
        assert_eq!((charge.owed(), reversal.owed()), (350, -350));
        assert_eq!(event, SettlementEvent::Reversed { reversal, reversed: charge.id });
    }

    #[test]
    fn money_owed_is_never_negative() {
        let yen = Currency::parse("JPY").unwrap();
        assert_eq!(Money::new(-1, yen.clone()), Err(NegativeAmount(-1)));
        assert_eq!(Money::new(0, yen).map(|m| m.minor_units()), Ok(0));
    }

    #[test]
    fn currencies_are_three_upper_case_letters() {
        assert!(Currency::parse("JPY").is_ok());
        for bad in ["", "jpy", "JP", "JPYX", "J1Y", "ÉUR"] {
            assert_eq!(Currency::parse(bad), Err(CurrencyError), "{bad:?}");
        }
    }

    #[test]
    fn product_skus_are_upper_case_with_dashes_and_underscores() {
        assert!(ProductSku::parse("COFFEE-S").is_ok());
        assert!(ProductSku::parse("GIFT_CARD_1000").is_ok());
        assert!(ProductSku::parse(&"A".repeat(64)).is_ok());
        assert_eq!(ProductSku::parse(""), Err(ProductSkuError::Empty));
        assert_eq!(ProductSku::parse(&"A".repeat(65)), Err(ProductSkuError::TooLong));
        assert_eq!(ProductSku::parse("coffee"), Err(ProductSkuError::BadCharacter));
        assert_eq!(ProductSku::parse("COFFEE S"), Err(ProductSkuError::BadCharacter));
    }

    #[test]
    fn ledger_positions_start_at_one_and_count_up() {
        assert_eq!(LedgerPosition::new(0), None);
        assert_eq!(LedgerPosition::new(-3), None);
        assert_eq!(LedgerPosition::new(1), Some(LedgerPosition::FIRST));
        assert_eq!(LedgerPosition::FIRST.next().value(), 2);
    }
}
