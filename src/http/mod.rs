//! The HTTP face of the binary: thin handlers that turn a request into the
//! model's validated values and then one message to the owning actor (writes)
//! or one store read (reads), and the answer into JSON.
//!
//! No business logic lives here and no lock is shared with the actors: a
//! handler holds only the service handle. Every error is `{"error", "field"}`
//! JSON (`error.rs`), including malformed paths and queries (`body.rs`),
//! wrong methods, oversized heads and 500s (which carry a request id, never
//! internal text). `/v1` needs the bearer token when one is configured.
//! `serve.rs` serves the router with header timeouts and a connection cap.

mod auth;
pub mod body;
mod delegations;
mod error;
mod events;
mod health;
mod metrics;
pub mod openapi;
mod protocol_errors;
mod queue;
pub mod routes;
mod schedules;
pub mod serve;
mod ui;
mod workspace_admin;
mod workspaces;

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{DefaultBodyLimit, Request};
use axum::http::StatusCode;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use std::collections::BTreeMap;

use axum::routing::MethodRouter;
use axum::Router;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::timeout::RequestBodyTimeoutLayer;

pub use auth::constant_time_eq;
pub use error::ApiError;

use crate::service::Ringmaster;

/// How long a request may wait for an actor's answer (everything but a
/// delivery): with the store's gate failing fast during an outage, every
/// request is answered well within 2 s, and this bound holds if not. An
/// actor drops a request whose asker stopped waiting, so a 503 from here is
/// never carried out later.
pub const ASK_TIMEOUT: Duration = Duration::from_millis(1500);
/// How long an enqueue may wait for its write to begin (then 503, and it is
/// never written).
pub const ADMISSION: Duration = Duration::from_millis(900);
/// A request head (URI and headers) longer than this gets a JSON 431.
const MAX_HEAD_BYTES: usize = 16 * 1024;

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    pub ringmaster: Arc<Ringmaster>,
}

/// The router of the binary.
pub fn router(ringmaster: Arc<Ringmaster>) -> Router {
    let limit = ringmaster.config().max_body_bytes;
    let body_timeout = ringmaster.config().body_timeout;
    let state = AppState { ringmaster };
    // One table for both the routes and the OpenAPI document (`routes.rs`).
    let mut guarded: BTreeMap<&str, MethodRouter<AppState>> = BTreeMap::new();
    let mut open: BTreeMap<&str, MethodRouter<AppState>> = BTreeMap::new();
    for route in routes::all() {
        let side = if route.guarded {
            &mut guarded
        } else {
            &mut open
        };
        let handler = (route.handler)();
        let merged = match side.remove(route.path) {
            Some(earlier) => earlier.merge(handler),
            None => handler,
        };
        side.insert(route.path, merged);
    }
    let v1 = guarded
        .into_iter()
        .fold(Router::new(), |r, (path, m)| r.route(path, m))
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            auth::require_token,
        ));
    open.into_iter()
        .fold(v1, |r, (path, m)| r.route(path, m))
        .fallback(|| async { ApiError::not_found("no such endpoint") })
        .method_not_allowed_fallback(|| async {
            ApiError::new(
                StatusCode::METHOD_NOT_ALLOWED,
                "this method is not allowed on this endpoint",
            )
        })
        .layer(DefaultBodyLimit::max(limit))
        .layer(RequestBodyTimeoutLayer::new(body_timeout))
        .layer(middleware::from_fn(head_limit))
        .layer(middleware::from_fn(error::finish))
        .layer(PropagateRequestIdLayer::x_request_id())
        .layer(SetRequestIdLayer::x_request_id(MakeRequestUuid))
        .with_state(state)
}

/// A head past [`MAX_HEAD_BYTES`] gets a JSON 431 (hyper itself refuses,
/// with an empty answer, only heads past its buffer).
async fn head_limit(request: Request, next: Next) -> Response {
    let head: usize = request.uri().to_string().len()
        + request
            .headers()
            .iter()
            .map(|(n, v)| n.as_str().len() + v.len() + 4)
            .sum::<usize>();
    if head > MAX_HEAD_BYTES {
        return ApiError::new(
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            format!("the request head is {head} bytes; at most {MAX_HEAD_BYTES} are allowed"),
        )
        .into_response();
    }
    next.run(request).await
}
