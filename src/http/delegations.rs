//! `/v1/delegations`: create, read, list, beat, move status, retry a stuck
//! one. Creation and status changes go to the DelegationSweeperActor (the
//! ledger's owner); beats go to the HeartbeatActor; reads go to the store.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::{json, Value};

use super::body::{next_cursor, Id, JsonBody, Params};
use super::error::ApiError;
use super::{AppState, ASK_TIMEOUT};
use crate::actors::ask::ask;
use crate::messages::heartbeat::HeartbeatMsg;
use crate::messages::sweeper::SweeperMsg;
use crate::model::delegation::{
    DelegationBeatOutcome, DelegationStatus, NewDelegation, StatusChange, Transition,
};
use crate::model::page::Keyset;
use crate::store::DelegationFilter;

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
    move_to(&app, id, change, false).await
}

/// `GET /v1/delegations?status=&workspace_id=&limit=&cursor=`, newest first.
pub async fn list(State(app): State<AppState>, params: Params) -> Result<Json<Value>, ApiError> {
    let status = params.parsed("status", DelegationStatus::parse_field)?;
    let workspace = params.id("workspace_id")?;
    let request = params.page(Keyset::AtKey)?;
    let filter = DelegationFilter { workspace, status };
    let page = app
        .ringmaster
        .store()
        .page_delegations(filter, &request)
        .await?;
    Ok(Json(
        json!({ "delegations": page.items, "next_cursor": next_cursor(&page) }),
    ))
}

/// `POST /v1/delegations/{id}/retry`: a stuck delegation back to `queued`
/// (its error cleared, its stuck clock restarted); 409 for any other state,
/// `queued` included (there is nothing to retry).
pub async fn retry(State(app): State<AppState>, Id(id): Id) -> Result<Json<Value>, ApiError> {
    let change = StatusChange::to(DelegationStatus::Queued);
    move_to(&app, id, change, true).await.map_err(|err| {
        if err.status == StatusCode::CONFLICT {
            ApiError {
                error: err
                    .error
                    .replace("cannot move delegation", "cannot retry delegation"),
                ..err
            }
        } else {
            err
        }
    })
}

/// One status change through the ledger's owner; a refusal is a 409. As a
/// `retry`, one already `queued` is refused too (it is not stuck).
async fn move_to(
    app: &AppState,
    id: String,
    change: StatusChange,
    retry: bool,
) -> Result<Json<Value>, ApiError> {
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
        Transition::Unchanged { delegation } if retry => Err(ApiError {
            status: StatusCode::CONFLICT,
            error: format!(
                "cannot move delegation from queued to queued: only a stuck delegation can be retried; {} is queued already",
                delegation.id
            ),
            field: Some("status".to_string()),
        }),
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
