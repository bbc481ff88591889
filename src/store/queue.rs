//! The delivery queue's contract: durable, priority-ordered, exactly claimed.
//!
//! Every message to a workspace (a cron fire, a message for a busy agent, a
//! retry) is a row here. The QueueDrainActor claims rows under a lease,
//! dispatches them and writes their outcomes; every outcome write is fenced
//! by the claim's lease token, so a node whose lease was rescued and
//! re-claimed elsewhere cannot overwrite the newer claim's result. What an
//! outcome does to a row is the model's decision ([`QueueItem::settle`]);
//! the store writes it.

use chrono::{DateTime, Utc};

use super::StoreError;
use crate::model::outcome::{Backoff, DispatchResult, Settled};
use crate::model::page::{Page, PageRequest};
use crate::model::queue::{Enqueued, NewQueueItem, QueueItem, QueueStatus};

/// A claim request: up to `limit` items of `workspace`, leased until `lease_until`.
#[derive(Debug, Clone)]
pub struct Claim<'a> {
    pub workspace: &'a str,
    pub limit: u32,
    pub now: DateTime<Utc>,
    pub lease_until: DateTime<Utc>,
    /// Which node holds the lease (for operators and the rescue log).
    pub node: &'a str,
}

/// Which items a list shows.
#[derive(Debug, Clone, Copy, Default)]
pub struct QueueFilter<'a> {
    pub workspace: Option<&'a str>,
    pub status: Option<QueueStatus>,
}

/// One outcome to write: the claimed item (its id and lease token fence the
/// write) and the model's decision.
#[derive(Debug, Clone)]
pub struct Settle<'a> {
    pub item: &'a QueueItem,
    pub settled: Settled,
}

/// What recording one outcome did.
#[derive(Debug, Clone, PartialEq)]
pub enum Recorded {
    /// The row changed; it is now in this state.
    Applied(Box<QueueItem>),
    /// The lease was no longer ours (rescued, re-claimed): nothing written.
    LeaseLost,
}

/// Expired leases rescued per statement (a dead node's whole buffer fits).
pub const RESCUE_BATCH: u32 = 5_000;

#[async_trait::async_trait]
pub trait QueueStore {
    /// Enqueue one item (deduped by key against the workspace's active items).
    /// The item was validated by the caller ([`NewQueueItem::validate`]).
    async fn enqueue(
        &self,
        item: &NewQueueItem,
        max_attempts: u32,
        now: DateTime<Utc>,
    ) -> Result<Enqueued, StoreError>;

    /// Enqueue many in one transaction; answers in input order, each with
    /// its workspace's depth after the batch.
    async fn enqueue_batch(
        &self,
        items: &[NewQueueItem],
        max_attempts: u32,
        now: DateTime<Utc>,
    ) -> Result<Vec<Enqueued>, StoreError>;

    /// [`QueueStore::enqueue_batch`] without counting depths (each
    /// `Enqueued::depth` is 0): the write's cost then does not grow with the
    /// queue. For callers that keep their own estimate (the ingest's
    /// [`DepthBook`](crate::model::depth::DepthBook)).
    async fn enqueue_batch_uncounted(
        &self,
        items: &[NewQueueItem],
        max_attempts: u32,
        now: DateTime<Utc>,
    ) -> Result<Vec<Enqueued>, StoreError>;

