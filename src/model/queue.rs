//! The delivery queue's items and the rules of their life.
//!
//! `queued → dispatched` (a claim, under a lease) `→ completed | queued | failed`
//! (the outcome), `queued → expired` (TTL), `dispatched → queued` (released
//! unused from a prefetch buffer, or the lease rescued). What an outcome does
//! to an item — retry after a backoff, dead after the last attempt, busy
//! without an attempt — is decided here by [`QueueItem::settle`], once; the
//! store writes the decision, fenced by the claim's lease token.

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
}

impl QueueStatus {
    pub const ALL: [QueueStatus; 5] = [
        QueueStatus::Queued,
        QueueStatus::Dispatched,
        QueueStatus::Completed,
        QueueStatus::Failed,
        QueueStatus::Expired,
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
                format!("unknown queue status {text:?}: expected queued, dispatched, completed, failed or expired"),
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

/// How a dispatch ended, as the queue records it.
#[derive(Debug, Clone, PartialEq)]
pub enum DispatchResult {
    /// Delivered: `completed`, the response kept.
    Delivered { response: String },
    /// The target had no room: back to `queued`, no attempt counted.
    Busy { reason: String },
    /// Failed: `queued` again after a backoff, or `failed` when attempts are spent.
    Error { message: String },
}

/// Exponential backoff between failed attempts: `base · 2^(attempt−1)`, at most `max`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    pub base: Duration,
    pub max: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Self {
            base: Duration::from_secs(2),
            max: Duration::from_secs(300),
        }
    }
}

impl Backoff {
    /// The pause after failed attempt number `attempt` (1-based).
    pub fn after(&self, attempt: u32) -> Duration {
        let factor = 1u32
            .checked_shl(attempt.saturating_sub(1).min(20))
            .unwrap_or(u32::MAX);
        self.base.saturating_mul(factor).min(self.max)
    }
}

/// A claimed item's fields after an outcome: the rule's decision, which the
/// store writes as it is (fenced by the lease token, which it also clears).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settled {
    pub status: QueueStatus,
    pub attempts: i32,
    pub available_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
    pub last_error: Option<String>,
    pub response: Option<String>,
}

impl QueueItem {
    /// What `result` does to this claimed item at `now`:
    /// - delivered → `completed`, the response kept;
    /// - busy → `queued` at once, no attempt counted (the agent had no room:
    ///   not the message's fault);
    /// - error → one more attempt; `failed` when attempts reach the item's
    ///   maximum, else `queued` again after `backoff.after(attempt)`.
    pub fn settle(&self, result: &DispatchResult, now: DateTime<Utc>, backoff: Backoff) -> Settled {
        match result {
            DispatchResult::Delivered { response } => Settled {
                status: QueueStatus::Completed,
                attempts: self.attempts,
                available_at: self.available_at,
                finished_at: Some(now),
                last_error: self.last_error.clone(),
                response: Some(text::from_agent(response.clone())),
            },
            DispatchResult::Busy { reason } => Settled {
                status: QueueStatus::Queued,
                attempts: self.attempts,
                available_at: self.available_at,
                finished_at: None,
                last_error: Some(reason.clone()),
                response: None,
            },
            DispatchResult::Error { message } => {
                let attempt = u32::try_from(self.attempts.saturating_add(1)).unwrap_or(1);
                self.failed_attempt(message.clone(), now, backoff.after(attempt))
            }
        }
    }

    /// A lease that ran out before an outcome was written: the node died
    /// mid-delivery, so the attempt counts (a message that kills its node
    /// every time must not do so forever) and the item is ready again at once.
    pub fn after_lost_lease(&self, now: DateTime<Utc>) -> Settled {
        let holder = self.claimed_by.as_deref().unwrap_or("an unknown node");
        self.failed_attempt(
            format!("lease held by {holder} expired before an outcome was recorded"),
            now,
            Duration::ZERO,
        )
    }

    /// Claimed but never sent, and its TTL passed meanwhile: `expired` (no
    /// attempt counted), as it would have been had it stayed queued.
    pub fn expired_unsent(&self, now: DateTime<Utc>) -> Settled {
        Settled {
            status: QueueStatus::Expired,
            attempts: self.attempts,
            available_at: self.available_at,
            finished_at: Some(now),
            last_error: self.last_error.clone(),
            response: None,
        }
    }

