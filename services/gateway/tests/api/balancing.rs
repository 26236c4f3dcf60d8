use tonic::Code;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;

use crate::helpers::{MISSION, PROBE, TestMesh, eventually, two_replicas_behind_the_gateway};

async fn gateway_health(mesh: &TestMesh) -> ServingStatus {
    let request = HealthCheckRequest { service: MISSION.into() };
    mesh.health.clone().check(request).await.unwrap().into_inner().status()
}

#[tokio::test]
async fn calls_are_spread_over_both_replicas() {
    let mesh = two_replicas_behind_the_gateway(true).await;
    for i in 0..40 {
        mesh.achieve(&format!("{PROBE}-{i}")).await.unwrap();
    }
    let (first, second) = (mesh.relays[0].probes(), mesh.relays[1].probes());
    assert_eq!(first + second, 40, "every call reached exactly one replica");
    assert!(first > 0 && second > 0, "both replicas took calls: {first} and {second}");
}

#[tokio::test]
async fn the_gateway_keeps_answering_when_one_replica_is_stopped() {
    let mut mesh = two_replicas_behind_the_gateway(false).await;
    for i in 0..10 {
        mesh.achieve(&format!("before-{i}")).await.unwrap();
    }

    mesh.stop_replica(0).await;
    // At once, before any health round could notice: a call the balance
    // sends to the stopped replica is refused there and goes to the other.
    for i in 0..30 {
        let achieved = mesh.achieve(&format!("after-{i}")).await;
        assert!(achieved.is_ok(), "call {i} failed: {:?}", achieved.err());
    }
    let again = mesh.achieve("before-3").await.unwrap();
    assert_eq!(again.customer_id, "before-3", "the store the replicas share still has it");
    assert_eq!(gateway_health(&mesh).await, ServingStatus::Serving);
}

#[tokio::test]
async fn the_service_is_unavailable_through_the_gateway_when_every_replica_is_stopped() {
    let mut mesh = two_replicas_behind_the_gateway(false).await;
    mesh.achieve("player-1").await.unwrap();
    mesh.stop_replica(0).await;
    mesh.stop_replica(1).await;

    // Calls already on a connection may still finish while a replica drains.
    let refused =
        eventually("calls to fail once both replicas are gone", || async { mesh.achieve("player-2").await.err() })
            .await;
    assert_eq!(refused.code(), Code::Unavailable);
    assert_eq!(refused.message(), "game.mission.v1.MissionService is unavailable; try again later");
    eventually("the gateway to report the service not serving", || async {
        (gateway_health(&mesh).await == ServingStatus::NotServing).then_some(())
    })
    .await;
}

#[tokio::test]
async fn a_replica_that_returns_takes_calls_again() {
    let mut mesh = two_replicas_behind_the_gateway(true).await;
    mesh.stop_replica(0).await;
    mesh.restart_replica(0).await;

    let mesh = &mesh;
    let before = mesh.relays[0].probes();
    let mut i = 0;
    eventually("the returned replica to take a call", || {
        i += 1;
        let customer = format!("{PROBE}-{i}");
        async move {
            let _ = mesh.achieve(&customer).await;
            (mesh.relays[0].probes() > before).then_some(())
        }
    })
    .await;
}

#[tokio::test]
async fn hundreds_of_calls_share_one_connection_to_a_replica() {
    let mesh = two_replicas_behind_the_gateway(false).await;
    for i in 0..300 {
        let achieved = mesh.achieve(&format!("player-{i}")).await;
        assert!(achieved.is_ok(), "call {i} failed: {:?}", achieved.err());
    }
}
