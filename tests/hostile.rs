//! Hostile input over every route and every numeric field, on both backends.
//!
//! The contract, for every request however malformed: never a 5xx; every
//! refusal is a 4xx whose body is `{"error": …}` JSON, with `field` naming
//! the field (or query parameter, or path segment) that was wrong; nothing an
//! actor does with the input can panic (the supervisor counts no restart);
//! and the node serves normally afterwards. A property test throws arbitrary
//! numbers at every numeric field on top of the fixed tables here.

mod support;

use axum::body::Body;
use axum::http::{header, Method, Request, StatusCode};
use ringmaster::store::Store;
use serde_json::{json, Value};
use support::api::api;
use support::hostile::{check, fixture, numeric_fields, refused, still_serving, NUMBERS};
use support::quiet_config;

/// The texts tried in every numeric query parameter (already URL-encoded).
const QUERY_NUMBERS: &[&str] = &[
    "-1",
    "abc",
    "",
    "1.5",
    "0",
    "10000000000000",
    "18446744073709551616",
    "99999999999999999999999999",
    "%00",
    "1e3",
    "%20%201",
];

async fn every_numeric_body_field_is_bounded_and_named(store: Store) {
    let a = api(store, quiet_config()).await;
    let schedule = fixture(&a).await;
    for (method, path, template, field) in numeric_fields(schedule) {
        for number in NUMBERS {
            let body = template.replace("NUMBER", number);
            let what = format!("{method} {path} {body}");
            let (status, answer) = a.call(method.clone(), &path, Some(&body), None).await;
            check(&what, status, &answer, Some(field));
            // Out of every field's range, or not a whole number: always refused.
            if !["0", "-0", "null"].contains(number) {
                refused(&what, status, &answer, Some(field));
            }
        }
    }
    still_serving(&a).await;
    a.shutdown().await;
}

async fn every_numeric_query_parameter_is_bounded_and_named(store: Store) {
    let a = api(store, quiet_config()).await;
    let schedule = fixture(&a).await;
    let message = ringmaster::model::a2a::a2a_message("q", "hi");
    let targets: Vec<(Method, String, &str, Option<&str>)> = vec![
        (
            Method::POST,
            "/v1/workspaces/w/messages".into(),
            "ttl_s",
            Some(message.as_str()),
        ),
        (
            Method::POST,
            "/v1/workspaces/w/messages".into(),
            "priority",
            Some(message.as_str()),
        ),
        (Method::GET, "/v1/workspaces/w/queue".into(), "limit", None),
        (Method::GET, "/v1/queue".into(), "limit", None),
        (Method::GET, "/v1/queue".into(), "cursor", None),
        (Method::GET, "/v1/schedules".into(), "limit", None),
        (Method::GET, "/v1/schedules".into(), "cursor", None),
        (Method::GET, "/v1/workspaces".into(), "limit", None),
        (Method::GET, "/v1/workspaces".into(), "cursor", None),
        (Method::GET, "/v1/delegations".into(), "limit", None),
        (Method::GET, "/v1/delegations".into(), "cursor", None),
        (
            Method::POST,
            "/v1/workspaces/w/queue/retry".into(),
            "limit",
            None,
        ),
        (
            Method::GET,
            format!("/v1/schedules/{schedule}/runs"),
            "limit",
            None,
        ),
    ];
    for (method, path, param, body) in targets {
        for number in QUERY_NUMBERS {
            let uri = format!("{path}?{param}={number}");
            let what = format!("{method} {uri}");
            let (status, answer) = a.call(method.clone(), &uri, body, None).await;
            check(&what, status, &answer, Some(param));
            // A priority is a name or a number, spaces around it allowed.
            let may_pass = ["", "0", "1e3"].contains(number)
                || (param == "priority" && ["-1", "%20%201"].contains(number));
            if !may_pass {
                refused(&what, status, &answer, Some(param));
            }
        }
    }
    still_serving(&a).await;
    a.shutdown().await;
}

