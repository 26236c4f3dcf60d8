//! The settlement store on diesel (SQLite or PostgreSQL): the [`Ledger`]
//! port, the ledger of settlements in recording order, rows to aggregates
//! and back, and events staged in the outbox of the same transaction.

use diesel::prelude::*;
use kernel::CustomerId;
use platform::db::{CorruptRow, Database, DbConnection, DbError, is_unique_violation};
use platform::store::{self, DbTx, StoreError};

use crate::adapters::events;
use crate::domain::{
    Currency, LedgerPosition, MissionId, Money, OrderId, ProductSku, Settlement, SettlementEvent, SettlementId,
};
use crate::ports::{Ledger, LedgerTx};

/// The ledger in the service's database.
#[derive(Debug, Clone)]
pub struct DieselLedger {
    db: Database,
}

impl DieselLedger {
    /// The ledger in `db`.
    pub fn new(db: Database) -> Self {
        Self { db }
    }
}

impl Ledger for DieselLedger {
    async fn page(
        &self,
        product_sku: Option<ProductSku>,
        after: Option<LedgerPosition>,
        limit: usize,
    ) -> Result<Vec<(LedgerPosition, Settlement)>, StoreError> {
        store::read(&self.db, move |conn| page(conn, product_sku.as_ref(), after, limit)).await
    }
}

/// The ledger within the consumer's transaction applying a policy.
impl LedgerTx for DbTx<'_> {
    fn settlement_of(&mut self, order: OrderId) -> Result<Option<Settlement>, StoreError> {
        Ok(find_by_order(self.conn(), order)?)
    }

    fn append(&mut self, settlement: &Settlement) -> Result<LedgerPosition, StoreError> {
        Ok(insert(self.conn(), settlement)?)
    }

    fn stage(&mut self, event: &SettlementEvent) -> Result<(), StoreError> {
        match event {
            SettlementEvent::Recorded { settlement } => DbTx::stage(self, &events::settlement_recorded(settlement)),
        }
    }
}

diesel::table! {
    settlements (settlement_id) {
        settlement_id -> Text,
        seq -> BigInt,
        order_id -> Text,
        mission_id -> Text,
        customer_id -> Text,
        product_sku -> Text,
        amount -> BigInt,
        currency -> Text,
        recorded_at -> BigInt,
    }
}

#[derive(Queryable, Selectable, Insertable)]
#[diesel(table_name = settlements)]
struct SettlementRow {
    settlement_id: String,
    seq: i64,
    order_id: String,
    mission_id: String,
    customer_id: String,
    product_sku: String,
    amount: i64,
    currency: String,
    recorded_at: i64,
}

/// A stored row as the settlement it records and its place in the ledger.
fn from_row(row: SettlementRow) -> Result<(LedgerPosition, Settlement), CorruptRow> {
    let corrupt = |reason: String| CorruptRow::new("settlement", &row.settlement_id, reason);
    let currency = Currency::parse(&row.currency).map_err(|e| corrupt(format!("currency {e}")))?;
    let position = LedgerPosition::new(row.seq).ok_or_else(|| corrupt(format!("seq {}", row.seq)))?;
    let settlement = Settlement {
        id: SettlementId::parse(&row.settlement_id).map_err(|e| corrupt(format!("settlement_id {e}")))?,
        order_id: OrderId::parse(&row.order_id).map_err(|e| corrupt(format!("order_id {e}")))?,
        mission_id: MissionId::parse(&row.mission_id).map_err(|e| corrupt(format!("mission_id {e}")))?,
        customer_id: CustomerId::parse(&row.customer_id).map_err(|e| corrupt(format!("customer_id {e}")))?,
        product_sku: ProductSku::parse(&row.product_sku).map_err(|e| corrupt(format!("product_sku {e}")))?,
        amount: Money::new(row.amount, currency).map_err(|e| corrupt(format!("amount {e}")))?,
        recorded_at: row.recorded_at,
    };
    Ok((position, settlement))
}

fn to_row(position: LedgerPosition, settlement: &Settlement) -> SettlementRow {
    SettlementRow {
        settlement_id: settlement.id.to_string(),
        seq: position.value(),
        order_id: settlement.order_id.to_string(),
        mission_id: settlement.mission_id.to_string(),
        customer_id: settlement.customer_id.to_string(),
        product_sku: settlement.product_sku.to_string(),
        amount: settlement.amount.minor_units(),
        currency: settlement.amount.currency().to_string(),
        recorded_at: settlement.recorded_at,
    }
}

fn find_by_order(conn: &mut DbConnection, order_id: OrderId) -> Result<Option<Settlement>, DbError> {
    let row: Option<SettlementRow> = settlements::table
        .filter(settlements::order_id.eq(order_id.to_string()))
        .select(SettlementRow::as_select())
        .first(conn)
        .optional()?;
    Ok(row.map(from_row).transpose()?.map(|(_, settlement)| settlement))
}

/// A concurrent transaction taking the same place or settling the same
/// order first (the unique keys held) is a `Conflict`, not a `Duplicate`:
/// the consumer applies a conflicting event again, and then finds the next
/// place or the settlement.
fn insert(conn: &mut DbConnection, settlement: &Settlement) -> Result<LedgerPosition, DbError> {
    let last: Option<i64> = settlements::table.select(diesel::dsl::max(settlements::seq)).first(conn)?;
    let position = last.and_then(LedgerPosition::new).map_or(LedgerPosition::FIRST, LedgerPosition::next);
    match diesel::insert_into(settlements::table).values(to_row(position, settlement)).execute(conn) {
        Ok(_) => Ok(position),
        Err(error) if is_unique_violation(&error) => {
            Err(DbError::Conflict { entity: "settlement for order", key: settlement.order_id.to_string() })
        }
        Err(error) => Err(error.into()),
    }
}

fn page(
    conn: &mut DbConnection,
    product_sku: Option<&ProductSku>,
    after: Option<LedgerPosition>,
    limit: usize,
) -> Result<Vec<(LedgerPosition, Settlement)>, DbError> {
    let mut query = settlements::table
        .filter(settlements::seq.gt(after.map_or(0, LedgerPosition::value)))
        .select(SettlementRow::as_select())
        .order(settlements::seq.asc())
        .limit(i64::try_from(limit).unwrap_or(i64::MAX))
        .into_boxed();
    if let Some(sku) = product_sku {
        query = query.filter(settlements::product_sku.eq(sku.as_str().to_owned()));
    }
    let rows: Vec<SettlementRow> = query.load(conn)?;
    Ok(rows.into_iter().map(from_row).collect::<Result<_, _>>()?)
}
