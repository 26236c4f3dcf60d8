//! Idempotent event consumers: a policy runs on a durable JetStream pull
//! consumer, records each event id in its inbox in the same transaction as
//! its effect, and acks only after that transaction committed. A redelivered
//! event is a no-op; replicas share the durable consumer and divide the work.
//!
//! Events that arrive together are applied together: one transaction for
//! the batch, one inbox check and one savepoint per event, one commit, then
//! the acks. An event that cannot be applied (malformed, not yet applicable)
//! is undone alone at its savepoint and settled on its own while the rest
//! commit; a store failure rolls the batch back and every event of it is
//! applied on its own, exactly as without batching.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use async_nats::HeaderMap;
use async_nats::jetstream::{self, AckKind, consumer::pull, message::PublishMessage};
use diesel::prelude::*;
use futures::StreamExt as _;
use tokio_util::sync::CancellationToken;
use tracing::Instrument as _;

use crate::db::{Database, DbConnection, DbError, is_unique_violation, now_millis};
use crate::events::{self, DEAD_LETTER_STREAM, Event, Replicas, StreamDef, TopologyError};
use crate::failpoint;
use crate::metrics::{self, metrics};
use crate::outbox::OutboxSignal;

diesel::table! {
    inbox (consumer, event_id) {
        consumer -> Text,
        event_id -> Text,
        processed_at -> BigInt,
    }
}

/// An event as a policy receives it.
#[derive(Debug, Clone)]
pub struct ReceivedEvent {
    /// The subject it was published on.
    pub subject: String,
    /// The event id (`Nats-Msg-Id`).
    pub event_id: String,
    /// The `Event-Type` header, when present.
    pub event_type: Option<String>,
    /// The `Customer-Id` correlation header, when present.
    pub customer_id: Option<String>,
    /// The `Mission-Id` correlation header, when present.
    pub mission_id: Option<String>,
    /// The protobuf payload.
    pub payload: bytes::Bytes,
    /// How many times JetStream delivered it (1 on the first delivery).
    pub delivered: i64,
}

impl ReceivedEvent {
    /// Decodes the payload as `E`, checking that the subject is `E`'s.
    ///
    /// # Errors
    /// [`PolicyError::Malformed`] when the subject or the bytes do not match.
    pub fn decode<E: Event>(&self) -> Result<E, PolicyError> {
        if self.subject != E::SUBJECT {
            return Err(PolicyError::Malformed(format!("expected subject {}, got {}", E::SUBJECT, self.subject)));
        }
        E::decode(self.payload.as_ref())
            .map_err(|e| PolicyError::Malformed(format!("{} payload does not decode: {e}", E::TYPE)))
    }
}

/// Why a policy could not apply an event.
#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    /// The event can never be applied (bad payload, violated invariant).
    #[error("malformed event: {0}")]
    Malformed(String),
    /// Not yet: e.g. the event it depends on has not arrived. Redelivered later.
    #[error("not yet applicable: {0}")]
    NotYet(String),
    /// The store failed; transient failures are retried.
    #[error(transparent)]
    Db(#[from] DbError),
}

impl From<diesel::result::Error> for PolicyError {
    fn from(error: diesel::result::Error) -> Self {
        Self::Db(DbError::Query(error))
    }
}

/// A reaction of a service to events of another context.
pub trait Policy: Send + Sync + 'static {
    /// The durable consumer's name, `<service>-<policy>`.
    fn name(&self) -> &'static str;
    /// The stream the policy reads.
    fn stream(&self) -> StreamDef;
    /// The subjects of that stream the policy reacts to.
    fn subjects(&self) -> Vec<String>;
    /// Applies the event's effect inside the inbox transaction.
    ///
    /// # Errors
    /// See [`PolicyError`].
    fn apply(&self, conn: &mut DbConnection, event: &ReceivedEvent) -> Result<(), PolicyError>;
    /// Called after the transaction that applied `event` committed.
    fn applied(&self, _event: &ReceivedEvent) {}
}

