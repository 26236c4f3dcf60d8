//! Poison events: an undecodable payload and an event that can never apply
//! are dead-lettered with the reason and their original headers, and an
//! event that keeps failing is dead-lettered after its bounded deliveries;
//! the events around them are applied all the while.

use std::time::Duration;

use api::game::reward::v1::{self as pb, RewardStatus};
use async_nats::jetstream::message::PublishMessage;
use platform::events::{DEAD_LETTER_STREAM, Event as _, MISSION_STREAM, WALLET_STREAM};
use prost::Message as _;
use tonic::Code;

use crate::helpers::{TestApp, mission_achieved, reward_id_for, reward_issued, spawn_app, spawn_app_with};
use testkit::AsCaller;

/// Bytes that are no protobuf message: field 1 with wire type 7, which does not exist.
const GARBAGE: &[u8] = b"\x0fnot a protobuf message";

/// The dead letters of `consumer`, once there are `expected` of them.
async fn dead_letters(app: &TestApp, consumer: &str, expected: usize) -> Vec<async_nats::jetstream::Message> {
    let subject = format!("deadletter.{consumer}");
    let letters: Vec<_> = app
        .published(DEAD_LETTER_STREAM, u64::try_from(expected).unwrap())
        .await
        .into_iter()
        .filter(|m| m.subject.as_str() == subject)
        .collect();
    assert_eq!(letters.len(), expected, "dead letters on {subject}");
    letters
}

fn header<'a>(message: &'a async_nats::jetstream::Message, name: &str) -> &'a str {
    message.headers.as_ref().unwrap().get(name).unwrap_or_else(|| panic!("no {name} header")).as_str()
}

#[tokio::test]
async fn an_undecodable_event_and_one_promising_no_points_are_dead_lettered_while_the_events_around_them_apply() {
    let app = spawn_app(None).await;
    let before = mission_achieved("player-poison", 100);
    app.publish(&before).await;

    let garbage_id = uuid::Uuid::new_v4().to_string();
    let mut headers = async_nats::HeaderMap::new();
    headers.insert("Event-Type", "game.mission.v1.MissionAchieved");
    let garbage = PublishMessage::build().payload(GARBAGE.into()).headers(headers).message_id(&garbage_id);
    let garbage_seq = app.js.send_publish("mission.achieved", garbage).await.unwrap().await.unwrap().sequence;

    let no_points = mission_achieved("player-poison", 0);
    let no_points_seq = app.publish(&no_points).await;
    let after = mission_achieved("player-poison", 500);
    app.publish(&after).await;

    app.reward_in(&reward_id_for(&before), RewardStatus::Allocated).await;
    app.reward_in(&reward_id_for(&after), RewardStatus::Allocated).await;
    app.settled(MISSION_STREAM, "reward-allocate").await;
    let status = app
        .client
        .clone()
        .get_reward(pb::GetRewardRequest { reward_id: reward_id_for(&no_points) }.by_operator())
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::NotFound, "no reward for a mission promising no points");

    let letters = dead_letters(&app, "reward-allocate", 2).await;
    let undecodable = letters.iter().find(|m| header(m, "Event-Id") == garbage_id).expect("the undecodable event");
    assert_eq!(undecodable.payload.as_ref(), GARBAGE, "the original payload");
    assert!(
        header(undecodable, "Dead-Letter-Reason").contains("payload does not decode"),
        "{}",
        header(undecodable, "Dead-Letter-Reason")
    );
    assert_eq!(header(undecodable, "Dead-Letter-Sequence"), garbage_seq.to_string());
    assert_eq!(header(undecodable, "Event-Type"), "game.mission.v1.MissionAchieved");

    let unrewardable =
        letters.iter().find(|m| header(m, "Event-Id") == no_points.event_id).expect("the event promising no points");
    assert_eq!(unrewardable.payload.as_ref(), no_points.encode_to_vec().as_slice(), "the original payload");
    assert!(
        header(unrewardable, "Dead-Letter-Reason").contains("promises no points"),
        "{}",
        header(unrewardable, "Dead-Letter-Reason")
    );
    assert_eq!(header(unrewardable, "Dead-Letter-Sequence"), no_points_seq.to_string());
    assert_eq!(header(unrewardable, "Mission-Id"), no_points.mission_id);
    assert_eq!(header(unrewardable, "Customer-Id"), "player-poison");

    for (letter, event_id, seq) in
        [(undecodable, &garbage_id, garbage_seq), (unrewardable, &no_points.event_id, no_points_seq)]
    {
        assert_eq!(header(letter, "Dead-Letter-Consumer"), "reward-allocate");
        assert_eq!(header(letter, "Dead-Letter-Subject"), "mission.achieved");
        assert_eq!(header(letter, "Dead-Letter-Deliveries"), "1", "malformed: dead-lettered at once");
        // The event id stays in Event-Id; Nats-Msg-Id de-duplicates the dead
        // letter itself (one per consumer and delivered message).
        assert_eq!(header(letter, "Nats-Msg-Id"), format!("reward-allocate:{event_id}:{seq}"));
    }
}

#[tokio::test]
async fn an_event_that_keeps_failing_is_dead_lettered_after_its_bounded_deliveries_while_the_next_ones_apply() {
    // In production an event waiting for another gets about five minutes; here eight deliveries.
    let app = spawn_app_with(None, |config| config.consumer.max_deliveries_not_yet = 8).await;
    // RewardIssued for a reward this context never allocated: not yet
    // applicable, on every delivery.
    let never_allocated = mission_achieved("player-stuck", 100);
    let stuck = reward_issued(&never_allocated);
    app.publish(&stuck).await;

    // Behind it, a reward is allocated and issued as usual.
    let achieved = mission_achieved("player-flowing", 300);
    app.publish(&achieved).await;
    app.reward_in(&reward_id_for(&achieved), RewardStatus::Allocated).await;
    app.publish(&reward_issued(&achieved)).await;
    app.reward_in(&reward_id_for(&achieved), RewardStatus::Issued).await;

    // Eight deliveries with exponential back-off (0.1 s doubling) take about ten seconds.
    testkit::eventually("the stuck event to be dead-lettered", Duration::from_secs(30), || async {
        let stream = app.js.get_stream(DEAD_LETTER_STREAM.name).await.ok()?;
        stream.get_last_raw_message_by_subject("deadletter.reward-track-wallet").await.ok()
    })
    .await;
    app.settled(WALLET_STREAM, "reward-track-wallet").await;
    let letters = dead_letters(&app, "reward-track-wallet", 1).await;
    let letter = &letters[0];
    assert_eq!(header(letter, "Event-Id"), stuck.event_id);
    assert_eq!(header(letter, "Dead-Letter-Deliveries"), "8");
    assert_eq!(header(letter, "Dead-Letter-Subject"), <api::game::wallet::v1::RewardIssued>::SUBJECT);
    assert!(
        header(letter, "Dead-Letter-Reason").contains("is not allocated yet"),
        "{}",
        header(letter, "Dead-Letter-Reason")
    );
    assert_eq!(letter.payload.as_ref(), stuck.encode_to_vec().as_slice());
}
