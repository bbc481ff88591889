//! What an outcome does to a claimed queue item, decided once: delivered →
//! `completed`; busy → `queued` again with no attempt counted; an error → one
//! more attempt, `queued` after an exponential backoff or `failed` (dead)
//! when attempts are spent; a lost lease counts as a failed attempt; a
//! buffered item given back keeps its place. The store writes the decision
//! ([`Settled`]) as it is, fenced by the claim's lease token.

use std::time::Duration;

use chrono::{DateTime, Utc};

use super::queue::{QueueItem, QueueStatus};
use super::{text, time};

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
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::queue::fixture::item;
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
}
