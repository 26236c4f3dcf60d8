//! The reward context's reactions to other contexts' events: allocating a
//! reward for each achieved mission, and following the wallet's moves and
//! expiries.

use api::game::mission::v1::MissionAchieved;
use api::game::wallet::v1::{PointsExpired, RewardExchanged, RewardIssued};
use kernel::{CustomerId, Points};
use platform::consumer::{Policy, PolicyError, ReceivedEvent};
use platform::db::DbConnection;
use platform::events::{Event as _, MISSION_STREAM, StreamDef, WALLET_STREAM, millis};
use platform::store::DbTx;

use crate::app::{self, RewardError, WalletStep};
use crate::domain::{AchievedMission, MissionId, RewardId};

fn malformed(field: &str, error: impl std::fmt::Display) -> PolicyError {
    PolicyError::Malformed(format!("{field} {error}"))
}

/// How a use case's outcome tells the consumer what to do with the event.
fn policy_error(error: RewardError) -> PolicyError {
    match error {
        RewardError::RewardNotFound(id) => PolicyError::NotYet(format!("reward {id} is not allocated yet")),
        RewardError::Rule(violation) => PolicyError::Malformed(violation.to_string()),
        RewardError::Storage(error) => error.into(),
    }
}

/// On MissionAchieved: allocate the mission's one reward.
#[derive(Debug, Default)]
pub struct AllocateReward;

impl Policy for AllocateReward {
    fn name(&self) -> &'static str {
        "reward-allocate"
    }

    fn stream(&self) -> StreamDef {
        MISSION_STREAM
    }

    fn subjects(&self) -> Vec<String> {
        vec![MissionAchieved::SUBJECT.to_owned()]
    }

    fn apply(&self, conn: &mut DbConnection, event: &ReceivedEvent) -> Result<(), PolicyError> {
        let achieved: MissionAchieved = event.decode()?;
        if achieved.mission_code.is_empty() {
            return Err(malformed("mission_code", "must not be empty"));
        }
        let mission = AchievedMission {
            mission_id: MissionId::parse(&achieved.mission_id).map_err(|e| malformed("mission_id", e))?,
            customer_id: CustomerId::parse(&achieved.customer_id).map_err(|e| malformed("customer_id", e))?,
            promised_points: Points::new(achieved.reward_points).map_err(|e| malformed("reward_points", e))?,
            mission_code: achieved.mission_code,
            // proto3 sends an absent text as empty.
            programme_event_id: Some(achieved.programme_event_id).filter(|id| !id.is_empty()),
            event_ends_at: achieved.event_ends_at.as_ref().map(|at| millis(Some(at))),
        };
        // The effect joins the consumer's transaction, inbox and all.
        app::allocate(&mut DbTx::new(conn), mission).map_err(policy_error)?;
        Ok(())
    }
}

/// On RewardIssued and RewardExchanged: move the reward's status forward.
#[derive(Debug, Default)]
pub struct TrackWallet;

impl Policy for TrackWallet {
    fn name(&self) -> &'static str {
        "reward-track-wallet"
    }

    fn stream(&self) -> StreamDef {
        WALLET_STREAM
    }

    fn subjects(&self) -> Vec<String> {
        vec![RewardIssued::SUBJECT.to_owned(), RewardExchanged::SUBJECT.to_owned()]
    }

    fn apply(&self, conn: &mut DbConnection, event: &ReceivedEvent) -> Result<(), PolicyError> {
        let (reward_id, step) = if event.subject == RewardExchanged::SUBJECT {
            (event.decode::<RewardExchanged>()?.reward_id, WalletStep::Exchanged)
        } else {
            (event.decode::<RewardIssued>()?.reward_id, WalletStep::Issued)
        };
        let reward_id = RewardId::parse(&reward_id).map_err(|e| malformed("reward_id", e))?;
        app::follow_wallet(&mut DbTx::new(conn), reward_id, step).map_err(policy_error)?;
        Ok(())
    }
}

/// On PointsExpired: the reward is EXPIRED.
///
/// A consumer of its own rather than one more subject of [`TrackWallet`]:
/// a new durable consumer starts at the beginning of the WALLET stream, so
/// the expiries the wallet published before this policy existed are applied
/// too, where widening `reward-track-wallet`'s subjects would only see the
/// ones published after the upgrade.
#[derive(Debug, Default)]
pub struct TrackExpiry;

impl Policy for TrackExpiry {
    fn name(&self) -> &'static str {
        "reward-track-expiry"
    }

    fn stream(&self) -> StreamDef {
        WALLET_STREAM
    }

    fn subjects(&self) -> Vec<String> {
        vec![PointsExpired::SUBJECT.to_owned()]
    }

    fn apply(&self, conn: &mut DbConnection, event: &ReceivedEvent) -> Result<(), PolicyError> {
        let expired: PointsExpired = event.decode()?;
        let reward_id = RewardId::parse(&expired.reward_id).map_err(|e| malformed("reward_id", e))?;
        app::follow_wallet(&mut DbTx::new(conn), reward_id, WalletStep::Expired).map_err(policy_error)?;
        Ok(())
    }
}
