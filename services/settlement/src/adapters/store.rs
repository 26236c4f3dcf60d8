//! The settlement store on diesel (SQLite or PostgreSQL): the [`Ledger`]
//! port, the ledger of settlements in recording order and the periods they
//! are recorded in, rows to aggregates and back, and events staged in the
//! outbox of the same transaction.
//!
//! The race between a recording and the closing of its period is decided
//! on the period's row, under PostgreSQL's read committed as on SQLite's
//! single writer: a recording moves the open period's version on
//! ([`LedgerTx::take_period`], `WHERE status = 'OPEN'`), a closing saves
//! it as closed only over the version it read. Whichever writes the row
//! first holds its lock until it commits; the other then finds the row
//! changed (its `WHERE` no longer matches) and loses with a `Conflict`: a
//! recording is applied again and lands in the next period, a closing is
//! decided again and now counts the recording.

use diesel::prelude::*;
use kernel::CustomerId;
use platform::db::{CorruptRow, Database, DbConnection, DbError, is_unique_violation};
use platform::outbox::OutboxSignal;
use platform::store::{self, DbTx, StoreError};

use crate::adapters::events;
use crate::domain::{
    Currency, LedgerPosition, MissionId, Money, OrderId, Period, PeriodId, PeriodStatus, PeriodTotal, ProductSku,
    Settlement, SettlementEvent, SettlementId, SettlementKind, Vendor,
};
use crate::ports::{Ledger, LedgerTx};

/// The ledger in the service's database.
#[derive(Debug, Clone)]
pub struct DieselLedger {
    db: Database,
    outbox: OutboxSignal,
}

impl DieselLedger {
    /// The ledger in `db`, waking the relay through `outbox`.
    pub fn new(db: Database, outbox: OutboxSignal) -> Self {
        Self { db, outbox }
    }
}

impl Ledger for DieselLedger {
    async fn write<T, E, F>(&self, work: F) -> Result<T, E>
    where
        F: FnOnce(&mut dyn LedgerTx) -> Result<T, E> + Send + 'static,
        T: Send + 'static,
        E: From<StoreError> + Send + 'static,
    {
        store::write(&self.db, &self.outbox, move |tx| work(tx)).await
    }

    async fn page(
        &self,
        product_sku: Option<ProductSku>,
        after: Option<LedgerPosition>,
        limit: usize,
    ) -> Result<Vec<(LedgerPosition, Settlement)>, StoreError> {
        store::read(&self.db, move |conn| page(conn, product_sku.as_ref(), after, limit)).await
    }

    async fn due_periods(&self, now: i64, limit: usize) -> Result<Vec<PeriodId>, StoreError> {
        store::read(&self.db, move |conn| due_periods(conn, now, limit)).await
    }

    async fn periods(&self, before: Option<i64>, limit: usize) -> Result<Vec<Period>, StoreError> {
        store::read(&self.db, move |conn| periods(conn, before, limit)).await
    }

    async fn period_with_totals(&self, id: PeriodId) -> Result<Option<(Period, Vec<PeriodTotal>)>, StoreError> {
        store::read(&self.db, move |conn| {
            let Some(period) = find_period(conn, id)? else { return Ok(None) };
            let totals = match period.status {
                PeriodStatus::Closed { .. } => stored_totals(conn, id)?,
                PeriodStatus::Open => totals_of(conn, id)?,
            };
            Ok(Some((period, totals)))
        })
        .await
    }
}

