//! My page on PostgreSQL: the events of many players' missions, in every
//! order and some twice, merge into the pages GetMyPage and WatchMyPage
//! answer, although the three consumers apply them side by side (on SQLite
//! one writer takes turns; here concurrent transactions meet on a page's
//! version).

use std::time::Duration;

use api::game::mission::v1::MissionStatus;
use api::game::mypage::v1 as pb;
use testkit::AsCaller;

use crate::helpers::{MissionLife, spawn_app_on};

const PLAYERS: usize = 40;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_postgresql_pages_merge_every_order_and_redelivery_and_are_read_and_watched() {
    let Some(schema) = testkit::PostgresSchema::create("mypage") else {
        return;
    };
    let app = spawn_app_on(Some(schema.url().to_owned())).await;
    assert_eq!(app.page("newcomer").await.version, 0, "a player no event named has an empty page");

    let mut watch = app
        .client
        .clone()
        .watch_my_page(pb::WatchMyPageRequest { customer_id: "player-0".into() }.by_operator())
        .await
        .unwrap()
        .into_inner();
    let watched = watch.message().await.unwrap().unwrap().my_page.unwrap();
    assert_eq!(watched.version, 0);

    // Each player's four events, in life order for some, reversed or
    // interleaved for others, every player's at once.
    let lives: Vec<MissionLife> = (0..PLAYERS).map(|i| MissionLife::new(&format!("player-{i}"))).collect();
    for round in 0..4 {
        for (i, life) in lives.iter().enumerate() {
            let step = match i % 3 {
                0 => round,
                1 => 3 - round,
                _ => [2, 0, 3, 1][round],
            };
            match step {
                0 => app.publish(&life.achieved()).await,
                1 => app.publish(&life.allocated()).await,
                2 => app.publish(&life.issued()).await,
                _ => app.publish(&life.exchanged()).await,
            };
        }
    }
    let mut before = Vec::with_capacity(PLAYERS);
    for life in &lives {
        before.push(app.page_becomes(&life.customer_id, &life.exchanged_page()).await);
    }

    // The watch saw player-0's page change, up to its final state.
    let last = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            let page = watch.message().await.unwrap().unwrap().my_page.unwrap();
            if page.version == before[0].version {
                return page;
            }
        }
    })
    .await
    .expect("the watch reaches the final page");
    assert_eq!(last, before[0]);
    assert_eq!(last.missions[0].status(), MissionStatus::Rewarded);

    // The same events again under new ids: only the merge can make them no-ops.
    let mut last_sequences = (0, 0, 0);
    for life in &lives {
        last_sequences.0 = app.publish(&life.achieved()).await;
        last_sequences.1 = app.publish(&life.allocated()).await;
        app.publish(&life.issued()).await;
        last_sequences.2 = app.publish(&life.exchanged()).await;
    }
    app.consumed("MISSION", "mypage-missions", last_sequences.0).await;
    app.consumed("REWARD", "mypage-rewards", last_sequences.1).await;
    app.consumed("WALLET", "mypage-wallet", last_sequences.2).await;
    for (life, page) in lives.iter().zip(&before) {
        assert_eq!(&app.page(&life.customer_id).await, page, "redeliveries changed {}", life.customer_id);
    }
    let players = i64::try_from(PLAYERS).unwrap();
    assert_eq!(schema.count("SELECT COUNT(*) AS n FROM my_pages").unwrap(), players);
    assert_eq!(schema.count("SELECT COUNT(*) AS n FROM inbox").unwrap(), players * 8);
}
