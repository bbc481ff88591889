//! Every endpoint of the API, and every error status, against the binary's
//! router in process, on SQLite and Postgres.

mod support;

use axum::http::{Method, StatusCode};
use ringmaster::config::Config;
use ringmaster::dispatch::Behavior;
use ringmaster::store::Store;
use serde_json::json;
use support::api::{api, message};
use support::{eventually, quiet_config};

async fn workspaces_register_beat_and_refuse_bad_input(store: Store) {
    let a = api(store, quiet_config()).await;
    let (s, body) = a
        .put(
            "/v1/workspaces/agent-1",
            json!({"url": "http://127.0.0.1:9/a2a", "max_concurrent": 2}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{body}");
    assert_eq!(body["id"], "agent-1");
    assert_eq!(body["max_concurrent"], 2);

    let (s, body) = a
        .post(
            "/v1/workspaces/agent-1/heartbeat",
            json!({"active_tasks": 1}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{body}");
    assert_eq!(body["spare_capacity"], 1);

    let (s, body) = a
        .put(
            "/v1/workspaces/agent-1",
            json!({"url": "ftp://x", "max_concurrent": 2}),
        )
        .await;
    assert_eq!(
        (s, body["field"].as_str()),
        (StatusCode::BAD_REQUEST, Some("url")),
        "{body}"
    );
    let (s, body) = a
        .put(
            "/v1/workspaces/agent-1",
            json!({"url": "http://127.0.0.1:9/a2a", "max_concurrent": 0}),
        )
        .await;
    assert_eq!(
        (s, body["field"].as_str()),
        (StatusCode::BAD_REQUEST, Some("max_concurrent")),
        "{body}"
    );
    let (s, body) = a
        .put("/v1/workspaces/agent-1", json!({"max_concurrent": 2}))
        .await;
    assert_eq!(
        (s, body["field"].as_str()),
        (StatusCode::BAD_REQUEST, Some("url")),
        "{body}"
    );
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("missing field `url`"),
        "{body}"
    );
    let (s, body) = a
        .call(
            Method::PUT,
            "/v1/workspaces/agent-1",
            Some("{\"url\": "),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{body}");
    assert!(body["error"].as_str().is_some());
    let (s, body) = a
        .post(
            "/v1/workspaces/agent-1/heartbeat",
            json!({"active_tasks": "three"}),
        )
        .await;
    assert_eq!(
        (s, body["field"].as_str()),
        (StatusCode::BAD_REQUEST, Some("active_tasks")),
        "{body}"
    );
    let (s, _) = a.get("/v1/nothing-here").await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    a.shutdown().await;
}

async fn messages_are_delivered_at_once_or_queued_with_202(store: Store) {
    let a = api(store, quiet_config()).await;
    a.fake.set("agent", Behavior::Reply("right away".into()));
    let (s, body) = a.post("/v1/workspaces/agent/messages", message("m0")).await;
    assert_eq!(s, StatusCode::NOT_FOUND, "unregistered workspace: {body}");

    a.put(
        "/v1/workspaces/agent",
        json!({"url": "http://127.0.0.1:9/a2a", "max_concurrent": 1}),
    )
    .await;
    let (s, body) = a.post("/v1/workspaces/agent/messages", message("m1")).await;
    assert_eq!(s, StatusCode::OK, "{body}");
    assert_eq!(body["result"]["parts"][0]["text"], "right away");

    // Full: the message waits in the queue, and that is a success (202).
    a.post("/v1/workspaces/agent/heartbeat", json!({"active_tasks": 1}))
        .await;
    let (s, body) = a.post("/v1/workspaces/agent/messages", message("m2")).await;
    assert_eq!(s, StatusCode::ACCEPTED, "{body}");
    assert_eq!(body["queued"], true);
    // An estimate (exact at each count, counted at most once a second):
    // this item, and perhaps m1 if it was still under way at the count.
    let depth = body["queue_depth"].as_u64().unwrap();
    assert!((1..=2).contains(&depth), "{body}");
    let queue_id = body["queue_id"].as_i64().unwrap();
    // The same messageId again is the same queued item.
    let (s, again) = a.post("/v1/workspaces/agent/messages", message("m2")).await;
    assert_eq!(
        (s, again["queue_id"].as_i64()),
        (StatusCode::ACCEPTED, Some(queue_id))
    );

    let (s, body) = a.get("/v1/workspaces/agent/queue?status=queued").await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(body["items"].as_array().unwrap().len(), 1);

    // Room comes back: it is delivered.
    a.post("/v1/workspaces/agent/heartbeat", json!({"active_tasks": 0}))
        .await;
    eventually(10, "queued message delivered", || async {
        let (_, body) = a.get("/v1/workspaces/agent/queue?status=completed").await;
        (body["items"].as_array().map(Vec::len) == Some(2)).then_some(())
    })
    .await;

    let (s, body) = a.get("/v1/workspaces/agent/queue?status=bogus").await;
    assert_eq!(
        (s, body["field"].as_str()),
        (StatusCode::BAD_REQUEST, Some("status"))
    );
    let (s, _) = a.get("/v1/workspaces/nobody/queue").await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, body) = a.post("/v1/workspaces/agent/messages", json!([1, 2])).await;
    assert_eq!(
        (s, body["field"].as_str()),
        (StatusCode::BAD_REQUEST, Some("body"))
    );
    let (s, body) = a
        .post(
            "/v1/workspaces/agent/messages?priority=urgent",
            message("m3"),
        )
        .await;
    assert_eq!(
        (s, body["field"].as_str()),
        (StatusCode::BAD_REQUEST, Some("priority"))
    );
    a.shutdown().await;
}

async fn bodies_over_the_limit_get_413(store: Store) {
    let config = Config {
        max_body_bytes: 256,
        ..quiet_config()
    };
    let a = api(store, config).await;
    a.put(
        "/v1/workspaces/agent",
        json!({"url": "http://127.0.0.1:9/a2a", "max_concurrent": 1}),
    )
    .await;
    let big =
        json!({"jsonrpc": "2.0", "method": "message/send", "params": {"text": "x".repeat(1000)}});
    let (s, body) = a.post("/v1/workspaces/agent/messages", big).await;
    assert_eq!(s, StatusCode::PAYLOAD_TOO_LARGE, "{body}");
    assert_eq!(
        body["error"],
        "request body is larger than the configured limit"
    );
    a.shutdown().await;
}

async fn delegations_move_forward_only(store: Store) {
    let a = api(store, quiet_config()).await;
    let (s, body) = a
        .post(
            "/v1/delegations",
            json!({"id": "d1", "caller_workspace_id": "boss", "workspace_id": "worker"}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{body}");
    assert_eq!(
        (body["id"].as_str(), body["status"].as_str()),
        (Some("d1"), Some("queued"))
    );
    assert!(body["deadline"].as_str().is_some());
    let (s, _) = a
        .post(
            "/v1/delegations",
            json!({"id": "d1", "workspace_id": "worker"}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "a repeated create is idempotent");

    let (s, body) = a.get("/v1/delegations/d1").await;
    assert_eq!(
        (s, body["workspace_id"].as_str()),
        (StatusCode::OK, Some("worker"))
    );
    let (s, _) = a.get("/v1/delegations/nope").await;
    assert_eq!(s, StatusCode::NOT_FOUND);

    let (s, body) = a
        .post(
            "/v1/delegations/d1/status",
            json!({"status": "in_progress"}),
        )
        .await;
    assert_eq!(
        (s, body["status"].as_str()),
        (StatusCode::OK, Some("in_progress")),
        "{body}"
    );
    let (s, body) = a.post("/v1/delegations/d1/heartbeat", json!({})).await;
    assert_eq!(s, StatusCode::OK, "{body}");
    assert!(body["last_heartbeat"].as_str().is_some());
    let (s, body) = a
        .post(
            "/v1/delegations/d1/status",
            json!({"status": "completed", "result": "done"}),
        )
        .await;
    assert_eq!(
        (s, body["result"].as_str()),
        (StatusCode::OK, Some("done")),
        "{body}"
    );

    let (s, body) = a
        .post(
            "/v1/delegations/d1/status",
            json!({"status": "in_progress"}),
        )
        .await;
    assert_eq!(s, StatusCode::CONFLICT, "{body}");
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .starts_with("cannot move delegation from completed to in_progress"),
        "{body}"
    );
    let (s, body) = a.post("/v1/delegations/d1/heartbeat", json!({})).await;
    assert_eq!(s, StatusCode::CONFLICT, "{body}");
    let (s, body) = a
        .post("/v1/delegations/d1/status", json!({"status": "done-ish"}))
        .await;
    assert_eq!(
        (s, body["field"].as_str()),
        (StatusCode::BAD_REQUEST, Some("status")),
        "{body}"
    );
    let (s, _) = a
        .post("/v1/delegations/nope/status", json!({"status": "failed"}))
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, _) = a.post("/v1/delegations/nope/heartbeat", json!({})).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, body) = a
        .post("/v1/delegations", json!({"caller_workspace_id": "boss"}))
        .await;
    assert_eq!(
        (s, body["field"].as_str()),
        (StatusCode::BAD_REQUEST, Some("workspace_id")),
        "{body}"
    );
    a.shutdown().await;
}

async fn healthz_and_metrics_answer(store: Store) {
    let a = api(store, quiet_config()).await;
    a.put(
        "/v1/workspaces/agent",
        json!({"url": "http://127.0.0.1:9/a2a", "max_concurrent": 1}),
    )
    .await;
    a.post("/v1/workspaces/agent/messages", message("m1")).await;
    // Healthy once every actor has ticked (a moment after start).
    let body = eventually(10, "/healthz answers 200", || async {
        let (s, body) = a.get("/healthz").await;
        (s == StatusCode::OK).then_some(body)
    })
    .await;
    assert_eq!(body["healthy"], true);
    let text = eventually(10, "the delivery is counted", || async {
        let (_, body) = a.get("/metrics").await;
        let text = body.as_str()?.to_string();
        text.contains("ringmaster_deliveries_total{outcome=\"completed\"} 1")
            .then_some(text)
    })
    .await;
    // Levels are of active items only; finished ones are counters.
    assert!(
        text.contains("ringmaster_queue_items{status=\"queued\"} 0"),
        "{text}"
    );
    assert!(!text.contains("status=\"completed\"} "), "{text}");
    assert!(
        text.contains("ringmaster_actor_restarts{actor=\"queue-drain\"} 0"),
        "{text}"
    );
    assert!(text.ends_with("# EOF\n"), "{text}");
    assert!(
        text.contains("# TYPE ringmaster_actor_tick_lag_seconds gauge"),
        "{text}"
    );
    a.shutdown().await;
}

async fn schedules_are_validated_stored_listed_changed_run_and_removed(store: Store) {
    let a = api(store, quiet_config()).await;
    a.put(
        "/v1/workspaces/agent",
        json!({"url": "http://127.0.0.1:9/a2a", "max_concurrent": 1}),
    )
    .await;
    a.fake
        .set("agent", Behavior::Reply("report written".into()));

    let (s, body) = a
        .post("/v1/schedules", json!({"workspace_id": "agent", "name": "nightly", "cron": "30 2 * * *", "timezone": "America/New_York", "prompt": "write the report"}))
        .await;
    assert_eq!(s, StatusCode::CREATED, "{body}");
    let id = body["id"].as_i64().unwrap();
    // The harness clock is 2026-09-01T12:00Z; 02:30 EDT the next day is 06:30Z.
    assert_eq!(body["next_run_at"], "2026-09-02T06:30:00Z");
    assert_eq!(
        (body["cron"].as_str(), body["dst"].as_str()),
        (Some("30 2 * * *"), Some("vixie"))
    );

    for (bad, field, says) in [
        (
            json!({"workspace_id": "agent", "name": "x", "cron": "0 0 32 * *", "prompt": "p"}),
            "cron",
            "day-of-month: 32 is out of range 1-31",
        ),
        (
            json!({"workspace_id": "agent", "name": "x", "cron": "0 0 30 2 *", "prompt": "p"}),
            "cron",
            "can never fire",
        ),
        (
            json!({"workspace_id": "agent", "name": "x", "cron": "0 * * * *", "timezone": "Mars/Base", "prompt": "p"}),
            "timezone",
            "Mars/Base",
        ),
        (
            json!({"workspace_id": "agent", "name": "x", "cron": "0 * * * *", "dst": "sometimes", "prompt": "p"}),
            "dst",
            "sometimes",
        ),
        (
            json!({"workspace_id": "agent", "name": "x", "cron": "0 * * * *", "prompt": ""}),
            "prompt",
            "must not be empty",
        ),
        (
            json!({"workspace_id": "agent", "name": "x", "cron": "0 * * * *", "prompt": "p", "defer_window_s": 0}),
            "defer_window_s",
            "at least 1 second",
        ),
        (
            json!({"workspace_id": "agent", "cron": "0 * * * *", "prompt": "p"}),
            "name",
            "missing field `name`",
        ),
    ] {
        let (s, body) = a.post("/v1/schedules", bad.clone()).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{bad} → {body}");
        assert_eq!(body["field"].as_str(), Some(field), "{bad} → {body}");
        assert!(
            body["error"].as_str().unwrap().contains(says),
            "{bad} → {body}"
        );
    }

    let (s, body) = a.get("/v1/schedules?workspace_id=agent").await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(body["schedules"].as_array().unwrap().len(), 1);
    let (s, body) = a.get(&format!("/v1/schedules/{id}")).await;
    assert_eq!(
        (s, body["name"].as_str()),
        (StatusCode::OK, Some("nightly"))
    );
    let (s, _) = a.get("/v1/schedules/999999").await;
    assert_eq!(s, StatusCode::NOT_FOUND);

    let (s, body) = a
        .call(
            Method::PATCH,
            &format!("/v1/schedules/{id}"),
            Some(&json!({"cron": "0 13 * * *", "timezone": "UTC"}).to_string()),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{body}");
    assert_eq!(body["next_run_at"], "2026-09-01T13:00:00Z");
    let (s, body) = a
        .call(
            Method::PATCH,
            &format!("/v1/schedules/{id}"),
            Some(&json!({"cron": "61 * * * *"}).to_string()),
            None,
        )
        .await;
    assert_eq!(
        (s, body["field"].as_str()),
        (StatusCode::BAD_REQUEST, Some("cron")),
        "{body}"
    );

    let (s, body) = a.get(&format!("/v1/schedules/{id}/runs")).await;
    assert_eq!(
        (s, body["runs"].as_array().map(Vec::len)),
        (StatusCode::OK, Some(0))
    );
    let (s, body) = a.post(&format!("/v1/schedules/{id}/run"), json!({})).await;
    assert_eq!(s, StatusCode::ACCEPTED, "{body}");
    assert_eq!(body["manual"], true);
    let runs = eventually(10, "the manual fire's run is ok", || async {
        let (_, body) = a.get(&format!("/v1/schedules/{id}/runs")).await;
        let runs = body["runs"].as_array()?.clone();
        (runs.first()?["status"] == "ok").then_some(runs)
    })
    .await;
    assert!(
        runs[0]["response_summary"]
            .as_str()
            .unwrap_or("")
            .contains("report written"),
        "{runs:?}"
    );
    eventually(10, "the fire is counted in /metrics", || async {
        let (_, body) = a.get("/metrics").await;
        body.as_str()?
            .contains("ringmaster_schedule_fires_total{status=\"ok\"} 1")
            .then_some(())
    })
    .await;
    let (s, _) = a.get("/v1/schedules/999999/runs").await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, _) = a.post("/v1/schedules/999999/run", json!({})).await;
    assert_eq!(s, StatusCode::NOT_FOUND);

    let (s, _) = a
        .call(Method::DELETE, &format!("/v1/schedules/{id}"), None, None)
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (s, _) = a
        .call(Method::DELETE, &format!("/v1/schedules/{id}"), None, None)
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    a.shutdown().await;
}

backend_tests!(
    schedules_are_validated_stored_listed_changed_run_and_removed,
    workspaces_register_beat_and_refuse_bad_input,
    messages_are_delivered_at_once_or_queued_with_202,
    bodies_over_the_limit_get_413,
    delegations_move_forward_only,
    healthz_and_metrics_answer,
);

#[tokio::test]
async fn the_bearer_token_guards_v1_only() {
    let db = support::TestDb::sqlite().await;
    let config = Config {
        api_token: Some("s3cret".into()),
        ..quiet_config()
    };
    let a = api(db.store.clone(), config).await;
    let body = json!({"url": "http://127.0.0.1:9/a2a", "max_concurrent": 1}).to_string();
    let (s, err) = a
        .call(Method::PUT, "/v1/workspaces/w", Some(&body), None)
        .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED, "{err}");
    assert!(err["error"]
        .as_str()
        .unwrap()
        .contains("missing bearer token"));
    let (s, err) = a
        .call(Method::PUT, "/v1/workspaces/w", Some(&body), Some("guess"))
        .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED, "{err}");
    assert_eq!(err["error"], "bearer token is not valid");
    let (s, _) = a
        .call(Method::PUT, "/v1/workspaces/w", Some(&body), Some("s3cret"))
        .await;
    assert_eq!(s, StatusCode::OK);
    // Open for probes without the token: never 401. It turns 200 once every
    // actor has ticked, which may be a moment after start.
    eventually(10, "/healthz answers 200 without a token", || async {
        let (s, _) = a.get("/healthz").await;
        assert_ne!(s, StatusCode::UNAUTHORIZED, "health stays open for probes");
        (s == StatusCode::OK).then_some(())
    })
    .await;
    a.shutdown().await;
}
