//! The mission use cases against an in-memory store: no database. The
//! diesel store behind the same port is tested in `tests/api`.

#![allow(clippy::unwrap_used)] // a test that cannot proceed should stop right there

use std::collections::BTreeMap;

use kernel::StoreErrorKind;
use kernel::{CustomerId, Points};
use testkit::{MemoryStore, save_if_unchanged};

use super::*;
use crate::domain::{MissionEvent, MissionStatus};

/// What the store holds.
#[derive(Debug, Clone, Default)]
struct Stored {
    definitions: Vec<MissionDefinition>,
    missions: BTreeMap<MissionId, Mission>,
    published: Vec<MissionEvent>,
}

/// The mission store in memory (see [`MemoryStore`]).
#[derive(Debug, Clone, Default)]
struct InMemoryMissionStore(MemoryStore<Stored>);

impl MissionStore for InMemoryMissionStore {
    async fn write<T, E, F>(&self, work: F) -> Result<T, E>
    where
        F: FnOnce(&mut dyn MissionTx) -> Result<T, E> + Send + 'static,
        T: Send + 'static,
        E: From<StoreError> + Send + 'static,
    {
        self.0.write(|stored| work(stored))
    }

    async fn definitions(&self) -> Result<Vec<MissionDefinition>, StoreError> {
        Ok(self.0.read(|s| s.definitions.clone()))
    }

    async fn mission(&self, id: MissionId) -> Result<Option<Mission>, StoreError> {
        Ok(self.0.read(|s| s.missions.get(&id).cloned()))
    }

    async fn missions(&self, customer: CustomerId) -> Result<Vec<Mission>, StoreError> {
        let mut missions: Vec<_> =
            self.0.read(|s| s.missions.values().filter(|m| m.customer_id == customer).cloned().collect());
        missions.sort_by(|a, b| b.achieved_at.cmp(&a.achieved_at).then(a.id.to_string().cmp(&b.id.to_string())));
        Ok(missions)
    }
}

impl MissionTx for Stored {
    fn definition(&mut self, code: &MissionCode) -> Result<Option<MissionDefinition>, StoreError> {
        Ok(self.definitions.iter().find(|d| d.code == *code).cloned())
    }

    fn mission(&mut self, id: MissionId) -> Result<Option<Mission>, StoreError> {
        Ok(self.missions.get(&id).cloned())
    }

    fn achieved(&mut self, customer: &CustomerId, code: &MissionCode) -> Result<Option<Mission>, StoreError> {
        Ok(self.missions.values().find(|m| m.customer_id == *customer && m.code == *code).cloned())
    }

    fn insert(&mut self, mission: &Mission) -> Result<(), StoreError> {
        if self.achieved(&mission.customer_id, &mission.code)?.is_some() || self.missions.contains_key(&mission.id) {
            return Err(StoreError::new(StoreErrorKind::Duplicate, format!("mission {}", mission.code)));
        }
        self.missions.insert(mission.id, mission.clone());
        Ok(())
    }

    fn update(&mut self, mission: &Mission) -> Result<(), StoreError> {
        save_if_unchanged(&mut self.missions, &mission.id, mission, |m| m.version, "mission")
    }

    fn stage(&mut self, event: &MissionEvent) -> Result<(), StoreError> {
        self.published.push(event.clone());
        Ok(())
    }
}

fn player() -> CustomerId {
    CustomerId::parse("player-1").unwrap()
}

fn code(value: &str) -> MissionCode {
    MissionCode::parse(value).unwrap()
}

/// The use cases over a catalogue of one mission, FIRST_WIN, worth 300 points.
fn missions() -> (Missions<InMemoryMissionStore>, InMemoryMissionStore) {
    let store = InMemoryMissionStore::default();
    let definition = MissionDefinition {
        code: code("FIRST_WIN"),
        title: "First win".into(),
        reward_points: Points::new(300).unwrap(),
    };
    store
        .0
        .write(|s| {
            s.definitions.push(definition);
            Ok::<_, StoreError>(())
        })
        .unwrap();
    (Missions::new(store.clone()), store)
}

