//! The delegation ledger: tasks one agent handed to another, tracked with a
//! deadline and heartbeats, whose status only ever moves forward.
//!
//! `queued → dispatched → in_progress → completed | failed | stuck | cancelled`.
//! The first three are *in flight*; the last four are terminal. Any forward
//! move is allowed (skipping is fine), the same status again changes nothing,
//! and the one way back is an operator's retry of a `stuck` delegation to
//! `queued`. The store writes a change as one conditional UPDATE whose
//! `WHERE status IN (…)` is [`DelegationStatus::allowed_predecessors`], so a
//! completion landing during a sweep is never overwritten, on any node.
//!
//! A sweep has two rules: in flight past the deadline → `failed`; otherwise
//! in flight and silent (no beat, or never beat since creation) longer than
//! the threshold → `stuck`. The deadline wins.

use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use serde::Serialize;

use super::limits::DEADLINE_MAX_AHEAD_S;
use super::{text, time, Invalid};

/// How long a delegation may run when its creator names no deadline.
pub const DEFAULT_DEADLINE: TimeDelta = TimeDelta::hours(6);

/// The `error_detail` of a delegation failed by its deadline.
pub const DEADLINE_EXCEEDED: &str = "deadline exceeded";

/// Where a delegation is in its life.
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

    pub fn from_name(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == text)
    }

    /// A status from a request.
    pub fn parse_field(field: &'static str, text: &str) -> Result<Self, Invalid> {
        Self::from_name(text).ok_or_else(|| {
            Invalid::new(
                field,
                format!("unknown delegation status {text:?}: expected one of queued, dispatched, in_progress, completed, failed, stuck, cancelled"),
            )
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

    /// A change to `self` that is the operator's retry (`stuck → queued`):
    /// it clears the old error and restarts the stuck clock.
    pub fn is_retry(self) -> bool {
        self == DelegationStatus::Queued
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

/// A create ready to write: the id chosen and the deadline fixed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PreparedDelegation {
    pub id: String,
    pub caller_workspace_id: Option<String>,
    pub workspace_id: String,
    pub deadline: DateTime<Utc>,
}

impl NewDelegation {
    /// Check ids and the deadline (after `now`, at most a year ahead) and
    /// fill in the defaults.
    pub fn prepare(&self, now: DateTime<Utc>) -> Result<PreparedDelegation, Invalid> {
        text::id("workspace_id", &self.workspace_id)?;
        if let Some(id) = &self.id {
            text::id("id", id)?;
        }
        if let Some(caller) = &self.caller_workspace_id {
            text::id("caller_workspace_id", caller)?;
        }
        let latest = now
            .checked_add_signed(TimeDelta::seconds(DEADLINE_MAX_AHEAD_S))
            .unwrap_or(DateTime::<Utc>::MAX_UTC);
        let deadline = match self.deadline {
            Some(d) if d <= now => {
                return Err(Invalid::new(
                    "deadline",
                    format!("{d} is not after now ({now})"),
                ))
            }
            Some(d) if d > latest => {
                return Err(Invalid::new(
                    "deadline",
                    format!("{d} is more than 366 days ahead"),
                ))
            }
            Some(d) => d,
            None => now
                .checked_add_signed(DEFAULT_DEADLINE)
                .unwrap_or(DateTime::<Utc>::MAX_UTC),
        };
        Ok(PreparedDelegation {
            id: self
                .id
                .clone()
                .unwrap_or_else(|| uuid::Uuid::new_v4().to_string()),
            caller_workspace_id: self.caller_workspace_id.clone(),
            workspace_id: self.workspace_id.clone(),
            deadline,
        })
    }
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

    pub fn validate(&self) -> Result<(), Invalid> {
        if let Some(e) = &self.error_detail {
            text::free("error", e)?;
        }
        if let Some(r) = &self.result {
            text::free("result", r)?;
        }
        Ok(())
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

impl Transition {
    /// What an unmatched conditional UPDATE means, given the row as it is now:
    /// no change (it already has the status), a refusal with the reason, or
    /// `None` when the row moved into an allowed predecessor meanwhile (try again).
    pub fn explain(current: Delegation, to: DelegationStatus) -> Option<Transition> {
        if current.status == to {
            return Some(Transition::Unchanged {
                delegation: current,
            });
        }
        current
            .status
            .refusal(to)
            .map(|reason| Transition::Refused {
                from: current.status,
                to,
                reason,
            })
    }
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

impl DelegationBeatOutcome {
    /// The answer for a beat that matched no in-flight row of `current`.
    pub fn refused(current: &Delegation) -> Self {
        DelegationBeatOutcome::Refused {
            status: current.status,
            reason: format!(
                "delegation is {}; only an in-flight delegation takes heartbeats",
                current.status
            ),
        }
    }
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

/// The stuck rule's cut-off: a delegation whose last sign of life (its last
/// beat, or its creation if it never beat) is before this instant is stuck.
pub fn silent_since(now: DateTime<Utc>, threshold: Duration) -> DateTime<Utc> {
    time::sub_saturating(now, threshold)
}

/// The prefix of a stuck delegation's `error_detail`.
pub const STUCK_PREFIX: &str = "no heartbeat for ";
/// Appended when the delegation never beat at all.
pub const NEVER_BEAT_SUFFIX: &str = " (never beat)";

/// The `error_detail` of a stuck delegation: whole seconds of silence,
/// rounded down. The store writes exactly this text (its SQL is built from
/// the same pieces, and the conformance suite compares the two).
pub fn stuck_reason(last_sign: DateTime<Utc>, now: DateTime<Utc>, never_beat: bool) -> String {
    let secs = time::elapsed(last_sign, now).as_secs();
    let suffix = if never_beat { NEVER_BEAT_SUFFIX } else { "" };
    format!("{STUCK_PREFIX}{secs}s{suffix}")
}

#[cfg(test)]
mod tests {
    use super::DelegationStatus::*;
    use super::*;

    #[test]
    fn forward_moves_are_allowed_and_terminal_ones_never_move() {
        assert_eq!(Queued.refusal(InProgress), None);
        assert_eq!(Dispatched.refusal(Completed), None);
        assert_eq!(
            InProgress.refusal(InProgress),
            None,
            "same status is a no-op"
        );
        assert!(InProgress
            .refusal(Dispatched)
            .unwrap()
            .contains("backwards"));
        for terminal in [Completed, Failed, Cancelled] {
            for to in DelegationStatus::ALL.into_iter().filter(|t| *t != terminal) {
                assert!(terminal.refusal(to).is_some(), "{terminal} → {to}");
            }
        }
    }

    #[test]
    fn only_a_stuck_delegation_can_be_retried() {
        assert_eq!(Stuck.refusal(Queued), None);
        assert!(Queued.is_retry());
        assert!(Failed.refusal(Queued).unwrap().contains("terminal"));
        assert!(InProgress
            .refusal(Queued)
            .unwrap()
            .contains("only a stuck delegation"));
        assert!(Stuck.refusal(Completed).unwrap().contains("retry"));
    }

    #[test]
    fn the_predecessor_lists_are_exactly_the_allowed_moves() {
        for from in DelegationStatus::ALL {
            for to in DelegationStatus::ALL {
                let listed = to.allowed_predecessors().contains(&from);
                let allowed = from != to && from.refusal(to).is_none();
                assert_eq!(listed, allowed, "{from} → {to}");
            }
        }
    }

    #[test]
    fn stuck_reason_counts_whole_seconds_and_says_never_beat() {
        let t = DateTime::<Utc>::UNIX_EPOCH;
        let now = t + TimeDelta::milliseconds(900_999);
        assert_eq!(stuck_reason(t, now, false), "no heartbeat for 900s");
        assert_eq!(
            stuck_reason(t, now, true),
            "no heartbeat for 900s (never beat)"
        );
        assert_eq!(stuck_reason(now, t, false), "no heartbeat for 0s");
        assert_eq!(
            silent_since(now, Duration::from_secs(600)),
            now - TimeDelta::seconds(600)
        );
        assert_eq!(
            silent_since(DateTime::<Utc>::MIN_UTC, Duration::from_secs(1)),
            DateTime::<Utc>::MIN_UTC
        );
    }

    #[test]
    fn a_new_delegation_gets_a_bounded_deadline_and_valid_ids() {
        let now = DateTime::<Utc>::UNIX_EPOCH + TimeDelta::days(1000);
        let p = NewDelegation {
            workspace_id: "w".into(),
            ..Default::default()
        }
        .prepare(now)
        .unwrap();
        assert_eq!(p.deadline, now + DEFAULT_DEADLINE);
        assert_eq!(p.id.len(), 36);
        let past = NewDelegation {
            workspace_id: "w".into(),
            deadline: Some(now),
            ..Default::default()
        };
        assert_eq!(past.prepare(now).unwrap_err().field, "deadline");
        let far = NewDelegation {
            workspace_id: "w".into(),
            deadline: Some(now + TimeDelta::days(400)),
            ..Default::default()
        };
        assert_eq!(far.prepare(now).unwrap_err().field, "deadline");
        let bad_id = NewDelegation {
            id: Some("x".repeat(10_000)),
            workspace_id: "w".into(),
            ..Default::default()
        };
        assert_eq!(bad_id.prepare(now).unwrap_err().field, "id");
    }

    #[test]
    fn an_unmatched_change_is_explained_from_the_current_row() {
        let row = |status| Delegation {
            id: "d".into(),
            caller_workspace_id: None,
            workspace_id: "w".into(),
            status,
            previous_status: None,
            created_at: DateTime::<Utc>::UNIX_EPOCH,
            updated_at: DateTime::<Utc>::UNIX_EPOCH,
            deadline: DateTime::<Utc>::UNIX_EPOCH,
            last_heartbeat: None,
            error_detail: None,
            result: None,
        };
        assert!(matches!(
            Transition::explain(row(Completed), Completed),
            Some(Transition::Unchanged { .. })
        ));
        assert!(matches!(
            Transition::explain(row(Completed), Failed),
            Some(Transition::Refused { .. })
        ));
        assert_eq!(Transition::explain(row(Queued), InProgress), None);
    }
}
