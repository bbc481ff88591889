//! Claimed items in transit: what a claim took, on its way to the drain.
//!
//! Whoever drops a [`Leased`] with items still inside (a drain incarnation
//! that died before it took them, a report dropped with a stopped actor's
//! mailbox) gives them back to the queue in a spawned task, as a transaction
//! rolls back when dropped, so they do not sit leased until the lease rescue
//! (which would count an attempt). The normal path takes the items out first.

use crate::clock::SharedClock;
use crate::model::queue::QueueItem;

use super::Store;

pub struct Leased {
    store: Store,
    clock: SharedClock,
    items: Vec<QueueItem>,
}

impl Leased {
    pub fn new(store: Store, clock: SharedClock, items: Vec<QueueItem>) -> Self {
        Self {
            store,
            clock,
            items,
        }
    }

    pub fn len(&self) -> usize {
        self.items.len()
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// The items, now the taker's to deliver or give back.
    pub fn take(mut self) -> Vec<QueueItem> {
        std::mem::take(&mut self.items)
    }
}

impl std::fmt::Debug for Leased {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Leased")
            .field("items", &self.items.len())
            .finish()
    }
}

impl Drop for Leased {
    fn drop(&mut self) {
        if self.items.is_empty() {
            return;
        }
        let items = std::mem::take(&mut self.items);
        let store = self.store.clone();
        let now = self.clock.now();
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move {
                if let Err(err) = store.release(&items, now).await {
                    tracing::warn!(error = %err, items = items.len(),
                        "claimed items not given back; their leases will be rescued");
                }
            });
        }
    }
}