/// The ledger within one transaction: the consumer's applying a policy, or
/// the closing job's.
impl LedgerTx for DbTx<'_> {
    fn settlement_of(&mut self, order: OrderId, kind: SettlementKind) -> Result<Option<Settlement>, StoreError> {
        Ok(find_by_order(self.conn(), order, kind)?)
    }

    fn latest_period(&mut self) -> Result<Option<Period>, StoreError> {
        let row: Option<PeriodRow> = settlement_periods::table
            .select(PeriodRow::as_select())
            .order(settlement_periods::starts_at.desc())
            .first(self.conn())
            .optional()
            .map_err(DbError::from)?;
        Ok(row.map(period_from_row).transpose()?)
    }

    fn period(&mut self, id: PeriodId) -> Result<Option<Period>, StoreError> {
        Ok(find_period(self.conn(), id)?)
    }

    fn open_period(&mut self, period: &Period) -> Result<(), StoreError> {
        match diesel::insert_into(settlement_periods::table).values(period_row(period)).execute(self.conn()) {
            Ok(_) => Ok(()),
            // A rival opened it first: applied again, the recording lands in it.
            Err(error) if is_unique_violation(&error) => {
                Err(DbError::Conflict { entity: "settlement period", key: period.id.to_string() }.into())
            }
            Err(error) => Err(DbError::from(error).into()),
        }
    }

    fn take_period(&mut self, period: &Period) -> Result<(), StoreError> {
        let taken = diesel::update(
            settlement_periods::table
                .filter(settlement_periods::period_id.eq(period.id.to_string()))
                .filter(settlement_periods::status.eq(OPEN)),
        )
        .set(settlement_periods::version.eq(settlement_periods::version + 1))
        .execute(self.conn())
        .map_err(DbError::from)?;
        if taken == 0 {
            return Err(DbError::Conflict { entity: "settlement period", key: period.id.to_string() }.into());
        }
        Ok(())
    }

    fn totals_of(&mut self, period: PeriodId) -> Result<Vec<PeriodTotal>, StoreError> {
        Ok(totals_of(self.conn(), period)?)
    }

    fn close_period(&mut self, period: &Period, totals: &[PeriodTotal]) -> Result<(), StoreError> {
        let PeriodStatus::Closed { at } = period.status else {
            return Err(DbError::Conflict { entity: "settlement period", key: period.id.to_string() }.into());
        };
        let id = period.id.to_string();
        let closed = diesel::update(
            settlement_periods::table
                .filter(settlement_periods::period_id.eq(&id))
                .filter(settlement_periods::status.eq(OPEN))
                .filter(settlement_periods::version.eq(period.version - 1)),
        )
        .set((
            settlement_periods::status.eq(CLOSED),
            settlement_periods::closed_at.eq(Some(at)),
            settlement_periods::version.eq(period.version),
        ))
        .execute(self.conn())
        .map_err(DbError::from)?;
        if closed == 0 {
            return Err(DbError::Conflict { entity: "settlement period", key: id }.into());
        }
        for total in totals {
            diesel::insert_into(settlement_period_totals::table)
                .values(TotalRow {
                    period_id: id.clone(),
                    vendor: total.vendor.to_string(),
                    product_sku: total.product_sku.to_string(),
                    currency: total.currency.to_string(),
                    charges: total.charges,
                    reversals: total.reversals,
                    amount: total.amount,
                })
                .execute(self.conn())
                .map_err(DbError::from)?;
        }
        Ok(())
    }

    fn append(&mut self, settlement: &Settlement) -> Result<LedgerPosition, StoreError> {
        Ok(insert(self.conn(), settlement)?)
    }

    fn stage(&mut self, event: &SettlementEvent) -> Result<(), StoreError> {
        match event {
            SettlementEvent::Recorded { settlement } => DbTx::stage(self, &events::settlement_recorded(settlement)),
            SettlementEvent::Reversed { reversal, reversed } => {
                DbTx::stage(self, &events::settlement_reversed(reversal, *reversed))
            }
            SettlementEvent::PeriodClosed { period, totals } => {
                DbTx::stage(self, &events::period_closed(period, totals))
            }
        }
    }
}

diesel::table! {
    settlements (settlement_id) {
        settlement_id -> Text,
        seq -> BigInt,
        order_id -> Text,
        kind -> Text,
        period_id -> Text,
        mission_id -> Text,
        customer_id -> Text,
        product_sku -> Text,
        amount -> BigInt,
        currency -> Text,
        recorded_at -> BigInt,
        vendor -> Text,
    }
}

diesel::table! {
    settlement_periods (period_id) {
        period_id -> Text,
        starts_at -> BigInt,
        ends_at -> BigInt,
        status -> Text,
        version -> BigInt,
        closed_at -> Nullable<BigInt>,
    }
}

diesel::table! {
    settlement_period_totals (period_id, vendor, product_sku, currency) {
        period_id -> Text,
        vendor -> Text,
        product_sku -> Text,
        currency -> Text,
        charges -> BigInt,
        reversals -> BigInt,
        amount -> BigInt,
    }
}

const OPEN: &str = "OPEN";
const CLOSED: &str = "CLOSED";
const CHARGE: &str = "CHARGE";
const REVERSAL: &str = "REVERSAL";

fn kind_text(kind: SettlementKind) -> &'static str {
    match kind {
        SettlementKind::Charge => CHARGE,
        SettlementKind::Reversal => REVERSAL,
    }
}

#[derive(Queryable, Selectable, Insertable)]
#[diesel(table_name = settlements)]
struct SettlementRow {
    settlement_id: String,
    seq: i64,
    order_id: String,
    kind: String,
    period_id: String,
    mission_id: String,
    customer_id: String,
    product_sku: String,
    amount: i64,
    currency: String,
    recorded_at: i64,
    vendor: String,
}