/// Tuning of a consumer.
#[derive(Debug, Clone)]
pub struct ConsumerConfig {
    /// How long JetStream waits for an ack before redelivering.
    pub ack_wait: Duration,
    /// Messages fetched per pull; small, because every message's ack timer
    /// starts when the server hands out the batch.
    pub batch: usize,
    /// Events applied in one transaction at most, of those already
    /// delivered; 1 applies each in its own.
    pub apply_batch: usize,
    /// Unacked messages across all replicas before JetStream stops delivering.
    pub max_ack_pending: i64,
    /// Deliveries after which an event that keeps failing for a reason that
    /// will not go away (a non-transient store error) is dead-lettered.
    /// Malformed events go at once; transient store errors never do.
    pub max_deliveries: i64,
    /// Deliveries after which an event still waiting for the one it depends
    /// on is dead-lettered (with `retry_max` 10 s, about five minutes).
    pub max_deliveries_not_yet: i64,
    /// Back-off before a failed event is delivered again: the first retry
    /// waits about `retry_base`, each further one twice as long, at most `retry_max`.
    pub retry_base: Duration,
    pub retry_max: Duration,
    /// How often the consumer's lag is read from JetStream.
    pub lag_interval: Duration,
}

impl Default for ConsumerConfig {
    fn default() -> Self {
        Self {
            // Above the store's 10 s busy timeout, so a slow transaction is
            // acked in time; short enough that a killed replica's unacked
            // events soon go to another one.
            ack_wait: Duration::from_secs(15),
            batch: 64,
            apply_batch: 64,
            max_ack_pending: 1024,
            max_deliveries: 8,
            max_deliveries_not_yet: 40,
            retry_base: Duration::from_millis(100),
            retry_max: Duration::from_secs(10),
            lag_interval: Duration::from_secs(2),
        }
    }
}

/// Why one delivery was not applied.
#[derive(Debug, thiserror::Error)]
enum NotApplied {
    /// The inbox already holds the event id: a redelivery, a no-op.
    #[error("already applied")]
    AlreadyApplied,
    #[error(transparent)]
    Policy(#[from] PolicyError),
}

impl From<DbError> for NotApplied {
    fn from(error: DbError) -> Self {
        Self::Policy(PolicyError::Db(error))
    }
}

impl From<diesel::result::Error> for NotApplied {
    fn from(error: diesel::result::Error) -> Self {
        Self::Policy(PolicyError::from(error))
    }
}

/// One delivery of a batch, with the span its effect is applied in.
struct Delivery {
    message: jetstream::Message,
    event: ReceivedEvent,
    span: tracing::Span,
}

/// Runs a [`Policy`] on its durable consumer until shutdown.
#[derive(Debug)]
pub struct Consumer<P> {
    policy: Arc<P>,
    db: Database,
    jetstream: jetstream::Context,
    signal: OutboxSignal,
    config: ConsumerConfig,
    /// Copies JetStream keeps of the durable consumer and its streams.
    replicas: Replicas,
    /// Deliveries of each unsettled event that failed for the store's sake
    /// (away, busy, a conflict): they say nothing about the event, so they
    /// do not count toward dead-lettering it.
    excused: std::sync::Mutex<HashMap<String, i64>>,
}

/// How often a consumer holding events looks whether the store is back.
const STORE_POLL: Duration = Duration::from_millis(100);

/// Events whose excused deliveries a process remembers at most; beyond,
/// it forgets them all, which can only make it dead-letter a failing event
/// later than it would, never sooner than `max_deliveries` real failures.
const MAX_EXCUSED: usize = 65_536;

impl<P: Policy> Consumer<P> {
    /// A consumer applying `policy` to `db`, waking the outbox relay when an
    /// effect staged events.
    pub fn new(policy: P, db: Database, jetstream: jetstream::Context, signal: OutboxSignal) -> Self {
        Self {
            policy: Arc::new(policy),
            db,
            jetstream,
            signal,
            config: ConsumerConfig::default(),
            replicas: Replicas::ONE,
            excused: std::sync::Mutex::default(),
        }
    }

