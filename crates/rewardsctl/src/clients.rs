//! Clients of the gateway shared by the tools that drive the system as its
//! players do (chaos, overload): generated stubs, and the retry rule of a
//! patient player.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use api::game::gift::admin::v1::catalogue_service_client::CatalogueServiceClient;
use api::game::mission::v1::mission_service_client::MissionServiceClient;
use api::game::mypage::v1::my_page_service_client::MyPageServiceClient;
use api::game::programme::v1::programme_service_client::ProgrammeServiceClient;
use api::game::reward::v1::reward_service_client::RewardServiceClient;
use api::game::wallet::v1::wallet_service_client::WalletServiceClient;
use dev_issuer::{DevIssuer, authorized};
use loadgen::Catalogue;
use tonic::transport::{Channel, Endpoint};
use tonic::{Code, Status};

/// How long one call may take before the client gives up on it and retries.
const CALL_DEADLINE: Duration = Duration::from_secs(10);

/// Every client the test needs, over one lazily (re)connected channel to the
/// gateway: when the gateway is killed, calls fail until it is back.
#[derive(Debug, Clone)]
pub struct Clients {
    pub missions: MissionServiceClient<Channel>,
    pub rewards: RewardServiceClient<Channel>,
    pub wallets: WalletServiceClient<Channel>,
    pub pages: MyPageServiceClient<Channel>,
    /// The operators' programme (events and their missions).
    pub programmes: ProgrammeServiceClient<Channel>,
    /// The operators' gift catalogue.
    pub catalogue: CatalogueServiceClient<Channel>,
    /// Signs each call: a player's own calls with the player's token, the
    /// checks' reads with an operator's.
    identity: DevIssuer,
    /// Failed calls that were retried, by status code.
    retried: Arc<Mutex<BTreeMap<String, u64>>>,
}

impl Clients {
    /// Clients of the gateway at `urls` (comma-separated: calls are
    /// balanced over the gateway's replicas, as a load balancer in front
    /// of them would).
    ///
    /// # Errors
    /// When a URL is invalid.
    pub fn new(urls: &str, identity: DevIssuer) -> anyhow::Result<Self> {
        let endpoints = urls
            .split(',')
            .map(|url| {
                Ok(Endpoint::from_shared(url.to_owned())?
                    .connect_timeout(Duration::from_secs(1))
                    .timeout(CALL_DEADLINE)
                    .tcp_nodelay(true))
            })
            .collect::<anyhow::Result<Vec<Endpoint>>>()?;
        let channel = match endpoints.as_slice() {
            [one] => one.connect_lazy(),
            _ => Channel::balance_list(endpoints.into_iter()),
        };
        Ok(Self {
            missions: MissionServiceClient::new(channel.clone()),
            rewards: RewardServiceClient::new(channel.clone()),
            wallets: WalletServiceClient::new(channel.clone()),
            pages: MyPageServiceClient::new(channel.clone()),
            programmes: ProgrammeServiceClient::new(channel.clone()),
            catalogue: CatalogueServiceClient::new(channel),
            identity,
            retried: Arc::default(),
        })
    }

    /// `message` as a call of the player `customer_id`.
    pub fn as_player<M>(&self, customer_id: &str, message: M) -> tonic::Request<M> {
        authorized(message, &self.identity.player(customer_id))
    }

    /// `message` as a call of an operator, who may read every player's data.
    pub fn as_operator<M>(&self, message: M) -> tonic::Request<M> {
        authorized(message, &self.identity.operator())
    }

    /// The mission catalogue, as the mission service serves it.
    ///
    /// # Errors
    /// When the call fails or the catalogue is empty.
    pub async fn catalogue(&self) -> anyhow::Result<Catalogue> {
        let request = self.as_operator(api::game::mission::v1::ListMissionDefinitionsRequest {});
        Catalogue::fetch(self.missions.clone(), request).await
    }

    /// Counts a failure that will be retried.
    pub fn retrying(&self, status: &Status) {
        let mut retried = self.retried.lock().unwrap_or_else(PoisonError::into_inner);
        *retried.entry(format!("{:?}", status.code())).or_default() += 1;
    }

    /// Failed calls that were retried, by status code.
    pub fn retried(&self) -> BTreeMap<String, u64> {
        self.retried.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }

    /// Calls `call` until it succeeds, retrying failures a retry can fix
    /// (see [`worth_retrying`]) with back-off until `deadline`.
    ///
    /// # Errors
    /// The first failure a retry cannot fix, or the last one at the deadline.
    pub async fn patiently<T, F, Fut>(&self, deadline: Instant, mut call: F) -> Result<T, Status>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, Status>>,
    {
        let mut attempt = 0u32;
        loop {
            attempt = attempt.saturating_add(1);
            match call().await {
                Ok(value) => return Ok(value),
                Err(status) if worth_retrying(&status) && Instant::now() < deadline => {
                    self.retrying(&status);
                    tokio::time::sleep(pause(attempt)).await;
                }
                Err(status) => return Err(status),
            }
        }
    }
}

/// The back-off before retry `attempt`: from about 50 ms up to 1 s.
pub fn pause(attempt: u32) -> Duration {
    platform::backoff(attempt, Duration::from_millis(50), Duration::from_secs(1))
}

/// Whether the failure may go away on a retry: the process or connection
/// was lost (UNAVAILABLE, or what a connection cut mid-call surfaces as),
/// a deadline passed, or the store was busy. A domain answer (NOT_FOUND,
/// FAILED_PRECONDITION, INVALID_ARGUMENT, …) never does.
pub fn worth_retrying(status: &Status) -> bool {
    matches!(
        status.code(),
        Code::Unavailable
            | Code::DeadlineExceeded
            | Code::Cancelled
            | Code::Unknown
            | Code::Aborted
            | Code::ResourceExhausted
            | Code::Internal
    )
}
