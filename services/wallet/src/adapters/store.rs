//! The wallet store on diesel (SQLite or PostgreSQL): the [`WalletStore`]
//! port, rows to aggregates and back, optimistic concurrency on every
//! update, and events staged in the outbox of the same transaction.
//!
//! An entry's row keeps the columns old readers know (`status`,
//! `product_sku`, `gift_order_id`), written from where its points are.

use diesel::prelude::*;
use kernel::{CustomerId, IdempotencyKey, Points};
use platform::db::{CorruptRow, Database, DbConnection, DbError};
use platform::outbox::OutboxSignal;
use platform::store::{self, DbTx, StoreError};

use crate::adapters::events;
use crate::domain::{
    EntryId, Exchange, ExchangeId, ExchangeStatus, GiftPayer, MissionId, ProductSku, Reservation, RewardId, Standing,
    WalletEntry, WalletEvent,
};
use crate::ports::{WalletStore, WalletTx};

/// The wallet store in the service's database.
#[derive(Debug, Clone)]
pub struct DieselWalletStore {
    db: Database,
    /// Woken after a transaction that staged events.
    outbox: OutboxSignal,
}

impl DieselWalletStore {
    /// The store in `db`, waking the relay through `outbox`.
    pub fn new(db: Database, outbox: OutboxSignal) -> Self {
        Self { db, outbox }
    }
}

impl WalletStore for DieselWalletStore {
    async fn write<T, E, F>(&self, work: F) -> Result<T, E>
    where
        F: FnOnce(&mut dyn WalletTx) -> Result<T, E> + Send + 'static,
        T: Send + 'static,
        E: From<StoreError> + Send + 'static,
    {
        store::write(&self.db, &self.outbox, move |tx| work(tx)).await
    }

    async fn wallet(&self, customer: CustomerId) -> Result<Vec<WalletEntry>, StoreError> {
        store::read(&self.db, move |conn| list(conn, &customer)).await
    }

    async fn exchanges(&self, customer: CustomerId) -> Result<Vec<Exchange>, StoreError> {
        store::read(&self.db, move |conn| {
            let rows = wallet_exchanges::table
                .filter(wallet_exchanges::customer_id.eq(customer.as_str()))
                .order((wallet_exchanges::requested_at.desc(), wallet_exchanges::exchange_id.desc()))
                .select(ExchangeRow::as_select())
                .load(conn)?;
            with_reservations(conn, rows)
        })
        .await
    }

    async fn pending_since_before(&self, cutoff: i64, limit: u32) -> Result<Vec<Exchange>, StoreError> {
        store::read(&self.db, move |conn| {
            let rows = wallet_exchanges::table
                .filter(wallet_exchanges::status.eq(PENDING))
                .filter(wallet_exchanges::requested_at.lt(cutoff))
                .order(wallet_exchanges::requested_at.asc())
                .limit(limit.into())
                .select(ExchangeRow::as_select())
                .load(conn)?;
            with_reservations(conn, rows)
        })
        .await
    }

    async fn due_to_expire(&self, now: i64, limit: u32) -> Result<Vec<WalletEntry>, StoreError> {
        store::read(&self.db, move |conn| due_to_expire(conn, now, limit.into())).await
    }
}

