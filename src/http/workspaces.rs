//! `/v1/workspaces`: register, heartbeat, send a message, read the queue.
//! Writes are one message to the actor that owns them, built from the
//! model's validated values (a bad field is a 400 before any actor hears of
//! it); reads go to the store.

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

use super::body::JsonBody;
use super::error::ApiError;
use super::AppState;
use crate::actors::ask::ask;
use crate::messages::heartbeat::HeartbeatMsg;
use crate::messages::queue::{QueueMsg, SendOutcome};
use crate::model::limits::list_limit;
use crate::model::queue::{NewQueueItem, Priority, QueueStatus};
use crate::model::workspace::{Registration, WorkspaceBeat};
use crate::service::CALL_TIMEOUT;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegistrationBody {
    url: String,
    max_concurrent: u32,
}

pub async fn register(
    State(app): State<AppState>,
    Path(id): Path<String>,
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
        CALL_TIMEOUT,
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
    Path(id): Path<String>,
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
        CALL_TIMEOUT,
    )
    .await??;
    Ok(Json(json!(ack)))
}

#[derive(Deserialize)]
pub struct SendParams {
    /// `critical`, `task` (default), `info` or a number.
    priority: Option<String>,
    /// Seconds the message may wait in the queue before it expires.
    ttl_s: Option<u64>,
    /// Who is sending (kept on the queue item).
    caller: Option<String>,
}

/// `POST /v1/workspaces/{id}/messages`: an A2A JSON-RPC body. `200` with the
/// workspace's response when delivered at once; `202` when queued — a queued
/// message is a success for the caller, never reported as a failure.
pub async fn send_message(
    State(app): State<AppState>,
    Path(id): Path<String>,
    Query(params): Query<SendParams>,
    JsonBody(body): JsonBody<Value>,
) -> Result<Response, ApiError> {
    if !body.is_object() {
        return Err(ApiError::bad_field(
            "body",
            "body must be a JSON-RPC object",
        ));
    }
    let priority = match params.priority.as_deref() {
        None => Priority::TASK,
        Some(p) => p.parse::<Priority>()?,
    };
    // The A2A messageId is the idempotency key, so a retried POST dedupes.
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
    item.ttl = params.ttl_s.map(std::time::Duration::from_secs);
    item.caller = params.caller;
    item.validate()?;

    let queue = app.ringmaster.queue()?;
    // Delivery can take up to the delivery timeout; wait a little longer.
    let wait = app.ringmaster.config().delivery_timeout + CALL_TIMEOUT;
    let outcome = ask(
        &queue,
        "queue-drain",
        |reply| QueueMsg::Send { item, reply },
        wait,
    )
    .await??;
    Ok(match outcome {
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
    })
}

#[derive(Deserialize)]
pub struct QueueParams {
    status: Option<String>,
    limit: Option<u32>,
}

pub async fn queue(
    State(app): State<AppState>,
    Path(id): Path<String>,
    Query(params): Query<QueueParams>,
) -> Result<Json<Value>, ApiError> {
    let status = params
        .status
        .as_deref()
        .map(|s| QueueStatus::parse_field("status", s))
        .transpose()?;
    let limit = list_limit(params.limit)?;
    let store = app.ringmaster.store();
    if store.get_workspace(&id).await?.is_none() {
        return Err(ApiError::not_found(format!(
            "workspace {id:?} is not registered"
        )));
    }
    let items = store.list_queue(&id, status, limit).await?;
    Ok(Json(json!({ "items": items })))
}
