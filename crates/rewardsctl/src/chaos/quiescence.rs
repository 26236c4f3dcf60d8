//! Quiescence: the moment nothing is left in flight. Every durable consumer
//! has delivered and had acknowledged everything (JetStream's own figures),
//! every outbox is published, the wallet has settled every exchange and
//! expired every entry that fell due, and gift has carried out every
//! cancellation the vendor planned.

use std::time::{Duration, Instant};

use anyhow::Context as _;
use api::catalogue;
use async_nats::jetstream;
use futures::TryStreamExt as _;
use platform::events::{GIFT_STREAM, MISSION_STREAM, REWARD_STREAM, SETTLEMENT_STREAM, StreamDef, WALLET_STREAM};

use crate::stores::Stores;

/// The streams whose consumers must have caught up.
pub const STREAMS: [StreamDef; 5] = [MISSION_STREAM, REWARD_STREAM, WALLET_STREAM, GIFT_STREAM, SETTLEMENT_STREAM];

/// Waits until two looks in a row, half a second apart, find nothing in
/// flight; returns how long that took. With `progress`, tells every few
/// seconds what is still in flight.
///
/// # Errors
/// With what was still in flight, when it does not happen within `within`.
pub async fn wait(
    js: &jetstream::Context,
    stores: &Stores,
    within: Duration,
    progress: bool,
) -> anyhow::Result<Duration> {
    let started = Instant::now();
    let mut quiet_before = false;
    let mut last_told = Instant::now();
    loop {
        let busy = match in_flight(js, stores).await {
            Ok(busy) => busy,
            Err(error) => vec![format!("{error:#}")],
        };
        if busy.is_empty() {
            if quiet_before {
                return Ok(started.elapsed());
            }
            quiet_before = true;
        } else {
            quiet_before = false;
            if started.elapsed() > within {
                anyhow::bail!("not quiescent after {}s: {}", within.as_secs(), busy.join("; "));
            }
            if progress && last_told.elapsed() > Duration::from_secs(5) {
                println!("[chaos] {:5.1}s  still in flight: {}", started.elapsed().as_secs_f64(), busy.join("; "));
                last_told = Instant::now();
            }
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// What is still in flight; empty when nothing is.
///
/// # Errors
/// When JetStream or a store cannot be read.
pub async fn in_flight(js: &jetstream::Context, stores: &Stores) -> anyhow::Result<Vec<String>> {
    let mut busy = Vec::new();
    let mut consumers = Vec::new();
    for stream in STREAMS {
        let Ok(handle) = js.get_stream(stream.name).await else {
            busy.push(format!("stream {} unreadable", stream.name));
            continue;
        };
        let infos: Vec<jetstream::consumer::Info> =
            handle.consumers().try_collect().await.with_context(|| format!("consumers of {}", stream.name))?;
        for info in infos {
            if info.num_pending > 0 || info.num_ack_pending > 0 {
                busy.push(format!(
                    "{}: {} undelivered, {} unacknowledged",
                    info.name, info.num_pending, info.num_ack_pending
                ));
            }
            consumers.push(info.name);
        }
    }
    // Every durable consumer of the catalogue must exist once the mesh ran.
    for expected in catalogue::consumers() {
        if !consumers.iter().any(|c| c == expected.name) {
            busy.push(format!("consumer {} does not exist", expected.name));
        }
    }
    // Every service that publishes does so through its outbox.
    for service in catalogue::SERVICES.iter().filter(|s| s.publishes.is_some()).map(|s| s.name) {
        let backlog = stores.outbox_backlog(service).await?;
        if backlog > 0 {
            busy.push(format!("{service} outbox: {backlog} unpublished"));
        }
    }
    let pending = stores.pending_exchanges().await?;
    if pending > 0 {
        busy.push(format!("wallet: {pending} exchanges pending"));
    }
    // The jobs that act after the fact: expiries that fell due, the
    // vendor's planned cancellations.
    let now = platform::db::now_millis();
    let due = stores.due_to_expire(now).await?;
    if due > 0 {
        busy.push(format!("wallet: {due} entries due to expire"));
    }
    let planned = stores.planned_cancellations().await?;
    if planned > 0 {
        busy.push(format!("gift: {planned} cancellations planned"));
    }
    Ok(busy)
}
