//! The published form of the gift's events (`game.gift.v1`): domain events
//! in, protobuf messages out.

use api::game::gift::v1 as pb;
use kernel::derived_uuid;
use platform::events::timestamp;

use crate::domain::{Currency, GiftOrder};

/// GiftExchanged, for `order` as it was placed, billed `vendor_cost` in `currency`.
pub fn gift_exchanged(order: &GiftOrder, vendor_cost: i64, currency: &Currency) -> pb::GiftExchanged {
    pb::GiftExchanged {
        // Derived from the order id (itself derived from the key), so a
        // re-staged copy could never be a second, different event.
        event_id: derived_uuid(order.id.as_uuid(), b"GiftExchanged").to_string(),
        order_id: order.id.to_string(),
        customer_id: order.customer_id.to_string(),
        reward_id: order.reward_id.to_string(),
        mission_id: order.mission_id.to_string(),
        product_sku: order.product_sku.to_string(),
        points: order.points.value(),
        vendor_cost,
        currency: currency.to_string(),
        placed_at: Some(timestamp(order.placed_at)),
    }
}