    /// Keeps `replicas` copies of the durable consumer and its streams.
    #[must_use]
    pub fn with_replicas(mut self, replicas: Replicas) -> Self {
        self.replicas = replicas;
        self
    }

    /// Overrides the default tuning.
    #[must_use]
    pub fn with_config(mut self, config: ConsumerConfig) -> Self {
        self.config = config;
        self
    }

    /// Consumes until `shutdown` is cancelled, re-creating the consumer and
    /// its message stream whenever JetStream was lost.
    pub async fn run(self, shutdown: CancellationToken) {
        let name = self.policy.name();
        let mut failures = 0u32;
        while !shutdown.is_cancelled() {
            let started = tokio::time::Instant::now();
            match self.consume(&shutdown).await {
                Ok(()) => return,
                Err(error) => {
                    // A consumer that ran a while was healthy: start over.
                    if started.elapsed() > Duration::from_secs(30) {
                        failures = 0;
                    }
                    failures = failures.saturating_add(1);
                    let delay = crate::backoff(failures, Duration::from_millis(250), Duration::from_secs(5));
                    tracing::warn!(consumer = name, %error, retry_in = ?delay, "consumer interrupted");
                    tokio::select! {
                        () = tokio::time::sleep(delay) => {}
                        () = shutdown.cancelled() => return,
                    }
                }
            }
        }
    }

    /// Declares the policy's stream, the dead letters' stream and the
    /// durable consumer with the configured replicas; what [`Consumer::run`]
    /// does first, and a service at start-up to refuse to run on a topology
    /// JetStream will not give it.
    ///
    /// # Errors
    /// See [`TopologyError`].
    pub async fn declare(&self) -> Result<jetstream::consumer::PullConsumer, TopologyError> {
        let stream = self.policy.stream().declare(&self.jetstream, self.replicas).await?;
        DEAD_LETTER_STREAM.declare(&self.jetstream, self.replicas).await?;
        let name = self.policy.name();
        let config = pull::Config {
            durable_name: Some(name.to_owned()),
            filter_subjects: self.policy.subjects(),
            ack_policy: jetstream::consumer::AckPolicy::Explicit,
            ack_wait: self.config.ack_wait,
            max_ack_pending: self.config.max_ack_pending,
            // Unlimited on the server: this consumer counts deliveries
            // itself and dead-letters, so JetStream never drops an
            // event silently when a limit is reached.
            max_deliver: -1,
            num_replicas: self.replicas.get(),
            ..Default::default()
        };
        declare_durable(&stream, config).await
    }

    async fn consume(&self, shutdown: &CancellationToken) -> Result<(), async_nats::Error> {
        let mut consumer = match self.declare().await {
            Ok(consumer) => consumer,
            Err(error) => {
                if error.is_refusal() {
                    // Not a blip: said every time, at the level an operator alerts on.
                    tracing::error!(consumer = self.policy.name(), %error, "consumer cannot start");
                }
                return Err(error.into());
            }
        };
        let name = self.policy.name();
        // What has arrived is taken together, up to a batch, without waiting
        // for more: a lone event is applied at once.
        let mut messages = consumer
            .stream()
            .max_messages_per_batch(self.config.batch)
            .heartbeat(Duration::from_secs(5))
            .messages()
            .await?
            .ready_chunks(self.config.apply_batch.clamp(1, self.config.batch.max(1)));
        tracing::info!(consumer = name, "consuming");
        metrics::consumer_started(name);
        let mut lag = tokio::time::interval(self.config.lag_interval);
        loop {
            let arrived = tokio::select! {
                next = messages.next() => next,
                _ = lag.tick() => {
                    if let Ok(info) = consumer.info().await {
                        let pending = i64::try_from(info.num_pending).unwrap_or(i64::MAX);
                        metrics().consumer_lag.get_or_create(&metrics::consumer(name)).set(pending);
                    }
                    continue;
                }
                () = shutdown.cancelled() => return Ok(()),
            };
            let Some(arrived) = arrived else {
                return Err("message stream ended".into());
            };
            let mut batch = Vec::with_capacity(arrived.len());
            let mut failed = None;
            for message in arrived {
                match message {
                    Ok(message) => batch.push(message),
                    Err(error) => failed = Some(error),
                }
            }
            if !self.db.is_available() && !self.hold(&batch, shutdown).await {
                // Stopping: another replica takes them at once.
                for message in &batch {
                    ack(message, AckKind::Nak(None)).await;
                }
                return Ok(());
            }
            self.handle_batch(batch).await;
            if let Some(error) = failed {
                return Err(error.into());
            }
        }
    }

