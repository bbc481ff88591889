//! The schedules' contract: cron schedules, the compare-and-set slot claim
//! with its outbox, and the run history.
//!
//! The SchedulerActor owns these rows. A slot is fired by whichever node's
//! conditional write (`… WHERE id = $id AND next_run_at = $slot`) changes the
//! row, so correctness never rests on one node. The claim, the slot's run
//! record and its queue item are written in one transaction (the queue is the
//! outbox): a node that dies at any instant leaves all three or none.

use chrono::{DateTime, Utc};

use super::StoreError;
use crate::model::page::{Page, PageRequest};
use crate::model::queue::NewQueueItem;
use crate::model::run::{ManualRun, ScheduleRun, SlotClaim};
use crate::model::schedule::{NewSchedule, Schedule, SchedulePatch, ScheduleRejected};

/// Why a schedule could not be created, changed or found.
#[derive(Debug, thiserror::Error)]
pub enum ScheduleError {
    #[error(transparent)]
    Rejected(#[from] ScheduleRejected),
    #[error("schedule {0} not found")]
    NotFound(i64),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl ScheduleError {
    /// The request field to blame, when there is one.
    pub fn field(&self) -> Option<&'static str> {
        match self {
            ScheduleError::Rejected(r) => Some(r.field()),
            _ => None,
        }
    }
}

/// A won slot's fire, written with its claim.
#[derive(Debug, Clone, PartialEq)]
pub struct SlotFire {
    pub claim: SlotClaim,
    /// The queue item to enqueue when the slot is won and not missed.
    pub item: Option<NewQueueItem>,
}

#[async_trait::async_trait]
pub trait ScheduleStore {
    /// Validate and insert; `next_run_at` is the first fire after `now`.
    async fn create_schedule(
        &self,
        new: &NewSchedule,
        now: DateTime<Utc>,
    ) -> Result<Schedule, ScheduleError>;

    /// Validate and apply a change (clears the invalid mark: the row was
    /// validated again).
    async fn update_schedule(
        &self,
        id: i64,
        patch: &SchedulePatch,
        now: DateTime<Utc>,
    ) -> Result<Schedule, ScheduleError>;

    /// Remove a schedule and its run history. Answers whether it existed.
    async fn delete_schedule(&self, id: i64) -> Result<bool, StoreError>;

    async fn get_schedule(&self, id: i64) -> Result<Option<Schedule>, StoreError>;

    /// All schedules, or one workspace's, by id.
    async fn list_schedules(&self, workspace: Option<&str>) -> Result<Vec<Schedule>, StoreError>;

    /// A page of schedules, all or one workspace's, by id.
    async fn page_schedules(
        &self,
        workspace: Option<&str>,
        page: &PageRequest,
    ) -> Result<Page<Schedule>, StoreError>;

    /// Enabled, valid schedules whose `next_run_at <= now`, oldest slot first.
    async fn due_schedules(
        &self,
        now: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<Schedule>, StoreError>;

    /// The compare-and-set claim, for many slots in one transaction: each
    /// schedule still at its `slot` moves to `next` (`last_run_at = slot`,
    /// `run_count + 1`), gets its run record (`dispatched`, or `missed`) and,
    /// when it has one, its queue item — all or nothing. Answers the schedule
    /// ids whose claim this call won; a claim another node (or a concurrent
    /// edit) got to first is silently lost. Wakes no drain: the caller
    /// notifies once for all its rounds.
    async fn claim_slots(
        &self,
        fires: &[SlotFire],
        max_attempts: u32,
        now: DateTime<Utc>,
    ) -> Result<Vec<i64>, StoreError>;

    /// Record a `RunNow` fire as `dispatched` with its queue item, in one
    /// transaction.
    async fn fire_manual(
        &self,
        run: &ManualRun,
        item: &NewQueueItem,
        max_attempts: u32,
        now: DateTime<Utc>,
    ) -> Result<ScheduleRun, StoreError>;

    /// Mark a row invalid with its error, if it still holds the spec, zone and
    /// policy that failed (an edit meanwhile wins). Answers whether it did.
    async fn mark_schedule_invalid(
        &self,
        seen: &Schedule,
        error: &str,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError>;

    /// Enabled, valid schedules with no `next_run_at` (start-up repair).
    async fn schedules_missing_next(&self) -> Result<Vec<Schedule>, StoreError>;

    /// Set `next_run_at` where it is still NULL. Answers whether it did.
    async fn repair_next_run(
        &self,
        id: i64,
        next: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError>;

    /// The earliest `next_run_at` of the enabled, valid schedules.
    async fn earliest_next_run(&self) -> Result<Option<DateTime<Utc>>, StoreError>;
}
