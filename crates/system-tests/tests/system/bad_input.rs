//! Bad input on every RPC gets the precise status of the contract and changes nothing.

use api::game::gift::v1 as gift;
use api::game::mission::v1 as mission;
use api::game::mypage::v1 as mypage;
use api::game::reward::v1 as reward;
use api::game::settlement::v1 as settlement;
use api::game::wallet::v1 as wallet;
use system_tests::{Mesh, MeshOptions};
use tonic::Code;

use crate::clients::{Clients, player};
use testkit::{AsCaller as _, AsOwner as _};

fn assert_status<T: std::fmt::Debug>(result: Result<tonic::Response<T>, tonic::Status>, code: Code, message: &str) {
    let status = result.unwrap_err();
    assert_eq!((status.code(), status.message()), (code, message), "{status:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_rpc_answers_bad_input_precisely_and_changes_nothing() {
    let mesh = Mesh::start(MeshOptions::default()).await;
    let c = Clients::of(&mesh).await;
    let unknown = uuid::Uuid::new_v4().to_string();

    // mission
    let mut missions = c.missions.clone();
    let achieve = |customer: &str, code: &str| mission::AchieveMissionRequest {
        customer_id: customer.into(),
        mission_code: code.into(),
        achievement_id: None,
    };
    assert_status(
        missions.achieve_mission(achieve("", "FIRST_WIN").by_owner()).await,
        Code::InvalidArgument,
        "customer_id: must not be empty",
    );
    assert_status(
        missions.achieve_mission(achieve("p-1", "").by_owner()).await,
        Code::InvalidArgument,
        "mission_code: must not be empty",
    );
    assert_status(
        missions.achieve_mission(achieve("p-1", "NOPE").by_owner()).await,
        Code::NotFound,
        "mission code NOPE is not in the catalogue",
    );
    assert_status(
        missions.get_mission(mission::GetMissionRequest { mission_id: String::new() }.by_operator()).await,
        Code::InvalidArgument,
        "mission_id: must not be empty",
    );
    assert_status(
        missions.get_mission(mission::GetMissionRequest { mission_id: unknown.clone() }.by_operator()).await,
        Code::NotFound,
        &format!("mission {unknown} does not exist"),
    );
    assert_status(
        missions.list_missions(mission::ListMissionsRequest { customer_id: String::new() }.by_operator()).await,
        Code::InvalidArgument,
        "customer_id: must not be empty",
    );

    // reward
    let mut rewards = c.rewards.clone();
    assert_status(
        rewards.get_reward(reward::GetRewardRequest { reward_id: String::new() }.by_operator()).await,
        Code::InvalidArgument,
        "reward_id: must not be empty",
    );
    assert_status(
        rewards.get_reward(reward::GetRewardRequest { reward_id: "x".into() }.by_operator()).await,
        Code::InvalidArgument,
        "reward_id: must be a UUID",
    );
    assert_status(
        rewards.get_reward(reward::GetRewardRequest { reward_id: unknown.clone() }.by_operator()).await,
        Code::NotFound,
        &format!("reward {unknown} does not exist"),
    );

    // gift
    let mut gifts = c.gifts.clone();
    assert_status(
        gifts.get_order(gift::GetOrderRequest { order_id: String::new() }.by_operator()).await,
        Code::InvalidArgument,
        "order_id: must not be empty",
    );
    assert_status(
        gifts.get_order(gift::GetOrderRequest { order_id: unknown.clone() }.by_operator()).await,
        Code::NotFound,
        &format!("gift order {unknown} does not exist"),
    );

    // mypage and settlement
    assert_status(
        c.my_pages.clone().get_my_page(mypage::GetMyPageRequest { customer_id: String::new() }.by_operator()).await,
        Code::InvalidArgument,
        "customer_id: must not be empty",
    );
    assert_status(
        c.settlements
            .clone()
            .list_settlements(
                settlement::ListSettlementsRequest {
                    product_sku: String::new(),
                    page_size: -1,
                    page_token: String::new(),
                }
                .by_operator(),
            )
            .await,
        Code::InvalidArgument,
        "page_size: must be between 0 and 500",
    );

    // wallet: set up one entry to exchange badly.
    let owner = player();
    let achieved = c.achieve(&owner, "FIRST_LOGIN").await;
    let rewarded = c.rewarded(&achieved.mission_id).await;
    let entry = c.wallet_entry(&owner, &rewarded.reward_id).await;
    let mut wallets = c.wallets.clone();
    let exchange = |customer: &str, entry_id: &str, sku: &str| wallet::ExchangeRewardRequest {
        customer_id: customer.into(),
        entry_id: entry_id.into(),
        product_sku: sku.into(),
    };
    assert_status(
        wallets.get_wallet(wallet::GetWalletRequest { customer_id: String::new() }.by_operator()).await,
        Code::InvalidArgument,
        "customer_id: must not be empty",
    );
    assert_status(
        wallets.exchange_reward(exchange(&owner, "", "STICKER-PACK").by_owner()).await,
        Code::InvalidArgument,
        "entry_id: must not be empty",
    );
    assert_status(
        wallets.exchange_reward(exchange(&owner, &entry.entry_id, "").by_owner()).await,
        Code::InvalidArgument,
        "product_sku: must not be empty",
    );
    assert_status(
        wallets.exchange_reward(exchange(&owner, &unknown, "STICKER-PACK").by_owner()).await,
        Code::NotFound,
        &format!("wallet entry {unknown} does not exist"),
    );
    assert_status(
        wallets.exchange_reward(exchange("someone-else", &entry.entry_id, "STICKER-PACK").by_owner()).await,
        Code::PermissionDenied,
        &format!("wallet entry {} does not belong to customer someone-else", entry.entry_id),
    );
    assert_status(
        wallets.exchange_reward(exchange(&owner, &entry.entry_id, "NO-SUCH-PRODUCT").by_owner()).await,
        Code::NotFound,
        "product NO-SUCH-PRODUCT does not exist",
    );
    // FIRST_LOGIN is worth 100 points; the figure costs 2000.
    let refused =
        wallets.exchange_reward(exchange(&owner, &entry.entry_id, "LIMITED-FIGURE").by_owner()).await.unwrap_err();
    assert_eq!(refused.code(), Code::FailedPrecondition, "{refused:?}");
    assert!(refused.message().starts_with("not enough points"), "{}", refused.message());

    // None of that changed the entry.
    let untouched = c.wallet(&owner).await;
    assert_eq!(untouched.len(), 1);
    assert_eq!(untouched[0].status(), wallet::WalletEntryStatus::Available);
    assert_eq!(untouched[0].gift_order_id, "");

    // Exchanged once, a second exchange is refused.
    wallets.exchange_reward(exchange(&owner, &entry.entry_id, "STICKER-PACK").by_owner()).await.unwrap();
    let second =
        wallets.exchange_reward(exchange(&owner, &entry.entry_id, "STICKER-PACK").by_owner()).await.unwrap_err();
    assert_eq!(second.code(), Code::FailedPrecondition);
    assert!(second.message().contains("was already exchanged"), "{}", second.message());
}
