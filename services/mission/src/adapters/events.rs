//! The published form of the mission context (`game.mission.v1`): its
//! events, and the programme's values as both its events and its APIs show them.

use api::game::mission::v1 as pb;
use kernel::derived_uuid;
use platform::events::timestamp;

use crate::domain::programme::{MissionLimit, Operator, ProgrammeEvent};
use crate::domain::{Mission, MissionDefinition};

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
        programme_event_id: mission.event_id.to_string(),
        event_ends_at: mission.event_ends_at.map(timestamp),
    }
}

/// ProgrammeEventScheduled: `operator` scheduled `event` at `changed_at`.
pub fn event_scheduled(event: &ProgrammeEvent, operator: &Operator, changed_at: i64) -> pb::ProgrammeEventScheduled {
    pb::ProgrammeEventScheduled {
        // A change is staged once, by the transaction that made it: a fresh
        // id cannot make a second event of it.
        event_id: uuid::Uuid::now_v7().to_string(),
        programme_event: Some(programme_event(event)),
        operator: operator.as_str().to_owned(),
        changed_at: Some(timestamp(changed_at)),
    }
}

/// MissionDefined: `operator` defined `defined` at `changed_at`.
pub fn mission_defined(defined: &MissionDefinition, operator: &Operator, changed_at: i64) -> pb::MissionDefined {
    pb::MissionDefined {
        event_id: uuid::Uuid::now_v7().to_string(),
        definition: Some(definition(defined.clone())),
        operator: operator.as_str().to_owned(),
        changed_at: Some(timestamp(changed_at)),
    }
}

/// An event of the programme as the contracts show it.
pub fn programme_event(event: &ProgrammeEvent) -> pb::ProgrammeEvent {
    pb::ProgrammeEvent {
        programme_event_id: event.id.to_string(),
        title: event.title.clone(),
        starts_at: Some(timestamp(event.window.starts_at())),
        ends_at: event.window.ends_at().map(timestamp),
    }
}

/// A mission of the catalogue as the contracts show it.
pub fn definition(definition: MissionDefinition) -> pb::MissionDefinition {
    pb::MissionDefinition {
        mission_code: definition.code.to_string(),
        title: definition.title,
        reward_points: definition.reward_points.value(),
        programme_event_id: definition.event_id.to_string(),
        limit: Some(limit(definition.limit)),
    }
}

fn limit(limit: MissionLimit) -> pb::MissionLimit {
    match limit {
        MissionLimit::Once => pb::MissionLimit { kind: pb::MissionLimitKind::Once.into(), times: 0 },
        MissionLimit::Times(times) => pb::MissionLimit { kind: pb::MissionLimitKind::Times.into(), times: times.get() },
        MissionLimit::Daily => pb::MissionLimit { kind: pb::MissionLimitKind::Daily.into(), times: 0 },
    }
}
