//! The one error shape of the API: `{"error": "...", "field": "..."}` with
//! the status that says who is to blame.
//!
//! A 500 never carries internal text: the detail travels in a response
//! extension to [`finish`], which logs it with the request's id and answers
//! `{"error": "internal error", "request_id"}`. A 503 (database unavailable,
//! an actor not answering in time, the queue too busy to take a write) says
//! so and carries `Retry-After`.

use axum::extract::Request;
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

use crate::actors::ask::AskError;
use crate::ingest::IngestError;
use crate::messages::heartbeat::HeartbeatError;
use crate::messages::queue::QueueError;
use crate::messages::scheduler::SchedulerError;
use crate::messages::sweeper::SweeperError;
use crate::model::Invalid;
use crate::service::ServiceError;
use crate::store::StoreError;

/// Seconds a client is told to wait before retrying a 503.
const RETRY_AFTER_S: &str = "1";

#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub error: String,
    pub field: Option<String>,
}

/// The detail of a 500, for the log only.
#[derive(Clone)]
struct InternalDetail(String);

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

    pub fn unavailable(error: impl Into<String>) -> Self {
        Self::new(StatusCode::SERVICE_UNAVAILABLE, error)
    }

    /// Something went wrong inside: `detail` goes to the log, not the client.
    pub fn internal(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, detail)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if self.status == StatusCode::INTERNAL_SERVER_ERROR {
            let mut response =
                (self.status, Json(json!({"error": "internal error"}))).into_response();
            response.extensions_mut().insert(InternalDetail(self.error));
            return response;
        }
        let body = match self.field {
            Some(field) => json!({"error": self.error, "field": field}),
            None => json!({"error": self.error}),
        };
        let mut response = (self.status, Json(body)).into_response();
        if self.status == StatusCode::SERVICE_UNAVAILABLE {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static(RETRY_AFTER_S));
        }
        response
    }
}

/// Middleware: a 500's detail is logged with the request id, and the answer
/// carries only that id.
pub async fn finish(request: Request, next: Next) -> Response {
    let id = request
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("-")
        .to_string();
    let mut response = next.run(request).await;
    if let Some(InternalDetail(detail)) = response.extensions_mut().remove::<InternalDetail>() {
        tracing::error!(request_id = %id, error = %detail, "internal error answering a request");
        let headers = response.headers().clone();
        response = (
            StatusCode::INTERNAL_SERVER_ERROR,
            Json(json!({"error": "internal error", "request_id": id})),
        )
            .into_response();
        for (name, value) in headers.iter().filter(|(n, _)| *n == "x-request-id") {
            response.headers_mut().insert(name, value.clone());
        }
    }
    response
}

impl From<StoreError> for ApiError {
    fn from(err: StoreError) -> Self {
        match &err {
            StoreError::NotFound { .. } => ApiError::not_found(err.to_string()),
            e if e.is_unavailable() => {
                tracing::warn!(error = %err, "database unavailable answering a request");
                ApiError::unavailable("database unavailable; try again shortly")
            }
            _ => ApiError::internal(err.to_string()),
        }
    }
}

impl From<ServiceError> for ApiError {
    fn from(err: ServiceError) -> Self {
        match err {
            ServiceError::Store(e) => e.into(),
            ServiceError::Queue(e) => e.into(),
            other => ApiError::unavailable(other.to_string()),
        }
    }
}

impl From<Invalid> for ApiError {
    fn from(err: Invalid) -> Self {
        ApiError::bad_field(err.field, err.to_string())
    }
}

impl From<IngestError> for ApiError {
    fn from(err: IngestError) -> Self {
        match err {
            IngestError::Invalid(e) => e.into(),
            IngestError::Store(e) => e.into(),
            IngestError::TimedOut(_) => {
                ApiError::unavailable("the queue is too busy to take this now; it was not enqueued")
            }
            IngestError::Stopped => ApiError::unavailable("the queue is shutting down"),
        }
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
            QueueError::Ingest(e) => e.into(),
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
            SweeperError::Sweep { source, .. } => source.into(),
        }
    }
}

impl From<AskError> for ApiError {
    fn from(err: AskError) -> Self {
        ApiError::unavailable(err.to_string())
    }
}
