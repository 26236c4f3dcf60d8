//! The calls the `loadgen` binary can make: health checks (the echo), the
//! player's commands and queries, and any unary method given as a path and
//! an encoded body.

use api::game::mission::v1::{self as mission, mission_service_client::MissionServiceClient};
use api::game::mypage::v1::{self as mypage, my_page_service_client::MyPageServiceClient};
use api::game::wallet::v1::{self as wallet, wallet_service_client::WalletServiceClient};
use bytes::Bytes;
use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};

use crate::Outcome;
use crate::grpc::{Target, outcome};

/// The mission codes of the catalogue; a player achieves each once.
pub const MISSION_CODES: [&str; 5] = ["FIRST_LOGIN", "FIRST_WIN", "INVITE_FRIEND", "WEEKLY_QUEST", "EVENT_CHAMPION"];

/// The `i`-th first achievement of a run: players `<prefix>-0`, `<prefix>-1`,
/// … each achieve every mission code once, so every call is a new mission.
pub fn achieve_request(prefix: &str, i: u64) -> mission::AchieveMissionRequest {
    let codes = MISSION_CODES.len() as u64;
    let code = MISSION_CODES[usize::try_from(i % codes).unwrap_or_default()];
    mission::AchieveMissionRequest {
        customer_id: format!("{prefix}-{}", i / codes),
        mission_code: code.to_owned(),
        achievement_id: None,
    }
}

/// One kind of call.
#[derive(Debug, Clone)]
pub enum Method {
    /// `grpc.health.v1.Health/Check` for `service` ("" for the server).
    Health { service: String },
    /// `MissionService/AchieveMission`, a new mission each call.
    Achieve { prefix: String },
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
    /// The names `--method` takes.
    pub const NAMES: [&'static str; 6] = ["health", "achieve", "definitions", "mypage", "wallet", "raw"];

    /// Makes call `i`.
    pub async fn call(&self, target: &Target, i: u64) -> Outcome {
        let channel = target.channel(i);
        match self {
            Self::Health { service } => {
                let request = target.request(HealthCheckRequest { service: service.clone() });
                outcome(HealthClient::new(channel).check(request).await)
            }
            Self::Achieve { prefix } => {
                let request = target.request(achieve_request(prefix, i));
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_player_achieves_every_code_once() {
        let requests: Vec<(String, String)> =
            (0..7).map(|i| achieve_request("p", i)).map(|r| (r.customer_id, r.mission_code)).collect();
        assert_eq!(requests[0], ("p-0".into(), "FIRST_LOGIN".into()));
        assert_eq!(requests[4], ("p-0".into(), "EVENT_CHAMPION".into()));
        assert_eq!(requests[5], ("p-1".into(), "FIRST_LOGIN".into()));
        let mut unique = requests.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), requests.len());
    }
}
