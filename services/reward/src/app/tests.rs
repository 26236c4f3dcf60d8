//! The reward use cases against an in-memory store: no database, no
//! broker. The diesel store and the policies are tested in `tests/api`.

#![allow(clippy::unwrap_used)] // a test that cannot proceed should stop right there

use std::collections::BTreeMap;

use kernel::StoreErrorKind;
use kernel::{CustomerId, Points};
use testkit::{MemoryStore, save_if_unchanged};

use super::*;
use crate::domain::{MissionId, RewardEvent, RewardStatus};

/// What the store holds.
#[derive(Debug, Clone, Default)]
struct Stored {
    rewards: BTreeMap<RewardId, Reward>,
    published: Vec<RewardEvent>,
}

/// The reward store in memory (see [`MemoryStore`]).
#[derive(Debug, Clone, Default)]
struct InMemoryRewardStore(MemoryStore<Stored>);

impl RewardStore for InMemoryRewardStore {
    async fn reward(&self, id: RewardId) -> Result<Option<Reward>, StoreError> {
        Ok(self.0.read(|s| s.rewards.get(&id).cloned()))
    }
}

impl RewardTx for Stored {
    fn reward(&mut self, id: RewardId) -> Result<Option<Reward>, StoreError> {
        Ok(self.rewards.get(&id).cloned())
    }

    fn reward_for_mission(&mut self, mission: MissionId) -> Result<Option<Reward>, StoreError> {
        Ok(self.rewards.values().find(|r| r.mission_id == mission).cloned())
    }

    fn insert(&mut self, reward: &Reward) -> Result<(), StoreError> {
        if self.reward_for_mission(reward.mission_id)?.is_some() || self.rewards.contains_key(&reward.id) {
            return Err(StoreError::conflict("reward for mission", reward.mission_id.to_string()));
        }
        self.rewards.insert(reward.id, reward.clone());
        Ok(())
    }

    fn update(&mut self, reward: &Reward) -> Result<(), StoreError> {
        save_if_unchanged(&mut self.rewards, &reward.id, reward, |r| r.version, "reward")
    }

    fn stage(&mut self, event: &RewardEvent) -> Result<(), StoreError> {
        self.published.push(event.clone());
        Ok(())
    }
}

impl InMemoryRewardStore {
    fn allocate(&self, mission: &AchievedMission) -> Result<Allocation, RewardError> {
        let mission = mission.clone();
        self.0.write(move |s| allocate(s, mission))
    }

    fn follow(&self, id: RewardId, step: WalletStep) -> Result<bool, RewardError> {
        self.0.write(move |s| follow_wallet(s, id, step))
    }

    /// The rewards RewardAllocated was committed for, in order.
    fn published(&self) -> Vec<RewardId> {
        self.0.read(|s| s.published.iter().map(|RewardEvent::Allocated { reward }| reward.id).collect())
    }
}

/// FIRST_WIN achieved by player-1, promising `points`.
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

#[tokio::test]
async fn an_achieved_mission_gets_one_reward_and_one_reward_allocated() {
    let store = InMemoryRewardStore::default();
    let mission = achieved(300);

    let first = store.allocate(&mission).unwrap();
    let again = store.allocate(&mission).unwrap();

    let id = RewardId::for_mission(mission.mission_id);
    assert_eq!((first, again), (Allocation::Allocated(id), Allocation::AlreadyAllocated(id)));
    assert_eq!(store.published(), [id]);
    let reward = Rewards::new(store.clone()).get(id).await.unwrap();
    assert_eq!((reward.status, reward.points), (RewardStatus::Allocated, Points::new(300).unwrap()));
}

#[tokio::test]
async fn a_mission_that_promised_nothing_is_refused_and_nothing_is_stored() {
    let store = InMemoryRewardStore::default();

    let answer = store.allocate(&achieved(0));

    assert!(matches!(answer, Err(RewardError::Rule(RewardRuleViolation::NothingToReward { .. }))), "{answer:?}");
    assert!(store.published().is_empty());
}

#[tokio::test]
async fn an_allocation_that_lost_to_a_concurrent_one_conflicts_and_applied_again_finds_its_reward() {
    let store = InMemoryRewardStore::default();
    let mission = achieved(300);
    let rival = mission.clone();
    store.0.lose_next_write_to(move |s| {
        allocate(s, rival).unwrap();
    });

    let lost = store.allocate(&mission);
    let again = store.allocate(&mission).unwrap();

    assert!(matches!(&lost, Err(RewardError::Storage(e)) if e.kind() == StoreErrorKind::Conflict), "{lost:?}");
    assert_eq!(again, Allocation::AlreadyAllocated(RewardId::for_mission(mission.mission_id)));
    assert_eq!(store.published().len(), 1, "the rival's RewardAllocated only");
}

#[tokio::test]
async fn the_wallet_moves_a_reward_forward_and_never_back() {
    let store = InMemoryRewardStore::default();
    let mission = achieved(300);
    store.allocate(&mission).unwrap();
    let id = RewardId::for_mission(mission.mission_id);

    assert!(store.follow(id, WalletStep::Exchanged).unwrap(), "an exchange may overtake the issue");
    assert!(!store.follow(id, WalletStep::Issued).unwrap(), "the late issue changes nothing");
    assert!(!store.follow(id, WalletStep::Exchanged).unwrap(), "a repeated exchange changes nothing");

    let reward = Rewards::new(store.clone()).get(id).await.unwrap();
    assert_eq!((reward.status, reward.version), (RewardStatus::Exchanged, 2));
}

#[tokio::test]
async fn an_expiry_in_the_wallet_makes_the_reward_expired_once() {
    let store = InMemoryRewardStore::default();
    let mission = achieved(300);
    store.allocate(&mission).unwrap();
    let id = RewardId::for_mission(mission.mission_id);
    assert!(store.follow(id, WalletStep::Issued).unwrap());

    assert!(store.follow(id, WalletStep::Expired).unwrap());
    assert!(!store.follow(id, WalletStep::Expired).unwrap(), "a repeated expiry changes nothing");
    assert!(!store.follow(id, WalletStep::Issued).unwrap(), "a late issue changes nothing");

    let reward = Rewards::new(store.clone()).get(id).await.unwrap();
    assert_eq!((reward.status, reward.version), (RewardStatus::Expired, 3));
}

#[tokio::test]
async fn a_wallet_step_before_the_allocation_is_not_found_yet() {
    let store = InMemoryRewardStore::default();
    let id = RewardId::generate();

    let answer = store.follow(id, WalletStep::Issued);

    assert!(matches!(answer, Err(RewardError::RewardNotFound(missing)) if missing == id), "{answer:?}");
    assert!(matches!(Rewards::new(store).get(id).await, Err(RewardError::RewardNotFound(_))));
}
