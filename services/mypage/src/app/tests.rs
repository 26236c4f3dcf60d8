//! The my page use cases against an in-memory store: no database, no
//! broker. The diesel store and the policies are tested in `tests/api`.

#![allow(clippy::unwrap_used)] // a test that cannot proceed should stop right there

use std::collections::BTreeMap;

use kernel::Points;
use kernel::StoreErrorKind;
use testkit::{MemoryStore, save_if_unchanged};

use super::*;
use crate::domain::MissionId;

/// What the store holds.
#[derive(Debug, Clone, Default)]
struct Stored {
    pages: BTreeMap<CustomerId, PlayerPage>,
}

/// The page store in memory (see [`MemoryStore`]).
#[derive(Debug, Clone, Default)]
struct InMemoryPageStore(MemoryStore<Stored>);

impl PageStore for InMemoryPageStore {
    async fn page(&self, customer: CustomerId) -> Result<Option<PlayerPage>, StoreError> {
        Ok(self.0.read(|s| s.pages.get(&customer).cloned()))
    }
}

impl PageTx for Stored {
    fn page(&mut self, customer: &CustomerId) -> Result<Option<PlayerPage>, StoreError> {
        Ok(self.pages.get(customer).cloned())
    }

    fn insert(&mut self, page: &PlayerPage) -> Result<(), StoreError> {
        if self.pages.contains_key(&page.customer_id) {
            return Err(StoreError::conflict("my page", page.customer_id.to_string()));
        }
        self.pages.insert(page.customer_id.clone(), page.clone());
        Ok(())
    }

    fn update(&mut self, page: &PlayerPage) -> Result<(), StoreError> {
        save_if_unchanged(&mut self.pages, &page.customer_id, page, |p| p.version, "my page")
    }
}

impl InMemoryPageStore {
    fn merge(&self, event: &PageEvent) -> Result<Merge, StoreError> {
        let event = event.clone();
        self.0.write(move |s| merge_event(s, &player(), &event))
    }
}

fn player() -> CustomerId {
    CustomerId::parse("player-1").unwrap()
}

fn achieved(mission_id: MissionId) -> PageEvent {
    PageEvent::MissionAchieved {
        mission_id,
        mission_code: Some("FIRST_WIN".into()),
        reward_points: Points::new(300).unwrap(),
        achieved_at: Some(1_000),
    }
}

fn pages() -> (MyPages<InMemoryPageStore>, InMemoryPageStore, PageChanges) {
    let (store, changes) = (InMemoryPageStore::default(), PageChanges::default());
    (MyPages::new(store.clone(), changes.clone()), store, changes)
}

#[tokio::test]
async fn a_player_no_event_mentioned_has_an_empty_page_at_version_0() {
    let (pages, _, _) = pages();
    assert_eq!(pages.get(player()).await.unwrap(), PlayerPage::empty(player()));
}

#[tokio::test]
async fn an_event_changes_the_page_once_and_its_repeat_leaves_the_version() {
    let (pages, store, _) = pages();
    let event = achieved(MissionId::generate());

    assert_eq!(store.merge(&event).unwrap(), Merge::Changed);
    assert_eq!(store.merge(&event).unwrap(), Merge::Unchanged);

    let page = pages.get(player()).await.unwrap();
    assert_eq!((page.version, page.page.missions().len()), (1, 1));
}

#[tokio::test]
async fn a_first_page_stored_meanwhile_elsewhere_conflicts_and_the_event_merges_into_it_again() {
    let (pages, store, _) = pages();
    let (theirs, ours) = (achieved(MissionId::generate()), achieved(MissionId::generate()));
    // Another replica stores the player's first page between our read and our write.
    store.0.lose_next_write_to(move |s| {
        merge_event(s, &player(), &theirs).unwrap();
    });

    let lost = store.merge(&ours);
    let again = store.merge(&ours).unwrap();

    assert_eq!(lost.unwrap_err().kind(), StoreErrorKind::Conflict);
    assert_eq!(again, Merge::Changed);
    let page = pages.get(player()).await.unwrap();
    assert_eq!((page.version, page.page.missions().len()), (2, 2), "both events, one version each");
}

#[tokio::test]
async fn a_watch_sends_the_page_then_each_new_version_once_and_ends_when_the_service_stops() {
    let (pages, store, changes) = pages();
    let stopping = CancellationToken::new();
    let mut watch = Box::pin(pages.watch(player(), stopping.clone()).await.unwrap());
    assert_eq!(watch.next().await.unwrap().unwrap().version, 0);

    store.merge(&achieved(MissionId::generate())).unwrap();
    changes.notify(player());
    assert_eq!(watch.next().await.unwrap().unwrap().version, 1);

    // Told again with nothing new: nothing is sent.
    changes.notify(player());
    let quiet = tokio::time::timeout(Duration::from_millis(100), watch.next()).await;
    assert!(quiet.is_err(), "a version is sent once: {quiet:?}");

    stopping.cancel();
    assert!(watch.next().await.is_none());
}
