//! The DelegationSweeperActor: catches delegations that will never finish.
//!
//! An agent can wedge while still heartbeating (only the deadline catches it)
//! or die without a word (only the silence catches it). One sweep runs the
//! model's two rules, each as one set-based UPDATE over the in-flight rows
//! rather than a read followed by a write per row: past deadline → `failed`
//! first, then silent past the stuck threshold → `stuck`, where silence counts
//! from creation for a delegation that never beat (the sweeper this replaces let
//! those hide until their deadline). Both statements touch only in-flight
//! rows, so a delegation completed concurrently is never flipped, and a
//! second sweep finds nothing to do.
//!
//! Every transition is published on an [`EventBus`] made by the service, so
//! subscribers survive restarts. The actor also carries the ledger's create
//! and status changes, so writes have one owner; reads go to the store.
//! Database errors are answered, never raised: a restart would not bring the
//! database back and would spend the restart intensity meant for bugs.

use std::time::Duration;

use chrono::{DateTime, Utc};
use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort};

use super::ask::{abandoned, abandoned_opt};
use crate::clock::SharedClock;
use crate::events::EventBus;
use crate::messages::sweeper::{DelegationEvent, SweepReport, SweeperError, SweeperMsg};
use crate::model::delegation::{
    silent_since, Created, NewDelegation, StatusChange, Swept, Transition,
};
use crate::model::text;
use crate::names::{self, Names};
use crate::store::Store;

pub struct DelegationSweeperActor;

pub struct SweeperArgs {
    pub names: Names,
    pub store: Store,
    pub clock: SharedClock,
    /// How often the actor sweeps on its own (and once at start).
    pub interval: Duration,
    /// No heartbeat (or, never having beat, no creation) for this long → `stuck`.
    pub stuck_threshold: Duration,
    pub events: EventBus<DelegationEvent>,
}

pub struct SweeperState {
    args: SweeperArgs,
}

impl SweeperState {
    fn publish_swept(&self, swept: Vec<Swept>, at: DateTime<Utc>) {
        for s in swept {
            tracing::warn!(delegation = %s.id, from = %s.from, to = %s.to, reason = %s.reason,
                "delegation swept");
            self.args.events.publish(DelegationEvent {
                id: s.id,
                from: s.from,
                to: s.to,
                reason: Some(s.reason),
                at,
            });
        }
    }

    async fn sweep(&self, now: DateTime<Utc>) -> Result<SweepReport, SweeperError> {
        let mut report = SweepReport {
            at: now,
            failed: 0,
            stuck: 0,
            errors: 0,
        };
        let mut first_error = None;
        // Deadline first: "failed" is the stronger verdict. The stuck rule
        // excludes past-deadline rows itself, so it may still run when this
        // one could not.
        match self.args.store.fail_past_deadline(now).await {
            Ok(swept) => {
                report.failed = swept.len() as u64;
                self.publish_swept(swept, now);
            }
            Err(err) => {
                tracing::error!(error = %err, "delegation sweep: deadline rule failed");
                report.errors += 1;
                first_error = Some(err);
            }
        }
        let since = silent_since(now, self.args.stuck_threshold);
        match self.args.store.mark_stale_stuck(since, now).await {
            Ok(swept) => {
                report.stuck = swept.len() as u64;
                self.publish_swept(swept, now);
            }
            Err(err) => {
                tracing::error!(error = %err, "delegation sweep: stuck rule failed");
                report.errors += 1;
                first_error.get_or_insert(err);
            }
        }
        if report.failed > 0 || report.stuck > 0 {
            tracing::info!(
                failed = report.failed,
                stuck = report.stuck,
                "delegation sweep"
            );
        }
        match first_error {
            None => Ok(report),
            Some(source) => Err(SweeperError::Sweep { report, source }),
        }
    }

    async fn create(&self, new: NewDelegation) -> Result<Created, SweeperError> {
        let now = self.args.clock.now();
        let prepared = new.prepare(now)?;
        Ok(self.args.store.create_delegation(&prepared, now).await?)
    }

    async fn set_status(&self, id: &str, change: StatusChange) -> Result<Transition, SweeperError> {
        text::id("id", id)?;
        change.validate()?;
        let now = self.args.clock.now();
        let transition = self
            .args
            .store
            .set_delegation_status(id, &change, now)
            .await?;
        if let Transition::Applied { from, delegation } = &transition {
            self.args.events.publish(DelegationEvent {
                id: delegation.id.clone(),
                from: *from,
                to: delegation.status,
                reason: delegation.error_detail.clone(),
                at: now,
            });
        }
        Ok(transition)
    }
}

/// Answers a caller if it is still listening.
fn answer<T: Send + 'static>(reply: Option<RpcReplyPort<T>>, value: T) {
    if let Some(reply) = reply {
        let _ = reply.send(value);
    }
}

impl Actor for DelegationSweeperActor {
    type Msg = SweeperMsg;
    type State = SweeperState;
    type Arguments = SweeperArgs;

    async fn pre_start(
        &self,
        _myself: ActorRef<SweeperMsg>,
        args: SweeperArgs,
    ) -> Result<SweeperState, ActorProcessingErr> {
        // From pre_start: see `Names::report_alive`.
        args.names
            .report_alive(names::SWEEPER, args.clock.now(), args.interval);
        Ok(SweeperState { args })
    }

    async fn post_start(
        &self,
        myself: ActorRef<SweeperMsg>,
        state: &mut SweeperState,
    ) -> Result<(), ActorProcessingErr> {
        // First sweep at once, so a restart does not leave work unswept for a
        // whole interval.
        let _ = myself.cast(SweeperMsg::Sweep {
            now: None,
            reply: None,
        });
        myself.send_interval(state.args.interval, || SweeperMsg::Sweep {
            now: None,
            reply: None,
        });
        Ok(())
    }

    async fn handle(
        &self,
        _myself: ActorRef<SweeperMsg>,
        message: SweeperMsg,
        state: &mut SweeperState,
    ) -> Result<(), ActorProcessingErr> {
        match message {
            SweeperMsg::Sweep { now, reply } => {
                let now = now.unwrap_or_else(|| state.args.clock.now());
                state
                    .args
                    .names
                    .report_alive(names::SWEEPER, now, state.args.interval);
                answer(reply, state.sweep(now).await);
            }
            SweeperMsg::Create { reply, .. } if abandoned(&reply) => {
                tracing::debug!("delegation create dropped: its sender stopped waiting");
            }
            SweeperMsg::SetStatus { reply, .. } if abandoned_opt(&reply) => {
                tracing::debug!("delegation status change dropped: its sender stopped waiting");
            }
            SweeperMsg::Create { new, reply } => {
                let result = state.create(new).await;
                if let Err(err) = &result {
                    tracing::warn!(error = %err, "delegation not created");
                }
                answer(Some(reply), result);
            }
            SweeperMsg::SetStatus { id, change, reply } => {
                let result = state.set_status(&id, change).await;
                match &result {
                    Err(err) => tracing::warn!(delegation = %id, error = %err,
                        "delegation status not changed"),
                    Ok(Transition::Refused { from, to, reason }) => {
                        tracing::debug!(delegation = %id, %from, %to, %reason,
                            "delegation status change refused")
                    }
                    Ok(_) => {}
                }
                answer(reply, result);
            }
        }
        Ok(())
    }
}