    /// Holds a delivered batch while the store is known to be down, instead
    /// of failing each event and having it delivered again and again: no
    /// ack, a progress note before the ack wait runs out (so JetStream does
    /// not hand them to a replica that is just as stuck), no further pulls.
    /// Returns once the store takes connections again (`true`), or when the
    /// service stops (`false`).
    async fn hold(&self, batch: &[jetstream::Message], shutdown: &CancellationToken) -> bool {
        let name = self.policy.name();
        tracing::warn!(consumer = name, events = batch.len(), "the store is unavailable; holding delivered events");
        let mut last_progress = tokio::time::Instant::now();
        while !self.db.is_available() {
            // Answered at once while the store is down; keeps the prober going.
            let _ = self.db.ping().await;
            if last_progress.elapsed() >= self.config.ack_wait / 3 {
                for message in batch {
                    ack(message, AckKind::Progress).await;
                }
                last_progress = tokio::time::Instant::now();
            }
            tokio::select! {
                () = tokio::time::sleep(STORE_POLL) => {}
                () = shutdown.cancelled() => return false,
            }
        }
        tracing::info!(consumer = name, events = batch.len(), "the store is back; applying held events");
        true
    }

    /// Applies the events of `messages` in one transaction and settles each.
    async fn handle_batch(&self, mut messages: Vec<jetstream::Message>) {
        if messages.len() <= 1 {
            if let Some(message) = messages.pop() {
                self.handle(message).await;
            }
            return;
        }
        let name = self.policy.name();
        let mut deliveries = Vec::with_capacity(messages.len());
        for message in messages {
            match received(&message) {
                (event, true) => {
                    let span = self.span(&message, &event);
                    deliveries.push(Delivery { message, event, span });
                }
                // No id to key an inbox row by: dead-lettered on its own.
                (_, false) => self.handle(message).await,
            }
        }
        let policy = Arc::clone(&self.policy);
        let applying: Vec<(ReceivedEvent, tracing::Span)> =
            deliveries.iter().map(|d| (d.event.clone(), d.span.clone())).collect();
        let batch_span = tracing::debug_span!("consume batch", consumer = name, events = applying.len());
        let outcomes =
            self.db.write(move |conn| apply_batch(policy.as_ref(), conn, &applying)).instrument(batch_span).await;
        let outcomes = match outcomes {
            Ok(outcomes) => outcomes,
            // The store is busy or away: every event of the batch comes back
            // later, as a single one would, instead of each waiting its turn
            // for the same lock again now.
            Err(NotApplied::Policy(failure @ PolicyError::Db(_))) if is_transient(&failure) => {
                for Delivery { message, event, span } in deliveries {
                    self.fail(&message, &event, &failure).instrument(span).await;
                }
                return;
            }
            // The batch rolled back for one event's sake: each event on its
            // own, with the retries and dead-lettering of a single delivery.
            Err(_) => {
                for Delivery { message, event, span } in deliveries {
                    self.settle(&message, event).instrument(span).await;
                }
                return;
            }
        };
        if outcomes.iter().any(Result::is_ok) {
            self.signal.wake();
            failpoint::reached(failpoint::CONSUMER_BEFORE_ACK).await;
        }
        for (Delivery { message, event, span }, outcome) in deliveries.into_iter().zip(outcomes) {
            self.conclude(&message, &event, outcome).instrument(span).await;
        }
    }