/// The wallet store within a transaction open on the database: the one
/// [`DieselWalletStore::write`] runs, or the consumer's applying a policy.
impl WalletTx for DbTx<'_> {
    fn entry(&mut self, id: EntryId) -> Result<Option<WalletEntry>, StoreError> {
        Ok(find(self.conn(), id)?)
    }

    fn entries_with_points(&mut self, customer: &CustomerId) -> Result<Vec<WalletEntry>, StoreError> {
        let rows = wallet_entries::table
            .filter(wallet_entries::customer_id.eq(customer.as_str()))
            .filter(wallet_entries::remaining.gt(0))
            .order(wallet_entries::entry_id.asc())
            .select(EntryRow::as_select())
            .load(self.conn())
            .map_err(DbError::from)?;
        Ok(parse_rows(rows)?)
    }

    fn holds_reward(&mut self, reward: RewardId) -> Result<bool, StoreError> {
        Ok(holds_reward(self.conn(), reward)?)
    }

    fn insert(&mut self, entry: &WalletEntry) -> Result<(), StoreError> {
        diesel::insert_into(wallet_entries::table)
            .values(EntryRow::from(entry))
            .execute(self.conn())
            .map_err(DbError::from)?;
        Ok(())
    }

    fn update(&mut self, entry: &WalletEntry, read: i64) -> Result<(), StoreError> {
        let row = EntryRow::from(entry);
        let updated = diesel::update(
            wallet_entries::table
                .filter(wallet_entries::entry_id.eq(&row.entry_id))
                .filter(wallet_entries::version.eq(read)),
        )
        .set(&row)
        .execute(self.conn())
        .map_err(DbError::from)?;
        if updated == 0 {
            return Err(DbError::Conflict { entity: "wallet entry", key: row.entry_id }.into());
        }
        Ok(())
    }

    fn exchange(&mut self, id: ExchangeId) -> Result<Option<Exchange>, StoreError> {
        let conn = self.conn();
        let row = wallet_exchanges::table
            .filter(wallet_exchanges::exchange_id.eq(id.to_string()))
            .select(ExchangeRow::as_select())
            .first(conn)
            .optional()
            .map_err(DbError::from)?;
        Ok(one_exchange(conn, row)?)
    }

    fn exchange_by_key(&mut self, customer: &CustomerId, key: &IdempotencyKey) -> Result<Option<Exchange>, StoreError> {
        let conn = self.conn();
        let row = wallet_exchanges::table
            .filter(wallet_exchanges::customer_id.eq(customer.as_str()))
            .filter(wallet_exchanges::idempotency_key.eq(key.as_str()))
            .select(ExchangeRow::as_select())
            .first(conn)
            .optional()
            .map_err(DbError::from)?;
        Ok(one_exchange(conn, row)?)
    }

    fn exchange_by_gift_key(&mut self, key: &str) -> Result<Option<Exchange>, StoreError> {
        let conn = self.conn();
        let row = wallet_exchanges::table
            .filter(wallet_exchanges::gift_key.eq(key))
            .select(ExchangeRow::as_select())
            .first(conn)
            .optional()
            .map_err(DbError::from)?;
        Ok(one_exchange(conn, row)?)
    }

    fn pending_exchanges_of(&mut self, entry: EntryId) -> Result<Vec<Exchange>, StoreError> {
        let conn = self.conn();
        let rows = wallet_exchanges::table
            .filter(wallet_exchanges::status.eq(PENDING))
            .filter(
                wallet_exchanges::exchange_id.eq_any(
                    wallet_reservations::table
                        .filter(wallet_reservations::entry_id.eq(entry.to_string()))
                        .select(wallet_reservations::exchange_id),
                ),
            )
            .select(ExchangeRow::as_select())
            .load(conn)
            .map_err(DbError::from)?;
        Ok(with_reservations(conn, rows)?)
    }

    fn insert_exchange(&mut self, exchange: &Exchange) -> Result<(), StoreError> {
        let conn = self.conn();
        diesel::insert_into(wallet_exchanges::table)
            .values(ExchangeRow::from(exchange))
            .execute(conn)
            .map_err(DbError::from)?;
        let reservations: Vec<ReservationRow> = exchange
            .reservations
            .iter()
            .zip(0..)
            .map(|(r, position)| ReservationRow {
                exchange_id: exchange.id.to_string(),
                entry_id: r.entry_id.to_string(),
                reward_id: r.reward_id.to_string(),
                position,
                points: r.points.value(),
            })
            .collect();
        // One row at a time: a multi-row insert is not portable to SQLite in diesel.
        for row in reservations {
            diesel::insert_into(wallet_reservations::table).values(row).execute(conn).map_err(DbError::from)?;
        }
        Ok(())
    }

    fn update_exchange(&mut self, exchange: &Exchange, read: i64) -> Result<(), StoreError> {
        let row = ExchangeRow::from(exchange);
        let updated = diesel::update(
            wallet_exchanges::table
                .filter(wallet_exchanges::exchange_id.eq(&row.exchange_id))
                .filter(wallet_exchanges::version.eq(read)),
        )
        .set(&row)
        .execute(self.conn())
        .map_err(DbError::from)?;
        if updated == 0 {
            return Err(DbError::Conflict { entity: "exchange", key: row.exchange_id }.into());
        }
        Ok(())
    }

    fn price(&mut self, product: &ProductSku) -> Result<Option<Points>, StoreError> {
        let price: Option<i64> = product_prices::table
            .filter(product_prices::sku.eq(product.as_str()))
            .select(product_prices::price_points)
            .first(self.conn())
            .optional()
            .map_err(DbError::from)?;
        price
            .map(|price| {
                Points::new(price).map_err(|e| CorruptRow::new("product price", product.as_str(), e.to_string()))
            })
            .transpose()
            .map_err(|e| DbError::from(e).into())
    }

    fn keep_price(&mut self, product: &ProductSku, price: Points) -> Result<(), StoreError> {
        // The consumer applies one event at a time: the read before the write decides.
        let conn = self.conn();
        let updated = diesel::update(product_prices::table.filter(product_prices::sku.eq(product.as_str())))
            .set(product_prices::price_points.eq(price.value()))
            .execute(conn)
            .map_err(DbError::from)?;
        if updated == 0 {
            diesel::insert_into(product_prices::table)
                .values((product_prices::sku.eq(product.as_str()), product_prices::price_points.eq(price.value())))
                .execute(conn)
                .map_err(DbError::from)?;
        }
        Ok(())
    }

    fn stage(&mut self, event: &WalletEvent) -> Result<(), StoreError> {
        match event {
            WalletEvent::RewardIssued { entry } => DbTx::stage(self, &events::reward_issued(entry)),
            WalletEvent::RewardExchanged { entry, exchanged } => {
                DbTx::stage(self, &events::reward_exchanged(entry, exchanged))
            }
            WalletEvent::PointsExpired { entry, expired } => DbTx::stage(self, &events::points_expired(entry, expired)),
            WalletEvent::ExchangePlaced { exchange } => DbTx::stage(self, &events::exchange_placed(exchange)),
            WalletEvent::PointsRefunded { exchange, refunds } => {
                DbTx::stage(self, &events::points_refunded(exchange, refunds))
            }
        }
    }
}

