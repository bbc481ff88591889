//! The HTTP face of the binary: thin handlers that translate a request into a
//! message to the right actor and its answer into JSON.
//!
//! No business logic lives here and no lock is shared with the actors: a
//! handler holds only names to look actors up by.

mod health;

use std::sync::Arc;

use axum::routing::get;
use axum::Router;

use crate::service::Ringmaster;

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    pub ringmaster: Arc<Ringmaster>,
}

/// The router of the binary.
pub fn router(ringmaster: Arc<Ringmaster>) -> Router {
    Router::new()
        .route("/healthz", get(health::healthz))
        .with_state(AppState { ringmaster })
}