    /// The span an event's effect runs in, continuing its publisher's trace.
    fn span(&self, message: &jetstream::Message, event: &ReceivedEvent) -> tracing::Span {
        let span = tracing::info_span!(
            "consume",
            otel.name = %format!("consume {}", event.subject),
            otel.kind = "consumer",
            consumer = self.policy.name(),
            subject = %event.subject,
            event_id = %event.event_id,
            mission_id = event.mission_id.as_deref().unwrap_or_default(),
            trace_id = tracing::field::Empty,
        );
        let headers = message.headers.as_ref();
        crate::telemetry::continue_trace(&span, |key| headers.and_then(|h| h.get(key)).map(|v| v.as_str().to_owned()));
        span
    }

    async fn handle(&self, message: jetstream::Message) {
        let name = self.policy.name();
        let event = match received(&message) {
            (event, true) => event,
            (unidentified, false) => {
                // Nothing to key an inbox row by: dead-letter it, never drop it.
                let failure = PolicyError::Malformed("the event has no id".into());
                match self.dead_letter(&message, &unidentified, &failure).await {
                    Ok(()) => ack(&message, AckKind::Term).await,
                    Err(error) => {
                        tracing::error!(consumer = name, %error, "dead-lettering failed; will retry");
                        ack(&message, AckKind::Nak(Some(self.config.retry_max))).await;
                    }
                }
                return;
            }
        };
        let span = self.span(&message, &event);
        self.settle(&message, event).instrument(span).await;
    }

    /// Applies the event once, in its own transaction, and tells JetStream
    /// what became of it.
    async fn settle(&self, message: &jetstream::Message, event: ReceivedEvent) {
        let policy = Arc::clone(&self.policy);
        let applied_event = event.clone();
        let result = self.db.write(move |conn| apply_once(policy.as_ref(), conn, &applied_event)).await;
        if result.is_ok() {
            self.signal.wake();
            failpoint::reached(failpoint::CONSUMER_BEFORE_ACK).await;
        }
        self.conclude(message, &event, result).await;
    }

    /// Tells JetStream what became of an event whose transaction ended
    /// (committed when `outcome` is applied or already applied).
    async fn conclude(&self, message: &jetstream::Message, event: &ReceivedEvent, outcome: Result<(), NotApplied>) {
        let name = self.policy.name();
        // A failure counts its redelivery where it is handled, in `fail`.
        if event.delivered > 1 && !matches!(outcome, Err(NotApplied::Policy(_))) {
            metrics().consumer_redeliveries.get_or_create(&metrics::consumer(name)).inc();
        }
        let count = |outcome: &str| count_outcome(name, outcome);
        if outcome.is_ok() || matches!(outcome, Err(NotApplied::AlreadyApplied)) {
            self.settled(&event.event_id);
        }
        let failure = match outcome {
            Ok(()) => {
                ack(message, AckKind::Ack).await;
                self.policy.applied(event);
                count("applied");
                tracing::debug!("event applied");
                return;
            }
            Err(NotApplied::AlreadyApplied) => {
                ack(message, AckKind::Ack).await;
                count("duplicate");
                tracing::debug!("event already applied");
                return;
            }
            Err(NotApplied::Policy(failure)) => failure,
        };
        self.fail(message, event, &failure).await;
    }

