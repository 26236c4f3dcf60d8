//! The mission context's reactions to other contexts' events.

use api::game::reward::v1::RewardAllocated;
use platform::consumer::{Policy, PolicyError, ReceivedEvent};
use platform::db::DbConnection;
use platform::events::{Event as _, REWARD_STREAM, StreamDef};
use platform::store::DbTx;

use crate::app::{self, MissionError};
use crate::domain::{MissionId, RewardId};

/// On RewardAllocated: record the reward id on the mission (status Rewarded).
#[derive(Debug, Default)]
pub struct RecordReward;

impl Policy for RecordReward {
    fn name(&self) -> &'static str {
        "mission-record-reward"
    }

    fn stream(&self) -> StreamDef {
        REWARD_STREAM
    }

    fn subjects(&self) -> Vec<String> {
        vec![RewardAllocated::SUBJECT.to_owned()]
    }

    fn apply(&self, conn: &mut DbConnection, event: &ReceivedEvent) -> Result<(), PolicyError> {
        let allocated: RewardAllocated = event.decode()?;
        let mission_id =
            MissionId::parse(&allocated.mission_id).map_err(|e| PolicyError::Malformed(format!("mission_id {e}")))?;
        let reward_id =
            RewardId::parse(&allocated.reward_id).map_err(|e| PolicyError::Malformed(format!("reward_id {e}")))?;
        // The effect joins the consumer's transaction, inbox and all.
        match app::record_reward(&mut DbTx::new(conn), mission_id, reward_id) {
            Ok(_) => Ok(()),
            Err(MissionError::MissionNotFound(id)) => Err(PolicyError::NotYet(format!("mission {id} is not here yet"))),
            Err(MissionError::Rule(violation)) => Err(PolicyError::Malformed(violation.to_string())),
            Err(MissionError::Storage(error)) => Err(error.into()),
            // Recording a reward refuses nothing else; should it ever, the
            // event cannot be applied.
            Err(other) => Err(PolicyError::Malformed(other.to_string())),
        }
    }
}
