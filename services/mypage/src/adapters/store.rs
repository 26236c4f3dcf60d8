//! The my page store on diesel (SQLite or PostgreSQL): the [`PageStore`]
//! port, one JSON document per player, with an optimistic `version`
//! guarding every change.
//!
//! The document has its own serde shape, kept apart from the domain types so
//! that the stored format changes only on purpose; a document that does not
//! parse back into the domain is a [`CorruptRow`].

use diesel::prelude::*;
use kernel::{CustomerId, Points};
use platform::db::{CorruptRow, Database, DbConnection, DbError, is_unique_violation, now_millis};
use platform::store::{self, DbTx, StoreError};
use serde::{Deserialize, Serialize};

use crate::domain::{
    EntryId, EntryStatus, ExchangeId, ExchangeLine, ExchangeStatus, MissionId, MissionLine, MissionStatus, MyPage,
    Payment, PlayerPage, RewardId, RewardStatus, WalletLine,
};
use crate::ports::{PageStore, PageTx};

/// The pages in the service's database.
#[derive(Debug, Clone)]
pub struct DieselPageStore {
    db: Database,
}

impl DieselPageStore {
    /// The store in `db`.
    pub fn new(db: Database) -> Self {
        Self { db }
    }
}

impl PageStore for DieselPageStore {
    async fn page(&self, customer: CustomerId) -> Result<Option<PlayerPage>, StoreError> {
        store::read(&self.db, move |conn| find(conn, &customer)).await
    }
}

/// The pages within the consumer's transaction applying a policy.
impl PageTx for DbTx<'_> {
    fn page(&mut self, customer: &CustomerId) -> Result<Option<PlayerPage>, StoreError> {
        Ok(find(self.conn(), customer)?)
    }

    fn insert(&mut self, page: &PlayerPage) -> Result<(), StoreError> {
        Ok(insert(self.conn(), page)?)
    }

    fn update(&mut self, page: &PlayerPage) -> Result<(), StoreError> {
        Ok(update(self.conn(), page)?)
    }
}

diesel::table! {
    my_pages (customer_id) {
        customer_id -> Text,
        version -> BigInt,
        document -> Text,
        updated_at -> BigInt,
    }
}

#[derive(Queryable, Selectable, Insertable)]
#[diesel(table_name = my_pages)]
struct PageRow {
    customer_id: String,
    version: i64,
    document: String,
    updated_at: i64,
}

/// The stored form of a page.
#[derive(Debug, Serialize, Deserialize)]
struct Document {
    missions: Vec<MissionDoc>,
    wallet: Vec<EntryDoc>,
    /// Absent from documents stored before exchanges were published.
    #[serde(default)]
    exchanges: Vec<ExchangeDoc>,
}

#[derive(Debug, Serialize, Deserialize)]
struct MissionDoc {
    mission_id: String,
    mission_code: Option<String>,
    status: MissionStatusDoc,
    reward_id: Option<String>,
    reward_status: Option<RewardStatusDoc>,
    promised_points: Option<i64>,
    reward_points: Option<i64>,
    achieved_at: Option<i64>,
}

#[derive(Debug, Serialize, Deserialize)]
struct EntryDoc {
    entry_id: String,
    reward_id: String,
    mission_id: String,
    points: Option<i64>,
    status: EntryStatusDoc,
    gift_order_id: Option<String>,
    product_sku: Option<String>,
    issued_at: Option<i64>,
    /// Absent from documents stored before rewards expired.
    #[serde(default)]
    expires_at: Option<i64>,
}

#[derive(Debug, Serialize, Deserialize)]
struct ExchangeDoc {
    exchange_id: String,
    product_sku: Option<String>,
    price_points: Option<i64>,
    status: ExchangeStatusDoc,
    gift_order_id: Option<String>,
    payments: Vec<PaymentDoc>,
    placed_at: Option<i64>,
    refunded_at: Option<i64>,
    cancel_reason: Option<String>,
}

