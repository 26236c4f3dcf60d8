//! The gRPC adapter: requests parsed into domain values, use cases called,
//! results and errors mapped to the contract of `game.wallet.v1`.

use std::time::Duration;

use api::game::wallet::v1::{self as pb, wallet_service_server::WalletService};
use kernel::CustomerId;
use platform::caller::{caller, require_player, require_reader};
use platform::events::timestamp;
use platform::grpc::{deadline_of, field, invalid, store_failure};
use platform::resilience::RETRY_AFTER_MS;
use tonic::{Request, Response, Status};

use crate::app::{WalletError, Wallets};
use crate::domain::{EntryId, EntryStatus, ExchangeRefused, ProductSku, WalletEntry};
use crate::ports::{GiftExchange, GiftRefusal, WalletStore};

/// Serves `game.wallet.v1.WalletService`.
#[derive(Debug, Clone)]
pub struct WalletGrpc<S, G> {
    wallets: Wallets<S, G>,
}

impl<S, G> WalletGrpc<S, G> {
    /// The adapter over the use cases.
    pub fn new(wallets: Wallets<S, G>) -> Self {
        Self { wallets }
    }
}

/// The player-facing answer when gift cannot take the exchange now.
pub const GIFT_BUSY: &str = "the gift exchange is busy; your reward is unchanged, try again later";

/// The fallback: the player is turned away at once, told why, and told
/// when to come back (`retry-after-ms`, from the circuit breaker when open).
fn busy(retry_after: Option<Duration>) -> Status {
    let mut status = Status::unavailable(GIFT_BUSY);
    let after = retry_after.unwrap_or(Duration::from_secs(1)).max(Duration::from_millis(100));
    if let Ok(value) = after.as_millis().to_string().parse() {
        status.metadata_mut().insert(RETRY_AFTER_MS, value);
    }
    status
}

impl From<WalletError> for Status {
    fn from(error: WalletError) -> Self {
        match error {
            WalletError::EntryNotFound(id) => Status::not_found(format!("wallet entry {id} does not exist")),
            WalletError::Refused(refused @ ExchangeRefused::NotYours { .. }) => {
                Status::permission_denied(refused.to_string())
            }
            WalletError::Refused(refused) => Status::failed_precondition(refused.to_string()),
            WalletError::Gift(GiftRefusal::UnknownProduct(message)) => Status::not_found(message),
            WalletError::Gift(GiftRefusal::Rejected(message)) => Status::failed_precondition(message),
            WalletError::Gift(GiftRefusal::Invalid(message)) => Status::invalid_argument(message),
            WalletError::Gift(GiftRefusal::Busy { retry_after, .. }) => busy(retry_after),
            WalletError::Unsettled(id) => Status::unavailable(format!(
                "the gift exchange did not confirm in time; wallet entry {id} stays pending and will be \
                 completed or released shortly"
            )),
            WalletError::Storage(error) => store_failure(&error),
        }
    }
}

fn to_pb(entry: WalletEntry) -> pb::WalletEntry {
    let (remaining_points, expired_points) = match entry.status {
        EntryStatus::Available => (entry.points.value(), 0),
        EntryStatus::Expired { .. } => (0, entry.points.value()),
        EntryStatus::ExchangePending { .. } | EntryStatus::Exchanged { .. } => (0, 0),
    };
    let (status, product_sku, gift_order_id) = match entry.status {
        EntryStatus::Available => (pb::WalletEntryStatus::Available, String::new(), String::new()),
        EntryStatus::ExchangePending { product, .. } => {
            (pb::WalletEntryStatus::ExchangePending, product.to_string(), String::new())
        }
        EntryStatus::Exchanged { product, gift_order_id, .. } => {
            (pb::WalletEntryStatus::Exchanged, product.to_string(), gift_order_id)
        }
        EntryStatus::Expired { .. } => (pb::WalletEntryStatus::Expired, String::new(), String::new()),
    };
    pb::WalletEntry {
        entry_id: entry.id.to_string(),
        reward_id: entry.reward_id.to_string(),
        mission_id: entry.mission_id.to_string(),
        points: entry.points.value(),
        status: status.into(),
        gift_order_id,
        product_sku,
        issued_at: Some(timestamp(entry.issued_at)),
        expires_at: entry.expires_at.map(timestamp),
        remaining_points,
        expired_points,
    }
}

#[tonic::async_trait]
impl<S: WalletStore, G: GiftExchange> WalletService for WalletGrpc<S, G> {
    async fn get_wallet(
        &self,
        request: Request<pb::GetWalletRequest>,
    ) -> Result<Response<pb::GetWalletResponse>, Status> {
        let caller = caller(&request)?;
        let customer = field("customer_id", &request.get_ref().customer_id, CustomerId::parse)?;
        require_reader(&caller, &customer)?;
        let entries = self.wallets.wallet(customer.clone()).await?;
        let now = platform::db::now_millis();
        let mut wallet = pb::Wallet { customer_id: customer.to_string(), ..Default::default() };
        for entry in entries {
            let points = entry.points.value();
            wallet.earned += points;
            match &entry.status {
                EntryStatus::Available if entry.is_due(now) => wallet.expired += points,
                EntryStatus::Available => wallet.balance += points,
                EntryStatus::ExchangePending { .. } => wallet.reserved += points,
                EntryStatus::Exchanged { .. } => wallet.spent += points,
                EntryStatus::Expired { .. } => wallet.expired += points,
            }
            wallet.entries.push(to_pb(entry));
        }
        Ok(Response::new(pb::GetWalletResponse { wallet: Some(wallet) }))
    }

    async fn exchange(&self, _request: Request<pb::ExchangeRequest>) -> Result<Response<pb::ExchangeResponse>, Status> {
        Err(Status::unimplemented("WalletService.Exchange is not served yet; use ExchangeReward"))
    }

    async fn exchange_reward(
        &self,
        request: Request<pb::ExchangeRewardRequest>,
    ) -> Result<Response<pb::ExchangeRewardResponse>, Status> {
        // What is left of the player's deadline bounds the call to gift too.
        let deadline = deadline_of(&request);
        let caller = caller(&request)?;
        let request = request.into_inner();
        let customer = field("customer_id", &request.customer_id, CustomerId::parse)?;
        let entry_id = field("entry_id", &request.entry_id, EntryId::parse)?;
        let product = ProductSku::parse(&request.product_sku).map_err(|e| invalid("product_sku", e))?;
        // Before anything is reserved: a refused exchange changes nothing.
        require_player(&caller, &customer)?;
        let entry = self.wallets.exchange(customer, entry_id, product, deadline).await?;
        Ok(Response::new(pb::ExchangeRewardResponse { entry: Some(to_pb(entry)) }))
    }
}