#[derive(Queryable, Selectable, Insertable)]
#[diesel(table_name = settlement_periods)]
struct PeriodRow {
    period_id: String,
    starts_at: i64,
    ends_at: i64,
    status: String,
    version: i64,
    closed_at: Option<i64>,
}

#[derive(Queryable, Selectable, Insertable, QueryableByName)]
#[diesel(table_name = settlement_period_totals)]
struct TotalRow {
    period_id: String,
    vendor: String,
    product_sku: String,
    currency: String,
    charges: i64,
    reversals: i64,
    amount: i64,
}

/// A stored row as the settlement it records and its place in the ledger.
fn from_row(row: SettlementRow) -> Result<(LedgerPosition, Settlement), CorruptRow> {
    let corrupt = |reason: String| CorruptRow::new("settlement", &row.settlement_id, reason);
    let currency = Currency::parse(&row.currency).map_err(|e| corrupt(format!("currency {e}")))?;
    let position = LedgerPosition::new(row.seq).ok_or_else(|| corrupt(format!("seq {}", row.seq)))?;
    let (kind, magnitude) = match row.kind.as_str() {
        CHARGE => (SettlementKind::Charge, Some(row.amount)),
        REVERSAL => (SettlementKind::Reversal, row.amount.checked_neg()),
        other => return Err(corrupt(format!("kind {other}"))),
    };
    let amount = magnitude
        .and_then(|minor_units| Money::new(minor_units, currency).ok())
        .ok_or_else(|| corrupt(format!("amount {} of a {}", row.amount, row.kind)))?;
    let settlement = Settlement {
        id: SettlementId::parse(&row.settlement_id).map_err(|e| corrupt(format!("settlement_id {e}")))?,
        kind,
        order_id: OrderId::parse(&row.order_id).map_err(|e| corrupt(format!("order_id {e}")))?,
        mission_id: MissionId::parse(&row.mission_id).map_err(|e| corrupt(format!("mission_id {e}")))?,
        customer_id: CustomerId::parse(&row.customer_id).map_err(|e| corrupt(format!("customer_id {e}")))?,
        product_sku: ProductSku::parse(&row.product_sku).map_err(|e| corrupt(format!("product_sku {e}")))?,
        vendor: Vendor::parse(&row.vendor).map_err(|e| corrupt(format!("vendor {e}")))?,
        amount,
        period: PeriodId::parse(&row.period_id).map_err(|e| corrupt(format!("period_id {e}")))?,
        recorded_at: row.recorded_at,
    };
    Ok((position, settlement))
}

fn to_row(position: LedgerPosition, settlement: &Settlement) -> SettlementRow {
    SettlementRow {
        settlement_id: settlement.id.to_string(),
        seq: position.value(),
        order_id: settlement.order_id.to_string(),
        kind: kind_text(settlement.kind).to_owned(),
        period_id: settlement.period.to_string(),
        mission_id: settlement.mission_id.to_string(),
        customer_id: settlement.customer_id.to_string(),
        product_sku: settlement.product_sku.to_string(),
        amount: settlement.owed(),
        currency: settlement.amount.currency().to_string(),
        recorded_at: settlement.recorded_at,
        vendor: settlement.vendor.to_string(),
    }
}

fn period_from_row(row: PeriodRow) -> Result<Period, CorruptRow> {
    let corrupt = |reason: String| CorruptRow::new("settlement period", &row.period_id, reason);
    let status = match (row.status.as_str(), row.closed_at) {
        (OPEN, None) => PeriodStatus::Open,
        (CLOSED, Some(at)) => PeriodStatus::Closed { at },
        (status, closed_at) => return Err(corrupt(format!("status {status} closed at {closed_at:?}"))),
    };
    Ok(Period {
        id: PeriodId::parse(&row.period_id).map_err(|e| corrupt(format!("period_id {e}")))?,
        starts_at: row.starts_at,
        ends_at: row.ends_at,
        status,
        version: row.version,
    })
}

fn period_row(period: &Period) -> PeriodRow {
    let (status, closed_at) = match period.status {
        PeriodStatus::Open => (OPEN, None),
        PeriodStatus::Closed { at } => (CLOSED, Some(at)),
    };
    PeriodRow {
        period_id: period.id.to_string(),
        starts_at: period.starts_at,
        ends_at: period.ends_at,
        status: status.to_owned(),
        version: period.version,
        closed_at,
    }
}

fn total_from_row(row: TotalRow) -> Result<PeriodTotal, CorruptRow> {
    let corrupt = |reason: String| CorruptRow::new("settlement period total", &row.period_id, reason);
    Ok(PeriodTotal {
        vendor: Vendor::parse(&row.vendor).map_err(|e| corrupt(format!("vendor {e}")))?,
        product_sku: ProductSku::parse(&row.product_sku).map_err(|e| corrupt(format!("product_sku {e}")))?,
        currency: Currency::parse(&row.currency).map_err(|e| corrupt(format!("currency {e}")))?,
        charges: row.charges,
        reversals: row.reversals,
        amount: row.amount,
    })
}

