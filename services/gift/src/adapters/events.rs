//! The published form of the gift's events (`game.gift.v1`): domain events
//! in, protobuf messages out; and a product as operators see it.

use api::game::gift::v1 as pb;
use kernel::derived_uuid;
use kernel::programme::Operator;
use platform::events::timestamp;

use crate::domain::{Currency, GiftOrder, Product, Vendor};

/// GiftExchanged, for `order` as it was placed, billed by `vendor` at
/// `vendor_cost` in `currency`.
pub fn gift_exchanged(order: &GiftOrder, vendor: &Vendor, vendor_cost: i64, currency: &Currency) -> pb::GiftExchanged {
    pb::GiftExchanged {
        // Derived from the order id (itself derived from the key), so a
        // re-staged copy could never be a second, different event.
        event_id: derived_uuid(order.id.as_uuid(), b"GiftExchanged").to_string(),
        order_id: order.id.to_string(),
        customer_id: order.customer_id.to_string(),
        reward_id: order.payer.reward().map(|id| id.to_string()).unwrap_or_default(),
        mission_id: order.mission_id.to_string(),
        product_sku: order.product_sku.to_string(),
        points: order.points.value(),
        vendor_cost,
        currency: currency.to_string(),
        placed_at: Some(timestamp(order.placed_at)),
        exchange_id: order.payer.exchange().map(|id| id.to_string()).unwrap_or_default(),
        vendor: vendor.to_string(),
    }
}

/// GiftOrderCancelled, for `order` as the vendor's cancellation left it,
/// no longer billed `vendor_cost` in `currency`.
pub fn gift_order_cancelled(order: &GiftOrder, vendor_cost: i64, currency: &Currency) -> pb::GiftOrderCancelled {
    let cancellation = order.cancellation.as_ref();
    pb::GiftOrderCancelled {
        // An order is cancelled once: derived from its id, a re-staged copy
        // could never be a second refund.
        event_id: derived_uuid(order.id.as_uuid(), b"GiftOrderCancelled").to_string(),
        order_id: order.id.to_string(),
        idempotency_key: order.idempotency_key.to_string(),
        customer_id: order.customer_id.to_string(),
        reward_id: order.payer.reward().map(|id| id.to_string()).unwrap_or_default(),
        mission_id: order.mission_id.to_string(),
        product_sku: order.product_sku.to_string(),
        points: order.points.value(),
        vendor_cost,
        currency: currency.to_string(),
        reason: cancellation.map(|c| c.reason.clone()).unwrap_or_default(),
        cancelled_at: cancellation.map(|c| timestamp(c.cancelled_at)),
        exchange_id: order.payer.exchange().map(|id| id.to_string()).unwrap_or_default(),
    }
}

/// ProductListed: `operator` listed `product` at `changed_at`.
pub fn product_listed(product: &Product, operator: &Operator, changed_at: i64) -> pb::ProductListed {
    pb::ProductListed {
        // A change is staged once, by the transaction that made it: a fresh
        // id cannot make a second event of it.
        event_id: uuid::Uuid::now_v7().to_string(),
        product: Some(catalogue_product(product)),
        operator: operator.as_str().to_owned(),
        changed_at: Some(timestamp(changed_at)),
    }
}

/// ProductRestocked: `operator` added `units` to `product` (as it then
/// stood) at `changed_at`.
pub fn product_restocked(product: &Product, units: u32, operator: &Operator, changed_at: i64) -> pb::ProductRestocked {
    pb::ProductRestocked {
        event_id: uuid::Uuid::now_v7().to_string(),
        product_sku: product.sku.to_string(),
        units: i64::from(units),
        stock: i64::from(product.stock),
        operator: operator.as_str().to_owned(),
        changed_at: Some(timestamp(changed_at)),
    }
}

/// A product as operators see it, in their API and in the audit records.
pub fn catalogue_product(product: &Product) -> pb::CatalogueProduct {
    pb::CatalogueProduct {
        sku: product.sku.to_string(),
        name: product.name.clone(),
        price_points: product.price.value(),
        stock: i64::from(product.stock),
        vendor_cost: product.vendor_cost,
        currency: product.currency.to_string(),
        programme_event_id: product.event_id.to_string(),
    }
}
