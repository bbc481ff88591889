//! An A2A agent that answers every `message/send` at once: the far end of a
//! delivery, so a round trip measures ringmaster and not the agent.

use axum::routing::post;
use axum::{Json, Router};
use serde_json::{json, Value};

/// Serve on a free port; answers its URL.
pub async fn start() -> String {
    let app = Router::new().route(
        "/a2a",
        post(|Json(req): Json<Value>| async move {
            Json(json!({"jsonrpc": "2.0", "id": req["id"], "result": {
                "kind": "message", "role": "agent", "messageId": "r",
                "parts": [{"kind": "text", "text": "ok"}]}}))
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{addr}/a2a")
}
