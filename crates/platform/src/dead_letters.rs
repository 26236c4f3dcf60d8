//! Dead letters: the events a consumer gave up on, kept on the DEADLETTER
//! stream with why, for an operator to list and re-drive.
//!
//! A re-drive publishes the original payload and headers on the original
//! subject again, under the same `Event-Id` (so every consumer that already
//! applied it finds it in its inbox and does nothing) but a fresh
//! `Nats-Msg-Id` (so JetStream's de-duplication window does not swallow
//! it), then removes the dead letter.

use async_nats::HeaderMap;
use async_nats::jetstream::{self, message::PublishMessage};

use crate::events::{self, DEAD_LETTER_STREAM};

/// One dead letter, as an operator sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadLetter {
    /// Its sequence on the DEADLETTER stream: what `redrive` takes.
    pub sequence: u64,
    /// The consumer that gave up.
    pub consumer: String,
    /// Why.
    pub reason: String,
    /// The event id (inbox key) and the subject it was published on.
    pub event_id: String,
    pub subject: String,
    /// How often it was delivered before the consumer gave up.
    pub deliveries: String,
    /// The correlation keys, when the event carried them.
    pub mission_id: String,
    pub customer_id: String,
    /// The protobuf payload, untouched.
    pub payload: bytes::Bytes,
    /// Every header it carries, the original ones and the dead-letter ones.
    pub headers: HeaderMap,
}

/// What can go wrong listing or re-driving.
#[derive(Debug, thiserror::Error)]
pub enum DeadLetterError {
    #[error("JetStream: {0}")]
    JetStream(#[from] async_nats::Error),
    #[error("there is no dead letter {0}")]
    NotFound(u64),
    #[error("dead letter {0} has no {1} header; it cannot be re-driven")]
    Incomplete(u64, &'static str),
}

fn header(headers: &HeaderMap, name: &str) -> String {
    headers.get(name).map(|v| v.as_str().to_owned()).unwrap_or_default()
}

fn dead_letter(message: jetstream::message::StreamMessage) -> DeadLetter {
    let h = &message.headers;
    DeadLetter {
        sequence: message.sequence,
        consumer: header(h, events::DEAD_LETTER_CONSUMER_HEADER),
        reason: header(h, events::DEAD_LETTER_REASON_HEADER),
        event_id: header(h, events::EVENT_ID_HEADER),
        subject: header(h, events::DEAD_LETTER_SUBJECT_HEADER),
        deliveries: header(h, events::DEAD_LETTER_DELIVERIES_HEADER),
        mission_id: header(h, events::MISSION_ID_HEADER),
        customer_id: header(h, events::CUSTOMER_ID_HEADER),
        payload: message.payload,
        headers: message.headers,
    }
}

/// The oldest `limit` dead letters.
///
/// # Errors
/// When JetStream cannot be read.
pub async fn list(js: &jetstream::Context, limit: usize) -> Result<Vec<DeadLetter>, DeadLetterError> {
    let mut stream = DEAD_LETTER_STREAM.ensure(js).await?;
    let state = stream.info().await.map_err(async_nats::Error::from)?.state.clone();
    let mut found = Vec::new();
    if state.messages == 0 {
        return Ok(found);
    }
    for sequence in state.first_sequence..=state.last_sequence {
        if found.len() >= limit {
            break;
        }
        // Re-driven dead letters are deleted, leaving gaps.
        if let Ok(message) = stream.get_raw_message(sequence).await {
            found.push(dead_letter(message));
        }
    }
    Ok(found)
}

/// Publishes dead letter `sequence` again on its original subject for its
/// consumer to retry, then removes it.
///
/// # Errors
/// When it does not exist, lacks what a re-drive needs, or JetStream fails.
pub async fn redrive(js: &jetstream::Context, sequence: u64) -> Result<DeadLetter, DeadLetterError> {
    let stream = DEAD_LETTER_STREAM.ensure(js).await?;
    let letter = dead_letter(stream.get_raw_message(sequence).await.map_err(|_| DeadLetterError::NotFound(sequence))?);
    if letter.subject.is_empty() {
        return Err(DeadLetterError::Incomplete(sequence, events::DEAD_LETTER_SUBJECT_HEADER));
    }
    if letter.event_id.is_empty() {
        return Err(DeadLetterError::Incomplete(sequence, events::EVENT_ID_HEADER));
    }
    let mut headers = HeaderMap::new();
    for (name, values) in letter.headers.iter() {
        let name: &str = name.as_ref();
        if name.starts_with("Dead-Letter-") || name == events::MSG_ID_HEADER {
            continue;
        }
        for value in values {
            headers.append(name, value.as_str());
        }
    }
    let publish = PublishMessage::build()
        .payload(letter.payload.clone())
        .headers(headers)
        .message_id(format!("{}:redrive:{sequence}", letter.event_id));
    let published = js.send_publish(letter.subject.clone(), publish).await.map_err(async_nats::Error::from)?;
    published.await.map_err(async_nats::Error::from)?;
    stream.delete_message(sequence).await.map_err(async_nats::Error::from)?;
    tracing::info!(sequence, event_id = %letter.event_id, subject = %letter.subject, "dead letter re-driven");
    Ok(letter)
}