    /// Claim up to `limit` ready items of a workspace, highest priority then
    /// oldest first, skipping expired ones; all get one fresh lease token.
    async fn claim(&self, claim: Claim<'_>) -> Result<Vec<QueueItem>, StoreError>;

    /// Write decided outcomes of claimed items, each fenced by its lease
    /// token (which it clears). Answers the ids written; a missing id had
    /// lost its lease.
    async fn settle(&self, rows: &[Settle<'_>], now: DateTime<Utc>)
        -> Result<Vec<i64>, StoreError>;

    /// Mark `expired` every queued item whose TTL ran out. Answers them.
    async fn expire_due(&self, now: DateTime<Utc>) -> Result<Vec<QueueItem>, StoreError>;

    /// Dispatched items whose lease ran out by `now`, oldest lease first.
    async fn expired_leases(
        &self,
        now: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<QueueItem>, StoreError>;

    /// Workspaces with at least one item ready to claim at `now`.
    async fn ready_workspaces(&self, now: DateTime<Utc>) -> Result<Vec<String>, StoreError>;

    /// Active items (queued + dispatched) of a workspace.
    async fn queue_depth(&self, workspace: &str) -> Result<u64, StoreError>;

    /// Items per status, for all workspaces. Reads every row: for tests and
    /// tools, not for anything called often.
    async fn queue_counts(&self) -> Result<Vec<(QueueStatus, u64)>, StoreError>;

    /// Active items (`queued`, `dispatched`) per status, all workspaces, from
    /// a partial index: its cost follows the active items, never the
    /// finished ones (metrics).
    async fn active_counts(&self) -> Result<Vec<(QueueStatus, u64)>, StoreError>;

    /// A page of items, newest first, of one workspace or all, optionally
    /// of one status.
    async fn page_queue(
        &self,
        filter: QueueFilter<'_>,
        page: &PageRequest,
    ) -> Result<Page<QueueItem>, StoreError>;

    /// A workspace's newest `limit` items, optionally of one status.
    async fn list_queue(
        &self,
        workspace: &str,
        status: Option<QueueStatus>,
        limit: u32,
    ) -> Result<Vec<QueueItem>, StoreError> {
        let filter = QueueFilter {
            workspace: Some(workspace),
            status,
        };
        Ok(self
            .page_queue(filter, &PageRequest::first(limit))
            .await?
            .items)
    }

    async fn get_queue_item(&self, id: i64) -> Result<Option<QueueItem>, StoreError>;

    /// Items this node holds leases on (to rebuild in-flight counts after a restart).
    async fn dispatched_by(&self, node: &str) -> Result<Vec<QueueItem>, StoreError>;

    /// Record one dispatch outcome of a claimed `item`, decided by the model.
    async fn record_dispatch(
        &self,
        item: &QueueItem,
        result: &DispatchResult,
        now: DateTime<Utc>,
        backoff: Backoff,
    ) -> Result<Recorded, StoreError> {
        let settled = item.settle(result, now, backoff);
        let written = self
            .settle(
                &[Settle {
                    item,
                    settled: settled.clone(),
                }],
                now,
            )
            .await?;
        Ok(if written.is_empty() {
            Recorded::LeaseLost
        } else {
            Recorded::Applied(Box::new(item.with(&settled)))
        })
    }

    /// Give back claimed items that were never dispatched (a node's prefetch
    /// buffer): `queued` again, lease cleared, no attempt counted, place in
    /// the claim order kept. Answers the rows that changed; an item missing
    /// from the answer was not ours any more.
    async fn release(
        &self,
        items: &[QueueItem],
        now: DateTime<Utc>,
    ) -> Result<Vec<QueueItem>, StoreError> {
        if items.is_empty() {
            return Ok(Vec::new());
        }
        let rows: Vec<Settle<'_>> = items
            .iter()
            .map(|item| Settle {
                item,
                settled: item.released(),
            })
            .collect();
        let written = self.settle(&rows, now).await?;
        Ok(rows
            .iter()
            .filter(|r| written.contains(&r.item.id))
            .map(|r| r.item.with(&r.settled))
            .collect())
    }

    /// Put back to `queued` every dispatched item whose lease ran out,
    /// counting the lost attempt (`failed` when attempts are spent). Answers
    /// the rows it changed.
    async fn rescue_expired_leases(
        &self,
        now: DateTime<Utc>,
    ) -> Result<Vec<QueueItem>, StoreError> {
        let lost = self.expired_leases(now, RESCUE_BATCH).await?;
        if lost.is_empty() {
            return Ok(Vec::new());
        }
        let rows: Vec<Settle<'_>> = lost
            .iter()
            .map(|item| Settle {
                item,
                settled: item.after_lost_lease(now),
            })
            .collect();
        let written = self.settle(&rows, now).await?;
        Ok(rows
            .iter()
            .filter(|r| written.contains(&r.item.id))
            .map(|r| r.item.with(&r.settled))
            .collect())
    }
}