#[derive(Debug, Serialize, Deserialize)]
struct PaymentDoc {
    entry_id: String,
    reward_id: String,
    points: Option<i64>,
    refunded: Option<i64>,
    expired: Option<i64>,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
enum ExchangeStatusDoc {
    Placed,
    Refunded,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
enum MissionStatusDoc {
    Achieved,
    Rewarded,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
enum RewardStatusDoc {
    Allocated,
    Issued,
    Exchanged,
    Expired,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
enum EntryStatusDoc {
    Available,
    Exchanged,
    Expired,
}

impl From<&MyPage> for Document {
    fn from(page: &MyPage) -> Self {
        Self {
            missions: page.missions().iter().map(MissionDoc::from).collect(),
            wallet: page.wallet().iter().map(EntryDoc::from).collect(),
            exchanges: page.exchanges().iter().map(ExchangeDoc::from).collect(),
        }
    }
}

impl From<&ExchangeLine> for ExchangeDoc {
    fn from(line: &ExchangeLine) -> Self {
        Self {
            exchange_id: line.exchange_id.to_string(),
            product_sku: line.product_sku.clone(),
            price_points: line.price_points.map(Points::value),
            status: match line.status {
                ExchangeStatus::Placed => ExchangeStatusDoc::Placed,
                ExchangeStatus::Refunded => ExchangeStatusDoc::Refunded,
            },
            gift_order_id: line.gift_order_id.clone(),
            payments: line
                .payments
                .iter()
                .map(|payment| PaymentDoc {
                    entry_id: payment.entry_id.to_string(),
                    reward_id: payment.reward_id.to_string(),
                    points: payment.points.map(Points::value),
                    refunded: payment.refunded.map(Points::value),
                    expired: payment.expired.map(Points::value),
                })
                .collect(),
            placed_at: line.placed_at,
            refunded_at: line.refunded_at,
            cancel_reason: line.cancel_reason.clone(),
        }
    }
}

impl TryFrom<ExchangeDoc> for ExchangeLine {
    type Error = String;

    fn try_from(doc: ExchangeDoc) -> Result<Self, String> {
        let bad = |what: &str, reason: String| format!("exchange {}: {what} {reason}", doc.exchange_id);
        let points =
            |what: &str, value: Option<i64>| value.map(Points::new).transpose().map_err(|e| bad(what, e.to_string()));
        let payments = doc
            .payments
            .iter()
            .map(|payment| {
                Ok(Payment {
                    entry_id: EntryId::parse(&payment.entry_id).map_err(|e| bad("entry_id", e.to_string()))?,
                    reward_id: RewardId::parse(&payment.reward_id).map_err(|e| bad("reward_id", e.to_string()))?,
                    points: points("points", payment.points)?,
                    refunded: points("refunded", payment.refunded)?,
                    expired: points("expired", payment.expired)?,
                })
            })
            .collect::<Result<Vec<_>, String>>()?;
        Ok(Self {
            exchange_id: ExchangeId::parse(&doc.exchange_id).map_err(|e| bad("exchange_id", e.to_string()))?,
            product_sku: doc.product_sku.clone(),
            price_points: points("price_points", doc.price_points)?,
            status: match doc.status {
                ExchangeStatusDoc::Placed => ExchangeStatus::Placed,
                ExchangeStatusDoc::Refunded => ExchangeStatus::Refunded,
            },
            gift_order_id: doc.gift_order_id.clone(),
            payments,
            placed_at: doc.placed_at,
            refunded_at: doc.refunded_at,
            cancel_reason: doc.cancel_reason.clone(),
        })
    }
}

impl From<&MissionLine> for MissionDoc {
    fn from(line: &MissionLine) -> Self {
        Self {
            mission_id: line.mission_id.to_string(),
            mission_code: line.mission_code.clone(),
            status: match line.status {
                MissionStatus::Achieved => MissionStatusDoc::Achieved,
                MissionStatus::Rewarded => MissionStatusDoc::Rewarded,
            },
            reward_id: line.reward_id.map(|id| id.to_string()),
            reward_status: line.reward_status.map(|status| match status {
                RewardStatus::Allocated => RewardStatusDoc::Allocated,
                RewardStatus::Issued => RewardStatusDoc::Issued,
                RewardStatus::Exchanged => RewardStatusDoc::Exchanged,
                RewardStatus::Expired => RewardStatusDoc::Expired,
            }),
            promised_points: line.promised_points.map(Points::value),
            reward_points: line.reward_points.map(Points::value),
            achieved_at: line.achieved_at,
        }
    }
}

impl From<&WalletLine> for EntryDoc {
    fn from(line: &WalletLine) -> Self {
        Self {
            entry_id: line.entry_id.to_string(),
            reward_id: line.reward_id.to_string(),
            mission_id: line.mission_id.to_string(),
            points: line.points.map(Points::value),
            status: match line.status {
                EntryStatus::Available => EntryStatusDoc::Available,
                EntryStatus::Exchanged => EntryStatusDoc::Exchanged,
                EntryStatus::Expired => EntryStatusDoc::Expired,
            },
            gift_order_id: line.gift_order_id.clone(),
            product_sku: line.product_sku.clone(),
            issued_at: line.issued_at,
            expires_at: line.expires_at,
        }
    }
}

impl TryFrom<MissionDoc> for MissionLine {
    type Error = String;

