//! The published form of the wallet's events (`game.wallet.v1`): domain
//! events in, protobuf messages out, with ids derived from the entry so that
//! a re-staged copy could never be a second, different event.

use api::game::wallet::v1 as pb;
use kernel::derived_uuid;
use platform::events::timestamp;

use crate::domain::{PointsExpired, RewardExchanged, WalletEntry};

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

/// RewardExchanged, for `entry` exchanged as `exchanged` says.
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
        // An entry expires once: a second copy could only be this event.
        event_id: derived_uuid(entry.id.as_uuid(), b"PointsExpired").to_string(),
        entry_id: entry.id.to_string(),
        reward_id: entry.reward_id.to_string(),
        mission_id: entry.mission_id.to_string(),
        customer_id: entry.customer_id.to_string(),
        points: expired.points.value(),
        expires_at: Some(timestamp(expired.expires_at)),
        expired_at: Some(timestamp(expired.at)),
    }
}
