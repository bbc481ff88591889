//! The operator's API on both backends: the registry with depths, removing
//! a workspace, redriving and cancelling queue items (one and in bulk), and
//! listing and retrying delegations. Each refusal is a 409 naming the state.

mod support;

use axum::http::StatusCode;
use ringmaster::model::a2a::a2a_message;
use ringmaster::model::outcome::DispatchResult;
use ringmaster::model::queue::NewQueueItem;
use ringmaster::store::Store;
use serde_json::{json, Value};
use support::api::api;
use support::{at, quiet_config};

backend_tests!(
    workspaces_are_listed_with_depth_and_no_credentials,
    removing_a_workspace_cancels_its_queue_and_pauses_its_schedules,
    a_dead_letter_is_redriven_and_a_waiting_item_cancelled,
    a_workspace_dead_letters_are_redriven_in_bounded_batches,
    delegations_are_listed_newest_first_and_a_stuck_one_retried,
);

/// `n` items of `ws` that failed for good (one attempt each).
async fn dead_letters(store: &Store, ws: &str, n: usize) -> Vec<i64> {
    let now = at(2026, 9, 1, 11, 0, 0);
    for i in 0..n {
        let item = NewQueueItem::new(ws, a2a_message(&format!("{ws}-dead-{i}"), "p"));
        store.enqueue(&item, 1, now).await.unwrap();
    }
    let error = DispatchResult::Error {
        message: "HTTP 500".into(),
    };
    support::finish(store, ws, n as u32, &error, now).await
}

fn ids(list: &Value, key: &str) -> Vec<String> {
    list[key]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["id"].as_str().unwrap().to_string())
        .collect()
}

async fn workspaces_are_listed_with_depth_and_no_credentials(store: Store) {
    let a = api(store.clone(), quiet_config()).await;
    a.busy_workspace("alpha", "http://user:secret@127.0.0.1:9/a2a")
        .await;
    a.busy_workspace("beta", "http://127.0.0.1:9/a2a").await;
    a.busy_workspace("gamma", "http://127.0.0.1:9/a2a").await;
    // No room anywhere: two messages wait for alpha.
    for key in ["m1", "m2"] {
        let (s, body) = a
            .post("/v1/workspaces/alpha/messages", support::api::message(key))
            .await;
        assert_eq!(s, StatusCode::ACCEPTED, "{body}");
    }
    let (s, page) = a.get("/v1/workspaces?limit=2").await;
    assert_eq!(s, StatusCode::OK, "{page}");
    assert_eq!(ids(&page, "workspaces"), ["alpha", "beta"]);
    let alpha = &page["workspaces"][0];
    assert_eq!(alpha["depth"], 2, "{alpha}");
    assert_eq!(
        (
            alpha["max_concurrent"].as_i64(),
            alpha["active_tasks"].as_i64()
        ),
        (Some(1), Some(1))
    );
    assert!(alpha.get("active_tasks").is_some() && alpha.get("status").is_some());
    assert!(!page.to_string().contains("secret"), "{page}");
    let cursor = page["next_cursor"].as_str().unwrap().to_string();
    let (_, rest) = a
        .get(&format!("/v1/workspaces?limit=2&cursor={cursor}"))
        .await;
    assert_eq!(ids(&rest, "workspaces"), ["gamma"]);
    assert!(rest["next_cursor"].is_null());

    let (s, one) = a.get("/v1/workspaces/alpha").await;
    assert_eq!(
        (s, one["depth"].as_u64()),
        (StatusCode::OK, Some(2)),
        "{one}"
    );
    assert!(!one.to_string().contains("secret"));
    let (s, body) = a.get("/v1/workspaces/nobody").await;
    assert_eq!(s, StatusCode::NOT_FOUND, "{body}");
    a.shutdown().await;
}