diesel::table! {
    wallet_entries (entry_id) {
        entry_id -> Text,
        reward_id -> Text,
        mission_id -> Text,
        customer_id -> Text,
        points -> BigInt,
        status -> Integer,
        product_sku -> Nullable<Text>,
        gift_order_id -> Nullable<Text>,
        issued_at -> BigInt,
        version -> BigInt,
        expires_at -> Nullable<BigInt>,
        expired_at -> Nullable<BigInt>,
        remaining -> BigInt,
        reserved -> BigInt,
        spent -> BigInt,
        expired -> BigInt,
    }
}

diesel::table! {
    wallet_exchanges (exchange_id) {
        exchange_id -> Text,
        customer_id -> Text,
        product_sku -> Text,
        price_points -> BigInt,
        idempotency_key -> Nullable<Text>,
        gift_key -> Text,
        paid_by_reward -> Bool,
        mission_id -> Text,
        status -> Integer,
        calls -> BigInt,
        requested_at -> BigInt,
        gift_order_id -> Nullable<Text>,
        placed_at -> Nullable<BigInt>,
        settled_at -> Nullable<BigInt>,
        reason -> Nullable<Text>,
        version -> BigInt,
    }
}

diesel::table! {
    wallet_reservations (exchange_id, entry_id) {
        exchange_id -> Text,
        entry_id -> Text,
        reward_id -> Text,
        position -> Integer,
        points -> BigInt,
    }
}

diesel::table! {
    product_prices (sku) {
        sku -> Text,
        price_points -> BigInt,
    }
}

diesel::allow_tables_to_appear_in_same_query!(wallet_exchanges, wallet_reservations);

/// The `status` column old readers know (`WalletEntryStatus`).
const AVAILABLE: i32 = 1;
const EXCHANGE_PENDING: i32 = 2;
const EXCHANGED: i32 = 3;
const EXPIRED: i32 = 4;

