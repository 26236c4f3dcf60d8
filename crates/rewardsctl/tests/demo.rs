//! The demo story of `./dev up --demo` against the whole system on free
//! ports (every service binary, a real nats-server), with the environment
//! `up --demo` gives it: the player's story, the operator's programme (the
//! third achievement refused, the restock under a key added once), an
//! exchange paid from two rewards whose order the vendor cancels, and the
//! settlement periods closed with their totals per vendor.

#![allow(clippy::unwrap_used)] // a test that cannot proceed should stop right there

use std::path::Path;
use std::time::Duration;

use api::game::settlement::v1::{self as settlement, settlement_service_client::SettlementServiceClient};
use dev_issuer::authorized;
use rewardsctl::mesh::{Layout, Mesh, MeshConfig, Replicas, SERVICES};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_plays_the_story_and_the_programme_and_shows_a_period_closed() {
    let bin_dir = Path::new(env!("CARGO_BIN_EXE_rewardsctl")).parent().unwrap().to_path_buf();
    let missing: Vec<&str> = SERVICES.iter().map(|s| s.name).filter(|name| !bin_dir.join(name).exists()).collect();
    assert!(missing.is_empty(), "build the service binaries first (`cargo build --workspace --bins`): {missing:?}");
    let run_dir = std::env::temp_dir().join(format!("demo-test-{}", uuid::Uuid::new_v4().simple()));
    let config = MeshConfig {
        run_dir: run_dir.clone(),
        bin_dir,
        nats_server: Some(testkit::nats_server_binary().unwrap()),
        layout: Layout::free(rewardsctl::mesh::Shape::Single, &Replicas::default()).unwrap(),
        env: rewardsctl::up::demo_env(),
        announce: false,
    };
    let mut mesh = Mesh::new(config).unwrap();
    mesh.start_infrastructure().await.unwrap();
    mesh.start_members(|_| true);
    mesh.wait_until_serving(Duration::from_secs(90), false).await.unwrap();
    let gateway = mesh.layout().gateway_url();
    let gift = mesh.layout().members_of("gift").next().unwrap().url();

    let demo =
        rewardsctl::demo::Options::in_run_dir(mesh.run_dir().to_path_buf()).through(gateway.clone()).with_gift(gift);
    let played = rewardsctl::demo::run(&demo).await;

    // The demo waited for its exchange's period to close: it is there,
    // closed, with the story's charge in its totals, the vendor's first.
    let channel = tonic::transport::Endpoint::from_shared(gateway).unwrap().connect().await.unwrap();
    let operator = mesh.identity().operator();
    let request = settlement::ListPeriodsRequest { page_size: 50, page_token: String::new() };
    let periods = SettlementServiceClient::new(channel.clone())
        .list_periods(authorized(request, &operator))
        .await
        .unwrap()
        .into_inner()
        .periods;
    let mut closed_totals = Vec::new();
    for period in periods.iter().filter(|p| p.status() == settlement::PeriodStatus::Closed) {
        let request = settlement::GetPeriodRequest { period_id: period.period_id.clone() };
        let answer = SettlementServiceClient::new(channel.clone()).get_period(authorized(request, &operator)).await;
        closed_totals.extend(answer.unwrap().into_inner().period.unwrap().totals);
    }
    mesh.stop().await;
    let _ = std::fs::remove_dir_all(&run_dir);

    played.unwrap();
    assert!(
        closed_totals.iter().any(|t| t.vendor == "gift" && t.product_sku == "AVATAR-FRAME" && t.charges >= 1),
        "a closed period with the story's charge: {closed_totals:?}"
    );
    let sled: Vec<_> = closed_totals.iter().filter(|t| t.product_sku.starts_with("DEMO-SLED-")).collect();
    let (charges, reversals, amount) =
        sled.iter().fold((0, 0, 0), |sum, t| (sum.0 + t.charges, sum.1 + t.reversals, sum.2 + t.amount));
    assert_eq!((charges, reversals, amount), (1, 1, 0), "the cancelled order charged and reversed: {sled:?}");
}
