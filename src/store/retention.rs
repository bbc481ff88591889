//! The retention contract: delete finished rows past their cutoff, one
//! bounded batch per call, oldest first. Several nodes may prune at once: a
//! row two of them pick is deleted once (on Postgres the second skips rows
//! the first has locked), and each answers only what it deleted.

use chrono::{DateTime, Utc};

use super::StoreError;
use crate::model::delegation::DelegationStatus;
use crate::model::queue::QueueStatus;

#[async_trait::async_trait]
pub trait RetentionStore {
    /// Delete up to `limit` queue items in `statuses` (end states only)
    /// finished before `before`, except any whose schedule run still waits
    /// for its outcome. Answers how many went.
    async fn prune_queue(
        &self,
        statuses: &[QueueStatus],
        before: DateTime<Utc>,
        limit: u32,
    ) -> Result<u64, StoreError>;

    /// Delete up to `limit` finished schedule runs that finished before
    /// `before`, keeping every schedule's newest `keep`.
    async fn prune_runs(
        &self,
        before: DateTime<Utc>,
        keep: u32,
        limit: u32,
    ) -> Result<u64, StoreError>;

    /// Delete up to `limit` delegations in `statuses` last changed before `before`.
    async fn prune_delegations(
        &self,
        statuses: &[DelegationStatus],
        before: DateTime<Utc>,
        limit: u32,
    ) -> Result<u64, StoreError>;

    /// Make the space of the rows pruned and updated since the last time
    /// reusable, so a queue's tables stay the size of what they hold:
    /// `VACUUM (ANALYZE)` on Postgres; nothing on SQLite, which reuses freed pages.
    async fn reclaim(&self) -> Result<(), StoreError>;
}