/// The exchange's `status` column (`ExchangeStatus`).
const PENDING: i32 = 1;
const PLACED: i32 = 2;
const RELEASED: i32 = 3;
const REFUNDED: i32 = 4;

#[derive(Queryable, Selectable, Insertable, AsChangeset)]
#[diesel(table_name = wallet_entries, treat_none_as_null = true)]
struct EntryRow {
    entry_id: String,
    reward_id: String,
    mission_id: String,
    customer_id: String,
    points: i64,
    status: i32,
    product_sku: Option<String>,
    gift_order_id: Option<String>,
    issued_at: i64,
    version: i64,
    expires_at: Option<i64>,
    expired_at: Option<i64>,
    remaining: i64,
    reserved: i64,
    spent: i64,
    expired: i64,
}

impl TryFrom<EntryRow> for WalletEntry {
    type Error = CorruptRow;

    fn try_from(row: EntryRow) -> Result<Self, CorruptRow> {
        let corrupt = |reason: String| CorruptRow::new("wallet entry", &row.entry_id, reason);
        let entry = Self {
            id: EntryId::parse(&row.entry_id).map_err(|e| corrupt(format!("entry_id {e}")))?,
            reward_id: RewardId::parse(&row.reward_id).map_err(|e| corrupt(format!("reward_id {e}")))?,
            mission_id: MissionId::parse(&row.mission_id).map_err(|e| corrupt(format!("mission_id {e}")))?,
            customer_id: CustomerId::parse(&row.customer_id).map_err(|e| corrupt(format!("customer_id {e}")))?,
            points: Points::new(row.points).map_err(|e| corrupt(e.to_string()))?,
            remaining: row.remaining,
            reserved: row.reserved,
            spent: row.spent,
            expired: row.expired,
            expires_at: row.expires_at,
            expired_at: row.expired_at,
            product: row
                .product_sku
                .as_deref()
                .map(ProductSku::parse)
                .transpose()
                .map_err(|e| corrupt(format!("product_sku {e}")))?,
            gift_order_id: row.gift_order_id.clone(),
            issued_at: row.issued_at,
            version: row.version,
        };
        if !entry.is_whole() {
            return Err(corrupt(format!(
                "{} points are not {} remaining + {} reserved + {} spent + {} expired",
                row.points, row.remaining, row.reserved, row.spent, row.expired
            )));
        }
        Ok(entry)
    }
}

impl From<&WalletEntry> for EntryRow {
    fn from(entry: &WalletEntry) -> Self {
        // As old readers know them (and `WalletEntry` shows them): the
        // product while pending or once used up, the order once used up.
        let standing = entry.standing();
        let product_sku = match standing {
            Standing::ExchangePending | Standing::Exchanged => entry.product.as_ref().map(ToString::to_string),
            Standing::Available | Standing::Expired => None,
        };
        let gift_order_id = match standing {
            Standing::Exchanged => entry.gift_order_id.clone(),
            Standing::Available | Standing::ExchangePending | Standing::Expired => None,
        };
        Self {
            entry_id: entry.id.to_string(),
            reward_id: entry.reward_id.to_string(),
            mission_id: entry.mission_id.to_string(),
            customer_id: entry.customer_id.to_string(),
            points: entry.points.value(),
            status: match standing {
                Standing::Available => AVAILABLE,
                Standing::ExchangePending => EXCHANGE_PENDING,
                Standing::Exchanged => EXCHANGED,
                Standing::Expired => EXPIRED,
            },
            product_sku,
            gift_order_id,
            issued_at: entry.issued_at,
            version: entry.version,
            expires_at: entry.expires_at,
            expired_at: entry.expired_at,
            remaining: entry.remaining,
            reserved: entry.reserved,
            spent: entry.spent,
            expired: entry.expired,
        }
    }
}

