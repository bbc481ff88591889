//! The binary's router in process, with a whole ringmaster behind it: how
//! API tests send requests and read `(status, JSON)` back.

use std::sync::Arc;

use axum::body::Body;
use axum::http::{header, Method, Request, StatusCode};
use axum::Router;
use ringmaster::config::Config;
use ringmaster::dispatch::FakeDispatcher;
use ringmaster::store::Store;
use serde_json::Value;
use tower::ServiceExt;

use super::{at, Harness};

/// An A2A `message/send` body whose messageId is `key`.
pub fn message(key: &str) -> Value {
    serde_json::from_str(&ringmaster::model::a2a::a2a_message(key, "hello")).unwrap()
}

pub struct Api {
    pub router: Router,
    pub fake: FakeDispatcher,
    pub ringmaster: Arc<ringmaster::Ringmaster>,
}

pub async fn api(store: Store, config: Config) -> Api {
    let h = Harness::start(store, config, at(2026, 9, 1, 12, 0, 0)).await;
    let ringmaster = Arc::new(h.ringmaster);
    Api {
        router: ringmaster::http::router(ringmaster.clone()),
        fake: h.fake,
        ringmaster,
    }
}

impl Api {
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<&str>,
        token: Option<&str>,
    ) -> (StatusCode, Value) {
        let mut req = Request::builder().method(method).uri(path);
        if let Some(t) = token {
            req = req.header(header::AUTHORIZATION, format!("Bearer {t}"));
        }
        let req = match body {
            Some(b) => req
                .header(header::CONTENT_TYPE, "application/json")
                .body(Body::from(b.to_string())),
            None => req.body(Body::empty()),
        }
        .unwrap();
        self.send(req).await
    }

    /// Any request, as built by the test; the answer's body read as JSON
    /// (or as a JSON string when it is not JSON).
    pub async fn send(&self, req: Request<Body>) -> (StatusCode, Value) {
        let resp = self.router.clone().oneshot(req).await.unwrap();
        let status = resp.status();
        let bytes = axum::body::to_bytes(resp.into_body(), 10 << 20)
            .await
            .unwrap();
        let value = serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()));
        (status, value)
    }

    pub async fn get(&self, path: &str) -> (StatusCode, Value) {
        self.call(Method::GET, path, None, None).await
    }

    pub async fn post(&self, path: &str, body: Value) -> (StatusCode, Value) {
        self.call(Method::POST, path, Some(&body.to_string()), None)
            .await
    }

    pub async fn patch(&self, path: &str, body: Value) -> (StatusCode, Value) {
        self.call(Method::PATCH, path, Some(&body.to_string()), None)
            .await
    }

    pub async fn delete(&self, path: &str) -> (StatusCode, Value) {
        self.call(Method::DELETE, path, None, None).await
    }

    pub async fn put(&self, path: &str, body: Value) -> (StatusCode, Value) {
        self.call(Method::PUT, path, Some(&body.to_string()), None)
            .await
    }

    /// Register `ws` at `url` with no room (one slot, reported busy): its
    /// messages wait in the queue.
    pub async fn busy_workspace(&self, ws: &str, url: &str) {
        let (s, body) = self
            .put(
                &format!("/v1/workspaces/{ws}"),
                serde_json::json!({"url": url, "max_concurrent": 1}),
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{body}");
        let (s, body) = self
            .post(
                &format!("/v1/workspaces/{ws}/heartbeat"),
                serde_json::json!({"active_tasks": 1}),
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{body}");
    }

    pub async fn shutdown(self) {
        drop(self.router);
        self.ringmaster.shutdown().await;
    }
}
