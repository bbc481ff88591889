//! `GET /metrics`: Prometheus text. Counters come from the event buses;
//! queue depth and actor liveness are asked for at scrape time.

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;

use super::AppState;
use crate::actors::ask::ask;
use crate::actors::queue_drain::QueueMsg;
use crate::service::CALL_TIMEOUT;

pub async fn metrics(State(app): State<AppState>) -> impl IntoResponse {
    let queue = match app.ringmaster.queue() {
        Ok(q) => ask(&q, "queue-drain", QueueMsg::Counts, CALL_TIMEOUT)
            .await
            .ok()
            .and_then(|r| r.ok())
            .unwrap_or_default(),
        Err(_) => Vec::new(),
    };
    let health = app.ringmaster.health().await.ok();
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        app.ringmaster.metrics().render(&queue, health.as_ref()),
    )
}
