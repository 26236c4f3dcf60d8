//! The whole story, every status change asserted, on SQLite and on PostgreSQL.

use std::collections::HashMap;

use api::game::gift::v1 as gift;
use api::game::mission::v1 as mission;
use api::game::reward::v1 as reward;
use api::game::settlement::v1 as settlement;
use api::game::wallet::v1 as wallet;
use system_tests::{Mesh, MeshOptions};
use testkit::eventually;

use crate::clients::{Clients, SETTLE, player};
use testkit::{AsCaller as _, AsOwner as _};

async fn reward_status(c: &Clients, reward_id: &str) -> reward::Reward {
    let request = reward::GetRewardRequest { reward_id: reward_id.into() };
    c.rewards.clone().get_reward(request.by_operator()).await.unwrap().into_inner().reward.unwrap()
}

async fn play_the_story(mesh: &Mesh) {
    let c = Clients::of(mesh).await;
    let customer = player();

    // A player achieves a mission.
    let achieved = c.achieve(&customer, "FIRST_WIN").await;
    assert_eq!(achieved.status(), mission::MissionStatus::Achieved);
    assert_eq!(achieved.reward_points, 300);

    // The reward is allocated, recorded on the mission, and issued to the wallet.
    let rewarded = c.rewarded(&achieved.mission_id).await;
    assert!(!rewarded.reward_id.is_empty());
    let entry = c.wallet_entry(&customer, &rewarded.reward_id).await;
    assert_eq!(entry.status(), wallet::WalletEntryStatus::Available);
    assert_eq!((entry.points, entry.mission_id.as_str()), (300, achieved.mission_id.as_str()));
    let issued = eventually("the reward to be issued", SETTLE, || async {
        let r = reward_status(&c, &rewarded.reward_id).await;
        (r.status() == reward::RewardStatus::Issued).then_some(r)
    })
    .await;
    assert_eq!((issued.points, issued.mission_id.as_str()), (300, achieved.mission_id.as_str()));

    // Achieving it again returns the same mission and no second reward.
    let again = c.achieve(&customer, "FIRST_WIN").await;
    assert_eq!(again.mission_id, achieved.mission_id);

    // The player exchanges it for a product they can afford.
    let products =
        c.gifts.clone().list_products(gift::ListProductsRequest {}.by_operator()).await.unwrap().into_inner().products;
    // The dearest it can afford, which uses the reward up: the change of a
    // cheaper one would stay in the wallet, the entry AVAILABLE.
    let product = products
        .iter()
        .filter(|p| p.price_points <= 300 && p.stock > 0)
        .max_by_key(|p| p.price_points)
        .expect("an affordable product");
    let exchange = wallet::ExchangeRewardRequest {
        customer_id: customer.clone(),
        entry_id: entry.entry_id.clone(),
        product_sku: product.sku.clone(),
    };
    let exchanged = c.wallets.clone().exchange_reward(exchange.by_owner()).await.unwrap().into_inner().entry.unwrap();
    assert_eq!(exchanged.status(), wallet::WalletEntryStatus::Exchanged);
    assert_eq!(exchanged.product_sku, product.sku);
    assert!(!exchanged.gift_order_id.is_empty());

    // The reward follows, the gift order exists, the stock went down by one.
    eventually("the reward to be exchanged", SETTLE, || async {
        (reward_status(&c, &rewarded.reward_id).await.status() == reward::RewardStatus::Exchanged).then_some(())
    })
    .await;
    let order = c
        .gifts
        .clone()
        .get_order(gift::GetOrderRequest { order_id: exchanged.gift_order_id.clone() }.by_operator())
        .await
        .unwrap()
        .into_inner()
        .order
        .unwrap();
    // Paid by the wallet's exchange, which the reward paid for.
    assert_eq!((order.reward_id.as_str(), order.product_sku.as_str()), ("", product.sku.as_str()));
    let exchanges = c
        .wallets
        .clone()
        .get_wallet(wallet::GetWalletRequest { customer_id: customer.clone() }.by_operator())
        .await
        .unwrap()
        .into_inner()
        .wallet
        .unwrap()
        .exchanges;
    assert_eq!(exchanges.len(), 1);
    assert_eq!(
        (exchanges[0].exchange_id.as_str(), exchanges[0].gift_order_id.as_str()),
        (order.exchange_id.as_str(), order.order_id.as_str())
    );
    assert_eq!(exchanges[0].reservations[0].reward_id, rewarded.reward_id);
    assert_eq!(order.customer_id, customer);
    assert_eq!(order.status(), gift::GiftOrderStatus::Placed);
    let after =
        c.gifts.clone().list_products(gift::ListProductsRequest {}.by_operator()).await.unwrap().into_inner().products;
    let stock: HashMap<_, _> = after.iter().map(|p| (p.sku.clone(), p.stock)).collect();
    assert_eq!(stock[&product.sku], product.stock - 1);

    // One settlement records what the exchange costs.
    let recorded = eventually("the settlement", SETTLE, || {
        let mut settlements = c.settlements.clone();
        let (sku, order_id) = (product.sku.clone(), order.order_id.clone());
        async move {
            let request =
                settlement::ListSettlementsRequest { product_sku: sku, page_size: 500, page_token: String::new() };
            let page = settlements.list_settlements(request.by_operator()).await.ok()?.into_inner();
            let matching: Vec<_> = page.settlements.into_iter().filter(|s| s.order_id == order_id).collect();
            (!matching.is_empty()).then_some(matching)
        }
    })
    .await;
    assert_eq!(recorded.len(), 1);
    assert_eq!(recorded[0].mission_id, achieved.mission_id);
    assert!(recorded[0].amount > 0);

    // My page shows all of it.
    let page = eventually("my page to converge", SETTLE, || async {
        let page = c.my_page(&customer).await?;
        let done = page.missions.len() == 1
            && page.missions[0].reward_status() == reward::RewardStatus::Exchanged
            && page.wallet.len() == 1
            && page.wallet[0].status() == wallet::WalletEntryStatus::Exchanged;
        done.then_some(page)
    })
    .await;
    let m = &page.missions[0];
    assert_eq!((m.mission_id.as_str(), m.mission_code.as_str()), (achieved.mission_id.as_str(), "FIRST_WIN"));
    assert_eq!(m.status(), mission::MissionStatus::Rewarded);
    assert_eq!(m.reward_id, rewarded.reward_id);
    let w = &page.wallet[0];
    assert_eq!((w.entry_id.as_str(), w.gift_order_id.as_str()), (entry.entry_id.as_str(), order.order_id.as_str()));
    assert_eq!(page.available_points, 0);

    // Exactly one wallet entry for the one mission.
    assert_eq!(c.wallet(&customer).await.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_players_story_plays_through_the_gateway_on_sqlite() {
    let mesh = Mesh::start(MeshOptions::default()).await;
    play_the_story(&mesh).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_players_story_plays_with_wallet_and_mission_on_postgresql() {
    let mut options = MeshOptions::default();
    let mut schemas = Vec::new();
    for service in ["wallet", "mission"] {
        let Some(schema) = testkit::PostgresSchema::create(service) else {
            return;
        };
        options.postgres.insert(service, schema.url().to_owned());
        schemas.push(schema);
    }
    let mesh = Mesh::start(options).await;
    play_the_story(&mesh).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_player_spends_points_of_two_rewards_through_the_gateway_and_asking_again_spends_nothing_more() {
    let mesh = Mesh::start(MeshOptions::default()).await;
    let c = Clients::of(&mesh).await;
    let customer = player();
    // FIRST_LOGIN is worth 100 points, FIRST_WIN 300.
    for code in ["FIRST_LOGIN", "FIRST_WIN"] {
        let achieved = c.achieve(&customer, code).await;
        c.rewarded(&achieved.mission_id).await;
    }
    eventually("the wallet to hold both rewards", SETTLE, || async {
        (c.wallet(&customer).await.len() == 2).then_some(())
    })
    .await;
    let spend = |sku: &str, key: &str| wallet::ExchangeRequest {
        customer_id: customer.clone(),
        product_sku: sku.into(),
        idempotency_key: key.into(),
    };

    let refused = c.wallets.clone().exchange(spend("GAME-SOUNDTRACK", "k-1").by_player(&customer)).await.unwrap_err();
    assert_eq!(refused.code(), tonic::Code::FailedPrecondition);
    assert_eq!(refused.message(), format!("{customer} has 400 points; GAME-SOUNDTRACK costs 500"));
    let placed = c
        .wallets
        .clone()
        .exchange(spend("AVATAR-FRAME", "k-2").by_player(&customer))
        .await
        .unwrap()
        .into_inner()
        .exchange
        .unwrap();

    assert_eq!(placed.status(), wallet::ExchangeStatus::Placed);
    let paid: Vec<i64> = placed.reservations.iter().map(|r| r.points).collect();
    assert_eq!(paid.iter().sum::<i64>(), 300);
    assert_eq!(paid.len(), 2, "paid from both rewards: {paid:?}");
    let again = c.wallets.clone().exchange(spend("AVATAR-FRAME", "k-2").by_player(&customer)).await.unwrap();
    assert_eq!(again.into_inner().exchange.unwrap(), placed);
    let request = wallet::GetWalletRequest { customer_id: customer.clone() };
    let whole = c.wallets.clone().get_wallet(request.by_player(&customer)).await.unwrap().into_inner().wallet.unwrap();
    assert_eq!((whole.earned, whole.balance, whole.spent, whole.reserved), (400, 100, 300, 0));
    let order = c
        .gifts
        .clone()
        .get_order(gift::GetOrderRequest { order_id: placed.gift_order_id.clone() }.by_operator())
        .await
        .unwrap()
        .into_inner()
        .order
        .unwrap();
    assert_eq!((order.exchange_id.as_str(), order.points), (placed.exchange_id.as_str(), 300));
}
