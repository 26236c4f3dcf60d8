//! The gift use cases: each runs the domain inside one store transaction
//! and stages the events it produced in the outbox of that transaction.

use api::game::gift::v1 as pb;
use platform::db::{Database, DbConnection, DbError, now_millis};
use platform::events::timestamp;
use platform::outbox::{self, OutboxSignal};
use platform::store::{StoreError, StoreFailure, retry_on_conflict};
use tracing::instrument;

use crate::adapters::store;
use crate::domain::{Currency, Exchange, ExchangeRefused, GiftEvent, GiftOrder, GiftOrderId, Product, ProductSku};

/// What a gift use case can answer besides success.
#[derive(Debug, thiserror::Error)]
pub enum GiftError {
    #[error("product {0} does not exist")]
    UnknownProduct(ProductSku),
    #[error("gift order {0} does not exist")]
    OrderNotFound(GiftOrderId),
    #[error(transparent)]
    Refused(#[from] ExchangeRefused),
    #[error(transparent)]
    Storage(#[from] StoreError),
}

impl From<DbError> for GiftError {
    fn from(error: DbError) -> Self {
        Self::Storage(error.into())
    }
}

impl From<diesel::result::Error> for GiftError {
    fn from(error: diesel::result::Error) -> Self {
        DbError::from(error).into()
    }
}

impl StoreFailure for GiftError {
    fn store_error(&self) -> Option<&StoreError> {
        match self {
            Self::Storage(error) => Some(error),
            _ => None,
        }
    }
}

/// What one exchange transaction did.
enum Exchanged {
    /// A new order was placed and its GiftExchanged staged.
    Placed(GiftOrder),
    /// An order placed before answers this exchange; nothing changed.
    Replayed(GiftOrder),
}

/// The gift application service.
#[derive(Debug, Clone)]
pub struct Gifts {
    db: Database,
    outbox: OutboxSignal,
}

impl Gifts {
    /// Use cases over `db`, waking the relay through `outbox`.
    pub fn new(db: Database, outbox: OutboxSignal) -> Self {
        Self { db, outbox }
    }

    /// The catalogue with current stock, in display order.
    ///
    /// # Errors
    /// When the store fails.
    pub async fn products(&self) -> Result<Vec<Product>, GiftError> {
        Ok(self.db.read(store::products).await?)
    }

    /// Exchanges a reward's points for one unit of a product.
    ///
    /// Idempotent per idempotency key: a repeated call returns the order of
    /// the first and publishes nothing more. A reward pays for at most one
    /// order: asking again under another key for the same product returns
    /// that order too.
    ///
    /// # Errors
    /// [`GiftError::UnknownProduct`], [`GiftError::Refused`] (nothing was
    /// reserved), or a store failure.
    #[instrument(
        skip_all,
        fields(
            idempotency_key = %exchange.key,
            customer_id = %exchange.customer_id,
            reward_id = %exchange.reward_id,
            mission_id = %exchange.mission_id,
            product_sku = %exchange.sku,
        ),
        err(level = "info")
    )]
    pub async fn exchange(&self, exchange: Exchange) -> Result<GiftOrder, GiftError> {
        // A concurrent exchange with the same key or reward committed its
        // order between our reads and our insert (a duplicate), or took a unit
        // of the product since we read it (a conflict, which PostgreSQL
        // reports; SQLite serialises writers): deciding again takes the replay
        // path, or decides on the stock it left.
        let exchanged = retry_on_conflict(|| {
            let command = exchange.clone();
            self.db.write(move |conn| exchange_in(conn, &command, now_millis()))
        })
        .await?;
        match exchanged {
            Exchanged::Placed(order) => {
                self.outbox.wake();
                tracing::info!(order_id = %order.id, "gift order placed");
                Ok(order)
            }
            Exchanged::Replayed(order) => {
                tracing::debug!(order_id = %order.id, "exchange answered by an existing order");
                Ok(order)
            }
        }
    }

    /// One gift order by id.
    ///
    /// # Errors
    /// [`GiftError::OrderNotFound`], or a store failure.
    pub async fn order(&self, id: GiftOrderId) -> Result<GiftOrder, GiftError> {
        self.db.read(move |conn| store::find_order(conn, id)?.ok_or(GiftError::OrderNotFound(id))).await
    }
}

/// One exchange, decided and applied in the caller's transaction: an order
/// under the same key answers first, then an order of the same reward, and
/// only then is a unit reserved and a new order placed.
fn exchange_in(conn: &mut DbConnection, exchange: &Exchange, now: i64) -> Result<Exchanged, GiftError> {
    if let Some(order) = store::find_order_by_key(conn, &exchange.key)? {
        order.replay_for_key(exchange)?;
        return Ok(Exchanged::Replayed(order));
    }
    if let Some(order) = store::find_order_by_reward(conn, exchange.reward_id)? {
        order.replay_for_reward(exchange)?;
        return Ok(Exchanged::Replayed(order));
    }
    let mut product =
        store::product(conn, &exchange.sku)?.ok_or_else(|| GiftError::UnknownProduct(exchange.sku.clone()))?;
    let (order, event) = product.exchange(exchange, now)?;
    store::update_stock(conn, &product)?;
    store::insert_order(conn, &order)?;
    let GiftEvent::Exchanged { order: placed, vendor_cost, currency } = event;
    outbox::stage(conn, &gift_exchanged(&placed, vendor_cost, &currency))?;
    Ok(Exchanged::Placed(order))
}

/// The published form of GiftExchanged.
fn gift_exchanged(order: &GiftOrder, vendor_cost: i64, currency: &Currency) -> pb::GiftExchanged {
    pb::GiftExchanged {
        // Derived from the order id (itself derived from the key), so a
        // re-staged copy could never be a second, different event.
        event_id: kernel::derived_uuid(order.id.as_uuid(), b"GiftExchanged").to_string(),
        order_id: order.id.to_string(),
        customer_id: order.customer_id.to_string(),
        reward_id: order.reward_id.to_string(),
        mission_id: order.mission_id.to_string(),
        product_sku: order.product_sku.to_string(),
        points: order.points.value(),
        vendor_cost,
        currency: currency.to_string(),
        placed_at: Some(timestamp(order.placed_at)),
    }
}
