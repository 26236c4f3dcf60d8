//! The transactional outbox and its relay.
//!
//! A use case never publishes: it stages the event in the `outbox` table in
//! the same transaction as the aggregate change ([`stage`]). The [`Relay`]
//! publishes staged rows in order, waits for JetStream's PubAck, then marks
//! them published. A crash anywhere in between re-publishes with the same
//! `Nats-Msg-Id`, which JetStream drops as a duplicate.

use std::cell::Cell;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use async_nats::HeaderMap;
use async_nats::jetstream::{self, message::PublishMessage};
use diesel::prelude::*;
use tokio::sync::{Notify, oneshot};
use tokio_util::sync::CancellationToken;

use crate::db::{Database, DbConnection, DbError, now_millis};
use crate::events::{self, Event, Replicas, StreamDef, TopologyError};
use crate::failpoint;
use crate::metrics::metrics;

diesel::table! {
    outbox (seq) {
        seq -> BigInt,
        event_id -> Text,
        subject -> Text,
        payload -> Binary,
        headers -> Text,
        created_at -> BigInt,
        published_at -> Nullable<BigInt>,
    }
}

#[derive(Insertable)]
#[diesel(table_name = outbox)]
struct NewOutboxRow<'a> {
    event_id: &'a str,
    subject: &'a str,
    payload: Vec<u8>,
    headers: String,
    created_at: i64,
}

#[derive(Debug, Queryable)]
struct OutboxRow {
    seq: i64,
    event_id: String,
    subject: String,
    payload: Vec<u8>,
    headers: String,
}

thread_local! {
    /// Whether this thread staged an event since a relay's probe last
    /// looked. On SQLite every write runs on the store's writer thread, so
    /// the probe the writer runs after a commit ([`Database::after_commit`])
    /// reads the outbox only after commits that staged something. (On
    /// PostgreSQL nothing reads it.)
    static STAGED: Cell<bool> = const { Cell::new(false) };
}

/// Stages `event` for publication, inside the caller's transaction.
///
/// # Errors
/// When the insert fails; the caller's transaction then rolls back with it.
pub fn stage<E: Event>(conn: &mut DbConnection, event: &E) -> Result<(), DbError> {
    let correlation = event.correlation();
    let headers: BTreeMap<&str, &str> = BTreeMap::from([
        (events::EVENT_TYPE_HEADER, E::TYPE),
        (events::EVENT_ID_HEADER, event.event_id()),
        (events::MISSION_ID_HEADER, correlation.mission_id.as_str()),
        (events::CUSTOMER_ID_HEADER, correlation.customer_id.as_str()),
    ]);
    // The trace of the transaction that staged the event travels with it.
    let trace = crate::telemetry::current_trace_headers();
    let headers: BTreeMap<&str, &str> =
        headers.into_iter().chain(trace.iter().map(|(k, v)| (k.as_str(), v.as_str()))).collect();
    let headers = serde_json::to_string(&headers).unwrap_or_else(|_| "{}".to_owned());
    diesel::insert_into(outbox::table)
        .values(NewOutboxRow {
            event_id: event.event_id(),
            subject: E::SUBJECT,
            payload: event.encode_to_vec(),
            headers,
            created_at: now_millis(),
        })
        .execute(conn)?;
    // Set even if the caller's savepoint rolls back: the probe then reads
    // once for nothing.
    STAGED.set(true);
    Ok(())
}

/// How many staged events are waiting to be published, and the age of the oldest.
///
/// # Errors
/// When the query fails.
pub fn backlog(conn: &mut DbConnection) -> Result<(i64, Option<i64>), DbError> {
    let (count, oldest): (i64, Option<i64>) = outbox::table
        .filter(outbox::published_at.is_null())
        .select((diesel::dsl::count_star(), diesel::dsl::min(outbox::created_at)))
        .first(conn)?;
    Ok((count, oldest.map(|created| now_millis() - created)))
}

/// Wakes the relay as soon as a transaction staged something, so events
/// leave within milliseconds instead of at the next poll.
#[derive(Debug, Clone, Default)]
pub struct OutboxSignal(Arc<Notify>);

impl OutboxSignal {
    /// Tells the relay there is something to publish.
    pub fn wake(&self) {
        self.0.notify_one();
    }
}

/// Tuning of the relay.
#[derive(Debug, Clone)]
pub struct RelayConfig {
    /// Rows published per round trip batch.
    pub batch_size: i64,
    /// Poll interval, for rows staged by other replicas or left by a crash.
    pub poll_interval: Duration,
    /// Published rows are kept this long for diagnosis, then pruned.
    pub retention: Duration,
    /// Copies JetStream keeps of the streams the relay declares.
    pub replicas: Replicas,
}

