//! The one error shape of the API: `{"error": "...", "field": "..."}` with
//! the status that says who is to blame.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

use crate::actors::ask::AskError;
use crate::messages::heartbeat::HeartbeatError;
use crate::messages::queue::QueueError;
use crate::messages::scheduler::SchedulerError;
use crate::messages::sweeper::SweeperError;
use crate::model::Invalid;
use crate::service::ServiceError;
use crate::store::StoreError;

#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub error: String,
    pub field: Option<String>,
}

impl ApiError {
    pub fn new(status: StatusCode, error: impl Into<String>) -> Self {
        Self {
            status,
            error: error.into(),
            field: None,
        }
    }

    pub fn bad_field(field: &str, error: impl Into<String>) -> Self {
        Self {
            status: StatusCode::BAD_REQUEST,
            error: error.into(),
            field: Some(field.to_string()),
        }
    }

    pub fn not_found(error: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, error)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = match self.field {
            Some(field) => json!({"error": self.error, "field": field}),
            None => json!({"error": self.error}),
        };
        (self.status, Json(body)).into_response()
    }
}

impl From<StoreError> for ApiError {
    fn from(err: StoreError) -> Self {
        match &err {
            StoreError::NotFound { .. } => ApiError::not_found(err.to_string()),
            e if e.is_unavailable() => {
                ApiError::new(StatusCode::SERVICE_UNAVAILABLE, err.to_string())
            }
            _ => {
                tracing::error!(error = %err, "store error answering a request");
                ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, err.to_string())
            }
        }
    }
}

impl From<ServiceError> for ApiError {
    fn from(err: ServiceError) -> Self {
        match err {
            ServiceError::Store(e) => e.into(),
            other => ApiError::new(StatusCode::SERVICE_UNAVAILABLE, other.to_string()),
        }
    }
}

impl From<Invalid> for ApiError {
    fn from(err: Invalid) -> Self {
        ApiError::bad_field(err.field, err.to_string())
    }
}

impl From<HeartbeatError> for ApiError {
    fn from(err: HeartbeatError) -> Self {
        match err {
            HeartbeatError::Store(e) => e.into(),
            HeartbeatError::Invalid(e) => e.into(),
        }
    }
}

impl From<QueueError> for ApiError {
    fn from(err: QueueError) -> Self {
        match err {
            QueueError::Store(e) => e.into(),
            QueueError::UnknownWorkspace(_) => ApiError::not_found(err.to_string()),
            QueueError::Invalid(e) => e.into(),
        }
    }
}

impl From<SchedulerError> for ApiError {
    fn from(err: SchedulerError) -> Self {
        match err {
            SchedulerError::NotFound(_) => ApiError::not_found(err.to_string()),
            SchedulerError::Store(e) => e.into(),
            SchedulerError::Rejected(ref rejected) => {
                ApiError::bad_field(rejected.field(), err.to_string())
            }
        }
    }
}

impl From<SweeperError> for ApiError {
    fn from(err: SweeperError) -> Self {
        match err {
            SweeperError::Store(e) => e.into(),
            SweeperError::Invalid(e) => e.into(),
            SweeperError::Sweep { .. } => {
                ApiError::new(StatusCode::SERVICE_UNAVAILABLE, err.to_string())
            }
        }
    }
}

impl From<AskError> for ApiError {
    fn from(err: AskError) -> Self {
        ApiError::new(StatusCode::SERVICE_UNAVAILABLE, err.to_string())
    }
}
