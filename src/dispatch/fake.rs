//! An in-process dispatcher for tests and the demo, told per workspace how to
//! behave: answer, be busy, answer empty, fail, answer garbage, hang or panic.
//! A workspace's gate can be closed so its deliveries wait (in flight) until
//! the test opens it: that is how tests hold slots full without timing.
//! Answers go through the same [`classify`](super::classify) as real HTTP
//! answers, so the fake exercises the real parsing.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::{classify, Delivery, DispatchError, DispatchOutcome, Dispatcher};

/// How the fake answers a workspace.
#[derive(Debug, Clone, PartialEq)]
pub enum Behavior {
    /// 200 with an A2A message whose text part is this.
    Reply(String),
    /// 200 with an A2A message with no text part.
    Empty,
    /// 503: no room.
    Busy,
    /// 500 with this body.
    Error(String),
    /// 200 with a body that is not JSON.
    Garbage,
    /// Never answers (the caller's timeout must end it).
    Hang,
    /// Panics inside `deliver`.
    Panic,
    /// Answers `Reply` after a pause (for capacity tests).
    Slow(Duration, String),
}

#[derive(Default)]
struct Inner {
    behaviors: Mutex<HashMap<String, Behavior>>,
    delivered: Mutex<Vec<(String, i64, Option<String>)>>,
    in_flight: Mutex<HashMap<String, usize>>,
    max_in_flight: Mutex<HashMap<String, usize>>,
    /// Deliveries in flight over all workspaces, and the most ever.
    total_in_flight: AtomicUsize,
    max_total_in_flight: AtomicUsize,
    calls: AtomicUsize,
    /// Workspaces whose deliveries wait for `open_gate`.
    closed: Mutex<std::collections::HashSet<String>>,
    gate_opened: tokio::sync::Notify,
}

/// Clones share state: keep one in the test, give one to the actor.
#[derive(Clone, Default)]
pub struct FakeDispatcher {
    inner: Arc<Inner>,
}

/// Counts a workspace's concurrent deliveries while alive.
struct InFlight<'a> {
    inner: &'a Inner,
    workspace: String,
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        let mut map = self
            .inner
            .in_flight
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        if let Some(n) = map.get_mut(&self.workspace) {
            *n = n.saturating_sub(1);
        }
        self.inner.total_in_flight.fetch_sub(1, Ordering::SeqCst);
    }
}

impl FakeDispatcher {
    pub fn new() -> Self {
        Self::default()
    }

    /// Answer `workspace` this way from now on (default: `Reply("ok")`).
    pub fn set(&self, workspace: &str, behavior: Behavior) {
        self.inner
            .behaviors
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(workspace.to_string(), behavior);
    }

    /// Successful deliveries so far: (workspace, item id, idempotency key).
    pub fn delivered(&self) -> Vec<(String, i64, Option<String>)> {
        self.inner
            .delivered
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// The most deliveries ever in flight at once for `workspace`.
    pub fn max_in_flight(&self, workspace: &str) -> usize {
        self.inner
            .max_in_flight
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(workspace)
            .copied()
            .unwrap_or(0)
    }

    /// The most deliveries ever in flight at once, all workspaces together.
    pub fn max_total_in_flight(&self) -> usize {
        self.inner.max_total_in_flight.load(Ordering::SeqCst)
    }

    /// From now on, deliveries to `workspace` wait (counted in flight)
    /// until [`open_gate`](Self::open_gate), then answer by its behavior.
    pub fn close_gate(&self, workspace: &str) {
        self.inner
            .closed
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(workspace.to_string());
    }

    pub fn open_gate(&self, workspace: &str) {
        self.inner
            .closed
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(workspace);
        self.inner.gate_opened.notify_waiters();
    }

    async fn pass_gate(&self, workspace: &str) {
        loop {
            let opened = self.inner.gate_opened.notified();
            tokio::pin!(opened);
            // Registered before the check, so an `open_gate` in between is not missed.
            opened.as_mut().enable();
            let closed = self
                .inner
                .closed
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .contains(workspace);
            if !closed {
                return;
            }
            opened.await;
        }
    }

    /// Every call to `deliver`, whatever its outcome.
    pub fn calls(&self) -> usize {
        self.inner.calls.load(Ordering::SeqCst)
    }

    fn enter(&self, workspace: &str) -> InFlight<'_> {
        let mut map = self
            .inner
            .in_flight
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        let n = map.entry(workspace.to_string()).or_insert(0);
        *n += 1;
        let now = *n;
        drop(map);
        let mut max = self
            .inner
            .max_in_flight
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        let m = max.entry(workspace.to_string()).or_insert(0);
        *m = (*m).max(now);
        let total = self.inner.total_in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        self.inner
            .max_total_in_flight
            .fetch_max(total, Ordering::SeqCst);
        InFlight {
            inner: &self.inner,
            workspace: workspace.to_string(),
        }
    }
}

fn reply_body(id: &str, text: Option<&str>) -> String {
    let parts = match text {
        Some(t) => serde_json::json!([{"kind": "text", "text": t}]),
        None => serde_json::json!([]),
    };
    serde_json::json!({
        "jsonrpc": "2.0",
        "id": id,
        "result": {"kind": "message", "role": "agent", "messageId": format!("reply-{id}"), "parts": parts}
    })
    .to_string()
}

#[async_trait::async_trait]
impl Dispatcher for FakeDispatcher {
    async fn deliver(&self, delivery: &Delivery) -> Result<DispatchOutcome, DispatchError> {
        self.inner.calls.fetch_add(1, Ordering::SeqCst);
        let workspace = delivery.workspace.id.as_str();
        let behavior = self
            .inner
            .behaviors
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(workspace)
            .cloned()
            .unwrap_or_else(|| Behavior::Reply("ok".to_string()));
        let _guard = self.enter(workspace);
        self.pass_gate(workspace).await;
        let id = delivery.item_id.to_string();
        let (status, body) = match behavior {
            Behavior::Reply(text) => (200, reply_body(&id, Some(&text))),
            Behavior::Empty => (200, reply_body(&id, None)),
            Behavior::Busy => (503, String::new()),
            Behavior::Error(body) => (500, body),
            Behavior::Garbage => (200, "<<definitely not json".to_string()),
            Behavior::Hang => {
                std::future::pending::<()>().await;
                unreachable!("pending never resolves")
            }
            Behavior::Panic => panic!("fake dispatcher told to panic for {workspace}"),
            Behavior::Slow(pause, text) => {
                tokio::time::sleep(pause).await;
                (200, reply_body(&id, Some(&text)))
            }
        };
        let outcome = classify(status, body.as_bytes());
        if let Ok(DispatchOutcome::Delivered { .. }) = &outcome {
            self.inner
                .delivered
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .push((
                    workspace.to_string(),
                    delivery.item_id,
                    delivery.idempotency_key.clone(),
                ));
        }
        outcome
    }
}
