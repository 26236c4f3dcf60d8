//! The programme through its gRPC APIs: operators schedule events and define
//! their missions, every change audited on the MISSION stream; players see
//! and achieve what is open, repeatable missions under the game's achievement id.

use api::game::mission::v1::{self as pb, MissionLimit, MissionLimitKind};
use api::game::programme::v1::{self as programme, programme_service_client::ProgrammeServiceClient};
use platform::events::MISSION_STREAM;
use prost::Message as _;
use tonic::Code;

use crate::helpers::{TestApp, spawn_app};
use testkit::AsCaller;

const HOUR: i64 = 3600;

fn now() -> i64 {
    platform::db::now_millis() / 1000
}

fn at(seconds: i64) -> Option<prost_types::Timestamp> {
    Some(prost_types::Timestamp { seconds, nanos: 0 })
}

fn programme_client(app: &TestApp) -> ProgrammeServiceClient<tonic::transport::Channel> {
    app.programme.clone()
}

fn schedule(id: &str, starts_at: i64, ends_at: i64) -> programme::ScheduleEventRequest {
    programme::ScheduleEventRequest {
        programme_event_id: id.into(),
        title: format!("{id} title"),
        starts_at: at(starts_at),
        ends_at: at(ends_at),
    }
}

fn define(event: &str, code: &str, kind: MissionLimitKind, times: u32) -> programme::DefineMissionRequest {
    programme::DefineMissionRequest {
        programme_event_id: event.into(),
        mission_code: code.into(),
        title: format!("{code} title"),
        reward_points: 50,
        limit: Some(MissionLimit { kind: kind.into(), times }),
    }
}

fn achieve(customer: &str, code: &str, achievement_id: Option<&str>) -> tonic::Request<pb::AchieveMissionRequest> {
    pb::AchieveMissionRequest {
        customer_id: customer.into(),
        mission_code: code.into(),
        achievement_id: achievement_id.map(Into::into),
    }
    .by_player(customer)
}

#[tokio::test]
async fn an_operator_runs_an_event_and_a_player_earns_its_repeatable_mission_twice_never_thrice() {
    let mut app = spawn_app(None).await;
    let mut operators = programme_client(&app);
    let (starts, ends) = (now() - HOUR, now() + 24 * HOUR);
    operators.schedule_event(schedule("WINTER-2026", starts, ends).by_operator()).await.unwrap();
    let defined = operators
        .define_mission(define("WINTER-2026", "WIN_A_MATCH", MissionLimitKind::Times, 2).by_operator())
        .await
        .unwrap()
        .into_inner()
        .definition
        .unwrap();
    assert_eq!((defined.programme_event_id.as_str(), defined.limit.unwrap().times), ("WINTER-2026", 2));

    let first = app.client.achieve_mission(achieve("player-1", "WIN_A_MATCH", Some("match-1"))).await.unwrap();
    let retried = app.client.achieve_mission(achieve("player-1", "WIN_A_MATCH", Some("match-1"))).await.unwrap();
    let second = app.client.achieve_mission(achieve("player-1", "WIN_A_MATCH", Some("match-2"))).await.unwrap();
    let third = app.client.achieve_mission(achieve("player-1", "WIN_A_MATCH", Some("match-3"))).await.unwrap_err();
    let missing = app.client.achieve_mission(achieve("player-1", "WIN_A_MATCH", None)).await.unwrap_err();

    let (first, second) = (first.into_inner().mission.unwrap(), second.into_inner().mission.unwrap());
    assert_eq!(retried.into_inner().mission.unwrap(), first, "a retry returns the first call's mission");
    assert_ne!(first.mission_id, second.mission_id);
    assert_eq!((first.programme_event_id.as_str(), first.achievement_id.as_deref()), ("WINTER-2026", Some("match-1")));
    assert_eq!(
        (third.code(), third.message()),
        (
            Code::FailedPrecondition,
            "mission WIN_A_MATCH may be achieved 2 times per player; player-1 has achieved it 2 times"
        )
    );
    assert_eq!(
        (missing.code(), missing.message()),
        (
            Code::InvalidArgument,
            "achievement_id: mission WIN_A_MATCH may be achieved 2 times per player, so each achievement needs the \
             game's achievement_id"
        )
    );

    // The stream: the two audit records, then one MissionAchieved per earned mission.
    let seen = app.published(MISSION_STREAM, 4).await;
    let subjects: Vec<&str> = seen.iter().map(|m| m.subject.as_str()).collect();
    assert_eq!(
        subjects,
        ["mission.event_scheduled", "mission.mission_defined", "mission.achieved", "mission.achieved"]
    );
    let scheduled = pb::ProgrammeEventScheduled::decode(seen[0].payload.as_ref()).unwrap();
    assert_eq!(scheduled.operator, "operator");
    assert_eq!(scheduled.programme_event.unwrap().ends_at, at(ends));
    assert!(scheduled.changed_at.is_some());
    let mission_defined = pb::MissionDefined::decode(seen[1].payload.as_ref()).unwrap();
    assert_eq!(mission_defined.definition.unwrap().mission_code, "WIN_A_MATCH");
    let achieved = pb::MissionAchieved::decode(seen[2].payload.as_ref()).unwrap();
    assert_eq!((achieved.programme_event_id.as_str(), achieved.event_ends_at), ("WINTER-2026", at(ends)));
}

