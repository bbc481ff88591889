//! The DST policy: what a job does with local times that a spring-forward gap skips or
//! a fall-back overlap repeats. The decisions live here, in one place, so the design's
//! "DST policy" paragraph maps onto a few lines; `spec.rs` only applies them while it
//! walks the timeline.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use super::error::SpecError;

/// What a schedule does with local times that a DST transition skips or repeats.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DstPolicy {
    /// Vixie cron: a fixed-time slot in a spring-forward gap fires once at the first
    /// instant after the gap (several gap slots coalesce into that fire); a fixed-time
    /// slot in a fall-back overlap fires once, in the first fold. Jobs whose minute or
    /// hour is a wildcard follow the clock like `Literal`.
    #[default]
    Vixie,
    /// Temporal / Kubernetes: gap slots are lost, overlap slots fire in both folds.
    Literal,
}

impl FromStr for DstPolicy {
    type Err = SpecError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "vixie" => Ok(DstPolicy::Vixie),
            "literal" => Ok(DstPolicy::Literal),
            _ => Err(SpecError::UnknownDstPolicy(s.to_string())),
        }
    }
}

impl DstPolicy {
    pub fn as_str(self) -> &'static str {
        match self {
            DstPolicy::Vixie => "vixie",
            DstPolicy::Literal => "literal",
        }
    }
}

impl fmt::Display for DstPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What the policy makes of DST for one job.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Rules {
    /// Vixie and fixed-time: slots are appointments that must be kept exactly once.
    appointments: bool,
}

impl Rules {
    /// `fixed_time` says whether the job names wall-clock times (see
    /// `ScheduleSpec::is_fixed_time`); wildcard jobs follow the clock under any policy.
    pub(crate) fn new(policy: DstPolicy, fixed_time: bool) -> Rules {
        Rules {
            appointments: policy == DstPolicy::Vixie && fixed_time,
        }
    }

    /// Slots swallowed by a spring-forward gap fire once, at the first instant after it.
    /// Otherwise they are lost.
    pub(crate) fn fires_at_gap_end(self) -> bool {
        self.appointments
    }

    /// Slots repeated by a fall-back overlap fire again in the second fold. Otherwise
    /// only the first fold fires.
    pub(crate) fn fires_in_second_fold(self) -> bool {
        !self.appointments
    }
}
