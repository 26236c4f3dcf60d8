//! The gift store on diesel (SQLite or PostgreSQL): the [`GiftStore`] port,
//! rows to aggregates and back, optimistic concurrency on every product and
//! order update, and events staged in the outbox of the same transaction.

use diesel::prelude::*;
use kernel::programme::{ProgrammeEventId, Window};
use kernel::{CustomerId, Points};
use platform::db::{CorruptRow, Database, DbConnection, DbError};
use platform::outbox::OutboxSignal;
use platform::store::{self, DbTx, StoreError};

use crate::adapters::events;
use crate::domain::catalogue::{CatalogueChange, ProgrammeEvent, Restock};
use crate::domain::{
    Cancellation, Currency, ExchangeId, GiftEvent, GiftOrder, GiftOrderId, GiftOrderStatus, IdempotencyKey, MissionId,
    Payer, PlannedCancellation, Product, ProductSku, RewardId,
};
use crate::ports::{GiftStore, GiftTx};

/// The gift store in the service's database.
#[derive(Debug, Clone)]
pub struct DieselGiftStore {
    db: Database,
    /// Woken after a transaction that staged events.
    outbox: OutboxSignal,
}

impl DieselGiftStore {
    /// The store in `db`, waking the relay through `outbox`.
    pub fn new(db: Database, outbox: OutboxSignal) -> Self {
        Self { db, outbox }
    }
}

impl GiftStore for DieselGiftStore {
    async fn write<T, E, F>(&self, work: F) -> Result<T, E>
    where
        F: FnOnce(&mut dyn GiftTx) -> Result<T, E> + Send + 'static,
        T: Send + 'static,
        E: From<StoreError> + Send + 'static,
    {
        store::write(&self.db, &self.outbox, move |tx| work(tx)).await
    }

    async fn products(&self) -> Result<Vec<Product>, StoreError> {
        store::read(&self.db, products).await
    }

    async fn programme_events(&self) -> Result<Vec<ProgrammeEvent>, StoreError> {
        store::read(&self.db, programme_events).await
    }

    async fn order(&self, id: GiftOrderId) -> Result<Option<GiftOrder>, StoreError> {
        store::read(&self.db, move |conn| find_order(conn, id)).await
    }

    async fn due_cancellations(&self, now: i64, limit: usize) -> Result<Vec<PlannedCancellation>, StoreError> {
        store::read(&self.db, move |conn| due_cancellations(conn, now, limit)).await
    }
}

