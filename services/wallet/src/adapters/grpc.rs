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

use crate::adapters::events;
use crate::app::{WalletError, Wallets};
use crate::domain::{
    EntryId, Exchange, ExchangeRefused, ExchangeStatus, IdempotencyKey, ProductSku, Standing, WalletEntry,
};
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
            WalletError::UnknownProduct(_) => Status::not_found(error.to_string()),
            WalletError::Refused(refused @ ExchangeRefused::KeyReused { .. }) => {
                Status::already_exists(refused.to_string())
            }
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
            WalletError::ExchangeUnsettled(id) => Status::unavailable(format!(
                "the gift exchange did not confirm in time; exchange {id} stays pending and will be completed or \
                 released shortly (asking again with the same idempotency_key tells how it ended)"
            )),
            WalletError::Storage(error) => store_failure(&error),
        }
    }
}

fn to_pb(entry: WalletEntry) -> pb::WalletEntry {
    let standing = entry.standing();
    let status = match standing {
        Standing::Available => pb::WalletEntryStatus::Available,
        Standing::ExchangePending => pb::WalletEntryStatus::ExchangePending,
        Standing::Exchanged => pb::WalletEntryStatus::Exchanged,
        Standing::Expired => pb::WalletEntryStatus::Expired,
    };
    // As before for clients that know one reward as one exchange: the
    // product while pending or once exchanged, the order once exchanged.
    let product_sku = match standing {
        Standing::ExchangePending | Standing::Exchanged => entry.product.map(|p| p.to_string()).unwrap_or_default(),
        Standing::Available | Standing::Expired => String::new(),
    };
    let gift_order_id = match standing {
        Standing::Exchanged => entry.gift_order_id.unwrap_or_default(),
        Standing::Available | Standing::ExchangePending | Standing::Expired => String::new(),
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
        remaining_points: entry.remaining,
        expired_points: entry.expired,
    }
}

/// The exchange as `GetWallet` shows it.
fn exchange_to_pb(exchange: &Exchange) -> pb::Exchange {
    let (status, gift_order_id, placed_at, refunded_at, cancel_reason, failure_reason) = match &exchange.status {
        ExchangeStatus::Pending => (pb::ExchangeStatus::Pending, "", None, None, "", ""),
        ExchangeStatus::Placed { gift_order_id, at } => {
            (pb::ExchangeStatus::Placed, gift_order_id.as_str(), Some(*at), None, "", "")
        }
        ExchangeStatus::Released { reason, .. } => (pb::ExchangeStatus::Released, "", None, None, "", reason.as_str()),
        ExchangeStatus::Refunded { gift_order_id, placed_at, reason, at } => {
            (pb::ExchangeStatus::Refunded, gift_order_id.as_str(), Some(*placed_at), Some(*at), reason.as_str(), "")
        }
    };
    pb::Exchange {
        exchange_id: exchange.id.to_string(),
        customer_id: exchange.customer_id.to_string(),
        product_sku: exchange.product.to_string(),
        price_points: exchange.price.value(),
        status: status.into(),
        gift_order_id: gift_order_id.to_owned(),
        reservations: events::reservations(exchange),
        requested_at: Some(timestamp(exchange.requested_at)),
        placed_at: placed_at.map(timestamp),
        refunded_at: refunded_at.map(timestamp),
        cancel_reason: cancel_reason.to_owned(),
        failure_reason: failure_reason.to_owned(),
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
        let view = self.wallets.wallet(customer.clone(), platform::db::now_millis()).await?;
        let totals = view.totals;
        Ok(Response::new(pb::GetWalletResponse {
            wallet: Some(pb::Wallet {
                customer_id: customer.to_string(),
                entries: view.entries.into_iter().map(to_pb).collect(),
                balance: totals.balance,
                reserved: totals.reserved,
                earned: totals.earned,
                spent: totals.spent,
                expired: totals.expired,
                refunded: totals.refunded,
                exchanges: view.exchanges.iter().map(exchange_to_pb).collect(),
            }),
        }))
    }

    async fn exchange(&self, request: Request<pb::ExchangeRequest>) -> Result<Response<pb::ExchangeResponse>, Status> {
        // What is left of the player's deadline bounds the call to gift too.
        let deadline = deadline_of(&request);
        let caller = caller(&request)?;
        let request = request.into_inner();
        let customer = field("customer_id", &request.customer_id, CustomerId::parse)?;
        let product = ProductSku::parse(&request.product_sku).map_err(|e| invalid("product_sku", e))?;
        let key = IdempotencyKey::parse(&request.idempotency_key).map_err(|e| invalid("idempotency_key", e))?;
        // Before anything is reserved: a refused exchange changes nothing.
        require_player(&caller, &customer)?;
        let exchange = self.wallets.exchange(customer, product, key, deadline).await?;
        Ok(Response::new(pb::ExchangeResponse { exchange: Some(exchange_to_pb(&exchange)) }))
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
        let entry = self.wallets.exchange_reward(customer, entry_id, product, deadline).await?;
        Ok(Response::new(pb::ExchangeRewardResponse { entry: Some(to_pb(entry)) }))
    }
}
