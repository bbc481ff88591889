//! The schedules' contract: cron schedules, the compare-and-set slot claim, and
//! the run history.
//!
//! The SchedulerActor owns these rows. A slot is fired by whichever node's
//! conditional write (`… WHERE id = $id AND next_run_at = $slot`) changes the
//! row, so correctness never rests on one node. The run record of a won slot is
//! written in the same transaction as the claim: a node that dies between the
//! claim and the enqueue leaves a `dispatched` run with no queue item, which
//! reconciliation finds and finishes, instead of a slot that silently vanished.
//!
//! Validation lives here, shared by both drivers, so "create and update
//! validate the spec and zone and set `next_run_at`" means one thing.

use std::fmt;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::{QueueItem, QueueStatus, StoreError};
use crate::dispatch::response_text;
use crate::schedule::{DstPolicy, ScheduleSpec, SpecError};

/// Default: a slot older than this when it is finally looked at is `missed`.
pub const DEFAULT_STARTING_DEADLINE: Duration = Duration::from_secs(3600);
/// Default: how long a fire may wait in the queue for a busy workspace.
pub const DEFAULT_DEFER_WINDOW: Duration = Duration::from_secs(120);
/// This many empty successes in a row make a schedule `stale`.
pub const STALE_AFTER: i32 = 3;
/// The runtime's sentinel for "the agent produced nothing".
pub const NO_RESPONSE_SENTINEL: &str = "(no response generated)";
/// At most this many characters of a response are kept on the run record.
const SUMMARY_CHARS: usize = 500;

/// How a run ended (or that it has not yet).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RunStatus {
    /// Handed to the queue; the outcome is not in yet.
    Dispatched,
    Ok,
    Error,
    /// Expired in the queue: the workspace stayed busy past the defer window.
    Skipped,
    /// The third (or later) empty response in a row.
    Stale,
    /// The slot was older than the starting deadline when it was claimed.
    Missed,
}

impl RunStatus {
    pub const ALL: [RunStatus; 6] = [
        RunStatus::Dispatched,
        RunStatus::Ok,
        RunStatus::Error,
        RunStatus::Skipped,
        RunStatus::Stale,
        RunStatus::Missed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Dispatched => "dispatched",
            RunStatus::Ok => "ok",
            RunStatus::Error => "error",
            RunStatus::Skipped => "skipped",
            RunStatus::Stale => "stale",
            RunStatus::Missed => "missed",
        }
    }

    pub fn parse(text: &str, table: &'static str) -> Result<Self, StoreError> {
        RunStatus::ALL
            .into_iter()
            .find(|s| s.as_str() == text)
            .ok_or_else(|| StoreError::Corrupt {
                table,
                column: "status",
                value: text.to_string(),
            })
    }
}

impl fmt::Display for RunStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a schedule could not be created, changed or found. `field()` names the
/// input to blame, for an HTTP 400 `{"error", "field"}`.
#[derive(Debug, thiserror::Error)]
pub enum ScheduleError {
    #[error("{0}")]
    Spec(#[from] SpecError),
    #[error("{field}: {message}")]
    Invalid {
        field: &'static str,
        message: &'static str,
    },
    #[error("schedule {0} not found")]
    NotFound(i64),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl ScheduleError {
    pub fn field(&self) -> Option<&'static str> {
        match self {
            ScheduleError::Spec(e) => e.field(),
            ScheduleError::Invalid { field, .. } => Some(field),
            ScheduleError::NotFound(_) | ScheduleError::Store(_) => None,
        }
    }
}

/// What to create.
#[derive(Debug, Clone, PartialEq)]
pub struct NewSchedule {
    pub workspace: String,
    pub name: String,
    /// Cron text, a macro, `every …` or `daily …` (see [`crate::schedule`]).
    pub spec: String,
    /// IANA zone the spec's wall-clock times are read in.
    pub timezone: String,
    pub dst: DstPolicy,
    /// The text sent to the workspace on every fire.
    pub prompt: String,
    pub enabled: bool,
    pub starting_deadline: Duration,
    pub defer_window: Duration,
}

impl NewSchedule {
    /// An enabled UTC schedule with the default deadline and defer window.
    pub fn new(
        workspace: impl Into<String>,
        name: impl Into<String>,
        spec: impl Into<String>,
        prompt: impl Into<String>,
    ) -> Self {
        Self {
            workspace: workspace.into(),
            name: name.into(),
            spec: spec.into(),
            timezone: "UTC".to_string(),
            dst: DstPolicy::Vixie,
            prompt: prompt.into(),
            enabled: true,
            starting_deadline: DEFAULT_STARTING_DEADLINE,
            defer_window: DEFAULT_DEFER_WINDOW,
        }
    }

