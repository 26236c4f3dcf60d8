//! One player's mission is one trace: the call, and every event hop it
//! causes across the services, share a trace id (its own test binary: it
//! installs the process-wide tracing subscriber).

#![allow(clippy::unwrap_used)] // a test that cannot proceed should stop right there

use std::collections::HashSet;
use std::time::Duration;

use api::game::mission::v1 as mission;
use api::game::mission::v1::mission_service_client::MissionServiceClient;
use api::game::mypage::v1 as mypage;
use api::game::mypage::v1::my_page_service_client::MyPageServiceClient;
use api::game::wallet::v1 as wallet;
use api::game::wallet::v1::wallet_service_client::WalletServiceClient;
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider};
use system_tests::{Mesh, MeshOptions};
use testkit::eventually;
use testkit::{AsCaller as _, AsOwner as _};
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;

fn attribute(span: &opentelemetry_sdk::trace::SpanData, key: &str) -> Option<String> {
    span.attributes.iter().find(|kv| kv.key.as_str() == key).map(|kv| kv.value.to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn each_call_is_one_trace_across_every_event_hop_it_causes() {
    let exporter = InMemorySpanExporter::default();
    let provider = SdkTracerProvider::builder().with_simple_exporter(exporter.clone()).build();
    platform::telemetry::install_propagator();
    tracing_subscriber::registry()
        .with(tracing_subscriber::EnvFilter::new("info"))
        .with(tracing_opentelemetry::layer().with_tracer(provider.tracer("system-tests")))
        .init();

    let mesh = Mesh::start(MeshOptions::default()).await;
    let channel = mesh.gateway().await;
    let customer = "traced-player";
    let achieve = mission::AchieveMissionRequest {
        customer_id: customer.into(),
        mission_code: "FIRST_WIN".into(),
        achievement_id: None,
    };
    let achieved =
        MissionServiceClient::new(channel.clone()).achieve_mission(achieve.by_owner()).await.unwrap().into_inner();
    let mission_id = achieved.mission.unwrap().mission_id;

    let entry = eventually("the reward in the wallet", Duration::from_secs(20), || {
        let mut wallets = WalletServiceClient::new(channel.clone());
        async move {
            let request = wallet::GetWalletRequest { customer_id: customer.into() };
            wallets.get_wallet(request.by_operator()).await.ok()?.into_inner().wallet?.entries.into_iter().next()
        }
    })
    .await;
    let exchange = wallet::ExchangeRewardRequest {
        customer_id: customer.into(),
        entry_id: entry.entry_id.clone(),
        product_sku: "AVATAR-FRAME".into(),
    };
    WalletServiceClient::new(channel.clone()).exchange_reward(exchange.by_owner()).await.unwrap();
    eventually("my page to show the exchange", Duration::from_secs(20), || {
        let mut pages = MyPageServiceClient::new(channel.clone());
        async move {
            let request = mypage::GetMyPageRequest { customer_id: customer.into() };
            let page = pages.get_my_page(request.by_operator()).await.ok()?.into_inner().my_page?;
            page.wallet.iter().any(|e| !e.gift_order_id.is_empty()).then_some(())
        }
    })
    .await;

    // Every consumer of the mission's life has handled its event by now or soon.
    let wanted = [
        "reward-allocate",
        "mission-record-reward",
        "wallet-issue-reward",
        "reward-track-wallet",
        "mypage-missions",
        "mypage-rewards",
        "mypage-wallet",
        "settlement-record",
    ];
    let spans = eventually("every hop's span", Duration::from_secs(20), || {
        let exporter = exporter.clone();
        let provider = provider.clone();
        let mission_id = mission_id.clone();
        async move {
            let _ = provider.force_flush();
            let spans = exporter.get_finished_spans().ok()?;
            let seen: HashSet<String> = spans
                .iter()
                .filter(|s| attribute(s, "mission_id").as_deref() == Some(mission_id.as_str()))
                .filter_map(|s| attribute(s, "consumer"))
                .collect();
            wanted.iter().all(|c| seen.contains(*c)).then_some(spans)
        }
    })
    .await;

    let trace_of = |name: &str| spans.iter().find(|s| s.name == name).map(|s| s.span_context.trace_id()).unwrap();
    let achieve_trace = trace_of("/game.mission.v1.MissionService/AchieveMission");
    let exchange_trace = trace_of("/game.wallet.v1.WalletService/ExchangeReward");
    assert_ne!(achieve_trace, exchange_trace, "the exchange is the player's second call, its own trace");
    assert_eq!(trace_of("/game.gift.v1.GiftService/Exchange"), exchange_trace, "wallet -> gift continues it");

    // Each event hop continues the trace of the call that caused it.
    let hops: Vec<(&str, &str, _)> = vec![
        ("reward-allocate", "mission.achieved", achieve_trace),
        ("mypage-missions", "mission.achieved", achieve_trace),
        ("mission-record-reward", "reward.allocated", achieve_trace),
        ("wallet-issue-reward", "reward.allocated", achieve_trace),
        ("mypage-rewards", "reward.allocated", achieve_trace),
        ("reward-track-wallet", "wallet.reward_issued", achieve_trace),
        ("mypage-wallet", "wallet.reward_issued", achieve_trace),
        ("reward-track-wallet", "wallet.reward_exchanged", exchange_trace),
        ("mypage-wallet", "wallet.reward_exchanged", exchange_trace),
        ("settlement-record", "gift.exchanged", exchange_trace),
    ];
    for (consumer, subject, trace) in hops {
        let span = spans
            .iter()
            .find(|s| {
                attribute(s, "consumer").as_deref() == Some(consumer)
                    && attribute(s, "subject").as_deref() == Some(subject)
                    && attribute(s, "mission_id").as_deref() == Some(mission_id.as_str())
            })
            .unwrap_or_else(|| panic!("no span of {consumer} on {subject}"));
        assert_eq!(span.span_context.trace_id(), trace, "{consumer} on {subject} continues its cause's trace");
        assert_ne!(span.parent_span_id, opentelemetry::trace::SpanId::INVALID, "{consumer} on {subject} has a parent");
    }
}
