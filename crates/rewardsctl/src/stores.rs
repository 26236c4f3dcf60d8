//! Read-only views of the services' stores (SQLite files, or PostgreSQL
//! databases in the cluster shape), as the chaos test and the benchmarks
//! check them: plain SQL over the columns each service owns,
//! never through the services' own code, so a bug there cannot hide itself.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context as _;
use diesel::pg::Pg;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Integer, Nullable, Text};
use diesel::sqlite::Sqlite;
use diesel::{PgConnection, QueryableByName, SqliteConnection};

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
    /// 1 ALLOCATED, 2 ISSUED, 3 EXCHANGED, 4 EXPIRED (as `game.reward.v1.RewardStatus`).
    #[diesel(sql_type = Integer)]
    pub status: i32,
    #[diesel(sql_type = BigInt)]
    pub points: i64,
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
    /// 1 AVAILABLE, 2 EXCHANGE_PENDING, 3 EXCHANGED, 4 EXPIRED (as
    /// `game.wallet.v1.WalletEntryStatus`): where most of its points are.
    #[diesel(sql_type = Integer)]
    pub status: i32,
    #[diesel(sql_type = Nullable<Text>)]
    pub gift_order_id: Option<String>,
    /// Where its points are: every point in exactly one of the four.
    #[diesel(sql_type = BigInt)]
    pub remaining: i64,
    #[diesel(sql_type = BigInt)]
    pub reserved: i64,
    #[diesel(sql_type = BigInt)]
    pub spent: i64,
    #[diesel(sql_type = BigInt)]
    pub expired: i64,
}

/// A wallet exchange: one player request, paid by its reservations.
#[derive(Debug, Clone, QueryableByName)]
pub struct ExchangeRow {
    #[diesel(sql_type = Text)]
    pub exchange_id: String,
    #[diesel(sql_type = Text)]
    pub customer_id: String,
    #[diesel(sql_type = Text)]
    pub product_sku: String,
    #[diesel(sql_type = BigInt)]
    pub price_points: i64,
    /// The player's key; `None` for an exchange of one reward (ExchangeReward).
    #[diesel(sql_type = Nullable<Text>)]
    pub idempotency_key: Option<String>,
    /// 1 PENDING, 2 PLACED, 3 RELEASED, 4 REFUNDED (as `game.wallet.v1.ExchangeStatus`).
    #[diesel(sql_type = Integer)]
    pub status: i32,
    #[diesel(sql_type = Nullable<Text>)]
    pub gift_order_id: Option<String>,
}

/// The part of an exchange's price one entry pays.
#[derive(Debug, Clone, QueryableByName)]
pub struct ReservationRow {
    #[diesel(sql_type = Text)]
    pub exchange_id: String,
    #[diesel(sql_type = Text)]
    pub entry_id: String,
    #[diesel(sql_type = BigInt)]
    pub points: i64,
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
    /// 1 PLACED, 2 CANCELLED (as `game.gift.v1.GiftOrderStatus`).
    #[diesel(sql_type = Integer)]
    pub status: i32,
    /// What the order cost the player.
    #[diesel(sql_type = BigInt)]
    pub points: i64,
}

/// A settlement row: a gift order's charge, or the reversal of a cancelled
/// order's charge.
#[derive(Debug, Clone, QueryableByName)]
pub struct SettlementRow {
    #[diesel(sql_type = Text)]
    pub settlement_id: String,
    #[diesel(sql_type = Text)]
    pub order_id: String,
    /// `CHARGE` or `REVERSAL`.
    #[diesel(sql_type = Text)]
    pub kind: String,
    /// Negative for a reversal.
    #[diesel(sql_type = BigInt)]
    pub amount: i64,
}

impl SettlementRow {
    pub const CHARGE: &str = "CHARGE";
    pub const REVERSAL: &str = "REVERSAL";
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
    pub exchanges: Vec<ExchangeRow>,
    pub reservations: Vec<ReservationRow>,
    pub gift_orders: Vec<GiftOrderRow>,
    pub settlements: Vec<SettlementRow>,
    pub pages: Vec<PageRow>,
}

/// Where the services' stores are: SQLite files `<data>/<service>.sqlite`,
/// or a PostgreSQL database per service.
#[derive(Clone)]
pub struct Stores {
    backend: Backend,
}