    pub fn timezone(mut self, tz: impl Into<String>) -> Self {
        self.timezone = tz.into();
        self
    }

    pub fn dst(mut self, dst: DstPolicy) -> Self {
        self.dst = dst;
        self
    }

    pub fn enabled(mut self, enabled: bool) -> Self {
        self.enabled = enabled;
        self
    }

    pub fn starting_deadline(mut self, d: Duration) -> Self {
        self.starting_deadline = d;
        self
    }

    pub fn defer_window(mut self, d: Duration) -> Self {
        self.defer_window = d;
        self
    }
}

/// A change to a schedule; `None` leaves a field as it is.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SchedulePatch {
    pub workspace: Option<String>,
    pub name: Option<String>,
    pub spec: Option<String>,
    pub timezone: Option<String>,
    pub dst: Option<DstPolicy>,
    pub prompt: Option<String>,
    pub enabled: Option<bool>,
    pub starting_deadline: Option<Duration>,
    pub defer_window: Option<Duration>,
}

/// One stored schedule.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Schedule {
    pub id: i64,
    pub workspace: String,
    pub name: String,
    pub spec: String,
    pub timezone: String,
    pub dst: DstPolicy,
    pub prompt: String,
    pub enabled: bool,
    /// The next slot to fire; the claim compares against it.
    pub next_run_at: Option<DateTime<Utc>>,
    /// The last slot claimed (not when it was delivered).
    pub last_run_at: Option<DateTime<Utc>>,
    pub run_count: i64,
    pub last_status: Option<RunStatus>,
    pub last_error: Option<String>,
    pub consecutive_empty_runs: i32,
    #[serde(serialize_with = "as_secs")]
    pub starting_deadline: Duration,
    #[serde(serialize_with = "as_secs")]
    pub defer_window: Duration,
    /// A row whose spec or zone does not parse (written by hand, or by an
    /// older version): out of the due set until it is updated.
    pub invalid: bool,
    pub invalid_error: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

fn as_secs<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64(d.as_secs_f64())
}

impl Schedule {
    /// The stored spec, parsed again (a row may have been written by hand).
    pub fn parsed(&self) -> Result<ScheduleSpec, SpecError> {
        ScheduleSpec::parse(&self.spec, &self.timezone, self.dst)
    }
}

/// One fire (or missed slot) of a schedule.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ScheduleRun {
    pub id: i64,
    pub schedule_id: i64,
    pub workspace: String,
    pub slot: DateTime<Utc>,
    /// Fired by `RunNow`, not by the timetable.
    pub manual: bool,
    /// The queue item's idempotency key and the A2A messageId.
    pub key: String,
    pub status: RunStatus,
    pub started_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
    pub error: Option<String>,
    pub response_summary: Option<String>,
}

/// One slot to claim: move `next_run_at` from `slot` to `next` if it still
/// holds `slot`, and record the run.
#[derive(Debug, Clone, PartialEq)]
pub struct SlotClaim {
    pub schedule_id: i64,
    pub workspace: String,
    pub slot: DateTime<Utc>,
    pub next: DateTime<Utc>,
    pub key: String,
    /// `Some(reason)`: the slot is past its starting deadline; record it
    /// `missed` instead of `dispatched`.
    pub missed: Option<String>,
}

/// A fire outside the timetable (`RunNow`).
#[derive(Debug, Clone, PartialEq)]
pub struct ManualRun {
    pub schedule_id: i64,
    pub workspace: String,
    pub slot: DateTime<Utc>,
    pub key: String,
}

