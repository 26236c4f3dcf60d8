//! The backlog-drain benchmark: with nats-server and the reward service
//! only, N MissionAchieved events are published while reward is down; then
//! reward starts (1 replica, then 2 sharing one store and one durable
//! consumer), and the clock runs until `reward-allocate` has nothing
//! pending or unacknowledged and N rewards exist. The backlog holds the
//! missions of the catalogue a mission service of its own serves first.

use std::num::NonZeroUsize;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use api::game::mission::v1::mission_service_client::MissionServiceClient;
use api::game::mission::v1::{ListMissionDefinitionsRequest, MissionAchieved};
use async_nats::jetstream::{self, message::PublishMessage};
use dev_issuer::authorized;
use loadgen::Catalogue;
use platform::events::{CUSTOMER_ID_HEADER, EVENT_TYPE_HEADER, Event as _, MISSION_ID_HEADER, MISSION_STREAM};
use prost::Message as _;

use crate::mesh::{Layout, Mesh, MeshConfig, Replicas};

/// The consumer whose backlog is measured.
const CONSUMER: &str = "reward-allocate";

/// Options of `rewardsctl bench drain`.
#[derive(Debug, Clone)]
pub struct Options {
    /// Events in the backlog.
    pub events: usize,
    /// Replica counts to measure, in order.
    pub replicas: Vec<usize>,
    /// Where each round's processes, stores and logs go.
    pub run_dir: PathBuf,
    /// Where the service binaries are.
    pub bin_dir: PathBuf,
    /// The nats-server binary; looked up when `None`.
    pub nats_server: Option<PathBuf>,
}

/// The command line of `rewardsctl bench drain`.
#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// MissionAchieved events in the backlog.
    #[arg(long, default_value = "10000", value_name = "N")]
    events: NonZeroUsize,
    /// Where each round's processes, stores and logs go (default .run/bench-<UTC time>/drain).
    #[arg(long, value_name = "DIR")]
    run_dir: Option<PathBuf>,
}

impl Args {
    /// The run these arguments ask for.
    ///
    /// # Errors
    /// When the running executable has no directory (the service binaries are beside it).
    pub fn options(self) -> anyhow::Result<Options> {
        Ok(Options {
            events: self.events.get(),
            replicas: vec![1, 2],
            run_dir: self.run_dir.unwrap_or_else(|| crate::runs::benchmark("drain")),
            bin_dir: crate::runs::bin_dir()?,
            nats_server: None,
        })
    }
}

/// One round's figures.
#[derive(Debug, Clone)]
pub struct Drained {
    pub replicas: usize,
    pub events: usize,
    /// From starting the replicas until the backlog was drained.
    pub total: Duration,
    /// From the first reward until the backlog was drained: the consumers'
    /// own pace, without the processes' start.
    pub draining: Duration,
}

impl Drained {
    fn rate(&self, over: Duration) -> f64 {
        #[allow(clippy::cast_precision_loss)] // a backlog of events fits an f64 exactly
        let events = self.events as f64;
        events / over.as_secs_f64().max(f64::EPSILON)
    }
}

/// Runs every round and prints the figures.
///
/// # Errors
/// When a round cannot run or does not drain within ten minutes.
pub async fn run(options: Options) -> anyhow::Result<()> {
    println!("\n== Backlog drain: {} MissionAchieved, consumer {CONSUMER} ==", options.events);
    let catalogue = catalogue(&options).await?;
    let mut rounds = Vec::new();
    for replicas in options.replicas.clone() {
        let round = drain(&options, &catalogue, replicas).await?;
        println!(
            "  {} replica{}: drained in {:.1}s from start = {:.0} events/s; {:.0} events/s from the first reward",
            round.replicas,
            if round.replicas == 1 { " " } else { "s" },
            round.total.as_secs_f64(),
            round.rate(round.total),
            round.rate(round.draining),
        );
        rounds.push(round);
    }
    println!("  processes, stores and logs in {}", options.run_dir.display());
    Ok(())
}

/// A mesh of nats-server and `service` alone (in `replicas`), in the run
/// directory's `dir`.
fn alone(options: &Options, service: &str, replicas: &Replicas, dir: &str, announce: bool) -> anyhow::Result<Mesh> {
    let mut layout = Layout::free(crate::mesh::Shape::Single, replicas)?;
    layout.members.retain(|m| m.service.name == service);
    Mesh::new(MeshConfig {
        run_dir: options.run_dir.join(dir),
        bin_dir: options.bin_dir.clone(),
        nats_server: options.nats_server.clone(),
        layout,
        env: Vec::new(),
        announce,
    })
}