/// The gift store within the transaction [`DieselGiftStore::write`] opened,
/// or the consumer's that applies a policy.
impl GiftTx for DbTx<'_> {
    fn product(&mut self, sku: &ProductSku) -> Result<Option<Product>, StoreError> {
        Ok(product(self.conn(), sku)?)
    }

    fn programme_event(&mut self, id: &ProgrammeEventId) -> Result<Option<ProgrammeEvent>, StoreError> {
        Ok(programme_event(self.conn(), id)?)
    }

    fn product_in_event(&mut self, sku: &ProductSku) -> Result<Option<(Product, Option<ProgrammeEvent>)>, StoreError> {
        Ok(product_in_event(self.conn(), sku)?)
    }

    fn order(&mut self, id: GiftOrderId) -> Result<Option<GiftOrder>, StoreError> {
        Ok(find_order(self.conn(), id)?)
    }

    fn order_by_key(&mut self, key: &IdempotencyKey) -> Result<Option<GiftOrder>, StoreError> {
        Ok(find_order_by_key(self.conn(), key)?)
    }

    fn order_by_payer(&mut self, payer: Payer) -> Result<Option<GiftOrder>, StoreError> {
        Ok(find_order_by_payer(self.conn(), payer)?)
    }

    fn planned_cancellation(&mut self, order: GiftOrderId) -> Result<Option<PlannedCancellation>, StoreError> {
        Ok(planned_cancellation(self.conn(), order)?)
    }

    fn update_stock(&mut self, product: &Product) -> Result<(), StoreError> {
        Ok(update_stock(self.conn(), product)?)
    }

    fn insert_product(&mut self, product: &Product) -> Result<(), StoreError> {
        Ok(insert_product(self.conn(), product)?)
    }

    fn restock(&mut self, key: &IdempotencyKey) -> Result<Option<Restock>, StoreError> {
        Ok(find_restock(self.conn(), key)?)
    }

    fn insert_restock(&mut self, restock: &Restock) -> Result<(), StoreError> {
        Ok(insert_restock(self.conn(), restock)?)
    }

    fn save_programme_event(&mut self, event: &ProgrammeEvent) -> Result<(), StoreError> {
        Ok(save_programme_event(self.conn(), event)?)
    }

    fn insert_order(&mut self, order: &GiftOrder) -> Result<(), StoreError> {
        Ok(insert_order(self.conn(), order)?)
    }

    fn update_order(&mut self, order: &GiftOrder) -> Result<(), StoreError> {
        Ok(update_order(self.conn(), order)?)
    }

    fn plan_cancellation(&mut self, planned: &PlannedCancellation) -> Result<(), StoreError> {
        Ok(plan_cancellation(self.conn(), planned)?)
    }

    fn remove_planned_cancellation(&mut self, order: GiftOrderId) -> Result<(), StoreError> {
        Ok(remove_planned_cancellation(self.conn(), order)?)
    }

    fn stage(&mut self, event: &GiftEvent) -> Result<(), StoreError> {
        match event {
            GiftEvent::Exchanged { order, vendor, vendor_cost, currency } => {
                DbTx::stage(self, &events::gift_exchanged(order, vendor, *vendor_cost, currency))
            }
            GiftEvent::OrderCancelled { order, vendor_cost, currency } => {
                DbTx::stage(self, &events::gift_order_cancelled(order, *vendor_cost, currency))
            }
            GiftEvent::Catalogue(CatalogueChange::Listed { product, operator, changed_at }) => {
                DbTx::stage(self, &events::product_listed(product, operator, *changed_at))
            }
            GiftEvent::Catalogue(CatalogueChange::Restocked { product, units, operator, changed_at }) => {
                DbTx::stage(self, &events::product_restocked(product, *units, operator, *changed_at))
            }
        }
    }
}

diesel::table! {
    products (sku) {
        sku -> Text,
        name -> Text,
        price_points -> BigInt,
        stock -> BigInt,
        vendor_cost -> BigInt,
        currency -> Text,
        position -> Integer,
        version -> BigInt,
        programme_event_id -> Text,
    }
}

diesel::table! {
    gift_orders (order_id) {
        order_id -> Text,
        idempotency_key -> Text,
        customer_id -> Text,
        reward_id -> Text,
        mission_id -> Text,
        product_sku -> Text,
        points -> BigInt,
        status -> Integer,
        placed_at -> BigInt,
        version -> BigInt,
        cancelled_at -> Nullable<BigInt>,
        cancel_reason -> Nullable<Text>,
        exchange_id -> Nullable<Text>,
    }
}

diesel::table! {
    programme_events (programme_event_id) {
        programme_event_id -> Text,
        starts_at -> BigInt,
        ends_at -> Nullable<BigInt>,
    }
}

diesel::allow_tables_to_appear_in_same_query!(products, programme_events);

diesel::table! {
    vendor_cancellations (order_id) {
        order_id -> Text,
        due_at -> BigInt,
        reason -> Text,
    }
}

diesel::table! {
    restocks (idempotency_key) {
        idempotency_key -> Text,
        sku -> Text,
        units -> BigInt,
        stock -> BigInt,
        version -> BigInt,
        restocked_at -> BigInt,
    }
}

#[derive(Queryable, Selectable)]
#[diesel(table_name = products)]
struct ProductRow {
    sku: String,
    name: String,
    price_points: i64,
    stock: i64,
    vendor_cost: i64,
    currency: String,
    version: i64,
    programme_event_id: String,
}

impl TryFrom<ProductRow> for Product {
    type Error = CorruptRow;

    fn try_from(row: ProductRow) -> Result<Self, CorruptRow> {
        let corrupt = |reason: String| CorruptRow::new("product", &row.sku, reason);
        if row.vendor_cost < 0 {
            return Err(corrupt(format!("vendor_cost {}", row.vendor_cost)));
        }
        Ok(Self {
            sku: ProductSku::parse(&row.sku).map_err(|e| corrupt(format!("sku {e}")))?,
            price: Points::new(row.price_points).map_err(|e| corrupt(format!("price_points {e}")))?,
            stock: u32::try_from(row.stock).map_err(|_| corrupt(format!("stock {}", row.stock)))?,
            vendor_cost: row.vendor_cost,
            currency: Currency::parse(&row.currency).map_err(|e| corrupt(format!("currency {e}")))?,
            event_id: ProgrammeEventId::parse(&row.programme_event_id)
                .map_err(|e| corrupt(format!("programme_event_id {e}")))?,
            name: row.name,
            version: row.version,
        })
    }
}

