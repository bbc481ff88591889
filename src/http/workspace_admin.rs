//! `/v1/workspaces` for an operator: the registry with each workspace's
//! depth, one workspace, its removal, and the bulk redrive of its dead
//! letters. Reads and these rare writes go to the store; the drains hear of
//! redriven items through the store's notification.

use axum::extract::State;
use axum::Json;
use serde_json::{json, Value};

use super::body::{next_cursor, Id, Params};
use super::error::ApiError;
use super::AppState;
use crate::model::operator::{bulk_limit, bulk_status};
use crate::model::page::Keyset;
use crate::model::queue::QueueStatus;

/// `GET /v1/workspaces?limit=&cursor=`, by id.
pub async fn list(State(app): State<AppState>, params: Params) -> Result<Json<Value>, ApiError> {
    let request = params.page(Keyset::Key)?;
    let page = app.ringmaster.store().page_workspaces(&request).await?;
    Ok(Json(
        json!({ "workspaces": page.items, "next_cursor": next_cursor(&page) }),
    ))
}

/// `GET /v1/workspaces/{id}`.
pub async fn get(State(app): State<AppState>, Id(id): Id) -> Result<Json<Value>, ApiError> {
    match app.ringmaster.store().workspace_view(&id).await? {
        Some(view) => Ok(Json(json!(view))),
        None => Err(not_registered(&id)),
    }
}

/// `DELETE /v1/workspaces/{id}`: the row goes; its queued items are
/// cancelled and its schedules disabled (both kept, for the record); items
/// being delivered finish. A later beat registers it again.
pub async fn remove(State(app): State<AppState>, Id(id): Id) -> Result<Json<Value>, ApiError> {
    match app.ringmaster.remove_workspace(&id).await? {
        Some(removed) => Ok(Json(json!({
            "id": id,
            "removed": true,
            "cancelled_items": removed.cancelled_items,
            "paused_schedules": removed.paused_schedules,
        }))),
        None => Err(not_registered(&id)),
    }
}

/// `POST /v1/workspaces/{id}/queue/retry?status=failed|expired&limit=`:
/// the dead-letter redrive of a whole workspace, oldest first, at most
/// `limit` at a time (`more` says whether to go again).
pub async fn retry_items(
    State(app): State<AppState>,
    Id(id): Id,
    params: Params,
) -> Result<Json<Value>, ApiError> {
    let status = params.parsed("status", QueueStatus::parse_field)?;
    let status = bulk_status(status)?;
    let limit = bulk_limit(params.number("limit")?)?;
    let done = app.ringmaster.retry_items(&id, status, limit).await?;
    Ok(Json(json!({
        "workspace_id": id,
        "status": status,
        "retried": done.retried,
        "more": done.more,
    })))
}

fn not_registered(id: &str) -> ApiError {
    ApiError::not_found(format!("workspace {id:?} is not registered"))
}
