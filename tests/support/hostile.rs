//! The contract hostile requests are held to, and the tables of what is
//! tried: shared by the fixed suite (`tests/hostile.rs`) and the property
//! test (`tests/hostile_props.rs`).

use axum::http::{Method, StatusCode};
use serde_json::{json, Value};

use super::api::Api;

/// The JSON texts tried in every numeric body field: out of every integer
/// type's range, fractions, exponents, and other JSON types.
pub const NUMBERS: &[&str] = &[
    "-1",
    "0",
    "1.5",
    "2147483647",
    "2147483648",
    "4294967295",
    "4294967296",
    "9223372036854775807",
    "9223372036854775808",
    "18446744073709551616",
    "100000000000000000000000000000",
    "1e13",
    "1e308",
    "-0",
    "\"12\"",
    "null",
    "true",
    "[]",
    "{}",
];

/// Check the contract on one answer; `field` is what must be named when the
/// request is refused.
pub fn check(what: &str, status: StatusCode, body: &Value, field: Option<&str>) {
    assert!(!status.is_server_error(), "{what}: {status} {body}");
    if status.is_success() {
        return;
    }
    assert!(status.is_client_error(), "{what}: {status} {body}");
    assert!(
        body["error"].as_str().is_some_and(|e| !e.is_empty()),
        "{what}: not a JSON error: {status} {body}"
    );
    if let Some(field) = field {
        assert_eq!(
            body["field"].as_str(),
            Some(field),
            "{what}: {status} {body}"
        );
    }
}

/// A refusal is required, not only allowed.
pub fn refused(what: &str, status: StatusCode, body: &Value, field: Option<&str>) {
    assert!(
        status.is_client_error(),
        "{what} was accepted: {status} {body}"
    );
    check(what, status, body, field);
}

/// The fixture every table needs: a registered workspace and a schedule.
pub async fn fixture(a: &Api) -> i64 {
    let (s, body) = a
        .put(
            "/v1/workspaces/w",
            json!({"url": "http://127.0.0.1:9/a2a", "max_concurrent": 2}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{body}");
    let (s, body) = a
        .post(
            "/v1/schedules",
            json!({"workspace_id": "w", "name": "n", "cron": "0 3 * * *", "prompt": "p"}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{body}");
    body["id"].as_i64().unwrap()
}

/// Every numeric field of every JSON body: `(method, path, body template
/// with NUMBER where the value goes, field)`.
pub fn numeric_fields(schedule: i64) -> Vec<(Method, String, &'static str, &'static str)> {
    let s = format!("/v1/schedules/{schedule}");
    vec![
        (
            Method::PUT,
            "/v1/workspaces/w".into(),
            r#"{"url": "http://127.0.0.1:9/a2a", "max_concurrent": NUMBER}"#,
            "max_concurrent",
        ),
        (
            Method::POST,
            "/v1/workspaces/w/heartbeat".into(),
            r#"{"active_tasks": NUMBER}"#,
            "active_tasks",
        ),
        (
            Method::POST,
            "/v1/workspaces/w/heartbeat".into(),
            r#"{"active_tasks": 0, "max_concurrent": NUMBER}"#,
            "max_concurrent",
        ),
        (
            Method::POST,
            "/v1/schedules".into(),
            r#"{"workspace_id": "w", "name": "x", "cron": "0 3 * * *", "prompt": "p", "starting_deadline_s": NUMBER}"#,
            "starting_deadline_s",
        ),
        (
            Method::POST,
            "/v1/schedules".into(),
            r#"{"workspace_id": "w", "name": "x", "cron": "0 3 * * *", "prompt": "p", "defer_window_s": NUMBER}"#,
            "defer_window_s",
        ),
        (
            Method::PATCH,
            s.clone(),
            r#"{"starting_deadline_s": NUMBER}"#,
            "starting_deadline_s",
        ),
        (
            Method::PATCH,
            s,
            r#"{"defer_window_s": NUMBER}"#,
            "defer_window_s",
        ),
        (
            Method::POST,
            "/v1/delegations".into(),
            r#"{"workspace_id": "w", "deadline": NUMBER}"#,
            "deadline",
        ),
    ]
}

/// After all that, no actor restarted and normal requests work.
pub async fn still_serving(a: &Api) {
    let (s, body) = a
        .put(
            "/v1/workspaces/after",
            json!({"url": "http://127.0.0.1:9/a2a", "max_concurrent": 3}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{body}");
    let (s, body) = a
        .post("/v1/workspaces/after/heartbeat", json!({"active_tasks": 1}))
        .await;
    assert_eq!(
        (s, body["spare_capacity"].as_u64()),
        (StatusCode::OK, Some(2)),
        "{body}"
    );
    let report = a.ringmaster.health().await.unwrap();
    for actor in &report.actors {
        assert_eq!(actor.restarts, 0, "{} restarted: {report:?}", actor.actor);
    }
}