#[derive(Queryable, Selectable, Insertable)]
#[diesel(table_name = gift_orders)]
struct GiftOrderRow {
    order_id: String,
    idempotency_key: String,
    customer_id: String,
    reward_id: String,
    mission_id: String,
    product_sku: String,
    points: i64,
    status: i32,
    placed_at: i64,
    version: i64,
    cancelled_at: Option<i64>,
    cancel_reason: Option<String>,
    /// Set when a wallet exchange pays; `reward_id` then holds the same id
    /// (the column is the payer's, unique: one order per payer).
    exchange_id: Option<String>,
}

const PLACED: i32 = 1;
const CANCELLED: i32 = 2;

impl TryFrom<GiftOrderRow> for GiftOrder {
    type Error = CorruptRow;

    fn try_from(row: GiftOrderRow) -> Result<Self, CorruptRow> {
        let corrupt = |reason: String| CorruptRow::new("gift order", &row.order_id, reason);
        let (status, cancellation) = match (row.status, row.cancelled_at, row.cancel_reason) {
            (PLACED, None, None) => (GiftOrderStatus::Placed, None),
            (CANCELLED, Some(cancelled_at), Some(reason)) => {
                (GiftOrderStatus::Cancelled, Some(Cancellation { cancelled_at, reason }))
            }
            (status, cancelled_at, _) => {
                return Err(corrupt(format!("status {status} with cancelled_at {cancelled_at:?}")));
            }
        };
        Ok(Self {
            id: GiftOrderId::parse(&row.order_id).map_err(|e| corrupt(format!("order_id {e}")))?,
            idempotency_key: IdempotencyKey::parse(&row.idempotency_key)
                .map_err(|e| corrupt(format!("idempotency_key {e}")))?,
            customer_id: CustomerId::parse(&row.customer_id).map_err(|e| corrupt(format!("customer_id {e}")))?,
            payer: match &row.exchange_id {
                Some(exchange) if *exchange == row.reward_id => {
                    Payer::Exchange(ExchangeId::parse(exchange).map_err(|e| corrupt(format!("exchange_id {e}")))?)
                }
                Some(exchange) => return Err(corrupt(format!("exchange_id {exchange} is not the payer"))),
                None => Payer::Reward(RewardId::parse(&row.reward_id).map_err(|e| corrupt(format!("reward_id {e}")))?),
            },
            mission_id: MissionId::parse(&row.mission_id).map_err(|e| corrupt(format!("mission_id {e}")))?,
            product_sku: ProductSku::parse(&row.product_sku).map_err(|e| corrupt(format!("product_sku {e}")))?,
            points: Points::new(row.points).map_err(|e| corrupt(format!("points {e}")))?,
            status,
            placed_at: row.placed_at,
            cancellation,
            version: row.version,
        })
    }
}

impl From<&GiftOrder> for GiftOrderRow {
    fn from(order: &GiftOrder) -> Self {
        Self {
            order_id: order.id.to_string(),
            idempotency_key: order.idempotency_key.to_string(),
            customer_id: order.customer_id.to_string(),
            reward_id: order.payer.as_uuid().to_string(),
            mission_id: order.mission_id.to_string(),
            product_sku: order.product_sku.to_string(),
            points: order.points.value(),
            status: match order.status {
                GiftOrderStatus::Placed => PLACED,
                GiftOrderStatus::Cancelled => CANCELLED,
            },
            placed_at: order.placed_at,
            version: order.version,
            cancelled_at: order.cancellation.as_ref().map(|c| c.cancelled_at),
            cancel_reason: order.cancellation.as_ref().map(|c| c.reason.clone()),
            exchange_id: order.payer.exchange().map(|id| id.to_string()),
        }
    }
}

