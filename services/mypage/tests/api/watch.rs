//! WatchMyPage: the page now, then after every change, until the service stops.

use std::time::Duration;

use api::game::mission::v1::MissionStatus;
use api::game::mypage::v1 as pb;
use tonic::Streaming;

use crate::helpers::{MissionLife, spawn_app};
use testkit::AsCaller;

/// The next page of a watch; waits at most 10 seconds, so a missing update
/// fails the test instead of hanging it.
async fn next_page(watch: &mut Streaming<pb::WatchMyPageResponse>) -> pb::MyPage {
    tokio::time::timeout(Duration::from_secs(10), watch.message())
        .await
        .expect("a page within 10 seconds")
        .unwrap()
        .expect("the watch is still open")
        .my_page
        .unwrap()
}

async fn watch(app: &crate::helpers::TestApp, customer: &str) -> Streaming<pb::WatchMyPageResponse> {
    app.client
        .clone()
        .watch_my_page(pb::WatchMyPageRequest { customer_id: customer.into() }.by_operator())
        .await
        .unwrap()
        .into_inner()
}

#[tokio::test]
async fn watching_a_page_yields_it_at_once_then_again_after_each_change() {
    let app = spawn_app().await;
    let mut pages = watch(&app, "player-7").await;
    let first = next_page(&mut pages).await;
    assert_eq!((first.customer_id.as_str(), first.version), ("player-7", 0));
    assert!(first.missions.is_empty());

    let life = MissionLife::new("player-7");
    app.publish(&life.achieved()).await;
    let achieved = next_page(&mut pages).await;
    assert_eq!(achieved.version, 1);
    assert_eq!(achieved.missions.len(), 1);
    assert_eq!(achieved.missions[0].mission_id, life.mission_id);
    assert_eq!(achieved.missions[0].status(), MissionStatus::Achieved);

    app.publish(&life.allocated()).await;
    let rewarded = next_page(&mut pages).await;
    assert_eq!(rewarded.version, 2);
    assert_eq!(rewarded.missions[0].status(), MissionStatus::Rewarded);
    assert_eq!(rewarded.missions[0].reward_id, life.reward_id);
}

#[tokio::test]
async fn a_watch_starts_from_the_current_page() {
    let app = spawn_app().await;
    let life = MissionLife::new("player-8");
    app.publish(&life.achieved()).await;
    let current = crate::helpers::eventually("the mission on the page", || async {
        let page = app.page("player-8").await;
        (page.version > 0).then_some(page)
    })
    .await;

    let mut pages = watch(&app, "player-8").await;
    assert_eq!(next_page(&mut pages).await, current);
}

#[tokio::test]
async fn a_watch_sees_a_change_that_another_replica_applied() {
    use kernel::{CustomerId, Points};
    use mypage::domain::{MissionId, PageEvent};
    use platform::db::Database;
    use platform::store::{DbTx, StoreError};

    let app = spawn_app().await;
    let mut pages = watch(&app, "player-10").await;
    assert_eq!(next_page(&mut pages).await.version, 0);

    // Another replica shares the store but not this replica's notifications:
    // only the watch's poll can see its change.
    let replica = Database::connect(&app.database_url, mypage::SPEC.migrations).await.unwrap();
    let mission_id = MissionId::generate();
    replica
        .write(move |conn| {
            let event = PageEvent::MissionAchieved {
                mission_id,
                mission_code: Some("FIRST_LOGIN".into()),
                reward_points: Points::new(100).unwrap(),
                achieved_at: Some(1_764_000_000_000),
            };
            mypage::app::merge_event(&mut DbTx::new(conn), &CustomerId::parse("player-10").unwrap(), &event)?;
            Ok::<_, StoreError>(())
        })
        .await
        .unwrap();

    let changed = next_page(&mut pages).await;
    assert_eq!(changed.version, 1);
    assert_eq!(changed.missions[0].mission_id, mission_id.to_string());
    assert_eq!(changed.missions[0].reward_points, 100);
}

#[tokio::test]
async fn a_stopping_service_ends_open_watches_instead_of_waiting_for_them() {
    let mut app = spawn_app().await;
    let mut pages = watch(&app, "player-9").await;
    next_page(&mut pages).await;

    app.stop.cancel();
    let ended =
        tokio::time::timeout(Duration::from_secs(10), pages.message()).await.expect("the watch ends within 10 seconds");
    // A clean end (status OK), not the connection torn down once the grace
    // period ran out.
    assert!(matches!(ended, Ok(None)), "the watch ended with {ended:?}");
    let served = tokio::time::timeout(Duration::from_secs(10), &mut app.served)
        .await
        .expect("the service drains within 10 seconds");
    assert!(served.unwrap().is_ok());
}

#[tokio::test]
async fn a_watch_ends_unauthenticated_when_its_token_expires() {
    let app = spawn_app().await;
    // Past its `exp` within the verifier's leeway: accepted, and already due to end.
    let token = testkit::identity().token("player-11", &["player"], Duration::ZERO);
    let request = testkit::authorized(pb::WatchMyPageRequest { customer_id: "player-11".into() }, &token);
    let mut pages = app.client.clone().watch_my_page(request).await.unwrap().into_inner();
    let ended = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            match pages.message().await {
                Ok(Some(_)) => {}
                Ok(None) => panic!("the watch ended with no status"),
                Err(status) => return status,
            }
        }
    })
    .await
    .expect("the watch ends within 10 seconds");
    assert_eq!(ended.code(), tonic::Code::Unauthenticated, "{ended:?}");
    assert!(ended.message().contains("expired"), "{}", ended.message());
}

#[tokio::test]
async fn a_watch_with_a_valid_token_stays_open() {
    let app = spawn_app().await;
    let token = testkit::identity().token("player-12", &["player"], Duration::from_secs(600));
    let request = testkit::authorized(pb::WatchMyPageRequest { customer_id: "player-12".into() }, &token);
    let mut pages = app.client.clone().watch_my_page(request).await.unwrap().into_inner();
    next_page(&mut pages).await;
    let next = tokio::time::timeout(Duration::from_millis(1500), pages.message()).await;
    assert!(next.is_err(), "the watch ended or sent a page with nothing changed: {next:?}");
}
