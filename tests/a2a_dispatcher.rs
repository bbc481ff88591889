//! The A2A HTTP dispatcher against a local server: every kind of answer.

use std::time::Duration;

use axum::http::StatusCode;
use axum::routing::post;
use axum::Router;
use ringmaster::dispatch::{A2aDispatcher, Delivery, DispatchError, DispatchOutcome, Dispatcher};
use ringmaster::model::a2a::a2a_message;
use ringmaster::model::workspace::{Workspace, WorkspaceStatus};

async fn server() -> String {
    let app = Router::new()
        .route(
            "/ok",
            post(|body: String| async move {
                let request: serde_json::Value = serde_json::from_str(&body).unwrap();
                let text = request["params"]["message"]["parts"][0]["text"].as_str().unwrap().to_string();
                serde_json::json!({"jsonrpc": "2.0", "id": request["id"], "result": {"kind": "message", "parts": [{"kind": "text", "text": format!("echo {text}")}]}}).to_string()
            }),
        )
        .route("/queued", post(|| async { (StatusCode::ACCEPTED, r#"{"queued":true,"queue_id":"q1","queue_depth":3}"#) }))
        .route("/busy", post(|| async { (StatusCode::TOO_MANY_REQUESTS, "slow down") }))
        .route("/unavailable", post(|| async { (StatusCode::SERVICE_UNAVAILABLE, "") }))
        .route("/error", post(|| async { (StatusCode::INTERNAL_SERVER_ERROR, "kaboom") }))
        .route("/bad-json", post(|| async { (StatusCode::OK, "{\"result\": oops") }))
        .route("/rpc-error", post(|| async { (StatusCode::OK, r#"{"jsonrpc":"2.0","id":1,"error":{"code":-32601,"message":"method not found"}}"#) }))
        .route(
            "/slow",
            post(|| async {
                tokio::time::sleep(Duration::from_secs(5)).await;
                "{}"
            }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{addr}")
}

fn delivery(url: Option<String>) -> Delivery {
    Delivery {
        item_id: 1,
        workspace: Workspace {
            id: "agent".into(),
            url,
            max_concurrent: 1,
            active_tasks: 0,
            status: WorkspaceStatus::Online,
            last_heartbeat: None,
        },
        method: "message/send".into(),
        body: a2a_message("key-1", "ping"),
        idempotency_key: Some("key-1".into()),
    }
}

#[tokio::test]
async fn every_kind_of_answer_is_classified() {
    let base = server().await;
    let d = A2aDispatcher::new(Duration::from_millis(500));
    let at = |path: &str| delivery(Some(format!("{base}{path}")));

    match d.deliver(&at("/ok")).await.unwrap() {
        DispatchOutcome::Delivered { response } => {
            assert_eq!(
                ringmaster::model::a2a::response_text(&response),
                "echo ping"
            );
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        d.deliver(&at("/queued")).await.unwrap(),
        DispatchOutcome::Busy { .. }
    ));
    assert_eq!(
        d.deliver(&at("/busy")).await.unwrap(),
        DispatchOutcome::Busy {
            reason: "workspace answered HTTP 429".into()
        }
    );
    assert!(matches!(
        d.deliver(&at("/unavailable")).await.unwrap(),
        DispatchOutcome::Busy { .. }
    ));
    assert_eq!(
        d.deliver(&at("/error")).await.unwrap_err().to_string(),
        "workspace answered HTTP 500: kaboom"
    );
    assert_eq!(
        d.deliver(&at("/bad-json")).await.unwrap_err().to_string(),
        "workspace answered HTTP 200 with a body that is not JSON: {\"result\": oops"
    );
    assert_eq!(
        d.deliver(&at("/rpc-error")).await.unwrap_err().to_string(),
        "workspace answered a JSON-RPC error -32601: method not found"
    );
    assert_eq!(
        d.deliver(&at("/slow")).await.unwrap_err(),
        DispatchError::Timeout(Duration::from_millis(500))
    );
    assert_eq!(
        d.deliver(&delivery(None)).await.unwrap_err().to_string(),
        "workspace agent has no URL registered"
    );
    let closed = d
        .deliver(&delivery(Some("http://127.0.0.1:1/".into())))
        .await
        .unwrap_err();
    assert!(
        closed
            .to_string()
            .starts_with("could not reach http://127.0.0.1:1/"),
        "{closed}"
    );
}