#[derive(Queryable, Selectable, Insertable)]
#[diesel(table_name = programme_events)]
struct ProgrammeEventRow {
    programme_event_id: String,
    starts_at: i64,
    ends_at: Option<i64>,
}

impl TryFrom<ProgrammeEventRow> for ProgrammeEvent {
    type Error = CorruptRow;

    fn try_from(row: ProgrammeEventRow) -> Result<Self, CorruptRow> {
        let corrupt = |reason: String| CorruptRow::new("programme event", &row.programme_event_id, reason);
        Ok(Self {
            id: ProgrammeEventId::parse(&row.programme_event_id).map_err(|e| corrupt(e.to_string()))?,
            window: Window::from_times(row.starts_at, row.ends_at).map_err(|e| corrupt(format!("ends_at {e}")))?,
        })
    }
}

impl From<&ProgrammeEvent> for ProgrammeEventRow {
    fn from(event: &ProgrammeEvent) -> Self {
        Self {
            programme_event_id: event.id.to_string(),
            starts_at: event.window.starts_at(),
            ends_at: event.window.ends_at(),
        }
    }
}

#[derive(Queryable, Selectable, Insertable)]
#[diesel(table_name = vendor_cancellations)]
struct PlannedCancellationRow {
    order_id: String,
    due_at: i64,
    reason: String,
}

impl TryFrom<PlannedCancellationRow> for PlannedCancellation {
    type Error = CorruptRow;

    fn try_from(row: PlannedCancellationRow) -> Result<Self, CorruptRow> {
        let order_id = GiftOrderId::parse(&row.order_id)
            .map_err(|e| CorruptRow::new("vendor cancellation", &row.order_id, format!("order_id {e}")))?;
        Ok(Self { order_id, due_at: row.due_at, reason: row.reason })
    }
}

#[derive(Queryable, Selectable, Insertable)]
#[diesel(table_name = restocks)]
struct RestockRow {
    idempotency_key: String,
    sku: String,
    units: i64,
    stock: i64,
    version: i64,
    restocked_at: i64,
}

impl TryFrom<RestockRow> for Restock {
    type Error = CorruptRow;

    fn try_from(row: RestockRow) -> Result<Self, CorruptRow> {
        let corrupt = |reason: String| CorruptRow::new("restock", &row.idempotency_key, reason);
        Ok(Self {
            key: IdempotencyKey::parse(&row.idempotency_key).map_err(|e| corrupt(format!("idempotency_key {e}")))?,
            sku: ProductSku::parse(&row.sku).map_err(|e| corrupt(format!("sku {e}")))?,
            units: u32::try_from(row.units).map_err(|_| corrupt(format!("units {}", row.units)))?,
            stock: u32::try_from(row.stock).map_err(|_| corrupt(format!("stock {}", row.stock)))?,
            version: row.version,
            restocked_at: row.restocked_at,
        })
    }
}

impl From<&Restock> for RestockRow {
    fn from(restock: &Restock) -> Self {
        Self {
            idempotency_key: restock.key.to_string(),
            sku: restock.sku.to_string(),
            units: i64::from(restock.units),
            stock: i64::from(restock.stock),
            version: restock.version,
            restocked_at: restock.restocked_at,
        }
    }
}

fn products(conn: &mut DbConnection) -> Result<Vec<Product>, DbError> {
    let rows: Vec<ProductRow> = products::table
        .order((products::position.asc(), products::sku.asc()))
        .select(ProductRow::as_select())
        .load(conn)?;
    Ok(rows.into_iter().map(Product::try_from).collect::<Result<_, _>>()?)
}

fn product(conn: &mut DbConnection, sku: &ProductSku) -> Result<Option<Product>, DbError> {
    let row: Option<ProductRow> = products::table
        .filter(products::sku.eq(sku.as_str()))
        .select(ProductRow::as_select())
        .first(conn)
        .optional()?;
    Ok(row.map(Product::try_from).transpose()?)
}

/// One read on the path of every exchange, instead of two.
fn product_in_event(
    conn: &mut DbConnection,
    sku: &ProductSku,
) -> Result<Option<(Product, Option<ProgrammeEvent>)>, DbError> {
    let row: Option<(ProductRow, Option<ProgrammeEventRow>)> = products::table
        .left_join(programme_events::table.on(programme_events::programme_event_id.eq(products::programme_event_id)))
        .filter(products::sku.eq(sku.as_str()))
        .select((ProductRow::as_select(), Option::<ProgrammeEventRow>::as_select()))
        .first(conn)
        .optional()?;
    let Some((product, event)) = row else { return Ok(None) };
    Ok(Some((Product::try_from(product)?, event.map(ProgrammeEvent::try_from).transpose()?)))
}

