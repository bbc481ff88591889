//! Retention: how long finished rows are kept, which rows a prune may take,
//! and how much one prune may do.
//!
//! Finished queue items, schedule runs and finished delegations would
//! otherwise grow forever (three million completed items are a gigabyte on
//! Postgres). A prune removes rows past their retention in bounded batches,
//! oldest first, so it never holds a lock long enough to delay a claim: the
//! rows it deletes are ones no claim or delivery will touch again.

use std::time::Duration;

use chrono::{DateTime, Utc};

use super::delegation::DelegationStatus;
use super::queue::QueueStatus;
use super::time;

/// Rows one prune statement deletes at most.
pub const PRUNE_BATCH: u32 = 1_000;
/// Statements one prune runs at most per table; what is left waits for the
/// next prune (which comes sooner when this one was cut short).
pub const PRUNE_BATCHES: u32 = 100;
/// Every schedule keeps at least its newest runs, however old.
pub const RUNS_KEPT_PER_SCHEDULE: u32 = 10;

/// How long each kind of finished row is kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    /// `completed` queue items.
    pub completed: Duration,
    /// `failed`, `expired` and `cancelled` items, and finished delegations.
    pub failed: Duration,
    /// Schedule runs (but never a schedule's newest [`RUNS_KEPT_PER_SCHEDULE`]).
    pub runs: Duration,
}

impl Default for Retention {
    fn default() -> Self {
        Self {
            completed: Duration::from_secs(86_400),
            failed: Duration::from_secs(7 * 86_400),
            runs: Duration::from_secs(30 * 86_400),
        }
    }
}

/// The instants before which finished rows go, as of one `now`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cutoffs {
    pub completed: DateTime<Utc>,
    pub failed: DateTime<Utc>,
    pub runs: DateTime<Utc>,
}

impl Retention {
    /// `now` minus each retention; a retention reaching before the first
    /// representable instant keeps everything.
    pub fn cutoffs(&self, now: DateTime<Utc>) -> Cutoffs {
        Cutoffs {
            completed: time::sub_saturating(now, self.completed),
            failed: time::sub_saturating(now, self.failed),
            runs: time::sub_saturating(now, self.runs),
        }
    }
}

/// Queue items pruned under the `completed` retention.
pub const QUEUE_COMPLETED: [QueueStatus; 1] = [QueueStatus::Completed];

/// Queue items pruned under the `failed` retention: every other end state.
pub const QUEUE_FAILED: [QueueStatus; 3] = [
    QueueStatus::Failed,
    QueueStatus::Expired,
    QueueStatus::Cancelled,
];

/// Delegations pruned under the `failed` retention. A `stuck` one waits for
/// an operator (it may be retried), so it stays.
pub const DELEGATIONS_FINISHED: [DelegationStatus; 3] = [
    DelegationStatus::Completed,
    DelegationStatus::Failed,
    DelegationStatus::Cancelled,
];

/// What one prune removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Pruned {
    pub queue_completed: u64,
    pub queue_failed: u64,
    pub runs: u64,
    pub delegations: u64,
    /// True when a table had more to prune than one prune may take.
    pub cut_short: bool,
}

impl Pruned {
    pub fn total(&self) -> u64 {
        self.queue_completed + self.queue_failed + self.runs + self.delegations
    }
}

/// How a sequence of batch counts ends: the rows taken, and whether the
/// last batch was full (more may be left).
pub fn batches_done(taken: &[u64]) -> (u64, bool) {
    let total = taken.iter().sum();
    let full = taken.last().is_some_and(|n| *n >= u64::from(PRUNE_BATCH));
    (total, full && taken.len() >= PRUNE_BATCHES as usize)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::delegation::DelegationStatus;

    #[test]
    fn every_end_state_is_pruned_under_exactly_one_retention_and_no_active_one() {
        for status in QueueStatus::ALL {
            let under =
                QUEUE_COMPLETED.contains(&status) as u8 + QUEUE_FAILED.contains(&status) as u8;
            assert_eq!(under, status.is_final() as u8, "{status}");
        }
        for status in DelegationStatus::ALL {
            if DELEGATIONS_FINISHED.contains(&status) {
                assert!(status.is_terminal(), "{status}");
            }
        }
        assert!(!DELEGATIONS_FINISHED.contains(&DelegationStatus::Stuck));
    }

    #[test]
    fn cutoffs_are_now_minus_each_retention_and_never_overflow() {
        let now = DateTime::parse_from_rfc3339("2026-11-30T12:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let c = Retention::default().cutoffs(now);
        assert_eq!(c.completed.to_rfc3339(), "2026-11-29T12:00:00+00:00");
        assert_eq!(c.failed.to_rfc3339(), "2026-11-23T12:00:00+00:00");
        assert_eq!(c.runs.to_rfc3339(), "2026-10-31T12:00:00+00:00");
        let forever = Retention {
            completed: Duration::MAX,
            failed: Duration::from_secs(u64::MAX / 2),
            runs: Duration::ZERO,
        };
        let c = forever.cutoffs(now);
        assert_eq!(c.completed, DateTime::<Utc>::MIN_UTC);
        assert_eq!(c.failed, DateTime::<Utc>::MIN_UTC);
        assert_eq!(c.runs, now);
    }

    #[test]
    fn a_prune_is_cut_short_only_when_every_batch_was_full() {
        assert_eq!(batches_done(&[]), (0, false));
        assert_eq!(batches_done(&[1000, 3]), (1003, false));
        let full = vec![u64::from(PRUNE_BATCH); PRUNE_BATCHES as usize];
        assert_eq!(batches_done(&full), (100_000, true));
    }
}
