//! Delivering one queue item to one workspace.
//!
//! A [`Dispatcher`] answers one of three things: delivered (with the
//! workspace's response), busy (try later, not a failure), or an error with a
//! message. Whatever comes back on the wire goes through [`classify`], which
//! never panics: a missing or odd field is an error that says what arrived.
//! An agent platform this replaces was taken down for 25 minutes by an unchecked type
//! assertion on exactly such a response.

mod a2a;
pub mod egress;
mod fake;

use std::time::Duration;

pub use a2a::A2aDispatcher;
pub use fake::{Behavior, FakeDispatcher};

use crate::model::workspace::Workspace;

/// One delivery: the item's body to the workspace's URL.
#[derive(Debug, Clone)]
pub struct Delivery {
    pub item_id: i64,
    pub workspace: Workspace,
    pub method: String,
    /// The exact JSON text to send.
    pub body: String,
    pub idempotency_key: Option<String>,
}

/// How a delivery went, when it went somewhere.
#[derive(Debug, Clone, PartialEq)]
pub enum DispatchOutcome {
    /// The workspace took it; its response body, as received.
    Delivered { response: String },
    /// The workspace has no room now (429, 503, or a `{"queued": true}` 202).
    Busy { reason: String },
}

/// Why a delivery failed. Every variant renders as a message an operator can act on.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum DispatchError {
    #[error("workspace {workspace} has no URL registered")]
    NoUrl { workspace: String },
    #[error("could not reach {url}: {reason}")]
    Unreachable { url: String, reason: String },
    #[error("delivery timed out after {0:?}")]
    Timeout(Duration),
    #[error("workspace answered HTTP {status}: {body}")]
    Status { status: u16, body: String },
    #[error("workspace answered HTTP {status} with {problem}: {body}")]
    BadResponse {
        status: u16,
        problem: &'static str,
        body: String,
    },
    #[error("workspace answered a JSON-RPC error {code}: {message}")]
    Rpc { code: i64, message: String },
    #[error("dispatcher panicked: {0}")]
    Panicked(String),
    #[error(
        "workspace answered HTTP {status}, a redirect to {location}; redirects are not followed"
    )]
    Redirect { status: u16, location: String },
    #[error("workspace answered more than {limit} bytes; the answer was not kept")]
    TooLarge { limit: usize },
    #[error("not delivered: {0}")]
    Refused(String),
    #[error("{0}")]
    Other(String),
}

/// Delivers bodies to workspaces. The binary uses [`A2aDispatcher`]; tests
/// and the demo use [`FakeDispatcher`]; an embedding host may bring its own.
#[async_trait::async_trait]
pub trait Dispatcher: Send + Sync + 'static {
    async fn deliver(&self, delivery: &Delivery) -> Result<DispatchOutcome, DispatchError>;
}

/// At most this much of a body is quoted in an error message.
const QUOTE_LIMIT: usize = 300;

/// A body fit for an error message: lossy UTF-8, cut at a char boundary.
pub fn quote(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    if text.len() <= QUOTE_LIMIT {
        return text.into_owned();
    }
    let mut end = QUOTE_LIMIT;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}… ({} bytes)", &text[..end], body.len())
}

/// Reads an HTTP answer from a workspace. 2xx with a JSON-RPC `result` is
/// delivered; a 202 `{"queued": true}` or 429/503 is busy; a JSON-RPC `error`,
/// a body that is not JSON or has neither field, and any other status are
/// errors that quote what came back.
pub fn classify(status: u16, body: &[u8]) -> Result<DispatchOutcome, DispatchError> {
    if status == 429 || status == 503 {
        return Ok(DispatchOutcome::Busy {
            reason: format!("workspace answered HTTP {status}"),
        });
    }
    if !(200..300).contains(&status) {
        return Err(DispatchError::Status {
            status,
            body: quote(body),
        });
    }
    let bad = |problem| DispatchError::BadResponse {
        status,
        problem,
        body: quote(body),
    };
    let value: serde_json::Value =
        serde_json::from_slice(body).map_err(|_| bad("a body that is not JSON"))?;
    let object = value
        .as_object()
        .ok_or_else(|| bad("JSON that is not an object"))?;
    if object.get("queued").and_then(|q| q.as_bool()) == Some(true) {
        return Ok(DispatchOutcome::Busy {
            reason: "workspace queued the message itself (busy)".to_string(),
        });
    }
    if let Some(error) = object.get("error") {
        let code = error.get("code").and_then(|c| c.as_i64()).unwrap_or(0);
        let message = error
            .get("message")
            .and_then(|m| m.as_str())
            .map(str::to_string)
            .unwrap_or_else(|| quote(error.to_string().as_bytes()));
        return Err(DispatchError::Rpc { code, message });
    }
    if object.contains_key("result") {
        return Ok(DispatchOutcome::Delivered {
            response: String::from_utf8_lossy(body).into_owned(),
        });
    }
    Err(bad("JSON-RPC with neither result nor error"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classify_reads_every_kind_of_answer_without_panicking() {
        let ok = br#"{"jsonrpc":"2.0","id":1,"result":{"kind":"message","parts":[{"kind":"text","text":"hi"}]}}"#;
        assert!(matches!(
            classify(200, ok),
            Ok(DispatchOutcome::Delivered { .. })
        ));
        assert!(matches!(
            classify(202, br#"{"queued":true,"queue_id":3}"#),
            Ok(DispatchOutcome::Busy { .. })
        ));
        assert!(matches!(
            classify(429, b""),
            Ok(DispatchOutcome::Busy { .. })
        ));
        assert!(matches!(
            classify(503, b"down"),
            Ok(DispatchOutcome::Busy { .. })
        ));
        assert_eq!(
            classify(500, b"kaboom").unwrap_err().to_string(),
            "workspace answered HTTP 500: kaboom"
        );
        assert_eq!(
            classify(200, b"<html>").unwrap_err().to_string(),
            "workspace answered HTTP 200 with a body that is not JSON: <html>"
        );
        assert_eq!(
            classify(200, b"[1,2]").unwrap_err().to_string(),
            "workspace answered HTTP 200 with JSON that is not an object: [1,2]"
        );
        assert_eq!(
            classify(200, br#"{"jsonrpc":"2.0"}"#).unwrap_err().to_string(),
            "workspace answered HTTP 200 with JSON-RPC with neither result nor error: {\"jsonrpc\":\"2.0\"}"
        );
        // The crash that took a platform down: an error object without a string message.
        assert_eq!(
            classify(200, br#"{"error":{"code":-32000,"message":7}}"#)
                .unwrap_err()
                .to_string(),
            "workspace answered a JSON-RPC error -32000: {\"code\":-32000,\"message\":7}"
        );
        assert!(classify(200, &[0xff, 0xfe]).is_err());
    }

    #[test]
    fn quote_cuts_long_bodies_at_a_char_boundary() {
        let long = "é".repeat(400);
        let q = quote(long.as_bytes());
        assert!(q.ends_with("(800 bytes)"), "{q}");
    }
}