#[derive(Queryable, Selectable, Insertable, AsChangeset)]
#[diesel(table_name = wallet_exchanges, treat_none_as_null = true)]
struct ExchangeRow {
    exchange_id: String,
    customer_id: String,
    product_sku: String,
    price_points: i64,
    idempotency_key: Option<String>,
    gift_key: String,
    paid_by_reward: bool,
    mission_id: String,
    status: i32,
    calls: i64,
    requested_at: i64,
    gift_order_id: Option<String>,
    placed_at: Option<i64>,
    /// When it was released or refunded.
    settled_at: Option<i64>,
    /// Gift's refusal (released) or the vendor's reason (refunded).
    reason: Option<String>,
    version: i64,
}

#[derive(Queryable, Selectable, Insertable)]
#[diesel(table_name = wallet_reservations)]
struct ReservationRow {
    exchange_id: String,
    entry_id: String,
    reward_id: String,
    position: i32,
    points: i64,
}

impl ExchangeRow {
    fn into_exchange(self, reservations: Vec<ReservationRow>) -> Result<Exchange, CorruptRow> {
        let corrupt = |reason: String| CorruptRow::new("exchange", &self.exchange_id, reason);
        let settled_at = || self.settled_at.ok_or_else(|| corrupt("settled_at missing".into()));
        let reason = || self.reason.clone().ok_or_else(|| corrupt("reason missing".into()));
        let order = || self.gift_order_id.clone().ok_or_else(|| corrupt("gift_order_id missing".into()));
        let placed_at = || self.placed_at.ok_or_else(|| corrupt("placed_at missing".into()));
        let status = match self.status {
            PENDING => ExchangeStatus::Pending,
            PLACED => ExchangeStatus::Placed { gift_order_id: order()?, at: placed_at()? },
            RELEASED => ExchangeStatus::Released { reason: reason()?, at: settled_at()? },
            REFUNDED => ExchangeStatus::Refunded {
                gift_order_id: order()?,
                placed_at: placed_at()?,
                reason: reason()?,
                at: settled_at()?,
            },
            other => return Err(corrupt(format!("status {other}"))),
        };
        let reservations = reservations
            .into_iter()
            .map(|row| {
                Ok(Reservation {
                    entry_id: EntryId::parse(&row.entry_id).map_err(|e| corrupt(format!("entry_id {e}")))?,
                    reward_id: RewardId::parse(&row.reward_id).map_err(|e| corrupt(format!("reward_id {e}")))?,
                    points: Points::new(row.points).map_err(|e| corrupt(e.to_string()))?,
                })
            })
            .collect::<Result<_, CorruptRow>>()?;
        Ok(Exchange {
            id: ExchangeId::parse(&self.exchange_id).map_err(|e| corrupt(format!("exchange_id {e}")))?,
            customer_id: CustomerId::parse(&self.customer_id).map_err(|e| corrupt(format!("customer_id {e}")))?,
            product: ProductSku::parse(&self.product_sku).map_err(|e| corrupt(format!("product_sku {e}")))?,
            price: Points::new(self.price_points).map_err(|e| corrupt(e.to_string()))?,
            idempotency_key: self
                .idempotency_key
                .as_deref()
                .map(IdempotencyKey::parse)
                .transpose()
                .map_err(|e| corrupt(format!("idempotency_key {e}")))?,
            gift_key: IdempotencyKey::parse(&self.gift_key).map_err(|e| corrupt(format!("gift_key {e}")))?,
            payer: if self.paid_by_reward { GiftPayer::Reward } else { GiftPayer::Exchange },
            mission_id: MissionId::parse(&self.mission_id).map_err(|e| corrupt(format!("mission_id {e}")))?,
            reservations,
            status,
            calls: self.calls,
            requested_at: self.requested_at,
            version: self.version,
        })
    }
}

