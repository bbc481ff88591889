//! A local A2A agent for tests of the whole binary: answers every
//! `message/send` (after an optional pause) and remembers every messageId it
//! was sent, so a test can count deliveries exactly.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::routing::post;
use axum::Router;
use serde_json::{json, Value};

#[derive(Clone)]
pub struct Agent {
    pub url: String,
    seen: Arc<Mutex<Vec<(String, Instant)>>>,
    pause_ms: Arc<AtomicU64>,
    failing: Arc<AtomicBool>,
}

impl Agent {
    pub async fn start() -> Agent {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let pause_ms = Arc::new(AtomicU64::new(0));
        let failing = Arc::new(AtomicBool::new(false));
        let (log, pause, fail) = (seen.clone(), pause_ms.clone(), failing.clone());
        let app = Router::new().route(
            "/a2a",
            post(move |body: String| {
                let (log, pause, fail) = (log.clone(), pause.clone(), fail.clone());
                async move {
                    if fail.load(Ordering::SeqCst) {
                        return (axum::http::StatusCode::INTERNAL_SERVER_ERROR, "down".to_string());
                    }
                    let request: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
                    let id = request
                        .pointer("/params/message/messageId")
                        .and_then(Value::as_str)
                        .unwrap_or("")
                        .to_string();
                    let ms = pause.load(Ordering::SeqCst);
                    if ms > 0 {
                        tokio::time::sleep(Duration::from_millis(ms)).await;
                    }
                    log.lock().unwrap().push((id.clone(), Instant::now()));
                    let answer = json!({"jsonrpc": "2.0", "id": request["id"], "result": {"kind": "message",
                        "parts": [{"kind": "text", "text": format!("done {id}")}]}});
                    (axum::http::StatusCode::OK, answer.to_string())
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Agent {
            url: format!("http://{addr}/a2a"),
            seen,
            pause_ms,
            failing,
        }
    }

    /// Answer every message with HTTP 500 (until told otherwise).
    pub fn fail(&self, failing: bool) {
        self.failing.store(failing, Ordering::SeqCst);
    }

    /// Answer each message only after `pause`.
    pub fn pause(&self, pause: Duration) {
        self.pause_ms
            .store(pause.as_millis() as u64, Ordering::SeqCst);
    }

    /// Every messageId received, in order (answered or not yet answered
    /// requests are recorded once the answer is being sent).
    pub fn seen(&self) -> Vec<String> {
        self.seen
            .lock()
            .unwrap()
            .iter()
            .map(|(k, _)| k.clone())
            .collect()
    }

    /// Every messageId received, with when.
    pub fn receipts(&self) -> Vec<(String, Instant)> {
        self.seen.lock().unwrap().clone()
    }
}
