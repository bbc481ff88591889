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

/// An agent that counts how often it was reached, redirects, floods, or
/// answers a long stream.
async fn hostile_server(hits: std::sync::Arc<std::sync::atomic::AtomicUsize>) -> String {
    use axum::response::IntoResponse;
    use std::sync::atomic::Ordering;
    let app = Router::new()
        .route(
            "/target",
            post(move || {
                let hits = hits.clone();
                async move {
                    hits.fetch_add(1, Ordering::SeqCst);
                    r#"{"jsonrpc":"2.0","id":1,"result":{"kind":"message","parts":[]}}"#
                }
            }),
        )
        .route(
            "/redirect",
            post(|| async {
                (StatusCode::TEMPORARY_REDIRECT, [("location", "/target")]).into_response()
            }),
        )
        .route(
            "/moved",
            post(|| async {
                (
                    StatusCode::MOVED_PERMANENTLY,
                    [("location", "http://169.254.169.254/latest")],
                )
                    .into_response()
            }),
        )
        .route(
            "/flood",
            post(|| async {
                // 50 MB, streamed: the cap must stop reading, not buffer it.
                let chunk = axum::body::Bytes::from(vec![b'x'; 1 << 20]);
                let stream = futures::stream::iter(
                    (0..50).map(move |_| Ok::<_, std::io::Error>(chunk.clone())),
                );
                axum::body::Body::from_stream(stream)
            }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{addr}")
}

#[tokio::test]
async fn redirects_are_not_followed_and_name_their_location() {
    let hits = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let base = hostile_server(hits.clone()).await;
    let d = A2aDispatcher::new(Duration::from_secs(2));
    let err = d
        .deliver(&delivery(Some(format!("{base}/redirect"))))
        .await
        .unwrap_err();
    assert_eq!(
        err,
        DispatchError::Redirect {
            status: 307,
            location: "/target".into()
        }
    );
    let err = d
        .deliver(&delivery(Some(format!("{base}/moved"))))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("169.254.169.254"), "{err}");
    assert_eq!(
        hits.load(std::sync::atomic::Ordering::SeqCst),
        0,
        "never followed"
    );
}

#[tokio::test]
async fn an_answer_past_the_cap_is_an_error_and_is_not_kept() {
    let hits = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let base = hostile_server(hits).await;
    let d = A2aDispatcher::with_limits(
        Duration::from_secs(10),
        1 << 20,
        ringmaster::dispatch::egress::Allowed::default(),
    );
    let began = std::time::Instant::now();
    let err = d
        .deliver(&delivery(Some(format!("{base}/flood"))))
        .await
        .unwrap_err();
    assert_eq!(err, DispatchError::TooLarge { limit: 1 << 20 });
    assert!(
        began.elapsed() < Duration::from_secs(5),
        "{:?}",
        began.elapsed()
    );
}

#[tokio::test]
async fn link_local_and_unlisted_addresses_are_refused_before_connecting() {
    use ringmaster::dispatch::egress::Allowed;
    let d = A2aDispatcher::new(Duration::from_secs(2));
    for url in [
        "http://169.254.169.254/latest/meta-data",
        "http://[fe80::1]:8080/",
    ] {
        let err = d.deliver(&delivery(Some(url.into()))).await.unwrap_err();
        assert!(matches!(err, DispatchError::Refused(_)), "{url}: {err}");
    }
    // An allow list: only what it names is reached.
    let only_ten = Allowed::new(Some(&["10.0.0.0/8".to_string()])).unwrap();
    let d = A2aDispatcher::with_limits(Duration::from_secs(2), 1 << 20, only_ten);
    let err = d
        .deliver(&delivery(Some("http://127.0.0.1:1/".into())))
        .await
        .unwrap_err();
    assert!(matches!(err, DispatchError::Refused(_)), "{err}");
    let err = d
        .deliver(&delivery(Some("http://localhost:1/".into())))
        .await
        .unwrap_err();
    assert!(matches!(err, DispatchError::Refused(_)), "{err}");
    // Listed explicitly, link-local is allowed (and then simply unreachable).
    let metadata = Allowed::new(Some(&["169.254.0.0/16".to_string()])).unwrap();
    let d = A2aDispatcher::with_limits(Duration::from_millis(300), 1 << 20, metadata);
    let err = d
        .deliver(&delivery(Some("http://169.254.1.1:9/".into())))
        .await
        .unwrap_err();
    assert!(!matches!(err, DispatchError::Refused(_)), "{err}");
}

#[tokio::test]
async fn credentials_in_a_url_never_reach_an_error() {
    let d = A2aDispatcher::new(Duration::from_millis(500));
    let err = d
        .deliver(&delivery(Some("http://user:s3cret@127.0.0.1:1/a2a".into())))
        .await
        .unwrap_err();
    assert!(!err.to_string().contains("s3cret"), "{err}");
}
