//! Missions and rewards keep flowing while gift, wallet and mypage are down;
//! when they return they catch up on every missed event and the views converge.

use std::time::{Duration, Instant};

use api::game::mission::v1 as mission;
use api::game::reward::v1 as reward;
use api::game::wallet::v1 as wallet;
use system_tests::{Mesh, MeshOptions};
use testkit::eventually;
use tonic::Code;

use crate::clients::{Clients, SETTLE, player};
use testkit::{AsCaller as _, AsOwner as _};

const CODES: [&str; 5] = ["FIRST_LOGIN", "FIRST_WIN", "INVITE_FRIEND", "WEEKLY_QUEST", "EVENT_CHAMPION"];

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn missions_and_rewards_flow_while_gift_wallet_and_mypage_are_down_and_everything_converges_after() {
    let mut mesh = Mesh::start(MeshOptions::default()).await;
    let c = Clients::of(&mesh).await;
    let customer = player();
    for service in ["gift", "wallet", "mypage"] {
        mesh.stop_service(service).await;
    }

    // Missions are achieved and rewards allocated with three services down.
    let mut rewards = Vec::new();
    for code in CODES {
        let achieved = c.achieve(&customer, code).await;
        let rewarded = c.rewarded(&achieved.mission_id).await;
        rewards.push(rewarded.reward_id);
    }
    for reward_id in &rewards {
        let request = reward::GetRewardRequest { reward_id: reward_id.clone() };
        let r = c.rewards.clone().get_reward(request.by_operator()).await.unwrap().into_inner().reward.unwrap();
        assert_eq!(r.status(), reward::RewardStatus::Allocated, "no wallet has issued it yet");
    }
    let down =
        c.wallets.clone().get_wallet(wallet::GetWalletRequest { customer_id: customer.clone() }.by_operator()).await;
    assert_eq!(down.unwrap_err().code(), Code::Unavailable, "the gateway says the wallet is unavailable");

    // The wallet returns first, with gift still down: it catches up on every
    // allocated reward, and an exchange is turned away at once, reward untouched.
    mesh.start_service("wallet").await;
    let entries = eventually("the wallet to catch up", SETTLE, || async {
        let entries = c.wallet(&customer).await;
        (entries.len() == CODES.len()).then_some(entries)
    })
    .await;
    assert!(entries.iter().all(|e| e.status() == wallet::WalletEntryStatus::Available));
    let entry = &entries[0];
    let started = Instant::now();
    let refused = c
        .wallets
        .clone()
        .exchange_reward(
            wallet::ExchangeRewardRequest {
                customer_id: customer.clone(),
                entry_id: entry.entry_id.clone(),
                product_sku: "STICKER-PACK".into(),
            }
            .by_owner(),
        )
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::Unavailable);
    assert!(refused.message().contains("try again later"), "{}", refused.message());
    assert!(started.elapsed() < Duration::from_secs(5), "turned away quickly, not after a long timeout");
    let unchanged = c.wallet(&customer).await;
    let same = unchanged.iter().find(|e| e.entry_id == entry.entry_id).unwrap();
    assert_eq!(same.status(), wallet::WalletEntryStatus::Available);
    assert_eq!(same.gift_order_id, "");

    // Rewards become ISSUED as the reward context reads the wallet's events.
    for reward_id in &rewards {
        eventually("the reward to be issued", SETTLE, || async {
            (c.reward(reward_id).await?.status() == reward::RewardStatus::Issued).then_some(())
        })
        .await;
    }

    // mypage and gift return: my page shows every mission and entry.
    mesh.start_service("mypage").await;
    mesh.start_service("gift").await;
    let page = eventually("my page to converge", SETTLE, || async {
        let page = c.my_page(&customer).await?;
        let done = page.missions.len() == CODES.len()
            && page.wallet.len() == CODES.len()
            && page.missions.iter().all(|m| {
                m.status() == mission::MissionStatus::Rewarded && m.reward_status() == reward::RewardStatus::Issued
            });
        done.then_some(page)
    })
    .await;
    assert_eq!(page.available_points, 100 + 300 + 500 + 800 + 2000);

    // And the exchange that was turned away now goes through.
    let exchanged = eventually("gift to take exchanges again", SETTLE, || {
        let mut wallets = c.wallets.clone();
        let request = wallet::ExchangeRewardRequest {
            customer_id: customer.clone(),
            entry_id: entry.entry_id.clone(),
            product_sku: "STICKER-PACK".into(),
        };
        async move { wallets.exchange_reward(request.by_owner()).await.ok()?.into_inner().entry }
    })
    .await;
    // The sticker costs 100: the change stays in the entry, spendable.
    assert_eq!(exchanged.remaining_points, entry.points - 100);
    let used_up =
        if entry.points == 100 { wallet::WalletEntryStatus::Exchanged } else { wallet::WalletEntryStatus::Available };
    assert_eq!(exchanged.status(), used_up);
}
