//! Replicas of one service on one PostgreSQL store splitting a backlog that
//! is already on their streams: what every consuming service proves, once,
//! here. Each delivery must be applied by exactly one replica (its inbox row
//! and its effect committed together), whichever replica JetStream hands
//! it to and however often.

use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use platform::events::StreamDef;

use crate::{Broker, PostgresSchema, ServiceCommand, ServiceProcess};

/// A durable consumer the backlog waits on: its stream and its name.
pub type Durable = (StreamDef, &'static str);

/// How a backlog was split.
#[derive(Debug)]
pub struct BacklogSplit {
    /// The replicas, still running: for the service's own checks (its
    /// published events, its API).
    pub replicas: Vec<ServiceProcess>,
    /// Events each replica applied, over all the consumers.
    pub applied: Vec<u64>,
    /// Deliveries each replica found already applied (redeliveries).
    pub duplicates: Vec<u64>,
    /// From the replicas' start until the last consumer settled.
    pub elapsed: Duration,
}

/// The series counting `consumer`'s deliveries with `outcome`.
fn outcome_series(consumer: &str, outcome: &str) -> String {
    format!("rewards_consumer_events_total{{consumer=\"{consumer}\",outcome=\"{outcome}\"}}")
}

/// `outcome`'s deliveries over `durables`, on `replica`; 0 before the first.
async fn outcomes(replica: &ServiceProcess, durables: &[Durable], outcome: &str) -> u64 {
    let mut total = 0.0;
    for (_, consumer) in durables {
        total += replica.metric(&outcome_series(consumer, outcome)).await.unwrap_or(0.0);
    }
    // Counters of whole deliveries.
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    let total = total as u64;
    total
}

/// Whether every one of `durables` has delivered and settled everything.
async fn drained(broker: &Broker, durables: &[Durable]) -> bool {
    for (stream, consumer) in durables {
        let Ok(stream) = broker.js.get_stream(stream.name).await else { return false };
        match stream.consumer_info(consumer).await {
            Ok(info) if info.num_pending == 0 && info.num_ack_pending == 0 => {}
            _ => return false,
        }
    }
    true
}

/// Starts `replicas` processes of `command` on `schema` (the command's
/// store) and waits until they applied the `backlog` events already on
/// `durables`; then checks that every replica took a share, that no event
/// was applied twice, and that each consumer's inbox holds one row per
/// event it applied.
///
/// A short `CONSUMER_ACK_WAIT_MS` makes JetStream hand a slow delivery to
/// the other replica while the first still applies it: the race the inbox
/// settles.
///
/// # Errors
/// When a replica does not start, the backlog is not drained `within`, or
/// a check fails (the message says which, with the figures).
pub async fn split_backlog(
    broker: &Broker,
    schema: &PostgresSchema,
    command: ServiceCommand,
    replicas: usize,
    durables: &[Durable],
    backlog: u64,
    within: Duration,
) -> anyhow::Result<BacklogSplit> {
    let command = command.env("CONSUMER_ACK_WAIT_MS", "1000");
    let started = Instant::now();
    let mut processes = Vec::with_capacity(replicas);
    for _ in 0..replicas {
        processes.push(command.clone().spawn()?);
    }
    for process in &mut processes {
        process.wait_healthy(within).await?;
    }
    let deadline = Instant::now() + within;
    loop {
        let mut applied = 0;
        for process in &processes {
            applied += outcomes(process, durables, "applied").await;
        }
        if applied >= backlog && drained(broker, durables).await {
            break;
        }
        if Instant::now() > deadline {
            bail!("{applied} of {backlog} events applied after {within:?}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let elapsed = started.elapsed();
    let mut applied = Vec::with_capacity(replicas);
    let mut duplicates = Vec::with_capacity(replicas);
    for process in &processes {
        applied.push(outcomes(process, durables, "applied").await);
        duplicates.push(outcomes(process, durables, "duplicate").await);
    }
    #[allow(clippy::cast_precision_loss)] // a backlog fits an f64 exactly
    let rate = backlog as f64 / elapsed.as_secs_f64();
    eprintln!(
        "{backlog} events split by {replicas} replicas on PostgreSQL in {elapsed:.2?} ({rate:.0} events/s); \
         applied {applied:?}, found already applied {duplicates:?}"
    );
    if applied.contains(&0) {
        bail!("a replica took no share of the backlog: applied {applied:?}");
    }
    if applied.iter().sum::<u64>() != backlog {
        bail!("{backlog} events, but applied {applied:?}: some applied twice, or not at all");
    }
    let mut inbox = 0;
    for (_, consumer) in durables {
        inbox += schema.count(&format!("SELECT COUNT(*) AS n FROM inbox WHERE consumer = '{consumer}'"))?;
    }
    if inbox != i64::try_from(backlog).context("backlog")? {
        bail!("{backlog} events applied, but the inboxes hold {inbox} rows");
    }
    Ok(BacklogSplit { replicas: processes, applied, duplicates, elapsed })
}

/// The ids of the events on `stream` once the outbox in `schema` is drained
/// (at least `expected` of them), checking that none is there twice: both
/// replicas' relays publish from the one outbox, and JetStream must keep
/// one copy of each.
///
/// # Errors
/// When the outbox is not drained within 10 s or an id appears twice.
pub async fn published_once(
    broker: &Broker,
    schema: &PostgresSchema,
    stream: StreamDef,
    expected: u64,
) -> anyhow::Result<std::collections::HashSet<String>> {
    let deadline = Instant::now() + Duration::from_secs(10);
    while schema.count("SELECT COUNT(*) AS n FROM outbox WHERE published_at IS NULL")? > 0 {
        if Instant::now() > deadline {
            bail!("the outbox was not drained within 10 s");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let messages = broker.published(stream, expected).await;
    let ids: std::collections::HashSet<String> = messages
        .iter()
        .filter_map(|m| m.headers.as_ref()?.get(platform::events::MSG_ID_HEADER).map(|id| id.as_str().to_owned()))
        .collect();
    if ids.len() != messages.len() {
        bail!("{} events on {}, but {} distinct ids", messages.len(), stream.name, ids.len());
    }
    Ok(ids)
}
