//! The settlement context's reaction to the gift context's events.

use api::game::gift::v1::GiftExchanged;
use kernel::CustomerId;
use platform::consumer::{Policy, PolicyError, ReceivedEvent};
use platform::db::DbConnection;
use platform::events::{Event as _, GIFT_STREAM, StreamDef};
use platform::store::DbTx;

use crate::app::{self, SettlementError};
use crate::domain::{Currency, GiftExchange, MissionId, Money, OrderId, ProductSku};

fn malformed(field: &str, error: impl std::fmt::Display) -> PolicyError {
    PolicyError::Malformed(format!("{field} {error}"))
}

/// On GiftExchanged: record what the gift order costs, once per order.
#[derive(Debug, Default)]
pub struct RecordSettlement;

impl Policy for RecordSettlement {
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
            vendor_cost: Money::new(exchanged.vendor_cost, currency).map_err(|e| malformed("vendor_cost", e))?,
        };
        // The effect joins the consumer's transaction, inbox and all.
        match app::record(&mut DbTx::new(conn), exchange) {
            Ok(_) => Ok(()),
            Err(SettlementError::Storage(error)) => Err(error.into()),
        }
    }
}
