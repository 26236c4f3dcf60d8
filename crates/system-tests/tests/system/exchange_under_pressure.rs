//! The exchange when gift is down, overloaded or slow: players are turned
//! away at once with "try again later" and their reward untouched, the
//! circuit breaker opens and closes again, and an exchange whose answer was
//! lost is completed exactly once by the re-driver.

use std::time::{Duration, Instant};

use api::game::gift::admin::v1::{self as admin, vendor_simulation_service_client::VendorSimulationServiceClient};
use api::game::gift::v1 as gift;
use api::game::reward::v1 as reward;
use api::game::settlement::v1 as settlement;
use api::game::wallet::v1::{self as wallet, WalletEntryStatus};
use platform::resilience::{BreakerConfig, ResilienceConfig, RetryConfig};
use system_tests::{Mesh, MeshOptions};
use testkit::eventually;
use tonic::Code;

use crate::clients::{Clients, SETTLE, player};
use testkit::{AsCaller as _, AsOwner as _};

const CODES: [&str; 5] = ["FIRST_LOGIN", "FIRST_WIN", "INVITE_FRIEND", "WEEKLY_QUEST", "EVENT_CHAMPION"];

/// Tight settings, so the breaker's whole cycle fits in a test.
fn tight() -> ResilienceConfig {
    ResilienceConfig {
        timeout: Duration::from_millis(800),
        max_in_flight: 16,
        breaker: BreakerConfig {
            failure_rate: 0.5,
            min_calls: 4,
            window: Duration::from_secs(10),
            consecutive_failures: 3,
            // Long enough that the fast-fail check right after the burst
            // happens while open, even on a loaded machine.
            cool_down: Duration::from_secs(3),
        },
        retry: RetryConfig { max_attempts: 1, ..RetryConfig::default() },
    }
}

async fn mesh(gift_capacity: usize) -> Mesh {
    Mesh::start(MeshOptions {
        wallet_to_gift: Some(tight()),
        gift_max_exchanges_in_flight: Some(gift_capacity),
        gift_vendor_simulation: true,
        ..MeshOptions::default()
    })
    .await
}

/// A player with one available entry per mission code given.
async fn player_with_entries(c: &Clients, codes: &[&str]) -> (String, Vec<wallet::WalletEntry>) {
    let customer = player();
    for code in codes {
        let mission = c.achieve(&customer, code).await;
        c.rewarded(&mission.mission_id).await;
    }
    let entries = eventually("the wallet to hold every reward", SETTLE, || async {
        let entries = c.wallet(&customer).await;
        (entries.len() == codes.len()).then_some(entries)
    })
    .await;
    (customer, entries)
}

fn exchange(customer: &str, entry: &wallet::WalletEntry, sku: &str) -> wallet::ExchangeRewardRequest {
    wallet::ExchangeRewardRequest {
        customer_id: customer.into(),
        entry_id: entry.entry_id.clone(),
        product_sku: sku.into(),
    }
}

async fn vendor(mesh: &Mesh, behaviour: admin::VendorBehaviour) {
    let mut client = VendorSimulationServiceClient::connect(mesh.service_url("gift")).await.unwrap();
    let request = admin::SetVendorBehaviourRequest { behaviour: Some(behaviour) };
    client.set_vendor_behaviour(request.by_operator()).await.unwrap();
}

async fn reward_status(c: &Clients, reward_id: &str) -> reward::RewardStatus {
    let request = reward::GetRewardRequest { reward_id: reward_id.into() };
    c.rewards.clone().get_reward(request.by_operator()).await.unwrap().into_inner().reward.unwrap().status()
}

