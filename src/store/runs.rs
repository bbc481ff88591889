//! The run history's contract: how each fire ended. A run is written
//! `dispatched` by the slot claim (or `RunNow`); its queue item's end becomes
//! its status here, by the outcome events or, when one was lost to a
//! restart, by reconciliation on any node (the write is conditional on
//! `status = 'dispatched'`, so it happens once).

use chrono::{DateTime, Utc};

use super::StoreError;
use crate::model::page::{Page, PageRequest};
use crate::model::queue::QueueItem;
use crate::model::run::{FinishedRun, RunOutcome, ScheduleRun};

#[async_trait::async_trait]
pub trait RunStore {
    /// Write outcomes of `dispatched` runs, by key, and update their schedules
    /// as [`crate::model::run::judge`] decides. A run no longer `dispatched`
    /// (another node wrote it) is left alone and missing from the answer.
    async fn finish_runs(
        &self,
        outcomes: &[(String, RunOutcome)],
        now: DateTime<Utc>,
    ) -> Result<Vec<FinishedRun>, StoreError>;

    /// A page of a schedule's runs, newest slot first.
    async fn page_runs(
        &self,
        schedule_id: i64,
        page: &PageRequest,
    ) -> Result<Page<ScheduleRun>, StoreError>;

    /// A schedule's newest `limit` runs.
    async fn list_runs(
        &self,
        schedule_id: i64,
        limit: u32,
    ) -> Result<Vec<ScheduleRun>, StoreError> {
        Ok(self
            .page_runs(schedule_id, &PageRequest::first(limit))
            .await?
            .items)
    }

    async fn get_run_by_key(&self, key: &str) -> Result<Option<ScheduleRun>, StoreError>;

    /// `dispatched` runs whose queue item is final: outcomes a restart (or a
    /// lost event) kept from being written.
    async fn settled_pending_runs(
        &self,
        limit: u32,
    ) -> Result<Vec<(ScheduleRun, QueueItem)>, StoreError>;

    /// `dispatched` runs started before `started_before` that have no queue
    /// item at all (written by a version without the outbox, or whose item
    /// was removed by hand).
    async fn orphaned_runs(
        &self,
        started_before: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<ScheduleRun>, StoreError>;
}
