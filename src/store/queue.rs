//! The delivery queue's contract: durable, priority-ordered, exactly claimed.
//!
//! Every message to a workspace (a cron fire, a message for a busy agent, a
//! retry) is a row here. The QueueDrainActor owns these rows: it claims them
//! under a lease, dispatches them, and records the outcome. Each outcome write
//! is fenced by the claim's lease token, so a node whose lease was rescued and
//! re-claimed elsewhere cannot overwrite the newer claim's result.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::StoreError;

/// A priority: higher is claimed first. Named levels from the design, but
/// any integer is accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Priority(pub i32);

impl Priority {
    pub const CRITICAL: Priority = Priority(100);
    pub const TASK: Priority = Priority(50);
    pub const INFO: Priority = Priority(10);
}

impl Default for Priority {
    fn default() -> Self {
        Priority::TASK
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("priority: {0:?} is not critical, task, info or a whole number")]
pub struct BadPriority(pub String);

impl FromStr for Priority {
    type Err = BadPriority;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "critical" => Ok(Priority::CRITICAL),
            "task" => Ok(Priority::TASK),
            "info" => Ok(Priority::INFO),
            other => other
                .parse::<i32>()
                .map(Priority)
                .map_err(|_| BadPriority(s.to_string())),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum QueueStatus {
    Queued,
    Dispatched,
    Completed,
    Failed,
    Expired,
}

impl QueueStatus {
    pub const ALL: [QueueStatus; 5] = [
        QueueStatus::Queued,
        QueueStatus::Dispatched,
        QueueStatus::Completed,
        QueueStatus::Failed,
        QueueStatus::Expired,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            QueueStatus::Queued => "queued",
            QueueStatus::Dispatched => "dispatched",
            QueueStatus::Completed => "completed",
            QueueStatus::Failed => "failed",
            QueueStatus::Expired => "expired",
        }
    }

    pub fn parse(text: &str) -> Result<Self, StoreError> {
        QueueStatus::ALL
            .into_iter()
            .find(|s| s.as_str() == text)
            .ok_or_else(|| StoreError::Corrupt {
                table: "queue_items",
                column: "status",
                value: text.to_string(),
            })
    }

    /// An end state: the item will never be dispatched again.
    pub fn is_final(self) -> bool {
        matches!(
            self,
            QueueStatus::Completed | QueueStatus::Failed | QueueStatus::Expired
        )
    }
}

impl fmt::Display for QueueStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What to enqueue.
#[derive(Debug, Clone, PartialEq)]
pub struct NewQueueItem {
    pub workspace: String,
    pub caller: Option<String>,
    pub priority: Priority,
    /// The JSON-RPC method (`message/send` unless told otherwise).
    pub method: String,
    /// The exact JSON text to send.
    pub body: String,
    /// Dedupes against the workspace's active items (queued or dispatched).
    pub idempotency_key: Option<String>,
    /// Not dispatched after this long; then `expired`.
    pub ttl: Option<Duration>,
}

impl NewQueueItem {
    /// A `message/send` of `body` to `workspace` at task priority.
    pub fn new(workspace: impl Into<String>, body: impl Into<String>) -> Self {
        Self {
            workspace: workspace.into(),
            caller: None,
            priority: Priority::TASK,
            method: "message/send".to_string(),
            body: body.into(),
            idempotency_key: None,
            ttl: None,
        }
    }

    pub fn priority(mut self, priority: Priority) -> Self {
        self.priority = priority;
        self
    }

    pub fn key(mut self, key: impl Into<String>) -> Self {
        self.idempotency_key = Some(key.into());
        self
    }

    pub fn ttl(mut self, ttl: Duration) -> Self {
        self.ttl = Some(ttl);
        self
    }

    pub fn caller(mut self, caller: impl Into<String>) -> Self {
        self.caller = Some(caller.into());
        self
    }
}

/// The answer to an enqueue.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Enqueued {
    pub id: i64,
    /// Active items (queued or dispatched) of the workspace, this one included.
    pub depth: u64,
    /// True when the key matched an active item and no new row was written.
    pub deduplicated: bool,
}

/// One row of the queue.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct QueueItem {
    pub id: i64,
    pub workspace: String,
    pub caller: Option<String>,
    pub priority: i32,
    pub method: String,
    pub body: String,
    pub idempotency_key: Option<String>,
    pub status: QueueStatus,
    pub attempts: i32,
    pub max_attempts: i32,
    pub enqueued_at: DateTime<Utc>,
    pub available_at: DateTime<Utc>,
    pub expires_at: Option<DateTime<Utc>>,
    #[serde(skip)]
    pub lease_token: Option<String>,
    pub claimed_by: Option<String>,
    pub lease_expires_at: Option<DateTime<Utc>>,
    pub last_error: Option<String>,
    pub response: Option<String>,
    pub finished_at: Option<DateTime<Utc>>,
}

