//! The settlement context's reactions to the gift context's events: each
//! records in the period open when it is applied.

use api::game::gift::v1::{GiftExchanged, GiftOrderCancelled};
use kernel::CustomerId;
use platform::consumer::{Policy, PolicyError, ReceivedEvent};
use platform::db::DbConnection;
use platform::events::{Event as _, GIFT_STREAM, StreamDef};
use platform::store::DbTx;

use crate::app::{self, SettlementError};
use crate::domain::{Currency, GiftExchange, MissionId, Money, OrderId, PeriodLength, ProductSku, Vendor};
use crate::ports::Clock;

fn malformed(field: &str, error: impl std::fmt::Display) -> PolicyError {
    PolicyError::Malformed(format!("{field} {error}"))
}

fn policy_error(error: SettlementError) -> PolicyError {
    match error {
        SettlementError::NotSettledYet(_) => PolicyError::NotYet(error.to_string()),
        SettlementError::PeriodNotFound(_) => PolicyError::Malformed(error.to_string()),
        SettlementError::Storage(error) => error.into(),
    }
}

/// On GiftExchanged: record what the gift order costs, once per order.
#[derive(Debug)]
pub struct RecordSettlement<C> {
    pub clock: C,
    pub period: PeriodLength,
}

impl<C: Clock> Policy for RecordSettlement<C> {
    fn name(&self) -> &'static str {
        "settlement-record"
    }

    fn stream(&self) -> StreamDef {
        GIFT_STREAM
    }

    fn subjects(&self) -> Vec<String> {
        vec![GiftExchanged::SUBJECT.to_owned()]
    }

    fn apply(&self, conn: &mut DbConnection, event: &ReceivedEvent) -> Result<(), PolicyError> {
        let exchanged: GiftExchanged = event.decode()?;
        let currency = Currency::parse(&exchanged.currency).map_err(|e| malformed("currency", e))?;
        let exchange = GiftExchange {
            order_id: OrderId::parse(&exchanged.order_id).map_err(|e| malformed("order_id", e))?,
            mission_id: MissionId::parse(&exchanged.mission_id).map_err(|e| malformed("mission_id", e))?,
            customer_id: CustomerId::parse(&exchanged.customer_id).map_err(|e| malformed("customer_id", e))?,
            product_sku: ProductSku::parse(&exchanged.product_sku).map_err(|e| malformed("product_sku", e))?,
            // A gift service older than vendors names none: the one vendor
            // there was, the default.
            vendor: match exchanged.vendor.as_str() {
                "" => Vendor::default(),
                named => Vendor::parse(named).map_err(|e| malformed("vendor", e))?,
            },
            vendor_cost: Money::new(exchanged.vendor_cost, currency).map_err(|e| malformed("vendor_cost", e))?,
        };
        // The effect joins the consumer's transaction, inbox and all.
        app::record(&mut DbTx::new(conn), exchange, self.clock.now(), self.period).map(|_| ()).map_err(policy_error)
    }
}

/// On GiftOrderCancelled: reverse the order's settlement, once per order,
/// in the period open now (a cancellation that overtook the exchange waits
/// for its settlement; see [`app::reverse`]).
#[derive(Debug)]
pub struct ReverseSettlement<C> {
    pub clock: C,
    pub period: PeriodLength,
}

impl<C: Clock> Policy for ReverseSettlement<C> {
    fn name(&self) -> &'static str {
        "settlement-reverse"
    }

    fn stream(&self) -> StreamDef {
        GIFT_STREAM
    }

    fn subjects(&self) -> Vec<String> {
        vec![GiftOrderCancelled::SUBJECT.to_owned()]
    }

    fn apply(&self, conn: &mut DbConnection, event: &ReceivedEvent) -> Result<(), PolicyError> {
        let cancelled: GiftOrderCancelled = event.decode()?;
        let order = OrderId::parse(&cancelled.order_id).map_err(|e| malformed("order_id", e))?;
        app::reverse(&mut DbTx::new(conn), order, self.clock.now(), self.period).map(|_| ()).map_err(policy_error)
    }
}
