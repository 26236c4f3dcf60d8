//! The mission domain, pure: mission definitions, the Mission aggregate and
//! its rules. No I/O, no async, no framework types.

use kernel::{CustomerId, Points};

kernel::uuid_id!(
    /// One achievement of one mission by one player.
    MissionId
);
kernel::uuid_id!(
    /// The reward the reward context allocated for a mission.
    RewardId
);

/// A mission code from the catalogue: 1 to 64 of `A-Z`, `0-9` and `_`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MissionCode(String);

/// Why a text is not a mission code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MissionCodeError {
    #[error("must not be empty")]
    Empty,
    #[error("must be at most 64 characters")]
    TooLong,
    #[error("may only contain A-Z, 0-9 and '_'")]
    BadCharacter,
}

impl MissionCode {
    /// Parses a mission code.
    ///
    /// # Errors
    /// When `value` is empty, longer than 64 characters, or not upper snake case.
    pub fn parse(value: &str) -> Result<Self, MissionCodeError> {
        if value.is_empty() {
            return Err(MissionCodeError::Empty);
        }
        if value.len() > 64 {
            return Err(MissionCodeError::TooLong);
        }
        if !value.bytes().all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_') {
            return Err(MissionCodeError::BadCharacter);
        }
        Ok(Self(value.to_owned()))
    }

    /// The code as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for MissionCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// One mission of the catalogue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MissionDefinition {
    pub code: MissionCode,
    pub title: String,
    /// What the reward for achieving it is worth.
    pub reward_points: Points,
}

/// Where a mission is in its life. Only moves forward.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum MissionStatus {
    /// Achieved; its reward is not allocated yet.
    Achieved,
    /// Its reward was allocated and recorded here.
    Rewarded,
}

/// The Mission aggregate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mission {
    pub id: MissionId,
    pub customer_id: CustomerId,
    pub code: MissionCode,
    pub status: MissionStatus,
    pub reward_id: Option<RewardId>,
    /// The points promised by the definition when the mission was achieved.
    pub reward_points: Points,
    /// Milliseconds since the Unix epoch.
    pub achieved_at: i64,
    /// Optimistic-concurrency version, bumped on every change.
    pub version: i64,
}

/// What happened to a mission.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MissionEvent {
    Achieved { mission: Mission },
}

/// A rule of the mission domain that a command would break.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MissionRuleViolation {
    #[error("mission {mission_id} already has reward {recorded}, not {offered}")]
    AlreadyRewarded { mission_id: MissionId, recorded: RewardId, offered: RewardId },
}

/// What recording a reward changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RewardRecording {
    /// The mission is now Rewarded with this reward.
    Recorded,
    /// The same reward was recorded before: nothing to do.
    AlreadyRecorded,
}

impl Mission {
    /// A player achieves a mission of the catalogue.
    pub fn achieve(
        id: MissionId,
        customer_id: CustomerId,
        definition: &MissionDefinition,
        now: i64,
    ) -> (Self, MissionEvent) {
        let mission = Self {
            id,
            customer_id,
            code: definition.code.clone(),
            status: MissionStatus::Achieved,
            reward_id: None,
            reward_points: definition.reward_points,
            achieved_at: now,
            version: 1,
        };
        let event = MissionEvent::Achieved { mission: mission.clone() };
        (mission, event)
    }

    /// Records the reward allocated for this mission. A mission has exactly
    /// one reward: recording the same one again changes nothing, another one
    /// is refused.
    ///
    /// # Errors
    /// [`MissionRuleViolation::AlreadyRewarded`] for a second, different reward.
    pub fn record_reward(&mut self, reward_id: RewardId) -> Result<RewardRecording, MissionRuleViolation> {
        match self.reward_id {
            Some(recorded) if recorded == reward_id => Ok(RewardRecording::AlreadyRecorded),
            Some(recorded) => {
                Err(MissionRuleViolation::AlreadyRewarded { mission_id: self.id, recorded, offered: reward_id })
            }
            None => {
                self.reward_id = Some(reward_id);
                self.status = self.status.max(MissionStatus::Rewarded);
                self.version += 1;
                Ok(RewardRecording::Recorded)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn definition() -> MissionDefinition {
        MissionDefinition {
            code: MissionCode::parse("FIRST_WIN").unwrap(),
            title: "Win a match".into(),
            reward_points: Points::new(300).unwrap(),
        }
    }

    fn achieved() -> Mission {
        let customer = CustomerId::parse("player-1").unwrap();
        Mission::achieve(MissionId::generate(), customer, &definition(), 1_000).0
    }

    #[test]
    fn achieving_a_mission_promises_the_definitions_points() {
        let customer = CustomerId::parse("player-1").unwrap();
        let (mission, event) = Mission::achieve(MissionId::generate(), customer.clone(), &definition(), 1_000);
        assert_eq!(mission.status, MissionStatus::Achieved);
        assert_eq!(mission.reward_points.value(), 300);
        assert_eq!(mission.reward_id, None);
        assert_eq!(mission.customer_id, customer);
        assert_eq!(event, MissionEvent::Achieved { mission });
    }

    #[test]
    fn recording_the_reward_makes_the_mission_rewarded() {
        let mut mission = achieved();
        let reward = RewardId::generate();
        assert_eq!(mission.record_reward(reward), Ok(RewardRecording::Recorded));
        assert_eq!(mission.status, MissionStatus::Rewarded);
        assert_eq!(mission.reward_id, Some(reward));
        assert_eq!(mission.version, 2);
    }

    #[test]
    fn recording_the_same_reward_twice_changes_nothing() {
        let mut mission = achieved();
        let reward = RewardId::generate();
        mission.record_reward(reward).unwrap();
        let before = mission.clone();
        assert_eq!(mission.record_reward(reward), Ok(RewardRecording::AlreadyRecorded));
        assert_eq!(mission, before);
    }

    #[test]
    fn a_second_different_reward_is_refused() {
        let mut mission = achieved();
        let first = RewardId::generate();
        mission.record_reward(first).unwrap();
        let second = RewardId::generate();
        assert!(matches!(
            mission.record_reward(second),
            Err(MissionRuleViolation::AlreadyRewarded { recorded, offered, .. }) if recorded == first && offered == second
        ));
        assert_eq!(mission.reward_id, Some(first));
    }

    #[test]
    fn statuses_only_move_forward() {
        assert!(MissionStatus::Achieved < MissionStatus::Rewarded);
    }

    #[test]
    fn mission_codes_are_upper_snake_case() {
        assert!(MissionCode::parse("FIRST_WIN").is_ok());
        assert_eq!(MissionCode::parse(""), Err(MissionCodeError::Empty));
        assert_eq!(MissionCode::parse("first_win"), Err(MissionCodeError::BadCharacter));
        assert_eq!(MissionCode::parse(&"A".repeat(65)), Err(MissionCodeError::TooLong));
    }
}
