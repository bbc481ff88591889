//! `GET /metrics`: Prometheus text. Counters come from the event buses;
//! active queue counts from an index-covered read of the store (never
//! through the drain's mailbox) and actor liveness from the HeartbeatActor,
//! each bounded, so a slow or failed read leaves its gauges out of this
//! scrape (and counts an error) instead of holding it.

use std::time::Duration;

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;

use super::AppState;

/// How long a scrape waits for either level.
const READ_WITHIN: Duration = Duration::from_secs(1);

pub async fn metrics(State(app): State<AppState>) -> impl IntoResponse {
    let store = app.ringmaster.store();
    let (active, health) = tokio::join!(
        tokio::time::timeout(READ_WITHIN, store.active_counts()),
        app.ringmaster.health_within(READ_WITHIN)
    );
    let active = match active {
        Ok(Ok(counts)) => Some(counts),
        Ok(Err(err)) => {
            tracing::warn!(error = %err, "metrics: active queue counts not read");
            None
        }
        Err(_) => {
            tracing::warn!("metrics: active queue counts not read within {READ_WITHIN:?}");
            None
        }
    };
    let text = app
        .ringmaster
        .metrics()
        .render(active.as_deref(), health.ok().as_ref());
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        text,
    )
}
