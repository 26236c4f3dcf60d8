//! The ports the wallet's use cases own: the store of wallet entries,
//! exchanges and product prices, and the gift exchange. Adapters implement them (`adapters::store` on diesel,
//! `adapters::gift_client` on gRPC); `lib.rs` alone picks the concrete ones.
//!
//! The store is a unit of work. [`WalletStore::write`] runs a use case's
//! work in one transaction, handing it a [`WalletTx`]: what the work reads,
//! the entries it saves and the events it stages commit together or not at
//! all, and a failure reaches the work as a [`StoreError`] of a kind it can
//! act on (a lost race is a `Conflict`, decided again with
//! [`platform::store::retry_on_conflict`]). The alternative, one store
//! method per use-case step ("begin this exchange"), would have put the
//! saga's decisions inside every store; a closure keeps them in `app.rs`,
//! written once, and lets the diesel adapter run the work exactly as before:
//! inside `Database::write`, at its savepoint of a group commit on SQLite.
//! The transaction is synchronous on purpose: nothing awaits (no call to
//! gift) while it holds the store.

use std::time::{Duration, Instant};

use kernel::{CustomerId, Points, StoreError};

use crate::domain::{
    EntryId, Exchange, ExchangeId, GiftAnswer, IdempotencyKey, ProductSku, RewardId, WalletEntry, WalletEvent,
};

/// One transaction's view of the wallet store.
pub trait WalletTx {
    /// The entry with this id.
    ///
    /// # Errors
    /// When the store fails.
    fn entry(&mut self, id: EntryId) -> Result<Option<WalletEntry>, StoreError>;

    /// Every entry of a player holding points still to spend.
    ///
    /// # Errors
    /// When the store fails.
    fn entries_with_points(&mut self, customer: &CustomerId) -> Result<Vec<WalletEntry>, StoreError>;

    /// Whether the reward is already in a wallet.
    ///
    /// # Errors
    /// When the store fails.
    fn holds_reward(&mut self, reward: RewardId) -> Result<bool, StoreError>;

    /// Adds a newly issued entry.
    ///
    /// # Errors
    /// A `Duplicate` when an entry with its id exists, or a store failure.
    fn insert(&mut self, entry: &WalletEntry) -> Result<(), StoreError>;

    /// Saves a changed entry if nobody changed it since it was read at
    /// version `read`.
    ///
    /// # Errors
    /// A `Conflict` when somebody did, or a store failure.
    fn update(&mut self, entry: &WalletEntry, read: i64) -> Result<(), StoreError>;

    /// The exchange with this id.
    ///
    /// # Errors
    /// When the store fails.
    fn exchange(&mut self, id: ExchangeId) -> Result<Option<Exchange>, StoreError>;

    /// The player's exchange under their idempotency key.
    ///
    /// # Errors
    /// When the store fails.
    fn exchange_by_key(&mut self, customer: &CustomerId, key: &IdempotencyKey) -> Result<Option<Exchange>, StoreError>;

    /// The exchange gift is asked under `key` for.
    ///
    /// # Errors
    /// When the store fails.
    fn exchange_by_gift_key(&mut self, key: &str) -> Result<Option<Exchange>, StoreError>;

    /// The pending exchanges an entry pays for.
    ///
    /// # Errors
    /// When the store fails.
    fn pending_exchanges_of(&mut self, entry: EntryId) -> Result<Vec<Exchange>, StoreError>;

    /// Adds a new exchange with its reservations.
    ///
    /// # Errors
    /// A `Duplicate` when the player's key (or the id) is taken, or a store failure.
    fn insert_exchange(&mut self, exchange: &Exchange) -> Result<(), StoreError>;

    /// Saves a changed exchange if nobody changed it since it was read at
    /// version `read` (its reservations never change).
    ///
    /// # Errors
    /// A `Conflict` when somebody did, or a store failure.
    fn update_exchange(&mut self, exchange: &Exchange, read: i64) -> Result<(), StoreError>;

    /// The product's price, as the wallet learnt it from gift's catalogue.
    ///
    /// # Errors
    /// When the store fails.
    fn price(&mut self, product: &ProductSku) -> Result<Option<Points>, StoreError>;

    /// Keeps the product's price (a later listing replaces it).
    ///
    /// # Errors
    /// When the store fails.
    fn keep_price(&mut self, product: &ProductSku, price: Points) -> Result<(), StoreError>;

    /// Stages `event` for publication when the transaction commits.
    ///
    /// # Errors
    /// When the store fails.
    fn stage(&mut self, event: &WalletEvent) -> Result<(), StoreError>;
}

