//! Two my page processes on one PostgreSQL store split a backlog of a
//! thousand events on their three consumers: each applied once, every page
//! complete.

use std::time::Duration;

use api::game::mypage::v1 as pb;
use api::game::mypage::v1::my_page_service_client::MyPageServiceClient;
use platform::events::{MISSION_STREAM, REWARD_STREAM, WALLET_STREAM};
use testkit::{AsCaller, Broker, ServiceCommand};

use crate::helpers::MissionLife;

/// Four events per life: a backlog of 1,000.
const LIVES: usize = 250;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_postgresql_two_replicas_split_a_backlog_of_a_thousand_events_and_apply_each_once() {
    let Some(schema) = testkit::PostgresSchema::create("mypage_split") else {
        return;
    };
    let broker = Broker::start().await;
    let lives: Vec<MissionLife> = (0..LIVES).map(|i| MissionLife::new(&format!("player-{i}"))).collect();
    for life in &lives {
        broker.publish(&life.exchanged()).await;
        broker.publish(&life.achieved()).await;
        broker.publish(&life.issued()).await;
        broker.publish(&life.allocated()).await;
    }
    let mypage =
        ServiceCommand::new(env!("CARGO_BIN_EXE_mypage"), mypage::SPEC.grpc_service, schema.url(), &broker.url());
    let split = testkit::split_backlog(
        &broker,
        &schema,
        mypage,
        2,
        &[(MISSION_STREAM, "mypage-missions"), (REWARD_STREAM, "mypage-rewards"), (WALLET_STREAM, "mypage-wallet")],
        4 * LIVES as u64,
        Duration::from_secs(60),
    )
    .await
    .unwrap();

    let mut client = MyPageServiceClient::connect(split.replicas[0].grpc_url()).await.unwrap();
    for life in &lives {
        let request = pb::GetMyPageRequest { customer_id: life.customer_id.clone() }.by_operator();
        let page = client.get_my_page(request).await.unwrap().into_inner().my_page.unwrap();
        assert_eq!(pb::MyPage { version: 0, ..page }, life.exchanged_page());
    }
}
