//! The mission domain, pure: mission definitions, the Mission aggregate and
//! its rules. No I/O, no async, no framework types.
//!
//! - [`programme`]: events and their windows, limits and slots.

pub mod programme;

use kernel::{CustomerId, Points};

use self::programme::{AchievementId, MissionLimit, Operator, ProgrammeEvent, ProgrammeEventId, Slot};

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
    /// The event it can be achieved in.
    pub event_id: ProgrammeEventId,
    /// How often one player may achieve it.
    pub limit: MissionLimit,
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
    /// The event it was achieved in.
    pub event_id: ProgrammeEventId,
    /// When that event ends (none: never), as it stood at the achievement:
    /// the reward's expiry is reckoned from it.
    pub event_ends_at: Option<i64>,
    /// The place this achievement takes among the player's achievements of
    /// the same mission (see [`Slot`]).
    pub slot: Slot,
    /// The game's id of the achievement, when the call gave one.
    pub achievement_id: Option<AchievementId>,
}

/// What happened to a mission.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MissionEvent {
    Achieved { mission: Mission },
}

/// An operator's change to the programme, published as its audit record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProgrammeChange {
    EventScheduled { event: ProgrammeEvent, operator: Operator, changed_at: i64 },
    MissionDefined { definition: MissionDefinition, operator: Operator, changed_at: i64 },
}

/// One achievement of a mission as the game server reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Achievement {
    pub customer_id: CustomerId,
    pub code: MissionCode,
    /// The game's id of it: required for a repeatable mission.
    pub achievement_id: Option<AchievementId>,
}

/// A rule of the mission domain that a command would break.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MissionRuleViolation {
    #[error("mission {mission_id} already has reward {recorded}, not {offered}")]
    AlreadyRewarded { mission_id: MissionId, recorded: RewardId, offered: RewardId },
}

/// Why an achievement is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AchieveRefusal {
    #[error(transparent)]
    AchievementIdRequired(#[from] AchievementIdRequired),
    #[error(transparent)]
    Programme(#[from] programme::ProgrammeRuleViolation),
}

/// A repeatable mission was achieved without the game's achievement id,
/// its idempotency key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("mission {code} may be achieved {limit}, so each achievement needs the game's achievement_id")]
pub struct AchievementIdRequired {
    pub code: MissionCode,
    pub limit: MissionLimit,
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
    /// A player achieves a mission of the catalogue at `now`, in the
    /// definition's `event`, after earlier achievements of the same mission
    /// that took the slots `taken`. The mission takes its next slot.
    ///
    /// # Errors
    /// [`AchieveRefusal::AchievementIdRequired`] for a repeatable mission
    /// without the game's achievement id; [`AchieveRefusal::Programme`] when
    /// the event is not open at `now` or the limit is reached.
    pub fn achieve(
        id: MissionId,
        achievement: Achievement,
        definition: &MissionDefinition,
        event: &ProgrammeEvent,
        taken: &[Slot],
        now: i64,
    ) -> Result<(Self, MissionEvent), AchieveRefusal> {
        if definition.limit.is_repeatable() && achievement.achievement_id.is_none() {
            return Err(AchievementIdRequired { code: definition.code.clone(), limit: definition.limit }.into());
        }
        event.check_open(now)?;
        let slot = definition.limit.next_slot(&definition.code, &achievement.customer_id, taken, now)?;
        let mission = Self {
            id,
            customer_id: achievement.customer_id,
            code: definition.code.clone(),
            status: MissionStatus::Achieved,
            reward_id: None,
            reward_points: definition.reward_points,
            achieved_at: now,
            version: 1,
            event_id: event.id.clone(),
            event_ends_at: event.window.ends_at(),
            slot,
            achievement_id: achievement.achievement_id,
        };
        let achieved = MissionEvent::Achieved { mission: mission.clone() };
        Ok((mission, achieved))
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

    use std::num::NonZeroU32;

    use super::programme::{ProgrammeRuleViolation, Window};

    fn definition(limit: MissionLimit) -> MissionDefinition {
        MissionDefinition {
            code: MissionCode::parse("FIRST_WIN").unwrap(),
            title: "Win a match".into(),
            reward_points: Points::new(300).unwrap(),
            event_id: ProgrammeEventId::parse("WINTER-2026").unwrap(),
            limit,
        }
    }

    fn winter() -> ProgrammeEvent {
        ProgrammeEvent {
            id: ProgrammeEventId::parse("WINTER-2026").unwrap(),
            title: "Winter 2026".into(),
            window: Window::new(1_000, 10_000).unwrap(),
        }
    }

    fn by_player(achievement_id: Option<&str>) -> Achievement {
        Achievement {
            customer_id: CustomerId::parse("player-1").unwrap(),
            code: MissionCode::parse("FIRST_WIN").unwrap(),
            achievement_id: achievement_id.map(|id| AchievementId::parse(id).unwrap()),
        }
    }

    fn achieved() -> Mission {
        Mission::achieve(MissionId::generate(), by_player(None), &definition(MissionLimit::Once), &winter(), &[], 1_000)
            .unwrap()
            .0
    }

    #[test]
    fn achieving_a_mission_promises_the_definitions_points() {
        let (mission, event) = Mission::achieve(
            MissionId::generate(),
            by_player(None),
            &definition(MissionLimit::Once),
            &winter(),
            &[],
            1_000,
        )
        .unwrap();
        assert_eq!(mission.status, MissionStatus::Achieved);
        assert_eq!(mission.reward_points.value(), 300);
        assert_eq!(mission.reward_id, None);
        assert_eq!(mission.customer_id, CustomerId::parse("player-1").unwrap());
        assert_eq!((mission.event_id.as_str(), mission.event_ends_at), ("WINTER-2026", Some(10_000)));
        assert_eq!(mission.slot, Slot::ONCE);
        assert_eq!(event, MissionEvent::Achieved { mission });
    }

    #[test]
    fn a_repeatable_mission_needs_the_games_achievement_id() {
        let three = definition(MissionLimit::Times(NonZeroU32::new(3).unwrap()));
        let refused = Mission::achieve(MissionId::generate(), by_player(None), &three, &winter(), &[], 1_000);
        assert_eq!(
            refused.unwrap_err().to_string(),
            "mission FIRST_WIN may be achieved 3 times per player, so each achievement needs the game's achievement_id"
        );
        let (mission, _) = Mission::achieve(
            MissionId::generate(),
            by_player(Some("match-7")),
            &three,
            &winter(),
            &[Slot::ONCE],
            1_000,
        )
        .unwrap();
        assert_eq!(mission.slot, Slot::from_stored(2));
        assert_eq!(mission.achievement_id.unwrap().as_str(), "match-7");
    }

    #[test]
    fn a_mission_is_achieved_only_while_its_event_is_open() {
        let once = definition(MissionLimit::Once);
        let early = Mission::achieve(MissionId::generate(), by_player(None), &once, &winter(), &[], 999);
        assert!(matches!(early, Err(AchieveRefusal::Programme(ProgrammeRuleViolation::NotOpenYet { .. }))));
        let late = Mission::achieve(MissionId::generate(), by_player(None), &once, &winter(), &[], 10_000);
        assert!(matches!(late, Err(AchieveRefusal::Programme(ProgrammeRuleViolation::Ended { .. }))));
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
