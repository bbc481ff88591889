//! `GET /v1/events` on both backends: what happens is streamed as SSE
//! (`id:` the feed's number, `data:` one JSON object with `type`, ids and
//! time); `Last-Event-ID` resumes with what was missed; a bad one is a 400;
//! streams end when the node shuts down.

mod support;

use std::time::Duration;

use axum::body::Body;
use axum::http::{header, Method, Request, StatusCode};
use futures::StreamExt;
use ringmaster::store::Store;
use serde_json::{json, Value};
use support::api::{api, message, Api};
use support::quiet_config;
use tower::ServiceExt;

backend_tests!(
    what_happens_is_streamed_and_a_reconnect_resumes,
    a_bad_last_event_id_is_a_400_naming_it,
);

/// An open event stream: its raw SSE text, read as it comes.
struct Stream {
    body: axum::body::BodyDataStream,
    buffer: String,
}

impl Stream {
    async fn open(a: &Api, last_event_id: Option<u64>) -> Stream {
        let mut req = Request::builder().method(Method::GET).uri("/v1/events");
        if let Some(id) = last_event_id {
            req = req.header("last-event-id", id.to_string());
        }
        let resp = a
            .router
            .clone()
            .oneshot(req.body(Body::empty()).unwrap())
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::OK);
        assert_eq!(
            resp.headers()[header::CONTENT_TYPE],
            "text/event-stream",
            "an SSE stream"
        );
        Stream {
            body: resp.into_body().into_data_stream(),
            buffer: String::new(),
        }
    }

    /// The next event's `(id, data)`, skipping keep-alive comments.
    async fn next(&mut self) -> Option<(Option<u64>, Value)> {
        loop {
            if let Some(end) = self.buffer.find("\n\n") {
                let block: String = self.buffer.drain(..end + 2).collect();
                let mut id = None;
                let mut data = None;
                for line in block.lines() {
                    if let Some(v) = line.strip_prefix("id:") {
                        id = v.trim().parse().ok();
                    } else if let Some(v) = line.strip_prefix("data:") {
                        data = Some(serde_json::from_str(v.trim()).unwrap());
                    }
                }
                if let Some(data) = data {
                    return Some((id, data));
                }
                continue;
            }
            let chunk = tokio::time::timeout(Duration::from_secs(10), self.body.next())
                .await
                .expect("an event within 10 s")?;
            self.buffer
                .push_str(&String::from_utf8_lossy(&chunk.unwrap()));
        }
    }

    /// Events until one of `kind` (returned with everything before it).
    async fn until(&mut self, kind: &str) -> Vec<(Option<u64>, Value)> {
        let mut seen = Vec::new();
        while let Some(e) = self.next().await {
            let done = e.1["type"] == kind;
            seen.push(e);
            if done {
                return seen;
            }
        }
        panic!("the stream ended before a {kind} event: {seen:?}");
    }
}

async fn what_happens_is_streamed_and_a_reconnect_resumes(store: Store) {
    let a = api(store, quiet_config()).await;
    let mut stream = Stream::open(&a, None).await;
    a.busy_workspace("w", "http://127.0.0.1:9/a2a").await;
    let (s, queued) = a.post("/v1/workspaces/w/messages", message("m1")).await;
    assert_eq!(s, StatusCode::ACCEPTED, "{queued}");
    let queue_id = queued["queue_id"].as_i64().unwrap();

    let seen = stream.until("queue.enqueued").await;
    let (first_id, enqueued) = seen.last().cloned().unwrap();
    assert_eq!(enqueued["queue_id"], queue_id, "{enqueued}");
    assert_eq!(enqueued["workspace_id"], "w");
    assert!(enqueued["at"].as_str().is_some(), "{enqueued}");
    let first_id = first_id.expect("every event has an id");
    assert_eq!(enqueued["id"], first_id);

    let (s, _) = a
        .post(&format!("/v1/queue/{queue_id}/cancel"), json!({}))
        .await;
    assert_eq!(s, StatusCode::OK);
    let (_, cancelled) = stream.until("queue.cancelled").await.pop().unwrap();
    assert_eq!(cancelled["queue_id"], queue_id);

    let (s, _) = a
        .post("/v1/delegations", json!({"id": "d1", "workspace_id": "w"}))
        .await;
    assert_eq!(s, StatusCode::CREATED);
    a.post("/v1/delegations/d1/status", json!({"status": "stuck"}))
        .await;
    let (_, stuck) = stream.until("delegation.stuck").await.pop().unwrap();
    assert_eq!(
        (stuck["delegation_id"].as_str(), stuck["from"].as_str()),
        (Some("d1"), Some("queued"))
    );

    // A reconnect with the first event's id hears everything after it, in order.
    let mut resumed = Stream::open(&a, Some(first_id)).await;
    let again = resumed.until("delegation.stuck").await;
    let ids: Vec<u64> = again.iter().map(|(id, _)| id.unwrap()).collect();
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "in order: {ids:?}");
    assert!(ids[0] > first_id, "only what came after: {ids:?}");
    assert!(again.iter().any(|(_, e)| e["type"] == "queue.cancelled"));

    // Shutting down ends the open streams.
    let ringmaster = a.ringmaster.clone();
    tokio::time::timeout(Duration::from_secs(20), ringmaster.shutdown())
        .await
        .expect("shutdown is not held by an open stream");
    loop {
        match tokio::time::timeout(Duration::from_secs(5), stream.next()).await {
            Ok(None) => break,
            Ok(Some(_)) => continue,
            Err(_) => panic!("the stream stayed open after shutdown"),
        }
    }
}

async fn a_bad_last_event_id_is_a_400_naming_it(store: Store) {
    let a = api(store, quiet_config()).await;
    let req = Request::builder()
        .method(Method::GET)
        .uri("/v1/events")
        .header("last-event-id", "yesterday")
        .body(Body::empty())
        .unwrap();
    let (s, body) = a.send(req).await;
    assert_eq!(
        (s, body["field"].as_str()),
        (StatusCode::BAD_REQUEST, Some("Last-Event-ID")),
        "{body}"
    );
    let (s, body) = a.get("/v1/events?last_event_id=-3").await;
    assert_eq!(
        (s, body["field"].as_str()),
        (StatusCode::BAD_REQUEST, Some("last_event_id")),
        "{body}"
    );
    a.shutdown().await;
}