/// How a dispatched run ended, read from its queue item.
#[derive(Debug, Clone, PartialEq)]
pub enum RunOutcome {
    /// Delivered. `empty`: no text, or only the no-response sentinel.
    Completed {
        summary: String,
        empty: bool,
    },
    Failed {
        error: String,
    },
    /// Expired in the queue before it could be delivered.
    Expired {
        reason: String,
    },
}

impl RunOutcome {
    /// The outcome a final queue item stands for; `None` while it is active.
    pub fn from_item(item: &QueueItem) -> Option<RunOutcome> {
        match item.status {
            QueueStatus::Queued | QueueStatus::Dispatched => None,
            QueueStatus::Completed => {
                let text = response_text(item.response.as_deref().unwrap_or_default());
                let trimmed = text.trim();
                Some(RunOutcome::Completed {
                    empty: trimmed.is_empty() || trimmed == NO_RESPONSE_SENTINEL,
                    summary: summarize(trimmed),
                })
            }
            QueueStatus::Failed => Some(RunOutcome::Failed {
                error: item
                    .last_error
                    .clone()
                    .unwrap_or_else(|| "delivery failed without an error message".to_string()),
            }),
            QueueStatus::Expired => {
                let mut reason = format!(
                    "not delivered within the defer window: workspace {} had no room",
                    item.workspace
                );
                if let Some(last) = &item.last_error {
                    reason.push_str(&format!(" (last answer: {last})"));
                }
                Some(RunOutcome::Expired { reason })
            }
        }
    }
}

/// The first characters of a response, cut at a char boundary.
pub fn summarize(text: &str) -> String {
    match text.char_indices().nth(SUMMARY_CHARS) {
        Some((end, _)) => format!("{}…", &text[..end]),
        None => text.to_string(),
    }
}

/// A run whose outcome was written now, with what it did to its schedule.
#[derive(Debug, Clone, PartialEq)]
pub struct FinishedRun {
    pub run: ScheduleRun,
    pub schedule_name: String,
    pub consecutive_empty_runs: i32,
}

/// A validated create or update, ready to write.
#[derive(Debug, Clone, PartialEq)]
pub struct PreparedSchedule {
    pub workspace: String,
    pub name: String,
    pub spec: String,
    pub timezone: String,
    pub dst: DstPolicy,
    pub prompt: String,
    pub enabled: bool,
    pub starting_deadline_ms: i64,
    pub defer_window_ms: i64,
    pub next_run_at: Option<DateTime<Utc>>,
}

fn millis(d: Duration, field: &'static str) -> Result<i64, ScheduleError> {
    let ms = i64::try_from(d.as_millis()).unwrap_or(i64::MAX);
    if ms < 1 {
        return Err(ScheduleError::Invalid {
            field,
            message: "must be positive",
        });
    }
    Ok(ms)
}

fn required(text: &str, field: &'static str) -> Result<String, ScheduleError> {
    if text.trim().is_empty() {
        return Err(ScheduleError::Invalid {
            field,
            message: "must not be empty",
        });
    }
    Ok(text.to_string())
}

/// Stored instants are whole milliseconds on both drivers, so a slot and the
/// key made from it read the same everywhere.
pub fn whole_ms(t: DateTime<Utc>) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(t.timestamp_millis()).unwrap_or(t)
}

/// The first fire strictly after `after`, or the error that says it has none.
pub fn first_fire(spec: &ScheduleSpec, after: DateTime<Utc>) -> Result<DateTime<Utc>, SpecError> {
    spec.next_after(after)
        .map(whole_ms)
        .ok_or_else(|| SpecError::NeverFires {
            spec: spec.text().to_string(),
        })
}

impl PreparedSchedule {
    /// Validate a new schedule and compute its first fire after `now`.
    pub fn create(new: &NewSchedule, now: DateTime<Utc>) -> Result<Self, ScheduleError> {
        let spec = ScheduleSpec::parse(&new.spec, &new.timezone, new.dst)?;
        Ok(Self {
            workspace: required(&new.workspace, "workspace_id")?,
            name: required(&new.name, "name")?,
            spec: spec.text().to_string(),
            timezone: new.timezone.clone(),
            dst: new.dst,
            prompt: required(&new.prompt, "prompt")?,
            enabled: new.enabled,
            starting_deadline_ms: millis(new.starting_deadline, "starting_deadline_s")?,
            defer_window_ms: millis(new.defer_window, "defer_window_s")?,
            next_run_at: Some(first_fire(&spec, now)?),
        })
    }

