//! Test doubles of the wallet's ports: a store kept in memory with the
//! store's transaction and concurrency rules (on [`MemoryStore`]), and a gift exchange that
//! answers from a script, can hold a call mid-flight, and records every key
//! it was asked under.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Instant;

use kernel::CustomerId;
use kernel::{StoreError, StoreErrorKind};
use testkit::{MemoryStore, save_if_unchanged};
use tokio::sync::oneshot;

use crate::domain::{EntryId, EntryStatus, ExchangeTicket, RewardId, WalletEntry, WalletEvent};
use crate::ports::{GiftExchange, GiftOutcome, WalletStore, WalletTx};

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // A test that panicked holding the lock has failed already.
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// What the store holds: entries and the events committed for publication.
#[derive(Debug, Clone, Default)]
pub struct Stored {
    entries: BTreeMap<EntryId, WalletEntry>,
    published: Vec<WalletEvent>,
}

/// The wallet store in memory (see [`MemoryStore`]). Clones share it.
#[derive(Debug, Clone, Default)]
pub struct InMemoryWalletStore(MemoryStore<Stored>);

impl InMemoryWalletStore {
    /// The coming writes end as `outcomes` say, in order.
    pub fn script_writes(&self, outcomes: impl IntoIterator<Item = Option<StoreErrorKind>>) {
        self.0.script_writes(outcomes);
    }

    /// The entry as stored.
    pub fn entry(&self, id: EntryId) -> WalletEntry {
        self.0.read(|s| s.entries.get(&id).cloned()).unwrap_or_else(|| panic!("entry {id} is not stored"))
    }

    /// Every entry as stored.
    pub fn entries(&self) -> Vec<WalletEntry> {
        self.0.read(|s| s.entries.values().cloned().collect())
    }

    /// Every event committed for publication, in order.
    pub fn published(&self) -> Vec<WalletEvent> {
        self.0.read(|s| s.published.clone())
    }

    /// The gift orders RewardExchanged was published for.
    pub fn exchanged_orders(&self) -> Vec<String> {
        self.published()
            .into_iter()
            .filter_map(|event| match event {
                WalletEvent::RewardExchanged { exchanged, .. } => Some(exchanged.gift_order_id),
                WalletEvent::RewardIssued { .. } | WalletEvent::PointsExpired { .. } => None,
            })
            .collect()
    }

    /// The entries PointsExpired was published for, in order.
    pub fn expired_entries(&self) -> Vec<EntryId> {
        self.published()
            .into_iter()
            .filter_map(|event| match event {
                WalletEvent::PointsExpired { entry, .. } => Some(entry.id),
                WalletEvent::RewardIssued { .. } | WalletEvent::RewardExchanged { .. } => None,
            })
            .collect()
    }

    /// The next write loses a race to a rival replica that expired `id` at `now` first.
    pub fn lose_next_write_to_an_expiry_of(&self, id: EntryId, now: i64) {
        self.0.lose_next_write_to(move |stored: &mut Stored| {
            let entry = stored.entries.get_mut(&id).unwrap_or_else(|| panic!("entry {id} is not stored"));
            let expired = entry.expire(now).unwrap_or_else(|| panic!("entry {id} is not due at {now}"));
            stored.published.push(WalletEvent::PointsExpired { entry: entry.clone(), expired });
        });
    }
}

impl WalletStore for InMemoryWalletStore {
    async fn write<T, E, F>(&self, work: F) -> Result<T, E>
    where
        F: FnOnce(&mut dyn WalletTx) -> Result<T, E> + Send + 'static,
        T: Send + 'static,
        E: From<StoreError> + Send + 'static,
    {
        self.0.write(|stored| work(stored))
    }

    async fn wallet(&self, customer: CustomerId) -> Result<Vec<WalletEntry>, StoreError> {
        let mut entries: Vec<_> =
            self.0.read(|s| s.entries.values().filter(|e| e.customer_id == customer).cloned().collect());
        entries.sort_by(|a, b| b.issued_at.cmp(&a.issued_at).then(a.id.to_string().cmp(&b.id.to_string())));
        Ok(entries)
    }

    async fn pending_since_before(&self, cutoff: i64, limit: u32) -> Result<Vec<WalletEntry>, StoreError> {
        let since = |entry: &WalletEntry| match entry.status {
            EntryStatus::ExchangePending { since, .. } => Some(since),
            _ => None,
        };
        let mut pending: Vec<_> = self.0.read(|s| {
            s.entries.values().filter(|entry| since(entry).is_some_and(|since| since < cutoff)).cloned().collect()
        });
        pending.sort_by_key(since);
        pending.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
        Ok(pending)
    }

