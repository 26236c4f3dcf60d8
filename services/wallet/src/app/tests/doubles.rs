//! Test doubles of the wallet's ports: a store kept in memory with the
//! store's transaction and concurrency rules (on [`MemoryStore`]), and a gift
//! exchange that answers from a script, can hold a call mid-flight, and
//! records every key it was asked under.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Instant;

use kernel::{CustomerId, Points};
use kernel::{StoreError, StoreErrorKind};
use testkit::MemoryStore;
use tokio::sync::oneshot;

use crate::domain::{
    EntryId, Exchange, ExchangeId, ExchangeStatus, IdempotencyKey, ProductSku, RewardId, WalletEntry, WalletEvent,
};
use crate::ports::{GiftExchange, GiftOutcome, WalletStore, WalletTx};

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // A test that panicked holding the lock has failed already.
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Saves `value` over the stored one if that is still at version `read`.
fn save_if_read<K: Ord + std::fmt::Display, V: Clone>(
    stored: &mut BTreeMap<K, V>,
    key: &K,
    value: &V,
    read: i64,
    version: impl Fn(&V) -> i64,
    entity: &'static str,
) -> Result<(), StoreError> {
    match stored.get_mut(key) {
        Some(current) if version(current) == read => {
            *current = value.clone();
            Ok(())
        }
        _ => Err(StoreError::conflict(entity, key.to_string())),
    }
}

/// What the store holds: entries, exchanges, prices and the events committed
/// for publication.
#[derive(Debug, Clone)]
pub struct Stored {
    entries: BTreeMap<EntryId, WalletEntry>,
    exchanges: BTreeMap<ExchangeId, Exchange>,
    prices: BTreeMap<String, Points>,
    published: Vec<WalletEvent>,
}

impl Default for Stored {
    /// The products the migration seeds.
    fn default() -> Self {
        let prices = [("STICKER-PACK", 100), ("AVATAR-FRAME", 300), ("TITLE-CHAMPION", 300), ("SNOW-SLED", 300)]
            .into_iter()
            .map(|(sku, price)| (sku.to_owned(), Points::new(price).unwrap()))
            .collect();
        Self { entries: BTreeMap::new(), exchanges: BTreeMap::new(), prices, published: Vec::new() }
    }
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

    /// Every exchange as stored.
    pub fn exchanges(&self) -> Vec<Exchange> {
        self.0.read(|s| s.exchanges.values().cloned().collect())
    }

    /// Every event committed for publication, in order.
    pub fn published(&self) -> Vec<WalletEvent> {
        self.0.read(|s| s.published.clone())
    }

    /// The gift orders ExchangePlaced was published for, in order.
    pub fn placed_orders(&self) -> Vec<String> {
        self.published()
            .into_iter()
            .filter_map(|event| match event {
                WalletEvent::ExchangePlaced { exchange } => match exchange.status {
                    ExchangeStatus::Placed { gift_order_id, .. } => Some(gift_order_id),
                    _ => None,
                },
                _ => None,
            })
            .collect()
    }

    /// The exchanges PointsRefunded was published for, in order.
    pub fn refunded_exchanges(&self) -> Vec<ExchangeId> {
        self.published()
            .into_iter()
            .filter_map(|event| match event {
                WalletEvent::PointsRefunded { exchange, .. } => Some(exchange.id),
                _ => None,
            })
            .collect()
    }

