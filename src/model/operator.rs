//! What an operator may do by hand to the queue and the registry, and when
//! it is refused: the dead-letter redrive (a `failed` or `expired` item back
//! to `queued`, attempts reset), cancelling a `queued` item, and removing a
//! workspace. The store carries these rules out in conditional UPDATEs whose
//! `WHERE status IN (…)` is [`QueueAction::from`]; a refusal is explained
//! from the row as it is ([`QueueAction::refusal`]).

use serde::Serialize;

use super::queue::{QueueItem, QueueStatus};
use super::Invalid;

/// The `last_error` of an item an operator cancelled.
pub const CANCELLED_BY_OPERATOR: &str = "cancelled by an operator";
/// The `last_error` of a queued item whose workspace was removed.
pub const WORKSPACE_REMOVED: &str = "cancelled: its workspace was removed";
/// Items one bulk retry moves at most (the answer says whether more are left).
pub const BULK_RETRY_MAX: u32 = 10_000;

/// The size of one bulk retry: `limit` if given (1 to [`BULK_RETRY_MAX`]).
pub fn bulk_limit(limit: Option<u64>) -> Result<u32, Invalid> {
    match limit {
        None => Ok(BULK_RETRY_MAX),
        Some(n) if (1..=u64::from(BULK_RETRY_MAX)).contains(&n) => Ok(n as u32),
        Some(n) => Err(Invalid::new(
            "limit",
            format!("{n} is out of range: a bulk retry takes 1 to {BULK_RETRY_MAX} items"),
        )),
    }
}

/// Which dead letters a bulk retry takes: `failed` unless told `expired`.
pub fn bulk_status(status: Option<QueueStatus>) -> Result<QueueStatus, Invalid> {
    match status {
        None => Ok(QueueStatus::Failed),
        Some(s) if QueueAction::Retry.from().contains(&s) => Ok(s),
        Some(s) => Err(Invalid::new(
            "status",
            format!("a bulk retry takes failed or expired items, not {s}"),
        )),
    }
}

/// An operator's change to one queue item.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QueueAction {
    /// `failed` or `expired` → `queued`, attempts reset, ready now; an
    /// expiry already past is dropped (else it would expire again at once).
    Retry,
    /// `queued` → `cancelled` (terminal); one being delivered is not stopped.
    Cancel,
}

impl QueueAction {
    /// The statuses the action applies to.
    pub fn from(self) -> &'static [QueueStatus] {
        match self {
            QueueAction::Retry => &[QueueStatus::Failed, QueueStatus::Expired],
            QueueAction::Cancel => &[QueueStatus::Queued],
        }
    }

    pub fn to(self) -> QueueStatus {
        match self {
            QueueAction::Retry => QueueStatus::Queued,
            QueueAction::Cancel => QueueStatus::Cancelled,
        }
    }

    pub fn verb(self) -> &'static str {
        match self {
            QueueAction::Retry => "retried",
            QueueAction::Cancel => "cancelled",
        }
    }

    /// Why the action does not apply to an item in `status`.
    pub fn refusal(self, status: QueueStatus) -> String {
        let allowed: Vec<&str> = self.from().iter().map(|s| s.as_str()).collect();
        let why = match (self, status) {
            (QueueAction::Cancel, QueueStatus::Dispatched) => {
                "it is being delivered right now".to_string()
            }
            (QueueAction::Retry, QueueStatus::Queued | QueueStatus::Dispatched) => {
                "it has not failed: it is still on its way".to_string()
            }
            _ => format!("it is {status}"),
        };
        format!(
            "only a {} item can be {}; {why}",
            allowed.join(" or "),
            self.verb()
        )
    }
}

/// What an operator's change to one item did.
#[derive(Debug, Clone, PartialEq)]
pub enum ItemChange {
    Applied(Box<QueueItem>),
    /// Nothing written: the item is in `status`, which the action does not
    /// apply to.
    Refused {
        status: QueueStatus,
        reason: String,
    },
}

impl ItemChange {
    /// The answer when the conditional UPDATE matched nothing: the row as
    /// it is now explains why.
    pub fn refused(action: QueueAction, current: &QueueItem) -> Self {
        ItemChange::Refused {
            status: current.status,
            reason: action.refusal(current.status),
        }
    }
}

/// What a bulk retry did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct BulkRetried {
    pub retried: u64,
    /// More matching items are left (run it again).
    pub more: bool,
}

/// What removing a workspace did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct WorkspaceRemoved {
    /// Its queued items, now `cancelled` (kept for the failed retention).
    pub cancelled_items: u64,
    /// Its schedules, now disabled (kept, with their history).
    pub paused_schedules: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_takes_only_dead_letters_and_cancel_only_waiting_items() {
        for status in QueueStatus::ALL {
            let retry = QueueAction::Retry.from().contains(&status);
            let cancel = QueueAction::Cancel.from().contains(&status);
            assert_eq!(
                retry,
                matches!(status, QueueStatus::Failed | QueueStatus::Expired)
            );
            assert_eq!(cancel, status == QueueStatus::Queued);
            assert!(
                status.is_final()
                    != (status == QueueStatus::Queued || status == QueueStatus::Dispatched)
            );
        }
        assert!(QueueAction::Cancel.to().is_final());
        assert!(!QueueAction::Retry.to().is_final());
    }

    #[test]
    fn a_bulk_retry_is_bounded_and_takes_only_dead_letters() {
        assert_eq!(bulk_limit(None), Ok(BULK_RETRY_MAX));
        assert_eq!(bulk_limit(Some(1)), Ok(1));
        assert_eq!(
            bulk_limit(Some(u64::from(BULK_RETRY_MAX))),
            Ok(BULK_RETRY_MAX)
        );
        for bad in [0, u64::from(BULK_RETRY_MAX) + 1, u64::MAX] {
            assert_eq!(bulk_limit(Some(bad)).unwrap_err().field, "limit");
        }
        assert_eq!(bulk_status(None), Ok(QueueStatus::Failed));
        assert_eq!(
            bulk_status(Some(QueueStatus::Expired)),
            Ok(QueueStatus::Expired)
        );
        assert_eq!(
            bulk_status(Some(QueueStatus::Queued)).unwrap_err().field,
            "status"
        );
    }

    #[test]
    fn a_refusal_says_what_the_item_is_and_what_would_do() {
        let why = QueueAction::Cancel.refusal(QueueStatus::Dispatched);
        assert!(why.contains("only a queued item can be cancelled"), "{why}");
        assert!(why.contains("being delivered"), "{why}");
        let why = QueueAction::Retry.refusal(QueueStatus::Completed);
        assert!(why.contains("failed or expired"), "{why}");
        assert!(why.contains("completed"), "{why}");
    }
}
