//! The HeartbeatActor's vocabulary: workspace and delegation beats,
//! registrations, the actors' own ticks, and the health board.

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use ractor::RpcReplyPort;
use serde::Serialize;

use crate::model::delegation::DelegationBeatOutcome;
use crate::model::workspace::{Registration, Workspace, WorkspaceBeat};
use crate::model::Invalid;
use crate::store::StoreError;

/// The answer to a workspace beat.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BeatAck {
    pub workspace: Workspace,
    /// `max_concurrent − active_tasks`, never negative.
    pub spare_capacity: u32,
}

/// A workspace went silent past its threshold (`online: false`), or beat
/// again after this node marked it so (`online: true`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct WorkspaceEvent {
    pub workspace: String,
    pub online: bool,
    pub at: DateTime<Utc>,
}

#[derive(Debug, thiserror::Error)]
pub enum HeartbeatError {
    #[error(transparent)]
    Invalid(#[from] Invalid),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What one tick did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TickReport {
    /// Workspaces this tick marked offline.
    pub marked_offline: Vec<String>,
}

/// Liveness of one actor.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ActorHealth {
    pub actor: String,
    pub last_tick: Option<DateTime<Utc>>,
    pub interval_ms: Option<u64>,
    pub restarts: u32,
    pub healthy: bool,
}

/// The answer to `Health`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HealthReport {
    pub healthy: bool,
    pub at: DateTime<Utc>,
    pub actors: Vec<ActorHealth>,
}

pub enum HeartbeatMsg {
    /// A workspace's load report; answers its spare capacity.
    WorkspaceBeat {
        beat: WorkspaceBeat,
        reply: Option<RpcReplyPort<Result<BeatAck, HeartbeatError>>>,
    },
    /// An agent still working on `delegation`: stamps its `last_heartbeat`
    /// (clock time). A beat for a finished delegation is answered
    /// `Refused` with the reason, never an error.
    DelegationBeat {
        delegation: String,
        reply: Option<RpcReplyPort<Result<DelegationBeatOutcome, HeartbeatError>>>,
    },
    /// Register a workspace or change its URL and limit.
    Register {
        registration: Registration,
        reply: RpcReplyPort<Result<Workspace, HeartbeatError>>,
    },
    /// Mark silent workspaces offline. `now: None` reads the clock; tests give it.
    Tick {
        now: Option<DateTime<Utc>>,
        reply: Option<RpcReplyPort<Result<TickReport, HeartbeatError>>>,
    },
    /// An actor ticked at `at` and means to tick again within `every`.
    Alive {
        actor: String,
        at: DateTime<Utc>,
        every: Duration,
    },
    /// Restart counts per actor, from the root supervisor.
    Restarts(BTreeMap<String, u32>),
    /// Per-actor liveness as of `now` (or the clock).
    Health {
        now: Option<DateTime<Utc>>,
        reply: RpcReplyPort<HealthReport>,
    },
}
