//! What a service's store port answers when storage fails, in terms a use
//! case can act on.
//!
//! A use case owns its store port (a trait in its service's `ports` module)
//! and sees failures only as a [`StoreError`] of one [`StoreErrorKind`]: it
//! never learns whether the store is diesel on SQLite, PostgreSQL, or a map
//! in a test. The database adapter turns its own errors into kinds in one
//! place (`platform::store`), and retries a lost race with
//! `platform::store::retry_on_conflict`.

use std::fmt;

/// What went wrong in a store, in terms a use case can act on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreErrorKind {
    /// Another transaction changed what this one read since it read it
    /// (optimistic concurrency lost): deciding again on fresh state may succeed.
    Conflict,
    /// A row with the same unique key exists: a concurrent first write won.
    /// Deciding again finds the winner's row.
    Duplicate,
    /// The store is up but contended (its lock held, a serialization
    /// failure): the same work a little later may succeed.
    Busy,
    /// The store cannot be reached (no connection, the connection lost, the
    /// writer stopped): the same work later may succeed.
    Unavailable,
    /// Stored data does not parse into the domain: never retried, logged.
    Corrupt,
    /// Anything else: the work failed and retrying will not help.
    Failed,
}

impl StoreErrorKind {
    /// Whether the same work may succeed if tried again later.
    pub fn is_transient(self) -> bool {
        matches!(self, Self::Conflict | Self::Busy | Self::Unavailable)
    }
}

impl fmt::Display for StoreErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Conflict => "write conflict",
            Self::Duplicate => "duplicate key",
            Self::Busy => "store busy",
            Self::Unavailable => "store unavailable",
            Self::Corrupt => "corrupt stored data",
            Self::Failed => "store failure",
        })
    }
}

/// The cause of a [`StoreErrorKind::Conflict`] a store found itself: what it
/// read was changed since (its version moved on).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{entity} {key} was changed concurrently")]
pub struct ChangedConcurrently {
    /// What was changed, e.g. `wallet entry`.
    pub entity: &'static str,
    /// Which one.
    pub key: String,
}

/// A store failure as a store port reports it: its kind, for the use case
/// to decide on, and its cause, for the log.
#[derive(Debug, thiserror::Error)]
#[error("{kind}: {cause}")]
pub struct StoreError {
    kind: StoreErrorKind,
    #[source]
    cause: Box<dyn std::error::Error + Send + Sync>,
}

impl StoreError {
    /// A failure of `kind`, caused by `cause`.
    pub fn new(kind: StoreErrorKind, cause: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        Self { kind, cause: cause.into() }
    }

    /// `entity` `key` was changed since it was read.
    pub fn conflict(entity: &'static str, key: impl Into<String>) -> Self {
        Self::new(StoreErrorKind::Conflict, ChangedConcurrently { entity, key: key.into() })
    }

    /// What went wrong.
    pub fn kind(&self) -> StoreErrorKind {
        self.kind
    }

    /// Whether the same work may succeed if tried again later.
    pub fn is_transient(&self) -> bool {
        self.kind.is_transient()
    }

    /// What caused the failure, for an adapter that knows its own errors.
    pub fn into_cause(self) -> Box<dyn std::error::Error + Send + Sync> {
        self.cause
    }
}

/// An error that may be a store failure: lets a retry see a lost race
/// through a use case's own error type.
pub trait StoreFailure {
    /// The store failure this error is, if it is one.
    fn store_error(&self) -> Option<&StoreError>;
}

impl StoreFailure for StoreError {
    fn store_error(&self) -> Option<&StoreError> {
        Some(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_races_contention_and_outages_are_worth_trying_again() {
        use StoreErrorKind::*;
        let transient: Vec<_> = [Conflict, Duplicate, Busy, Unavailable, Corrupt, Failed]
            .into_iter()
            .filter(|k| k.is_transient())
            .collect();
        assert_eq!(transient, [Conflict, Busy, Unavailable]);
    }

    #[test]
    fn a_conflict_names_what_was_changed() {
        let error = StoreError::conflict("wallet entry", "e-1");
        assert_eq!(error.kind(), StoreErrorKind::Conflict);
        assert_eq!(error.to_string(), "write conflict: wallet entry e-1 was changed concurrently");
        let cause = error.into_cause().downcast::<ChangedConcurrently>().map(|c| *c);
        assert_eq!(cause.ok(), Some(ChangedConcurrently { entity: "wallet entry", key: "e-1".into() }));
    }
}
