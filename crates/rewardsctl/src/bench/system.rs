//! The whole system as the benchmarks run it: nats-server and every service
//! on free ports in a fresh directory, timed until all are SERVING, with
//! players seeded through the gateway and their wallet entries read back.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use diesel::QueryableByName;
use diesel::sql_types::{BigInt, Text};
use loadgen::grpc::{Target, outcome};
use loadgen::methods::achieve_request;
use loadgen::run::{OpenLoop, open_loop};

use crate::mesh::{Layout, Mesh, MeshConfig, Replicas};
use crate::stores::Stores;

/// A running system.
#[derive(Debug)]
pub struct System {
    pub mesh: Mesh,
    /// From starting nats-server until every process answered SERVING.
    pub serving_after: Duration,
    pub stores: Stores,
}

impl System {
    /// Starts everything in `run_dir` and waits until it serves.
    ///
    /// # Errors
    /// When a process is missing or does not serve within a minute.
    pub async fn start(run_dir: PathBuf, bin_dir: PathBuf, env: Vec<(String, String, String)>) -> anyhow::Result<Self> {
        let layout = Layout::free(&Replicas::default())?;
        let config = MeshConfig { run_dir, bin_dir, nats_server: None, layout, env, announce: true };
        let mut mesh = Mesh::new(config)?;
        let started = Instant::now();
        mesh.start_nats().await?;
        mesh.start_members(|_| true);
        mesh.wait_until_serving(Duration::from_secs(60), true).await?;
        let serving_after = started.elapsed();
        let stores = Stores::new(mesh.run_dir().join("data"));
        Ok(Self { mesh, serving_after, stores })
    }

    /// The gateway's URL.
    pub fn gateway(&self) -> String {
        self.mesh.layout().gateway_url()
    }

    /// The URL of `service` itself, past the gateway.
    pub fn service(&self, service: &str) -> String {
        self.mesh.layout().urls(service)
    }

    /// Stops every process.
    pub async fn stop(self) {
        self.mesh.stop().await;
    }
}

/// An available wallet entry of a seeded player.
#[derive(Debug, Clone, QueryableByName)]
pub struct Entry {
    #[diesel(sql_type = Text)]
    pub customer_id: String,
    #[diesel(sql_type = Text)]
    pub entry_id: String,
    #[diesel(sql_type = BigInt)]
    pub points: i64,
}

/// Achieves `count` missions through the gateway for players `<prefix>-N`
/// (five each), then waits until every reward is an AVAILABLE wallet entry
/// and returns the entries.
///
/// # Errors
/// When calls fail or the entries do not all arrive within the time the
/// slowest drain seen so far would allow.
pub async fn seed_entries(system: &System, prefix: &str, count: u64) -> anyhow::Result<Vec<Entry>> {
    let started = Instant::now();
    let target = Target::connect(&system.gateway(), 2, &[]).await?;
    let prefix_owned = prefix.to_owned();
    let config = OpenLoop {
        rate: 2_000.0,
        #[allow(clippy::cast_precision_loss)] // a seed count fits an f64 exactly
        duration: Duration::from_secs_f64(count as f64 / 2_000.0),
        max_in_flight: 128,
        timeout: Duration::from_secs(30),
    };
    let report = open_loop(&config, move |i, _| {
        let (target, prefix) = (target.clone(), prefix_owned.clone());
        async move {
            let request = target.request(achieve_request(&prefix, i));
            outcome(
                api::game::mission::v1::mission_service_client::MissionServiceClient::new(target.channel(i))
                    .achieve_mission(request)
                    .await,
            )
        }
    })
    .await;
    if report.ok < count {
        bail!("seeding {count} missions: only {} succeeded ({:?})", report.ok, report.failed);
    }
    // At the slowest drain measured before batching (~1,000 events/s per
    // consumer, three consumers in a row), with a generous margin.
    let deadline = Instant::now() + Duration::from_secs(60 + count / 100);
    let sql = format!(
        "SELECT customer_id, entry_id, points FROM wallet_entries WHERE status = 1 AND customer_id LIKE '{prefix}-%' \
         ORDER BY customer_id, entry_id"
    );
    loop {
        let entries: Vec<Entry> = system.stores.query_owned("wallet", sql.clone()).await.unwrap_or_default();
        if entries.len() as u64 >= count {
            println!(
                "  seeded {count} wallet entries in {:.1}s ({} missions achieved at {:.0}/s)",
                started.elapsed().as_secs_f64(),
                report.ok,
                report.achieved_rate
            );
            return Ok(entries);
        }
        if Instant::now() > deadline {
            bail!("only {} of {count} wallet entries after {:.0}s", entries.len(), started.elapsed().as_secs_f64());
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Waits until every durable consumer of every stream has applied all it
/// was given (nothing pending, nothing unacknowledged), at most `within`,
/// so that a measurement does not share the machine with an earlier
/// phase's backlog. Returns how long that took.
///
/// # Errors
/// When nats-server cannot be reached, or the consumers are still busy after `within`.
pub async fn wait_until_quiet(system: &System, within: Duration) -> anyhow::Result<Duration> {
    use futures::TryStreamExt as _;
    let started = Instant::now();
    let js = async_nats::jetstream::new(async_nats::connect(system.mesh.layout().nats_url()).await?);
    loop {
        let mut busy = 0usize;
        let mut streams = js.streams();
        while let Some(info) = streams.try_next().await? {
            let stream = js.get_stream(&info.config.name).await?;
            let mut consumers = stream.consumers();
            while let Some(consumer) = consumers.try_next().await? {
                busy += usize::from(consumer.num_pending > 0 || consumer.num_ack_pending > 0);
            }
        }
        if busy == 0 {
            return Ok(started.elapsed());
        }
        if started.elapsed() > within {
            bail!("{busy} consumers still busy after {}s", within.as_secs());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Raises every product's stock to `stock`, so a long exchange run measures
/// exchanges rather than "out of stock" refusals.
///
/// The one write a benchmark makes to a service's store: the catalogue has
/// no admin API, and gift reads the stock in every exchange's transaction.
///
/// # Errors
/// When the gift store cannot be written.
pub async fn restock_gift(system: &System, stock: i64) -> anyhow::Result<()> {
    use diesel::{Connection as _, RunQueryDsl as _};
    let path = system.mesh.database("gift");
    tokio::task::spawn_blocking(move || {
        let mut conn = diesel::SqliteConnection::establish(&path.display().to_string())
            .with_context(|| format!("cannot open {}", path.display()))?;
        diesel::sql_query("PRAGMA busy_timeout = 10000").execute(&mut conn)?;
        diesel::sql_query(format!("UPDATE products SET stock = {stock}")).execute(&mut conn)?;
        anyhow::Ok(())
    })
    .await?
}