/// The wallet's entries and exchanges, kept transactionally.
pub trait WalletStore: Send + Sync + 'static {
    /// Runs `work` in one write transaction: all it did is stored, or none.
    /// The answer comes once the transaction committed.
    ///
    /// # Errors
    /// Whatever `work` returns, or the store's failure (as a [`StoreError`]).
    fn write<T, E, F>(&self, work: F) -> impl Future<Output = Result<T, E>> + Send
    where
        F: FnOnce(&mut dyn WalletTx) -> Result<T, E> + Send + 'static,
        T: Send + 'static,
        E: From<StoreError> + Send + 'static;

    /// Every entry of a player, newest first.
    ///
    /// # Errors
    /// When the store fails.
    fn wallet(&self, customer: CustomerId) -> impl Future<Output = Result<Vec<WalletEntry>, StoreError>> + Send;

    /// Every exchange of a player, newest first.
    ///
    /// # Errors
    /// When the store fails.
    fn exchanges(&self, customer: CustomerId) -> impl Future<Output = Result<Vec<Exchange>, StoreError>> + Send;

    /// At most `limit` exchanges pending since before `cutoff` (milliseconds
    /// since the Unix epoch), oldest first: the re-driver's work.
    ///
    /// # Errors
    /// When the store fails.
    fn pending_since_before(
        &self,
        cutoff: i64,
        limit: u32,
    ) -> impl Future<Output = Result<Vec<Exchange>, StoreError>> + Send;

    /// At most `limit` entries with remaining points whose expiry is at or
    /// before `now` (milliseconds since the Unix epoch), soonest expiry
    /// first: the expiry job's work.
    ///
    /// # Errors
    /// When the store fails.
    fn due_to_expire(&self, now: i64, limit: u32) -> impl Future<Output = Result<Vec<WalletEntry>, StoreError>> + Send;
}

/// The gift context, as the exchange saga calls it.
pub trait GiftExchange: Send + Sync + 'static {
    /// Asks gift to place the order `exchange` pays for, under its gift key,
    /// giving up by `deadline` (the player's, when one waits) at the latest.
    /// Asking again under the same key is safe: gift places at most one
    /// order per key.
    fn exchange(&self, exchange: &Exchange, deadline: Option<Instant>) -> impl Future<Output = GiftOutcome> + Send;
}

/// Why the gift context placed no order, as the player will be told.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GiftRefusal {
    /// The product does not exist.
    UnknownProduct(String),
    /// A rule of the gift context: not enough points, out of stock…
    Rejected(String),
    /// The request itself was refused as malformed.
    Invalid(String),
    /// Gift is unreachable, shedding load, or its circuit is open; nothing
    /// was placed. `retry_after` says when trying again makes sense.
    Busy { reason: String, retry_after: Option<Duration> },
}

/// Gift's own words, kept with a released exchange.
impl std::fmt::Display for GiftRefusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::UnknownProduct(message) | Self::Rejected(message) | Self::Invalid(message) => f.write_str(message),
            Self::Busy { reason, .. } => f.write_str(reason),
        }
    }
}

/// The classified outcome of one exchange call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GiftOutcome {
    Placed {
        gift_order_id: String,
    },
    Refused(GiftRefusal),
    /// The call may have placed an order; `reason` says why we cannot know.
    Unknown {
        reason: String,
    },
}

impl GiftOutcome {
    /// What the saga needs to know of the outcome.
    pub fn answer(&self) -> GiftAnswer {
        match self {
            Self::Placed { gift_order_id } => GiftAnswer::Placed { gift_order_id: gift_order_id.clone() },
            Self::Refused(GiftRefusal::Busy { reason, .. }) => GiftAnswer::NotAsked { reason: reason.clone() },
            Self::Refused(refusal) => GiftAnswer::Refused { reason: refusal.to_string() },
            Self::Unknown { .. } => GiftAnswer::Unknown,
        }
    }

    /// Every result label of `rewards_exchanges_total`, created at zero when
    /// the wallet starts: a counter that first appears at 1 shows no
    /// `increase()`, so the first exchange of each result would be missed.
    pub const LABELS: [&'static str; 4] = ["exchanged", "busy", "refused", "unsettled"];

    /// The result label of `rewards_exchanges_total`.
    pub fn label(&self) -> &'static str {
        match self {
            Self::Placed { .. } => "exchanged",
            Self::Refused(GiftRefusal::Busy { .. }) => "busy",
            Self::Refused(_) => "refused",
            Self::Unknown { .. } => "unsettled",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_outcome_is_counted_under_a_result_created_at_start() {
        let outcomes = [
            GiftOutcome::Placed { gift_order_id: "o".into() },
            GiftOutcome::Refused(GiftRefusal::Busy { reason: "open".into(), retry_after: None }),
            GiftOutcome::Refused(GiftRefusal::Rejected("out of stock".into())),
            GiftOutcome::Refused(GiftRefusal::UnknownProduct("X".into())),
            GiftOutcome::Refused(GiftRefusal::Invalid("bad".into())),
            GiftOutcome::Unknown { reason: "timeout".into() },
        ];
        for outcome in &outcomes {
            assert!(GiftOutcome::LABELS.contains(&outcome.label()), "{outcome:?} is counted as {}", outcome.label());
        }
    }
}