    fn try_from(doc: MissionDoc) -> Result<Self, String> {
        let bad = |what: &str, reason: String| format!("mission {}: {what} {reason}", doc.mission_id);
        Ok(Self {
            mission_id: MissionId::parse(&doc.mission_id).map_err(|e| bad("mission_id", e.to_string()))?,
            mission_code: doc.mission_code.clone(),
            status: match &doc.status {
                MissionStatusDoc::Achieved => MissionStatus::Achieved,
                MissionStatusDoc::Rewarded => MissionStatus::Rewarded,
            },
            reward_id: doc
                .reward_id
                .as_deref()
                .map(RewardId::parse)
                .transpose()
                .map_err(|e| bad("reward_id", e.to_string()))?,
            reward_status: doc.reward_status.as_ref().map(|status| match status {
                RewardStatusDoc::Allocated => RewardStatus::Allocated,
                RewardStatusDoc::Issued => RewardStatus::Issued,
                RewardStatusDoc::Exchanged => RewardStatus::Exchanged,
                RewardStatusDoc::Expired => RewardStatus::Expired,
            }),
            promised_points: doc
                .promised_points
                .map(Points::new)
                .transpose()
                .map_err(|e| bad("promised_points", e.to_string()))?,
            reward_points: doc
                .reward_points
                .map(Points::new)
                .transpose()
                .map_err(|e| bad("reward_points", e.to_string()))?,
            achieved_at: doc.achieved_at,
        })
    }
}

impl TryFrom<EntryDoc> for WalletLine {
    type Error = String;

    fn try_from(doc: EntryDoc) -> Result<Self, String> {
        let bad = |what: &str, reason: String| format!("entry {}: {what} {reason}", doc.entry_id);
        Ok(Self {
            entry_id: EntryId::parse(&doc.entry_id).map_err(|e| bad("entry_id", e.to_string()))?,
            reward_id: RewardId::parse(&doc.reward_id).map_err(|e| bad("reward_id", e.to_string()))?,
            mission_id: MissionId::parse(&doc.mission_id).map_err(|e| bad("mission_id", e.to_string()))?,
            points: doc.points.map(Points::new).transpose().map_err(|e| bad("points", e.to_string()))?,
            status: match &doc.status {
                EntryStatusDoc::Available => EntryStatus::Available,
                EntryStatusDoc::Exchanged => EntryStatus::Exchanged,
                EntryStatusDoc::Expired => EntryStatus::Expired,
            },
            gift_order_id: doc.gift_order_id.clone(),
            product_sku: doc.product_sku.clone(),
            issued_at: doc.issued_at,
            expires_at: doc.expires_at,
        })
    }
}

impl TryFrom<PageRow> for PlayerPage {
    type Error = CorruptRow;

    fn try_from(row: PageRow) -> Result<Self, CorruptRow> {
        let corrupt = |reason: String| CorruptRow::new("my page", &row.customer_id, reason);
        let customer_id = CustomerId::parse(&row.customer_id).map_err(|e| corrupt(format!("customer_id {e}")))?;
        let document: Document =
            serde_json::from_str(&row.document).map_err(|e| corrupt(format!("document does not parse: {e}")))?;
        let missions =
            document.missions.into_iter().map(MissionLine::try_from).collect::<Result<Vec<_>, _>>().map_err(corrupt)?;
        let wallet =
            document.wallet.into_iter().map(WalletLine::try_from).collect::<Result<Vec<_>, _>>().map_err(corrupt)?;
        let exchanges = document
            .exchanges
            .into_iter()
            .map(ExchangeLine::try_from)
            .collect::<Result<Vec<_>, _>>()
            .map_err(corrupt)?;
        Ok(Self { customer_id, version: row.version, page: MyPage::from_lines(missions, wallet, exchanges) })
    }
}

impl TryFrom<&PlayerPage> for PageRow {
    type Error = CorruptRow;