    /// The entries PointsExpired was published for, in order.
    pub fn expired_entries(&self) -> Vec<EntryId> {
        self.published()
            .into_iter()
            .filter_map(|event| match event {
                WalletEvent::PointsExpired { entry, .. } => Some(entry.id),
                _ => None,
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

    async fn exchanges(&self, customer: CustomerId) -> Result<Vec<Exchange>, StoreError> {
        let mut exchanges: Vec<_> =
            self.0.read(|s| s.exchanges.values().filter(|e| e.customer_id == customer).cloned().collect());
        exchanges.sort_by(|a, b| b.requested_at.cmp(&a.requested_at).then(b.id.cmp(&a.id)));
        Ok(exchanges)
    }

    async fn pending_since_before(&self, cutoff: i64, limit: u32) -> Result<Vec<Exchange>, StoreError> {
        let mut pending: Vec<_> = self.0.read(|s| {
            s.exchanges
                .values()
                .filter(|e| e.status == ExchangeStatus::Pending && e.requested_at < cutoff)
                .cloned()
                .collect()
        });
        pending.sort_by_key(|e| e.requested_at);
        pending.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
        Ok(pending)
    }

    async fn due_to_expire(&self, now: i64, limit: u32) -> Result<Vec<WalletEntry>, StoreError> {
        let mut due: Vec<_> = self
            .0
            .read(|s| s.entries.values().filter(|entry| entry.remaining > 0 && entry.is_due(now)).cloned().collect());
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

    fn entries_with_points(&mut self, customer: &CustomerId) -> Result<Vec<WalletEntry>, StoreError> {
        Ok(self.entries.values().filter(|e| e.customer_id == *customer && e.remaining > 0).cloned().collect())
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

    fn update(&mut self, entry: &WalletEntry, read: i64) -> Result<(), StoreError> {
        save_if_read(&mut self.entries, &entry.id, entry, read, |e| e.version, "wallet entry")
    }

    fn exchange(&mut self, id: ExchangeId) -> Result<Option<Exchange>, StoreError> {
        Ok(self.exchanges.get(&id).cloned())
    }

    fn exchange_by_key(&mut self, customer: &CustomerId, key: &IdempotencyKey) -> Result<Option<Exchange>, StoreError> {
        Ok(self
            .exchanges
            .values()
            .find(|e| e.customer_id == *customer && e.idempotency_key.as_ref() == Some(key))
            .cloned())
    }

    fn exchange_by_gift_key(&mut self, key: &str) -> Result<Option<Exchange>, StoreError> {
        Ok(self.exchanges.values().find(|e| e.gift_key.as_str() == key).cloned())
    }

    fn pending_exchanges_of(&mut self, entry: EntryId) -> Result<Vec<Exchange>, StoreError> {
        Ok(self
            .exchanges
            .values()
            .filter(|e| e.status == ExchangeStatus::Pending && e.reservations.iter().any(|r| r.entry_id == entry))
            .cloned()
            .collect())
    }

    fn insert_exchange(&mut self, exchange: &Exchange) -> Result<(), StoreError> {
        let key_taken = exchange.idempotency_key.is_some()
            && self
                .exchanges
                .values()
                .any(|e| e.customer_id == exchange.customer_id && e.idempotency_key == exchange.idempotency_key);
        if key_taken || self.exchanges.contains_key(&exchange.id) {
            return Err(StoreError::new(StoreErrorKind::Duplicate, format!("exchange {}", exchange.id)));
        }
        self.exchanges.insert(exchange.id, exchange.clone());
        Ok(())
    }

    fn update_exchange(&mut self, exchange: &Exchange, read: i64) -> Result<(), StoreError> {
        save_if_read(&mut self.exchanges, &exchange.id, exchange, read, |e| e.version, "exchange")
    }

    fn price(&mut self, product: &ProductSku) -> Result<Option<Points>, StoreError> {
        Ok(self.prices.get(product.as_str()).copied())
    }

    fn keep_price(&mut self, product: &ProductSku, price: Points) -> Result<(), StoreError> {
        self.prices.insert(product.to_string(), price);
        Ok(())
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
    /// The gift key and the points offered of every call, in order.
    calls: Arc<Mutex<Vec<(String, i64)>>>,
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

    /// The gift key of every call so far, in order.
    pub fn keys(&self) -> Vec<String> {
        lock(&self.calls).iter().map(|(key, _)| key.clone()).collect()
    }

    /// The points offered by every call so far, in order.
    pub fn offered(&self) -> Vec<i64> {
        lock(&self.calls).iter().map(|(_, points)| *points).collect()
    }
}

impl GiftExchange for ScriptedGift {
    async fn exchange(&self, exchange: &Exchange, _deadline: Option<Instant>) -> GiftOutcome {
        let step = lock(&self.script).pop_front();
        let Some(Step { outcome, entered, gate }) = step else {
            panic!("gift was asked under {} but the script has no answer left", exchange.gift_key);
        };
        lock(&self.calls).push((exchange.gift_key.to_string(), exchange.price.value()));
        if let Some(entered) = entered {
            let _ = entered.send(());
        }
        if let Some(gate) = gate {
            let _ = gate.await;
        }
        outcome
    }
}