#[derive(Clone)]
enum Backend {
    Sqlite(PathBuf),
    /// The URL of a service's database.
    Postgres(Arc<dyn Fn(&str) -> String + Send + Sync>),
}

impl fmt::Debug for Stores {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.backend {
            Backend::Sqlite(data) => write!(f, "Stores(SQLite in {})", data.display()),
            Backend::Postgres(url) => write!(f, "Stores(PostgreSQL, e.g. {})", url("mission")),
        }
    }
}

/// A connection to one service's store.
enum Conn {
    Sqlite(SqliteConnection),
    Postgres(PgConnection),
}

impl Stores {
    /// The SQLite files in `data`.
    pub fn sqlite(data: impl Into<PathBuf>) -> Self {
        Self { backend: Backend::Sqlite(data.into()) }
    }

    /// The PostgreSQL databases at `url(service)`.
    pub fn postgres(url: impl Fn(&str) -> String + Send + Sync + 'static) -> Self {
        Self { backend: Backend::Postgres(Arc::new(url)) }
    }

    /// Reads every row the invariants are about.
    ///
    /// # Errors
    /// When a store cannot be opened or read.
    pub async fn snapshot(&self) -> anyhow::Result<Snapshot> {
        let stores = self.clone();
        tokio::task::spawn_blocking(move || {
            Ok(Snapshot {
                missions: stores.query(
                    "mission",
                    "SELECT mission_id, customer_id, mission_code, status, reward_id FROM missions",
                )?,
                rewards: stores
                    .query("reward", "SELECT reward_id, mission_id, customer_id, status, points FROM rewards")?,
                entries: stores.query(
                    "wallet",
                    "SELECT entry_id, reward_id, mission_id, customer_id, points, status, gift_order_id, \
                     remaining, reserved, spent, expired FROM wallet_entries",
                )?,
                exchanges: stores.query(
                    "wallet",
                    "SELECT exchange_id, customer_id, product_sku, price_points, idempotency_key, status, \
                     gift_order_id FROM wallet_exchanges",
                )?,
                reservations: stores
                    .query("wallet", "SELECT exchange_id, entry_id, points FROM wallet_reservations")?,
                gift_orders: stores
                    .query("gift", "SELECT order_id, reward_id, customer_id, status, points FROM gift_orders")?,
                settlements: stores
                    .query("settlement", "SELECT settlement_id, order_id, kind, amount FROM settlements")?,
                pages: stores.query("mypage", "SELECT customer_id FROM my_pages")?,
            })
        })
        .await?
    }

    /// Staged events not yet published, in `service`'s outbox (0 before the
    /// service made its store).
    ///
    /// # Errors
    /// When the store cannot be read.
    pub async fn outbox_backlog(&self, service: &str) -> anyhow::Result<i64> {
        self.count(service, "outbox", "SELECT COUNT(*) AS n FROM outbox WHERE published_at IS NULL").await
    }

    /// Exchanges the wallet has not settled yet (PENDING).
    ///
    /// # Errors
    /// When the store cannot be read.
    pub async fn pending_exchanges(&self) -> anyhow::Result<i64> {
        self.count("wallet", "wallet_exchanges", "SELECT COUNT(*) AS n FROM wallet_exchanges WHERE status = 1").await
    }

    /// Entries whose expiry passed that the wallet has not expired yet.
    ///
    /// # Errors
    /// When the store cannot be read.
    pub async fn due_to_expire(&self, now_ms: i64) -> anyhow::Result<i64> {
        let sql = format!(
            "SELECT COUNT(*) AS n FROM wallet_entries WHERE remaining > 0 AND expires_at IS NOT NULL AND expires_at <= {now_ms}"
        );
        self.count_owned("wallet", "wallet_entries", sql).await
    }

    /// Cancellations the vendor planned that gift has not carried out yet.
    ///
    /// # Errors
    /// When the store cannot be read.
    pub async fn planned_cancellations(&self) -> anyhow::Result<i64> {
        self.count("gift", "vendor_cancellations", "SELECT COUNT(*) AS n FROM vendor_cancellations").await
    }

