//! Rows into model values, once for both databases. Every status column is
//! read through the model's own names; a value nobody wrote (a hand-edited
//! row) is [`StoreError::Corrupt`], never a panic.

use std::time::Duration;

use super::Row;
use crate::model::delegation::{Delegation, DelegationStatus};
use crate::model::queue::{QueueItem, QueueStatus};
use crate::model::run::{RunStatus, ScheduleRun};
use crate::model::schedule::Schedule;
use crate::model::workspace::{Workspace, WorkspaceStatus};
use crate::schedule::DstPolicy;
use crate::store::StoreError;

pub const WORKSPACE_COLUMNS: &str = "id, url, max_concurrent, active_tasks, status, last_heartbeat";

pub const QUEUE_COLUMNS: &str = "id, workspace_id, caller, priority, method, body, \
    idempotency_key, status, attempts, max_attempts, enqueued_at, available_at, expires_at, \
    lease_token, claimed_by, lease_expires_at, last_error, response, finished_at";

pub const SCHEDULE_COLUMNS: &str = "id, workspace_id, name, spec, timezone, dst, prompt, \
    enabled, next_run_at, last_run_at, run_count, last_status, last_error, \
    consecutive_empty_runs, starting_deadline_ms, defer_window_ms, invalid, invalid_error, \
    created_at, updated_at";

pub const RUN_COLUMNS: &str = "id, schedule_id, workspace_id, slot, manual, idempotency_key, \
    status, started_at, finished_at, error, response_summary";

pub const DELEGATION_COLUMNS: &str = "id, caller_workspace_id, workspace_id, status, \
    previous_status, created_at, updated_at, deadline, last_heartbeat, error_detail, result";

fn corrupt(table: &'static str, column: &str, value: &str) -> StoreError {
    StoreError::Corrupt {
        table,
        column: column.to_string(),
        value: value.to_string(),
    }
}

/// A named value of a closed set, read from `column`.
fn named<T>(
    row: &impl Row,
    table: &'static str,
    column: &str,
    parse: fn(&str) -> Option<T>,
) -> Result<T, StoreError> {
    let text = row.text(column)?;
    parse(&text).ok_or_else(|| corrupt(table, column, &text))
}

fn opt_named<T>(
    row: &impl Row,
    table: &'static str,
    column: &str,
    parse: fn(&str) -> Option<T>,
) -> Result<Option<T>, StoreError> {
    row.opt_text(column)?
        .map(|text| parse(&text).ok_or_else(|| corrupt(table, column, &text)))
        .transpose()
}

pub fn workspace<R: Row>(row: &R) -> Result<Workspace, StoreError> {
    Ok(Workspace {
        id: row.text("id")?,
        url: row.opt_text("url")?,
        max_concurrent: row.i32("max_concurrent")?,
        active_tasks: row.i32("active_tasks")?,
        status: named(row, "workspaces", "status", WorkspaceStatus::from_name)?,
        last_heartbeat: row.opt_time("last_heartbeat")?,
    })
}

pub fn queue_item<R: Row>(row: &R) -> Result<QueueItem, StoreError> {
    Ok(QueueItem {
        id: row.i64("id")?,
        workspace: row.text("workspace_id")?,
        caller: row.opt_text("caller")?,
        priority: row.i32("priority")?,
        method: row.text("method")?,
        body: row.text("body")?,
        idempotency_key: row.opt_text("idempotency_key")?,
        status: named(row, "queue_items", "status", QueueStatus::from_name)?,
        attempts: row.i32("attempts")?,
        max_attempts: row.i32("max_attempts")?,
        enqueued_at: row.time("enqueued_at")?,
        available_at: row.time("available_at")?,
        expires_at: row.opt_time("expires_at")?,
        lease_token: row.opt_text("lease_token")?,
        claimed_by: row.opt_text("claimed_by")?,
        lease_expires_at: row.opt_time("lease_expires_at")?,
        last_error: row.opt_text("last_error")?,
        response: row.opt_text("response")?,
        finished_at: row.opt_time("finished_at")?,
    })
}

/// A stored duration in milliseconds; a negative one (hand-written) reads as zero.
fn millis(row: &impl Row, col: &str) -> Result<Duration, StoreError> {
    Ok(Duration::from_millis(
        u64::try_from(row.i64(col)?).unwrap_or(0),
    ))
}

pub fn schedule<R: Row>(row: &R) -> Result<Schedule, StoreError> {
    Ok(Schedule {
        id: row.i64("id")?,
        workspace: row.text("workspace_id")?,
        name: row.text("name")?,
        spec: row.text("spec")?,
        timezone: row.text("timezone")?,
        dst: named(row, "schedules", "dst", |t| t.parse::<DstPolicy>().ok())?,
        prompt: row.text("prompt")?,
        enabled: row.bool("enabled")?,
        next_run_at: row.opt_time("next_run_at")?,
        last_run_at: row.opt_time("last_run_at")?,
        run_count: row.i64("run_count")?,
        last_status: opt_named(row, "schedules", "last_status", RunStatus::from_name)?,
        last_error: row.opt_text("last_error")?,
        consecutive_empty_runs: row.i32("consecutive_empty_runs")?,
        starting_deadline: millis(row, "starting_deadline_ms")?,
        defer_window: millis(row, "defer_window_ms")?,
        invalid: row.bool("invalid")?,
        invalid_error: row.opt_text("invalid_error")?,
        created_at: row.time("created_at")?,
        updated_at: row.time("updated_at")?,
    })
}

pub fn run<R: Row>(row: &R) -> Result<ScheduleRun, StoreError> {
    Ok(ScheduleRun {
        id: row.i64("id")?,
        schedule_id: row.i64("schedule_id")?,
        workspace: row.text("workspace_id")?,
        slot: row.time("slot")?,
        manual: row.bool("manual")?,
        key: row.text("idempotency_key")?,
        status: named(row, "schedule_runs", "status", RunStatus::from_name)?,
        started_at: row.time("started_at")?,
        finished_at: row.opt_time("finished_at")?,
        error: row.opt_text("error")?,
        response_summary: row.opt_text("response_summary")?,
    })
}

pub fn delegation<R: Row>(row: &R) -> Result<Delegation, StoreError> {
    Ok(Delegation {
        id: row.text("id")?,
        caller_workspace_id: row.opt_text("caller_workspace_id")?,
        workspace_id: row.text("workspace_id")?,
        status: named(row, "delegations", "status", DelegationStatus::from_name)?,
        previous_status: opt_named(
            row,
            "delegations",
            "previous_status",
            DelegationStatus::from_name,
        )?,
        created_at: row.time("created_at")?,
        updated_at: row.time("updated_at")?,
        deadline: row.time("deadline")?,
        last_heartbeat: row.opt_time("last_heartbeat")?,
        error_detail: row.opt_text("error_detail")?,
        result: row.opt_text("result")?,
    })
}

/// Every row through `map`.
pub fn all<R: Row, T>(
    rows: &[R],
    map: fn(&R) -> Result<T, StoreError>,
) -> Result<Vec<T>, StoreError> {
    rows.iter().map(map).collect()
}
