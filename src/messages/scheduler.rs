//! The SchedulerActor's vocabulary: ticks, fires outside the timetable,
//! schedule changes, and the events it publishes.

use chrono::{DateTime, Utc};
use ractor::RpcReplyPort;
use serde::Serialize;

use super::queue::QueueOutcome;
use crate::model::run::{RunStatus, ScheduleRun};
use crate::model::schedule::{NewSchedule, Schedule, SchedulePatch, ScheduleRejected};
use crate::store::{ScheduleError, StoreError};

/// What subscribers hear about schedules.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "event")]
pub enum ScheduleEvent {
    /// A fire was delivered (`ok`, `stale`) or failed for good (`error`).
    CronExecuted {
        schedule_id: i64,
        name: String,
        workspace: String,
        slot: DateTime<Utc>,
        key: String,
        status: RunStatus,
        error: Option<String>,
        at: DateTime<Utc>,
    },
    /// A fire expired in the queue: the workspace stayed busy past the defer window.
    CronSkipped {
        schedule_id: i64,
        name: String,
        workspace: String,
        slot: DateTime<Utc>,
        key: String,
        reason: String,
        at: DateTime<Utc>,
    },
    /// A slot older than the starting deadline: recorded, not fired.
    CronMissed {
        schedule_id: i64,
        name: String,
        workspace: String,
        slot: DateTime<Utc>,
        key: String,
        at: DateTime<Utc>,
    },
    /// A row whose spec or zone does not parse left the due set.
    ScheduleInvalid {
        schedule_id: i64,
        name: String,
        error: String,
        at: DateTime<Utc>,
    },
}

#[derive(Debug, thiserror::Error)]
pub enum SchedulerError {
    #[error(transparent)]
    Rejected(#[from] ScheduleRejected),
    #[error("schedule {0} not found")]
    NotFound(i64),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<ScheduleError> for SchedulerError {
    fn from(err: ScheduleError) -> Self {
        match err {
            ScheduleError::Rejected(r) => SchedulerError::Rejected(r),
            ScheduleError::NotFound(id) => SchedulerError::NotFound(id),
            ScheduleError::Store(s) => SchedulerError::Store(s),
        }
    }
}

/// One slot this node fired (or recorded as missed).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FiredSlot {
    pub schedule_id: i64,
    pub slot: DateTime<Utc>,
    pub key: String,
}

/// What one tick did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct SchedulerTickReport {
    /// Due schedules read.
    pub due: usize,
    /// Slots this node claimed and enqueued.
    pub fired: Vec<FiredSlot>,
    /// Slots this node claimed and recorded `missed`.
    pub missed: Vec<FiredSlot>,
    /// Claims another node (or an edit) got to first.
    pub lost: usize,
    /// Schedules marked invalid.
    pub invalid: Vec<i64>,
    /// Runs whose outcome reconciliation wrote.
    pub reconciled: usize,
    /// Orphaned runs enqueued again (or given up as skipped).
    pub requeued: usize,
}

/// Create a schedule, or change one.
#[derive(Debug, Clone, PartialEq)]
pub enum Upsert {
    Create(NewSchedule),
    Update { id: i64, patch: SchedulePatch },
}

pub type Reply<T> = RpcReplyPort<Result<T, SchedulerError>>;

pub enum SchedulerMsg {
    /// Fire what is due at `now` (the clock when `None`), reconcile outcomes.
    Tick {
        now: Option<DateTime<Utc>>,
        reply: Option<Reply<SchedulerTickReport>>,
    },
    /// Fire a schedule now, outside its timetable (key `cron:{id}:manual:{now}`).
    RunNow {
        schedule: i64,
        reply: Option<Reply<ScheduleRun>>,
    },
    Upsert {
        upsert: Upsert,
        reply: Reply<Schedule>,
    },
    /// Remove a schedule and its history; answers whether it existed.
    Delete { schedule: i64, reply: Reply<bool> },
    /// Queue outcomes of cron fires, from the actor's own forwarder.
    #[doc(hidden)]
    Outcomes(Outcomes),
}

/// Outcomes forwarded from the queue's bus; only the crate builds one.
pub struct Outcomes(pub(crate) Vec<QueueOutcome>);
