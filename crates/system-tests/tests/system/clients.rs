//! Generated clients, all pointed at the gateway, and small helpers over them.

use std::time::Duration;

use api::game::gift::v1::gift_service_client::GiftServiceClient;
use api::game::mission::v1::{self as mission, mission_service_client::MissionServiceClient};
use api::game::mypage::v1::{self as mypage, my_page_service_client::MyPageServiceClient};
use api::game::reward::v1::{self as reward, reward_service_client::RewardServiceClient};
use api::game::settlement::v1::settlement_service_client::SettlementServiceClient;
use api::game::wallet::v1::{self as wallet, wallet_service_client::WalletServiceClient};
use system_tests::Mesh;
use testkit::eventually;
use testkit::{AsCaller as _, AsOwner as _};
use tonic::transport::Channel;

/// How long an asynchronous effect may take in these tests.
pub const SETTLE: Duration = Duration::from_secs(20);

#[derive(Clone)]
pub struct Clients {
    pub missions: MissionServiceClient<Channel>,
    pub rewards: RewardServiceClient<Channel>,
    pub wallets: WalletServiceClient<Channel>,
    pub gifts: GiftServiceClient<Channel>,
    pub my_pages: MyPageServiceClient<Channel>,
    pub settlements: SettlementServiceClient<Channel>,
}

impl Clients {
    pub async fn of(mesh: &Mesh) -> Self {
        let channel = mesh.gateway().await;
        Self {
            missions: MissionServiceClient::new(channel.clone()),
            rewards: RewardServiceClient::new(channel.clone()),
            wallets: WalletServiceClient::new(channel.clone()),
            gifts: GiftServiceClient::new(channel.clone()),
            my_pages: MyPageServiceClient::new(channel.clone()),
            settlements: SettlementServiceClient::new(channel),
        }
    }

    pub async fn achieve(&self, customer: &str, code: &str) -> mission::Mission {
        let request = mission::AchieveMissionRequest {
            customer_id: customer.into(),
            mission_code: code.into(),
            achievement_id: None,
        };
        self.missions.clone().achieve_mission(request.by_owner()).await.unwrap().into_inner().mission.unwrap()
    }

    pub async fn rewarded(&self, mission_id: &str) -> mission::Mission {
        eventually("the mission to be rewarded", SETTLE, || {
            let mut missions = self.missions.clone();
            let mission_id = mission_id.to_owned();
            async move {
                let m = missions
                    .get_mission(mission::GetMissionRequest { mission_id }.by_operator())
                    .await
                    .ok()?
                    .into_inner()
                    .mission?;
                (m.status() == mission::MissionStatus::Rewarded).then_some(m)
            }
        })
        .await
    }

    pub async fn wallet_entry(&self, customer: &str, reward_id: &str) -> wallet::WalletEntry {
        eventually("the reward to reach the wallet", SETTLE, || {
            let mut wallets = self.wallets.clone();
            let (customer_id, reward_id) = (customer.to_owned(), reward_id.to_owned());
            async move {
                let w = wallets
                    .get_wallet(wallet::GetWalletRequest { customer_id }.by_operator())
                    .await
                    .ok()?
                    .into_inner()
                    .wallet?;
                w.entries.into_iter().find(|e| e.reward_id == reward_id)
            }
        })
        .await
    }

    /// The player's page, read as an operator; `None` while mypage does not answer.
    pub async fn my_page(&self, customer: &str) -> Option<mypage::MyPage> {
        let request = mypage::GetMyPageRequest { customer_id: customer.to_owned() }.by_operator();
        self.my_pages.clone().get_my_page(request).await.ok()?.into_inner().my_page
    }

    /// The reward, read as an operator; `None` while the reward service does not answer.
    pub async fn reward(&self, reward_id: &str) -> Option<reward::Reward> {
        let request = reward::GetRewardRequest { reward_id: reward_id.to_owned() }.by_operator();
        self.rewards.clone().get_reward(request).await.ok()?.into_inner().reward
    }

    pub async fn wallet(&self, customer: &str) -> Vec<wallet::WalletEntry> {
        let request = wallet::GetWalletRequest { customer_id: customer.into() };
        self.wallets.clone().get_wallet(request.by_operator()).await.unwrap().into_inner().wallet.unwrap().entries
    }
}

pub fn player() -> String {
    format!("player-{}", &uuid::Uuid::new_v4().simple().to_string()[..12])
}
