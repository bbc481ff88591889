//! The real dispatcher: A2A JSON-RPC over HTTP.
//!
//! POSTs the item's body to the workspace's registered URL with a timeout and
//! hands status and body to [`classify`](super::classify).

use std::time::Duration;

use super::{classify, Delivery, DispatchError, DispatchOutcome, Dispatcher};

#[derive(Debug, Clone)]
pub struct A2aDispatcher {
    client: reqwest::Client,
    timeout: Duration,
}

impl A2aDispatcher {
    pub fn new(timeout: Duration) -> Self {
        let client = reqwest::Client::builder()
            .connect_timeout(timeout.min(Duration::from_secs(10)))
            .build()
            .expect("an HTTP client with default TLS-less settings always builds");
        Self { client, timeout }
    }
}

#[async_trait::async_trait]
impl Dispatcher for A2aDispatcher {
    async fn deliver(&self, delivery: &Delivery) -> Result<DispatchOutcome, DispatchError> {
        let url = delivery
            .workspace
            .url
            .as_deref()
            .ok_or_else(|| DispatchError::NoUrl {
                workspace: delivery.workspace.id.clone(),
            })?;
        let mut request = self
            .client
            .post(url)
            .timeout(self.timeout)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(delivery.body.clone());
        if let Some(key) = &delivery.idempotency_key {
            request = request.header("Idempotency-Key", key);
        }
        let response = request.send().await.map_err(|e| {
            if e.is_timeout() {
                DispatchError::Timeout(self.timeout)
            } else {
                DispatchError::Unreachable {
                    url: url.to_string(),
                    reason: e.to_string(),
                }
            }
        })?;
        let status = response.status().as_u16();
        let body = response.bytes().await.map_err(|e| {
            if e.is_timeout() {
                DispatchError::Timeout(self.timeout)
            } else {
                DispatchError::Unreachable {
                    url: url.to_string(),
                    reason: format!("reading the response: {e}"),
                }
            }
        })?;
        classify(status, &body)
    }
}