    /// How many rewards exist (0 before the reward service made its store).
    ///
    /// # Errors
    /// When the store cannot be read.
    pub async fn rewards(&self) -> anyhow::Result<i64> {
        self.count("reward", "rewards", "SELECT COUNT(*) AS n FROM rewards").await
    }

    /// Runs `sql` on `service`'s store and loads its rows.
    ///
    /// # Errors
    /// When the store cannot be opened or read.
    pub async fn query_owned<T>(&self, service: &str, sql: String) -> anyhow::Result<Vec<T>>
    where
        T: QueryableByName<Sqlite> + QueryableByName<Pg> + Send + 'static,
    {
        let stores = self.clone();
        let service = service.to_owned();
        tokio::task::spawn_blocking(move || stores.query(&service, &sql)).await?
    }

    /// Runs the write `sql` on `service`'s store; returns the rows it changed.
    ///
    /// # Errors
    /// When the store cannot be opened or refuses the statement.
    pub async fn execute(&self, service: &str, sql: String) -> anyhow::Result<usize> {
        let stores = self.clone();
        let service = service.to_owned();
        tokio::task::spawn_blocking(move || {
            let changed = match stores.connect(&service, Access::ReadWrite)? {
                Conn::Sqlite(mut conn) => diesel::sql_query(&sql).execute(&mut conn),
                Conn::Postgres(mut conn) => diesel::sql_query(&sql).execute(&mut conn),
            };
            changed.with_context(|| format!("{sql:?} on {service}'s store"))
        })
        .await?
    }

    async fn count(&self, service: &str, table: &'static str, sql: &'static str) -> anyhow::Result<i64> {
        self.count_owned(service, table, sql.to_owned()).await
    }

    async fn count_owned(&self, service: &str, table: &'static str, sql: String) -> anyhow::Result<i64> {
        let stores = self.clone();
        let service = service.to_owned();
        tokio::task::spawn_blocking(move || {
            if !stores.has_table(&service, table)? {
                return Ok(0);
            }
            let counted: Vec<Count> = stores.query(&service, &sql)?;
            Ok(counted.first().map_or(0, |c| c.n))
        })
        .await?
    }

    /// Whether `service` has made its store and its `table` yet.
    fn has_table(&self, service: &str, table: &str) -> anyhow::Result<bool> {
        match &self.backend {
            Backend::Sqlite(data) => Ok(data.join(format!("{service}.sqlite")).exists()),
            Backend::Postgres(_) => {
                let sql = format!("SELECT COUNT(*) AS n FROM pg_tables WHERE tablename = '{table}'");
                let counted: Vec<Count> = self.query(service, &sql)?;
                Ok(counted.first().is_some_and(|c| c.n > 0))
            }
        }
    }

    fn query<T>(&self, service: &str, sql: &str) -> anyhow::Result<Vec<T>>
    where
        T: QueryableByName<Sqlite> + QueryableByName<Pg> + 'static,
    {
        let loaded = match self.connect(service, Access::ReadOnly)? {
            Conn::Sqlite(mut conn) => diesel::sql_query(sql).load(&mut conn),
            Conn::Postgres(mut conn) => diesel::sql_query(sql).load(&mut conn),
        };
        loaded.with_context(|| format!("{sql:?} on {service}'s store"))
    }

    fn connect(&self, service: &str, access: Access) -> anyhow::Result<Conn> {
        match &self.backend {
            Backend::Sqlite(data) => open(&data.join(format!("{service}.sqlite")), access).map(Conn::Sqlite),
            Backend::Postgres(url) => {
                let url = format!("{}?connect_timeout=2", url(service));
                let conn = PgConnection::establish(&url).with_context(|| format!("cannot connect to {url}"))?;
                Ok(Conn::Postgres(conn))
            }
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Access {
    ReadOnly,
    ReadWrite,
}

fn open(path: &Path, access: Access) -> anyhow::Result<SqliteConnection> {
    let mode = match access {
        Access::ReadOnly => "ro",
        Access::ReadWrite => "rw",
    };
    let url = format!("file:{}?mode={mode}", path.display());
    let mut conn = SqliteConnection::establish(&url).with_context(|| format!("cannot open {}", path.display()))?;
    // The services write while this reads: wait for their locks instead of failing.
    diesel::sql_query("PRAGMA busy_timeout = 10000").execute(&mut conn)?;
    Ok(conn)
}
