//! Idempotent event consumers: a policy runs on a durable JetStream pull
//! consumer, records each event id in its inbox in the same transaction as
//! its effect, and acks only after that transaction committed. A redelivered
//! event is a no-op; replicas share the durable consumer and divide the work.

use std::sync::Arc;
use std::time::Duration;

use async_nats::HeaderMap;
use async_nats::jetstream::{self, AckKind, consumer::pull};
use diesel::prelude::*;
use futures::StreamExt as _;
use tokio_util::sync::CancellationToken;
use tracing::Instrument as _;

use crate::db::{Database, DbConnection, DbError, is_unique_violation, now_millis};
use crate::events::{self, Event, StreamDef};
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
            return Err(PolicyError::Malformed(format!(
                "expected subject {}, got {}",
                E::SUBJECT,
                self.subject
            )));
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
    /// Unacked messages across all replicas before JetStream stops delivering.
    pub max_ack_pending: i64,
}

impl Default for ConsumerConfig {
    fn default() -> Self {
        Self {
            ack_wait: Duration::from_secs(30),
            batch: 64,
            max_ack_pending: 1024,
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

/// Runs a [`Policy`] on its durable consumer until shutdown.
#[derive(Debug)]
pub struct Consumer<P> {
    policy: Arc<P>,
    db: Database,
    jetstream: jetstream::Context,
    signal: OutboxSignal,
    config: ConsumerConfig,
}

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
        }
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
            match self.consume(&shutdown).await {
                Ok(()) => return,
                Err(error) => {
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

    async fn consume(&self, shutdown: &CancellationToken) -> Result<(), async_nats::Error> {
        let stream = self.policy.stream().ensure(&self.jetstream).await?;
        let name = self.policy.name();
        let consumer: jetstream::consumer::PullConsumer = stream
            .get_or_create_consumer(
                name,
                pull::Config {
                    durable_name: Some(name.to_owned()),
                    filter_subjects: self.policy.subjects(),
                    ack_policy: jetstream::consumer::AckPolicy::Explicit,
                    ack_wait: self.config.ack_wait,
                    max_ack_pending: self.config.max_ack_pending,
                    ..Default::default()
                },
            )
            .await?;
        let mut messages = consumer
            .stream()
            .max_messages_per_batch(self.config.batch)
            .heartbeat(Duration::from_secs(5))
            .messages()
            .await?;
        tracing::info!(consumer = name, "consuming");
        loop {
            let message = tokio::select! {
                next = messages.next() => next,
                () = shutdown.cancelled() => return Ok(()),
            };
            let Some(message) = message else {
                return Err("message stream ended".into());
            };
            let message = message?;
            self.handle(message).await;
        }
    }

    async fn handle(&self, message: jetstream::Message) {
        let name = self.policy.name();
        let event = match received(&message) {
            Ok(event) => event,
            Err(reason) => {
                tracing::error!(consumer = name, subject = %message.subject, %reason, "event without id rejected");
                ack(&message, AckKind::Term).await;
                return;
            }
        };
        let span =
            tracing::info_span!("consume", consumer = name, subject = %event.subject, event_id = %event.event_id);
        self.settle(&message, event).instrument(span).await;
    }

    /// Applies the event once and tells JetStream what became of it.
    async fn settle(&self, message: &jetstream::Message, event: ReceivedEvent) {
        let policy = Arc::clone(&self.policy);
        let applied_event = event.clone();
        let result = self
            .db
            .write(move |conn| apply_once(policy.as_ref(), conn, &applied_event))
            .await;
        let retry_in = || {
            crate::backoff(
                u32::try_from(event.delivered).unwrap_or(u32::MAX),
                Duration::from_millis(100),
                Duration::from_secs(10),
            )
        };
        match result {
            Ok(()) => {
                ack(message, AckKind::Ack).await;
                self.signal.wake();
                self.policy.applied(&event);
                tracing::debug!("event applied");
            }
            Err(NotApplied::AlreadyApplied) => {
                ack(message, AckKind::Ack).await;
                tracing::debug!("event already applied");
            }
            Err(NotApplied::Policy(PolicyError::Malformed(reason))) => {
                tracing::error!(%reason, "event can never be applied; terminated");
                ack(message, AckKind::Term).await;
            }
            Err(NotApplied::Policy(PolicyError::NotYet(reason))) => {
                let delay = retry_in();
                tracing::info!(%reason, retry_in = ?delay, "event not yet applicable");
                ack(message, AckKind::Nak(Some(delay))).await;
            }
            Err(NotApplied::Policy(PolicyError::Db(error))) => {
                let delay = retry_in();
                tracing::warn!(%error, transient = error.is_transient(), retry_in = ?delay, "event not applied");
                ack(message, AckKind::Nak(Some(delay))).await;
            }
        }
    }
}

/// Records the event in the inbox, then applies it; both or neither commit.
fn apply_once<P: Policy>(policy: &P, conn: &mut DbConnection, event: &ReceivedEvent) -> Result<(), NotApplied> {
    let seen = diesel::select(diesel::dsl::exists(
        inbox::table
            .filter(inbox::consumer.eq(policy.name()))
            .filter(inbox::event_id.eq(&event.event_id)),
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

fn received(message: &jetstream::Message) -> Result<ReceivedEvent, String> {
    let headers = message.headers.as_ref();
    let header = |name: &str| -> Option<String> {
        headers
            .and_then(|h: &HeaderMap| h.get(name))
            .map(|v| v.as_str().to_owned())
    };
    let event_id = header(events::MSG_ID_HEADER).ok_or_else(|| format!("no {} header", events::MSG_ID_HEADER))?;
    let delivered = message.info().map(|info| info.delivered).unwrap_or(1);
    Ok(ReceivedEvent {
        subject: message.subject.to_string(),
        event_id,
        event_type: header(events::EVENT_TYPE_HEADER),
        customer_id: header(events::CUSTOMER_ID_HEADER),
        mission_id: header(events::MISSION_ID_HEADER),
        payload: message.payload.clone(),
        delivered,
    })
}

async fn ack(message: &jetstream::Message, kind: AckKind) {
    if let Err(error) = message.ack_with(kind).await {
        // The event stays unacked and JetStream redelivers it after ack_wait;
        // the inbox makes that redelivery a no-op.
        tracing::warn!(%error, "ack failed");
    }
}
