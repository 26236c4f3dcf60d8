//! The gRPC adapter: requests parsed into domain values, use cases called,
//! results and errors mapped to the contract of `game.gift.v1`.

use api::game::gift::v1::{self as pb, gift_service_server::GiftService};
use kernel::{CustomerId, Points};
use platform::auth::Role;
use platform::caller::{caller, has_caller, require_reader};
use platform::events::timestamp;
use platform::grpc::{field, invalid, store_failure};
use tonic::{Request, Response, Status};

use crate::adapters::vendor::Vendor;
use crate::app::{GiftError, Gifts};
use crate::domain::catalogue::CatalogueRefused;
use crate::domain::{
    Exchange, ExchangeId, ExchangeRefused, GiftOrder, GiftOrderId, GiftOrderStatus, IdempotencyKey, MissionId, Payer,
    Product, ProductSku, RewardId,
};
use crate::ports::GiftStore;

/// Serves `game.gift.v1.GiftService`.
#[derive(Debug, Clone)]
pub struct GiftGrpc<S> {
    gifts: Gifts<S>,
    /// Capacity and simulated behaviour of the vendor, around `Exchange` only.
    vendor: Vendor,
}

impl<S> GiftGrpc<S> {
    /// The adapter over the use cases, behaving as `vendor` says.
    pub fn new(gifts: Gifts<S>, vendor: Vendor) -> Self {
        Self { gifts, vendor }
    }
}

impl From<GiftError> for Status {
    fn from(error: GiftError) -> Self {
        match error {
            GiftError::UnknownProduct(_) | GiftError::OrderNotFound(_) | GiftError::UnknownEvent(_) => {
                Status::not_found(error.to_string())
            }
            // Retrying a reused key would be wrong: it names another exchange.
            GiftError::Refused(refused @ ExchangeRefused::KeyReused { .. }) => {
                Status::already_exists(refused.to_string())
            }
            GiftError::Refused(
                refused @ (ExchangeRefused::NotEnoughPoints { .. }
                | ExchangeRefused::OutOfStock { .. }
                | ExchangeRefused::EventNotOpenYet { .. }
                | ExchangeRefused::EventEnded { .. }
                | ExchangeRefused::RewardAlreadyExchanged { .. }),
            ) => Status::failed_precondition(refused.to_string()),
            GiftError::Catalogue(
                refused @ (CatalogueRefused::ListedOtherwise { .. } | CatalogueRefused::RestockKeyReused { .. }),
            ) => Status::already_exists(refused.to_string()),
            GiftError::Catalogue(refused @ (CatalogueRefused::EventEnded { .. } | CatalogueRefused::StockFull(_))) => {
                Status::failed_precondition(refused.to_string())
            }
            GiftError::Storage(error) => store_failure(&error),
        }
    }
}

/// Why `Exchange` refuses an end-user.
pub const INTERNAL_EXCHANGE: &str =
    "Exchange is called by the wallet service only; exchange a reward with game.wallet.v1.WalletService/ExchangeReward";

/// Parses an Exchange request, field by field in the contract's order.
fn exchange_of(request: &pb::ExchangeRequest) -> Result<Exchange, Status> {
    let key = IdempotencyKey::parse(&request.idempotency_key).map_err(|e| invalid("idempotency_key", e))?;
    let customer_id = field("customer_id", &request.customer_id, CustomerId::parse)?;
    // One payer: a wallet exchange, or (the wallet's older calls) one reward.
    let payer = if request.exchange_id.is_empty() {
        Payer::Reward(field("reward_id", &request.reward_id, RewardId::parse)?)
    } else if request.reward_id.is_empty() {
        Payer::Exchange(field("exchange_id", &request.exchange_id, ExchangeId::parse)?)
    } else {
        return Err(invalid("reward_id", "must be empty when exchange_id is set"));
    };
    let mission_id = field("mission_id", &request.mission_id, MissionId::parse)?;
    let sku = ProductSku::parse(&request.product_sku).map_err(|e| invalid("product_sku", e))?;
    // A reward is always worth something; zero or less is a broken caller.
    let points = Points::new(request.points)
        .ok()
        .filter(|p| p.value() > 0)
        .ok_or_else(|| invalid("points", format!("must be greater than 0, got {}", request.points)))?;
    Ok(Exchange { key, customer_id, payer, mission_id, sku, points })
}

fn order_to_pb(order: GiftOrder) -> pb::GiftOrder {
    pb::GiftOrder {
        order_id: order.id.to_string(),
        customer_id: order.customer_id.to_string(),
        reward_id: order.payer.reward().map(|id| id.to_string()).unwrap_or_default(),
        product_sku: order.product_sku.to_string(),
        status: match order.status {
            GiftOrderStatus::Placed => pb::GiftOrderStatus::Placed,
            GiftOrderStatus::Cancelled => pb::GiftOrderStatus::Cancelled,
        }
        .into(),
        idempotency_key: order.idempotency_key.to_string(),
        points: order.points.value(),
        placed_at: Some(timestamp(order.placed_at)),
        cancelled_at: order.cancellation.as_ref().map(|c| timestamp(c.cancelled_at)),
        cancel_reason: order.cancellation.map(|c| c.reason).unwrap_or_default(),
        exchange_id: order.payer.exchange().map(|id| id.to_string()).unwrap_or_default(),
    }
}

fn product_to_pb(product: Product) -> pb::Product {
    pb::Product {
        sku: product.sku.to_string(),
        name: product.name,
        price_points: product.price.value(),
        stock: i64::from(product.stock),
    }
}

#[tonic::async_trait]
impl<S: GiftStore> GiftService for GiftGrpc<S> {
    async fn list_products(
        &self,
        request: Request<pb::ListProductsRequest>,
    ) -> Result<Response<pb::ListProductsResponse>, Status> {
        // Players see what is on sale now; operators, the whole catalogue.
        let products = if caller(&request)?.has(Role::Operator) {
            self.gifts.catalogue().await?
        } else {
            self.gifts.products().await?
        };
        Ok(Response::new(pb::ListProductsResponse { products: products.into_iter().map(product_to_pb).collect() }))
    }

    async fn exchange(&self, request: Request<pb::ExchangeRequest>) -> Result<Response<pb::ExchangeResponse>, Status> {
        // The wallet's own call, made with no end-user token (also from its
        // re-driver). A player's or operator's token means the call came
        // from outside, past an edge that should have stopped it: players
        // exchange through WalletService/ExchangeReward, which reserves the
        // wallet entry first.
        if has_caller(&request) {
            return Err(Status::permission_denied(INTERNAL_EXCHANGE));
        }
        let exchange = exchange_of(request.get_ref())?;
        let _place = self.vendor.admit()?;
        self.vendor.before_exchange().await?;
        let order = self.gifts.exchange_as_vendor_plans(exchange, self.vendor.cancellation_plan()).await?;
        self.vendor.after_commit().await;
        Ok(Response::new(pb::ExchangeResponse { order: Some(order_to_pb(order)) }))
    }

    async fn get_order(&self, request: Request<pb::GetOrderRequest>) -> Result<Response<pb::GetOrderResponse>, Status> {
        let caller = caller(&request)?;
        let id = field("order_id", &request.get_ref().order_id, GiftOrderId::parse)?;
        let order = self.gifts.order(id).await?;
        require_reader(&caller, &order.customer_id)?;
        Ok(Response::new(pb::GetOrderResponse { order: Some(order_to_pb(order)) }))
    }
}