    async fn due_to_expire(&self, now: i64, limit: u32) -> Result<Vec<WalletEntry>, StoreError> {
        let mut due: Vec<_> = self.0.read(|s| {
            s.entries
                .values()
                .filter(|entry| entry.status == EntryStatus::Available && entry.is_due(now))
                .cloned()
                .collect()
        });
        due.sort_by_key(|entry| (entry.expires_at, entry.id));
        due.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
        Ok(due)
    }
}

/// One write's copy of the state.
impl WalletTx for Stored {
    fn entry(&mut self, id: EntryId) -> Result<Option<WalletEntry>, StoreError> {
        Ok(self.entries.get(&id).cloned())
    }

    fn holds_reward(&mut self, reward: RewardId) -> Result<bool, StoreError> {
        Ok(self.entries.values().any(|entry| entry.reward_id == reward))
    }

    fn insert(&mut self, entry: &WalletEntry) -> Result<(), StoreError> {
        if self.entries.contains_key(&entry.id) {
            return Err(StoreError::new(StoreErrorKind::Duplicate, format!("wallet entry {}", entry.id)));
        }
        self.entries.insert(entry.id, entry.clone());
        Ok(())
    }

    fn update(&mut self, entry: &WalletEntry) -> Result<(), StoreError> {
        save_if_unchanged(&mut self.entries, &entry.id, entry, |e| e.version, "wallet entry")
    }

    fn stage(&mut self, event: &WalletEvent) -> Result<(), StoreError> {
        self.published.push(event.clone());
        Ok(())
    }
}

/// One scripted answer of gift.
#[derive(Debug)]
pub struct Step {
    outcome: GiftOutcome,
    /// Told when the call reached gift.
    entered: Option<oneshot::Sender<()>>,
    /// The call answers only once this is sent (or dropped).
    gate: Option<oneshot::Receiver<()>>,
}

/// A call held inside gift until the test lets it answer.
#[derive(Debug)]
pub struct HeldCall {
    entered: oneshot::Receiver<()>,
    gate: oneshot::Sender<()>,
}

impl HeldCall {
    /// Waits until the call is inside gift.
    pub async fn entered(&mut self) {
        (&mut self.entered).await.unwrap_or_else(|_| panic!("the held call never reached gift"));
    }

    /// Lets the call answer.
    pub fn answer(self) {
        // The caller may have gone away; then nobody waits for the answer.
        let _ = self.gate.send(());
    }
}

/// The gift exchange as a script: each call takes the next answer.
#[derive(Debug, Clone, Default)]
pub struct ScriptedGift {
    script: Arc<Mutex<VecDeque<Step>>>,
    /// The idempotency key of every call, in order.
    keys: Arc<Mutex<Vec<String>>>,
}

impl ScriptedGift {
    /// The next calls answer `outcomes`, in order, at once.
    pub fn answers(&self, outcomes: impl IntoIterator<Item = GiftOutcome>) {
        lock(&self.script).extend(outcomes.into_iter().map(|outcome| Step { outcome, entered: None, gate: None }));
    }

    /// The next call answers `outcome` once the test lets it.
    pub fn holds(&self, outcome: GiftOutcome) -> HeldCall {
        let (entered_tx, entered) = oneshot::channel();
        let (gate, gate_rx) = oneshot::channel();
        lock(&self.script).push_back(Step { outcome, entered: Some(entered_tx), gate: Some(gate_rx) });
        HeldCall { entered, gate }
    }

    /// The idempotency key of every call so far, in order.
    pub fn keys(&self) -> Vec<String> {
        lock(&self.keys).clone()
    }
}

impl GiftExchange for ScriptedGift {
    async fn exchange(&self, _entry: &WalletEntry, ticket: &ExchangeTicket, _deadline: Option<Instant>) -> GiftOutcome {
        let step = lock(&self.script).pop_front();
        let Some(Step { outcome, entered, gate }) = step else {
            panic!("gift was asked under {} but the script has no answer left", ticket.idempotency_key());
        };
        lock(&self.keys).push(ticket.idempotency_key());
        if let Some(entered) = entered {
            let _ = entered.send(());
        }
        if let Some(gate) = gate {
            let _ = gate.await;
        }
        outcome
    }
}
