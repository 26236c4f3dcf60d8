//! The calls the `loadgen` binary can make: health checks (the echo), the
//! player's commands and queries, and any unary method given as a path and
//! an encoded body.

use api::game::mission::v1::{self as mission, mission_service_client::MissionServiceClient};
use api::game::mypage::v1::{self as mypage, my_page_service_client::MyPageServiceClient};
use api::game::wallet::v1::{self as wallet, wallet_service_client::WalletServiceClient};
use bytes::Bytes;
use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};

use crate::Outcome;
use crate::catalogue::Catalogue;
use crate::grpc::{Target, outcome};

/// One kind of call.
#[derive(Debug, Clone)]
pub enum Method {
    /// `grpc.health.v1.Health/Check` for `service` ("" for the server).
    Health { service: String },
    /// `MissionService/AchieveMission`, a new mission each call.
    Achieve { prefix: String, catalogue: Catalogue },
    /// `MissionService/ListMissionDefinitions`.
    Definitions,
    /// `MyPageService/GetMyPage` of one player.
    MyPage { customer: String },
    /// `WalletService/GetWallet` of one player.
    Wallet { customer: String },
    /// Any unary method, with its request encoded beforehand.
    Raw { path: String, body: Bytes },
}

impl Method {
    /// Makes call `i`.
    pub async fn call(&self, target: &Target, i: u64) -> Outcome {
        let channel = target.channel(i);
        match self {
            Self::Health { service } => {
                let request = target.request(HealthCheckRequest { service: service.clone() });
                outcome(HealthClient::new(channel).check(request).await)
            }
            Self::Achieve { prefix, catalogue } => {
                let request = target.request(catalogue.achieve_request(prefix, i));
                outcome(MissionServiceClient::new(channel).achieve_mission(request).await)
            }
            Self::Definitions => {
                let request = target.request(mission::ListMissionDefinitionsRequest {});
                outcome(MissionServiceClient::new(channel).list_mission_definitions(request).await)
            }
            Self::MyPage { customer } => {
                let request = target.request(mypage::GetMyPageRequest { customer_id: customer.clone() });
                outcome(MyPageServiceClient::new(channel).get_my_page(request).await)
            }
            Self::Wallet { customer } => {
                let request = target.request(wallet::GetWalletRequest { customer_id: customer.clone() });
                outcome(WalletServiceClient::new(channel).get_wallet(request).await)
            }
            Self::Raw { path, body } => outcome(target.raw_unary(i, path, body.clone()).await),
        }
    }
}