impl Default for RelayConfig {
    fn default() -> Self {
        Self {
            batch_size: 256,
            poll_interval: Duration::from_millis(250),
            retention: Duration::from_secs(3600),
            replicas: Replicas::ONE,
        }
    }
}

/// Publishes staged outbox rows to JetStream, in order, at least once.
#[derive(Debug)]
pub struct Relay {
    db: Database,
    jetstream: jetstream::Context,
    signal: OutboxSignal,
    config: RelayConfig,
    /// The streams this service publishes to, created before the first publish.
    streams: &'static [StreamDef],
}

#[derive(Debug, thiserror::Error)]
enum RelayError {
    #[error(transparent)]
    Db(#[from] DbError),
    #[error("publish to JetStream failed: {0}")]
    Publish(String),
    #[error(transparent)]
    Topology(#[from] TopologyError),
}

impl Relay {
    /// A relay over `db`'s outbox into `streams`, woken by `signal`.
    pub fn new(
        db: Database,
        jetstream: jetstream::Context,
        signal: OutboxSignal,
        config: RelayConfig,
        streams: &'static [StreamDef],
    ) -> Self {
        Self { db, jetstream, signal, config, streams }
    }

    async fn ensure_streams(&self) -> Result<(), RelayError> {
        for stream in self.streams {
            if let Err(error) = stream.declare(&self.jetstream, self.config.replicas).await {
                if error.is_refusal() {
                    // Not a blip: said every time, at the level an operator alerts on.
                    tracing::error!(%error, "outbox relay cannot declare its stream");
                }
                return Err(error.into());
            }
        }
        Ok(())
    }

    /// Publishes until `shutdown` is cancelled, then makes one last pass so
    /// events staged before the shutdown leave with this process.
    pub async fn run(self, shutdown: CancellationToken) {
        let mut failures = 0u32;
        let mut last_prune = tokio::time::Instant::now();
        let mut last_measure = tokio::time::Instant::now() - Duration::from_secs(2);
        let mut streams_ready = false;
        let mut marks = Marks::default();
        // The writer's commit count before the last read (SQLite), and rows
        // the writer read for the relay after a commit.
        let mut seen: Option<u64> = None;
        let mut found: Option<Pending> = None;
        loop {
            let round = async {
                if !streams_ready {
                    self.ensure_streams().await?;
                    streams_ready = true;
                }
                self.publish_pending(&mut marks, &mut seen, found.take()).await
            };
            let published = round.await;
            // A count over the unpublished rows after every round would be
            // one more query per commit under load; once a second is enough
            // for a gauge.
            if last_measure.elapsed() > Duration::from_secs(1) {
                last_measure = tokio::time::Instant::now();
                self.measure_backlog().await;
            }
            match published {
                Ok(()) => failures = 0,
                Err(error) => {
                    // The stream may have been deleted or the broker replaced:
                    // create it again before the next attempt. A store outage
                    // says nothing about the streams.
                    if !matches!(error, RelayError::Db(_)) {
                        streams_ready = false;
                    }
                    failures = failures.saturating_add(1);
                    // Retrying against a store known to be down costs nothing
                    // (it is answered at once), and the events wait for it.
                    let max = if matches!(&error, RelayError::Db(db) if db.is_unavailable()) {
                        Duration::from_millis(500)
                    } else {
                        Duration::from_secs(5)
                    };
                    let delay = crate::backoff(failures, Duration::from_millis(200), max);
                    tracing::warn!(%error, retry_in = ?delay, "outbox relay could not publish");
                    tokio::select! {
                        () = tokio::time::sleep(delay) => continue,
                        () = shutdown.cancelled() => return,
                    }
                }
            }
            if last_prune.elapsed() > Duration::from_secs(60) {
                last_prune = tokio::time::Instant::now();
                if let Err(error) = self.prune().await {
                    tracing::warn!(%error, "pruning published outbox rows failed");
                }
            }
            // Marks still waiting for a write to ride on get one of their
            // own after MARK_RIDE_WAIT, so a quiet store does not keep
            // published rows unmarked (and re-published by a restart).
            let wait = if marks.is_empty() { self.config.poll_interval } else { MARK_RIDE_WAIT };
            // On SQLite the writer reads the outbox for the relay right after
            // the next commit that staged events: no wake-up of the relay by
            // the writer's caller, no read on the blocking pool. When a
            // commit slipped in since the last read, or on PostgreSQL, the
            // relay is woken by the callers and reads by itself.
            let after_commit = seen.and_then(|seen| self.db.after_commit(seen, self.probe(&marks)).ok());
            let woken = async {
                match after_commit {
                    Some(answer) => answer.await.ok(),
                    None => {
                        self.signal.0.notified().await;
                        None
                    }
                }
            };
            tokio::select! {
                read = woken => {
                    if let Some((read, commit)) = read {
                        seen = Some(commit);
                        found = Some(read);
                    }
                }
                () = tokio::time::sleep(wait) => {
                    if !marks.is_empty() {
                        if let Err(error) = self.db.flush().await {
                            tracing::warn!(%error, "outbox marks not committed");
                        }
                        marks.settle();
                    }
                }
                () = shutdown.cancelled() => {
                    let last = async {
                        let published = self.publish_pending(&mut marks, &mut seen, None).await;
                        self.db.flush().await?;
                        marks.settle();
                        published
                    };
                    match tokio::time::timeout(Duration::from_secs(5), last).await {
                        Ok(Ok(())) => {}
                        Ok(Err(error)) => tracing::warn!(%error, "outbox not flushed before shutdown"),
                        Err(elapsed) => tracing::warn!(%elapsed, "outbox not flushed before shutdown"),
                    }
                    return;
                }
            }
        }
    }

    /// The read the writer runs after each commit for the relay: nothing
    /// after a commit that staged no event, the pending rows otherwise.
    fn probe(&self, marks: &Marks) -> impl FnMut(&mut DbConnection, u64) -> Option<(Pending, u64)> + use<> {
        let in_flight = marks.in_flight();
        let limit = self.limit(&in_flight);
        move |conn, commit| {
            if !STAGED.replace(false) {
                return None;
            }
            match read_pending(conn, &in_flight, limit) {
                Ok((rows, _)) if rows.is_empty() => None,
                read => Some((read, commit)),
            }
        }
    }

    /// Publishes every pending row.
    ///
    /// Published rows are marked so by the next transaction the store's
    /// writer commits for any other write ([`Database::write_with_next`]):
    /// a mark costs neither a commit nor a thread hand-off of its own, and
    /// never holds back what was staged meanwhile. Until its mark commits a
    /// row is left out of the relay's reads; a crash before then publishes
    /// it again, with the same `Nats-Msg-Id`, which JetStream drops as a
    /// duplicate (as it always could between the PubAck and the mark).
    ///
    /// A read that finds less than a full batch ends the round once that
    /// batch is published: reading again would find only what was staged
    /// meanwhile, and each such commit has woken the relay, which starts the
    /// next round at once. Under a steady trickle this saves a read (a
    /// blocking-pool hand-off and a query) per round.
    ///
    /// `found` is what the writer read after a commit; `seen` is left at the
    /// writer's commit count before the last read.
    async fn publish_pending(
        &self,
        marks: &mut Marks,
        seen: &mut Option<u64>,
        mut found: Option<Pending>,
    ) -> Result<(), RelayError> {
        loop {
            marks.settle();
            let (rows, drained) = match found.take() {
                Some(read) => read?,
                None => {
                    *seen = self.db.commits();
                    self.pending(marks.in_flight()).await?
                }
            };
            if rows.is_empty() {
                return Ok(());
            }
            failpoint::reached(failpoint::RELAY_BEFORE_PUBLISH).await;
            // Pipelined: every publish goes out before the first ack is awaited;
            // one connection keeps them in order.
            let mut acks = Vec::with_capacity(rows.len());
            for row in rows {
                let ack = self
                    .jetstream
                    .send_publish(row.subject, publish_of(row.payload, &row.headers, &row.event_id))
                    .await
                    .map_err(|e| RelayError::Publish(e.to_string()))?;
                acks.push((row.seq, row.event_id, ack));
            }
            let mut published = Vec::with_capacity(acks.len());
            for (seq, event_id, ack) in acks {
                let ack = ack.await.map_err(|e| RelayError::Publish(e.to_string()))?;
                if ack.duplicate {
                    tracing::debug!(%event_id, "JetStream already had this event");
                }
                published.push(seq);
            }
            failpoint::reached(failpoint::RELAY_BEFORE_MARK_PUBLISHED).await;
            marks.start(&self.db, published);
            if drained {
                return Ok(());
            }
        }
    }

    /// The oldest unpublished rows, a batch of them, leaving out `in_flight`
    /// (published, their mark not yet committed; ascending); and whether
    /// that was all there was (the read came back short).
    async fn pending(&self, in_flight: Vec<i64>) -> Pending {
        let limit = self.limit(&in_flight);
        self.db.read(move |conn| read_pending(conn, &in_flight, limit)).await
    }

    /// Rows a read asks for: a batch besides those in flight.
    fn limit(&self, in_flight: &[i64]) -> i64 {
        self.config.batch_size + i64::try_from(in_flight.len()).unwrap_or(i64::MAX)
    }

    /// Publishes the backlog gauges; a failure only leaves them stale.
    async fn measure_backlog(&self) {
        if let Ok((count, oldest)) = self.db.read(backlog).await {
            metrics().outbox_backlog.set(count);
            #[allow(clippy::cast_precision_loss)] // milliseconds of age fit an f64 exactly for 285 000 years
            metrics().outbox_oldest_age.set(oldest.map_or(0.0, |ms| ms as f64 / 1000.0));
        }
    }

    async fn prune(&self) -> Result<(), DbError> {
        let cutoff = now_millis() - i64::try_from(self.config.retention.as_millis()).unwrap_or(i64::MAX);
        self.db
            .write(move |conn| {
                diesel::delete(outbox::table.filter(outbox::published_at.lt(cutoff)))
                    .execute(conn)
                    .map_err(DbError::from)
            })
            .await?;
        Ok(())
    }
}

/// Pending rows, and whether that was all there was.
type Pending = Result<(Vec<OutboxRow>, bool), DbError>;

/// See [`Relay::pending`].
fn read_pending(conn: &mut DbConnection, in_flight: &[i64], limit: i64) -> Pending {
    let mut rows: Vec<OutboxRow> = outbox::table
        .filter(outbox::published_at.is_null())
        .order(outbox::seq.asc())
        .limit(limit)
        .select((outbox::seq, outbox::event_id, outbox::subject, outbox::payload, outbox::headers))
        .load(conn)?;
    let drained = i64::try_from(rows.len()).unwrap_or(i64::MAX) < limit;
    rows.retain(|row| in_flight.binary_search(&row.seq).is_err());
    Ok((rows, drained))
}

/// How long a mark waits for another write to ride on before it is
/// committed on its own: under load the next write comes within a
/// millisecond; on a quiet store this bounds how long a published row stays
/// unmarked.
const MARK_RIDE_WAIT: Duration = Duration::from_millis(100);

/// Rows JetStream acknowledged whose marks wait for the store's next commit.
#[derive(Default)]
struct Marks(Vec<Marking>);

struct Marking {
    /// Ascending, as they were read.
    seqs: Vec<i64>,
    done: oneshot::Receiver<Result<usize, DbError>>,
}

impl Marks {
    /// Queues marking `seqs` published on the store's next commit.
    fn start(&mut self, db: &Database, seqs: Vec<i64>) {
        let marking = seqs.clone();
        let done = db.write_with_next(move |conn| {
            diesel::update(outbox::table.filter(outbox::seq.eq_any(marking)))
                .set(outbox::published_at.eq(now_millis()))
                .execute(conn)
                .map_err(DbError::from)
        });
        self.0.push(Marking { seqs, done });
    }

    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Every row published whose mark has not committed, ascending.
    fn in_flight(&self) -> Vec<i64> {
        let mut seqs: Vec<i64> = self.0.iter().flat_map(|m| m.seqs.iter().copied()).collect();
        seqs.sort_unstable();
        seqs
    }

    /// Forgets the marks that ended: committed, or failed, in which case
    /// their rows are read and published again (JetStream drops the copies).
    fn settle(&mut self) {
        self.0.retain_mut(|marking| match marking.done.try_recv() {
            Err(oneshot::error::TryRecvError::Empty) => true,
            Ok(Ok(count)) => {
                metrics().outbox_published.inc_by(u64::try_from(count).unwrap_or_default());
                tracing::debug!(count, "published outbox events");
                false
            }
            Ok(Err(error)) => {
                tracing::warn!(%error, rows = marking.seqs.len(), "marking outbox rows published failed; they are published again");
                false
            }
            Err(oneshot::error::TryRecvError::Closed) => {
                tracing::warn!(rows = marking.seqs.len(), "marking outbox rows published was dropped; they are published again");
                false
            }
        });
    }
}

/// The message of a staged row, its payload moved rather than copied.
fn publish_of(payload: Vec<u8>, headers: &str, event_id: &str) -> PublishMessage {
    let mut map = HeaderMap::new();
    if let Ok(stored) = serde_json::from_str::<BTreeMap<String, String>>(headers) {
        for (name, value) in stored {
            map.insert(name.as_str(), value.as_str());
        }
    }
    PublishMessage::build().payload(payload.into()).headers(map).message_id(event_id)
}
