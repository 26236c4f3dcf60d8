use api::game::mission::v1::{self as pb, MissionStatus};
use api::game::reward::v1::RewardAllocated;
use platform::events::REWARD_STREAM;

use crate::helpers::{eventually, spawn_app};
use testkit::AsCaller;

async fn mission_achieved(
    client: &mut pb::mission_service_client::MissionServiceClient<tonic::transport::Channel>,
) -> pb::Mission {
    let request = pb::AchieveMissionRequest {
        customer_id: "player-2".into(),
        mission_code: "FIRST_LOGIN".into(),
        achievement_id: None,
    };
    client.achieve_mission(request.by_player("player-2")).await.unwrap().into_inner().mission.unwrap()
}

#[tokio::test]
async fn a_reward_allocated_for_the_mission_makes_it_rewarded_even_when_delivered_twice() {
    let mut app = spawn_app(None).await;
    let mission = mission_achieved(&mut app.client).await;
    let reward_id = uuid::Uuid::new_v4().to_string();
    let event = RewardAllocated {
        event_id: uuid::Uuid::new_v4().to_string(),
        reward_id: reward_id.clone(),
        mission_id: mission.mission_id.clone(),
        customer_id: "player-2".into(),
        mission_code: "FIRST_LOGIN".into(),
        points: 100,
        allocated_at: None,
        ..Default::default()
    };
    app.publish(&event).await;

    let mut client = app.client.clone();
    let rewarded = eventually("the mission to be rewarded", || {
        let mut client = client.clone();
        let id = mission.mission_id.clone();
        async move {
            let m = client
                .get_mission(pb::GetMissionRequest { mission_id: id }.by_player("player-2"))
                .await
                .ok()?
                .into_inner()
                .mission?;
            (m.status() == MissionStatus::Rewarded).then_some(m)
        }
    })
    .await;
    assert_eq!(rewarded.reward_id, reward_id);

    // The same event again, under a new message id so JetStream keeps it:
    // the inbox and the aggregate make it a no-op.
    let mut again = event.clone();
    again.event_id = uuid::Uuid::new_v4().to_string();
    app.publish(&again).await;
    app.settled(REWARD_STREAM, "mission-record-reward").await;
    let after = client
        .get_mission(pb::GetMissionRequest { mission_id: mission.mission_id }.by_player("player-2"))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(after.mission.unwrap(), rewarded);
}
