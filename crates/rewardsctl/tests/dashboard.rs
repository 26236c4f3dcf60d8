//! The Grafana dashboard of the Helm chart against a real Prometheus: the
//! whole system on free ports (every service binary, a real nats-server),
//! Debian's prometheus scraping every process once a second, a short load
//! through the gateway (the player's story twice, then catalogue reads, page
//! reads and refused calls while the queries run), and then every PromQL
//! expression of every panel evaluated with the dashboard's variables. A
//! panel whose query errors, returns no series or only NaN fails the test.
//! `./dev test` installs Prometheus (Debian's `prometheus` package).

#![allow(clippy::unwrap_used)] // a test that cannot proceed should stop right there

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use api::game::gift::v1::{ListProductsRequest, gift_service_client::GiftServiceClient};
use api::game::mission::v1::{AchieveMissionRequest, mission_service_client::MissionServiceClient};
use api::game::mypage::v1::{GetMyPageRequest, my_page_service_client::MyPageServiceClient};
use dev_issuer::authorized;
use platform::CancellationToken;
use rewardsctl::mesh::{Layout, Mesh, MeshConfig, Replicas, SERVICES};
use rewardsctl::prometheus::{self, NAMESPACE, Prometheus};
use tonic::transport::Endpoint;

/// Grafana's `$__rate_interval` for a 1 s scrape interval is 4 × 1 s; the
/// dashboard is read over a longer window here, as it would be after a
/// short load.
const RATE_INTERVAL: &str = "15s";

/// One query of one panel.
struct Query {
    panel: String,
    expr: String,
}

fn dashboard_queries() -> Vec<Query> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../helm/game-rewards/files/dashboards/game-rewards.json");
    let dashboard: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    let mut queries = Vec::new();
    for panel in dashboard["panels"].as_array().unwrap() {
        for target in panel["targets"].as_array().into_iter().flatten() {
            let expr = target["expr"].as_str().unwrap();
            let expr = expr.replace("$namespace", NAMESPACE).replace("$__rate_interval", RATE_INTERVAL);
            assert!(!expr.contains('$'), "panel {:?} uses a variable this test does not know: {expr}", panel["title"]);
            queries.push(Query { panel: panel["title"].as_str().unwrap().to_owned(), expr });
        }
    }
    assert!(queries.len() >= 10, "only {} queries found in {}", queries.len(), path.display());
    queries
}