    fn try_from(page: &PlayerPage) -> Result<Self, CorruptRow> {
        let document = serde_json::to_string(&Document::from(&page.page))
            .map_err(|e| CorruptRow::new("my page", page.customer_id.as_str(), e))?;
        Ok(Self {
            customer_id: page.customer_id.to_string(),
            version: page.version,
            document,
            updated_at: now_millis(),
        })
    }
}

fn find(conn: &mut DbConnection, customer: &CustomerId) -> Result<Option<PlayerPage>, DbError> {
    let row: Option<PageRow> = my_pages::table
        .filter(my_pages::customer_id.eq(customer.as_str()))
        .select(PageRow::as_select())
        .first(conn)
        .optional()?;
    Ok(row.map(PlayerPage::try_from).transpose()?)
}

/// Another transaction storing the page first is a `Conflict`, not a
/// `Duplicate`: the consumer applies a conflicting event again, on the
/// stored page.
fn insert(conn: &mut DbConnection, page: &PlayerPage) -> Result<(), DbError> {
    let inserted = diesel::insert_into(my_pages::table).values(PageRow::try_from(page)?).execute(conn);
    match inserted {
        Ok(_) => Ok(()),
        Err(error) if is_unique_violation(&error) => Err(conflict(page)),
        Err(error) => Err(error.into()),
    }
}

fn update(conn: &mut DbConnection, page: &PlayerPage) -> Result<(), DbError> {
    let row = PageRow::try_from(page)?;
    let updated = diesel::update(
        my_pages::table
            .filter(my_pages::customer_id.eq(&row.customer_id))
            .filter(my_pages::version.eq(page.version - 1)),
    )
    .set((
        my_pages::version.eq(row.version),
        my_pages::document.eq(&row.document),
        my_pages::updated_at.eq(row.updated_at),
    ))
    .execute(conn)?;
    if updated == 0 {
        return Err(conflict(page));
    }
    Ok(())
}

fn conflict(page: &PlayerPage) -> DbError {
    DbError::Conflict { entity: "my page", key: page.customer_id.to_string() }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_page_stored_before_rewards_expired_reads_with_no_expiry() {
        let document = r#"{"missions":[],"wallet":[{"entry_id":"0193f6a0-0000-7000-8000-000000000001",
            "reward_id":"0193f6a0-0000-7000-8000-000000000002","mission_id":"0193f6a0-0000-7000-8000-000000000003",
            "points":300,"status":"AVAILABLE","gift_order_id":null,"product_sku":null,"issued_at":2000}]}"#;
        let row = PageRow { customer_id: "player-1".into(), version: 3, document: document.into(), updated_at: 0 };

        let page = PlayerPage::try_from(row).unwrap();

        let entry = &page.page.wallet()[0];
        assert_eq!(
            (entry.status, entry.expires_at, entry.points),
            (EntryStatus::Available, None, Points::new(300).ok())
        );
    }

    #[test]
    fn an_expired_entry_is_stored_and_read_back_as_it_was() {
        let line = WalletLine {
            entry_id: EntryId::generate(),
            reward_id: RewardId::generate(),
            mission_id: MissionId::generate(),
            points: Points::new(50).ok(),
            status: EntryStatus::Expired,
            gift_order_id: None,
            product_sku: None,
            issued_at: Some(2_000),
            expires_at: Some(9_000),
        };
        let page = PlayerPage {
            customer_id: CustomerId::parse("player-1").unwrap(),
            version: 2,
            page: MyPage::from_lines([], [line], []),
        };

        let read = PlayerPage::try_from(PageRow::try_from(&page).unwrap()).unwrap();

        assert_eq!(read, page);
    }

    #[test]
    fn an_exchange_and_what_its_entries_paid_are_stored_and_read_back_as_they_were() {
        let (entry, reward) = (EntryId::generate(), RewardId::generate());
        let exchange = ExchangeLine {
            exchange_id: ExchangeId::generate(),
            product_sku: Some("SNOW-SLED".into()),
            price_points: Points::new(150).ok(),
            status: ExchangeStatus::Refunded,
            gift_order_id: Some("order-9".into()),
            payments: vec![Payment {
                entry_id: entry,
                reward_id: reward,
                points: Points::new(150).ok(),
                refunded: Points::new(100).ok(),
                expired: Points::new(50).ok(),
            }],
            placed_at: Some(5_000),
            refunded_at: Some(7_000),
            cancel_reason: Some("out of stock at the vendor".into()),
        };
        let page = PlayerPage {
            customer_id: CustomerId::parse("player-1").unwrap(),
            version: 4,
            page: MyPage::from_lines([], [], [exchange]),
        };

        let row = PageRow::try_from(&page).unwrap();
        assert!(row.document.contains(r#""status":"REFUNDED""#), "{}", row.document);
        let read = PlayerPage::try_from(row).unwrap();

        assert_eq!(read, page);
    }

    #[test]
    fn a_page_stored_before_exchanges_were_published_reads_with_none() {
        let document = r#"{"missions":[],"wallet":[]}"#;
        let row = PageRow { customer_id: "player-1".into(), version: 1, document: document.into(), updated_at: 0 };

        let page = PlayerPage::try_from(row).unwrap();

        assert!(page.page.exchanges().is_empty());
    }
}