fn published(store: &InMemoryMissionStore) -> Vec<MissionId> {
    store.0.read(|s| s.published.iter().map(|MissionEvent::Achieved { mission }| mission.id).collect())
}

#[tokio::test]
async fn achieving_a_mission_of_the_catalogue_publishes_mission_achieved_once() {
    let (missions, store) = missions();

    let mission = missions.achieve(player(), code("FIRST_WIN")).await.unwrap();
    let again = missions.achieve(player(), code("FIRST_WIN")).await.unwrap();

    assert_eq!(mission.status, MissionStatus::Achieved);
    assert_eq!(mission.reward_points, Points::new(300).unwrap());
    assert_eq!(again, mission, "a retry returns the first call's mission");
    assert_eq!(published(&store), [mission.id]);
    assert_eq!(missions.get(mission.id).await.unwrap(), mission);
    assert_eq!(missions.list(player()).await.unwrap(), [mission]);
}

#[tokio::test]
async fn a_code_outside_the_catalogue_is_refused_and_nothing_is_stored() {
    let (missions, store) = missions();

    let answer = missions.achieve(player(), code("NO_SUCH_MISSION")).await;

    assert!(matches!(answer, Err(MissionError::UnknownMissionCode(c)) if c == code("NO_SUCH_MISSION")));
    assert!(missions.list(player()).await.unwrap().is_empty());
    assert!(published(&store).is_empty());
}

#[tokio::test]
async fn the_loser_of_two_first_achievements_gets_the_winners_mission() {
    let (missions, store) = missions();
    let winner = missions.achieve(player(), code("FIRST_WIN")).await.unwrap();
    // The loser's insert met the winner's row.
    store.0.script_writes([Some(StoreErrorKind::Duplicate)]);

    let loser = missions.achieve(player(), code("FIRST_WIN")).await.unwrap();

    assert_eq!(loser, winner);
    assert_eq!(published(&store), [winner.id]);
}

#[tokio::test]
async fn a_second_duplicate_is_a_store_failure_not_a_race() {
    let (missions, store) = missions();
    store.0.script_writes([Some(StoreErrorKind::Duplicate), Some(StoreErrorKind::Duplicate)]);

    let answer = missions.achieve(player(), code("FIRST_WIN")).await;

    assert!(matches!(&answer, Err(MissionError::Storage(e)) if e.kind() == StoreErrorKind::Duplicate), "{answer:?}");
    assert!(published(&store).is_empty());
}

#[tokio::test]
async fn a_store_that_cannot_be_reached_reaches_the_caller_as_unavailable() {
    let (missions, store) = missions();
    store.0.script_writes([Some(StoreErrorKind::Unavailable)]);

    let answer = missions.achieve(player(), code("FIRST_WIN")).await;

    assert!(matches!(&answer, Err(MissionError::Storage(e)) if e.is_transient()), "{answer:?}");
    assert!(published(&store).is_empty());
}

#[tokio::test]
async fn a_mission_that_does_not_exist_is_not_found() {
    let (missions, _) = missions();
    let id = MissionId::generate();
    assert!(matches!(missions.get(id).await, Err(MissionError::MissionNotFound(missing)) if missing == id));
}

#[tokio::test]
async fn a_reward_is_recorded_once_and_a_second_one_refused() {
    let (missions, store) = missions();
    let mission = missions.achieve(player(), code("FIRST_WIN")).await.unwrap();
    let (reward, other) = (RewardId::generate(), RewardId::generate());
    let record = |reward| store.0.write(move |s| record_reward(s, mission.id, reward));

    assert_eq!(record(reward).unwrap(), RewardRecording::Recorded);
    assert_eq!(record(reward).unwrap(), RewardRecording::AlreadyRecorded);
    assert!(matches!(record(other), Err(MissionError::Rule(MissionRuleViolation::AlreadyRewarded { .. }))));

    let rewarded = missions.get(mission.id).await.unwrap();
    assert_eq!((rewarded.status, rewarded.reward_id), (MissionStatus::Rewarded, Some(reward)));
    let missing = MissionId::generate();
    let early = store.0.write(move |s| record_reward(s, missing, reward));
    assert!(matches!(early, Err(MissionError::MissionNotFound(id)) if id == missing), "not here yet: {early:?}");
}