async fn stock(c: &Clients, sku: &str) -> i64 {
    let products =
        c.gifts.clone().list_products(gift::ListProductsRequest {}.by_operator()).await.unwrap().into_inner().products;
    products.into_iter().find(|p| p.sku == sku).unwrap().stock
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn with_gift_stopped_an_exchange_is_turned_away_at_once_and_missions_keep_flowing() {
    let mut mesh = mesh(64).await;
    let c = Clients::of(&mesh).await;
    let (customer, entries) = player_with_entries(&c, &CODES[..1]).await;
    eventually("the reward to be issued", SETTLE, || async {
        (reward_status(&c, &entries[0].reward_id).await == reward::RewardStatus::Issued).then_some(())
    })
    .await;
    mesh.stop_service("gift").await;

    let started = Instant::now();
    let refused = c
        .wallets
        .clone()
        .exchange_reward(exchange(&customer, &entries[0], "STICKER-PACK").by_owner())
        .await
        .unwrap_err();
    let waited = started.elapsed();
    assert_eq!(refused.code(), Code::Unavailable);
    assert_eq!(refused.message(), "the gift exchange is busy; your reward is unchanged, try again later");
    assert!(refused.metadata().get("retry-after-ms").is_some(), "a retry-after hint: {refused:?}");
    assert!(waited < Duration::from_secs(2), "turned away in {waited:?}, not after a long timeout");

    let after = c.wallet(&customer).await;
    assert_eq!(after[0].status(), WalletEntryStatus::Available);
    assert_eq!(reward_status(&c, &entries[0].reward_id).await, reward::RewardStatus::Issued);

    // Missions and rewards keep flowing.
    let next = c.achieve(&customer, CODES[1]).await;
    c.rewarded(&next.mission_id).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_overloaded_gift_opens_the_breaker_which_fast_fails_and_closes_again_once_gift_recovers() {
    let mesh = mesh(2).await;
    let c = Clients::of(&mesh).await;
    let (customer, entries) = player_with_entries(&c, &CODES).await;
    let (other, more) = player_with_entries(&c, &CODES).await;
    // Ready before the burst: the breaker's cool-down starts with it.
    let (third, waiting) = player_with_entries(&c, &CODES[..1]).await;
    vendor(&mesh, admin::VendorBehaviour { latency_ms: 600, ..Default::default() }).await;

    // Ten exchanges at once against a vendor that serves two at a time.
    let calls = entries
        .iter()
        .map(|e| (customer.clone(), e.clone()))
        .chain(more.iter().map(|e| (other.clone(), e.clone())))
        .map(|(customer, entry)| {
            let mut wallets = c.wallets.clone();
            tokio::spawn(async move {
                wallets.exchange_reward(exchange(&customer, &entry, "STICKER-PACK").by_owner()).await
            })
        });
    let results = futures::future::join_all(calls).await;
    let refused = results.iter().filter(|r| matches!(r, Ok(Err(s)) if s.code() == Code::Unavailable)).count();
    assert!(refused >= 3, "the vendor shed the overload: {refused} of 10 refused");

    // Open: a player is answered at once — gift, slow as it still is, would
    // have taken 600 ms to answer a call that reached it.
    let started = Instant::now();
    let fast =
        c.wallets.clone().exchange_reward(exchange(&third, &waiting[0], "STICKER-PACK").by_owner()).await.unwrap_err();
    assert!(
        started.elapsed() < Duration::from_millis(300),
        "fast-failed in {:?}: the breaker is open",
        started.elapsed()
    );
    assert_eq!(fast.code(), Code::Unavailable);
    assert!(fast.metadata().get("retry-after-ms").is_some());
    assert_eq!(c.wallet(&third).await[0].status(), WalletEntryStatus::Available);

    // Gift recovers; after the cool-down a probe goes through and closes the breaker.
    vendor(&mesh, admin::VendorBehaviour::default()).await;
    let exchanged = eventually("the breaker to close and the exchange to go through", SETTLE, || {
        let mut wallets = c.wallets.clone();
        let request = exchange(&third, &waiting[0], "STICKER-PACK");
        async move { wallets.exchange_reward(request.by_owner()).await.ok()?.into_inner().entry }
    })
    .await;
    assert_eq!(exchanged.status(), WalletEntryStatus::Exchanged);

    // Every refused entry is still available, its reward still issued.
    for (customer, entries) in [(&customer, &entries), (&other, &more)] {
        for entry in c.wallet(customer).await {
            let expected = if entry.status() == WalletEntryStatus::Exchanged {
                reward::RewardStatus::Exchanged
            } else {
                assert_eq!(entry.status(), WalletEntryStatus::Available, "{entry:?}");
                reward::RewardStatus::Issued
            };
            let status = eventually("the reward to follow the wallet", SETTLE, || async {
                let status = reward_status(&c, &entry.reward_id).await;
                (status == expected).then_some(status)
            })
            .await;
            assert_eq!(status, expected);
        }
        assert_eq!(entries.len(), CODES.len());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_exchange_whose_answer_timed_out_after_gift_committed_is_completed_once_by_the_re_driver() {
    let mesh = mesh(64).await;
    let c = Clients::of(&mesh).await;
    // FIRST_WIN is worth 300 points, the price of the frame.
    let (customer, entries) = player_with_entries(&c, &["FIRST_WIN"]).await;
    let before = stock(&c, "AVATAR-FRAME").await;
    vendor(&mesh, admin::VendorBehaviour { latency_after_commit_ms: 3_000, ..Default::default() }).await;

    let unsettled = c
        .wallets
        .clone()
        .exchange_reward(exchange(&customer, &entries[0], "AVATAR-FRAME").by_owner())
        .await
        .unwrap_err();
    assert_eq!(unsettled.code(), Code::Unavailable);
    assert!(unsettled.message().contains("stays pending"), "{}", unsettled.message());
    assert_eq!(c.wallet(&customer).await[0].status(), WalletEntryStatus::ExchangePending);
    assert_eq!(stock(&c, "AVATAR-FRAME").await, before - 1, "gift committed the order");

    vendor(&mesh, admin::VendorBehaviour::default()).await;
    let exchanged = eventually("the re-driver to complete the exchange", SETTLE, || async {
        c.wallet(&customer).await.into_iter().find(|e| e.status() == WalletEntryStatus::Exchanged)
    })
    .await;
    assert_eq!(stock(&c, "AVATAR-FRAME").await, before - 1, "no second order");
    let order = c
        .gifts
        .clone()
        .get_order(gift::GetOrderRequest { order_id: exchanged.gift_order_id.clone() }.by_operator())
        .await
        .unwrap()
        .into_inner()
        .order
        .unwrap();
    // Paid by the wallet's exchange (one order per exchange), not by the reward itself.
    assert_eq!(order.reward_id, "");
    let wallet = c
        .wallets
        .clone()
        .get_wallet(wallet::GetWalletRequest { customer_id: customer.clone() }.by_operator())
        .await
        .unwrap()
        .into_inner()
        .wallet
        .unwrap();
    assert_eq!(wallet.exchanges.len(), 1, "one exchange: {:?}", wallet.exchanges);
    assert_eq!(order.exchange_id, wallet.exchanges[0].exchange_id);
    assert_eq!(wallet.exchanges[0].reservations[0].reward_id, entries[0].reward_id);
    let settlements = eventually("the settlement", SETTLE, || async {
        let request = settlement::ListSettlementsRequest {
            product_sku: "AVATAR-FRAME".into(),
            page_size: 500,
            page_token: String::new(),
        };
        let page = c.settlements.clone().list_settlements(request.by_operator()).await.ok()?.into_inner();
        let mine: Vec<_> = page.settlements.into_iter().filter(|s| s.order_id == order.order_id).collect();
        (!mine.is_empty()).then_some(mine)
    })
    .await;
    assert_eq!(settlements.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_exchanges_of_one_entry_place_one_gift_order() {
    let mesh = mesh(64).await;
    let c = Clients::of(&mesh).await;
    let (customer, entries) = player_with_entries(&c, &CODES[..1]).await;
    let before = stock(&c, "STICKER-PACK").await;
    let calls = (0..10).map(|_| {
        let mut wallets = c.wallets.clone();
        let request = exchange(&customer, &entries[0], "STICKER-PACK");
        tokio::spawn(async move { wallets.exchange_reward(request.by_owner()).await })
    });
    let results = futures::future::join_all(calls).await;
    let mut orders = std::collections::HashSet::new();
    for result in results {
        match result.unwrap() {
            Ok(response) => {
                orders.insert(response.into_inner().entry.unwrap().gift_order_id);
            }
            Err(status) => assert_eq!(status.code(), Code::FailedPrecondition, "{status:?}"),
        }
    }
    assert_eq!(orders.len(), 1, "every success names the same order");
    assert_eq!(stock(&c, "STICKER-PACK").await, before - 1);
}
