//! The mission use cases against an in-memory store: no database. The
//! diesel store behind the same port is tested in `tests/api`.

#![allow(clippy::unwrap_used)] // a test that cannot proceed should stop right there

use std::collections::BTreeMap;
use std::num::NonZeroU32;

use kernel::StoreErrorKind;
use kernel::{CustomerId, Points};
use testkit::{MemoryStore, TestClock, save_if_unchanged};

use super::*;
use crate::domain::programme::{MissionLimit, Slot, Window};
use crate::domain::{MissionEvent, MissionStatus};

/// What the store holds.
#[derive(Debug, Clone, Default)]
struct Stored {
    events: Vec<ProgrammeEvent>,
    definitions: Vec<MissionDefinition>,
    missions: BTreeMap<MissionId, Mission>,
    published: Vec<MissionEvent>,
    changes: Vec<ProgrammeChange>,
}

impl Clock for TestClock {
    fn now(&self) -> i64 {
        TestClock::now(self)
    }
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

    async fn programme_events(&self) -> Result<Vec<ProgrammeEvent>, StoreError> {
        let mut events = self.0.read(|s| s.events.clone());
        events.sort_by_key(|e| (e.window.starts_at(), e.id.clone()));
        Ok(events)
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

    fn programme_event(&mut self, id: &ProgrammeEventId) -> Result<Option<ProgrammeEvent>, StoreError> {
        Ok(self.events.iter().find(|e| e.id == *id).cloned())
    }

    fn mission(&mut self, id: MissionId) -> Result<Option<Mission>, StoreError> {
        Ok(self.missions.get(&id).cloned())
    }

    fn achieved(&mut self, customer: &CustomerId, code: &MissionCode) -> Result<Option<Mission>, StoreError> {
        let achieved = self.missions.values().filter(|m| m.customer_id == *customer && m.code == *code);
        Ok(achieved.min_by_key(|m| m.slot).cloned())
    }

    fn achieved_as(
        &mut self,
        customer: &CustomerId,
        achievement_id: &AchievementId,
    ) -> Result<Option<Mission>, StoreError> {
        let mut achieved = self.missions.values();
        Ok(achieved.find(|m| m.customer_id == *customer && m.achievement_id.as_ref() == Some(achievement_id)).cloned())
    }

    fn slots_taken(&mut self, customer: &CustomerId, code: &MissionCode) -> Result<Vec<Slot>, StoreError> {
        let mut slots: Vec<Slot> =
            self.missions.values().filter(|m| m.customer_id == *customer && m.code == *code).map(|m| m.slot).collect();
        slots.sort();
        Ok(slots)
    }

    /// The unique keys of the real store: the id, (customer, code, slot) and
    /// (customer, achievement id).
    fn insert(&mut self, mission: &Mission) -> Result<(), StoreError> {
        let clash = self.missions.values().any(|m| {
            m.id == mission.id
                || (m.customer_id == mission.customer_id && m.code == mission.code && m.slot == mission.slot)
                || (m.customer_id == mission.customer_id
                    && m.achievement_id.is_some()
                    && m.achievement_id == mission.achievement_id)
        });
        if clash {
            return Err(StoreError::new(StoreErrorKind::Duplicate, format!("mission {}", mission.code)));
        }
        self.missions.insert(mission.id, mission.clone());
        Ok(())
    }

    fn insert_programme_event(&mut self, event: &ProgrammeEvent) -> Result<(), StoreError> {
        if self.events.iter().any(|e| e.id == event.id) {
            return Err(StoreError::new(StoreErrorKind::Duplicate, format!("event {}", event.id)));
        }
        self.events.push(event.clone());
        Ok(())
    }

    fn insert_definition(&mut self, definition: &MissionDefinition) -> Result<(), StoreError> {
        if self.definitions.iter().any(|d| d.code == definition.code) {
            return Err(StoreError::new(StoreErrorKind::Duplicate, format!("mission {}", definition.code)));
        }
        self.definitions.push(definition.clone());
        Ok(())
    }

    fn update(&mut self, mission: &Mission) -> Result<(), StoreError> {
        save_if_unchanged(&mut self.missions, &mission.id, mission, |m| m.version, "mission")
    }

    fn stage(&mut self, event: &MissionEvent) -> Result<(), StoreError> {
        self.published.push(event.clone());
        Ok(())
    }

    fn stage_change(&mut self, change: &ProgrammeChange) -> Result<(), StoreError> {
        self.changes.push(change.clone());
        Ok(())
    }
}

fn player() -> CustomerId {
    CustomerId::parse("player-1").unwrap()
}

fn code(value: &str) -> MissionCode {
    MissionCode::parse(value).unwrap()
}

/// 2026-12-24T00:00:00Z, when WINTER-2026 opens.
const WINTER_OPENS: i64 = 1_798_070_400_000;
/// 2027-01-10T00:00:00Z, when it ends.
const WINTER_ENDS: i64 = 1_799_539_200_000;
const DAY: i64 = 24 * 60 * 60 * 1000;

fn event_id(value: &str) -> ProgrammeEventId {
    ProgrammeEventId::parse(value).unwrap()
}

fn winter() -> ProgrammeEvent {
    ProgrammeEvent {
        id: event_id("WINTER-2026"),
        title: "Winter 2026".into(),
        window: Window::new(WINTER_OPENS, WINTER_ENDS).unwrap(),
    }
}

fn defined(value: &str, event: &ProgrammeEvent, limit: MissionLimit) -> MissionDefinition {
    MissionDefinition {
        code: code(value),
        title: format!("{value} title"),
        reward_points: Points::new(300).unwrap(),
        event_id: event.id.clone(),
        limit,
    }
}

/// The use cases over a catalogue of one mission, FIRST_WIN, worth 300
/// points, in the always-open LAUNCH event, as the migration leaves it.
fn missions() -> (Missions<InMemoryMissionStore>, InMemoryMissionStore) {
    let store = InMemoryMissionStore::default();
    let launch =
        ProgrammeEvent { id: ProgrammeEventId::launch(), title: "Launch".into(), window: Window::open_ended(0) };
    let definition = defined("FIRST_WIN", &launch, MissionLimit::Once);
    store
        .0
        .write(|s| {
            s.events.push(launch);
            s.definitions.push(definition);
            Ok::<_, StoreError>(())
        })
        .unwrap();
    (Missions::new(store.clone(), TestClock::at(WINTER_OPENS)), store)
}

/// The use cases over WINTER-2026 with one mission of each limit —
/// WIN_ONCE, WIN_THRICE (3 times), DAILY_WIN — at the clock's time.
fn winter_missions(clock: &TestClock) -> (Missions<InMemoryMissionStore>, InMemoryMissionStore) {
    let store = InMemoryMissionStore::default();
    let winter = winter();
    let definitions = [
        defined("WIN_ONCE", &winter, MissionLimit::Once),
        defined("WIN_THRICE", &winter, MissionLimit::Times(NonZeroU32::new(3).unwrap())),
        defined("DAILY_WIN", &winter, MissionLimit::Daily),
    ];
    store
        .0
        .write(|s| {
            s.events.push(winter);
            s.definitions.extend(definitions);
            Ok::<_, StoreError>(())
        })
        .unwrap();
    (Missions::new(store.clone(), clock.clone()), store)
}

fn achievement(value: &str, achievement_id: Option<&str>) -> Achievement {
    Achievement {
        customer_id: player(),
        code: code(value),
        achievement_id: achievement_id.map(|id| AchievementId::parse(id).unwrap()),
    }
}

fn operator() -> Operator {
    Operator::new("operator-ann")
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

#[tokio::test]
async fn a_mission_of_an_event_that_ended_is_refused_naming_the_event_and_its_end() {
    let clock = TestClock::at(WINTER_ENDS);
    let (missions, store) = winter_missions(&clock);

    let refused = missions.achieve(player(), code("WIN_ONCE")).await.unwrap_err();

    assert!(matches!(refused, MissionError::Programme(ProgrammeRuleViolation::Ended { .. })), "{refused:?}");
    assert_eq!(refused.to_string(), "event WINTER-2026 ended at 2027-01-10T00:00:00Z");
    assert!(published(&store).is_empty());
}

#[tokio::test]
async fn a_mission_of_an_event_not_open_yet_is_refused_naming_when_it_opens() {
    let clock = TestClock::at(WINTER_OPENS - 1);
    let (missions, store) = winter_missions(&clock);

    let refused = missions.record(achievement("DAILY_WIN", Some("match-1"))).await.unwrap_err();

    assert_eq!(refused.to_string(), "event WINTER-2026 opens at 2026-12-24T00:00:00Z");
    assert!(published(&store).is_empty());
    clock.set(WINTER_OPENS);
    assert!(missions.record(achievement("DAILY_WIN", Some("match-1"))).await.is_ok(), "open from its first instant");
}

#[tokio::test]
async fn a_once_mission_is_earned_once_per_event_and_a_retry_after_the_end_still_answers() {
    let clock = TestClock::at(WINTER_OPENS);
    let (missions, store) = winter_missions(&clock);

    let first = missions.achieve(player(), code("WIN_ONCE")).await.unwrap();
    let again = missions.record(achievement("WIN_ONCE", Some("match-2"))).await.unwrap();
    clock.set(WINTER_ENDS + DAY);
    let after_the_end = missions.achieve(player(), code("WIN_ONCE")).await.unwrap();

    assert_eq!((again.id, after_the_end.id), (first.id, first.id));
    assert_eq!((first.event_id.as_str(), first.event_ends_at), ("WINTER-2026", Some(WINTER_ENDS)));
    assert_eq!(published(&store), [first.id]);
}

#[tokio::test]
async fn a_mission_limited_to_three_times_is_earned_three_times_and_refused_the_fourth() {
    let clock = TestClock::at(WINTER_OPENS);
    let (missions, store) = winter_missions(&clock);

    for n in 1..=3 {
        let mission = missions.record(achievement("WIN_THRICE", Some(&format!("match-{n}")))).await.unwrap();
        assert_eq!(mission.slot, Slot::from_stored(n));
    }
    let refused = missions.record(achievement("WIN_THRICE", Some("match-4"))).await.unwrap_err();

    assert_eq!(
        refused.to_string(),
        "mission WIN_THRICE may be achieved 3 times per player; player-1 has achieved it 3 times"
    );
    assert_eq!(published(&store).len(), 3);
}

#[tokio::test]
async fn a_daily_mission_is_refused_twice_in_a_utc_day_and_earned_again_after_midnight() {
    let clock = TestClock::at(WINTER_OPENS + DAY - 60_000);
    let (missions, store) = winter_missions(&clock);

    let first = missions.record(achievement("DAILY_WIN", Some("day-1"))).await.unwrap();
    let refused = missions.record(achievement("DAILY_WIN", Some("day-1-again"))).await.unwrap_err();
    clock.set(WINTER_OPENS + DAY);
    let next_day = missions.record(achievement("DAILY_WIN", Some("day-2"))).await.unwrap();

    assert_eq!(
        refused.to_string(),
        "mission DAILY_WIN may be achieved once per day; player-1 achieved it today (2026-12-24 UTC) already"
    );
    assert_ne!(first.id, next_day.id);
    assert_eq!(next_day.slot.value(), first.slot.value() + 1);
    assert_eq!(published(&store), [first.id, next_day.id]);
}

#[tokio::test]
async fn a_repeatable_mission_retried_with_its_achievement_id_is_earned_once() {
    let clock = TestClock::at(WINTER_OPENS);
    let (missions, store) = winter_missions(&clock);

    let first = missions.record(achievement("WIN_THRICE", Some("match-9"))).await.unwrap();
    let retried = missions.record(achievement("WIN_THRICE", Some("match-9"))).await.unwrap();
    clock.set(WINTER_ENDS);
    let retried_late = missions.record(achievement("WIN_THRICE", Some("match-9"))).await.unwrap();

    assert_eq!((retried.clone(), retried_late), (first.clone(), first.clone()));
    assert_eq!(first.achievement_id.as_ref().map(AchievementId::as_str), Some("match-9"));
    assert_eq!(published(&store), [first.id]);
}

#[tokio::test]
async fn a_repeatable_mission_without_an_achievement_id_is_refused() {
    let clock = TestClock::at(WINTER_OPENS);
    let (missions, store) = winter_missions(&clock);

    let refused = missions.achieve(player(), code("DAILY_WIN")).await.unwrap_err();

    assert!(matches!(refused, MissionError::AchievementIdRequired(_)), "{refused:?}");
    assert_eq!(
        refused.to_string(),
        "mission DAILY_WIN may be achieved once per day, so each achievement needs the game's achievement_id"
    );
    assert!(published(&store).is_empty());
}

#[tokio::test]
async fn an_achievement_id_given_for_another_mission_is_refused() {
    let clock = TestClock::at(WINTER_OPENS);
    let (missions, _) = winter_missions(&clock);
    missions.record(achievement("WIN_THRICE", Some("match-5"))).await.unwrap();

    let refused = missions.record(achievement("DAILY_WIN", Some("match-5"))).await.unwrap_err();

    assert_eq!(refused.to_string(), "achievement match-5 of player-1 was mission WIN_THRICE, not DAILY_WIN");
}

#[tokio::test]
async fn the_loser_of_a_race_for_the_last_slot_is_decided_again_and_refused() {
    let clock = TestClock::at(WINTER_OPENS);
    let (missions, store) = winter_missions(&clock);
    missions.record(achievement("WIN_THRICE", Some("match-1"))).await.unwrap();
    missions.record(achievement("WIN_THRICE", Some("match-2"))).await.unwrap();
    // The winner took slot 3 between the loser's reading and its insert:
    // the loser's insert met the winner's row.
    let winner = missions.record(achievement("WIN_THRICE", Some("match-3"))).await.unwrap();
    store.0.script_writes([Some(StoreErrorKind::Duplicate)]);

    let loser = missions.record(achievement("WIN_THRICE", Some("match-3b"))).await.unwrap_err();

    assert!(matches!(loser, MissionError::Programme(ProgrammeRuleViolation::TimesReached { times: 3, .. })));
    assert_eq!(winner.slot, Slot::from_stored(3));
    assert_eq!(published(&store).len(), 3);
}

#[tokio::test]
async fn two_achievements_inserted_for_the_same_slot_keep_only_the_first() {
    // What the loser of the race above met: the store's unique slot.
    let clock = TestClock::at(WINTER_OPENS);
    let (missions, store) = winter_missions(&clock);
    let kept = missions.record(achievement("WIN_THRICE", Some("match-1"))).await.unwrap();
    let mut racing = kept.clone();
    racing.id = MissionId::generate();
    racing.achievement_id = Some(AchievementId::parse("match-1b").unwrap());

    let clash = store.0.write(move |s| s.insert(&racing));

    assert!(matches!(clash, Err(e) if e.kind() == StoreErrorKind::Duplicate));
    assert_eq!(missions.list(player()).await.unwrap(), [kept]);
}

#[tokio::test]
async fn players_see_the_missions_of_open_events_and_operators_see_all() {
    let clock = TestClock::at(WINTER_OPENS - DAY);
    let (missions, _) = winter_missions(&clock);

    assert!(missions.definitions().await.unwrap().is_empty(), "WINTER-2026 is not open yet");
    assert_eq!(missions.all_definitions().await.unwrap().len(), 3);
    clock.set(WINTER_OPENS);
    assert_eq!(missions.definitions().await.unwrap().len(), 3);
    clock.set(WINTER_ENDS);
    assert!(missions.definitions().await.unwrap().is_empty(), "WINTER-2026 ended");
    assert_eq!(missions.programme_events().await.unwrap(), [winter()]);
}

#[tokio::test]
async fn scheduling_an_event_records_who_and_when_once() {
    let clock = TestClock::at(WINTER_OPENS - 7 * DAY);
    let (missions, store) = missions();
    let missions = Missions { clock: Arc::new(clock.clone()), ..missions };

    let scheduled = missions.schedule_event(operator(), winter()).await.unwrap();
    let again = missions.schedule_event(operator(), winter()).await.unwrap();
    let otherwise = ProgrammeEvent { title: "Another winter".into(), ..winter() };
    let refused = missions.schedule_event(operator(), otherwise).await.unwrap_err();

    assert_eq!((scheduled, again), (winter(), winter()));
    assert!(matches!(refused, MissionError::EventScheduledOtherwise(id) if id == event_id("WINTER-2026")));
    let changes = store.0.read(|s| s.changes.clone());
    assert_eq!(
        changes,
        [ProgrammeChange::EventScheduled { event: winter(), operator: operator(), changed_at: WINTER_OPENS - 7 * DAY }]
    );
}

#[tokio::test]
async fn defining_a_mission_records_it_once_and_refuses_unknown_or_ended_events() {
    let clock = TestClock::at(WINTER_OPENS);
    let (missions, store) = winter_missions(&clock);
    let winter = winter();

    let weekly = defined("WEEKLY_WIN", &winter, MissionLimit::Times(NonZeroU32::new(2).unwrap()));
    assert_eq!(missions.define_mission(operator(), weekly.clone()).await.unwrap(), weekly);
    assert_eq!(missions.define_mission(operator(), weekly.clone()).await.unwrap(), weekly, "a retry");
    let taken = MissionDefinition { reward_points: Points::new(1).unwrap(), ..weekly.clone() };
    assert_eq!(
        missions.define_mission(operator(), taken).await.unwrap_err().to_string(),
        "mission code WEEKLY_WIN is taken by another definition, in event WINTER-2026"
    );
    let spring = ProgrammeEvent { id: event_id("SPRING-2027"), ..winter.clone() };
    let unknown = missions.define_mission(operator(), defined("SPRING_WIN", &spring, MissionLimit::Once)).await;
    assert!(matches!(unknown, Err(MissionError::UnknownEvent(id)) if id == spring.id));
    clock.set(WINTER_ENDS);
    let late = missions.define_mission(operator(), defined("LATE_WIN", &winter, MissionLimit::Once)).await;
    assert_eq!(late.unwrap_err().to_string(), "event WINTER-2026 ended at 2027-01-10T00:00:00Z");

    let changes = store.0.read(|s| s.changes.clone());
    assert_eq!(
        changes,
        [ProgrammeChange::MissionDefined { definition: weekly, operator: operator(), changed_at: WINTER_OPENS }]
    );
}
