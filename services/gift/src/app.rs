//! The gift use cases: each runs the domain inside one transaction of the
//! store port and stages the events it produced in that transaction. They
//! speak domain types only, through [`crate::ports`].

use std::sync::Arc;

use kernel::{StoreError, StoreFailure};
use platform::db::now_millis;
use platform::store::retry_on_conflict;
use tracing::instrument;

use crate::domain::{Exchange, ExchangeRefused, GiftOrder, GiftOrderId, Product, ProductSku};
use crate::ports::{GiftStore, GiftTx};

#[cfg(test)]
mod tests;

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

/// The gift application service, over a store `S`.
#[derive(Debug)]
pub struct Gifts<S> {
    store: Arc<S>,
}

impl<S> Clone for Gifts<S> {
    fn clone(&self) -> Self {
        Self { store: Arc::clone(&self.store) }
    }
}

impl<S: GiftStore> Gifts<S> {
    /// Use cases over `store`.
    pub fn new(store: S) -> Self {
        Self { store: Arc::new(store) }
    }

    /// The catalogue with current stock, in display order.
    ///
    /// # Errors
    /// When the store fails.
    pub async fn products(&self) -> Result<Vec<Product>, GiftError> {
        Ok(self.store.products().await?)
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
            self.store.write(move |tx| exchange_in(tx, &command, now_millis()))
        })
        .await?;
        match exchanged {
            Exchanged::Placed(order) => {
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
        self.store.order(id).await?.ok_or(GiftError::OrderNotFound(id))
    }
}

/// One exchange, decided and applied in the caller's transaction: an order
/// under the same key answers first, then an order of the same reward, and
/// only then is a unit reserved and a new order placed.
fn exchange_in(tx: &mut dyn GiftTx, exchange: &Exchange, now: i64) -> Result<Exchanged, GiftError> {
    if let Some(order) = tx.order_by_key(&exchange.key)? {
        order.replay_for_key(exchange)?;
        return Ok(Exchanged::Replayed(order));
    }
    if let Some(order) = tx.order_by_reward(exchange.reward_id)? {
        order.replay_for_reward(exchange)?;
        return Ok(Exchanged::Replayed(order));
    }
    let mut product = tx.product(&exchange.sku)?.ok_or_else(|| GiftError::UnknownProduct(exchange.sku.clone()))?;
    let (order, event) = product.exchange(exchange, now)?;
    tx.update_stock(&product)?;
    tx.insert_order(&order)?;
    tx.stage(&event)?;
    Ok(Exchanged::Placed(order))
}
