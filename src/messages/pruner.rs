//! The PrunerActor's vocabulary: one prune, on its timer or asked for (with
//! the instant, so tests need no clock), and what it removed.

use chrono::{DateTime, Utc};
use ractor::RpcReplyPort;

use crate::model::retention::Pruned;
use crate::store::StoreError;

/// What one prune did, as published on the service's bus.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct PruneReport {
    /// The instant the cutoffs were taken from.
    pub at: DateTime<Utc>,
    pub pruned: Pruned,
}

#[derive(Debug, thiserror::Error)]
pub enum PrunerError {
    /// A table could not be pruned. `report` says what the others gave.
    #[error("prune at {} removed {} row(s), then failed: {source}", report.at, report.pruned.total())]
    Prune {
        report: PruneReport,
        #[source]
        source: StoreError,
    },
}

pub enum PrunerMsg {
    /// Remove finished rows past their retention. `now: None` reads the clock.
    Prune {
        now: Option<DateTime<Utc>>,
        reply: Option<RpcReplyPort<Result<PruneReport, PrunerError>>>,
    },
}