/// Ids in paths: bad numbers, NUL, 10,000 characters, spaces, dots.
async fn every_path_id_is_checked_at_the_edge(store: Store) {
    let a = api(store, quiet_config()).await;
    fixture(&a).await;
    let long = "x".repeat(10_000);
    let numeric_ids = [
        "abc",
        "-1",
        "1.5",
        "99999999999999999999",
        "%00",
        long.as_str(),
        "0x10",
    ];
    for id in numeric_ids {
        for (method, suffix, body) in [
            (Method::GET, "", None),
            (Method::PATCH, "", Some(r#"{"enabled": false}"#)),
            (Method::DELETE, "", None),
            (Method::GET, "/runs", None),
            (Method::POST, "/run", None),
        ] {
            let uri = format!("/v1/schedules/{id}{suffix}");
            let what = format!("{method} {}", &uri[..uri.len().min(60)]);
            let (status, answer) = a.call(method, &uri, body, None).await;
            refused(&what, status, &answer, None);
            if status == StatusCode::BAD_REQUEST {
                assert_eq!(answer["field"], "id", "{what}: {answer}");
            }
        }
        for (method, suffix) in [
            (Method::GET, ""),
            (Method::POST, "/retry"),
            (Method::POST, "/cancel"),
        ] {
            let uri = format!("/v1/queue/{id}{suffix}");
            let what = format!("{method} {}", &uri[..uri.len().min(60)]);
            let (status, answer) = a.call(method, &uri, None, None).await;
            refused(&what, status, &answer, None);
        }
    }
    let message = ringmaster::model::a2a::a2a_message("k", "hi");
    let text_ids = [
        "%00",
        "a%00b",
        long.as_str(),
        "%20",
        "..",
        "a%0Ab",
        "%E2%80%AE",
    ];
    for id in text_ids {
        for (method, suffix, body) in [
            (
                Method::PUT,
                "",
                Some(r#"{"url": "http://127.0.0.1:9/", "max_concurrent": 1}"#),
            ),
            (Method::POST, "/heartbeat", Some(r#"{"active_tasks": 0}"#)),
            (Method::POST, "/messages", Some(message.as_str())),
            (Method::GET, "/queue", None),
            (Method::GET, "", None),
            (Method::DELETE, "", None),
            (Method::POST, "/queue/retry", None),
        ] {
            let uri = format!("/v1/workspaces/{id}{suffix}");
            let what = format!("{method} {}", &uri[..uri.len().min(60)]);
            let (status, answer) = a.call(method, &uri, body, None).await;
            refused(&what, status, &answer, None);
            if status == StatusCode::BAD_REQUEST {
                assert_eq!(answer["field"], "id", "{what}: {answer}");
            }
        }
        for (method, suffix, body) in [
            (Method::GET, "", None),
            (Method::POST, "/heartbeat", None),
            (Method::POST, "/status", Some(r#"{"status": "running"}"#)),
            (Method::POST, "/retry", None),
        ] {
            let uri = format!("/v1/delegations/{id}{suffix}");
            let what = format!("{method} {}", &uri[..uri.len().min(60)]);
            let (status, answer) = a.call(method, &uri, body, None).await;
            refused(&what, status, &answer, None);
        }
    }
    still_serving(&a).await;
    a.shutdown().await;
}

/// Strings: NUL, over-long, control characters, in every text field.
async fn every_text_field_refuses_nul_and_overlong_values(store: Store) {
    let a = api(store, quiet_config()).await;
    let schedule = fixture(&a).await;
    let huge = "y".repeat(300);
    let bad_texts = ["a\u{0}b", huge.as_str()];
    let schedule_path = format!("/v1/schedules/{schedule}");
    for bad in bad_texts {
        let cases: Vec<(Method, &str, Value, &str)> = vec![
            (
                Method::POST,
                "/v1/schedules",
                json!({"workspace_id": bad, "name": "n", "cron": "0 3 * * *", "prompt": "p"}),
                "workspace_id",
            ),
            (
                Method::POST,
                "/v1/schedules",
                json!({"workspace_id": "w", "name": bad, "cron": "0 3 * * *", "prompt": "p"}),
                "name",
            ),
            (
                Method::POST,
                "/v1/schedules",
                json!({"workspace_id": "w", "name": "n", "cron": bad, "prompt": "p"}),
                "cron",
            ),
            (
                Method::POST,
                "/v1/schedules",
                json!({"workspace_id": "w", "name": "n", "cron": "0 3 * * *", "timezone": bad, "prompt": "p"}),
                "timezone",
            ),
            (
                Method::POST,
                "/v1/schedules",
                json!({"workspace_id": "w", "name": "n", "cron": "0 3 * * *", "dst": bad, "prompt": "p"}),
                "dst",
            ),
            (
                Method::PATCH,
                schedule_path.as_str(),
                json!({"name": bad}),
                "name",
            ),
            (
                Method::PATCH,
                schedule_path.as_str(),
                json!({"workspace_id": bad}),
                "workspace_id",
            ),
            (
                Method::POST,
                "/v1/delegations",
                json!({"id": bad, "workspace_id": "w"}),
                "id",
            ),
            (
                Method::POST,
                "/v1/delegations",
                json!({"workspace_id": bad}),
                "workspace_id",
            ),
            (
                Method::POST,
                "/v1/delegations",
                json!({"workspace_id": "w", "caller_workspace_id": bad}),
                "caller_workspace_id",
            ),
            (
                Method::POST,
                "/v1/workspaces/w/messages",
                serde_json::from_str(&ringmaster::model::a2a::a2a_message(bad, "hi")).unwrap(),
                "messageId",
            ),
        ];
        for (method, path, body, field) in cases {
            let what = format!("{method} {path} {field}={:?}", &bad[..bad.len().min(8)]);
            let (status, answer) = a.call(method, path, Some(&body.to_string()), None).await;
            refused(&what, status, &answer, None);
            let named = answer["field"].as_str().unwrap_or_default();
            assert!(
                named == field || named.ends_with(field),
                "{what}: names {named:?}: {answer}"
            );
        }
    }
    // NUL in a prompt or a result: refused by name, never a database error.
    for (method, path, body, field) in [
        (
            Method::POST,
            "/v1/schedules".to_string(),
            json!({"workspace_id": "w", "name": "n2", "cron": "0 3 * * *", "prompt": "a\u{0}b"}),
            "prompt",
        ),
        (
            Method::PATCH,
            schedule_path.clone(),
            json!({"prompt": "a\u{0}b"}),
            "prompt",
        ),
    ] {
        let what = format!("{method} {path} {field} with NUL");
        let (status, answer) = a.call(method, &path, Some(&body.to_string()), None).await;
        refused(&what, status, &answer, Some(field));
    }
    let (s, d) = a
        .post("/v1/delegations", json!({"workspace_id": "w"}))
        .await;
    assert_eq!(s, StatusCode::CREATED, "{d}");
    let id = d["id"].as_str().unwrap().to_string();
    for field in ["result", "error"] {
        let body = json!({"status": "failed", field: "a\u{0}b"});
        let what = format!("status with NUL {field}");
        let (status, answer) = a.post(&format!("/v1/delegations/{id}/status"), body).await;
        refused(&what, status, &answer, Some(field));
    }
    // The text of a message is the workspace's business: NUL there is escaped
    // JSON, stored and sent as it came.
    let mut message: Value =
        serde_json::from_str(&ringmaster::model::a2a::a2a_message("nul-text", "a\u{0}b")).unwrap();
    message["params"]["message"]["parts"][0]["text"] = json!("a\u{0}b");
    let (status, answer) = a.post("/v1/workspaces/w/messages", message).await;
    assert!(status.is_success(), "{status} {answer}");
    still_serving(&a).await;
    a.shutdown().await;
}

/// Agent URLs are parsed for real.
async fn workspace_urls_are_parsed_for_real(store: Store) {
    let a = api(store, quiet_config()).await;
    for url in [
        "http:///etc/passwd",
        "http://:80/x",
        "http://h:99999/",
        "http://a b/",
        "http://h/\r\nX-Evil: 1",
        "http://[::1/",
        "ftp://h/",
        "file:///etc/passwd",
        "",
        "http://",
        "javascript:alert(1)",
        "http://h/\u{0}",
    ] {
        let (status, answer) = a
            .put("/v1/workspaces/w", json!({"url": url, "max_concurrent": 1}))
            .await;
        refused(&format!("url {url:?}"), status, &answer, Some("url"));
    }
    // Credentials are accepted but never echoed back.
    let (status, answer) = a
        .put(
            "/v1/workspaces/w",
            json!({"url": "http://user:s3cret@127.0.0.1:9/a2a", "max_concurrent": 1}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert!(!answer.to_string().contains("s3cret"), "{answer}");
    let (_, listed) = a.get("/v1/workspaces/w/queue").await;
    assert!(!listed.to_string().contains("s3cret"), "{listed}");
    a.shutdown().await;
}

/// Schedules: specs and zones that cannot be, deadlines out of range.
async fn schedule_specs_zones_and_deadlines_are_refused_by_name(store: Store) {
    let a = api(store, quiet_config()).await;
    fixture(&a).await;
    for (field, value) in [
        ("cron", json!("99999999999 * * * *")),
        ("cron", json!("*/0 * * * *")),
        ("cron", json!("@every 100000000000000000s")),
        ("cron", json!("@every 0s")),
        ("cron", json!("0 0 31 2 *")),
        ("cron", json!("* * * * * * * *")),
        ("cron", json!("")),
        ("cron", json!(12)),
        ("timezone", json!("Mars/Olympus_Mons")),
        ("timezone", json!("../../../etc/passwd")),
        ("dst", json!("sometimes")),
        ("enabled", json!("yes")),
        ("prompt", json!(null)),
        ("name", json!([1])),
    ] {
        let mut body =
            json!({"workspace_id": "w", "name": "bad", "cron": "0 3 * * *", "prompt": "p"});
        body[field] = value.clone();
        let (status, answer) = a.post("/v1/schedules", body).await;
        refused(&format!("{field}={value}"), status, &answer, Some(field));
    }
    for deadline in [
        json!("9999-12-31T23:59:59Z"),
        json!("0001-01-01T00:00:00Z"),
        json!("tomorrow"),
        json!("2026-13-01T00:00:00Z"),
    ] {
        let (status, answer) = a
            .post(
                "/v1/delegations",
                json!({"workspace_id": "w", "deadline": deadline}),
            )
            .await;
        refused(
            &format!("deadline {deadline}"),
            status,
            &answer,
            Some("deadline"),
        );
    }
    still_serving(&a).await;
    a.shutdown().await;
}

/// Bodies that are not what they claim: not JSON, the wrong JSON type,
/// nested past any sane depth, duplicated keys, unknown fields, no content
/// type, over the limit. Wrong methods and unknown paths are JSON too.
async fn malformed_bodies_methods_and_paths_get_json_errors(store: Store) {
    let a = api(store, quiet_config()).await;
    fixture(&a).await;
    let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    for body in [
        "{",
        "",
        "[]",
        "\"x\"",
        "null",
        deep.as_str(),
        r#"{"url": "http://127.0.0.1:9/", "max_concurrent": 1, "max_concurrent": 2}"#,
        r#"{"url": "http://127.0.0.1:9/", "max_concurrent": 1, "extra": 1}"#,
        "\u{feff}{}",
        "{\"url\": \"\\ud800\", \"max_concurrent\": 1}",
    ] {
        let (status, answer) = a
            .call(Method::PUT, "/v1/workspaces/w", Some(body), None)
            .await;
        refused(
            &format!("body {:?}", &body[..body.len().min(40)]),
            status,
            &answer,
            None,
        );
    }
    let no_type = Request::builder()
        .method(Method::PUT)
        .uri("/v1/workspaces/w")
        .body(Body::from(
            r#"{"url": "http://127.0.0.1:9/", "max_concurrent": 1}"#,
        ))
        .unwrap();
    // Taken as JSON: curl without -H sends none.
    let (status, answer) = a.send(no_type).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    let text_type = Request::builder()
        .method(Method::POST)
        .uri("/v1/workspaces/w/messages")
        .header(header::CONTENT_TYPE, "text/plain")
        .body(Body::from("hello"))
        .unwrap();
    let (status, answer) = a.send(text_type).await;
    refused("text/plain", status, &answer, None);
    assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    for (method, path) in [
        (Method::PATCH, "/v1/workspaces/w"),
        (Method::PUT, "/healthz"),
        (Method::POST, "/metrics"),
        (Method::GET, "/v1/workspaces/w/messages"),
        (Method::PATCH, "/v1/delegations"),
        (Method::GET, "/v1/nothing-here"),
        (Method::GET, "/v1/schedules/1/nothing"),
    ] {
        let (status, answer) = a.call(method.clone(), path, None, None).await;
        refused(&format!("{method} {path}"), status, &answer, None);
    }
    still_serving(&a).await;
    a.shutdown().await;
}

/// A row the code cannot read (written by hand, or by a newer version) is
/// a 500 that carries a request id and no internal text, and the actor that
/// read it keeps running.
async fn a_corrupt_row_is_a_500_with_a_request_id_and_nothing_internal(db: support::TestDb) {
    use sqlx::Connection;
    let a = api(db.store.clone(), quiet_config()).await;
    let schedule = fixture(&a).await;
    if db.url.starts_with("postgres") {
        let mut conn = sqlx::PgConnection::connect(&db.url).await.unwrap();
        for sql in [
            "ALTER TABLE schedules DROP CONSTRAINT schedules_dst_check",
            "UPDATE schedules SET dst = 'bogus-policy'",
        ] {
            sqlx::query(sql).execute(&mut conn).await.unwrap();
        }
    } else {
        let mut conn = sqlx::SqliteConnection::connect(&db.url).await.unwrap();
        for sql in [
            "PRAGMA ignore_check_constraints = ON",
            "UPDATE schedules SET dst = 'bogus-policy'",
        ] {
            sqlx::query(sql).execute(&mut conn).await.unwrap();
        }
    }
    let request = Request::builder()
        .method(Method::GET)
        .uri(format!("/v1/schedules/{schedule}"))
        .header("x-request-id", "trace-me-42")
        .body(Body::empty())
        .unwrap();
    let (status, answer) = a.send(request).await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR, "{answer}");
    assert_eq!(
        answer,
        json!({"error": "internal error", "request_id": "trace-me-42"})
    );
    still_serving(&a).await;
    a.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_a_corrupt_row_is_a_500_with_a_request_id() {
    a_corrupt_row_is_a_500_with_a_request_id_and_nothing_internal(support::TestDb::sqlite().await)
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_a_corrupt_row_is_a_500_with_a_request_id() {
    let Some(db) = support::TestDb::postgres().await else {
        return;
    };
    a_corrupt_row_is_a_500_with_a_request_id_and_nothing_internal(db).await;
}

backend_tests!(
    every_numeric_body_field_is_bounded_and_named,
    every_numeric_query_parameter_is_bounded_and_named,
    every_path_id_is_checked_at_the_edge,
    every_text_field_refuses_nul_and_overlong_values,
    workspace_urls_are_parsed_for_real,
    schedule_specs_zones_and_deadlines_are_refused_by_name,
    malformed_bodies_methods_and_paths_get_json_errors,
);
