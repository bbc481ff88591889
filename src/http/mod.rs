//! The HTTP face of the binary: thin handlers that translate a request into a
//! message to the right actor and its answer into JSON.
//!
//! No business logic lives here and no lock is shared with the actors: a
//! handler holds only the service handle, which looks actors up by name.
//! Errors are `{"error", "field"}` with a status that says who is to blame
//! (see `error.rs`); `/v1` needs the bearer token when one is configured.

mod auth;
mod body;
mod delegations;
mod error;
mod health;
mod metrics;
mod schedules;
mod workspaces;

use std::sync::Arc;

use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post, put};
use axum::Router;

pub use auth::constant_time_eq;
pub use error::ApiError;

use crate::service::Ringmaster;

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    pub ringmaster: Arc<Ringmaster>,
}

/// The router of the binary.
pub fn router(ringmaster: Arc<Ringmaster>) -> Router {
    let limit = ringmaster.config().max_body_bytes;
    let state = AppState { ringmaster };
    let v1 = Router::new()
        .route("/workspaces/{id}", put(workspaces::register))
        .route("/workspaces/{id}/heartbeat", post(workspaces::heartbeat))
        .route("/workspaces/{id}/messages", post(workspaces::send_message))
        .route("/workspaces/{id}/queue", get(workspaces::queue))
        .route("/schedules", post(schedules::create).get(schedules::list))
        .route(
            "/schedules/{id}",
            get(schedules::get)
                .patch(schedules::update)
                .delete(schedules::delete),
        )
        .route("/schedules/{id}/runs", get(schedules::runs))
        .route("/schedules/{id}/run", post(schedules::run_now))
        .route("/delegations", post(delegations::create))
        .route("/delegations/{id}", get(delegations::get))
        .route("/delegations/{id}/heartbeat", post(delegations::heartbeat))
        .route("/delegations/{id}/status", post(delegations::set_status))
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            auth::require_token,
        ));
    Router::new()
        .nest("/v1", v1)
        .route("/healthz", get(health::healthz))
        .route("/metrics", get(metrics::metrics))
        .fallback(|| async { ApiError::not_found("no such endpoint") })
        .layer(DefaultBodyLimit::max(limit))
        .with_state(state)
}