    /// Given back unused (a prefetch buffer): `queued`, nothing else changes,
    /// so it keeps its place in the claim order.
    pub fn released(&self) -> Settled {
        Settled {
            status: QueueStatus::Queued,
            attempts: self.attempts,
            available_at: self.available_at,
            finished_at: None,
            last_error: self.last_error.clone(),
            response: None,
        }
    }

    fn failed_attempt(&self, error: String, now: DateTime<Utc>, pause: Duration) -> Settled {
        let attempts = self.attempts.saturating_add(1);
        let dead = attempts >= self.max_attempts;
        Settled {
            status: if dead {
                QueueStatus::Failed
            } else {
                QueueStatus::Queued
            },
            attempts,
            available_at: if dead {
                self.available_at
            } else {
                time::add_saturating(now, pause)
            },
            finished_at: dead.then_some(now),
            last_error: Some(error),
            response: None,
        }
    }

    /// This item as the store holds it after `settled` was written at `now`.
    pub fn with(&self, settled: &Settled) -> QueueItem {
        QueueItem {
            status: settled.status,
            attempts: settled.attempts,
            available_at: settled.available_at,
            finished_at: settled.finished_at,
            last_error: settled.last_error.clone(),
            response: settled.response.clone(),
            lease_token: None,
            claimed_by: None,
            lease_expires_at: None,
            ..self.clone()
        }
    }

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
    use chrono::TimeDelta;

    fn now() -> DateTime<Utc> {
        DateTime::<Utc>::UNIX_EPOCH + TimeDelta::days(10)
    }

    #[test]
    fn backoff_doubles_from_base_and_stops_at_max() {
        let b = Backoff::default();
        assert_eq!(b.after(1), Duration::from_secs(2));
        assert_eq!(b.after(2), Duration::from_secs(4));
        assert_eq!(b.after(5), Duration::from_secs(32));
        assert_eq!(b.after(9), Duration::from_secs(300));
        assert_eq!(b.after(u32::MAX), Duration::from_secs(300));
        assert_eq!(b.after(0), Duration::from_secs(2));
    }

    #[test]
    fn an_error_retries_after_the_backoff_until_the_last_attempt_fails_it() {
        let error = DispatchResult::Error {
            message: "HTTP 500".into(),
        };
        let retry = item(0, 3).settle(&error, now(), Backoff::default());
        assert_eq!(retry.status, QueueStatus::Queued);
        assert_eq!(retry.attempts, 1);
        assert_eq!(retry.available_at, now() + TimeDelta::seconds(2));
        assert_eq!(retry.finished_at, None);
        assert_eq!(retry.last_error.as_deref(), Some("HTTP 500"));
        let dead = item(2, 3).settle(&error, now(), Backoff::default());
        assert_eq!(
            (dead.status, dead.attempts, dead.finished_at),
            (QueueStatus::Failed, 3, Some(now()))
        );
    }

    #[test]
    fn busy_counts_no_attempt_and_delivered_keeps_the_response() {
        let busy = item(2, 3).settle(
            &DispatchResult::Busy {
                reason: "HTTP 503".into(),
            },
            now(),
            Backoff::default(),
        );
        assert_eq!((busy.status, busy.attempts), (QueueStatus::Queued, 2));
        let done = item(1, 3).settle(
            &DispatchResult::Delivered {
                response: "hi\0".into(),
            },
            now(),
            Backoff::default(),
        );
        assert_eq!(done.status, QueueStatus::Completed);
        assert_eq!(done.response.as_deref(), Some("hi\u{FFFD}"));
        assert_eq!(done.finished_at, Some(now()));
    }

    #[test]
    fn a_lost_lease_counts_an_attempt_and_names_the_holder() {
        let rescued = item(0, 5).after_lost_lease(now());
        assert_eq!((rescued.status, rescued.attempts), (QueueStatus::Queued, 1));
        assert_eq!(rescued.available_at, now());
        assert!(rescued.last_error.unwrap().contains("node-a"));
        let dead = item(4, 5).after_lost_lease(now());
        assert_eq!(dead.status, QueueStatus::Failed);
    }

    #[test]
    fn released_items_keep_their_place_and_attempts() {
        let it = item(1, 5);
        let r = it.released();
        assert_eq!(
            (r.status, r.attempts, r.available_at),
            (QueueStatus::Queued, 1, it.available_at)
        );
        let after = it.with(&r);
        assert_eq!(after.lease_token, None);
        assert_eq!(after.status, QueueStatus::Queued);
    }

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
