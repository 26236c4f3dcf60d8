//! Nobody reads or spends what is not theirs: every player RPC, through the
//! gateway, with a valid token of another player, is PERMISSION_DENIED and
//! changes nothing; the owner and an operator read it all; settlements are
//! for operators only.

use api::game::gift::v1 as gift;
use api::game::mission::v1 as mission;
use api::game::mypage::v1 as mypage;
use api::game::reward::v1 as reward;
use api::game::settlement::v1 as settlement;
use api::game::wallet::v1 as wallet;
use system_tests::{Mesh, MeshOptions};
use testkit::AsCaller as _;
use tonic::Code;

use crate::clients::{Clients, player};

fn denied<T: std::fmt::Debug>(what: &str, result: Result<tonic::Response<T>, tonic::Status>) {
    let status = result.unwrap_err();
    assert_eq!(status.code(), Code::PermissionDenied, "{what}: {status:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn another_players_data_is_refused_on_every_player_rpc_and_nothing_changes() {
    let mesh = Mesh::start(MeshOptions::default()).await;
    let c = Clients::of(&mesh).await;
    let (owner, intruder) = (player(), player());

    // The owner's data: two rewarded missions, one entry exchanged (an order),
    // one still available.
    let first = c.achieve(&owner, "FIRST_WIN").await;
    let second = c.achieve(&owner, "FIRST_LOGIN").await;
    let first = c.rewarded(&first.mission_id).await;
    let second = c.rewarded(&second.mission_id).await;
    let spent = c.wallet_entry(&owner, &first.reward_id).await;
    let available = c.wallet_entry(&owner, &second.reward_id).await;
    let exchange = |customer: &str, entry: &wallet::WalletEntry| wallet::ExchangeRewardRequest {
        customer_id: customer.into(),
        entry_id: entry.entry_id.clone(),
        product_sku: "STICKER-PACK".into(),
    };
    let order_id = c
        .wallets
        .clone()
        // The frame costs all 300 points: the entry is used up, its order on it.
        .exchange_reward(
            wallet::ExchangeRewardRequest { product_sku: "AVATAR-FRAME".into(), ..exchange(&owner, &spent) }
                .by_player(&owner),
        )
        .await
        .unwrap()
        .into_inner()
        .entry
        .unwrap()
        .gift_order_id;
    let before = c.wallet(&owner).await;

    // The intruder, with a perfectly valid token of their own.
    let (mut missions, mut rewards, mut wallets) = (c.missions.clone(), c.rewards.clone(), c.wallets.clone());
    let (mut gifts, mut pages, mut settlements) = (c.gifts.clone(), c.my_pages.clone(), c.settlements.clone());
    let achieve = mission::AchieveMissionRequest {
        customer_id: owner.clone(),
        mission_code: "INVITE_FRIEND".into(),
        achievement_id: None,
    };
    denied("AchieveMission", missions.achieve_mission(achieve.by_player(&intruder)).await);
    let get_mission = mission::GetMissionRequest { mission_id: first.mission_id.clone() };
    denied("GetMission", missions.get_mission(get_mission.clone().by_player(&intruder)).await);
    let list_missions = mission::ListMissionsRequest { customer_id: owner.clone() };
    denied("ListMissions", missions.list_missions(list_missions.clone().by_player(&intruder)).await);
    let get_reward = reward::GetRewardRequest { reward_id: first.reward_id.clone() };
    denied("GetReward", rewards.get_reward(get_reward.clone().by_player(&intruder)).await);
    let get_wallet = wallet::GetWalletRequest { customer_id: owner.clone() };
    denied("GetWallet", wallets.get_wallet(get_wallet.clone().by_player(&intruder)).await);
    denied(
        "ExchangeReward for the owner",
        wallets.exchange_reward(exchange(&owner, &available).by_player(&intruder)).await,
    );
    denied(
        "ExchangeReward of the owner's entry as one's own",
        wallets.exchange_reward(exchange(&intruder, &available).by_player(&intruder)).await,
    );
    let spend = wallet::ExchangeRequest {
        customer_id: owner.clone(),
        product_sku: "STICKER-PACK".into(),
        idempotency_key: "intruder-1".into(),
    };
    denied("Exchange for the owner", wallets.exchange(spend.clone().by_player(&intruder)).await);
    let get_order = gift::GetOrderRequest { order_id: order_id.clone() };
    denied("GetOrder", gifts.get_order(get_order.clone().by_player(&intruder)).await);
    let get_page = mypage::GetMyPageRequest { customer_id: owner.clone() };
    denied("GetMyPage", pages.get_my_page(get_page.clone().by_player(&intruder)).await);
    let watch_page = mypage::WatchMyPageRequest { customer_id: owner.clone() };
    denied(
        "WatchMyPage",
        pages.watch_my_page(watch_page.clone().by_player(&intruder)).await.map(|_| ()).map(tonic::Response::new),
    );
    let list_settlements = settlement::ListSettlementsRequest::default();
    denied("ListSettlements", settlements.list_settlements(list_settlements.clone().by_player(&owner)).await);
    let list_periods = settlement::ListPeriodsRequest::default();
    denied("ListPeriods", settlements.list_periods(list_periods.clone().by_player(&owner)).await);

    // Nothing changed.
    assert_eq!(c.wallet(&owner).await, before);
    let owned = missions.list_missions(list_missions.clone().by_player(&owner)).await.unwrap().into_inner().missions;
    assert_eq!(owned.len(), 2, "no mission was achieved for the owner by someone else");

    // The owner reads everything of theirs.
    missions.get_mission(get_mission.clone().by_player(&owner)).await.unwrap();
    rewards.get_reward(get_reward.clone().by_player(&owner)).await.unwrap();
    wallets.get_wallet(get_wallet.clone().by_player(&owner)).await.unwrap();
    gifts.get_order(get_order.clone().by_player(&owner)).await.unwrap();
    pages.get_my_page(get_page.clone().by_player(&owner)).await.unwrap();
    let mut watch = pages.watch_my_page(watch_page.clone().by_player(&owner)).await.unwrap().into_inner();
    assert!(watch.message().await.unwrap().is_some(), "the watch opens with the current page");

    // An operator reads everything, settlements included, and acts for no one.
    missions.get_mission(get_mission.by_operator()).await.unwrap();
    missions.list_missions(list_missions.by_operator()).await.unwrap();
    rewards.get_reward(get_reward.by_operator()).await.unwrap();
    wallets.get_wallet(get_wallet.by_operator()).await.unwrap();
    gifts.get_order(get_order.by_operator()).await.unwrap();
    pages.get_my_page(get_page.by_operator()).await.unwrap();
    settlements.list_settlements(list_settlements.by_operator()).await.unwrap();
    settlements.list_periods(list_periods.by_operator()).await.unwrap();
    denied("ExchangeReward by an operator", wallets.exchange_reward(exchange(&owner, &available).by_operator()).await);
    denied("Exchange by an operator", wallets.exchange(spend.by_operator()).await);
    assert_eq!(c.wallet(&owner).await, before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_call_straight_to_a_service_needs_a_token_too() {
    use api::game::wallet::v1::wallet_service_client::WalletServiceClient;
    let mesh = Mesh::start(MeshOptions::default()).await;
    // Around the gateway: the service verifies tokens itself.
    let mut wallets = WalletServiceClient::connect(mesh.service_url("wallet")).await.unwrap();
    let mut request = tonic::Request::new(wallet::GetWalletRequest { customer_id: "player-1".into() });
    // A forged identity header gains nothing.
    request.metadata_mut().insert("x-verified-customer-id", "player-1".parse().unwrap());
    let status = wallets.get_wallet(request).await.unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated);
    let request = wallet::GetWalletRequest { customer_id: "player-1".into() }.by_player("player-2");
    assert_eq!(wallets.get_wallet(request).await.unwrap_err().code(), Code::PermissionDenied);
    let request = wallet::GetWalletRequest { customer_id: "player-1".into() }.by_player("player-1");
    assert!(wallets.get_wallet(request).await.is_ok());
}
