//! Clients that hold connections open: headers that never finish, bodies
//! that never arrive, more connections than the cap. Each is closed or
//! answered within its bound, and the next client is served.

mod support;

use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{header, Method, Request, StatusCode};
use axum::routing::get;
use axum::Router;
use ringmaster::http::serve::{serve, Limits};
use support::api::api;
use support::quiet_config;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const HEADER_TIMEOUT: Duration = Duration::from_millis(300);

/// A server with a short header timeout and room for two connections.
async fn start() -> (String, tokio::sync::oneshot::Sender<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let app = Router::new().route("/healthz", get(|| async { "ok" }));
    let limits = Limits {
        max_connections: 2,
        header_timeout: HEADER_TIMEOUT,
        max_head_bytes: 64 * 1024,
        drain_timeout: Duration::from_secs(1),
    };
    tokio::spawn(serve(listener, app, limits, async {
        let _ = stopped.await;
    }));
    (addr, stop)
}

/// Open a connection and send half a request head.
async fn stall(addr: &str) -> TcpStream {
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    s
}

/// Read until the server closes; how long it took.
async fn closed_within(mut s: TcpStream, bound: Duration) -> Duration {
    let began = Instant::now();
    let mut buf = [0u8; 1024];
    loop {
        match tokio::time::timeout(bound, s.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return began.elapsed(),
            Ok(Ok(_)) => continue,
            Err(_) => panic!("still open after {bound:?}"),
        }
    }
}

async fn get_healthz(addr: &str) -> String {
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut answer = String::new();
    s.read_to_string(&mut answer).await.unwrap();
    answer
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_head_that_never_finishes_is_closed_after_the_header_timeout() {
    let (addr, _stop) = start().await;
    let took = closed_within(stall(&addr).await, Duration::from_secs(5)).await;
    assert!(took < Duration::from_secs(3), "{took:?}");
    // A connection that sends nothing at all is closed too.
    let silent = TcpStream::connect(&addr).await.unwrap();
    closed_within(silent, Duration::from_secs(5)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn past_the_connection_cap_the_next_client_waits_then_is_served() {
    let (addr, _stop) = start().await;
    let a = stall(&addr).await;
    let b = stall(&addr).await;
    let began = Instant::now();
    let answer = tokio::time::timeout(Duration::from_secs(5), get_healthz(&addr))
        .await
        .expect("served once the stalled ones were closed");
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(answer.ends_with("ok"), "{answer}");
    // It waited for room: the two stalled connections held both places.
    assert!(
        began.elapsed() >= HEADER_TIMEOUT / 2,
        "{:?}",
        began.elapsed()
    );
    drop((a, b));
}

/// A body declared and never sent: 408 as JSON once the body timeout passes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_that_never_arrives_gets_a_json_408() {
    let db = support::TestDb::sqlite().await;
    let config = ringmaster::config::Config {
        body_timeout: Duration::from_millis(300),
        ..quiet_config()
    };
    let a = api(db.store.clone(), config).await;
    let (mut tx, body) = futures::channel::mpsc::channel::<Result<Vec<u8>, std::io::Error>>(1);
    use futures::SinkExt;
    tx.send(Ok(b"{\"url\"".to_vec())).await.unwrap();
    let request = Request::builder()
        .method(Method::PUT)
        .uri("/v1/workspaces/w")
        .header(header::CONTENT_TYPE, "application/json")
        .header(header::CONTENT_LENGTH, "100")
        .body(Body::from_stream(body))
        .unwrap();
    let (status, answer) = a.send(request).await;
    assert_eq!(status, StatusCode::REQUEST_TIMEOUT, "{answer}");
    assert!(
        answer["error"]
            .as_str()
            .is_some_and(|e| e.contains("in time")),
        "{answer}"
    );
    drop(tx);
    a.shutdown().await;
}

/// A head past 16 KiB (but under hyper's own 64 KiB) is a JSON 431.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_long_head_gets_a_json_431() {
    let db = support::TestDb::sqlite().await;
    let a = api(db.store.clone(), quiet_config()).await;
    let request = Request::builder()
        .method(Method::GET)
        .uri("/healthz")
        .header("x-padding", "p".repeat(20 * 1024))
        .body(Body::empty())
        .unwrap();
    let (status, answer) = a.send(request).await;
    assert_eq!(
        status,
        StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
        "{answer}"
    );
    assert!(answer["error"].is_string(), "{answer}");
    a.shutdown().await;
}

/// Requests hyper refuses by itself (a malformed request line, a head past
/// its buffer) are answered with JSON too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn protocol_level_refusals_are_json() {
    let (addr, _stop) = start().await;
    let huge = format!(
        "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Pad: {}\r\n\r\n",
        "p".repeat(80 * 1024)
    );
    for (request, status) in [
        ("NOT HTTP AT ALL\r\n\r\n".to_string(), "400"),
        (
            "GET /healthz HTTP/1.1\r\nBad Header\r\n\r\n".to_string(),
            "400",
        ),
        (huge, "431"),
    ] {
        let mut s = TcpStream::connect(&addr).await.unwrap();
        let _ = s.write_all(request.as_bytes()).await;
        let mut answer = Vec::new();
        let _ = tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut answer)).await;
        let answer = String::from_utf8_lossy(&answer).to_string();
        assert!(
            answer.starts_with(&format!("HTTP/1.1 {status}")),
            "{answer}"
        );
        let (head, body) = answer.split_once("\r\n\r\n").unwrap();
        assert!(head.contains("content-type: application/json"), "{head}");
        let json: serde_json::Value = serde_json::from_str(body).unwrap();
        assert!(json["error"].is_string(), "{body}");
    }
    // And an ordinary request on the same server is untouched.
    assert!(get_healthz(&addr).await.ends_with("ok"));
}
