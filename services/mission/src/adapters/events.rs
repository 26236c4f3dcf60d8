//! The published form of the mission's events (`game.mission.v1`).

use api::game::mission::v1 as pb;
use kernel::derived_uuid;
use platform::events::timestamp;

use crate::domain::Mission;

/// MissionAchieved, for `mission` as it was achieved.
pub fn mission_achieved(mission: &Mission) -> pb::MissionAchieved {
    pb::MissionAchieved {
        // Derived from the mission id, so a re-staged copy could never be a
        // second, different event.
        event_id: derived_uuid(mission.id.as_uuid(), b"MissionAchieved").to_string(),
        mission_id: mission.id.to_string(),
        customer_id: mission.customer_id.to_string(),
        mission_code: mission.code.to_string(),
        reward_points: mission.reward_points.value(),
        achieved_at: Some(timestamp(mission.achieved_at)),
    }
}
