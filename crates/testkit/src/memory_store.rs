//! A store kept in memory for use-case tests: a service's state behind its
//! store port's transaction rules, without a database. The adapters that
//! implement the same port on the database are tested against real ones.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use kernel::{StoreError, StoreErrorKind};

/// State `S` kept in memory. A write runs its work on a copy of the state
/// under the store's lock and keeps the copy only when the work succeeded:
/// one transaction at a time, all or nothing, as on SQLite's single
/// writer. A test can script how the coming writes fail. Clones share the
/// store.
#[derive(Debug, Default)]
pub struct MemoryStore<S> {
    state: Arc<Mutex<S>>,
    /// How the coming writes end, in order: `Some(kind)` fails that write
    /// before its work runs; `None`, and every write once this is empty, runs.
    writes: Arc<Mutex<VecDeque<Option<StoreErrorKind>>>>,
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
    /// The coming writes end as `outcomes` say, in order.
    pub fn script_writes(&self, outcomes: impl IntoIterator<Item = Option<StoreErrorKind>>) {
        lock(&self.writes).extend(outcomes);
    }

    /// Runs `work` as one transaction over the state.
    ///
    /// # Errors
    /// The scripted failure of this write, or whatever `work` returns
    /// (nothing of it is then kept).
    pub fn write<T, E: From<StoreError>>(&self, work: impl FnOnce(&mut S) -> Result<T, E>) -> Result<T, E> {
        let scripted = lock(&self.writes).pop_front().flatten();
        if let Some(kind) = scripted {
            return Err(StoreError::new(kind, "scripted store failure").into());
        }
        let mut state = lock(&self.state);
        let mut copy = state.clone();
        let value = work(&mut copy)?;
        *state = copy;
        Ok(value)
    }

    /// What `look` sees of the committed state.
    pub fn read<T>(&self, look: impl FnOnce(&S) -> T) -> T {
        look(&lock(&self.state))
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
}
