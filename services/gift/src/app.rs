//! The gift use cases: each runs the domain inside one transaction of the
//! store port and stages the events it produced in that transaction. They
//! speak domain types only, through [`crate::ports`].

use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use kernel::programme::{Operator, ProgrammeEventId};
use kernel::{StoreError, StoreFailure};
use platform::CancellationToken;
use platform::store::retry_on_conflict;
use tracing::instrument;

use crate::domain::catalogue::{CatalogueChange, CatalogueRefused, Listing, ProgrammeEvent, Restock};
use crate::domain::{
    CancelRefused, CancellationPlan, Exchange, ExchangeRefused, GiftEvent, GiftOrder, GiftOrderId, IdempotencyKey,
    PlannedCancellation, Product, ProductSku, Vendor,
};
use crate::ports::{Clock, GiftStore, GiftTx};

#[cfg(test)]
mod tests;

/// How many due cancellations one round of the vendor's job takes on.
const CANCELLATION_BATCH: usize = 100;

/// What a gift use case can answer besides success.
#[derive(Debug, thiserror::Error)]
pub enum GiftError {
    #[error("product {0} does not exist")]
    UnknownProduct(ProductSku),
    #[error("gift order {0} does not exist")]
    OrderNotFound(GiftOrderId),
    /// Not (yet) learned from the programme: an event scheduled a moment ago
    /// arrives within moments.
    #[error("event {0} is not in the programme gift knows")]
    UnknownEvent(ProgrammeEventId),
    #[error(transparent)]
    Refused(#[from] ExchangeRefused),
    #[error(transparent)]
    Catalogue(#[from] CatalogueRefused),
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
    clock: Arc<dyn Clock>,
    /// Who fulfils and bills the orders placed here, named on each
    /// `GiftExchanged` so that settlement totals what each vendor is owed.
    vendor: Vendor,
}

impl<S> Clone for Gifts<S> {
    fn clone(&self) -> Self {
        Self { store: Arc::clone(&self.store), clock: Arc::clone(&self.clock), vendor: self.vendor.clone() }
    }
}

impl<S: GiftStore> Gifts<S> {
    /// Use cases over `store`, telling the time by `clock`, for the default
    /// vendor ([`Vendor::DEFAULT`]).
    pub fn new(store: S, clock: impl Clock) -> Self {
        Self { store: Arc::new(store), clock: Arc::new(clock), vendor: Vendor::default() }
    }

    /// The same use cases, placing orders `vendor` fulfils.
    #[must_use]
    pub fn for_vendor(self, vendor: Vendor) -> Self {
        Self { vendor, ..self }
    }

    /// The products on sale now, with current stock, in display order: those
    /// of the events open now (players).
    ///
    /// # Errors
    /// When the store fails.
    pub async fn products(&self) -> Result<Vec<Product>, GiftError> {
        let events = self.store.programme_events().await?;
        let open = kernel::programme::open_at(events.iter().map(|event| (&event.id, &event.window)), self.clock.now());
        let mut products = self.store.products().await?;
        products.retain(|product| open.contains(&product.event_id));
        Ok(products)
    }

    /// Every product with current stock, in display order, whether its
    /// event is open or not (operators).
    ///
    /// # Errors
    /// When the store fails.
    pub async fn catalogue(&self) -> Result<Vec<Product>, GiftError> {
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
    pub async fn exchange(&self, exchange: Exchange) -> Result<GiftOrder, GiftError> {
        self.exchange_as_vendor_plans(exchange, None).await
    }

    /// Exchanges as [`Gifts::exchange`] does; when the vendor `plan`s to
    /// cancel the order it places, the plan is kept with the order, in its
    /// transaction (an order answered from before keeps its own fate).
    ///
    /// # Errors
    /// As [`Gifts::exchange`].
    #[instrument(
        skip_all,
        fields(
            idempotency_key = %exchange.key,
            customer_id = %exchange.customer_id,
            payer = %exchange.payer,
            mission_id = %exchange.mission_id,
            product_sku = %exchange.sku,
        ),
        err(level = "info")
    )]
    pub async fn exchange_as_vendor_plans(
        &self,
        exchange: Exchange,
        plan: Option<CancellationPlan>,
    ) -> Result<GiftOrder, GiftError> {
        // A concurrent exchange with the same key or reward committed its
        // order between our reads and our insert (a duplicate), or took a unit
        // of the product since we read it (a conflict, which PostgreSQL
        // reports; SQLite serialises writers): deciding again takes the replay
        // path, or decides on the stock it left.
        let exchanged = retry_on_conflict(|| {
            let (command, plan, clock, vendor) =
                (exchange.clone(), plan.clone(), Arc::clone(&self.clock), self.vendor.clone());
            self.store.write(move |tx| exchange_in(tx, &command, plan, &vendor, clock.now()))
        })
        .await?;
        match exchanged {
            Exchanged::Placed(order) => {
                // Per exchange, so at debug: the GiftExchanged event is the record.
                tracing::debug!(order_id = %order.id, "gift order placed");
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

    /// An operator lists a product in an event that has not ended. Listing
    /// the same product again returns it as it stands and records nothing.
    ///
    /// # Errors
    /// [`GiftError::UnknownEvent`], [`GiftError::Catalogue`] when the event
    /// ended or the sku names another product, or a store failure.
    #[instrument(skip_all, fields(operator = operator.as_str(), product_sku = %listing.sku), err(level = "debug"))]
    pub async fn list_product(&self, operator: Operator, listing: Listing) -> Result<Product, GiftError> {
        retry_on_conflict(|| {
            let (operator, listing, clock) = (operator.clone(), listing.clone(), Arc::clone(&self.clock));
            self.store.write(move |tx| list_in(tx, operator, listing, clock.now()))
        })
        .await
    }

    /// An operator adds `units` to a product's stock. Under an idempotency
    /// `key`, once: the same restock asked again adds nothing and answers
    /// with the product as the first left it; without one, each call adds.
    ///
    /// # Errors
    /// [`GiftError::UnknownProduct`], [`GiftError::Catalogue`] when the stock
    /// cannot count them or the key names another restock, or a store failure.
    #[instrument(skip_all, fields(operator = operator.as_str(), product_sku = %sku, units, idempotency_key = key.as_ref().map(IdempotencyKey::as_str)), err(level = "debug"))]
    pub async fn restock(
        &self,
        operator: Operator,
        sku: ProductSku,
        units: NonZeroU32,
        key: Option<IdempotencyKey>,
    ) -> Result<Product, GiftError> {
        // An exchange took a unit between our read and our write: added
        // again to the stock it left. A concurrent restock under the same
        // key committed first (its product update or its key conflicts):
        // deciding again finds it done.
        retry_on_conflict(|| {
            let (operator, sku, key, clock) = (operator.clone(), sku.clone(), key.clone(), Arc::clone(&self.clock));
            self.store.write(move |tx| restock_in(tx, operator, &sku, units, key, clock.now()))
        })
        .await
    }

    /// Cancels the orders whose planned cancellation is due, each in its own
    /// transaction; returns how many this call cancelled. Replicas may run it
    /// at once: each order is cancelled by one of them, once.
    ///
    /// # Errors
    /// When the store fails to list what is due; a cancellation that fails
    /// is logged and left for the next round.
    pub async fn cancel_due(&self) -> Result<usize, GiftError> {
        let due = self.store.due_cancellations(self.clock.now(), CANCELLATION_BATCH).await?;
        let mut cancelled = 0;
        for planned in due {
            let order_id = planned.order_id;
            match self.cancel_planned(planned).await {
                Ok(Some(order)) => {
                    tracing::info!(order_id = %order.id, "gift order cancelled by the vendor");
                    cancelled += 1;
                }
                Ok(None) => {}
                Err(error) => tracing::warn!(%order_id, %error, "planned cancellation not done; tried again later"),
            }
        }
        Ok(cancelled)
    }

    /// Carries out one planned cancellation, unless a concurrent run did:
    /// the order it cancelled, or `None`.
    ///
    /// # Errors
    /// When the order or its product is gone, or the store fails.
    pub async fn cancel_planned(&self, planned: PlannedCancellation) -> Result<Option<GiftOrder>, GiftError> {
        // A replica that cancels the same order commits first: our version
        // checks conflict, and deciding again finds the plan done.
        retry_on_conflict(|| {
            // The time read here, not in the transaction: a clock shared
            // into the work makes this future, spawned as the vendor's
            // job, one the compiler cannot prove `Send`.
            let (order_id, now) = (planned.order_id, self.clock.now());
            self.store.write(move |tx| cancel_in(tx, order_id, now))
        })
        .await
    }

    /// Cancels due orders every `interval` until `stopping` is cancelled.
    pub async fn run_vendor_cancellations(self, interval: Duration, stopping: CancellationToken) {
        loop {
            tokio::select! {
                () = tokio::time::sleep(interval) => {}
                () = stopping.cancelled() => return,
            }
            if let Err(error) = self.cancel_due().await {
                tracing::warn!(%error, "vendor cancellations round failed");
            }
        }
    }
}

/// One exchange, decided and applied in the caller's transaction: an order
/// under the same key answers first, then an order of the same reward, and
/// only then is a unit reserved and a new order placed — if the product's
/// event is open.
fn exchange_in(
    tx: &mut dyn GiftTx,
    exchange: &Exchange,
    plan: Option<CancellationPlan>,
    vendor: &Vendor,
    now: i64,
) -> Result<Exchanged, GiftError> {
    if let Some(order) = tx.order_by_key(&exchange.key)? {
        order.replay_for_key(exchange)?;
        return Ok(Exchanged::Replayed(order));
    }
    if let Some(order) = tx.order_by_payer(exchange.payer)? {
        order.replay_for_reward(exchange)?;
        return Ok(Exchanged::Replayed(order));
    }
    let (mut product, event) =
        tx.product_in_event(&exchange.sku)?.ok_or_else(|| GiftError::UnknownProduct(exchange.sku.clone()))?;
    let event = event.ok_or_else(|| GiftError::UnknownEvent(product.event_id.clone()))?;
    let (order, event) = product.exchange(exchange, &event, vendor, now)?;
    tx.update_stock(&product)?;
    tx.insert_order(&order)?;
    tx.stage(&event)?;
    if let Some(plan) = plan {
        tx.plan_cancellation(&PlannedCancellation {
            order_id: order.id,
            due_at: now.saturating_add(plan.after_ms),
            reason: plan.reason,
        })?;
    }
    Ok(Exchanged::Placed(order))
}

fn list_in(tx: &mut dyn GiftTx, operator: Operator, listing: Listing, now: i64) -> Result<Product, GiftError> {
    if let Some(existing) = tx.product(&listing.sku)? {
        listing.check_listed_as(&existing)?;
        return Ok(existing);
    }
    let event =
        tx.programme_event(&listing.event_id)?.ok_or_else(|| GiftError::UnknownEvent(listing.event_id.clone()))?;
    let product = listing.list_in(&event, now)?;
    tx.insert_product(&product)?;
    tx.stage(&GiftEvent::Catalogue(CatalogueChange::Listed { product: product.clone(), operator, changed_at: now }))?;
    Ok(product)
}

fn restock_in(
    tx: &mut dyn GiftTx,
    operator: Operator,
    sku: &ProductSku,
    units: NonZeroU32,
    key: Option<IdempotencyKey>,
    now: i64,
) -> Result<Product, GiftError> {
    let mut product = tx.product(sku)?.ok_or_else(|| GiftError::UnknownProduct(sku.clone()))?;
    if let Some(done) = key.as_ref().map(|key| tx.restock(key)).transpose()?.flatten() {
        return Ok(done.replay(sku, units.get(), product)?);
    }
    product.add_units(units.get()).map_err(CatalogueRefused::from)?;
    tx.update_stock(&product)?;
    if let Some(key) = key {
        tx.insert_restock(&Restock::of(key, &product, units.get(), now))?;
    }
    tx.stage(&GiftEvent::Catalogue(CatalogueChange::Restocked {
        product: product.clone(),
        units: units.get(),
        operator,
        changed_at: now,
    }))?;
    Ok(product)
}

/// The planned cancellation of `order_id`, carried out in the caller's
/// transaction if it is still planned: the order CANCELLED (version
/// checked), its unit back in stock (version checked), GiftOrderCancelled
/// staged, the plan removed.
fn cancel_in(tx: &mut dyn GiftTx, order_id: GiftOrderId, now: i64) -> Result<Option<GiftOrder>, GiftError> {
    let Some(planned) = tx.planned_cancellation(order_id)? else {
        return Ok(None);
    };
    let mut order = tx.order(order_id)?.ok_or(GiftError::OrderNotFound(order_id))?;
    let mut product =
        tx.product(&order.product_sku)?.ok_or_else(|| GiftError::UnknownProduct(order.product_sku.clone()))?;
    tx.remove_planned_cancellation(order_id)?;
    match order.cancel(&mut product, planned.reason, now) {
        Ok(event) => {
            tx.update_order(&order)?;
            tx.update_stock(&product)?;
            tx.stage(&event)?;
            Ok(Some(order))
        }
        Err(CancelRefused::AlreadyCancelled(_)) => Ok(None),
        Err(CancelRefused::StockFull(full)) => Err(CatalogueRefused::from(full).into()),
    }
}

/// Policy effect: the programme scheduled `event` (or it now stands so),
/// in the caller's transaction. Applying it again changes nothing.
///
/// # Errors
/// When the store fails.
pub fn keep_programme_event(tx: &mut dyn GiftTx, event: &ProgrammeEvent) -> Result<(), StoreError> {
    if tx.programme_event(&event.id)?.as_ref() == Some(event) {
        return Ok(());
    }
    tx.save_programme_event(event)
}
