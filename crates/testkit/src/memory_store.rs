//! A store kept in memory for use-case tests: a service's state behind its
//! store port's transaction rules, without a database. The adapters that
//! implement the same port on the database are tested against real ones.

use std::collections::{BTreeMap, VecDeque};
use std::fmt::Display;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use kernel::{StoreError, StoreErrorKind};

/// State `S` kept in memory. A write runs its work on a copy of the state
/// under the store's lock and keeps the copy only when the work succeeded:
/// one transaction at a time, all or nothing, as on SQLite's single
/// writer. A test can script how the coming writes fail, or make one lose a
/// race to a rival writer. Clones share the store.
#[derive(Default)]
pub struct MemoryStore<S> {
    state: Arc<Mutex<S>>,
    /// How the coming writes end, in order; every write once this is empty runs.
    writes: Arc<Mutex<VecDeque<Scripted<S>>>>,
}

/// How one coming write ends.
enum Scripted<S> {
    /// It runs.
    Run,
    /// It fails with this kind before its work runs.
    Fail(StoreErrorKind),
    /// Its work runs on the state as it was, then this rival's change commits
    /// first, and the write fails with a `Conflict`, as optimistic
    /// concurrency reports a lost race.
    LoseTo(Box<dyn FnOnce(&mut S) + Send>),
}

impl<S: std::fmt::Debug> std::fmt::Debug for MemoryStore<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryStore")
            .field("state", &self.state)
            .field("scripted_writes", &lock(&self.writes).len())
            .finish()
    }
}

impl<S> Clone for MemoryStore<S> {
    fn clone(&self) -> Self {
        Self { state: Arc::clone(&self.state), writes: Arc::clone(&self.writes) }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // A test that panicked holding the lock has failed already.
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl<S: Clone> MemoryStore<S> {
    /// The coming writes end as `outcomes` say, in order: `Some(kind)` fails
    /// that write before its work runs; `None` runs it.
    pub fn script_writes(&self, outcomes: impl IntoIterator<Item = Option<StoreErrorKind>>) {
        lock(&self.writes).extend(outcomes.into_iter().map(|outcome| outcome.map_or(Scripted::Run, Scripted::Fail)));
    }

    /// The next write not scripted otherwise loses a race to `rival`: its
    /// work decides on the state as it was, `rival`'s change commits first,
    /// and the write fails with a `Conflict` (unless its work failed on its
    /// own). Deciding again sees what the rival did.
    pub fn lose_next_write_to(&self, rival: impl FnOnce(&mut S) + Send + 'static) {
        lock(&self.writes).push_back(Scripted::LoseTo(Box::new(rival)));
    }

    /// Runs `work` as one transaction over the state.
    ///
    /// # Errors
    /// The scripted failure of this write, or whatever `work` returns
    /// (nothing of it is then kept).
    pub fn write<T, E: From<StoreError>>(&self, work: impl FnOnce(&mut S) -> Result<T, E>) -> Result<T, E> {
        let scripted = lock(&self.writes).pop_front().unwrap_or(Scripted::Run);
        let mut state = lock(&self.state);
        let mut copy = state.clone();
        match scripted {
            Scripted::Run => {
                let value = work(&mut copy)?;
                *state = copy;
                Ok(value)
            }
            Scripted::Fail(kind) => Err(StoreError::new(kind, "scripted store failure").into()),
            Scripted::LoseTo(rival) => {
                let decided = work(&mut copy);
                rival(&mut state);
                decided?;
                Err(StoreError::new(StoreErrorKind::Conflict, "a rival writer committed first").into())
            }
        }
    }

    /// What `look` sees of the committed state.
    pub fn read<T>(&self, look: impl FnOnce(&S) -> T) -> T {
        look(&lock(&self.state))
    }
}

/// Saves `value` over what `stored` holds under `key` if that is at
/// `version(value) - 1`, as a store's optimistic concurrency does.
///
/// # Errors
/// A `Conflict` naming `entity` and `key` when it is not (changed
/// meanwhile, or absent).
pub fn save_if_unchanged<K: Ord + Display, V: Clone>(
    stored: &mut BTreeMap<K, V>,
    key: &K,
    value: &V,
    version: impl Fn(&V) -> i64,
    entity: &'static str,
) -> Result<(), StoreError> {
    match stored.get_mut(key) {
        Some(current) if version(current) == version(value) - 1 => {
            *current = value.clone();
            Ok(())
        }
        _ => Err(StoreError::conflict(entity, key.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn push(store: &MemoryStore<Vec<u32>>, value: u32) {
        store
            .write(|v| {
                v.push(value);
                Ok::<_, StoreError>(())
            })
            .unwrap_or_else(|e| panic!("{e}"));
    }

    #[test]
    fn a_failed_write_keeps_nothing_and_a_scripted_failure_runs_no_work() {
        let store = MemoryStore::<Vec<u32>>::default();
        push(&store, 1);
        let failed = store.write(|v| {
            v.push(2);
            Err::<(), _>(StoreError::new(StoreErrorKind::Failed, "no"))
        });
        assert!(failed.is_err());
        assert_eq!(store.read(Clone::clone), [1]);
        store.script_writes([Some(StoreErrorKind::Unavailable), None]);
        let refused = store.write(|_| -> Result<(), StoreError> { unreachable!("a scripted failure runs no work") });
        assert_eq!(refused.unwrap_err().kind(), StoreErrorKind::Unavailable);
        push(&store, 3);
        assert_eq!(store.read(Clone::clone), [1, 3]);
    }

    #[test]
    fn a_save_over_a_changed_or_absent_value_is_a_conflict() {
        let mut stored = BTreeMap::from([(1, (7_i64, "a"))]);
        let version = |v: &(i64, &str)| v.0;
        assert!(save_if_unchanged(&mut stored, &1, &(8, "b"), version, "thing").is_ok());
        assert_eq!(stored[&1], (8, "b"));
        let stale = save_if_unchanged(&mut stored, &1, &(8, "c"), version, "thing").unwrap_err();
        assert_eq!(stale.kind(), StoreErrorKind::Conflict);
        assert_eq!(stored[&1], (8, "b"));
        let absent = save_if_unchanged(&mut stored, &2, &(1, "d"), version, "thing").unwrap_err();
        assert_eq!(absent.kind(), StoreErrorKind::Conflict);
    }

    #[test]
    fn a_write_that_lost_to_a_rival_keeps_nothing_of_its_own_and_the_rivals_change() {
        let store = MemoryStore::<Vec<u32>>::default();
        push(&store, 1);
        store.lose_next_write_to(|v| v.push(2));
        let lost = store.write(|v| {
            assert_eq!(v, &[1], "the loser decided on the state before the rival's change");
            v.push(3);
            Ok::<_, StoreError>(())
        });
        assert_eq!(lost.unwrap_err().kind(), StoreErrorKind::Conflict);
        assert_eq!(store.read(Clone::clone), [1, 2]);
        push(&store, 3);
        assert_eq!(store.read(Clone::clone), [1, 2, 3]);
    }
}