impl From<&Exchange> for ExchangeRow {
    fn from(exchange: &Exchange) -> Self {
        let (status, gift_order_id, placed_at, settled_at, reason) = match &exchange.status {
            ExchangeStatus::Pending => (PENDING, None, None, None, None),
            ExchangeStatus::Placed { gift_order_id, at } => {
                (PLACED, Some(gift_order_id.clone()), Some(*at), None, None)
            }
            ExchangeStatus::Released { reason, at } => (RELEASED, None, None, Some(*at), Some(reason.clone())),
            ExchangeStatus::Refunded { gift_order_id, placed_at, reason, at } => {
                (REFUNDED, Some(gift_order_id.clone()), Some(*placed_at), Some(*at), Some(reason.clone()))
            }
        };
        Self {
            exchange_id: exchange.id.to_string(),
            customer_id: exchange.customer_id.to_string(),
            product_sku: exchange.product.to_string(),
            price_points: exchange.price.value(),
            idempotency_key: exchange.idempotency_key.as_ref().map(ToString::to_string),
            gift_key: exchange.gift_key.to_string(),
            paid_by_reward: exchange.payer == GiftPayer::Reward,
            mission_id: exchange.mission_id.to_string(),
            status,
            calls: exchange.calls,
            requested_at: exchange.requested_at,
            gift_order_id,
            placed_at,
            settled_at,
            reason,
            version: exchange.version,
        }
    }
}

/// The exchanges of `rows` with their reservations, in the rows' order.
fn with_reservations(conn: &mut DbConnection, rows: Vec<ExchangeRow>) -> Result<Vec<Exchange>, DbError> {
    if rows.is_empty() {
        return Ok(Vec::new());
    }
    let ids: Vec<&str> = rows.iter().map(|row| row.exchange_id.as_str()).collect();
    let mut reservations: Vec<ReservationRow> = wallet_reservations::table
        .filter(wallet_reservations::exchange_id.eq_any(&ids))
        .order((wallet_reservations::exchange_id.asc(), wallet_reservations::position.asc()))
        .select(ReservationRow::as_select())
        .load(conn)?;
    let mut exchanges = Vec::with_capacity(rows.len());
    for row in rows {
        let (own, rest): (Vec<_>, Vec<_>) = reservations.into_iter().partition(|r| r.exchange_id == row.exchange_id);
        reservations = rest;
        exchanges.push(row.into_exchange(own)?);
    }
    Ok(exchanges)
}

/// The exchange of `row`, if any, with its reservations.
fn one_exchange(conn: &mut DbConnection, row: Option<ExchangeRow>) -> Result<Option<Exchange>, DbError> {
    match row {
        Some(row) => Ok(with_reservations(conn, vec![row])?.pop()),
        None => Ok(None),
    }
}

fn parse_rows(rows: Vec<EntryRow>) -> Result<Vec<WalletEntry>, DbError> {
    Ok(rows.into_iter().map(WalletEntry::try_from).collect::<Result<_, _>>()?)
}

fn find(conn: &mut DbConnection, id: EntryId) -> Result<Option<WalletEntry>, DbError> {
    let row: Option<EntryRow> = wallet_entries::table
        .filter(wallet_entries::entry_id.eq(id.to_string()))
        .select(EntryRow::as_select())
        .first(conn)
        .optional()?;
    Ok(row.map(WalletEntry::try_from).transpose()?)
}

fn holds_reward(conn: &mut DbConnection, reward_id: RewardId) -> Result<bool, DbError> {
    Ok(diesel::select(diesel::dsl::exists(
        wallet_entries::table.filter(wallet_entries::reward_id.eq(reward_id.to_string())),
    ))
    .get_result(conn)?)
}

fn list(conn: &mut DbConnection, customer: &CustomerId) -> Result<Vec<WalletEntry>, DbError> {
    let rows = wallet_entries::table
        .filter(wallet_entries::customer_id.eq(customer.as_str()))
        .order((wallet_entries::issued_at.desc(), wallet_entries::entry_id.asc()))
        .select(EntryRow::as_select())
        .load(conn)?;
    parse_rows(rows)
}

fn due_to_expire(conn: &mut DbConnection, now: i64, limit: i64) -> Result<Vec<WalletEntry>, DbError> {
    let rows = wallet_entries::table
        .filter(wallet_entries::remaining.gt(0))
        .filter(wallet_entries::expires_at.le(now))
        .order((wallet_entries::expires_at.asc(), wallet_entries::entry_id.asc()))
        .limit(limit)
        .select(EntryRow::as_select())
        .load(conn)?;
    parse_rows(rows)
}
