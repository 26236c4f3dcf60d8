//! A rolling update under load: two mission replicas (real processes)
//! behind the real gateway, each replaced in turn (SIGTERM, drain, new
//! process) while players keep calling through the gateway. Not one call
//! may fail, and the client does not retry: what it sees is what a player
//! would see.

#![allow(clippy::unwrap_used)] // a test that cannot proceed should stop right there

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use api::game::mission::v1::mission_service_client::MissionServiceClient;
use api::game::mission::v1::{AchieveMissionRequest, GetMissionRequest};
use dev_issuer::authorized;
use platform::CancellationToken;
use rewardsctl::mesh::{Layout, Mesh, MeshConfig, Replicas};
use rewardsctl::rolling::rolling_update;
use tokio::sync::Mutex;
use tokio::task::JoinSet;
use tonic::transport::Endpoint;

/// Players calling at the same time.
const PLAYERS: usize = 8;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replacing_both_mission_replicas_under_load_fails_no_call() {
    let bin_dir = Path::new(env!("CARGO_BIN_EXE_rewardsctl")).parent().unwrap().to_path_buf();
    let run_dir = tempfile_dir();
    let mut replicas = Replicas::default();
    replicas.set("mission", 2).unwrap();
    let config = MeshConfig {
        run_dir: run_dir.clone(),
        bin_dir,
        nats_server: Some(testkit::nats_server_binary().unwrap()),
        layout: Layout::free(rewardsctl::mesh::Shape::Single, &replicas).unwrap(),
        env: vec![("*".into(), "SHUTDOWN_GRACE_MS".into(), "5000".into())],
        announce: false,
    };
    let mut mesh = Mesh::new(config).unwrap();
    mesh.start_infrastructure().await.unwrap();
    mesh.start_members(|m| matches!(m.service.name, "mission" | "gateway"));
    mesh.wait_until_serving(Duration::from_secs(60), false).await.unwrap();

    let channel = Endpoint::from_shared(mesh.layout().gateway_url())
        .unwrap()
        .timeout(Duration::from_secs(10))
        .connect()
        .await
        .unwrap();
    let missions = MissionServiceClient::new(channel);
    let stop = CancellationToken::new();
    let calls = Arc::new(AtomicU64::new(0));
    let failures = Arc::new(Mutex::new(Vec::<String>::new()));
    let mut players = JoinSet::new();
    for player in 0..PLAYERS {
        let (missions, stop, calls, failures) = (missions.clone(), stop.clone(), calls.clone(), failures.clone());
        let identity = mesh.identity().clone();
        players.spawn(async move {
            let mut round = 0u64;
            while !stop.is_cancelled() {
                round += 1;
                let customer_id = format!("rolling-{player}-{round}");
                let request = AchieveMissionRequest {
                    customer_id: customer_id.clone(),
                    mission_code: "FIRST_WIN".into(),
                    achievement_id: None,
                };
                let token = identity.player(&customer_id);
                let achieved = missions.clone().achieve_mission(authorized(request, &token)).await;
                calls.fetch_add(1, Ordering::SeqCst);
                let mission = match achieved {
                    Ok(response) => response.into_inner().mission.unwrap(),
                    Err(status) => {
                        failures.lock().await.push(format!("AchieveMission for {customer_id}: {status:?}"));
                        continue;
                    }
                };
                let read = GetMissionRequest { mission_id: mission.mission_id };
                let read = missions.clone().get_mission(authorized(read, &token)).await;
                calls.fetch_add(1, Ordering::SeqCst);
                if let Err(status) = read {
                    failures.lock().await.push(format!("GetMission for {customer_id}: {status:?}"));
                }
            }
        });
    }

    tokio::time::sleep(Duration::from_secs(1)).await;
    let before = calls.load(Ordering::SeqCst);
    let swaps = rolling_update(&mesh, "mission", Duration::from_millis(2500)).await.unwrap();
    let during = calls.load(Ordering::SeqCst) - before;
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop.cancel();
    while players.join_next().await.is_some() {}

    let failures = failures.lock().await.clone();
    let total = calls.load(Ordering::SeqCst);
    println!(
        "rolling update of mission: {total} calls in all, {during} while the replicas were swapped, {} failed",
        failures.len()
    );
    for swap in &swaps {
        println!(
            "  {}: drained and exited in {} ms, replacement serving {} ms later",
            swap.replica,
            swap.drained_in.as_millis(),
            swap.serving_in.as_millis()
        );
    }
    assert_eq!(swaps.len(), 2, "both replicas were replaced");
    assert!(mesh.process("mission-1").unwrap().starts() == 2 && mesh.process("mission-2").unwrap().starts() == 2);
    assert!(during > 0, "calls ran during the swap");
    assert_eq!(failures, Vec::<String>::new(), "no call failed during the rolling update");
    mesh.stop().await;
    let _ = std::fs::remove_dir_all(&run_dir);
}

fn tempfile_dir() -> std::path::PathBuf {
    std::env::temp_dir().join(format!("rolling-update-{}", uuid::Uuid::new_v4().simple()))
}