    /// Validate `patch` applied to `current`. The next fire is recomputed from
    /// `now` when the timetable changed, when the schedule is re-enabled (old
    /// slots are not fired late), or when it had none; otherwise it is kept.
    pub fn update(
        current: &Schedule,
        patch: &SchedulePatch,
        now: DateTime<Utc>,
    ) -> Result<Self, ScheduleError> {
        let text = patch.spec.as_deref().unwrap_or(&current.spec);
        let timezone = patch.timezone.as_deref().unwrap_or(&current.timezone);
        let dst = patch.dst.unwrap_or(current.dst);
        let enabled = patch.enabled.unwrap_or(current.enabled);
        let spec = ScheduleSpec::parse(text, timezone, dst)?;
        let timetable_changed = spec.text() != current.spec
            || timezone != current.timezone
            || dst != current.dst
            || (enabled && !current.enabled)
            || current.invalid
            || current.next_run_at.is_none();
        let next_run_at = if timetable_changed {
            Some(first_fire(&spec, now)?)
        } else {
            current.next_run_at
        };
        Ok(Self {
            workspace: required(
                patch.workspace.as_deref().unwrap_or(&current.workspace),
                "workspace_id",
            )?,
            name: required(patch.name.as_deref().unwrap_or(&current.name), "name")?,
            spec: spec.text().to_string(),
            timezone: timezone.to_string(),
            dst,
            prompt: required(patch.prompt.as_deref().unwrap_or(&current.prompt), "prompt")?,
            enabled,
            starting_deadline_ms: millis(
                patch.starting_deadline.unwrap_or(current.starting_deadline),
                "starting_deadline_s",
            )?,
            defer_window_ms: millis(
                patch.defer_window.unwrap_or(current.defer_window),
                "defer_window_s",
            )?,
            next_run_at,
        })
    }
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

    /// Enabled, valid schedules whose `next_run_at <= now`, oldest slot first.
    async fn due_schedules(
        &self,
        now: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<Schedule>, StoreError>;

    /// The compare-and-set claim, for many slots in one transaction: each
    /// schedule still at its `slot` moves to `next` (`last_run_at = slot`,
    /// `run_count + 1`) and gets its run record (`dispatched`, or `missed`).
    /// Answers the schedule ids whose claim this call won; a claim another node
    /// (or a concurrent edit) got to first is silently lost.
    async fn claim_slots(
        &self,
        claims: &[SlotClaim],
        now: DateTime<Utc>,
    ) -> Result<Vec<i64>, StoreError>;

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

    /// Record a `RunNow` fire as `dispatched`.
    async fn insert_manual_run(
        &self,
        run: &ManualRun,
        now: DateTime<Utc>,
    ) -> Result<ScheduleRun, StoreError>;

    /// Write outcomes of `dispatched` runs, by key, and update their schedules
    /// (last status and error, the empty-response count; the third empty
    /// success in a row is `stale`). A run no longer `dispatched` (another node
    /// wrote it) is left alone and missing from the answer.
    async fn finish_runs(
        &self,
        outcomes: &[(String, RunOutcome)],
        now: DateTime<Utc>,
    ) -> Result<Vec<FinishedRun>, StoreError>;

    /// A schedule's runs, newest slot first.
    async fn list_runs(&self, schedule_id: i64, limit: u32)
        -> Result<Vec<ScheduleRun>, StoreError>;

    async fn get_run_by_key(&self, key: &str) -> Result<Option<ScheduleRun>, StoreError>;

    /// `dispatched` runs whose queue item is final: outcomes a restart (or a
    /// lost event) kept from being written.
    async fn settled_pending_runs(
        &self,
        limit: u32,
    ) -> Result<Vec<(ScheduleRun, QueueItem)>, StoreError>;

    /// `dispatched` runs started before `started_before` that have no queue
    /// item at all: the node died (or the queue refused) between claim and enqueue.
    async fn orphaned_runs(
        &self,
        started_before: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<ScheduleRun>, StoreError>;
}
