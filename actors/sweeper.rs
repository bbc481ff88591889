//! The DelegationSweeperActor: catches delegations that will never finish.
//!
//! An agent can wedge while still heartbeating (only the deadline catches it)
//! or die without a word (only the silence catches it). One sweep runs the two
//! rules, each as one set-based UPDATE over the in-flight rows rather than a
//! read followed by a write per row: past deadline → `failed` first, then
//! silent past the stuck threshold → `stuck`, where "silent" counts from
//! creation for a delegation that never beat (the seeds' sweeper let those
//! hide until their deadline). Both statements only touch in-flight rows, so a
//! delegation completed concurrently is never flipped, and a second sweep
//! finds nothing to do.
//!
//! Every transition is published on an [`EventBus`] made by the service, so
//! subscribers survive this actor's restarts. The actor also carries the
//! ledger's create/get/list/status messages, so HTTP has one owner to talk to.

use std::time::Duration;

use chrono::{DateTime, Utc};
use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort};
use serde::Serialize;

use super::names::{self, Names};
use crate::clock::SharedClock;
use crate::events::EventBus;
use crate::store::{
    Created, Delegation, DelegationStatus, NewDelegation, StatusChange, Store, StoreError,
    SweepCounts, Swept, Transition,
};

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

/// One transition of the ledger, made by a sweep or by a status change sent
/// to this actor.
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
    #[error("{field} is empty")]
    Empty { field: &'static str },
    #[error("deadline {deadline} is not after now ({now})")]
    DeadlineInPast {
        deadline: DateTime<Utc>,
        now: DateTime<Utc>,
    },
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
    Get {
        id: String,
        reply: RpcReplyPort<Result<Option<Delegation>, SweeperError>>,
    },
    List {
        status: DelegationStatus,
        limit: u32,
        reply: RpcReplyPort<Result<Vec<Delegation>, SweeperError>>,
    },
    /// Move a delegation forward; a refusal is an `Ok(Transition::Refused)`.
    SetStatus {
        id: String,
        change: StatusChange,
        reply: Option<RpcReplyPort<Result<Transition, SweeperError>>>,
    },
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
        let threshold =
            chrono::Duration::from_std(self.args.stuck_threshold).unwrap_or(chrono::Duration::MAX);
        let silent_since = now
            .checked_sub_signed(threshold)
            .unwrap_or(DateTime::<Utc>::MIN_UTC);
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
        match self.args.store.mark_stale_stuck(silent_since, now).await {
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
        if new.workspace_id.trim().is_empty() {
            return Err(SweeperError::Empty {
                field: "workspace_id",
            });
        }
        if new.id.as_deref().is_some_and(|id| id.trim().is_empty()) {
            return Err(SweeperError::Empty { field: "id" });
        }
        let now = self.args.clock.now();
        if let Some(deadline) = new.deadline.filter(|d| *d <= now) {
            return Err(SweeperError::DeadlineInPast { deadline, now });
        }
        Ok(self.args.store.create_delegation(&new, now).await?)
    }

    async fn set_status(&self, id: &str, change: StatusChange) -> Result<Transition, SweeperError> {
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
        Ok(SweeperState { args })
    }

    async fn post_start(
        &self,
        myself: ActorRef<SweeperMsg>,
        state: &mut SweeperState,
    ) -> Result<(), ActorProcessingErr> {
        // First sweep at once, so a restart does not leave work unswept for a
        // whole interval and health knows this actor from the start.
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
        // Database errors are answered, never raised: a restart would not
        // bring the database back and would spend the restart intensity
        // meant for bugs.
        match message {
            SweeperMsg::Sweep { now, reply } => {
                let now = now.unwrap_or_else(|| state.args.clock.now());
                state
                    .args
                    .names
                    .report_alive(names::SWEEPER, now, state.args.interval);
                answer(reply, state.sweep(now).await);
            }
            SweeperMsg::Create { new, reply } => {
                let result = state.create(new).await;
                if let Err(err) = &result {
                    tracing::warn!(error = %err, "delegation not created");
                }
                answer(Some(reply), result);
            }
            SweeperMsg::Get { id, reply } => {
                let result = state.args.store.get_delegation(&id).await;
                answer(Some(reply), result.map_err(SweeperError::from));
            }
            SweeperMsg::List {
                status,
                limit,
                reply,
            } => {
                let result = state.args.store.list_delegations(status, limit).await;
                answer(Some(reply), result.map_err(SweeperError::from));
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
