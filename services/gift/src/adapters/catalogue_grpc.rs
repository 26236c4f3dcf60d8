//! The operators' gRPC adapter: `game.gift.admin.v1.CatalogueService`.
//! Every call needs the operator role; requests are parsed into domain
//! values, the use cases called, results mapped to the contract.

use std::num::NonZeroU32;

use api::game::gift::admin::v1::{self as pb, catalogue_service_server::CatalogueService};
use kernel::programme::{Operator, ProgrammeEventId, Title};
use kernel::{Currency, Points, ProductSku};
use platform::caller::{caller, require_operator};
use platform::grpc::invalid;
use tonic::{Request, Response, Status};

use crate::adapters::events::catalogue_product;
use crate::app::Gifts;
use crate::domain::IdempotencyKey;
use crate::domain::catalogue::Listing;
use crate::ports::GiftStore;

/// Serves `game.gift.admin.v1.CatalogueService`.
#[derive(Debug, Clone)]
pub struct CatalogueGrpc<S> {
    gifts: Gifts<S>,
}

impl<S> CatalogueGrpc<S> {
    /// The adapter over the use cases.
    pub fn new(gifts: Gifts<S>) -> Self {
        Self { gifts }
    }
}

/// The operator calling, refused unless the token grants the operator role.
fn operator<T>(request: &Request<T>) -> Result<Operator, Status> {
    let caller = caller(request)?;
    require_operator(&caller)?;
    Ok(Operator::new(caller.subject))
}

fn sku(value: &str) -> Result<ProductSku, Status> {
    ProductSku::parse(value).map_err(|e| invalid("sku", e))
}

/// Parses a ListProduct request, field by field in the contract's order.
fn listing(request: &pb::ListProductRequest) -> Result<Listing, Status> {
    let sku = sku(&request.sku)?;
    let name = Title::parse(&request.name).map_err(|e| invalid("name", e))?;
    let price = Points::new(request.price_points)
        .ok()
        .filter(|p| p.value() > 0)
        .ok_or_else(|| invalid("price_points", "must be above zero"))?;
    let stock =
        u32::try_from(request.stock).map_err(|_| invalid("stock", format!("must be from 0 to {}", u32::MAX)))?;
    if request.vendor_cost < 0 {
        return Err(invalid("vendor_cost", "must not be negative"));
    }
    let currency = Currency::parse(&request.currency).map_err(|e| invalid("currency", e))?;
    let event_id =
        ProgrammeEventId::parse(&request.programme_event_id).map_err(|e| invalid("programme_event_id", e))?;
    Ok(Listing { sku, name, price, stock, vendor_cost: request.vendor_cost, currency, event_id })
}

#[tonic::async_trait]
impl<S: GiftStore> CatalogueService for CatalogueGrpc<S> {
    async fn list_product(
        &self,
        request: Request<pb::ListProductRequest>,
    ) -> Result<Response<pb::ListProductResponse>, Status> {
        let operator = operator(&request)?;
        let listing = listing(request.get_ref())?;
        let product = self.gifts.list_product(operator, listing).await?;
        Ok(Response::new(pb::ListProductResponse { product: Some(catalogue_product(&product)) }))
    }

    async fn restock_product(
        &self,
        request: Request<pb::RestockProductRequest>,
    ) -> Result<Response<pb::RestockProductResponse>, Status> {
        let operator = operator(&request)?;
        let request = request.into_inner();
        let sku = sku(&request.sku)?;
        let units = u32::try_from(request.units)
            .ok()
            .and_then(NonZeroU32::new)
            .ok_or_else(|| invalid("units", format!("must be from 1 to {}", u32::MAX)))?;
        // proto3 sends an absent key as empty: a restock without one.
        let key = Some(request.idempotency_key.as_str())
            .filter(|key| !key.is_empty())
            .map(IdempotencyKey::parse)
            .transpose()
            .map_err(|e| invalid("idempotency_key", e))?;
        let product = self.gifts.restock(operator, sku, units, key).await?;
        Ok(Response::new(pb::RestockProductResponse { product: Some(catalogue_product(&product)) }))
    }

    async fn list_catalogue(
        &self,
        request: Request<pb::ListCatalogueRequest>,
    ) -> Result<Response<pb::ListCatalogueResponse>, Status> {
        operator(&request)?;
        let products = self.gifts.catalogue().await?;
        Ok(Response::new(pb::ListCatalogueResponse { products: products.iter().map(catalogue_product).collect() }))
    }
}
