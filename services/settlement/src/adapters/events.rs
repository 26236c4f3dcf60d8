//! The published form of the settlement's events (`game.settlement.v1`):
//! domain events in, protobuf messages out.

use api::game::settlement::v1 as pb;
use kernel::derived_uuid;
use platform::events::timestamp;

use crate::domain::Settlement;

/// SettlementRecorded, for `settlement` as it was recorded.
pub fn settlement_recorded(settlement: &Settlement) -> pb::SettlementRecorded {
    pb::SettlementRecorded {
        // Derived from the settlement id, so a re-staged copy could never be
        // a second, different event.
        event_id: derived_uuid(settlement.id.as_uuid(), b"SettlementRecorded").to_string(),
        settlement_id: settlement.id.to_string(),
        order_id: settlement.order_id.to_string(),
        mission_id: settlement.mission_id.to_string(),
        customer_id: settlement.customer_id.to_string(),
        product_sku: settlement.product_sku.to_string(),
        amount: settlement.amount.minor_units(),
        currency: settlement.amount.currency().to_string(),
        recorded_at: Some(timestamp(settlement.recorded_at)),
    }
}