#[tokio::test]
async fn players_see_the_missions_of_open_events_and_operators_see_every_event() {
    let mut app = spawn_app(None).await;
    let mut operators = programme_client(&app);
    let next_year = now() + 365 * 24 * HOUR;
    operators.schedule_event(schedule("SPRING-2027", next_year, next_year + HOUR).by_operator()).await.unwrap();
    operators
        .define_mission(define("SPRING-2027", "SPRING_WIN", MissionLimitKind::Daily, 0).by_operator())
        .await
        .unwrap();

    let players_see = app
        .client
        .list_mission_definitions(pb::ListMissionDefinitionsRequest {}.by_player("player-1"))
        .await
        .unwrap()
        .into_inner()
        .definitions;
    let operators_see = operators
        .list_mission_definitions(programme::ListMissionDefinitionsRequest {}.by_operator())
        .await
        .unwrap()
        .into_inner()
        .definitions;
    let events = operators.list_events(programme::ListEventsRequest {}.by_operator()).await.unwrap().into_inner();

    let codes = |definitions: &[pb::MissionDefinition]| -> Vec<String> {
        definitions.iter().map(|d| d.mission_code.clone()).collect()
    };
    assert_eq!(codes(&players_see), ["FIRST_LOGIN", "FIRST_WIN", "INVITE_FRIEND", "WEEKLY_QUEST", "EVENT_CHAMPION"]);
    assert!(players_see.iter().all(|d| d.programme_event_id == "LAUNCH"
        && d.limit.as_ref().map(MissionLimit::kind) == Some(MissionLimitKind::Once)));
    assert_eq!(codes(&operators_see).last().map(String::as_str), Some("SPRING_WIN"));
    let ids: Vec<&str> = events.programme_events.iter().map(|e| e.programme_event_id.as_str()).collect();
    assert_eq!(ids, ["LAUNCH", "SPRING-2027"]);
    assert_eq!(events.programme_events[0].ends_at, None, "LAUNCH never ends");

    let early = app.client.achieve_mission(achieve("player-1", "SPRING_WIN", Some("day-1"))).await.unwrap_err();
    assert_eq!(early.code(), Code::FailedPrecondition);
    assert!(early.message().starts_with("event SPRING-2027 opens at "), "{}", early.message());
}

#[tokio::test]
async fn only_operators_run_the_programme_and_bad_requests_name_the_field() {
    let app = spawn_app(None).await;
    let mut client = programme_client(&app);
    let (starts, ends) = (now(), now() + HOUR);

    let player = client.schedule_event(schedule("WINTER-2026", starts, ends).by_player("player-1")).await.unwrap_err();
    assert_eq!(player.code(), Code::PermissionDenied);
    let anonymous = client.list_events(programme::ListEventsRequest {}).await.unwrap_err();
    assert_eq!(anonymous.code(), Code::Unauthenticated);

    let cases = [
        (schedule("winter", starts, ends), "programme_event_id: may only contain A-Z, 0-9, '_' and '-'"),
        (schedule("WINTER-2026", ends, starts), "ends_at: must be after starts_at"),
        (programme::ScheduleEventRequest { ends_at: None, ..schedule("W", starts, ends) }, "ends_at: is required"),
        (
            programme::ScheduleEventRequest { title: " ".into(), ..schedule("W", starts, ends) },
            "title: must not be blank",
        ),
        (schedule("W", i64::MAX, ends), "starts_at: must be a time between the years 0001 and 9999"),
    ];
    for (request, message) in cases {
        let status = client.schedule_event(request.by_operator()).await.unwrap_err();
        assert_eq!(status.code(), Code::InvalidArgument, "{message}");
        assert!(status.message().starts_with(message), "{} does not start with {message}", status.message());
    }
    let cases = [
        (define("LAUNCH", "X", MissionLimitKind::Times, 0), "limit.times: must be at least 1"),
        (define("LAUNCH", "X", MissionLimitKind::Once, 2), "limit.times: is for a TIMES limit only"),
        (define("LAUNCH", "X", MissionLimitKind::Unspecified, 0), "limit.kind: must be ONCE, TIMES or DAILY"),
        (
            programme::DefineMissionRequest { reward_points: 0, ..define("LAUNCH", "X", MissionLimitKind::Once, 0) },
            "reward_points: must be above zero",
        ),
        (define("LAUNCH", "x", MissionLimitKind::Once, 0), "mission_code: may only contain A-Z, 0-9 and '_'"),
    ];
    for (request, message) in cases {
        let status = client.define_mission(request.by_operator()).await.unwrap_err();
        assert_eq!((status.code(), status.message()), (Code::InvalidArgument, message));
    }
    let unknown =
        client.define_mission(define("NO-SUCH-EVENT", "X", MissionLimitKind::Once, 0).by_operator()).await.unwrap_err();
    assert_eq!((unknown.code(), unknown.message()), (Code::NotFound, "event NO-SUCH-EVENT is not in the programme"));
    let taken = client
        .define_mission(define("LAUNCH", "FIRST_WIN", MissionLimitKind::Once, 0).by_operator())
        .await
        .unwrap_err();
    assert_eq!(taken.code(), Code::AlreadyExists);
}
