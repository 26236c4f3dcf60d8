//! The my page use cases: reading a player's page, watching it change, and
//! merging one event into it inside the consumer's inbox transaction. They
//! speak domain types only, through [`crate::ports`].

use std::sync::Arc;
use std::time::Duration;

use futures::{Stream, StreamExt as _};
use kernel::CustomerId;
use kernel::StoreError;
use platform::CancellationToken;
use tokio::sync::broadcast;
use tokio::time::{Instant, Interval, MissedTickBehavior};
use tracing::instrument;

use crate::domain::{Merge, MyPage, PageEvent, PlayerPage};
use crate::ports::{PageStore, PageTx};

#[cfg(test)]
mod tests;

/// How often a watch re-reads its page, to see changes that another replica
/// of this service applied (this replica's own changes arrive at once).
pub const WATCH_POLL: Duration = Duration::from_secs(2);

/// Notifications kept for slow watchers before they lag (and re-read).
const CHANGES_CAPACITY: usize = 1024;

/// What a my page use case can answer besides a page.
#[derive(Debug, thiserror::Error)]
pub enum MyPageError {
    #[error(transparent)]
    Storage(#[from] StoreError),
}

/// Tells this replica's watchers which player's page an event was applied to.
#[derive(Debug, Clone)]
pub struct PageChanges(broadcast::Sender<CustomerId>);

impl Default for PageChanges {
    fn default() -> Self {
        Self(broadcast::channel(CHANGES_CAPACITY).0)
    }
}

impl PageChanges {
    /// Wakes the watchers of `customer`'s page.
    pub fn notify(&self, customer: CustomerId) {
        // No watcher at all is the common case, not a failure.
        let _ = self.0.send(customer);
    }

    fn subscribe(&self) -> broadcast::Receiver<CustomerId> {
        self.0.subscribe()
    }
}

/// The my page application service, over a store `S`.
#[derive(Debug)]
pub struct MyPages<S> {
    store: Arc<S>,
    changes: PageChanges,
}

impl<S> Clone for MyPages<S> {
    fn clone(&self) -> Self {
        Self { store: Arc::clone(&self.store), changes: self.changes.clone() }
    }
}

impl<S: PageStore> MyPages<S> {
    /// Use cases over `store`; watches wake on `changes`.
    pub fn new(store: S, changes: PageChanges) -> Self {
        Self { store: Arc::new(store), changes }
    }

    /// A player's page; a player no event mentioned yet has an empty page at
    /// version 0.
    ///
    /// # Errors
    /// When the store fails.
    pub async fn get(&self, customer: CustomerId) -> Result<PlayerPage, MyPageError> {
        let page = self.store.page(customer.clone()).await?;
        Ok(page.unwrap_or_else(|| PlayerPage::empty(customer)))
    }

    /// A player's page now, then again after every change, until `stopping`
    /// is cancelled or the caller drops the stream. A version is sent once.
    ///
    /// # Errors
    /// When the store fails on the first read; a later failure is the last
    /// item of the stream.
    #[instrument(skip_all, fields(customer_id = %customer))]
    pub async fn watch(
        &self,
        customer: CustomerId,
        stopping: CancellationToken,
    ) -> Result<impl Stream<Item = Result<PlayerPage, MyPageError>> + Send + 'static, MyPageError> {
        // Subscribed before the first read, so a change committed in between
        // is not missed.
        let changes = self.changes.subscribe();
        let first = self.get(customer.clone()).await?;
        let mut poll = tokio::time::interval_at(Instant::now() + WATCH_POLL, WATCH_POLL);
        poll.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let watcher = Watcher { pages: self.clone(), customer, changes, poll, stopping, sent: first.version };
        let later = futures::stream::unfold(Some(watcher), |watcher| async move {
            let mut watcher = watcher?;
            match watcher.next_version().await? {
                Ok(page) => Some((Ok(page), Some(watcher))),
                // The stream ends on a failure; the caller watches again.
                Err(error) => Some((Err(error), None)),
            }
        });
        Ok(futures::stream::once(std::future::ready(Ok(first))).chain(later))
    }
}

/// One open watch of one player's page.
struct Watcher<S> {
    pages: MyPages<S>,
    customer: CustomerId,
    changes: broadcast::Receiver<CustomerId>,
    poll: Interval,
    stopping: CancellationToken,
    /// The version last sent; only a newer one is sent.
    sent: i64,
}

impl<S: PageStore> Watcher<S> {
    /// Waits for a newer version of the page; `None` when the watch is over.
    async fn next_version(&mut self) -> Option<Result<PlayerPage, MyPageError>> {
        loop {
            let reread = tokio::select! {
                biased;
                () = self.stopping.cancelled() => return None,
                received = self.changes.recv() => match received {
                    Ok(customer) => customer == self.customer,
                    // Notifications were lost, perhaps ours: look.
                    Err(broadcast::error::RecvError::Lagged(_)) => true,
                    // Cannot happen: `pages` holds a sender as long as the watch lives.
                    Err(broadcast::error::RecvError::Closed) => return None,
                },
                _ = self.poll.tick() => true,
            };
            if !reread {
                continue;
            }
            match self.pages.get(self.customer.clone()).await {
                Ok(page) if page.version > self.sent => {
                    self.sent = page.version;
                    return Some(Ok(page));
                }
                Ok(_) => {}
                Err(error) => return Some(Err(error)),
            }
        }
    }
}

/// Policy effect: merges `event` into `customer`'s page, saving it at the
/// next version only when it changed, so a repeated or stale event leaves
/// the version as it was.
///
/// # Errors
/// A `Conflict` when another transaction saved the page first (the event is
/// merged again), or another store failure.
pub fn merge_event(tx: &mut dyn PageTx, customer: &CustomerId, event: &PageEvent) -> Result<Merge, StoreError> {
    match tx.page(customer)? {
        Some(mut stored) => {
            let merge = stored.page.apply(event);
            if merge == Merge::Changed {
                stored.version += 1;
                tx.update(&stored)?;
            }
            Ok(merge)
        }
        None => {
            let mut page = MyPage::default();
            let merge = page.apply(event);
            tx.insert(&PlayerPage { customer_id: customer.clone(), version: 1, page })?;
            Ok(merge)
        }
    }
}
