//! `/v1/delegations`: create, read, beat, move status. Creation and status
//! changes go to the DelegationSweeperActor (the ledger's owner); beats go to
//! the HeartbeatActor; reads go to the store.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::{json, Value};

use super::body::{Id, JsonBody};
use super::error::ApiError;
use super::{AppState, ASK_TIMEOUT};
use crate::actors::ask::ask;
use crate::messages::heartbeat::HeartbeatMsg;
use crate::messages::sweeper::SweeperMsg;
use crate::model::delegation::{
    DelegationBeatOutcome, DelegationStatus, NewDelegation, StatusChange, Transition,
};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Create {
    id: Option<String>,
    caller_workspace_id: Option<String>,
    workspace_id: String,
    deadline: Option<DateTime<Utc>>,
}

pub async fn create(
    State(app): State<AppState>,
    JsonBody(body): JsonBody<Create>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let sweeper = app.ringmaster.sweeper()?;
    let new = NewDelegation {
        id: body.id,
        caller_workspace_id: body.caller_workspace_id,
        workspace_id: body.workspace_id,
        deadline: body.deadline,
    };
    let created = ask(
        &sweeper,
        "delegation-sweeper",
        |reply| SweeperMsg::Create { new, reply },
        ASK_TIMEOUT,
    )
    .await??;
    // A repeated create of the same id answers the existing row with 200.
    let status = if created.created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(json!(created.delegation))))
}

pub async fn get(State(app): State<AppState>, Id(id): Id) -> Result<Json<Value>, ApiError> {
    app.ringmaster
        .store()
        .get_delegation(&id)
        .await?
        .map(|d| Json(json!(d)))
        .ok_or_else(|| ApiError::not_found(format!("delegation {id:?} not found")))
}

pub async fn heartbeat(State(app): State<AppState>, Id(id): Id) -> Result<Json<Value>, ApiError> {
    let heartbeat = app.ringmaster.heartbeat()?;
    let outcome = ask(
        &heartbeat,
        "heartbeat",
        |reply| HeartbeatMsg::DelegationBeat {
            delegation: id,
            reply: Some(reply),
        },
        ASK_TIMEOUT,
    )
    .await??;
    match outcome {
        DelegationBeatOutcome::Stamped { delegation } => Ok(Json(json!(delegation))),
        DelegationBeatOutcome::Refused { status, reason } => Err(ApiError {
            status: StatusCode::CONFLICT,
            error: format!("heartbeat refused: delegation is {status}: {reason}"),
            field: None,
        }),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChangeStatus {
    status: String,
    error: Option<String>,
    result: Option<String>,
}

pub async fn set_status(
    State(app): State<AppState>,
    Id(id): Id,
    JsonBody(body): JsonBody<ChangeStatus>,
) -> Result<Json<Value>, ApiError> {
    let to = DelegationStatus::parse_field("status", &body.status)?;
    let change = StatusChange {
        to,
        error_detail: body.error,
        result: body.result,
    };
    let sweeper = app.ringmaster.sweeper()?;
    let transition = ask(
        &sweeper,
        "delegation-sweeper",
        |reply| SweeperMsg::SetStatus {
            id,
            change,
            reply: Some(reply),
        },
        ASK_TIMEOUT,
    )
    .await??;
    match transition {
        Transition::Applied { delegation, .. } | Transition::Unchanged { delegation } => {
            Ok(Json(json!(delegation)))
        }
        Transition::Refused { from, to, reason } => Err(ApiError {
            status: StatusCode::CONFLICT,
            error: format!("cannot move delegation from {from} to {to}: {reason}"),
            field: Some("status".to_string()),
        }),
    }
}
