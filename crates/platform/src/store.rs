//! The database's half of a store port, and how a use case decides again
//! after losing a race to a concurrent writer.
//!
//! A use case sees storage failures only as a [`StoreError`] of one
//! [`StoreErrorKind`] (the kernel's, re-exported here). The database
//! adapter's errors become kinds in one place, `From<DbError> for
//! StoreError`, so a unique-key clash is a [`StoreErrorKind::Duplicate`]
//! whichever store raised it, and an optimistic-concurrency loss a
//! [`StoreErrorKind::Conflict`].
//!
//! [`retry_on_conflict`] is the one way a use case runs its transaction
//! again when it lost such a race. [`write`], [`DbTx`] and [`read`] are what
//! a diesel store adapter stands on: the use case's work runs in one
//! transaction, on a [`DbTx`] the adapter implements its service's
//! transaction port for, events staged in that transaction's outbox and the
//! relay woken once it committed.

use std::time::Duration;

pub use kernel::store::{ChangedConcurrently, StoreError, StoreErrorKind, StoreFailure};

use crate::consumer::PolicyError;
use crate::db::{CorruptRow, Database, DbConnection, DbError, Failure};
use crate::events::Event;
use crate::outbox::{self, OutboxSignal};

/// The one place the database's errors become the kinds use cases see.
impl From<DbError> for StoreError {
    fn from(error: DbError) -> Self {
        Self::new(kind_of(&error), error)
    }
}

impl From<CorruptRow> for StoreError {
    fn from(error: CorruptRow) -> Self {
        DbError::from(error).into()
    }
}

fn kind_of(error: &DbError) -> StoreErrorKind {
    use diesel::result::{DatabaseErrorKind, Error};
    match error {
        DbError::Query(Error::DatabaseError(DatabaseErrorKind::UniqueViolation, _)) => StoreErrorKind::Duplicate,
        DbError::GroupCommit(cause) => kind_of(cause),
        DbError::Corrupt(_) => StoreErrorKind::Corrupt,
        other => match other.failure() {
            Failure::Unavailable => StoreErrorKind::Unavailable,
            Failure::Busy => StoreErrorKind::Busy,
            Failure::Conflict => StoreErrorKind::Conflict,
            Failure::Other => StoreErrorKind::Failed,
        },
    }
}

/// A policy's effect failed in the store: the consumer retries what the
/// database calls transient and dead-letters the rest, exactly as for a
/// [`DbError`]. A store other than the database (none runs under a consumer
/// today) is retried with back-off until the consumer gives up on the event.
impl From<StoreError> for PolicyError {
    fn from(error: StoreError) -> Self {
        let kind = error.kind();
        let cause = match error.into_cause().downcast::<DbError>() {
            Ok(db) => return Self::Db(*db),
            Err(cause) => cause,
        };
        match cause.downcast::<ChangedConcurrently>() {
            // A version check lost in a diesel store: the database's own conflict.
            Ok(changed) => Self::Db(DbError::Conflict { entity: changed.entity, key: changed.key }),
            Err(cause) => Self::NotYet(format!("{kind}: {cause}")),
        }
    }
}

/// Transactions that lost an optimistic-concurrency race are decided again
/// this many times in all; between tries a jittered back-off lets the winner
/// finish (on PostgreSQL, where writers run side by side; SQLite's single
/// writer never loses).
const CONFLICT_ATTEMPTS: u32 = 5;
const CONFLICT_BACKOFF: (Duration, Duration) = (Duration::from_millis(5), Duration::from_millis(100));