fn update_stock(conn: &mut DbConnection, product: &Product) -> Result<(), DbError> {
    let updated = diesel::update(
        products::table
            .filter(products::sku.eq(product.sku.as_str()))
            .filter(products::version.eq(product.version - 1)),
    )
    .set((products::stock.eq(i64::from(product.stock)), products::version.eq(product.version)))
    .execute(conn)?;
    if updated == 0 {
        return Err(DbError::Conflict { entity: "product", key: product.sku.to_string() });
    }
    Ok(())
}

/// A unique violation (a `Duplicate`) means the sku was listed
/// concurrently; the use case decides again.
fn insert_product(conn: &mut DbConnection, product: &Product) -> Result<(), DbError> {
    let last: Option<i32> = products::table.select(diesel::dsl::max(products::position)).first(conn)?;
    diesel::insert_into(products::table)
        .values((
            products::sku.eq(product.sku.as_str()),
            products::name.eq(&product.name),
            products::price_points.eq(product.price.value()),
            products::stock.eq(i64::from(product.stock)),
            products::vendor_cost.eq(product.vendor_cost),
            products::currency.eq(product.currency.to_string()),
            products::position.eq(last.unwrap_or(0) + 1),
            products::version.eq(product.version),
            products::programme_event_id.eq(product.event_id.as_str()),
        ))
        .execute(conn)?;
    Ok(())
}

fn find_restock(conn: &mut DbConnection, key: &IdempotencyKey) -> Result<Option<Restock>, DbError> {
    let row: Option<RestockRow> = restocks::table
        .filter(restocks::idempotency_key.eq(key.as_str()))
        .select(RestockRow::as_select())
        .first(conn)
        .optional()?;
    Ok(row.map(Restock::try_from).transpose()?)
}

/// A unique violation (a `Duplicate`) means a concurrent restock under the
/// same key committed first; the use case decides again and finds it.
fn insert_restock(conn: &mut DbConnection, restock: &Restock) -> Result<(), DbError> {
    diesel::insert_into(restocks::table).values(RestockRow::from(restock)).execute(conn)?;
    Ok(())
}

fn programme_events(conn: &mut DbConnection) -> Result<Vec<ProgrammeEvent>, DbError> {
    let rows: Vec<ProgrammeEventRow> = programme_events::table
        .order((programme_events::starts_at.asc(), programme_events::programme_event_id.asc()))
        .select(ProgrammeEventRow::as_select())
        .load(conn)?;
    Ok(rows.into_iter().map(ProgrammeEvent::try_from).collect::<Result<_, _>>()?)
}

fn programme_event(conn: &mut DbConnection, id: &ProgrammeEventId) -> Result<Option<ProgrammeEvent>, DbError> {
    let row: Option<ProgrammeEventRow> = programme_events::table
        .filter(programme_events::programme_event_id.eq(id.as_str()))
        .select(ProgrammeEventRow::as_select())
        .first(conn)
        .optional()?;
    Ok(row.map(ProgrammeEvent::try_from).transpose()?)
}

/// Inserts the event, or replaces the window gift knew: the consumer
/// applies one event at a time, so the read before the write decides.
fn save_programme_event(conn: &mut DbConnection, event: &ProgrammeEvent) -> Result<(), DbError> {
    let row = ProgrammeEventRow::from(event);
    let updated =
        diesel::update(programme_events::table.filter(programme_events::programme_event_id.eq(event.id.as_str())))
            .set((programme_events::starts_at.eq(row.starts_at), programme_events::ends_at.eq(row.ends_at)))
            .execute(conn)?;
    if updated == 0 {
        diesel::insert_into(programme_events::table).values(row).execute(conn)?;
    }
    Ok(())
}

fn find_order(conn: &mut DbConnection, id: GiftOrderId) -> Result<Option<GiftOrder>, DbError> {
    let row: Option<GiftOrderRow> = gift_orders::table
        .filter(gift_orders::order_id.eq(id.to_string()))
        .select(GiftOrderRow::as_select())
        .first(conn)
        .optional()?;
    Ok(row.map(GiftOrder::try_from).transpose()?)
}

