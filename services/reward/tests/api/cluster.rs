//! Replicated streams: on a three-node JetStream cluster the reward service
//! brings streams made with one replica to three, and then losing the node
//! that leads MISSION while missions are being published loses no event
//! JetStream acknowledged; the consumer carries on. On a single server, a
//! service configured for three replicas refuses to start, saying why.

use std::time::{Duration, Instant};

use async_nats::jetstream;
use platform::events::{DEAD_LETTER_STREAM, MISSION_STREAM, REWARD_STREAM, Replicas, StreamDef};
use testkit::{Broker, NatsCluster, ServiceCommand, TempStore};

use crate::helpers::mission_achieved;
use crate::processes::{ALLOCATE, WITHIN, count, reward_process, rewards, serving};

const MISSIONS: usize = 600;
/// Missions acknowledged before the stream leader is killed.
const BEFORE_KILL: usize = 200;

/// The stream's replica count and how many of its followers are current.
async fn replicas_of(js: &jetstream::Context, stream: StreamDef) -> Option<(usize, usize)> {
    let mut stream = js.get_stream(stream.name).await.ok()?;
    let info = stream.info().await.ok()?;
    let current = info.cluster.as_ref().map_or(0, |c| c.replicas.iter().filter(|r| r.current).count());
    Some((info.config.num_replicas, current))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_a_cluster_streams_go_to_three_replicas_and_losing_the_stream_leader_mid_publish_loses_no_acknowledged_event()
 {
    let mut cluster = NatsCluster::start(3).await.unwrap();
    let (_client, js) = platform::nats::connect(&cluster.urls(), "test-publisher").await.unwrap();
    // Streams as an earlier version (or a single-server setup) left them: one replica.
    for stream in [MISSION_STREAM, REWARD_STREAM] {
        testkit::eventually("JetStream to answer", Duration::from_secs(10), || async { stream.ensure(&js).await.ok() })
            .await;
    }
    assert_eq!(replicas_of(&js, MISSION_STREAM).await, Some((1, 0)));

    let store = TempStore::new();
    let database_url = store.sqlite_url("reward");
    let reward =
        ServiceCommand::new(env!("CARGO_BIN_EXE_reward"), reward::SPEC.grpc_service, &database_url, &cluster.urls())
            .env("STREAM_REPLICAS", "3");
    let service = serving(reward).await;
    for stream in [MISSION_STREAM, REWARD_STREAM, DEAD_LETTER_STREAM] {
        testkit::eventually(&format!("{} on three current replicas", stream.name), WITHIN, || async {
            (replicas_of(&js, stream).await == Some((3, 2))).then_some(())
        })
        .await;
    }
    let consumer = js.get_stream(MISSION_STREAM.name).await.unwrap().consumer_info(ALLOCATE).await.unwrap();
    assert_eq!(consumer.config.num_replicas, 3, "the durable consumer is replicated too");
    assert!(service.log().contains("stream replicas changed"), "the change is logged:\n{}", service.log());

    // Publish as the outbox relay does: each event until acknowledged, a
    // retry under the same id (a duplicate JetStream drops).
    let mut killed = None;
    let mut failed_attempts = 0;
    let started = Instant::now();
    for i in 0..MISSIONS {
        if i == BEFORE_KILL {
            let leader = cluster.stream_leader(MISSION_STREAM.name).await.unwrap();
            cluster.kill(leader);
            killed = Some(leader);
        }
        let event = mission_achieved(&format!("player-{}", i % 50), 100);
        loop {
            match testkit::publish_to(&js, &event).await {
                Ok(_) => break,
                Err(_) => {
                    failed_attempts += 1;
                    assert!(started.elapsed() < Duration::from_secs(60), "no leader took over within a minute");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        }
    }
    let killed = killed.unwrap();
    let new_leader = cluster.stream_leader(MISSION_STREAM.name).await.unwrap();
    eprintln!(
        "{MISSIONS} missions acknowledged in {:.2?}; node {killed} (MISSION's leader) killed after {BEFORE_KILL}, \
         {failed_attempts} publish attempts failed meanwhile, node {new_leader} leads now",
        started.elapsed()
    );
    assert_ne!(new_leader, killed);

    // Every acknowledged mission is rewarded once, with the node still down.
    let backlog = i64::try_from(MISSIONS).unwrap();
    testkit::eventually("every acknowledged mission to be rewarded", Duration::from_secs(60), || async {
        (rewards(&database_url) >= backlog).then_some(())
    })
    .await;
    assert_eq!(rewards(&database_url), backlog);
    assert_eq!(count(&database_url, "SELECT COUNT(DISTINCT mission_id) AS n FROM rewards"), backlog);

    // The node comes back and catches up; the consumer carries on.
    cluster.restart(killed).unwrap();
    cluster.wait_healthy(Duration::from_secs(30)).await.unwrap();
    let late = mission_achieved("player-late", 100);
    testkit::publish_to(&js, &late).await.unwrap();
    testkit::eventually("the mission after the restart to be rewarded", Duration::from_secs(30), || async {
        (rewards(&database_url) == backlog + 1).then_some(())
    })
    .await;
    testkit::eventually("MISSION on three current replicas again", WITHIN, || async {
        (replicas_of(&js, MISSION_STREAM).await == Some((3, 2))).then_some(())
    })
    .await;
}

#[tokio::test]
async fn on_a_single_server_three_replicas_are_refused_at_start_naming_the_stream_both_counts_and_the_reason() {
    let broker = Broker::start().await;
    let store = TempStore::new();
    let three = |database_url: String| {
        let mut config = testkit::service_config(&broker, database_url);
        config.stream_replicas = Replicas::new(3).unwrap();
        config
    };
    let chain = |error: &dyn std::error::Error| {
        let mut text = error.to_string();
        let mut source = error.source();
        while let Some(cause) = source {
            text = format!("{text}: {cause}");
            source = cause.source();
        }
        text
    };

    let refused = reward::build(three(store.sqlite_url("a"))).await.unwrap_err();
    let message = chain(&refused);
    assert!(
        message.contains("cannot create stream REWARD with 3 replicas: the server refused: replicas > 1 not supported"),
        "{message}"
    );

    // The stream exists with one replica: the change is refused as clearly.
    REWARD_STREAM.ensure(&broker.js).await.unwrap();
    let refused = reward::build(three(store.sqlite_url("b"))).await.unwrap_err();
    let message = chain(&refused);
    assert!(
        message.contains(
            "cannot change stream REWARD from 1 to 3 replicas: the server refused: replicas > 1 not supported"
        ),
        "{message}"
    );

    // The binary exits with that message instead of serving; so it does
    // with a count out of range, naming the variable.
    let exit_of = |database: &str, replicas: &str| {
        let command = reward_process(&broker, &store.sqlite_url(database)).env("STREAM_REPLICAS", replicas);
        async move {
            let mut process = command.spawn().unwrap();
            process.wait_healthy(WITHIN).await.unwrap_err().to_string()
        }
    };
    let exited = exit_of("c", "3").await;
    assert!(exited.contains("exited with"), "{exited}");
    assert!(exited.contains("cannot change stream REWARD from 1 to 3 replicas"), "{exited}");
    let exited = exit_of("d", "7").await;
    assert!(exited.contains("invalid STREAM_REPLICAS=\"7\": JetStream keeps 1 to 5 replicas of a stream"), "{exited}");
}
