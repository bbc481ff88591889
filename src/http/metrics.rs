//! `GET /metrics`: Prometheus text. Counters come from the event buses;
//! queue counts are read from the store (never through the drain's mailbox)
//! and actor liveness from the HeartbeatActor at scrape time.

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;

use super::AppState;

pub async fn metrics(State(app): State<AppState>) -> impl IntoResponse {
    let queue = app
        .ringmaster
        .store()
        .queue_counts()
        .await
        .unwrap_or_default();
    let health = app.ringmaster.health().await.ok();
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        app.ringmaster.metrics().render(&queue, health.as_ref()),
    )
}
