//! The gRPC adapter: requests parsed into domain values, use cases called,
//! results and errors mapped to the contract of `game.reward.v1`.

use api::game::reward::v1::{self as pb, reward_service_server::RewardService};
use platform::caller::{caller, require_reader};
use platform::events::timestamp;
use platform::grpc::{field, store_failure};
use tonic::{Request, Response, Status};

use crate::app::{RewardError, Rewards};
use crate::domain::{Reward, RewardId, RewardStatus};
use crate::ports::RewardStore;

/// Serves `game.reward.v1.RewardService`.
#[derive(Debug, Clone)]
pub struct RewardGrpc<S> {
    rewards: Rewards<S>,
}

impl<S> RewardGrpc<S> {
    /// The adapter over the use cases.
    pub fn new(rewards: Rewards<S>) -> Self {
        Self { rewards }
    }
}

impl From<RewardError> for Status {
    fn from(error: RewardError) -> Self {
        match error {
            RewardError::RewardNotFound(id) => Status::not_found(format!("reward {id} does not exist")),
            RewardError::Rule(violation) => Status::failed_precondition(violation.to_string()),
            RewardError::Storage(error) => store_failure(&error),
        }
    }
}

fn to_pb(reward: Reward) -> pb::Reward {
    pb::Reward {
        reward_id: reward.id.to_string(),
        mission_id: reward.mission_id.to_string(),
        customer_id: reward.customer_id.to_string(),
        points: reward.points.value(),
        status: match reward.status {
            RewardStatus::Allocated => pb::RewardStatus::Allocated,
            RewardStatus::Issued => pb::RewardStatus::Issued,
            RewardStatus::Exchanged => pb::RewardStatus::Exchanged,
            RewardStatus::Expired => pb::RewardStatus::Expired,
        }
        .into(),
        mission_code: reward.mission_code,
        allocated_at: Some(timestamp(reward.allocated_at)),
    }
}

#[tonic::async_trait]
impl<S: RewardStore> RewardService for RewardGrpc<S> {
    async fn get_reward(
        &self,
        request: Request<pb::GetRewardRequest>,
    ) -> Result<Response<pb::GetRewardResponse>, Status> {
        let caller = caller(&request)?;
        let id = field("reward_id", &request.get_ref().reward_id, RewardId::parse)?;
        let reward = self.rewards.get(id).await?;
        require_reader(&caller, &reward.customer_id)?;
        Ok(Response::new(pb::GetRewardResponse { reward: Some(to_pb(reward)) }))
    }
}
