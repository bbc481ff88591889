//! `GET /healthz`: 200 when every actor ticked within twice its interval and
//! the database answers, 503 otherwise; JSON detail either way.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde_json::{json, Value};

use super::AppState;

pub async fn healthz(State(app): State<AppState>) -> (StatusCode, Json<Value>) {
    let database = match app.ringmaster.store().ping().await {
        Ok(()) => json!({"ok": true}),
        Err(err) => json!({"ok": false, "error": err.to_string()}),
    };
    let database_ok = database["ok"] == json!(true);
    match app.ringmaster.health().await {
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
