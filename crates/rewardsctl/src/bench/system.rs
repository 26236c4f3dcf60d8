//! The whole system as the benchmarks run it: nats-server and every service
//! on free ports in a fresh directory, timed until all are SERVING, with
//! players seeded through the gateway and their wallet entries read back.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::bail;
use diesel::QueryableByName;
use diesel::sql_types::{BigInt, Text};
use loadgen::Catalogue;
use loadgen::grpc::{Target, outcome};
use loadgen::run::{OpenLoop, open_loop};
use tonic::metadata::AsciiMetadataValue;

use crate::mesh::{Layout, Mesh, MeshConfig, Replicas, Shape};
use crate::stores::Stores;

/// A running system.
#[derive(Debug)]
pub struct System {
    pub mesh: Mesh,
    /// From starting nats-server until every process answered SERVING.
    pub serving_after: Duration,
    pub stores: Stores,
    /// The missions the load achieves: the mission service's own catalogue.
    pub catalogue: Catalogue,
}

impl System {
    /// Starts everything in `run_dir` and waits until it serves.
    ///
    /// # Errors
    /// When a process is missing or does not serve within a minute.
    pub async fn start(
        shape: Shape,
        run_dir: PathBuf,
        bin_dir: PathBuf,
        mut env: Vec<(String, String, String)>,
    ) -> anyhow::Result<Self> {
        // The load comes from one address at rates far above what one player
        // is allowed: the per-caller limit would measure itself, not the mesh.
        for (variable, value) in [("GATEWAY_RATE_LIMIT_PER_SECOND", "1000000"), ("GATEWAY_RATE_LIMIT_BURST", "1000000")]
        {
            env.push(("gateway".into(), variable.into(), value.into()));
        }
        let layout = Layout::free(shape, &Replicas::default())?;
        let config = MeshConfig { run_dir, bin_dir, nats_server: None, layout, env, announce: true };
        let mut mesh = Mesh::new(config)?;
        let started = Instant::now();
        mesh.start_infrastructure().await?;
        mesh.start_members(|_| true);
        mesh.wait_until_serving(Duration::from_secs(60), true).await?;
        let serving_after = started.elapsed();
        let stores = mesh.stores();
        let gateway = Target::connect(&mesh.layout().urls("gateway"), 1, &[]).await?;
        let request = dev_issuer::authorized(
            api::game::mission::v1::ListMissionDefinitionsRequest {},
            &mesh.identity().operator(),
        );
        let missions = api::game::mission::v1::mission_service_client::MissionServiceClient::new(gateway.channel(0));
        let catalogue = Catalogue::fetch(missions, request).await?;
        Ok(Self { mesh, serving_after, stores, catalogue })
    }

    /// The gateway's URLs (comma-separated when it runs in replicas).
    pub fn gateway(&self) -> String {
        self.mesh.layout().urls("gateway")
    }

    /// The URL of `service` itself, past the gateway.
    pub fn service(&self, service: &str) -> String {
        self.mesh.layout().urls(service)
    }

    /// The `authorization` value of player `customer_id`'s calls.
    ///
    /// # Errors
    /// Never in practice: a signed token is ASCII.
    pub fn bearer(&self, customer_id: &str) -> anyhow::Result<AsciiMetadataValue> {
        Ok(format!("Bearer {}", self.mesh.identity().player(customer_id)).parse()?)
    }

    /// Bearers of the players `<prefix>-0` … `<prefix>-{players - 1}`, signed
    /// now so that signing costs nothing inside a timed run.
    ///
    /// # Errors
    /// When signing fails.
    pub async fn bearers(&self, prefix: &str, players: u64) -> anyhow::Result<Bearers> {
        let identity = self.mesh.identity().clone();
        let prefix = prefix.to_owned();
        let signed = tokio::task::spawn_blocking(move || {
            (0..players)
                .map(|p| Ok(format!("Bearer {}", identity.player(&format!("{prefix}-{p}"))).parse()?))
                .collect::<anyhow::Result<Vec<AsciiMetadataValue>>>()
        })
        .await??;
        Ok(Bearers(signed.into()))
    }

    /// Stops every process.
    pub async fn stop(self) {
        self.mesh.stop().await;
    }
}

/// Pre-signed bearers of numbered players, cheap to clone into every call.
#[derive(Debug, Clone)]
pub struct Bearers(Arc<[AsciiMetadataValue]>);

impl Bearers {
    /// `request` as a call of player number `player`.
    pub fn player<T>(&self, player: u64, request: &mut tonic::Request<T>) {
        if let Some(bearer) = usize::try_from(player).ok().and_then(|p| self.0.get(p)) {
            request.metadata_mut().insert("authorization", bearer.clone());
        }
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
/// (the whole catalogue each), then waits until every reward is an AVAILABLE wallet entry
/// and returns the entries.
///
/// # Errors
/// When calls fail or the entries do not all arrive within the time the
/// slowest drain seen so far would allow.
pub async fn seed_entries(system: &System, prefix: &str, count: u64) -> anyhow::Result<Vec<Entry>> {
    let catalogue = system.catalogue.clone();
    let bearers = system.bearers(prefix, count.div_ceil(catalogue.len())).await?;
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
        let (target, prefix, bearers) = (target.clone(), prefix_owned.clone(), bearers.clone());
        let request = catalogue.achieve_request(&prefix, i);
        let player = catalogue.player(i);
        async move {
            let mut request = target.request(request);
            bearers.player(player, &mut request);
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
    let js = async_nats::jetstream::new(async_nats::connect(system.mesh.layout().nats_urls()).await?);
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
    system.stores.execute("gift", format!("UPDATE products SET stock = {stock}")).await.map(drop)
}
