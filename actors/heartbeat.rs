//! The HeartbeatActor: capacity and liveness.
//!
//! Workspaces report their load with `WorkspaceBeat`; the answer is their
//! spare capacity, and a workspace that goes silent past its threshold is
//! marked `offline` on the next `Tick`. Agents working on a delegation report
//! with `DelegationBeat`, which stamps the ledger so the sweeper does not
//! take them for stuck. The other actors report their own ticks
//! with `Alive`, and `Health` says, per actor, when it last ticked, how often
//! the root restarted it, and whether it ticked within twice its interval —
//! the check that would have caught the seeds' scheduler that sat dead for
//! twelve hours.
//!
//! State here is only the liveness board; it is rebuilt within one interval
//! after a restart (every actor ticks again, and the root re-sends restart
//! counts when this actor starts).

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort};
use serde::Serialize;

use super::names::{self, Names};
use super::queue_drain::QueueMsg;
use crate::clock::SharedClock;
use crate::store::{DelegationBeatOutcome, Store, StoreError, Workspace, WorkspaceBeat};

pub struct HeartbeatActor;

pub struct HeartbeatArgs {
    pub names: Names,
    pub store: Store,
    pub clock: SharedClock,
    /// How often the actor ticks on its own (marking silent workspaces offline).
    pub tick: Duration,
    /// No beat for this long → `offline`.
    pub offline_after: Duration,
}

/// The answer to a workspace beat.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BeatAck {
    pub workspace: Workspace,
    /// `max_concurrent − active_tasks`, never negative.
    pub spare_capacity: u32,
}

#[derive(Debug, thiserror::Error)]
pub enum HeartbeatError {
    #[error("workspace id is empty")]
    EmptyWorkspaceId,
    #[error("url: {url:?} is not an http:// or https:// URL")]
    BadUrl { url: String },
    #[error("max_concurrent: must be at least 1")]
    ZeroCapacity,
    #[error("delegation id is empty")]
    EmptyDelegationId,
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
        workspace: String,
        url: Option<String>,
        max_concurrent: u32,
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

struct Tick {
    at: DateTime<Utc>,
    every: Duration,
}

pub struct HeartbeatState {
    args: HeartbeatArgs,
    ticks: BTreeMap<String, Tick>,
    restarts: BTreeMap<String, u32>,
}

impl HeartbeatState {
    fn note_alive(&mut self, actor: String, at: DateTime<Utc>, every: Duration) {
        // A report older than the one we hold (a late message) never moves
        // the last tick backwards.
        match self.ticks.get_mut(&actor) {
            Some(tick) if tick.at >= at => tick.every = every,
            _ => {
                self.ticks.insert(actor, Tick { at, every });
            }
        }
    }

    fn health(&self, now: DateTime<Utc>) -> HealthReport {
        let mut roles: Vec<&String> = self.restarts.keys().chain(self.ticks.keys()).collect();
        roles.sort();
        roles.dedup();
        let actors: Vec<ActorHealth> = roles
            .into_iter()
            .map(|role| {
                let tick = self.ticks.get(role);
                let healthy = tick.is_some_and(|t| {
                    let limit =
                        chrono::Duration::from_std(t.every * 2).unwrap_or(chrono::Duration::MAX);
                    now - t.at <= limit
                });
                ActorHealth {
                    actor: role.clone(),
                    last_tick: tick.map(|t| t.at),
                    interval_ms: tick.map(|t| t.every.as_millis() as u64),
                    restarts: self.restarts.get(role).copied().unwrap_or(0),
                    healthy,
                }
            })
            .collect();
        HealthReport {
            healthy: !actors.is_empty() && actors.iter().all(|a| a.healthy),
            at: now,
            actors,
        }
    }

    async fn register(
        &mut self,
        workspace: &str,
        url: Option<&str>,
        max_concurrent: u32,
    ) -> Result<Workspace, HeartbeatError> {
        if workspace.trim().is_empty() {
            return Err(HeartbeatError::EmptyWorkspaceId);
        }
        if let Some(url) = url {
            if !(url.starts_with("http://") || url.starts_with("https://")) || url.len() < 10 {
                return Err(HeartbeatError::BadUrl {
                    url: url.to_string(),
                });
            }
        }
        if max_concurrent == 0 {
            return Err(HeartbeatError::ZeroCapacity);
        }
        let now = self.args.clock.now();
        let row = self
            .args
            .store
            .register_workspace(workspace, url, max_concurrent, now)
            .await?;
        // A new URL or limit changes what the drain may deliver.
        if let Some(queue) = self.args.names.lookup::<QueueMsg>(names::QUEUE_DRAIN) {
            let _ = queue.cast(QueueMsg::Capacity {
                workspace: row.id.clone(),
                spare: row.spare_capacity(),
            });
        }
        Ok(row)
    }

