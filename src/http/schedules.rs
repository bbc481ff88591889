//! `/v1/schedules`: create, list, read, change, remove, history, fire now.
//! Writes are messages to the SchedulerActor, which owns the tables (the
//! model validates the spec, zone and settings); reads go to the store.
//!
//! The API speaks the design's field names (`workspace_id`, `cron`, seconds
//! for durations); `view` maps the stored schedule onto them.

use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

use super::body::{next_cursor, JsonBody, Number, Params};
use super::error::ApiError;
use super::{AppState, ASK_TIMEOUT};
use crate::actors::ask::ask;
use crate::messages::scheduler::{SchedulerMsg, Upsert};
use crate::model::page::Keyset;
use crate::model::run::ScheduleRun;
use crate::model::schedule::{NewSchedule, Schedule, SchedulePatch};
use crate::schedule::DstPolicy;

const ROLE: &str = "scheduler";

fn view(s: &Schedule) -> Value {
    json!({
        "id": s.id,
        "workspace_id": s.workspace,
        "name": s.name,
        "cron": s.spec,
        "timezone": s.timezone,
        "dst": s.dst,
        "prompt": s.prompt,
        "enabled": s.enabled,
        "next_run_at": s.next_run_at,
        "last_run_at": s.last_run_at,
        "run_count": s.run_count,
        "last_status": s.last_status,
        "last_error": s.last_error,
        "consecutive_empty_runs": s.consecutive_empty_runs,
        "starting_deadline_s": s.starting_deadline.as_secs(),
        "defer_window_s": s.defer_window.as_secs(),
        "invalid": s.invalid,
        "invalid_error": s.invalid_error,
        "created_at": s.created_at,
        "updated_at": s.updated_at,
    })
}

fn run_view(r: &ScheduleRun) -> Value {
    json!({
        "id": r.id,
        "slot": r.slot,
        "manual": r.manual,
        "key": r.key,
        "status": r.status,
        "started_at": r.started_at,
        "finished_at": r.finished_at,
        "error": r.error,
        "response_summary": r.response_summary,
    })
}

fn dst(text: Option<String>) -> Result<Option<DstPolicy>, ApiError> {
    text.map(|d| {
        d.parse::<DstPolicy>()
            .map_err(|e| ApiError::bad_field("dst", e.to_string()))
    })
    .transpose()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Create {
    workspace_id: String,
    name: String,
    cron: String,
    timezone: Option<String>,
    dst: Option<String>,
    prompt: String,
    enabled: Option<bool>,
    starting_deadline_s: Option<u64>,
    defer_window_s: Option<u64>,
}

pub async fn create(
    State(app): State<AppState>,
    JsonBody(body): JsonBody<Create>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let mut new = NewSchedule::new(body.workspace_id, body.name, body.cron, body.prompt);
    if let Some(tz) = body.timezone {
        new.timezone = tz;
    }
    if let Some(d) = dst(body.dst)? {
        new.dst = d;
    }
    if let Some(enabled) = body.enabled {
        new.enabled = enabled;
    }
    if let Some(secs) = body.starting_deadline_s {
        new.starting_deadline = Duration::from_secs(secs);
    }
    if let Some(secs) = body.defer_window_s {
        new.defer_window = Duration::from_secs(secs);
    }
    let scheduler = app.ringmaster.scheduler()?;
    let stored = ask(
        &scheduler,
        ROLE,
        |reply| SchedulerMsg::Upsert {
            upsert: Upsert::Create(new),
            reply,
        },
        ASK_TIMEOUT,
    )
    .await??;
    Ok((StatusCode::CREATED, Json(view(&stored))))
}

pub async fn list(State(app): State<AppState>, params: Params) -> Result<Json<Value>, ApiError> {
    let request = params.page(Keyset::Id)?;
    let page = app
        .ringmaster
        .store()
        .page_schedules(params.id("workspace_id")?, &request)
        .await?;
    Ok(Json(json!({
        "schedules": page.items.iter().map(view).collect::<Vec<_>>(),
        "next_cursor": next_cursor(&page),
    })))
}

async fn find(app: &AppState, id: i64) -> Result<Schedule, ApiError> {
    app.ringmaster
        .store()
        .get_schedule(id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("schedule {id} not found")))
}

pub async fn get(State(app): State<AppState>, Number(id): Number) -> Result<Json<Value>, ApiError> {
    Ok(Json(view(&find(&app, id).await?)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Change {
    workspace_id: Option<String>,
    name: Option<String>,
    cron: Option<String>,
    timezone: Option<String>,
    dst: Option<String>,
    prompt: Option<String>,
    enabled: Option<bool>,
    starting_deadline_s: Option<u64>,
    defer_window_s: Option<u64>,
}

pub async fn update(
    State(app): State<AppState>,
    Number(id): Number,
    JsonBody(body): JsonBody<Change>,
) -> Result<Json<Value>, ApiError> {
    let patch = SchedulePatch {
        workspace: body.workspace_id,
        name: body.name,
        spec: body.cron,
        timezone: body.timezone,
        dst: dst(body.dst)?,
        prompt: body.prompt,
        enabled: body.enabled,
        starting_deadline: body.starting_deadline_s.map(Duration::from_secs),
        defer_window: body.defer_window_s.map(Duration::from_secs),
    };
    let scheduler = app.ringmaster.scheduler()?;
    let stored = ask(
        &scheduler,
        ROLE,
        |reply| SchedulerMsg::Upsert {
            upsert: Upsert::Update { id, patch },
            reply,
        },
        ASK_TIMEOUT,
    )
    .await??;
    Ok(Json(view(&stored)))
}

pub async fn delete(
    State(app): State<AppState>,
    Number(id): Number,
) -> Result<StatusCode, ApiError> {
    let scheduler = app.ringmaster.scheduler()?;
    let existed = ask(
        &scheduler,
        ROLE,
        |reply| SchedulerMsg::Delete {
            schedule: id,
            reply,
        },
        ASK_TIMEOUT,
    )
    .await??;
    if existed {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::not_found(format!("schedule {id} not found")))
    }
}

pub async fn runs(
    State(app): State<AppState>,
    Number(id): Number,
    params: Params,
) -> Result<Json<Value>, ApiError> {
    find(&app, id).await?;
    let request = params.page(Keyset::AtId)?;
    let page = app.ringmaster.store().page_runs(id, &request).await?;
    Ok(Json(json!({
        "runs": page.items.iter().map(run_view).collect::<Vec<_>>(),
        "next_cursor": next_cursor(&page),
    })))
}

pub async fn run_now(
    State(app): State<AppState>,
    Number(id): Number,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let scheduler = app.ringmaster.scheduler()?;
    let run = ask(
        &scheduler,
        ROLE,
        |reply| SchedulerMsg::RunNow {
            schedule: id,
            reply: Some(reply),
        },
        ASK_TIMEOUT,
    )
    .await??;
    // Accepted: the fire is in the queue; its outcome lands in the run history.
    Ok((StatusCode::ACCEPTED, Json(run_view(&run))))
}