/// Runs `work` (one transaction of a use case) and runs it again when it
/// lost a race to a concurrent writer: on a [`StoreErrorKind::Conflict`] up
/// to five times in all, each after a short jittered back-off; on a
/// [`StoreErrorKind::Duplicate`] once, since deciding again sees the row that
/// won (a second duplicate is no race, and is returned).
///
/// # Errors
/// Whatever the last run of `work` returned.
pub async fn retry_on_conflict<T, E, F, Fut>(mut work: F) -> Result<T, E>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, E>>,
    E: StoreFailure,
{
    let mut attempt = 0;
    let mut retried_duplicate = false;
    loop {
        attempt += 1;
        let outcome = work().await;
        match outcome.as_ref().err().and_then(StoreFailure::store_error).map(StoreError::kind) {
            Some(StoreErrorKind::Duplicate) if !retried_duplicate => retried_duplicate = true,
            Some(StoreErrorKind::Conflict) if attempt < CONFLICT_ATTEMPTS => {
                let (base, max) = CONFLICT_BACKOFF;
                tokio::time::sleep(crate::backoff(attempt, base, max)).await;
            }
            _ => return outcome,
        }
    }
}

/// A transaction open on the service's database, as a diesel store adapter
/// implements its service's transaction port on it: queries run on
/// [`DbTx::conn`], events are staged in the same transaction's outbox.
#[derive(Debug)]
pub struct DbTx<'c> {
    conn: &'c mut DbConnection,
    /// Whether an event was staged, for the relay to be woken after commit.
    staged: bool,
}

impl<'c> DbTx<'c> {
    /// The transaction its caller opened on `conn` (the consumer applying a
    /// policy with its inbox, or [`write`]).
    pub fn new(conn: &'c mut DbConnection) -> Self {
        Self { conn, staged: false }
    }

    /// The connection the transaction runs on.
    pub fn conn(&mut self) -> &mut DbConnection {
        self.conn
    }

    /// Stages `event` for publication when the transaction commits.
    ///
    /// # Errors
    /// When the insert fails.
    pub fn stage<E: Event>(&mut self, event: &E) -> Result<(), StoreError> {
        outbox::stage(self.conn, event)?;
        self.staged = true;
        Ok(())
    }
}