    async fn beat(&mut self, beat: WorkspaceBeat) -> Result<BeatAck, HeartbeatError> {
        if beat.workspace.trim().is_empty() {
            return Err(HeartbeatError::EmptyWorkspaceId);
        }
        let now = self.args.clock.now();
        let workspace = self.args.store.record_beat(&beat, now).await?;
        let spare_capacity = workspace.spare_capacity();
        // Every beat tells the drain: room wakes delivery now rather than at
        // the next tick, and no room corrects what the drain thought it had.
        if let Some(queue) = self.args.names.lookup::<QueueMsg>(names::QUEUE_DRAIN) {
            let _ = queue.cast(QueueMsg::Capacity {
                workspace: workspace.id.clone(),
                spare: spare_capacity,
            });
        }
        Ok(BeatAck {
            workspace,
            spare_capacity,
        })
    }

    async fn delegation_beat(
        &mut self,
        delegation: &str,
    ) -> Result<DelegationBeatOutcome, HeartbeatError> {
        if delegation.trim().is_empty() {
            return Err(HeartbeatError::EmptyDelegationId);
        }
        let now = self.args.clock.now();
        Ok(self.args.store.beat_delegation(delegation, now).await?)
    }

    async fn tick(&mut self, now: DateTime<Utc>) -> Result<TickReport, HeartbeatError> {
        self.note_alive(names::HEARTBEAT.to_string(), now, self.args.tick);
        let threshold =
            chrono::Duration::from_std(self.args.offline_after).unwrap_or(chrono::Duration::MAX);
        let marked_offline = self
            .args
            .store
            .mark_silent_offline(now - threshold, now)
            .await?;
        for id in &marked_offline {
            tracing::warn!(workspace = %id, "no heartbeat within threshold; marked offline");
        }
        Ok(TickReport { marked_offline })
    }
}

impl Actor for HeartbeatActor {
    type Msg = HeartbeatMsg;
    type State = HeartbeatState;
    type Arguments = HeartbeatArgs;

    async fn pre_start(
        &self,
        _myself: ActorRef<HeartbeatMsg>,
        args: HeartbeatArgs,
    ) -> Result<HeartbeatState, ActorProcessingErr> {
        Ok(HeartbeatState {
            args,
            ticks: BTreeMap::new(),
            restarts: BTreeMap::new(),
        })
    }

    async fn post_start(
        &self,
        myself: ActorRef<HeartbeatMsg>,
        state: &mut HeartbeatState,
    ) -> Result<(), ActorProcessingErr> {
        // First tick at once, so health is known from the start; then the timer.
        let _ = myself.cast(HeartbeatMsg::Tick {
            now: None,
            reply: None,
        });
        myself.send_interval(state.args.tick, || HeartbeatMsg::Tick {
            now: None,
            reply: None,
        });
        Ok(())
    }

    async fn handle(
        &self,
        _myself: ActorRef<HeartbeatMsg>,
        message: HeartbeatMsg,
        state: &mut HeartbeatState,
    ) -> Result<(), ActorProcessingErr> {
        match message {
            HeartbeatMsg::WorkspaceBeat { beat, reply } => {
                let result = state.beat(beat).await;
                if let Err(err) = &result {
                    tracing::warn!(error = %err, "workspace beat not recorded");
                }
                if let Some(reply) = reply {
                    let _ = reply.send(result);
                }
            }
            HeartbeatMsg::Register {
                workspace,
                url,
                max_concurrent,
                reply,
            } => {
                let _ = reply.send(
                    state
                        .register(&workspace, url.as_deref(), max_concurrent)
                        .await,
                );
            }
            HeartbeatMsg::DelegationBeat { delegation, reply } => {
                let result = state.delegation_beat(&delegation).await;
                match &result {
                    // A late beat from an agent that just finished is normal.
                    Ok(DelegationBeatOutcome::Refused { reason, .. }) => {
                        tracing::debug!(%delegation, %reason, "delegation beat refused")
                    }
                    Ok(DelegationBeatOutcome::Stamped { .. }) => {}
                    Err(err) => {
                        tracing::warn!(%delegation, error = %err, "delegation beat not recorded")
                    }
                }
                if let Some(reply) = reply {
                    let _ = reply.send(result);
                }
            }
            HeartbeatMsg::Tick { now, reply } => {
                let now = now.unwrap_or_else(|| state.args.clock.now());
                // A database outage is logged and answered, not a crash: a
                // restart would not bring the database back, and crashing
                // would burn the restart intensity meant for real bugs.
                let result = state.tick(now).await;
                if let Err(err) = &result {
                    tracing::error!(error = %err, "heartbeat tick failed");
                }
                if let Some(reply) = reply {
                    let _ = reply.send(result);
                }
            }
            HeartbeatMsg::Alive { actor, at, every } => state.note_alive(actor, at, every),
            HeartbeatMsg::Restarts(counts) => state.restarts = counts,
            HeartbeatMsg::Health { now, reply } => {
                let now = now.unwrap_or_else(|| state.args.clock.now());
                let _ = reply.send(state.health(now));
            }
        }
        Ok(())
    }
}
