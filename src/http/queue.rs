//! `/v1/queue`: the queue across workspaces, for an operator looking for
//! failed or stuck items wherever they are, and the two hand changes to one
//! item (redrive, cancel). Reads go to the store, one keyset page at a time,
//! never through the drain's mailbox; a change is one conditional write
//! (the rules are `model::operator`'s).

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde_json::{json, Value};

use super::body::{next_cursor, Number, Params};
use super::error::ApiError;
use super::AppState;
use crate::model::operator::{ItemChange, QueueAction};
use crate::model::page::Keyset;
use crate::model::queue::QueueStatus;
use crate::store::QueueFilter;

/// `GET /v1/queue?status=&workspace_id=&limit=&cursor=`, newest first.
pub async fn list(State(app): State<AppState>, params: Params) -> Result<Json<Value>, ApiError> {
    let status = params.parsed("status", QueueStatus::parse_field)?;
    let workspace = params.id("workspace_id")?;
    let request = params.page(Keyset::Id)?;
    let filter = QueueFilter { workspace, status };
    let page = app.ringmaster.store().page_queue(filter, &request).await?;
    Ok(Json(
        json!({ "items": page.items, "next_cursor": next_cursor(&page) }),
    ))
}

/// `GET /v1/queue/{id}`.
pub async fn get(State(app): State<AppState>, Number(id): Number) -> Result<Json<Value>, ApiError> {
    match app.ringmaster.store().get_queue_item(id).await? {
        Some(item) => Ok(Json(json!(item))),
        None => Err(ApiError::not_found(format!("queue item {id} not found"))),
    }
}

/// `POST /v1/queue/{id}/retry`: a failed or expired item back to `queued`,
/// attempts reset (the dead-letter redrive); 409 for any other state.
pub async fn retry(
    State(app): State<AppState>,
    Number(id): Number,
) -> Result<Json<Value>, ApiError> {
    change(app, id, QueueAction::Retry).await
}

/// `POST /v1/queue/{id}/cancel`: a queued item to `cancelled` (terminal);
/// 409 when it is being delivered or already ended.
pub async fn cancel(
    State(app): State<AppState>,
    Number(id): Number,
) -> Result<Json<Value>, ApiError> {
    change(app, id, QueueAction::Cancel).await
}

async fn change(app: AppState, id: i64, action: QueueAction) -> Result<Json<Value>, ApiError> {
    match app.ringmaster.change_queue_item(id, action).await? {
        ItemChange::Applied(item) => Ok(Json(json!(item))),
        ItemChange::Refused { status, reason } => Err(ApiError {
            status: StatusCode::CONFLICT,
            error: format!("queue item {id} is {status}: {reason}"),
            field: Some("status".to_string()),
        }),
    }
}
