//! The reward domain, pure: the Reward aggregate, the allocation rule and the
//! forward-only status rules. No I/O, no async, no framework types.

use kernel::{CustomerId, Points};

kernel::uuid_id!(
    /// The reward allocated for one achieved mission.
    RewardId
);
kernel::uuid_id!(
    /// One achievement of one mission by one player, as the mission context names it.
    MissionId
);

impl RewardId {
    /// The one reward id a mission can ever have. Derived from the mission
    /// id, so allocating again for the same mission (a redelivery, a second
    /// replica) can only ever name the same reward.
    pub fn for_mission(mission_id: MissionId) -> Self {
        Self::from_uuid(kernel::derived_uuid(mission_id.as_uuid(), b"Reward"))
    }
}

/// Where a reward is in its life. Only moves forward.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum RewardStatus {
    /// Allocated for the mission; not yet in the player's wallet.
    Allocated,
    /// The wallet holds it and the player may exchange it.
    Issued,
    /// The player exchanged it for a gift.
    Exchanged,
    /// Its points expired in the wallet before they were spent. The last
    /// status a reward can reach: the wallet refuses to exchange an expired
    /// entry, so nothing it says of a reward comes after the expiry.
    Expired,
}

/// The Reward aggregate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reward {
    pub id: RewardId,
    /// The mission the reward is for; a mission has exactly one reward.
    pub mission_id: MissionId,
    pub customer_id: CustomerId,
    /// The code of the mission's definition, kept so the reward says what it was for.
    pub mission_code: String,
    /// What the reward is worth; always more than zero.
    pub points: Points,
    /// The event of the programme the mission belongs to, carried through
    /// to the wallet; `None` for a mission achieved before the programme.
    pub programme_event_id: Option<String>,
    /// When that event ends (milliseconds since the Unix epoch), the time
    /// the wallet reckons the reward's expiry from; `None` for an event that
    /// never ends.
    pub event_ends_at: Option<i64>,
    pub status: RewardStatus,
    /// Milliseconds since the Unix epoch.
    pub allocated_at: i64,
    /// Optimistic-concurrency version, bumped on every change.
    pub version: i64,
}

/// What happened to a reward.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RewardEvent {
    Allocated { reward: Reward },
}

/// A rule of the reward domain that an allocation would break.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RewardRuleViolation {
    #[error("mission {mission_id} promises no points; a reward must be worth more than zero")]
    NothingToReward { mission_id: MissionId },
}

/// An achieved mission, as far as allocating its reward is concerned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AchievedMission {
    pub mission_id: MissionId,
    pub customer_id: CustomerId,
    pub mission_code: String,
    /// The points the mission's definition promised when it was achieved.
    pub promised_points: Points,
    /// The event of the programme the mission belongs to, if any.
    pub programme_event_id: Option<String>,
    /// When that event ends; `None` for an event that never ends.
    pub event_ends_at: Option<i64>,
}

impl Reward {
    /// Allocates the reward for an achieved mission.
    ///
    /// The rule by mission code: the reward is worth exactly what the
    /// mission's definition promised. The mission context owns the catalogue
    /// and carries the promised points on `MissionAchieved`, so the reward
    /// context never keeps a second, diverging copy of the definitions.
    ///
    /// # Errors
    /// [`RewardRuleViolation::NothingToReward`] when the mission promised no points.
    pub fn allocate(mission: AchievedMission, now: i64) -> Result<(Self, RewardEvent), RewardRuleViolation> {
        if mission.promised_points.value() <= 0 {
            return Err(RewardRuleViolation::NothingToReward { mission_id: mission.mission_id });
        }
        let reward = Self {
            id: RewardId::for_mission(mission.mission_id),
            mission_id: mission.mission_id,
            customer_id: mission.customer_id,
            mission_code: mission.mission_code,
            points: mission.promised_points,
            programme_event_id: mission.programme_event_id,
            event_ends_at: mission.event_ends_at,
            status: RewardStatus::Allocated,
            allocated_at: now,
            version: 1,
        };
        let event = RewardEvent::Allocated { reward: reward.clone() };
        Ok((reward, event))
    }

    /// The wallet issued the reward to the player. Returns whether the
    /// status changed: a reward already issued or exchanged stays as it is.
    pub fn issue(&mut self) -> bool {
        self.advance_to(RewardStatus::Issued)
    }

    /// The player exchanged the reward for a gift. Returns whether the
    /// status changed: a reward already exchanged stays as it is.
    pub fn exchange(&mut self) -> bool {
        self.advance_to(RewardStatus::Exchanged)
    }

    /// The reward's points expired in the wallet. Returns whether the status
    /// changed: a reward already expired stays as it is. An exchanged reward
    /// expires too: points it still held past its exchange expired after it.
    pub fn expire(&mut self) -> bool {
        self.advance_to(RewardStatus::Expired)
    }

