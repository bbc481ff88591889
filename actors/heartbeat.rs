//! The HeartbeatActor: capacity and liveness.
//!
//! Workspaces report their load with `WorkspaceBeat`; the answer is their
//! spare capacity, and every beat or registration tells the drain (room
//! wakes delivery at once; no room corrects its view). A workspace that goes
//! silent past its threshold is marked `offline` on the next `Tick`. Agents
//! working on a delegation report with `DelegationBeat`, which stamps the
//! ledger so the sweeper does not take them for stuck. The other actors
//! report their own ticks with `Alive`, and `Health` reads the [`Board`].
//!
//! State here is only the board; it is rebuilt within one interval after a
//! restart (every actor ticks again, and the root re-sends restart counts).
//! A database error is logged and answered, never a crash: a restart would
//! not bring the database back and would spend the restart intensity meant
//! for bugs.

use std::collections::HashSet;
use std::time::Duration;

use chrono::{DateTime, Utc};
use ractor::{Actor, ActorProcessingErr, ActorRef};

use super::ask::{abandoned, abandoned_opt};
use crate::clock::SharedClock;
use crate::events::EventBus;
use crate::liveness::Board;
use crate::messages::heartbeat::{
    BeatAck, HeartbeatError, HeartbeatMsg, TickReport, WorkspaceEvent,
};
use crate::messages::queue::QueueMsg;
use crate::model::delegation::DelegationBeatOutcome;
use crate::model::workspace::{Registration, Workspace, WorkspaceBeat};
use crate::model::{text, time};
use crate::names::{self, Names};
use crate::store::Store;

pub struct HeartbeatActor;

pub struct HeartbeatArgs {
    pub names: Names,
    pub store: Store,
    pub clock: SharedClock,
    /// How often the actor ticks on its own (marking silent workspaces offline).
    pub tick: Duration,
    /// No beat for this long → `offline`.
    pub offline_after: Duration,
    /// Where `offline` and `online` again are told.
    pub events: EventBus<WorkspaceEvent>,
}

pub struct HeartbeatState {
    args: HeartbeatArgs,
    board: Board,
    /// Workspaces this incarnation marked offline: a beat from one of them
    /// is told as `online` again.
    offline: HashSet<String>,
}

impl HeartbeatState {
    /// The drain's view of `row` changed (a beat or a registration).
    fn tell_drain(&self, row: &Workspace) {
        if let Some(queue) = self.args.names.lookup::<QueueMsg>(names::QUEUE_DRAIN) {
            let _ = queue.cast(QueueMsg::Capacity(Box::new(row.clone())));
        }
    }

    async fn register(&mut self, r: Registration) -> Result<Workspace, HeartbeatError> {
        let now = self.args.clock.now();
        let row = self
            .args
            .store
            .register_workspace(&r.workspace, r.url.as_deref(), r.max_concurrent, now)
            .await?;
        self.tell_drain(&row);
        Ok(row)
    }

    async fn beat(&mut self, beat: WorkspaceBeat) -> Result<BeatAck, HeartbeatError> {
        beat.validate()?;
        let now = self.args.clock.now();
        let workspace = self.args.store.record_beat(&beat, now).await?;
        self.tell_drain(&workspace);
        if self.offline.remove(&workspace.id) {
            self.args.events.publish(WorkspaceEvent {
                workspace: workspace.id.clone(),
                online: true,
                at: now,
            });
        }
        Ok(BeatAck {
            spare_capacity: workspace.spare_capacity(),
            workspace,
        })
    }

    async fn delegation_beat(
        &mut self,
        delegation: &str,
    ) -> Result<DelegationBeatOutcome, HeartbeatError> {
        text::id("id", delegation)?;
        let now = self.args.clock.now();
        Ok(self.args.store.beat_delegation(delegation, now).await?)
    }

    async fn tick(&mut self, now: DateTime<Utc>) -> Result<TickReport, HeartbeatError> {
        self.board
            .alive(names::HEARTBEAT.to_string(), now, self.args.tick);
        let silent_since = time::sub_saturating(now, self.args.offline_after);
        let marked_offline = self
            .args
            .store
            .mark_silent_offline(silent_since, now)
            .await?;
        for id in &marked_offline {
            tracing::warn!(workspace = %id, "no heartbeat within threshold; marked offline");
            // Bounded by the registry: one entry per workspace at most.
            self.offline.insert(id.clone());
            self.args.events.publish(WorkspaceEvent {
                workspace: id.clone(),
                online: false,
                at: now,
            });
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
        // On the board from its start, as the others report from theirs.
        let mut board = Board::default();
        board.alive(names::HEARTBEAT.to_string(), args.clock.now(), args.tick);
        Ok(HeartbeatState {
            args,
            board,
            offline: HashSet::new(),
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
            HeartbeatMsg::WorkspaceBeat { reply, .. } if abandoned_opt(&reply) => {
                tracing::debug!("workspace beat dropped: its sender stopped waiting");
            }
            HeartbeatMsg::Register { reply, .. } if abandoned(&reply) => {
                tracing::debug!("registration dropped: its sender stopped waiting");
            }
            HeartbeatMsg::DelegationBeat { reply, .. } if abandoned_opt(&reply) => {
                tracing::debug!("delegation beat dropped: its sender stopped waiting");
            }
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
                registration,
                reply,
            } => {
                let _ = reply.send(state.register(registration).await);
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
                let result = state.tick(now).await;
                if let Err(err) = &result {
                    tracing::error!(error = %err, "heartbeat tick failed");
                }
                if let Some(reply) = reply {
                    let _ = reply.send(result);
                }
            }
            HeartbeatMsg::Alive { actor, at, every } => state.board.alive(actor, at, every),
            HeartbeatMsg::Restarts(counts) => state.board.restarts(counts),
            HeartbeatMsg::Health { now, reply } => {
                let now = now.unwrap_or_else(|| state.args.clock.now());
                let _ = reply.send(state.board.health(now));
            }
        }
        Ok(())
    }
}
