use api::game::mission::v1::{self as pb, MissionStatus};
use platform::events::MISSION_STREAM;
use tonic::Code;

use crate::helpers::spawn_app;
use testkit::AsCaller;

/// The player `customer` achieving `code`.
fn achieve(customer: &str, code: &str) -> tonic::Request<pb::AchieveMissionRequest> {
    achieve_as(customer, customer, code)
}

/// The player `caller` asking to achieve `code` for `customer`.
fn achieve_as(caller: &str, customer: &str, code: &str) -> tonic::Request<pb::AchieveMissionRequest> {
    pb::AchieveMissionRequest { customer_id: customer.into(), mission_code: code.into(), achievement_id: None }
        .by_player(caller)
}

#[tokio::test]
async fn achieving_a_mission_returns_it_achieved_and_publishes_mission_achieved_once() {
    let mut app = spawn_app(None).await;
    let first = app.client.achieve_mission(achieve("player-1", "FIRST_WIN")).await.unwrap().into_inner();
    let mission = first.mission.unwrap();
    assert_eq!(mission.status(), MissionStatus::Achieved);
    assert_eq!(mission.customer_id, "player-1");
    assert_eq!(mission.reward_points, 300);
    assert!(mission.reward_id.is_empty());

    // A retried call returns the same mission.
    let again = app.client.achieve_mission(achieve("player-1", "FIRST_WIN")).await.unwrap().into_inner();
    assert_eq!(again.mission.unwrap().mission_id, mission.mission_id);

    // Exactly one MissionAchieved reached the stream, with its headers.
    let seen = app.published(MISSION_STREAM, 1).await;
    assert_eq!(seen.len(), 1, "exactly one MissionAchieved");
    let headers = seen[0].headers.as_ref().unwrap();
    assert_eq!(headers.get("Mission-Id").unwrap().as_str(), mission.mission_id);
    assert_eq!(headers.get("Customer-Id").unwrap().as_str(), "player-1");
    assert_eq!(headers.get("Event-Type").unwrap().as_str(), "game.mission.v1.MissionAchieved");
    assert!(headers.get("Nats-Msg-Id").is_some());
    let event: pb::MissionAchieved = prost::Message::decode(seen[0].payload.as_ref()).unwrap();
    assert_eq!(event.mission_id, mission.mission_id);
    assert_eq!(event.reward_points, 300);
}

#[tokio::test]
async fn the_catalogue_lists_every_mission_with_its_points() {
    let mut app = spawn_app(None).await;
    let definitions = app
        .client
        .list_mission_definitions(pb::ListMissionDefinitionsRequest {}.by_player("player-1"))
        .await
        .unwrap()
        .into_inner()
        .definitions;
    assert!(definitions.len() >= 3);
    assert!(definitions.iter().all(|d| d.reward_points > 0 && !d.title.is_empty()));
}

#[tokio::test]
async fn an_unknown_mission_code_is_not_found_and_changes_nothing() {
    let mut app = spawn_app(None).await;
    let status = app.client.achieve_mission(achieve("player-1", "NO_SUCH_MISSION")).await.unwrap_err();
    assert_eq!(status.code(), Code::NotFound);
    assert_eq!(status.message(), "mission code NO_SUCH_MISSION is not in the catalogue");
    let missions = app
        .client
        .list_missions(pb::ListMissionsRequest { customer_id: "player-1".into() }.by_player("player-1"))
        .await;
    let missions = missions.unwrap();
    assert!(missions.into_inner().missions.is_empty());
}

#[tokio::test]
async fn malformed_requests_are_invalid_arguments_naming_the_field() {
    let mut app = spawn_app(None).await;
    let cases = [
        (achieve_as("player-1", "", "FIRST_WIN"), "customer_id: must not be empty"),
        (
            achieve_as("player-1", "player 1", "FIRST_WIN"),
            "customer_id: may only contain letters, digits, '-', '_' and '.'",
        ),
        (achieve("player-1", ""), "mission_code: must not be empty"),
        (achieve("player-1", "first win"), "mission_code: may only contain A-Z, 0-9 and '_'"),
    ];
    for (request, message) in cases {
        let status = app.client.achieve_mission(request).await.unwrap_err();
        assert_eq!((status.code(), status.message()), (Code::InvalidArgument, message));
    }
    let status =
        app.client.get_mission(pb::GetMissionRequest { mission_id: "nope".into() }.by_operator()).await.unwrap_err();
    assert_eq!((status.code(), status.message()), (Code::InvalidArgument, "mission_id: must be a UUID"));
    let status =
        app.client.get_mission(pb::GetMissionRequest { mission_id: String::new() }.by_operator()).await.unwrap_err();
    assert_eq!((status.code(), status.message()), (Code::InvalidArgument, "mission_id: must not be empty"));
    let unknown = uuid::Uuid::new_v4().to_string();
    let status =
        app.client.get_mission(pb::GetMissionRequest { mission_id: unknown.clone() }.by_operator()).await.unwrap_err();
    assert_eq!(
        (status.code(), status.message().to_owned()),
        (Code::NotFound, format!("mission {unknown} does not exist"))
    );
}

#[tokio::test]
async fn concurrent_first_calls_achieve_the_mission_once() {
    let app = spawn_app(None).await;
    let calls = (0..8).map(|_| {
        let mut client = app.client.clone();
        tokio::spawn(
            async move { client.achieve_mission(achieve("player-9", "INVITE_FRIEND")).await.unwrap().into_inner() },
        )
    });
    let ids: std::collections::HashSet<String> =
        futures::future::join_all(calls).await.into_iter().map(|r| r.unwrap().mission.unwrap().mission_id).collect();
    assert_eq!(ids.len(), 1);
}
