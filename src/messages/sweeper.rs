//! The DelegationSweeperActor's vocabulary: sweeps, creations and status
//! changes of the ledger, and the transitions it publishes.

use chrono::{DateTime, Utc};
use ractor::RpcReplyPort;
use serde::Serialize;

use crate::model::delegation::{
    Created, DelegationStatus, NewDelegation, StatusChange, SweepCounts, Transition,
};
use crate::model::Invalid;
use crate::store::StoreError;

/// One transition of the ledger, made by a sweep or by a status change sent
/// to the sweeper.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DelegationEvent {
    pub id: String,
    pub from: DelegationStatus,
    pub to: DelegationStatus,
    /// The error detail written with it ("deadline exceeded"), if any.
    pub reason: Option<String>,
    pub at: DateTime<Utc>,
}

/// What one sweep did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct SweepReport {
    /// The instant the sweep judged by.
    pub at: DateTime<Utc>,
    /// In-flight delegations past their deadline, now `failed`.
    pub failed: u64,
    /// In-flight delegations silent past the threshold, now `stuck`.
    pub stuck: u64,
    /// Rules that could not run (logged); 0, 1 or 2.
    pub errors: u64,
}

impl SweepReport {
    pub fn counts(&self) -> SweepCounts {
        SweepCounts {
            failed: self.failed,
            stuck: self.stuck,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SweeperError {
    /// A rule of the sweep hit the database. `report` says what the sweep
    /// still did (the other rule may have run) and counts the errors.
    #[error("delegation sweep at {} had {} error(s) after failing {} and marking {} stuck: {source}",
        report.at, report.errors, report.failed, report.stuck)]
    Sweep {
        report: SweepReport,
        #[source]
        source: StoreError,
    },
    #[error(transparent)]
    Invalid(#[from] Invalid),
    #[error(transparent)]
    Store(#[from] StoreError),
}

pub enum SweeperMsg {
    /// Run both rules as of `now` (`None` reads the clock; tests give it).
    Sweep {
        now: Option<DateTime<Utc>>,
        reply: Option<RpcReplyPort<Result<SweepReport, SweeperError>>>,
    },
    /// Create a delegation (idempotent on a client-supplied id).
    Create {
        new: NewDelegation,
        reply: RpcReplyPort<Result<Created, SweeperError>>,
    },
    /// Move a delegation forward; a refusal is an `Ok(Transition::Refused)`.
    SetStatus {
        id: String,
        change: StatusChange,
        reply: Option<RpcReplyPort<Result<Transition, SweeperError>>>,
    },
}