    /// Dead-letters an event that will never apply, or has it delivered
    /// again after a back-off.
    async fn fail(&self, message: &jetstream::Message, event: &ReceivedEvent, failure: &PolicyError) {
        let name = self.policy.name();
        if event.delivered > 1 {
            metrics().consumer_redeliveries.get_or_create(&metrics::consumer(name)).inc();
        }
        let count = |outcome: &str| count_outcome(name, outcome);
        // Only deliveries that failed for the event's own sake count.
        let counted = if is_transient(failure) {
            self.excuse(&event.event_id);
            0
        } else {
            event.delivered - self.excused_deliveries(&event.event_id)
        };
        let hopeless = match failure {
            PolicyError::Malformed(_) => true,
            // The store will come back: a valid event is never dead-lettered
            // because of it; it keeps coming back at the longest back-off.
            PolicyError::Db(error) if error.is_transient() => false,
            // What it waits for may come late (a lagging stream), so it gets
            // far more deliveries than a failure that will not go away.
            PolicyError::NotYet(_) => counted >= self.config.max_deliveries_not_yet,
            PolicyError::Db(_) => counted >= self.config.max_deliveries,
        };
        if hopeless {
            match self.dead_letter(message, event, failure).await {
                Ok(()) => {
                    tracing::error!(reason = %failure, deliveries = event.delivered, "event dead-lettered");
                    metrics().dead_letters.get_or_create(&metrics::consumer(name)).inc();
                    count("dead_lettered");
                    ack(message, AckKind::Term).await;
                    self.settled(&event.event_id);
                    return;
                }
                // Never drop it: it stays on the stream and comes back.
                Err(error) => tracing::error!(%error, reason = %failure, "dead-lettering failed; will retry"),
            }
        }
        let attempt = u32::try_from(event.delivered).unwrap_or(u32::MAX);
        let delay = crate::backoff(attempt, self.config.retry_base, self.config.retry_max);
        match failure {
            PolicyError::NotYet(reason) => tracing::info!(%reason, retry_in = ?delay, "event not yet applicable"),
            other => {
                tracing::warn!(error = %other, retry_in = ?delay, deliveries = event.delivered, "event not applied")
            }
        }
        count("retried");
        ack(message, AckKind::Nak(Some(delay))).await;
    }

    /// Notes one delivery of `event_id` that failed for the store's sake.
    fn excuse(&self, event_id: &str) {
        let mut excused = self.excused.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if excused.len() >= MAX_EXCUSED && !excused.contains_key(event_id) {
            excused.clear();
        }
        *excused.entry(event_id.to_owned()).or_default() += 1;
    }

    /// How many deliveries of `event_id` failed for the store's sake.
    fn excused_deliveries(&self, event_id: &str) -> i64 {
        let excused = self.excused.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        excused.get(event_id).copied().unwrap_or_default()
    }

    /// Forgets `event_id`'s excused deliveries once it is settled.
    fn settled(&self, event_id: &str) {
        let mut excused = self.excused.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        excused.remove(event_id);
    }

