//! The wallet context's reactions to other contexts' events.

use api::game::reward::v1::RewardAllocated;
use kernel::{CustomerId, Points};
use platform::consumer::{Policy, PolicyError, ReceivedEvent};
use platform::db::DbConnection;
use platform::events::{Event as _, REWARD_STREAM, StreamDef, millis};
use platform::store::DbTx;

use crate::app::{self, AllocatedReward};
use crate::domain::{MissionId, RewardExpiry, RewardId};

/// On RewardAllocated: put the reward in the player's wallet (RewardIssued),
/// expiring `expiry` after the end of the event it was earned in.
#[derive(Debug, Default)]
pub struct IssueReward {
    expiry: RewardExpiry,
}

impl IssueReward {
    /// The policy issuing rewards under `expiry`.
    pub fn new(expiry: RewardExpiry) -> Self {
        Self { expiry }
    }
}

impl Policy for IssueReward {
    fn name(&self) -> &'static str {
        "wallet-issue-reward"
    }

    fn stream(&self) -> StreamDef {
        REWARD_STREAM
    }

    fn subjects(&self) -> Vec<String> {
        vec![RewardAllocated::SUBJECT.to_owned()]
    }

    fn apply(&self, conn: &mut DbConnection, event: &ReceivedEvent) -> Result<(), PolicyError> {
        let allocated: RewardAllocated = event.decode()?;
        let malformed = |field: &str, e: &dyn std::fmt::Display| PolicyError::Malformed(format!("{field} {e}"));
        let reward = AllocatedReward {
            reward_id: RewardId::parse(&allocated.reward_id).map_err(|e| malformed("reward_id", &e))?,
            mission_id: MissionId::parse(&allocated.mission_id).map_err(|e| malformed("mission_id", &e))?,
            customer_id: CustomerId::parse(&allocated.customer_id).map_err(|e| malformed("customer_id", &e))?,
            points: Points::new(allocated.points).map_err(|e| malformed("points", &e))?,
            event_ends_at: allocated.event_ends_at.as_ref().map(|at| millis(Some(at))),
        };
        // The effect joins the consumer's transaction, inbox and all.
        app::issue(&mut DbTx::new(conn), reward, self.expiry)?;
        Ok(())
    }
}
