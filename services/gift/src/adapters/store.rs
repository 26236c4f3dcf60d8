//! The gift store on diesel (SQLite or PostgreSQL): the [`GiftStore`] port,
//! rows to aggregates and back, optimistic concurrency on every product
//! update, and events staged in the outbox of the same transaction.

use diesel::prelude::*;
use kernel::{CustomerId, Points};
use platform::db::{CorruptRow, Database, DbConnection, DbError};
use platform::outbox::OutboxSignal;
use platform::store::{self, DbTx, StoreError};

use crate::adapters::events;
use crate::domain::{
    Currency, GiftEvent, GiftOrder, GiftOrderId, GiftOrderStatus, IdempotencyKey, MissionId, Product, ProductSku,
    RewardId,
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

    async fn order(&self, id: GiftOrderId) -> Result<Option<GiftOrder>, StoreError> {
        store::read(&self.db, move |conn| find_order(conn, id)).await
    }
}

/// The gift store within the transaction [`DieselGiftStore::write`] opened.
impl GiftTx for DbTx<'_> {
    fn product(&mut self, sku: &ProductSku) -> Result<Option<Product>, StoreError> {
        Ok(product(self.conn(), sku)?)
    }

    fn order_by_key(&mut self, key: &IdempotencyKey) -> Result<Option<GiftOrder>, StoreError> {
        Ok(find_order_by_key(self.conn(), key)?)
    }

    fn order_by_reward(&mut self, reward: RewardId) -> Result<Option<GiftOrder>, StoreError> {
        Ok(find_order_by_reward(self.conn(), reward)?)
    }

    fn update_stock(&mut self, product: &Product) -> Result<(), StoreError> {
        Ok(update_stock(self.conn(), product)?)
    }

    fn insert_order(&mut self, order: &GiftOrder) -> Result<(), StoreError> {
        Ok(insert_order(self.conn(), order)?)
    }

    fn stage(&mut self, event: &GiftEvent) -> Result<(), StoreError> {
        match event {
            GiftEvent::Exchanged { order, vendor_cost, currency } => {
                DbTx::stage(self, &events::gift_exchanged(order, *vendor_cost, currency))
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
}

const PLACED: i32 = 1;

impl TryFrom<GiftOrderRow> for GiftOrder {
    type Error = CorruptRow;

    fn try_from(row: GiftOrderRow) -> Result<Self, CorruptRow> {
        let corrupt = |reason: String| CorruptRow::new("gift order", &row.order_id, reason);
        Ok(Self {
            id: GiftOrderId::parse(&row.order_id).map_err(|e| corrupt(format!("order_id {e}")))?,
            idempotency_key: IdempotencyKey::parse(&row.idempotency_key)
                .map_err(|e| corrupt(format!("idempotency_key {e}")))?,
            customer_id: CustomerId::parse(&row.customer_id).map_err(|e| corrupt(format!("customer_id {e}")))?,
            reward_id: RewardId::parse(&row.reward_id).map_err(|e| corrupt(format!("reward_id {e}")))?,
            mission_id: MissionId::parse(&row.mission_id).map_err(|e| corrupt(format!("mission_id {e}")))?,
            product_sku: ProductSku::parse(&row.product_sku).map_err(|e| corrupt(format!("product_sku {e}")))?,
            points: Points::new(row.points).map_err(|e| corrupt(format!("points {e}")))?,
            status: match row.status {
                PLACED => GiftOrderStatus::Placed,
                other => return Err(corrupt(format!("status {other}"))),
            },
            placed_at: row.placed_at,
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
            reward_id: order.reward_id.to_string(),
            mission_id: order.mission_id.to_string(),
            product_sku: order.product_sku.to_string(),
            points: order.points.value(),
            status: match order.status {
                GiftOrderStatus::Placed => PLACED,
            },
            placed_at: order.placed_at,
            version: order.version,
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

fn find_order_by_reward(conn: &mut DbConnection, reward: RewardId) -> Result<Option<GiftOrder>, DbError> {
    let row: Option<GiftOrderRow> = gift_orders::table
        .filter(gift_orders::reward_id.eq(reward.to_string()))
        .select(GiftOrderRow::as_select())
        .first(conn)
        .optional()?;
    Ok(row.map(GiftOrder::try_from).transpose()?)
}

/// A unique violation (a `Duplicate`) means a concurrent exchange placed an
/// order under the same key or for the same reward; the use case decides again.
fn insert_order(conn: &mut DbConnection, order: &GiftOrder) -> Result<(), DbError> {
    diesel::insert_into(gift_orders::table).values(GiftOrderRow::from(order)).execute(conn)?;
    Ok(())
}