/// Why `data` (a query's answer) shows nothing on a panel, if it does not.
fn no_data(data: &serde_json::Value) -> Option<String> {
    let result = data["result"].as_array()?;
    if result.is_empty() {
        return Some("no series".into());
    }
    let finite = result
        .iter()
        .any(|series| series["value"][1].as_str().and_then(|v| v.parse::<f64>().ok()).is_some_and(f64::is_finite));
    (!finite).then(|| format!("only NaN/Inf values: {result:?}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_panel_of_the_dashboard_shows_data_from_a_real_prometheus() {
    assert!(
        prometheus::find_binary().is_some(),
        "prometheus is not installed: `./dev test` installs Debian's `prometheus` package (apt-get install prometheus)"
    );
    let bin_dir = Path::new(env!("CARGO_BIN_EXE_rewardsctl")).parent().unwrap().to_path_buf();
    let missing: Vec<&str> = SERVICES.iter().map(|s| s.name).filter(|name| !bin_dir.join(name).exists()).collect();
    assert!(missing.is_empty(), "build the service binaries first (`cargo build --workspace --bins`): {missing:?}");
    let run_dir = std::env::temp_dir().join(format!("dashboard-test-{}", uuid::Uuid::new_v4().simple()));
    let config = MeshConfig {
        run_dir: run_dir.clone(),
        bin_dir,
        nats_server: Some(testkit::nats_server_binary().unwrap()),
        layout: Layout::free(rewardsctl::mesh::Shape::Single, &Replicas::default()).unwrap(),
        env: Vec::new(),
        announce: false,
    };
    let mut mesh = Mesh::new(config).unwrap();
    mesh.start_infrastructure().await.unwrap();
    mesh.start_members(|_| true);
    mesh.wait_until_serving(Duration::from_secs(90), false).await.unwrap();
    let layout = mesh.layout().clone();
    let prometheus =
        Prometheus::start(&layout, mesh.run_dir(), testkit::free_port(), Duration::from_secs(1), false).await.unwrap();

    // Every process is a target that Prometheus has scraped before the load
    // starts, so that every counter's rise is seen from its first value.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let up = prometheus.query("sum(up{job=\"game-rewards\"})").await.unwrap();
        let scraped = up["result"][0]["value"][1].as_str().and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
        if scraped as usize == layout.members.len() {
            break;
        }
        assert!(Instant::now() < deadline, "only {scraped} of {} processes are up in Prometheus", layout.members.len());
        tokio::time::sleep(Duration::from_millis(500)).await;
    }

    // The story twice: missions, rewards, wallet entries, exchanges (one
    // refused), settlements, pages; every consumer applies events.
    for _ in 0..2 {
        let demo = rewardsctl::demo::Options::in_run_dir(mesh.run_dir().to_path_buf()).through(layout.gateway_url());
        rewardsctl::demo::run(&demo).await.unwrap();
    }

    // Light traffic while the dashboard is read, as on a live system: reads,
    // and a refused call (an unknown mission: NOT_FOUND) now and then.
    let stop = CancellationToken::new();
    let channel = Endpoint::from_shared(layout.gateway_url()).unwrap().connect().await.unwrap();
    let token = Arc::new(mesh.identity().player("dashboard-reader"));
    let traffic = tokio::spawn({
        let (stop, token) = (stop.clone(), token.clone());
        async move {
            let mut gifts = GiftServiceClient::new(channel.clone());
            let mut pages = MyPageServiceClient::new(channel.clone());
            let mut missions = MissionServiceClient::new(channel);
            let mut tick = 0u64;
            while !stop.is_cancelled() {
                let _ = gifts.list_products(authorized(ListProductsRequest {}, &token)).await;
                let page = GetMyPageRequest { customer_id: "dashboard-reader".into() };
                let _ = pages.get_my_page(authorized(page, &token)).await;
                if tick.is_multiple_of(5) {
                    let unknown = AchieveMissionRequest {
                        customer_id: "dashboard-reader".into(),
                        mission_code: "NO_SUCH_MISSION".into(),
                        achievement_id: None,
                    };
                    let _ = missions.achieve_mission(authorized(unknown, &token)).await;
                }
                tick += 1;
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    });

    // The namespace variable and every panel, retried while the scrapes
    // catch up with the load and the rate windows fill up.
    let queries = dashboard_queries();
    let deadline = Instant::now() + Duration::from_secs(45);
    let failures = loop {
        let mut failures = Vec::new();
        // label_values(rpc_server_duration_seconds_count, namespace)
        match prometheus.label_values("namespace", "rpc_server_duration_seconds_count").await {
            Ok(namespaces) if namespaces.contains(&NAMESPACE.to_owned()) => {}
            Ok(namespaces) => failures.push(format!("the namespace variable offers {namespaces:?}")),
            Err(error) => failures.push(format!("the namespace variable: error: {error:#}")),
        }
        for query in &queries {
            match prometheus.query(&query.expr).await {
                Err(error) => failures.push(format!("{}: {}: error: {error:#}", query.panel, query.expr)),
                Ok(data) => {
                    if let Some(why) = no_data(&data) {
                        failures.push(format!("{}: {}: {why}", query.panel, query.expr));
                    }
                }
            }
        }
        if failures.is_empty() || Instant::now() > deadline {
            break failures;
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
    };
    stop.cancel();
    traffic.await.unwrap();
    prometheus.stop().await;
    mesh.stop().await;

    assert!(failures.is_empty(), "panels without data:\n  {}", failures.join("\n  "));
    let mut panels: Vec<&str> = queries.iter().map(|q| q.panel.as_str()).collect();
    panels.dedup();
    println!("{} queries of {} panels returned data: {}", queries.len(), panels.len(), panels.join("; "));
    let _ = std::fs::remove_dir_all(&run_dir);
}
