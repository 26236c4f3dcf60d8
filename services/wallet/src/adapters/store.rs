//! The wallet store on diesel (SQLite or PostgreSQL): the [`WalletStore`]
//! port, rows to aggregates and back, optimistic concurrency on every
//! update, and events staged in the outbox of the same transaction.

use diesel::prelude::*;
use kernel::{CustomerId, Points};
use platform::db::{CorruptRow, Database, DbConnection, DbError};
use platform::outbox::OutboxSignal;
use platform::store::{self, DbTx, StoreError};

use crate::adapters::events;
use crate::domain::{EntryId, EntryStatus, MissionId, ProductSku, RewardId, WalletEntry, WalletEvent};
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

    async fn pending_since_before(&self, cutoff: i64, limit: u32) -> Result<Vec<WalletEntry>, StoreError> {
        store::read(&self.db, move |conn| pending_since_before(conn, cutoff, limit.into())).await
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

    fn holds_reward(&mut self, reward: RewardId) -> Result<bool, StoreError> {
        Ok(holds_reward(self.conn(), reward)?)
    }

    fn insert(&mut self, entry: &WalletEntry) -> Result<(), StoreError> {
        Ok(insert(self.conn(), entry)?)
    }

    fn update(&mut self, entry: &WalletEntry) -> Result<(), StoreError> {
        Ok(update(self.conn(), entry)?)
    }

    fn stage(&mut self, event: &WalletEvent) -> Result<(), StoreError> {
        match event {
            WalletEvent::RewardIssued { entry } => DbTx::stage(self, &events::reward_issued(entry)),
            WalletEvent::RewardExchanged { entry, exchanged } => {
                DbTx::stage(self, &events::reward_exchanged(entry, exchanged))
            }
            WalletEvent::PointsExpired { entry, expired } => DbTx::stage(self, &events::points_expired(entry, expired)),
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
        exchange_attempt -> BigInt,
        pending_since -> Nullable<BigInt>,
        issued_at -> BigInt,
        exchanged_at -> Nullable<BigInt>,
        version -> BigInt,
        expires_at -> Nullable<BigInt>,
        expired_at -> Nullable<BigInt>,
    }
}

const AVAILABLE: i32 = 1;
const EXCHANGE_PENDING: i32 = 2;
const EXCHANGED: i32 = 3;
const EXPIRED: i32 = 4;

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
    exchange_attempt: i64,
    pending_since: Option<i64>,
    issued_at: i64,
    exchanged_at: Option<i64>,
    version: i64,
    expires_at: Option<i64>,
    expired_at: Option<i64>,
}

impl TryFrom<EntryRow> for WalletEntry {
    type Error = CorruptRow;

    fn try_from(row: EntryRow) -> Result<Self, CorruptRow> {
        let corrupt = |reason: String| CorruptRow::new("wallet entry", &row.entry_id, reason);
        let product = || -> Result<ProductSku, CorruptRow> {
            let sku = row.product_sku.as_deref().ok_or_else(|| corrupt("product_sku missing".into()))?;
            ProductSku::parse(sku).map_err(|e| corrupt(format!("product_sku {e}")))
        };
        let status = match row.status {
            AVAILABLE => EntryStatus::Available,
            EXCHANGE_PENDING => EntryStatus::ExchangePending {
                product: product()?,
                since: row.pending_since.ok_or_else(|| corrupt("pending_since missing".into()))?,
            },
            EXCHANGED => EntryStatus::Exchanged {
                product: product()?,
                gift_order_id: row.gift_order_id.clone().ok_or_else(|| corrupt("gift_order_id missing".into()))?,
                at: row.exchanged_at.ok_or_else(|| corrupt("exchanged_at missing".into()))?,
            },
            EXPIRED => EntryStatus::Expired { at: row.expired_at.ok_or_else(|| corrupt("expired_at missing".into()))? },
            other => return Err(corrupt(format!("status {other}"))),
        };
        Ok(Self {
            id: EntryId::parse(&row.entry_id).map_err(|e| corrupt(format!("entry_id {e}")))?,
            reward_id: RewardId::parse(&row.reward_id).map_err(|e| corrupt(format!("reward_id {e}")))?,
            mission_id: MissionId::parse(&row.mission_id).map_err(|e| corrupt(format!("mission_id {e}")))?,
            customer_id: CustomerId::parse(&row.customer_id).map_err(|e| corrupt(format!("customer_id {e}")))?,
            points: Points::new(row.points).map_err(|e| corrupt(e.to_string()))?,
            status,
            expires_at: row.expires_at,
            exchange_attempt: row.exchange_attempt,
            issued_at: row.issued_at,
            version: row.version,
        })
    }
}

impl From<&WalletEntry> for EntryRow {
    fn from(entry: &WalletEntry) -> Self {
        let (status, product_sku, gift_order_id, pending_since, exchanged_at, expired_at) = match &entry.status {
            EntryStatus::Available => (AVAILABLE, None, None, None, None, None),
            EntryStatus::ExchangePending { product, since } => {
                (EXCHANGE_PENDING, Some(product.to_string()), None, Some(*since), None, None)
            }
            EntryStatus::Exchanged { product, gift_order_id, at } => {
                (EXCHANGED, Some(product.to_string()), Some(gift_order_id.clone()), None, Some(*at), None)
            }
            EntryStatus::Expired { at } => (EXPIRED, None, None, None, None, Some(*at)),
        };
        Self {
            entry_id: entry.id.to_string(),
            reward_id: entry.reward_id.to_string(),
            mission_id: entry.mission_id.to_string(),
            customer_id: entry.customer_id.to_string(),
            points: entry.points.value(),
            status,
            product_sku,
            gift_order_id,
            exchange_attempt: entry.exchange_attempt,
            pending_since,
            issued_at: entry.issued_at,
            exchanged_at,
            version: entry.version,
            expires_at: entry.expires_at,
            expired_at,
        }
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

fn pending_since_before(conn: &mut DbConnection, cutoff: i64, limit: i64) -> Result<Vec<WalletEntry>, DbError> {
    let rows = wallet_entries::table
        .filter(wallet_entries::status.eq(EXCHANGE_PENDING))
        .filter(wallet_entries::pending_since.lt(cutoff))
        .order(wallet_entries::pending_since.asc())
        .limit(limit)
        .select(EntryRow::as_select())
        .load(conn)?;
    parse_rows(rows)
}

fn due_to_expire(conn: &mut DbConnection, now: i64, limit: i64) -> Result<Vec<WalletEntry>, DbError> {
    let rows = wallet_entries::table
        .filter(wallet_entries::status.eq(AVAILABLE))
        .filter(wallet_entries::expires_at.le(now))
        .order((wallet_entries::expires_at.asc(), wallet_entries::entry_id.asc()))
        .limit(limit)
        .select(EntryRow::as_select())
        .load(conn)?;
    parse_rows(rows)
}

fn insert(conn: &mut DbConnection, entry: &WalletEntry) -> Result<(), DbError> {
    diesel::insert_into(wallet_entries::table).values(EntryRow::from(entry)).execute(conn)?;
    Ok(())
}

fn update(conn: &mut DbConnection, entry: &WalletEntry) -> Result<(), DbError> {
    let row = EntryRow::from(entry);
    let updated = diesel::update(
        wallet_entries::table
            .filter(wallet_entries::entry_id.eq(&row.entry_id))
            .filter(wallet_entries::version.eq(entry.version - 1)),
    )
    .set(&row)
    .execute(conn)?;
    if updated == 0 {
        return Err(DbError::Conflict { entity: "wallet entry", key: row.entry_id });
    }
    Ok(())
}
