//! The published form of the wallet's events (`game.wallet.v1`): domain
//! events in, protobuf messages out, with ids derived from the entry or the
//! exchange so that a re-staged copy could never be a second, different event.

use api::game::wallet::v1 as pb;
use kernel::derived_uuid;
use platform::events::timestamp;

use crate::domain::{EntryRefund, Exchange, ExchangeStatus, PointsExpired, RewardExchanged, WalletEntry};

/// RewardIssued, for `entry` as it was issued.
pub fn reward_issued(entry: &WalletEntry) -> pb::RewardIssued {
    pb::RewardIssued {
        event_id: derived_uuid(entry.id.as_uuid(), b"RewardIssued").to_string(),
        entry_id: entry.id.to_string(),
        reward_id: entry.reward_id.to_string(),
        mission_id: entry.mission_id.to_string(),
        customer_id: entry.customer_id.to_string(),
        points: entry.points.value(),
        issued_at: Some(timestamp(entry.issued_at)),
        expires_at: entry.expires_at.map(timestamp),
    }
}

/// RewardExchanged, for `entry` used up as `exchanged` says.
pub fn reward_exchanged(entry: &WalletEntry, exchanged: &RewardExchanged) -> pb::RewardExchanged {
    pb::RewardExchanged {
        event_id: derived_uuid(entry.id.as_uuid(), b"RewardExchanged").to_string(),
        entry_id: entry.id.to_string(),
        reward_id: entry.reward_id.to_string(),
        mission_id: entry.mission_id.to_string(),
        customer_id: entry.customer_id.to_string(),
        gift_order_id: exchanged.gift_order_id.clone(),
        product_sku: exchanged.product.to_string(),
        exchanged_at: Some(timestamp(exchanged.at)),
    }
}

/// PointsExpired, for `entry` expired as `expired` says.
pub fn points_expired(entry: &WalletEntry, expired: &PointsExpired) -> pb::PointsExpired {
    pb::PointsExpired {
        // Derived from the entry and what has expired of it by now: a second
        // copy could only be this event, a later expiry (of points an
        // exchange released) is another. The first keeps the id it always had.
        event_id: if expired.expired_total == expired.points.value() {
            derived_uuid(entry.id.as_uuid(), b"PointsExpired")
        } else {
            derived_uuid(entry.id.as_uuid(), format!("PointsExpired:{}", expired.expired_total).as_bytes())
        }
        .to_string(),
        entry_id: entry.id.to_string(),
        reward_id: entry.reward_id.to_string(),
        mission_id: entry.mission_id.to_string(),
        customer_id: entry.customer_id.to_string(),
        points: expired.points.value(),
        expires_at: Some(timestamp(expired.expires_at)),
        expired_at: Some(timestamp(expired.at)),
    }
}

/// The exchange's reservations, in their published form.
pub fn reservations(exchange: &Exchange) -> Vec<pb::Reservation> {
    exchange
        .reservations
        .iter()
        .map(|r| pb::Reservation {
            entry_id: r.entry_id.to_string(),
            reward_id: r.reward_id.to_string(),
            points: r.points.value(),
        })
        .collect()
}

/// ExchangePlaced, for `exchange` as gift's order placed it.
pub fn exchange_placed(exchange: &Exchange) -> pb::ExchangePlaced {
    let (gift_order_id, placed_at) = match &exchange.status {
        ExchangeStatus::Placed { gift_order_id, at }
        | ExchangeStatus::Refunded { gift_order_id, placed_at: at, .. } => {
            (gift_order_id.clone(), Some(timestamp(*at)))
        }
        ExchangeStatus::Pending | ExchangeStatus::Released { .. } => (String::new(), None),
    };
    pb::ExchangePlaced {
        // An exchange is placed once.
        event_id: derived_uuid(exchange.id.as_uuid(), b"ExchangePlaced").to_string(),
        exchange_id: exchange.id.to_string(),
        customer_id: exchange.customer_id.to_string(),
        product_sku: exchange.product.to_string(),
        price_points: exchange.price.value(),
        gift_order_id,
        reservations: reservations(exchange),
        placed_at,
    }
}

/// PointsRefunded, for `exchange` refunded as `refunds` say.
pub fn points_refunded(exchange: &Exchange, refunds: &[EntryRefund]) -> pb::PointsRefunded {
    let (gift_order_id, reason, refunded_at) = match &exchange.status {
        ExchangeStatus::Refunded { gift_order_id, reason, at, .. } => {
            (gift_order_id.clone(), reason.clone(), Some(timestamp(*at)))
        }
        _ => (String::new(), String::new(), None),
    };
    pb::PointsRefunded {
        // An exchange is refunded once: a second copy could only be this event.
        event_id: derived_uuid(exchange.id.as_uuid(), b"PointsRefunded").to_string(),
        exchange_id: exchange.id.to_string(),
        customer_id: exchange.customer_id.to_string(),
        gift_order_id,
        product_sku: exchange.product.to_string(),
        refunds: refunds
            .iter()
            .map(|r| pb::EntryRefund {
                entry_id: r.entry_id.to_string(),
                reward_id: r.reward_id.to_string(),
                refunded_points: r.refunded,
                expired_points: r.expired,
            })
            .collect(),
        reason,
        refunded_at,
    }
}
