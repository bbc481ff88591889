//! `/v1/queue`: the queue across workspaces, for an operator looking for
//! failed or stuck items wherever they are. Reads go to the store, one
//! keyset page at a time, never through the drain's mailbox.

use axum::extract::State;
use axum::Json;
use serde_json::{json, Value};

use super::body::{next_cursor, Number, Params};
use super::error::ApiError;
use super::AppState;
use crate::model::page::Keyset;
use crate::model::queue::QueueStatus;
use crate::store::QueueFilter;

/// `GET /v1/queue?status=&workspace_id=&limit=&cursor=`, newest first.
pub async fn list(State(app): State<AppState>, params: Params) -> Result<Json<Value>, ApiError> {
    let status = params
        .text("status")
        .map(|s| QueueStatus::parse_field("status", s))
        .transpose()?;
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
