//! The gRPC adapter: requests parsed into domain values, use cases called,
//! results and errors mapped to the contract of `game.mission.v1`.

use api::game::mission::v1::{self as pb, mission_service_server::MissionService};
use kernel::CustomerId;
use platform::caller::{caller, require_player, require_reader};
use platform::events::timestamp;
use platform::grpc::{field, invalid, store_failure};
use tonic::{Request, Response, Status};

use crate::adapters::events;
use crate::app::{MissionError, Missions};
use crate::domain::programme::AchievementId;
use crate::domain::{Achievement, Mission, MissionCode, MissionId, MissionStatus};
use crate::ports::MissionStore;

/// Serves `game.mission.v1.MissionService`.
#[derive(Debug, Clone)]
pub struct MissionGrpc<S> {
    missions: Missions<S>,
}

impl<S> MissionGrpc<S> {
    /// The adapter over the use cases.
    pub fn new(missions: Missions<S>) -> Self {
        Self { missions }
    }
}

impl From<MissionError> for Status {
    fn from(error: MissionError) -> Self {
        match error {
            MissionError::UnknownMissionCode(code) => {
                Status::not_found(format!("mission code {code} is not in the catalogue"))
            }
            MissionError::MissionNotFound(id) => Status::not_found(format!("mission {id} does not exist")),
            MissionError::UnknownEvent(_) => Status::not_found(error.to_string()),
            MissionError::AchievementIdRequired(required) => invalid("achievement_id", required),
            MissionError::AchievementIdReused { .. }
            | MissionError::EventScheduledOtherwise(_)
            | MissionError::MissionDefinedOtherwise { .. } => Status::already_exists(error.to_string()),
            MissionError::Rule(violation) => Status::failed_precondition(violation.to_string()),
            MissionError::Programme(violation) => Status::failed_precondition(violation.to_string()),
            MissionError::Storage(error) => store_failure(&error),
        }
    }
}

/// The mission code of a request.
///
/// # Errors
/// INVALID_ARGUMENT naming the field.
pub fn mission_code(value: &str) -> Result<MissionCode, Status> {
    MissionCode::parse(value).map_err(|e| invalid("mission_code", e))
}

fn to_pb(mission: Mission) -> pb::Mission {
    pb::Mission {
        mission_id: mission.id.to_string(),
        customer_id: mission.customer_id.to_string(),
        mission_code: mission.code.to_string(),
        status: match mission.status {
            MissionStatus::Achieved => pb::MissionStatus::Achieved,
            MissionStatus::Rewarded => pb::MissionStatus::Rewarded,
        }
        .into(),
        reward_id: mission.reward_id.map(|r| r.to_string()).unwrap_or_default(),
        achieved_at: Some(timestamp(mission.achieved_at)),
        reward_points: mission.reward_points.value(),
        programme_event_id: mission.event_id.to_string(),
        achievement_id: mission.achievement_id.map(|id| id.to_string()),
    }
}

#[tonic::async_trait]
impl<S: MissionStore> MissionService for MissionGrpc<S> {
    async fn list_mission_definitions(
        &self,
        request: Request<pb::ListMissionDefinitionsRequest>,
    ) -> Result<Response<pb::ListMissionDefinitionsResponse>, Status> {
        // The catalogue is for anyone signed in, players and operators alike;
        // it shows what is open now (operators see the rest through
        // game.programme.v1).
        caller(&request)?;
        let definitions = self.missions.definitions().await?;
        Ok(Response::new(pb::ListMissionDefinitionsResponse {
            definitions: definitions.into_iter().map(events::definition).collect(),
        }))
    }

    async fn achieve_mission(
        &self,
        request: Request<pb::AchieveMissionRequest>,
    ) -> Result<Response<pb::AchieveMissionResponse>, Status> {
        let caller = caller(&request)?;
        let request = request.into_inner();
        let customer = field("customer_id", &request.customer_id, CustomerId::parse)?;
        let code = mission_code(&request.mission_code)?;
        let achievement_id = request
            .achievement_id
            .as_deref()
            .map(AchievementId::parse)
            .transpose()
            .map_err(|e| invalid("achievement_id", e))?;
        require_player(&caller, &customer)?;
        let mission = self.missions.record(Achievement { customer_id: customer, code, achievement_id }).await?;
        Ok(Response::new(pb::AchieveMissionResponse { mission: Some(to_pb(mission)) }))
    }

    async fn get_mission(
        &self,
        request: Request<pb::GetMissionRequest>,
    ) -> Result<Response<pb::GetMissionResponse>, Status> {
        let caller = caller(&request)?;
        let id = field("mission_id", &request.get_ref().mission_id, MissionId::parse)?;
        let mission = self.missions.get(id).await?;
        require_reader(&caller, &mission.customer_id)?;
        Ok(Response::new(pb::GetMissionResponse { mission: Some(to_pb(mission)) }))
    }

    async fn list_missions(
        &self,
        request: Request<pb::ListMissionsRequest>,
    ) -> Result<Response<pb::ListMissionsResponse>, Status> {
        let caller = caller(&request)?;
        let customer = field("customer_id", &request.get_ref().customer_id, CustomerId::parse)?;
        require_reader(&caller, &customer)?;
        let missions = self.missions.list(customer).await?;
        Ok(Response::new(pb::ListMissionsResponse { missions: missions.into_iter().map(to_pb).collect() }))
    }
}