/// Runs `work` in one write transaction of `db` (see [`Database::write`]),
/// the database's failures arriving as [`StoreError`]s in `E`; wakes the
/// relay through `outbox` when the committed work staged an event, so that
/// it leaves within milliseconds instead of at the relay's next poll.
///
/// # Errors
/// Whatever `work` returns, or the transaction's failure.
pub async fn write<T, E, F>(db: &Database, outbox: &OutboxSignal, work: F) -> Result<T, E>
where
    F: FnOnce(&mut DbTx<'_>) -> Result<T, E> + Send + 'static,
    T: Send + 'static,
    E: From<StoreError> + Send + 'static,
{
    let (value, staged) = db
        .write(move |conn| {
            let mut tx = DbTx::new(conn);
            let value = work(&mut tx).map_err(Failed::Work)?;
            Ok((value, tx.staged))
        })
        .await
        .map_err(Failed::into_inner)?;
    if staged {
        outbox.wake();
    }
    Ok(value)
}

/// Runs read-only `work` on a connection of `db` (see [`Database::read`]).
///
/// # Errors
/// Whatever `work` returns, or the database's failure as a [`StoreError`].
pub async fn read<T, F>(db: &Database, work: F) -> Result<T, StoreError>
where
    F: FnOnce(&mut DbConnection) -> Result<T, DbError> + Send + 'static,
    T: Send + 'static,
{
    Ok(db.read(work).await?)
}

/// The work's own error, or the database's around it.
enum Failed<E> {
    Work(E),
    Db(DbError),
}

impl<E> From<DbError> for Failed<E> {
    fn from(error: DbError) -> Self {
        Self::Db(error)
    }
}

impl<E: From<StoreError>> Failed<E> {
    fn into_inner(self) -> E {
        match self {
            Self::Work(error) => error,
            Self::Db(error) => StoreError::from(error).into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::cell::Cell;

    use super::*;

    fn unique_violation() -> DbError {
        #[derive(Debug)]
        struct Info;
        impl diesel::result::DatabaseErrorInformation for Info {
            fn message(&self) -> &str {
                "UNIQUE constraint failed"
            }
            fn details(&self) -> Option<&str> {
                None
            }
            fn hint(&self) -> Option<&str> {
                None
            }
            fn table_name(&self) -> Option<&str> {
                None
            }
            fn column_name(&self) -> Option<&str> {
                None
            }
            fn constraint_name(&self) -> Option<&str> {
                None
            }
            fn statement_position(&self) -> Option<i32> {
                None
            }
        }
        DbError::Query(diesel::result::Error::DatabaseError(
            diesel::result::DatabaseErrorKind::UniqueViolation,
            Box::new(Info),
        ))
    }

    #[test]
    fn database_errors_become_the_kinds_use_cases_act_on() {
        let kind = |error: DbError| StoreError::from(error).kind();
        assert_eq!(kind(DbError::Conflict { entity: "e", key: "k".into() }), StoreErrorKind::Conflict);
        assert_eq!(kind(unique_violation()), StoreErrorKind::Duplicate);
        assert_eq!(kind(DbError::WriterStopped), StoreErrorKind::Unavailable);
        assert_eq!(kind(DbError::GroupCommit(DbError::WriterStopped.into())), StoreErrorKind::Unavailable);
        assert_eq!(kind(CorruptRow::new("e", "k", "bad").into()), StoreErrorKind::Corrupt);
        assert_eq!(kind(DbError::Panicked), StoreErrorKind::Failed);
        assert_eq!(kind(diesel::result::Error::NotFound.into()), StoreErrorKind::Failed);
    }

    #[test]
    fn a_kind_is_transient_exactly_when_the_database_error_was() {
        for error in [
            DbError::Conflict { entity: "e", key: "k".into() },
            unique_violation(),
            DbError::WriterStopped,
            DbError::Panicked,
            CorruptRow::new("e", "k", "bad").into(),
        ] {
            let transient = error.is_transient();
            assert_eq!(StoreError::from(error).is_transient(), transient);
        }
    }

    #[test]
    fn a_policy_sees_the_database_error_it_always_saw() {
        let policy = PolicyError::from(StoreError::from(DbError::WriterStopped));
        assert!(matches!(policy, PolicyError::Db(DbError::WriterStopped)));
        let lost_race = PolicyError::from(StoreError::conflict("mission", "m-1"));
        assert!(matches!(lost_race, PolicyError::Db(DbError::Conflict { entity: "mission", key }) if key == "m-1"));
        let elsewhere = PolicyError::from(StoreError::new(StoreErrorKind::Busy, "locked"));
        assert!(matches!(elsewhere, PolicyError::NotYet(reason) if reason == "store busy: locked"));
    }

    #[tokio::test]
    async fn a_conflict_is_decided_again_until_the_attempts_run_out() {
        let runs = Cell::new(0);
        let outcome: Result<(), StoreError> = retry_on_conflict(|| {
            runs.set(runs.get() + 1);
            async { Err(StoreError::conflict("entry", "1")) }
        })
        .await;
        assert_eq!(outcome.unwrap_err().kind(), StoreErrorKind::Conflict);
        assert_eq!(runs.get(), CONFLICT_ATTEMPTS);

        runs.set(0);
        let outcome = retry_on_conflict(|| {
            runs.set(runs.get() + 1);
            let run = runs.get();
            async move { if run < 3 { Err(StoreError::conflict("entry", "1")) } else { Ok(run) } }
        })
        .await;
        assert_eq!(outcome.unwrap(), 3);
    }

    #[tokio::test]
    async fn a_duplicate_is_decided_again_once_and_other_failures_not_at_all() {
        let runs = Cell::new(0);
        let outcome: Result<(), StoreError> = retry_on_conflict(|| {
            runs.set(runs.get() + 1);
            async { Err(StoreError::from(unique_violation())) }
        })
        .await;
        assert_eq!(outcome.unwrap_err().kind(), StoreErrorKind::Duplicate);
        assert_eq!(runs.get(), 2);

        runs.set(0);
        let outcome: Result<(), StoreError> = retry_on_conflict(|| {
            runs.set(runs.get() + 1);
            async { Err(StoreError::from(DbError::WriterStopped)) }
        })
        .await;
        assert_eq!(outcome.unwrap_err().kind(), StoreErrorKind::Unavailable);
        assert_eq!(runs.get(), 1);
    }
}
