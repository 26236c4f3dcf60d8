//! A property over event decoding: whatever bytes arrive on
//! `mission.achieved` (random garbage, a valid event with bytes flipped, or
//! an event with random field values), the service does not panic, and each
//! event is either applied whole (one reward carrying exactly its fields,
//! one RewardAllocated published) or not at all and dead-lettered: no
//! partial write, nothing silently dropped.
//!
//! The run is seeded: `FUZZ_SEED=<n>` replays a failing run (the seed is printed).

use std::collections::BTreeMap;

use api::game::mission::v1::MissionAchieved;
use api::game::reward::v1 as pb;
use async_nats::jetstream::message::PublishMessage;
use kernel::{CustomerId, Points};
use platform::events::{DEAD_LETTER_STREAM, MISSION_STREAM, REWARD_STREAM};
use prost::Message as _;
use rand::rngs::StdRng;
use rand::seq::IndexedRandom as _;
use rand::{Rng as _, SeedableRng as _};
use testkit::AsCaller;
use tonic::Code;

use crate::helpers::{mission_achieved, reward_id_for, spawn_app};

/// Events per run: enough to meet every kind of field many times, few
/// enough to stay a second or two on a loaded machine.
const EVENTS: usize = 120;

fn seed() -> u64 {
    std::env::var("FUZZ_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or_else(rand::random)
}

/// A string a producer might send for a field: valid ones and every kind of broken one.
fn any_text(rng: &mut StdRng) -> String {
    let fixed = [
        "",
        "player-1",
        "a b",
        "FIRST_WIN",
        "first win",
        "'; DROP TABLE rewards; --",
        "../../etc/passwd",
        "\u{0}",
        "é",
        "😀",
        "nope",
    ];
    match rng.random_range(0..4) {
        0 => (*fixed.choose(rng).unwrap_or(&"")).to_owned(),
        1 => "x".repeat(rng.random_range(60..70)),
        2 => (0..rng.random_range(0..40)).map(|_| char::from(rng.random_range(32u8..127))).collect(),
        _ => String::from_utf8_lossy(&(0..rng.random_range(0..40)).map(|_| rng.random()).collect::<Vec<u8>>())
            .into_owned(),
    }
}

fn any_event(rng: &mut StdRng) -> MissionAchieved {
    let mut event = mission_achieved("player-fuzz", 100);
    if rng.random_bool(0.3) {
        event.mission_id = if rng.random_bool(0.5) { any_text(rng) } else { event.mission_id.to_uppercase() };
    }
    if rng.random_bool(0.5) {
        event.customer_id = any_text(rng);
    }
    if rng.random_bool(0.3) {
        event.mission_code = any_text(rng);
    }
    if rng.random_bool(0.5) {
        event.reward_points = *[-1, 0, 1, 300, i64::MAX, i64::MIN, rng.random()].choose(rng).unwrap_or(&0);
    }
    event
}

/// What the reward service must make of a payload: `Some(event)` when it
/// decodes and every rule holds (apply it), `None` otherwise (dead-letter it).
fn expected(payload: &[u8]) -> Option<MissionAchieved> {
    let event = MissionAchieved::decode(payload).ok()?;
    let valid = !event.mission_code.is_empty()
        && reward::domain::MissionId::parse(&event.mission_id).is_ok()
        && CustomerId::parse(&event.customer_id).is_ok()
        && Points::new(event.reward_points).is_ok_and(|p| p.value() > 0);
    valid.then_some(event)
}

#[tokio::test]
async fn every_payload_is_applied_whole_or_dead_lettered_and_nothing_panics() {
    let seed = seed();
    println!("FUZZ_SEED={seed}");
    let mut rng = StdRng::seed_from_u64(seed);
    let app = spawn_app(None).await;
    MISSION_STREAM.ensure(&app.js).await.unwrap();

    let mut applied: BTreeMap<String, MissionAchieved> = BTreeMap::new();
    let mut refused = 0usize;
    for _ in 0..EVENTS {
        let payload = match rng.random_range(0..3) {
            0 => (0..rng.random_range(0..64)).map(|_| rng.random()).collect::<Vec<u8>>(),
            1 => {
                let mut bytes = mission_achieved("player-fuzz", 100).encode_to_vec();
                for _ in 0..rng.random_range(1..4) {
                    let at = rng.random_range(0..bytes.len());
                    bytes[at] = rng.random();
                }
                bytes.truncate(rng.random_range(1..=bytes.len()));
                bytes
            }
            _ => any_event(&mut rng).encode_to_vec(),
        };
        match expected(&payload) {
            // A mutation may have left two payloads naming one mission:
            // the second is then a redelivery in all but name.
            Some(event) if applied.contains_key(&event.mission_id) => {}
            Some(event) => drop(applied.insert(event.mission_id.clone(), event)),
            None => refused += 1,
        }
        let mut headers = async_nats::HeaderMap::new();
        headers.insert("Event-Type", "game.mission.v1.MissionAchieved");
        let message = PublishMessage::build()
            .payload(payload.into())
            .headers(headers)
            .message_id(uuid::Uuid::new_v4().to_string().as_str());
        app.js.send_publish("mission.achieved", message).await.unwrap().await.unwrap();
    }
    app.settled(MISSION_STREAM, "reward-allocate").await;

    for event in applied.values() {
        // Ids are kept in their canonical (lower-case) form.
        let mission_id = reward::domain::MissionId::parse(&event.mission_id).unwrap().to_string();
        let request = pb::GetRewardRequest { reward_id: reward_id_for(event) }.by_operator();
        let reward = app.client.clone().get_reward(request).await.unwrap().into_inner().reward.unwrap();
        assert_eq!(
            (&reward.mission_id, &reward.customer_id, reward.points, &reward.mission_code),
            (&mission_id, &event.customer_id, event.reward_points, &event.mission_code),
            "seed {seed}: the reward carries exactly its event's fields"
        );
    }
    let published =
        if applied.is_empty() { Vec::new() } else { app.published(REWARD_STREAM, applied.len() as u64).await };
    assert_eq!(published.len(), applied.len(), "seed {seed}: one RewardAllocated per reward, no more");
    let letters = if refused == 0 { Vec::new() } else { app.published(DEAD_LETTER_STREAM, refused as u64).await };
    let letters = letters.iter().filter(|m| m.subject.as_str() == "deadletter.reward-allocate").count();
    assert_eq!(letters, refused, "seed {seed}: every refused event is dead-lettered, none lost");

    // Still serving, and an unknown reward is simply not there.
    let request = pb::GetRewardRequest { reward_id: uuid::Uuid::new_v4().to_string() }.by_operator();
    assert_eq!(app.client.clone().get_reward(request).await.unwrap_err().code(), Code::NotFound);
}