    /// Moves the event to `deadletter.<consumer>` with its original headers
    /// and why, and waits for JetStream to have it.
    async fn dead_letter(
        &self,
        message: &jetstream::Message,
        event: &ReceivedEvent,
        failure: &PolicyError,
    ) -> Result<(), async_nats::Error> {
        let name = self.policy.name();
        let mut headers = message.headers.clone().unwrap_or_default();
        let sequence = message.info().map(|info| info.stream_sequence).unwrap_or_default();
        headers.insert(events::EVENT_ID_HEADER, event.event_id.as_str());
        headers.insert(events::DEAD_LETTER_REASON_HEADER, failure.to_string().as_str());
        headers.insert(events::DEAD_LETTER_CONSUMER_HEADER, name);
        headers.insert(events::DEAD_LETTER_SUBJECT_HEADER, event.subject.as_str());
        headers.insert(events::DEAD_LETTER_SEQUENCE_HEADER, sequence.to_string().as_str());
        headers.insert(events::DEAD_LETTER_DELIVERIES_HEADER, event.delivered.to_string().as_str());
        let publish = PublishMessage::build()
            .payload(event.payload.clone())
            .headers(headers)
            // One dead letter per consumer and delivered message, however
            // often this runs; a re-driven copy is a new message.
            .message_id(format!("{name}:{}:{sequence}", event.event_id));
        self.jetstream.send_publish(format!("deadletter.{name}"), publish).await?.await?;
        Ok(())
    }
}

/// Creates the durable consumer `config` names on `stream`, or brings the
/// existing one to `config`'s replica count and subjects (leaving the rest
/// of its configuration as it is: an operator may have tuned it). The
/// subjects are the policy's contract, not a tuning: a release whose policy
/// reacts to a new event must have it delivered by the consumer an earlier
/// release created.
///
/// # Errors
/// See [`TopologyError`].
pub async fn declare_durable(
    stream: &jetstream::stream::Stream,
    config: pull::Config,
) -> Result<jetstream::consumer::PullConsumer, TopologyError> {
    use jetstream::stream::ConsumerErrorKind;
    let name = config.durable_name.clone().unwrap_or_default();
    let subject = || format!("consumer {name} of stream {}", stream.cached_info().config.name);
    let wanted = config.num_replicas.max(1);
    let wanted_subjects = config.filter_subjects.clone();
    let refused = |kind: ConsumerErrorKind| match kind {
        ConsumerErrorKind::JetStream(answer) => events::refusal(Some(&answer)),
        _ => None,
    };
    let consumer: jetstream::consumer::PullConsumer = stream
        .get_or_create_consumer(&name, config)
        .await
        .map_err(|e| TopologyError::create(subject(), wanted, refused(e.kind()), &e))?;
    let existing = consumer.cached_info().config.clone();
    // 0 is "as many as the stream", which need not be what was asked for.
    let stream_replicas = stream.cached_info().config.num_replicas.max(1);
    let actual = if existing.num_replicas == 0 { stream_replicas } else { existing.num_replicas };
    let actual_subjects = filter_subjects(&existing);
    let subjects_match = same_subjects(&actual_subjects, &wanted_subjects);
    if actual == wanted && subjects_match {
        return Ok(consumer);
    }
    let mut updated = jetstream::consumer::Config { num_replicas: wanted, ..existing };
    if !subjects_match {
        updated.filter_subject = String::new();
        updated.filter_subjects.clone_from(&wanted_subjects);
    }
    stream.update_consumer(updated).await.map_err(|e| {
        let refused = match e.kind() {
            jetstream::stream::ConsumerUpdateErrorKind::JetStream(answer) => events::refusal(Some(&answer)),
            _ => None,
        };
        if actual == wanted {
            let action = format!("change the subjects of {} to {wanted_subjects:?}", subject());
            match refused {
                Some(reason) => TopologyError::Refused { action, reason },
                None => TopologyError::unreachable(subject(), &e),
            }
        } else {
            TopologyError::change(subject(), actual, wanted, refused, &e)
        }
    })?;
    if actual != wanted {
        tracing::warn!(consumer = %name, from = actual, to = wanted, "consumer replicas changed");
    }
    if !subjects_match {
        tracing::warn!(consumer = %name, from = ?actual_subjects, to = ?wanted_subjects, "consumer subjects changed");
    }
    stream.get_consumer(&name).await.map_err(|e| TopologyError::unreachable(subject(), &e))
}

/// The subjects a consumer's configuration filters on, however given.
fn filter_subjects(config: &jetstream::consumer::Config) -> Vec<String> {
    if config.filter_subjects.is_empty() && !config.filter_subject.is_empty() {
        vec![config.filter_subject.clone()]
    } else {
        config.filter_subjects.clone()
    }
}

/// Whether two lists name the same subjects, in any order.
fn same_subjects(a: &[String], b: &[String]) -> bool {
    a.iter().collect::<std::collections::BTreeSet<_>>() == b.iter().collect()
}

fn is_transient(failure: &PolicyError) -> bool {
    matches!(failure, PolicyError::Db(error) if error.is_transient())
}

/// Applies each event of a batch inside the caller's transaction, each at
/// its own savepoint so that one that cannot be applied is undone alone.
/// A store failure fails the whole batch: the transaction may be unusable,
/// and the caller then applies every event on its own.
fn apply_batch<P: Policy>(
    policy: &P,
    conn: &mut DbConnection,
    batch: &[(ReceivedEvent, tracing::Span)],
) -> Result<Vec<Result<(), NotApplied>>, NotApplied> {
    let mut outcomes = Vec::with_capacity(batch.len());
    for (event, span) in batch {
        // The effect runs in the event's own span: events it stages carry its trace.
        let _entered = span.enter();
        let outcome = conn.transaction(|conn| apply_once(policy, conn, event));
        if let Err(NotApplied::Policy(PolicyError::Db(error))) = outcome {
            return Err(NotApplied::Policy(PolicyError::Db(error)));
        }
        outcomes.push(outcome);
    }
    Ok(outcomes)
}

/// Records the event in the inbox, then applies it; both or neither commit.
fn apply_once<P: Policy>(policy: &P, conn: &mut DbConnection, event: &ReceivedEvent) -> Result<(), NotApplied> {
    let seen = diesel::select(diesel::dsl::exists(
        inbox::table.filter(inbox::consumer.eq(policy.name())).filter(inbox::event_id.eq(&event.event_id)),
    ))
    .get_result::<bool>(conn)
    .map_err(PolicyError::from)?;
    if seen {
        return Err(NotApplied::AlreadyApplied);
    }
    // The inbox row goes in before the effect: on PostgreSQL a replica
    // handling the same redelivered event blocks on this key until the other
    // transaction ends, then fails on it instead of applying the effect twice.
    let inserted = diesel::insert_into(inbox::table)
        .values((
            inbox::consumer.eq(policy.name()),
            inbox::event_id.eq(&event.event_id),
            inbox::processed_at.eq(now_millis()),
        ))
        .execute(conn);
    match inserted {
        Ok(_) => {}
        Err(error) if is_unique_violation(&error) => return Err(NotApplied::AlreadyApplied),
        Err(error) => return Err(PolicyError::from(error).into()),
    }
    policy.apply(conn, event)?;
    Ok(())
}

/// The event as a policy sees it, and whether it carries an id; one without
/// must be dead-lettered, under an id naming its stream position.
fn received(message: &jetstream::Message) -> (ReceivedEvent, bool) {
    let headers = message.headers.as_ref();
    let header =
        |name: &str| -> Option<String> { headers.and_then(|h: &HeaderMap| h.get(name)).map(|v| v.as_str().to_owned()) };
    let info = message.info().ok();
    let event_id = header(events::EVENT_ID_HEADER).or_else(|| header(events::MSG_ID_HEADER));
    let event = ReceivedEvent {
        subject: message.subject.to_string(),
        event_id: event_id.clone().unwrap_or_else(|| {
            format!("unidentified:{}:{}", info.as_ref().map_or("", |i| i.stream), info.map_or(0, |i| i.stream_sequence))
        }),
        event_type: header(events::EVENT_TYPE_HEADER),
        customer_id: header(events::CUSTOMER_ID_HEADER),
        mission_id: header(events::MISSION_ID_HEADER),
        payload: message.payload.clone(),
        delivered: message.info().map(|info| info.delivered).unwrap_or(1),
    };
    (event, event_id.is_some())
}

/// Counts one event of consumer `name` in `rewards_consumer_events_total{outcome}`.
fn count_outcome(name: &str, outcome: &str) {
    metrics().consumer_events.get_or_create(&[("consumer", name.to_owned()), ("outcome", outcome.to_owned())]).inc();
}

async fn ack(message: &jetstream::Message, kind: AckKind) {
    if let Err(error) = message.ack_with(kind).await {
        // The event stays unacked and JetStream redelivers it after ack_wait;
        // the inbox makes that redelivery a no-op.
        tracing::warn!(%error, "ack failed");
    }
}