fn find_order_by_key(conn: &mut DbConnection, key: &IdempotencyKey) -> Result<Option<GiftOrder>, DbError> {
    let row: Option<GiftOrderRow> = gift_orders::table
        .filter(gift_orders::idempotency_key.eq(key.as_str()))
        .select(GiftOrderRow::as_select())
        .first(conn)
        .optional()?;
    Ok(row.map(GiftOrder::try_from).transpose()?)
}

fn find_order_by_payer(conn: &mut DbConnection, payer: Payer) -> Result<Option<GiftOrder>, DbError> {
    let row: Option<GiftOrderRow> = gift_orders::table
        .filter(gift_orders::reward_id.eq(payer.as_uuid().to_string()))
        .select(GiftOrderRow::as_select())
        .first(conn)
        .optional()?;
    Ok(row.map(GiftOrder::try_from).transpose()?)
}

/// A unique violation (a `Duplicate`) means a concurrent exchange placed an
/// order under the same key or for the same payer; the use case decides again.
fn insert_order(conn: &mut DbConnection, order: &GiftOrder) -> Result<(), DbError> {
    diesel::insert_into(gift_orders::table).values(GiftOrderRow::from(order)).execute(conn)?;
    Ok(())
}

fn update_order(conn: &mut DbConnection, order: &GiftOrder) -> Result<(), DbError> {
    let row = GiftOrderRow::from(order);
    let updated = diesel::update(
        gift_orders::table
            .filter(gift_orders::order_id.eq(&row.order_id))
            .filter(gift_orders::version.eq(order.version - 1)),
    )
    .set((
        gift_orders::status.eq(row.status),
        gift_orders::cancelled_at.eq(row.cancelled_at),
        gift_orders::cancel_reason.eq(&row.cancel_reason),
        gift_orders::version.eq(row.version),
    ))
    .execute(conn)?;
    if updated == 0 {
        return Err(DbError::Conflict { entity: "gift order", key: row.order_id });
    }
    Ok(())
}

fn planned_cancellation(conn: &mut DbConnection, order: GiftOrderId) -> Result<Option<PlannedCancellation>, DbError> {
    let row: Option<PlannedCancellationRow> = vendor_cancellations::table
        .filter(vendor_cancellations::order_id.eq(order.to_string()))
        .select(PlannedCancellationRow::as_select())
        .first(conn)
        .optional()?;
    Ok(row.map(PlannedCancellation::try_from).transpose()?)
}

fn due_cancellations(conn: &mut DbConnection, now: i64, limit: usize) -> Result<Vec<PlannedCancellation>, DbError> {
    let rows: Vec<PlannedCancellationRow> = vendor_cancellations::table
        .filter(vendor_cancellations::due_at.le(now))
        .order((vendor_cancellations::due_at.asc(), vendor_cancellations::order_id.asc()))
        .limit(i64::try_from(limit).unwrap_or(i64::MAX))
        .select(PlannedCancellationRow::as_select())
        .load(conn)?;
    Ok(rows.into_iter().map(PlannedCancellation::try_from).collect::<Result<_, _>>()?)
}

fn plan_cancellation(conn: &mut DbConnection, planned: &PlannedCancellation) -> Result<(), DbError> {
    diesel::insert_into(vendor_cancellations::table)
        .values(PlannedCancellationRow {
            order_id: planned.order_id.to_string(),
            due_at: planned.due_at,
            reason: planned.reason.clone(),
        })
        .execute(conn)?;
    Ok(())
}

/// The delete claims the plan: of two transactions cancelling one order,
/// the second deletes nothing (on PostgreSQL, once the first committed) and
/// conflicts, so the order is cancelled once.
fn remove_planned_cancellation(conn: &mut DbConnection, order: GiftOrderId) -> Result<(), DbError> {
    let key = order.to_string();
    let deleted =
        diesel::delete(vendor_cancellations::table.filter(vendor_cancellations::order_id.eq(&key))).execute(conn)?;
    if deleted == 0 {
        return Err(DbError::Conflict { entity: "vendor cancellation", key });
    }
    Ok(())
}
