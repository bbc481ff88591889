//! The delivery queue's items and the rules of their life.
//!
//! `queued → dispatched` (a claim, under a lease) `→ completed | queued | failed`
//! (the outcome), `queued → expired` (TTL), `dispatched → queued` (released
//! unused from a prefetch buffer, or the lease rescued). What an outcome does
//! to a claimed item is [`super::outcome`]'s to decide.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::limits::{within, PRIORITY_MAX, PRIORITY_MIN, TTL_MAX_S};
use super::{text, time, Invalid};

/// A priority: higher is claimed first.
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

impl FromStr for Priority {
    type Err = Invalid;
    /// `critical`, `task`, `info` or a whole number from −1,000 to 1,000.
    fn from_str(s: &str) -> Result<Self, Invalid> {
        match s.trim().to_ascii_lowercase().as_str() {
            "critical" => Ok(Priority::CRITICAL),
            "task" => Ok(Priority::TASK),
            "info" => Ok(Priority::INFO),
            other => {
                let n = other.parse::<i64>().map_err(|_| {
                    Invalid::new(
                        "priority",
                        format!("{s:?} is not critical, task, info or a whole number"),
                    )
                })?;
                let n = within(
                    "priority",
                    n,
                    i64::from(PRIORITY_MIN),
                    i64::from(PRIORITY_MAX),
                )?;
                Ok(Priority(i32::try_from(n).unwrap_or(PRIORITY_MAX)))
            }
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
    /// An operator took it off the queue before it went out.
    Cancelled,
}

impl QueueStatus {
    pub const ALL: [QueueStatus; 6] = [
        QueueStatus::Queued,
        QueueStatus::Dispatched,
        QueueStatus::Completed,
        QueueStatus::Failed,
        QueueStatus::Expired,
        QueueStatus::Cancelled,
    ];

    /// Statuses that still count toward a workspace's depth.
    pub const ACTIVE: [QueueStatus; 2] = [QueueStatus::Queued, QueueStatus::Dispatched];

    pub fn as_str(self) -> &'static str {
        match self {
            QueueStatus::Queued => "queued",
            QueueStatus::Dispatched => "dispatched",
            QueueStatus::Completed => "completed",
            QueueStatus::Failed => "failed",
            QueueStatus::Expired => "expired",
            QueueStatus::Cancelled => "cancelled",
        }
    }

    pub fn from_name(text: &str) -> Option<Self> {
        QueueStatus::ALL.into_iter().find(|s| s.as_str() == text)
    }

    /// A status from a request.
    pub fn parse_field(field: &'static str, text: &str) -> Result<Self, Invalid> {
        Self::from_name(text).ok_or_else(|| {
            Invalid::new(
                field,
                format!("unknown queue status {text:?}: expected queued, dispatched, completed, failed, expired or cancelled"),
            )
        })
    }

    /// An end state: the item will never be dispatched again.
    pub fn is_final(self) -> bool {
        !Self::ACTIVE.contains(&self)
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
    /// Names the item for as long as it is kept: a second enqueue with the
    /// same key (for the same workspace) answers the kept item instead.
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

    /// Every rule an item must pass before it is written: a valid workspace
    /// id, a JSON body, bounded priority and TTL, printable caller and key.
    pub fn validate(&self) -> Result<(), Invalid> {
        text::id("workspace_id", &self.workspace)?;
        within("priority", self.priority.0, PRIORITY_MIN, PRIORITY_MAX)?;
        if let Some(ttl) = self.ttl {
            if ttl < Duration::from_secs(1) {
                return Err(Invalid::new("ttl_s", "must be at least 1 second"));
            }
            if ttl > Duration::from_secs(TTL_MAX_S) {
                return Err(Invalid::new(
                    "ttl_s",
                    format!("is above the limit of {TTL_MAX_S} seconds (30 days)"),
                ));
            }
        }
        if let Some(caller) = &self.caller {
            text::name("caller", caller)?;
        }
        if let Some(key) = &self.idempotency_key {
            text::name("messageId", key)?;
        }
        text::name("method", &self.method)?;
        serde_json::from_str::<serde::de::IgnoredAny>(&self.body)
            .map_err(|e| Invalid::new("body", format!("is not valid JSON: {e}")))?;
        if self.body.contains('\0') {
            return Err(Invalid::new("body", "must not contain NUL characters"));
        }
        Ok(())
    }

    /// When an item enqueued at `now` expires (validated TTLs never overflow).
    pub fn expires_at(&self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.ttl.map(|ttl| time::add_saturating(now, ttl))
    }
}

/// The answer to an enqueue.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Enqueued {
    pub id: i64,
    /// Active items (queued or dispatched) of the workspace, this one included.
    pub depth: u64,
    /// True when the key named an item already kept (active or finished)
    /// and no new row was written.
    pub deduplicated: bool,
    /// The item's status: `queued` for a new one, the kept item's otherwise.
    pub status: QueueStatus,
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

impl QueueItem {
    /// True when `now` is past the item's TTL.
    pub fn expired_at(&self, now: DateTime<Utc>) -> bool {
        self.expires_at.is_some_and(|e| e <= now)
    }
}

/// The order claims take items in: priority first, then age, then id.
pub fn claim_order(items: &mut [QueueItem]) {
    items.sort_by(|a, b| {
        b.priority
            .cmp(&a.priority)
            .then(a.enqueued_at.cmp(&b.enqueued_at))
            .then(a.id.cmp(&b.id))
    });
}

/// A queue item fixture for the model's own tests and doc examples.
#[doc(hidden)]
pub mod fixture {
    use super::*;

    pub fn item(attempts: i32, max_attempts: i32) -> QueueItem {
        let at = DateTime::<Utc>::UNIX_EPOCH;
        QueueItem {
            id: 1,
            workspace: "w".into(),
            caller: None,
            priority: 50,
            method: "message/send".into(),
            body: "{}".into(),
            idempotency_key: None,
            status: QueueStatus::Dispatched,
            attempts,
            max_attempts,
            enqueued_at: at,
            available_at: at,
            expires_at: None,
            lease_token: Some("lease".into()),
            claimed_by: Some("node-a".into()),
            lease_expires_at: Some(at),
            last_error: None,
            response: None,
            finished_at: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::fixture::item;
    use super::*;

    #[test]
    fn items_are_validated_before_they_are_written() {
        let ok = NewQueueItem::new("w", "{}");
        assert_eq!(ok.validate(), Ok(()));
        assert_eq!(
            NewQueueItem::new("w", "not json")
                .validate()
                .unwrap_err()
                .field,
            "body"
        );
        assert_eq!(
            NewQueueItem::new("", "{}").validate().unwrap_err().field,
            "workspace_id"
        );
        let huge = NewQueueItem::new("w", "{}").ttl(Duration::from_secs(10_000_000_000_000));
        assert_eq!(huge.validate().unwrap_err().field, "ttl_s");
        let zero = NewQueueItem::new("w", "{}").ttl(Duration::ZERO);
        assert_eq!(zero.validate().unwrap_err().field, "ttl_s");
        let prio = NewQueueItem::new("w", "{}").priority(Priority(5000));
        assert_eq!(prio.validate().unwrap_err().field, "priority");
        let key = NewQueueItem::new("w", "{}").key("a\0b");
        assert_eq!(key.validate().unwrap_err().field, "messageId");
    }

    #[test]
    fn priorities_parse_names_and_bounded_numbers() {
        assert_eq!("critical".parse::<Priority>(), Ok(Priority::CRITICAL));
        assert_eq!(" Info ".parse::<Priority>(), Ok(Priority::INFO));
        assert_eq!("-7".parse::<Priority>(), Ok(Priority(-7)));
        assert_eq!("urgent".parse::<Priority>().unwrap_err().field, "priority");
        assert!("99999999999".parse::<Priority>().is_err());
    }

    #[test]
    fn claim_order_is_priority_then_age_then_id() {
        let mut a = item(0, 1);
        a.id = 3;
        let mut b = item(0, 1);
        b.id = 2;
        b.priority = 100;
        let mut c = item(0, 1);
        c.id = 1;
        let mut items = vec![a, b, c];
        claim_order(&mut items);
        assert_eq!(
            items.iter().map(|i| i.id).collect::<Vec<_>>(),
            vec![2, 1, 3]
        );
    }

    #[test]
    fn final_statuses_are_the_ones_never_dispatched_again() {
        assert!(!QueueStatus::Queued.is_final());
        assert!(!QueueStatus::Dispatched.is_final());
        assert!(QueueStatus::Completed.is_final());
        assert!(QueueStatus::Failed.is_final());
        assert!(QueueStatus::Expired.is_final());
        assert_eq!(
            QueueStatus::from_name("expired"),
            Some(QueueStatus::Expired)
        );
        assert!(QueueStatus::parse_field("status", "bogus").is_err());
    }
}
