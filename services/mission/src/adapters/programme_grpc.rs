//! The operators' gRPC adapter: `game.programme.v1.ProgrammeService`.
//! Every call needs the operator role; requests are parsed into domain
//! values, the use cases called, results mapped to the contract.

use std::num::NonZeroU32;

use api::game::mission::v1 as mission_pb;
use api::game::programme::v1::{self as pb, programme_service_server::ProgrammeService};
use kernel::Points;
use platform::caller::{caller, require_operator};
use platform::grpc::invalid;
use tonic::{Request, Response, Status};

use crate::adapters::events;
use crate::adapters::grpc::mission_code;
use crate::app::Missions;
use crate::domain::MissionDefinition;
use crate::domain::programme::{MissionLimit, Operator, ProgrammeEvent, ProgrammeEventId, Title, Window};
use crate::ports::MissionStore;

/// Serves `game.programme.v1.ProgrammeService`.
#[derive(Debug, Clone)]
pub struct ProgrammeGrpc<S> {
    missions: Missions<S>,
}

impl<S> ProgrammeGrpc<S> {
    /// The adapter over the use cases.
    pub fn new(missions: Missions<S>) -> Self {
        Self { missions }
    }
}

/// The operator calling, refused unless the token grants the operator role.
fn operator<T>(request: &Request<T>) -> Result<Operator, Status> {
    let caller = caller(request)?;
    require_operator(&caller)?;
    Ok(Operator::new(caller.subject))
}

fn event_id(value: &str) -> Result<ProgrammeEventId, Status> {
    ProgrammeEventId::parse(value).map_err(|e| invalid("programme_event_id", e))
}

fn title(value: &str) -> Result<String, Status> {
    Title::parse(value).map(Title::into_string).map_err(|e| invalid("title", e))
}

/// The earliest and latest second RFC 3339 can write (years 0001 to 9999),
/// as protobuf's Timestamp documents them.
const SECONDS: std::ops::RangeInclusive<i64> = -62_135_596_800..=253_402_300_799;

/// A required timestamp field, in milliseconds since the epoch.
fn instant(field: &str, value: Option<&prost_types::Timestamp>) -> Result<i64, Status> {
    let value = value.ok_or_else(|| invalid(field, "is required"))?;
    if !SECONDS.contains(&value.seconds) || !(0..1_000_000_000).contains(&value.nanos) {
        return Err(invalid(field, "must be a time between the years 0001 and 9999"));
    }
    Ok(platform::events::millis(Some(value)))
}

fn limit(value: Option<&mission_pb::MissionLimit>) -> Result<MissionLimit, Status> {
    let value = value.ok_or_else(|| invalid("limit", "is required"))?;
    let limit = match mission_pb::MissionLimitKind::try_from(value.kind) {
        Ok(mission_pb::MissionLimitKind::Once) => MissionLimit::Once,
        Ok(mission_pb::MissionLimitKind::Daily) => MissionLimit::Daily,
        Ok(mission_pb::MissionLimitKind::Times) => {
            let times = NonZeroU32::new(value.times).ok_or_else(|| invalid("limit.times", "must be at least 1"))?;
            return Ok(MissionLimit::Times(times));
        }
        Ok(mission_pb::MissionLimitKind::Unspecified) | Err(_) => {
            return Err(invalid("limit.kind", "must be ONCE, TIMES or DAILY"));
        }
    };
    if value.times != 0 {
        return Err(invalid("limit.times", "is for a TIMES limit only"));
    }
    Ok(limit)
}

fn reward_points(value: i64) -> Result<Points, Status> {
    match Points::new(value) {
        Ok(points) if value > 0 => Ok(points),
        _ => Err(invalid("reward_points", "must be above zero")),
    }
}

#[tonic::async_trait]
impl<S: MissionStore> ProgrammeService for ProgrammeGrpc<S> {
    async fn schedule_event(
        &self,
        request: Request<pb::ScheduleEventRequest>,
    ) -> Result<Response<pb::ScheduleEventResponse>, Status> {
        let operator = operator(&request)?;
        let request = request.into_inner();
        let id = event_id(&request.programme_event_id)?;
        let title = title(&request.title)?;
        let starts_at = instant("starts_at", request.starts_at.as_ref())?;
        let ends_at = instant("ends_at", request.ends_at.as_ref())?;
        let window = Window::new(starts_at, ends_at).map_err(|e| invalid("ends_at", e))?;
        let event = self.missions.schedule_event(operator, ProgrammeEvent { id, title, window }).await?;
        Ok(Response::new(pb::ScheduleEventResponse { programme_event: Some(events::programme_event(&event)) }))
    }

    async fn define_mission(
        &self,
        request: Request<pb::DefineMissionRequest>,
    ) -> Result<Response<pb::DefineMissionResponse>, Status> {
        let operator = operator(&request)?;
        let request = request.into_inner();
        let definition = MissionDefinition {
            event_id: event_id(&request.programme_event_id)?,
            code: mission_code(&request.mission_code)?,
            title: title(&request.title)?,
            reward_points: reward_points(request.reward_points)?,
            limit: limit(request.limit.as_ref())?,
        };
        let definition = self.missions.define_mission(operator, definition).await?;
        Ok(Response::new(pb::DefineMissionResponse { definition: Some(events::definition(definition)) }))
    }

    async fn list_events(
        &self,
        request: Request<pb::ListEventsRequest>,
    ) -> Result<Response<pb::ListEventsResponse>, Status> {
        operator(&request)?;
        let programme = self.missions.programme_events().await?;
        Ok(Response::new(pb::ListEventsResponse {
            programme_events: programme.iter().map(events::programme_event).collect(),
        }))
    }

    async fn list_mission_definitions(
        &self,
        request: Request<pb::ListMissionDefinitionsRequest>,
    ) -> Result<Response<pb::ListMissionDefinitionsResponse>, Status> {
        operator(&request)?;
        let definitions = self.missions.all_definitions().await?;
        Ok(Response::new(pb::ListMissionDefinitionsResponse {
            definitions: definitions.into_iter().map(events::definition).collect(),
        }))
    }
}