/// A claim request: up to `limit` items of `workspace`, leased until `lease_until`.
#[derive(Debug, Clone)]
pub struct Claim<'a> {
    pub workspace: &'a str,
    pub limit: u32,
    pub now: DateTime<Utc>,
    pub lease_until: DateTime<Utc>,
    /// Which node holds the lease (for operators and the rescue log).
    pub node: &'a str,
}

/// How a dispatch ended, as the store records it.
#[derive(Debug, Clone, PartialEq)]
pub enum DispatchResult {
    /// Delivered: `completed`, the response kept.
    Delivered { response: String },
    /// The target had no room: back to `queued`, no attempt counted.
    Busy { reason: String },
    /// Failed: `queued` again at `retry_at`, or `failed` when attempts are spent.
    Error {
        message: String,
        retry_at: DateTime<Utc>,
    },
}

/// What recording an outcome did.
#[derive(Debug, Clone, PartialEq)]
pub enum Recorded {
    /// The row changed; it is now in this state.
    Applied(Box<QueueItem>),
    /// The lease was no longer ours (rescued, re-claimed): nothing written.
    LeaseLost,
}

#[async_trait::async_trait]
pub trait QueueStore {
    /// Enqueue one item (deduped by key against the workspace's active items).
    async fn enqueue(
        &self,
        item: &NewQueueItem,
        max_attempts: u32,
        now: DateTime<Utc>,
    ) -> Result<Enqueued, StoreError>;

    /// Enqueue many in one transaction; answers in input order.
    async fn enqueue_batch(
        &self,
        items: &[NewQueueItem],
        max_attempts: u32,
        now: DateTime<Utc>,
    ) -> Result<Vec<Enqueued>, StoreError>;

    /// Claim up to `limit` ready items of a workspace, highest priority then
    /// oldest first, skipping expired ones; each gets a fresh lease token.
    async fn claim(&self, claim: Claim<'_>) -> Result<Vec<QueueItem>, StoreError>;

    /// Record a dispatch outcome for a claimed item, fenced by its lease token.
    async fn record_dispatch(
        &self,
        id: i64,
        lease_token: &str,
        result: &DispatchResult,
        now: DateTime<Utc>,
    ) -> Result<Recorded, StoreError>;

    /// Record many deliveries at once (`completed`, response kept), each fenced
    /// by its lease token: `(id, lease token, response)`. Answers the rows that
    /// changed; an id missing from the answer had lost its lease.
    async fn complete_many(
        &self,
        done: &[(i64, String, String)],
        now: DateTime<Utc>,
    ) -> Result<Vec<QueueItem>, StoreError>;

    /// Give back claimed items that were never dispatched (a node's prefetch
    /// buffer): `queued` again, lease cleared, no attempt counted, place in the
    /// claim order kept. Fenced like an outcome: `(id, lease token)`. Answers
    /// the rows that changed; an id missing from the answer was not ours any more.
    async fn release(
        &self,
        leases: &[(i64, String)],
        now: DateTime<Utc>,
    ) -> Result<Vec<QueueItem>, StoreError>;

    /// Mark `expired` every queued item whose TTL ran out. Answers them.
    async fn expire_due(&self, now: DateTime<Utc>) -> Result<Vec<QueueItem>, StoreError>;

    /// Put back to `queued` every dispatched item whose lease ran out,
    /// counting the lost attempt (`failed` when attempts are spent: a message
    /// that kills its node every time must not do so forever). Answers them.
    async fn rescue_expired_leases(&self, now: DateTime<Utc>)
        -> Result<Vec<QueueItem>, StoreError>;

    /// Workspaces with at least one item ready to claim at `now`.
    async fn ready_workspaces(&self, now: DateTime<Utc>) -> Result<Vec<String>, StoreError>;

    /// Active items (queued + dispatched) of a workspace.
    async fn queue_depth(&self, workspace: &str) -> Result<u64, StoreError>;

    /// Items per status, for all workspaces (metrics).
    async fn queue_counts(&self) -> Result<Vec<(QueueStatus, u64)>, StoreError>;

    /// A workspace's items, newest first, optionally of one status.
    async fn list_queue(
        &self,
        workspace: &str,
        status: Option<QueueStatus>,
        limit: u32,
    ) -> Result<Vec<QueueItem>, StoreError>;

    async fn get_queue_item(&self, id: i64) -> Result<Option<QueueItem>, StoreError>;

    /// Items this node holds leases on (to rebuild in-flight counts after a restart).
    async fn dispatched_by(&self, node: &str) -> Result<Vec<QueueItem>, StoreError>;
}
