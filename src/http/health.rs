//! `GET /healthz`: 200 when every actor ticked within twice its interval and
//! the database answers, 503 otherwise; JSON detail either way.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde_json::{json, Value};

use super::AppState;
use crate::store::StoreError;

const PING_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(1);

/// Why the database is not healthy, without its credentials or internals.
fn database_problem(err: &StoreError) -> String {
    if err.is_unavailable() {
        format!("database unavailable: {err}")
    } else {
        "database answered with an error".to_string()
    }
}

pub async fn healthz(State(app): State<AppState>) -> (StatusCode, Json<Value>) {
    // Bounded: during an outage /healthz still answers at once, and says why.
    // Ping and actor report run side by side so the answer takes one bound, not two.
    let (ping, health) = tokio::join!(
        tokio::time::timeout(PING_TIMEOUT, app.ringmaster.store().ping()),
        app.ringmaster.health_within(PING_TIMEOUT)
    );
    let database = match ping {
        Ok(Ok(())) => json!({"ok": true}),
        Ok(Err(err)) => json!({"ok": false, "error": database_problem(&err)}),
        Err(_) => {
            json!({"ok": false, "error": format!("database did not answer within {PING_TIMEOUT:?}")})
        }
    };
    let database_ok = database["ok"] == json!(true);
    match health {
        Ok(report) => {
            let healthy = report.healthy && database_ok;
            let status = if healthy {
                StatusCode::OK
            } else {
                StatusCode::SERVICE_UNAVAILABLE
            };
            (
                status,
                Json(json!({
                    "healthy": healthy,
                    "at": report.at,
                    "database": database,
                    "actors": report.actors,
                })),
            )
        }
        Err(err) => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({"healthy": false, "database": database, "error": err.to_string()})),
        ),
    }
}
