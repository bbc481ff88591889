//! The delegation ledger: tasks one agent handed to another, tracked with a
//! deadline and heartbeats, whose status only ever moves forward.
//!
//! The forward-only rule lives in the writes themselves: every status change
//! is one `UPDATE … WHERE id = ? AND status IN (<allowed predecessors>)`, so a
//! completion that lands while the sweeper runs can never be overwritten by
//! it, on any number of nodes. A refused change is an answer
//! ([`Transition::Refused`]), not an error: the caller asked for something the
//! ledger does not allow, and the HTTP layer turns it into `409`.
//!
//! Owned by the DelegationSweeperActor (sweeps, and the create/status messages
//! HTTP sends it); the HeartbeatActor stamps beats.

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::StoreError;

/// How long a delegation may run when its creator names no deadline.
pub const DEFAULT_DEADLINE: chrono::Duration = chrono::Duration::hours(6);

/// Where a delegation is in its life.
///
/// `queued → dispatched → in_progress → completed | failed | stuck | cancelled`.
/// The first three are *in flight*; the last four are terminal. `stuck` is the
/// one terminal state with a way out: an operator may retry it back to `queued`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DelegationStatus {
    Queued,
    Dispatched,
    InProgress,
    Completed,
    Failed,
    Stuck,
    Cancelled,
}

/// A status name nobody knows (from a request, not from the database).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown delegation status {0:?}: expected one of queued, dispatched, in_progress, completed, failed, stuck, cancelled")]
pub struct UnknownStatus(pub String);

impl DelegationStatus {
    pub const ALL: [DelegationStatus; 7] = [
        DelegationStatus::Queued,
        DelegationStatus::Dispatched,
        DelegationStatus::InProgress,
        DelegationStatus::Completed,
        DelegationStatus::Failed,
        DelegationStatus::Stuck,
        DelegationStatus::Cancelled,
    ];

    /// The statuses the sweeper watches and heartbeats may stamp.
    pub const IN_FLIGHT: [DelegationStatus; 3] = [
        DelegationStatus::Queued,
        DelegationStatus::Dispatched,
        DelegationStatus::InProgress,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            DelegationStatus::Queued => "queued",
            DelegationStatus::Dispatched => "dispatched",
            DelegationStatus::InProgress => "in_progress",
            DelegationStatus::Completed => "completed",
            DelegationStatus::Failed => "failed",
            DelegationStatus::Stuck => "stuck",
            DelegationStatus::Cancelled => "cancelled",
        }
    }

    /// A status read back from the database; anything else is a corrupt row.
    pub fn parse(text: &str) -> Result<Self, StoreError> {
        text.parse().map_err(|_| StoreError::Corrupt {
            table: "delegations",
            column: "status",
            value: text.to_string(),
        })
    }

    pub fn is_in_flight(self) -> bool {
        Self::IN_FLIGHT.contains(&self)
    }

    pub fn is_terminal(self) -> bool {
        !self.is_in_flight()
    }

    /// The statuses from which a change to `self` is allowed: the whole
    /// forward-only rule, used verbatim in the UPDATE's WHERE clause.
    pub fn allowed_predecessors(self) -> &'static [DelegationStatus] {
        use DelegationStatus::*;
        match self {
            // Only an operator's retry of a stuck delegation goes back to the start.
            Queued => &[Stuck],
            Dispatched => &[Queued],
            InProgress => &[Queued, Dispatched],
            Completed | Failed | Stuck | Cancelled => &Self::IN_FLIGHT,
        }
    }

    /// Why `self → to` is not allowed, or `None` when it is (or is a no-op).
    pub fn refusal(self, to: DelegationStatus) -> Option<String> {
        if self == to || to.allowed_predecessors().contains(&self) {
            return None;
        }
        let (from_s, to_s) = (self.as_str(), to.as_str());
        Some(if self == DelegationStatus::Stuck {
            format!("{from_s} is terminal; the only way out is a retry back to queued, not {to_s}")
        } else if self.is_terminal() {
            format!("{from_s} is terminal; a finished delegation never moves again")
        } else if to == DelegationStatus::Queued {
            format!("only a stuck delegation can be retried back to queued; this one is {from_s}")
        } else {
            format!("{from_s} → {to_s} would move backwards")
        })
    }

    /// `'a', 'b'` for an SQL `IN (…)` list. The names are our own constants,
    /// never input, so inlining them is safe and keeps one statement per target.
    pub(crate) fn sql_list(statuses: &[DelegationStatus]) -> String {
        statuses
            .iter()
            .map(|s| format!("'{}'", s.as_str()))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

impl std::str::FromStr for DelegationStatus {
    type Err = UnknownStatus;

    fn from_str(text: &str) -> Result<Self, UnknownStatus> {
        Self::ALL
            .into_iter()
            .find(|s| s.as_str() == text)
            .ok_or_else(|| UnknownStatus(text.to_string()))
    }
}

impl std::fmt::Display for DelegationStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One row of the ledger.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Delegation {
    pub id: String,
    /// The workspace that handed the task over, when known.
    pub caller_workspace_id: Option<String>,
    /// The workspace doing the work.
    pub workspace_id: String,
    pub status: DelegationStatus,
    /// The status before the last change, if it ever changed.
    pub previous_status: Option<DelegationStatus>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub deadline: DateTime<Utc>,
    pub last_heartbeat: Option<DateTime<Utc>>,
    pub error_detail: Option<String>,
    pub result: Option<String>,
}

/// What a caller asks for when it hands work over.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct NewDelegation {
    /// Client-supplied id, so a retried create is idempotent; else a UUID.
    pub id: Option<String>,
    pub caller_workspace_id: Option<String>,
    pub workspace_id: String,
    /// Defaults to creation + [`DEFAULT_DEADLINE`].
    pub deadline: Option<DateTime<Utc>>,
}