fn find_by_order(
    conn: &mut DbConnection,
    order_id: OrderId,
    kind: SettlementKind,
) -> Result<Option<Settlement>, DbError> {
    let row: Option<SettlementRow> = settlements::table
        .filter(settlements::order_id.eq(order_id.to_string()))
        .filter(settlements::kind.eq(kind_text(kind)))
        .select(SettlementRow::as_select())
        .first(conn)
        .optional()?;
    Ok(row.map(from_row).transpose()?.map(|(_, settlement)| settlement))
}

fn find_period(conn: &mut DbConnection, id: PeriodId) -> Result<Option<Period>, DbError> {
    let row: Option<PeriodRow> =
        settlement_periods::table.find(id.to_string()).select(PeriodRow::as_select()).first(conn).optional()?;
    Ok(row.map(period_from_row).transpose()?)
}

fn due_periods(conn: &mut DbConnection, now: i64, limit: usize) -> Result<Vec<PeriodId>, DbError> {
    let rows: Vec<PeriodRow> = settlement_periods::table
        .filter(settlement_periods::status.eq(OPEN))
        .filter(settlement_periods::ends_at.le(now))
        .order(settlement_periods::ends_at.asc())
        .limit(i64::try_from(limit).unwrap_or(i64::MAX))
        .select(PeriodRow::as_select())
        .load(conn)?;
    Ok(rows.into_iter().map(|row| period_from_row(row).map(|period| period.id)).collect::<Result<_, _>>()?)
}

fn periods(conn: &mut DbConnection, before: Option<i64>, limit: usize) -> Result<Vec<Period>, DbError> {
    let rows: Vec<PeriodRow> = settlement_periods::table
        .filter(settlement_periods::starts_at.lt(before.unwrap_or(i64::MAX)))
        .order(settlement_periods::starts_at.desc())
        .limit(i64::try_from(limit).unwrap_or(i64::MAX))
        .select(PeriodRow::as_select())
        .load(conn)?;
    Ok(rows.into_iter().map(period_from_row).collect::<Result<_, _>>()?)
}

fn stored_totals(conn: &mut DbConnection, period: PeriodId) -> Result<Vec<PeriodTotal>, DbError> {
    let rows: Vec<TotalRow> = settlement_period_totals::table
        .filter(settlement_period_totals::period_id.eq(period.to_string()))
        .select(TotalRow::as_select())
        .load(conn)?;
    let totals = rows.into_iter().map(total_from_row).collect::<Result<_, _>>()?;
    Ok(PeriodTotal::sorted(totals))
}

/// The totals of the settlements recorded in `period`, summed by the
/// database. SUM over BIGINT is NUMERIC on PostgreSQL, hence the casts; the
/// placeholder is each backend's own.
fn totals_of(conn: &mut DbConnection, period: PeriodId) -> Result<Vec<PeriodTotal>, DbError> {
    fn sum_by_vendor_and_product(placeholder: &str) -> String {
        format!(
            "SELECT period_id, vendor, product_sku, currency, \
               CAST(SUM(CASE WHEN kind = '{CHARGE}' THEN 1 ELSE 0 END) AS BIGINT) AS charges, \
               CAST(SUM(CASE WHEN kind = '{REVERSAL}' THEN 1 ELSE 0 END) AS BIGINT) AS reversals, \
               CAST(SUM(amount) AS BIGINT) AS amount \
             FROM settlements WHERE period_id = {placeholder} \
             GROUP BY period_id, vendor, product_sku, currency"
        )
    }
    let id = period.to_string();
    let rows: Vec<TotalRow> = match conn {
        DbConnection::Postgres(pg) => {
            diesel::sql_query(sum_by_vendor_and_product("$1")).bind::<diesel::sql_types::Text, _>(id).load(pg)?
        }
        DbConnection::Sqlite(sqlite) => {
            diesel::sql_query(sum_by_vendor_and_product("?")).bind::<diesel::sql_types::Text, _>(id).load(sqlite)?
        }
    };
    let totals = rows.into_iter().map(total_from_row).collect::<Result<_, _>>()?;
    Ok(PeriodTotal::sorted(totals))
}

/// A concurrent transaction taking the same place or recording the same
/// settlement first (the unique keys held) is a `Conflict`, not a
/// `Duplicate`: the consumer applies a conflicting event again, and then
/// finds the next place or the settlement.
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
