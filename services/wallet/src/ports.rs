//! The ports the wallet's use cases own: the store of wallet entries and the
//! gift exchange. Adapters implement them (`adapters::store` on diesel,
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

use kernel::{CustomerId, StoreError};

use crate::domain::{EntryId, ExchangeTicket, GiftAnswer, RewardId, WalletEntry, WalletEvent};

/// One transaction's view of the wallet store.
pub trait WalletTx {
    /// The entry with this id.
    ///
    /// # Errors
    /// When the store fails.
    fn entry(&mut self, id: EntryId) -> Result<Option<WalletEntry>, StoreError>;

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
    /// `entry.version - 1`.
    ///
    /// # Errors
    /// A `Conflict` when somebody did, or a store failure.
    fn update(&mut self, entry: &WalletEntry) -> Result<(), StoreError>;

    /// Stages `event` for publication when the transaction commits.
    ///
    /// # Errors
    /// When the store fails.
    fn stage(&mut self, event: &WalletEvent) -> Result<(), StoreError>;
}

/// The wallet entries, kept transactionally.
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

    /// At most `limit` entries pending since before `cutoff` (milliseconds
    /// since the Unix epoch), oldest first: the re-driver's work.
    ///
    /// # Errors
    /// When the store fails.
    fn pending_since_before(
        &self,
        cutoff: i64,
        limit: u32,
    ) -> impl Future<Output = Result<Vec<WalletEntry>, StoreError>> + Send;

    /// At most `limit` AVAILABLE entries whose expiry is at or before `now`
    /// (milliseconds since the Unix epoch), soonest expiry first: the expiry
    /// job's work.
    ///
    /// # Errors
    /// When the store fails.
    fn due_to_expire(&self, now: i64, limit: u32) -> impl Future<Output = Result<Vec<WalletEntry>, StoreError>> + Send;
}

/// The gift context, as the exchange saga calls it.
pub trait GiftExchange: Send + Sync + 'static {
    /// Asks gift to exchange `entry` as `ticket` says, under the ticket's
    /// idempotency key, giving up by `deadline` (the player's, when one
    /// waits) at the latest. Asking again under the same key is safe: gift
    /// places at most one order per key.
    fn exchange(
        &self,
        entry: &WalletEntry,
        ticket: &ExchangeTicket,
        deadline: Option<Instant>,
    ) -> impl Future<Output = GiftOutcome> + Send;
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
            Self::Refused(GiftRefusal::Busy { .. }) => GiftAnswer::NotAsked,
            Self::Refused(_) => GiftAnswer::Refused,
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