    /// Moves the status forward to `target`, never back: events from the
    /// wallet may arrive late, twice or out of order.
    fn advance_to(&mut self, target: RewardStatus) -> bool {
        if self.status >= target {
            return false;
        }
        self.status = target;
        self.version += 1;
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn achieved(points: i64) -> AchievedMission {
        AchievedMission {
            mission_id: MissionId::generate(),
            customer_id: CustomerId::parse("player-1").unwrap(),
            mission_code: "FIRST_WIN".into(),
            promised_points: Points::new(points).unwrap(),
            programme_event_id: None,
            event_ends_at: None,
        }
    }

    fn allocated() -> Reward {
        Reward::allocate(achieved(300), 1_000).unwrap().0
    }

    #[test]
    fn an_achieved_mission_is_rewarded_with_the_points_its_definition_promised() {
        let mission = achieved(300);
        let (reward, event) = Reward::allocate(mission.clone(), 1_000).unwrap();
        assert_eq!(reward.id, RewardId::for_mission(mission.mission_id));
        assert_eq!(reward.mission_id, mission.mission_id);
        assert_eq!(reward.customer_id, mission.customer_id);
        assert_eq!(reward.mission_code, "FIRST_WIN");
        assert_eq!(reward.points.value(), 300);
        assert_eq!(reward.status, RewardStatus::Allocated);
        assert_eq!(reward.allocated_at, 1_000);
        assert_eq!(reward.version, 1);
        assert_eq!(event, RewardEvent::Allocated { reward });
    }

    #[test]
    fn a_reward_carries_the_end_of_its_missions_event() {
        let mission = AchievedMission {
            programme_event_id: Some("WINTER-2026".into()),
            event_ends_at: Some(1_799_539_200_000),
            ..achieved(50)
        };
        let (reward, _) = Reward::allocate(mission, 1_000).unwrap();
        assert_eq!(reward.programme_event_id.as_deref(), Some("WINTER-2026"));
        assert_eq!(reward.event_ends_at, Some(1_799_539_200_000));
    }

    #[test]
    fn a_mission_always_gets_the_same_reward_id() {
        let mission = achieved(100);
        let first = Reward::allocate(mission.clone(), 1_000).unwrap().0;
        let again = Reward::allocate(mission, 2_000).unwrap().0;
        assert_eq!(first.id, again.id);
        assert_ne!(first.id, RewardId::for_mission(MissionId::generate()));
    }

    #[test]
    fn a_mission_promising_no_points_is_not_rewarded() {
        let mission = achieved(0);
        assert_eq!(
            Reward::allocate(mission.clone(), 1_000),
            Err(RewardRuleViolation::NothingToReward { mission_id: mission.mission_id })
        );
    }

    #[test]
    fn issuing_an_allocated_reward_makes_it_issued() {
        let mut reward = allocated();
        assert!(reward.issue());
        assert_eq!(reward.status, RewardStatus::Issued);
        assert_eq!(reward.version, 2);
    }

    #[test]
    fn issuing_twice_changes_nothing_the_second_time() {
        let mut reward = allocated();
        assert!(reward.issue());
        let before = reward.clone();
        assert!(!reward.issue());
        assert_eq!(reward, before);
    }

    #[test]
    fn exchanging_an_issued_reward_makes_it_exchanged() {
        let mut reward = allocated();
        assert!(reward.issue());
        assert!(reward.exchange());
        assert_eq!(reward.status, RewardStatus::Exchanged);
        assert_eq!(reward.version, 3);
    }

    #[test]
    fn an_exchange_arriving_before_the_issue_sticks() {
        let mut reward = allocated();
        assert!(reward.exchange());
        let before = reward.clone();
        assert!(!reward.issue(), "the late issue must not move the reward back");
        assert_eq!(reward, before);
        assert_eq!(reward.status, RewardStatus::Exchanged);
    }

    #[test]
    fn exchanging_twice_changes_nothing_the_second_time() {
        let mut reward = allocated();
        assert!(reward.exchange());
        let before = reward.clone();
        assert!(!reward.exchange());
        assert_eq!(reward, before);
    }

    #[test]
    fn an_issued_reward_whose_points_expired_is_expired() {
        let mut reward = allocated();
        assert!(reward.issue());
        assert!(reward.expire());
        assert_eq!(reward.status, RewardStatus::Expired);
        assert_eq!(reward.version, 3);
    }

    #[test]
    fn expiring_twice_changes_nothing_the_second_time() {
        let mut reward = allocated();
        assert!(reward.expire());
        let before = reward.clone();
        assert!(!reward.expire());
        assert_eq!(reward, before);
    }

    #[test]
    fn an_expiry_arriving_before_the_issue_sticks() {
        let mut reward = allocated();
        assert!(reward.expire());
        let before = reward.clone();
        assert!(!reward.issue(), "the late issue must not bring the reward back");
        assert!(!reward.exchange(), "nor a late exchange");
        assert_eq!(reward, before);
    }

    #[test]
    fn statuses_only_move_forward() {
        assert!(RewardStatus::Allocated < RewardStatus::Issued);
        assert!(RewardStatus::Issued < RewardStatus::Exchanged);
        assert!(RewardStatus::Exchanged < RewardStatus::Expired);
    }
}
