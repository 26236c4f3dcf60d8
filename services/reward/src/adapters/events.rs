//! The published form of the reward's events (`game.reward.v1`): domain
//! events in, protobuf messages out.

use api::game::reward::v1 as pb;
use kernel::derived_uuid;
use platform::events::timestamp;

use crate::domain::Reward;

/// RewardAllocated, for `reward` as it was allocated.
pub fn reward_allocated(reward: &Reward) -> pb::RewardAllocated {
    pb::RewardAllocated {
        // Derived from the reward id, so a re-staged copy could never be a
        // second, different event.
        event_id: derived_uuid(reward.id.as_uuid(), b"RewardAllocated").to_string(),
        reward_id: reward.id.to_string(),
        mission_id: reward.mission_id.to_string(),
        customer_id: reward.customer_id.to_string(),
        mission_code: reward.mission_code.clone(),
        points: reward.points.value(),
        allocated_at: Some(timestamp(reward.allocated_at)),
        programme_event_id: reward.programme_event_id.clone().unwrap_or_default(),
        event_ends_at: reward.event_ends_at.map(timestamp),
    }
}
