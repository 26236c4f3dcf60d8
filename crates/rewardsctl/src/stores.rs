//! Read-only views of the services' SQLite files, as the chaos test and the
//! benchmarks check them: plain SQL over the columns each service owns,
//! never through the services' own code, so a bug there cannot hide itself.

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Integer, Nullable, Text};
use diesel::{QueryableByName, SqliteConnection};

/// A mission row.
#[derive(Debug, Clone, QueryableByName)]
pub struct MissionRow {
    #[diesel(sql_type = Text)]
    pub mission_id: String,
    #[diesel(sql_type = Text)]
    pub customer_id: String,
    #[diesel(sql_type = Text)]
    pub mission_code: String,
    /// 1 ACHIEVED, 2 REWARDED (as `game.mission.v1.MissionStatus`).
    #[diesel(sql_type = Integer)]
    pub status: i32,
    #[diesel(sql_type = Nullable<Text>)]
    pub reward_id: Option<String>,
}

/// A reward row.
#[derive(Debug, Clone, QueryableByName)]
pub struct RewardRow {
    #[diesel(sql_type = Text)]
    pub reward_id: String,
    #[diesel(sql_type = Text)]
    pub mission_id: String,
    #[diesel(sql_type = Text)]
    pub customer_id: String,
    /// 1 ALLOCATED, 2 ISSUED, 3 EXCHANGED (as `game.reward.v1.RewardStatus`).
    #[diesel(sql_type = Integer)]
    pub status: i32,
}

/// A wallet entry row.
#[derive(Debug, Clone, QueryableByName)]
pub struct EntryRow {
    #[diesel(sql_type = Text)]
    pub entry_id: String,
    #[diesel(sql_type = Text)]
    pub reward_id: String,
    #[diesel(sql_type = Text)]
    pub mission_id: String,
    #[diesel(sql_type = Text)]
    pub customer_id: String,
    #[diesel(sql_type = BigInt)]
    pub points: i64,
    /// 1 AVAILABLE, 2 EXCHANGE_PENDING, 3 EXCHANGED (as `game.wallet.v1.WalletEntryStatus`).
    #[diesel(sql_type = Integer)]
    pub status: i32,
    #[diesel(sql_type = Nullable<Text>)]
    pub gift_order_id: Option<String>,
}

/// A gift order row.
#[derive(Debug, Clone, QueryableByName)]
pub struct GiftOrderRow {
    #[diesel(sql_type = Text)]
    pub order_id: String,
    #[diesel(sql_type = Text)]
    pub reward_id: String,
    #[diesel(sql_type = Text)]
    pub customer_id: String,
}

/// A settlement row.
#[derive(Debug, Clone, QueryableByName)]
pub struct SettlementRow {
    #[diesel(sql_type = Text)]
    pub settlement_id: String,
    #[diesel(sql_type = Text)]
    pub order_id: String,
}

/// A my page row (the document itself is checked through the API).
#[derive(Debug, Clone, QueryableByName)]
pub struct PageRow {
    #[diesel(sql_type = Text)]
    pub customer_id: String,
}

#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

/// Every row the invariants are about, read from each service's file.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    pub missions: Vec<MissionRow>,
    pub rewards: Vec<RewardRow>,
    pub entries: Vec<EntryRow>,
    pub gift_orders: Vec<GiftOrderRow>,
    pub settlements: Vec<SettlementRow>,
    pub pages: Vec<PageRow>,
}

/// Where the services' SQLite files are: `<data>/<service>.sqlite`.
#[derive(Debug, Clone)]
pub struct Stores {
    data: PathBuf,
}

impl Stores {
    /// The stores in `data`.
    pub fn new(data: impl Into<PathBuf>) -> Self {
        Self { data: data.into() }
    }

    fn path(&self, service: &str) -> PathBuf {
        self.data.join(format!("{service}.sqlite"))
    }

    /// Reads every row the invariants are about.
    ///
    /// # Errors
    /// When a file cannot be opened or read.
    pub async fn snapshot(&self) -> anyhow::Result<Snapshot> {
        let stores = self.clone();
        tokio::task::spawn_blocking(move || {
            Ok(Snapshot {
                missions: stores.query(
                    "mission",
                    "SELECT mission_id, customer_id, mission_code, status, reward_id FROM missions",
                )?,
                rewards: stores.query("reward", "SELECT reward_id, mission_id, customer_id, status FROM rewards")?,
                entries: stores.query(
                    "wallet",
                    "SELECT entry_id, reward_id, mission_id, customer_id, points, status, gift_order_id \
                     FROM wallet_entries",
                )?,
                gift_orders: stores.query("gift", "SELECT order_id, reward_id, customer_id FROM gift_orders")?,
                settlements: stores.query("settlement", "SELECT settlement_id, order_id FROM settlements")?,
                pages: stores.query("mypage", "SELECT customer_id FROM my_pages")?,
            })
        })
        .await?
    }

    /// Staged events not yet published, in `service`'s outbox (0 when its
    /// file does not exist yet).
    ///
    /// # Errors
    /// When the file cannot be read.
    pub async fn outbox_backlog(&self, service: &str) -> anyhow::Result<i64> {
        self.count(service, "SELECT COUNT(*) AS n FROM outbox WHERE published_at IS NULL").await
    }

    /// Exchanges the wallet has not settled yet (EXCHANGE_PENDING entries).
    ///
    /// # Errors
    /// When the file cannot be read.
    pub async fn pending_exchanges(&self) -> anyhow::Result<i64> {
        self.count("wallet", "SELECT COUNT(*) AS n FROM wallet_entries WHERE status = 2").await
    }

    /// How many rewards exist (0 before the reward service created its file).
    ///
    /// # Errors
    /// When the file cannot be read.
    pub async fn rewards(&self) -> anyhow::Result<i64> {
        self.count("reward", "SELECT COUNT(*) AS n FROM rewards").await
    }

    /// Runs `sql` on `service`'s file and loads its rows.
    ///
    /// # Errors
    /// When the file cannot be opened or read.
    pub async fn query_owned<T>(&self, service: &str, sql: String) -> anyhow::Result<Vec<T>>
    where
        T: QueryableByName<diesel::sqlite::Sqlite> + Send + 'static,
    {
        let stores = self.clone();
        let service = service.to_owned();
        tokio::task::spawn_blocking(move || stores.query(&service, &sql)).await?
    }

    async fn count(&self, service: &str, sql: &'static str) -> anyhow::Result<i64> {
        let stores = self.clone();
        let service = service.to_owned();
        tokio::task::spawn_blocking(move || {
            if !stores.path(&service).exists() {
                return Ok(0);
            }
            let counted: Vec<Count> = stores.query(&service, sql)?;
            Ok(counted.first().map_or(0, |c| c.n))
        })
        .await?
    }

    fn query<T: QueryableByName<diesel::sqlite::Sqlite> + 'static>(
        &self,
        service: &str,
        sql: &str,
    ) -> anyhow::Result<Vec<T>> {
        let path = self.path(service);
        let mut conn = open_read_only(&path)?;
        diesel::sql_query(sql).load(&mut conn).with_context(|| format!("{sql:?} on {}", path.display()))
    }
}

fn open_read_only(path: &Path) -> anyhow::Result<SqliteConnection> {
    let url = format!("file:{}?mode=ro", path.display());
    let mut conn = SqliteConnection::establish(&url).with_context(|| format!("cannot open {}", path.display()))?;
    // The services write while this reads: wait for their locks instead of failing.
    diesel::sql_query("PRAGMA busy_timeout = 10000").execute(&mut conn)?;
    Ok(conn)
}
