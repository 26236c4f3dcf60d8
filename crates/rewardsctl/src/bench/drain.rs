//! The backlog-drain benchmark: with nats-server and the reward service
//! only, N MissionAchieved events are published while reward is down; then
//! reward starts (1 replica, then 2 sharing one store and one durable
//! consumer), and the clock runs until `reward-allocate` has nothing
//! pending or unacknowledged and N rewards exist.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use api::game::mission::v1::MissionAchieved;
use async_nats::jetstream::{self, message::PublishMessage};
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

impl Options {
    /// Parses the arguments after `drain`.
    ///
    /// # Errors
    /// On an unknown or incomplete argument.
    pub fn parse(args: &[String]) -> Result<Self, String> {
        let mut options = Self {
            events: 10_000,
            replicas: vec![1, 2],
            run_dir: super::run_dir("drain"),
            bin_dir: super::bin_dir().map_err(|e| e.to_string())?,
            nats_server: None,
        };
        let mut args = args.iter();
        while let Some(arg) = args.next() {
            match arg.as_str() {
                "--events" => {
                    let value = args.next().ok_or("--events needs a count")?;
                    options.events = value.parse().map_err(|_| format!("--events: {value:?} is not a count"))?;
                }
                "--run-dir" => options.run_dir = args.next().ok_or("--run-dir needs a directory")?.into(),
                other => return Err(format!("unknown argument {other:?}")),
            }
        }
        if options.events == 0 {
            return Err("--events must be at least 1".into());
        }
        Ok(options)
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
    let mut rounds = Vec::new();
    for replicas in options.replicas.clone() {
        let round = drain(&options, replicas).await?;
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

async fn drain(options: &Options, replicas: usize) -> anyhow::Result<Drained> {
    let mut counts = Replicas::default();
    counts.set("reward", replicas).map_err(anyhow::Error::msg)?;
    let mut layout = Layout::free(crate::mesh::Shape::Single, &counts)?;
    layout.members.retain(|m| m.service.name == "reward");
    let config = MeshConfig {
        run_dir: options.run_dir.join(format!("replicas-{replicas}")),
        bin_dir: options.bin_dir.clone(),
        nats_server: options.nats_server.clone(),
        layout,
        env: Vec::new(),
        announce: true,
    };
    let mut mesh = Mesh::new(config)?;
    mesh.start_infrastructure().await?;
    let client = async_nats::connect(mesh.layout().nats_urls()).await.context("cannot connect to nats-server")?;
    let js = jetstream::new(client);
    publish_backlog(&js, options.events).await?;

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
async fn publish_backlog(js: &jetstream::Context, count: usize) -> anyhow::Result<()> {
    MISSION_STREAM.ensure(js).await.map_err(|e| anyhow::anyhow!("cannot create the MISSION stream: {e}"))?;
    let codes = [("FIRST_LOGIN", 100), ("FIRST_WIN", 300), ("INVITE_FRIEND", 500), ("WEEKLY_QUEST", 800)];
    let started = Instant::now();
    for batch in (0..count).collect::<Vec<_>>().chunks(1000) {
        let mut acks = Vec::with_capacity(batch.len());
        for i in batch {
            let (code, points) = codes[i % codes.len()];
            let mission_id = uuid::Uuid::now_v7();
            let event = MissionAchieved {
                event_id: kernel::derived_uuid(mission_id, b"MissionAchieved").to_string(),
                mission_id: mission_id.to_string(),
                customer_id: format!("bench-{:05}", i / codes.len()),
                mission_code: code.to_owned(),
                reward_points: points,
                achieved_at: Some(platform::events::timestamp(platform::db::now_millis())),
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