/// The mission catalogue, as a mission service of its own (on a broker of
/// its own, in the run directory's `catalogue/`) serves it: the backlog is
/// published while no mission service runs, and must hold the missions the
/// real one would have announced.
async fn catalogue(options: &Options) -> anyhow::Result<Catalogue> {
    let mut mesh = alone(options, "mission", &Replicas::default(), "catalogue", false)?;
    mesh.start_infrastructure().await?;
    mesh.start_members(|_| true);
    let catalogue = async {
        mesh.wait_until_serving(Duration::from_secs(60), false).await?;
        let missions = MissionServiceClient::connect(mesh.layout().urls("mission")).await?;
        let request = authorized(ListMissionDefinitionsRequest {}, &mesh.identity().operator());
        Catalogue::fetch(missions, request).await
    }
    .await;
    mesh.stop().await;
    catalogue
}

async fn drain(options: &Options, catalogue: &Catalogue, replicas: usize) -> anyhow::Result<Drained> {
    let mut counts = Replicas::default();
    counts.set("reward", replicas).map_err(anyhow::Error::msg)?;
    let mut mesh = alone(options, "reward", &counts, &format!("replicas-{replicas}"), true)?;
    mesh.start_infrastructure().await?;
    let client = async_nats::connect(mesh.layout().nats_urls()).await.context("cannot connect to nats-server")?;
    let js = jetstream::new(client);
    publish_backlog(&js, catalogue, options.events).await?;

    let stores = mesh.stores();
    let started = Instant::now();
    mesh.start_members(|_| true);
    let mut first_reward = None;
    let deadline = started + Duration::from_secs(600);
    loop {
        let rewards = stores.rewards().await.unwrap_or_default();
        if rewards > 0 && first_reward.is_none() {
            first_reward = Some(Instant::now());
        }
        let expected = i64::try_from(options.events).unwrap_or(i64::MAX);
        if rewards >= expected && settled(&js).await {
            let total = started.elapsed();
            let draining = first_reward.map_or(total, |first| first.elapsed());
            mesh.stop().await;
            return Ok(Drained { replicas, events: options.events, total, draining });
        }
        if Instant::now() > deadline {
            mesh.stop().await;
            bail!("{replicas} replicas did not drain {} events within 10 minutes ({rewards} rewards)", options.events);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Whether the consumer exists and has nothing pending or unacknowledged.
async fn settled(js: &jetstream::Context) -> bool {
    let Ok(stream) = js.get_stream(MISSION_STREAM.name).await else { return false };
    stream.consumer_info(CONSUMER).await.is_ok_and(|info| info.num_pending == 0 && info.num_ack_pending == 0)
}

/// Publishes `count` MissionAchieved as the mission service would, pipelined
/// in batches, and waits for JetStream to have them all.
async fn publish_backlog(js: &jetstream::Context, catalogue: &Catalogue, count: usize) -> anyhow::Result<()> {
    MISSION_STREAM.ensure(js).await.map_err(|e| anyhow::anyhow!("cannot create the MISSION stream: {e}"))?;
    let codes = catalogue.definitions();
    let started = Instant::now();
    for batch in (0..count).collect::<Vec<_>>().chunks(1000) {
        let mut acks = Vec::with_capacity(batch.len());
        for i in batch {
            let definition = &codes[i % codes.len()];
            let mission_id = uuid::Uuid::now_v7();
            let event = MissionAchieved {
                event_id: kernel::derived_uuid(mission_id, b"MissionAchieved").to_string(),
                mission_id: mission_id.to_string(),
                customer_id: format!("bench-{:05}", i / codes.len()),
                mission_code: definition.mission_code.clone(),
                reward_points: definition.reward_points,
                achieved_at: Some(platform::events::timestamp(platform::db::now_millis())),
                programme_event_id: "LAUNCH".into(),
                event_ends_at: None,
            };
            let mut headers = async_nats::HeaderMap::new();
            headers.insert(EVENT_TYPE_HEADER, MissionAchieved::TYPE);
            headers.insert(MISSION_ID_HEADER, event.mission_id.as_str());
            headers.insert(CUSTOMER_ID_HEADER, event.customer_id.as_str());
            let message = PublishMessage::build()
                .payload(event.encode_to_vec().into())
                .headers(headers)
                .message_id(event.event_id.as_str());
            acks.push(js.send_publish(MissionAchieved::SUBJECT, message).await?);
        }
        for ack in acks {
            ack.await?;
        }
    }
    println!("  published the backlog in {:.1}s", started.elapsed().as_secs_f64());
    Ok(())
}