async fn removing_a_workspace_cancels_its_queue_and_pauses_its_schedules(store: Store) {
    let a = api(store.clone(), quiet_config()).await;
    a.busy_workspace("gone", "http://127.0.0.1:9/a2a").await;
    a.busy_workspace("kept", "http://127.0.0.1:9/a2a").await;
    for ws in ["gone", "kept"] {
        let (s, body) = a
            .post(
                &format!("/v1/workspaces/{ws}/messages"),
                support::api::message("m"),
            )
            .await;
        assert_eq!(s, StatusCode::ACCEPTED, "{body}");
    }
    let (s, schedule) = a
        .post(
            "/v1/schedules",
            json!({"workspace_id": "gone", "name": "n", "cron": "*/5 * * * *", "prompt": "p"}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{schedule}");

    let (s, removed) = a.delete("/v1/workspaces/gone").await;
    assert_eq!(s, StatusCode::OK, "{removed}");
    assert_eq!(
        (
            removed["cancelled_items"].as_u64(),
            removed["paused_schedules"].as_u64()
        ),
        (Some(1), Some(1)),
        "{removed}"
    );
    let (s, _) = a.get("/v1/workspaces/gone").await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, again) = a.delete("/v1/workspaces/gone").await;
    assert_eq!(s, StatusCode::NOT_FOUND, "{again}");
    // Its item is cancelled (kept, with why); the other workspace's waits on.
    let (_, items) = a.get("/v1/queue?workspace_id=gone").await;
    assert_eq!(items["items"][0]["status"], "cancelled", "{items}");
    assert!(items["items"][0]["last_error"]
        .as_str()
        .unwrap()
        .contains("workspace was removed"));
    let (_, items) = a.get("/v1/queue?workspace_id=kept").await;
    assert_eq!(items["items"][0]["status"], "queued", "{items}");
    let id = schedule["id"].as_i64().unwrap();
    let (_, schedule) = a.get(&format!("/v1/schedules/{id}")).await;
    assert_eq!(schedule["enabled"], false, "{schedule}");
    a.shutdown().await;
}

async fn a_dead_letter_is_redriven_and_a_waiting_item_cancelled(store: Store) {
    let a = api(store.clone(), quiet_config()).await;
    // "w" is not registered, so the running drain never claims its items:
    // the test moves them by hand.
    let dead = dead_letters(&store, "w", 1).await[0];
    let (_, item) = a.get(&format!("/v1/queue/{dead}")).await;
    assert_eq!(
        (item["status"].as_str(), item["attempts"].as_i64()),
        (Some("failed"), Some(1))
    );

    let (s, item) = a.post(&format!("/v1/queue/{dead}/retry"), json!({})).await;
    assert_eq!(s, StatusCode::OK, "{item}");
    assert_eq!(item["status"], "queued");
    assert_eq!(item["attempts"], 0, "attempts reset: {item}");
    assert!(item["finished_at"].is_null());
    // Queued now: a second retry is refused, naming the state.
    let (s, body) = a.post(&format!("/v1/queue/{dead}/retry"), json!({})).await;
    assert_eq!(
        (s, body["field"].as_str()),
        (StatusCode::CONFLICT, Some("status")),
        "{body}"
    );
    assert!(body["error"].as_str().unwrap().contains("queued"), "{body}");

    let (s, item) = a.post(&format!("/v1/queue/{dead}/cancel"), json!({})).await;
    assert_eq!(
        (s, item["status"].as_str()),
        (StatusCode::OK, Some("cancelled")),
        "{item}"
    );
    let (s, body) = a.post(&format!("/v1/queue/{dead}/cancel"), json!({})).await;
    assert_eq!(s, StatusCode::CONFLICT, "{body}");
    // A cancelled item is not a dead letter either.
    let (s, _) = a.post(&format!("/v1/queue/{dead}/retry"), json!({})).await;
    assert_eq!(s, StatusCode::CONFLICT);

    // One being delivered cannot be cancelled.
    let now = at(2026, 9, 1, 12, 0, 0);
    let item = NewQueueItem::new("w", a2a_message("busy", "p"));
    let busy = store.enqueue(&item, 3, now).await.unwrap().id;
    store
        .claim(ringmaster::store::Claim {
            workspace: "w",
            limit: 1,
            now,
            lease_until: now + chrono::Duration::minutes(5),
            node: "n",
        })
        .await
        .unwrap();
    let (s, body) = a.post(&format!("/v1/queue/{busy}/cancel"), json!({})).await;
    assert_eq!(s, StatusCode::CONFLICT, "{body}");
    assert!(
        body["error"].as_str().unwrap().contains("being delivered"),
        "{body}"
    );

    for path in ["/v1/queue/987654/retry", "/v1/queue/987654/cancel"] {
        let (s, body) = a.post(path, json!({})).await;
        assert_eq!(s, StatusCode::NOT_FOUND, "{path}: {body}");
    }
    a.shutdown().await;
}

async fn a_workspace_dead_letters_are_redriven_in_bounded_batches(store: Store) {
    let a = api(store.clone(), quiet_config()).await;
    dead_letters(&store, "w", 5).await;
    dead_letters(&store, "other", 2).await;
    let (s, done) = a
        .post("/v1/workspaces/w/queue/retry?limit=3", json!({}))
        .await;
    assert_eq!(s, StatusCode::OK, "{done}");
    assert_eq!(
        (done["retried"].as_u64(), done["more"].as_bool()),
        (Some(3), Some(true))
    );
    let (_, done) = a.post("/v1/workspaces/w/queue/retry", json!({})).await;
    assert_eq!(
        (done["retried"].as_u64(), done["more"].as_bool()),
        (Some(2), Some(false))
    );
    let (_, queued) = a.get("/v1/queue?workspace_id=w&status=queued").await;
    assert_eq!(queued["items"].as_array().unwrap().len(), 5);
    let (_, other) = a.get("/v1/queue?workspace_id=other&status=failed").await;
    assert_eq!(
        other["items"].as_array().unwrap().len(),
        2,
        "only w's moved"
    );
    let (s, body) = a
        .post("/v1/workspaces/w/queue/retry?status=queued", json!({}))
        .await;
    assert_eq!(
        (s, body["field"].as_str()),
        (StatusCode::BAD_REQUEST, Some("status"))
    );
    a.shutdown().await;
}

async fn delegations_are_listed_newest_first_and_a_stuck_one_retried(store: Store) {
    let a = api(store.clone(), quiet_config()).await;
    for id in ["d1", "d2", "d3"] {
        let (s, body) = a
            .post("/v1/delegations", json!({"id": id, "workspace_id": "w"}))
            .await;
        assert_eq!(s, StatusCode::CREATED, "{body}");
    }
    let (s, body) = a
        .post("/v1/delegations", json!({"id": "x1", "workspace_id": "x"}))
        .await;
    assert_eq!(s, StatusCode::CREATED, "{body}");
    // Created in the same instant: newest first means by id then.
    let (s, page) = a.get("/v1/delegations?workspace_id=w&limit=2").await;
    assert_eq!(s, StatusCode::OK, "{page}");
    assert_eq!(ids(&page, "delegations"), ["d3", "d2"]);
    let cursor = page["next_cursor"].as_str().unwrap().to_string();
    let (_, rest) = a
        .get(&format!(
            "/v1/delegations?workspace_id=w&limit=2&cursor={cursor}"
        ))
        .await;
    assert_eq!(ids(&rest, "delegations"), ["d1"]);

    let (s, body) = a
        .post(
            "/v1/delegations/d2/status",
            json!({"status": "stuck", "error": "silent"}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{body}");
    let (_, stuck) = a.get("/v1/delegations?status=stuck").await;
    assert_eq!(ids(&stuck, "delegations"), ["d2"]);
    let (s, body) = a.post("/v1/delegations/d2/retry", json!({})).await;
    assert_eq!(
        (s, body["status"].as_str()),
        (StatusCode::OK, Some("queued")),
        "{body}"
    );
    // Queued now, and one never stuck: nothing to retry.
    for id in ["d2", "d1"] {
        let (s, body) = a
            .post(&format!("/v1/delegations/{id}/retry"), json!({}))
            .await;
        assert_eq!(s, StatusCode::CONFLICT, "{id}: {body}");
        assert_eq!(body["field"], "status");
    }
    let (s, _) = a.post("/v1/delegations/nope/retry", json!({})).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, body) = a.get("/v1/delegations?status=sleeping").await;
    assert_eq!(
        (s, body["field"].as_str()),
        (StatusCode::BAD_REQUEST, Some("status"))
    );
    a.shutdown().await;
}