/// The answer to a create: the stored row, and whether this call made it.
/// Creating an id that exists returns the existing row untouched.
#[derive(Debug, Clone, PartialEq)]
pub struct Created {
    pub delegation: Delegation,
    pub created: bool,
}

/// A requested status change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusChange {
    pub to: DelegationStatus,
    /// Kept when given; a retry to `queued` clears the old one.
    pub error_detail: Option<String>,
    /// Kept when given.
    pub result: Option<String>,
}

impl StatusChange {
    pub fn to(to: DelegationStatus) -> Self {
        Self {
            to,
            error_detail: None,
            result: None,
        }
    }
}

/// What a status change did.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum Transition {
    /// The row moved from `from` to the requested status.
    Applied {
        from: DelegationStatus,
        delegation: Delegation,
    },
    /// It already had the requested status; nothing was written.
    Unchanged { delegation: Delegation },
    /// The forward-only rule forbids it; nothing was written.
    Refused {
        from: DelegationStatus,
        to: DelegationStatus,
        reason: String,
    },
}

/// What a delegation heartbeat did.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum DelegationBeatOutcome {
    /// An in-flight delegation; `last_heartbeat` now says so.
    Stamped { delegation: Delegation },
    /// A finished delegation takes no beats (a late one from a slow agent is
    /// normal, so this is an answer, not an error).
    Refused {
        status: DelegationStatus,
        reason: String,
    },
}

/// One transition made by a sweep.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Swept {
    pub id: String,
    pub from: DelegationStatus,
    pub to: DelegationStatus,
    /// The `error_detail` written: "deadline exceeded", "no heartbeat for Ns".
    pub reason: String,
}

/// How many rows one sweep moved, by rule.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct SweepCounts {
    pub failed: u64,
    pub stuck: u64,
}

/// The `error_detail` of a delegation failed by its deadline.
pub const DEADLINE_EXCEEDED: &str = "deadline exceeded";

#[async_trait::async_trait]
pub trait DelegationStore {
    /// Insert a delegation `queued` at `now`. An id that exists already
    /// answers the stored row with `created: false` and changes nothing.
    async fn create_delegation(
        &self,
        new: &NewDelegation,
        now: DateTime<Utc>,
    ) -> Result<Created, StoreError>;

    async fn get_delegation(&self, id: &str) -> Result<Option<Delegation>, StoreError>;

    /// Delegations with `status`, oldest first, at most `limit`.
    async fn list_delegations(
        &self,
        status: DelegationStatus,
        limit: u32,
    ) -> Result<Vec<Delegation>, StoreError>;

    /// Move a delegation forward (one conditional UPDATE). A retry of a stuck
    /// one to `queued` restarts its stuck clock at `now`. An unknown id is
    /// [`StoreError::NotFound`].
    async fn set_delegation_status(
        &self,
        id: &str,
        change: &StatusChange,
        now: DateTime<Utc>,
    ) -> Result<Transition, StoreError>;

    /// Stamp `last_heartbeat = now` on an in-flight delegation (never moving
    /// it backwards). An unknown id is [`StoreError::NotFound`].
    async fn beat_delegation(
        &self,
        id: &str,
        now: DateTime<Utc>,
    ) -> Result<DelegationBeatOutcome, StoreError>;

    /// Rule one of a sweep, one statement: every in-flight delegation whose
    /// deadline is before `now` becomes `failed` ("deadline exceeded").
    async fn fail_past_deadline(&self, now: DateTime<Utc>) -> Result<Vec<Swept>, StoreError>;

    /// Rule two, one statement: every in-flight delegation not past its
    /// deadline whose last beat (or creation, if it never beat) is before
    /// `silent_since` becomes `stuck` ("no heartbeat for Ns"). Excluding
    /// past-deadline rows here keeps "deadline wins" true even if rule one
    /// could not run.
    async fn mark_stale_stuck(
        &self,
        silent_since: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<Vec<Swept>, StoreError>;
}
