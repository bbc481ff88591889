//! `/v1/workspaces`: register, heartbeat, send a message, read the queue.
//! Writes are one message to the actor that owns them, built from the
//! model's validated values (a bad field is a 400 before any actor hears of
//! it); a message goes through the group-committed ingest; reads go to the
//! store.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

use super::body::{next_cursor, Id, JsonBody, Params};
use super::error::ApiError;
use super::{AppState, ADMISSION, ASK_TIMEOUT};
use crate::actors::ask::ask;
use crate::messages::heartbeat::HeartbeatMsg;
use crate::messages::queue::SendOutcome;
use crate::model::page::Keyset;
use crate::model::queue::{NewQueueItem, Priority, QueueStatus};
use crate::model::workspace::{Registration, WorkspaceBeat};
use crate::store::QueueFilter;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegistrationBody {
    url: String,
    max_concurrent: u32,
}

pub async fn register(
    State(app): State<AppState>,
    Id(id): Id,
    JsonBody(body): JsonBody<RegistrationBody>,
) -> Result<Json<Value>, ApiError> {
    let registration = Registration::new(id, Some(body.url), body.max_concurrent)?;
    let heartbeat = app.ringmaster.heartbeat()?;
    let row = ask(
        &heartbeat,
        "heartbeat",
        |reply| HeartbeatMsg::Register {
            registration,
            reply,
        },
        ASK_TIMEOUT,
    )
    .await??;
    Ok(Json(json!(row)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Beat {
    active_tasks: u32,
    max_concurrent: Option<u32>,
}

pub async fn heartbeat(
    State(app): State<AppState>,
    Id(id): Id,
    JsonBody(body): JsonBody<Beat>,
) -> Result<Json<Value>, ApiError> {
    let beat = WorkspaceBeat::new(id, body.active_tasks, body.max_concurrent)?;
    let heartbeat = app.ringmaster.heartbeat()?;
    let ack = ask(
        &heartbeat,
        "heartbeat",
        |reply| HeartbeatMsg::WorkspaceBeat {
            beat,
            reply: Some(reply),
        },
        ASK_TIMEOUT,
    )
    .await??;
    Ok(Json(json!(ack)))
}

/// `POST /v1/workspaces/{id}/messages`: an A2A JSON-RPC body. `200` with the
/// workspace's response when delivered at once (or earlier, under the same
/// `messageId`); `202` when queued — a queued message is a success for the
/// caller; `409` when its `messageId` names an item that already ended
/// without a delivery. Query: `priority` (`critical`, `task`, `info` or a
/// number), `ttl_s`, `caller`.
pub async fn send_message(
    State(app): State<AppState>,
    Id(id): Id,
    params: Params,
    JsonBody(body): JsonBody<Value>,
) -> Result<Response, ApiError> {
    if !body.is_object() {
        return Err(ApiError::bad_field(
            "body",
            "body: must be a JSON-RPC object",
        ));
    }
    let priority = match params.text("priority") {
        None => Priority::TASK,
        Some(p) => p.parse::<Priority>()?,
    };
    // The A2A messageId is the idempotency key, so a retried POST finds the
    // same item instead of a second delivery.
    let key = body
        .pointer("/params/message/messageId")
        .and_then(Value::as_str)
        .map(str::to_string);
    let method = body
        .get("method")
        .and_then(Value::as_str)
        .unwrap_or("message/send")
        .to_string();
    let mut item = NewQueueItem::new(id, body.to_string()).priority(priority);
    item.method = method;
    item.idempotency_key = key;
    item.ttl = params
        .number::<u64>("ttl_s")?
        .map(std::time::Duration::from_secs);
    item.caller = params.text("caller").map(str::to_string);
    item.validate()?;
    Ok(match app.ringmaster.send_within(item, ADMISSION).await? {
        SendOutcome::Delivered { response, .. } => {
            let value: Value = serde_json::from_str(&response).unwrap_or(Value::String(response));
            (StatusCode::OK, Json(value)).into_response()
        }
        SendOutcome::Queued {
            queue_id,
            queue_depth,
        } => (
            StatusCode::ACCEPTED,
            Json(json!({"queued": true, "queue_id": queue_id, "queue_depth": queue_depth})),
        )
            .into_response(),
        SendOutcome::Ended {
            queue_id,
            status,
            error,
        } => (
            StatusCode::CONFLICT,
            Json(json!({
                "error": format!("this messageId names item {queue_id}, which already ended {status}"),
                "field": "messageId",
                "queue_id": queue_id,
                "status": status,
                "last_error": error,
            })),
        )
            .into_response(),
    })
}

pub async fn queue(
    State(app): State<AppState>,
    Id(id): Id,
    params: Params,
) -> Result<Json<Value>, ApiError> {
    let status = params.parsed("status", QueueStatus::parse_field)?;
    let request = params.page(Keyset::Id)?;
    let store = app.ringmaster.store();
    if store.get_workspace(&id).await?.is_none() {
        return Err(ApiError::not_found(format!(
            "workspace {id:?} is not registered"
        )));
    }
    let filter = QueueFilter {
        workspace: Some(&id),
        status,
    };
    let page = store.page_queue(filter, &request).await?;
    Ok(Json(
        json!({ "items": page.items, "next_cursor": next_cursor(&page) }),
    ))
}
