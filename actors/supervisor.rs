//! The root supervisor: one-for-one restarts within a restart intensity.
//!
//! The schedulers this replaces left crons silently dead for 12 hours after a panic: a loop
//! that died and nobody noticed. Here every long-lived actor is a linked child
//! of [`RootSupervisor`]. When a child fails (panic or `Err`) or stops on its
//! own, it is started again under the same name. Like OTP, restarts are
//! bounded: more than `max_restarts` within `window` means something is
//! persistently wrong, so the root gives up, stops its children and fails
//! itself, which escalates to whatever supervises the root (a host's own
//! supervisor, or the binary, which exits non-zero).
//!
//! A replacement whose `pre_start` fails counts as one more restart and is
//! retried after a short backoff; only the intensity decides when to give up.
//!
//! Child specs are data ([`ChildSpec`]: a role and a way to build the actor
//! again), and restart counts leave through a callback ([`RootArgs::on_restarts`]),
//! so the root knows nothing of its children's messages and adding an actor
//! never changes this file.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures::future::BoxFuture;
use ractor::{Actor, ActorCell, ActorProcessingErr, ActorRef, SpawnErr, SupervisionEvent};

use crate::clock::SharedClock;
use crate::messages::root::{ChildInfo, RetryStart, RootMsg};
use crate::names::Names;

type StartFn =
    dyn Fn(String, ActorCell) -> BoxFuture<'static, Result<ActorCell, SpawnErr>> + Send + Sync;

/// How to (re)build one child: its role and a function that spawns it linked
/// under the supervisor with the given registered name.
#[derive(Clone)]
pub struct ChildSpec {
    pub role: String,
    start: Arc<StartFn>,
}

impl std::fmt::Debug for ChildSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChildSpec")
            .field("role", &self.role)
            .finish()
    }
}

impl ChildSpec {
    /// A child built by `build`, called afresh for every (re)start so each
    /// incarnation gets new arguments (and so a fresh state).
    pub fn new<A, F>(role: impl Into<String>, build: F) -> Self
    where
        A: Actor,
        F: Fn() -> (A, A::Arguments) + Send + Sync + 'static,
    {
        let build = Arc::new(build);
        let start = move |name: String, supervisor: ActorCell| {
            let build = build.clone();
            let fut: BoxFuture<'static, Result<ActorCell, SpawnErr>> = Box::pin(async move {
                let (actor, args) = build();
                let (actor_ref, _join) =
                    Actor::spawn_linked(Some(name), actor, args, supervisor).await?;
                Ok(actor_ref.get_cell())
            });
            fut
        };
        Self {
            role: role.into(),
            start: Arc::new(start),
        }
    }
}

/// OTP's restart intensity: at most `max_restarts` within `window`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RestartIntensity {
    pub max_restarts: u32,
    pub window: Duration,
}

impl Default for RestartIntensity {
    fn default() -> Self {
        Self {
            max_restarts: 5,
            window: Duration::from_secs(60),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SupervisorError {
    #[error("child {role} failed to start: {source}")]
    ChildStart {
        role: String,
        #[source]
        source: SpawnErr,
    },
    #[error(
        "restart intensity exceeded: {restarts} restarts within {window:?} (at most {max} allowed); last failure: {role}: {reason}"
    )]
    IntensityExceeded {
        restarts: usize,
        max: u32,
        window: Duration,
        role: String,
        reason: String,
    },
}

/// Where restart counts go after every start (the service points it at the
/// HeartbeatActor, which reports them in `health()`).
pub type OnRestarts = Arc<dyn Fn(BTreeMap<String, u32>) + Send + Sync>;

pub struct RootArgs {
    pub names: Names,
    pub children: Vec<ChildSpec>,
    pub intensity: RestartIntensity,
    pub clock: SharedClock,
    /// How long graceful shutdown waits for each child before killing it.
    pub shutdown_timeout: Duration,
    pub on_restarts: OnRestarts,
}

struct Child {
    spec: ChildSpec,
    cell: Option<ActorCell>,
    restarts: u32,
}

pub struct RootState {
    names: Names,
    on_restarts: OnRestarts,
    children: Vec<Child>,
    intensity: RestartIntensity,
    clock: SharedClock,
    shutdown_timeout: Duration,
    /// Instants of recent restarts, oldest first, trimmed to the window.
    recent: VecDeque<DateTime<Utc>>,
    /// Consecutive failed starts per child, for the retry backoff.
    failed_starts: BTreeMap<usize, u32>,
}

pub struct RootSupervisor;

impl RootState {
    fn restart_counts(&self) -> BTreeMap<String, u32> {
        self.children
            .iter()
            .map(|c| (c.spec.role.clone(), c.restarts))
            .collect()
    }

    /// Restart counts leave after every start, including a restart of
    /// whoever receives them.
    fn publish_restart_counts(&self) {
        (self.on_restarts)(self.restart_counts());
    }

    /// Count one restart of child `index`; fail when past the intensity.
    fn count_restart(&mut self, index: usize, reason: &str) -> Result<(), SupervisorError> {
        let now = self.clock.now();
        let window =
            chrono::Duration::from_std(self.intensity.window).unwrap_or(chrono::Duration::MAX);
        self.recent.push_back(now);
        while self.recent.front().is_some_and(|t| now - *t > window) {
            self.recent.pop_front();
        }
        self.children[index].restarts += 1;
        if self.recent.len() > self.intensity.max_restarts as usize {
            return Err(SupervisorError::IntensityExceeded {
                restarts: self.recent.len(),
                max: self.intensity.max_restarts,
                window: self.intensity.window,
                role: self.children[index].spec.role.clone(),
                reason: reason.to_string(),
            });
        }
        Ok(())
    }

    /// Start child `index` once. On failure, schedule a retry.
    async fn start_child(&mut self, myself: &ActorRef<RootMsg>, index: usize) {
        let role = self.children[index].spec.role.clone();
        let start = self.children[index].spec.start.clone();
        match start(self.names.of(&role), myself.get_cell()).await {
            Ok(cell) => {
                tracing::info!(child = %role, restarts = self.children[index].restarts, "child started");
                self.children[index].cell = Some(cell);
                self.failed_starts.remove(&index);
            }
            Err(err) => {
                let attempt = self.failed_starts.entry(index).or_insert(0);
                *attempt += 1;
                // 50 ms, 100 ms, 200 ms … capped at 5 s: quick enough to
                // recover from a blip, slow enough not to spin on a dead database.
                let backoff =
                    Duration::from_millis(50u64.saturating_mul(1 << (*attempt - 1).min(7)))
                        .min(Duration::from_secs(5));
                tracing::error!(child = %role, error = %err, ?backoff, "replacement failed to start; will retry");
                myself.send_after(backoff, move || RootMsg::RetryStart(RetryStart { index }));
            }
        }
        self.publish_restart_counts();
    }

    /// Stop every child, last started first, waiting for each.
    async fn stop_children(&mut self) {
        for child in self.children.iter_mut().rev() {
            if let Some(cell) = child.cell.take() {
                let role = &child.spec.role;
                if let Err(err) = cell
                    .stop_and_wait(Some("shutdown".to_string()), Some(self.shutdown_timeout))
                    .await
                {
                    tracing::warn!(child = %role, error = %err, "child did not stop in time; killing it");
                    cell.kill();
                }
            }
        }
    }

    /// The restart path: count it, then start a replacement.
    async fn restart(
        &mut self,
        myself: &ActorRef<RootMsg>,
        index: usize,
        reason: String,
    ) -> Result<(), ActorProcessingErr> {
        if let Err(err) = self.count_restart(index, &reason) {
            tracing::error!(error = %err, "root supervisor giving up");
            self.stop_children().await;
            return Err(Box::new(err));
        }
        tracing::warn!(child = %self.children[index].spec.role, %reason, "restarting child");
        self.start_child(myself, index).await;
        Ok(())
    }
}

impl Actor for RootSupervisor {
    type Msg = RootMsg;
    type State = RootState;
    type Arguments = RootArgs;

    async fn pre_start(
        &self,
        myself: ActorRef<RootMsg>,
        args: RootArgs,
    ) -> Result<RootState, ActorProcessingErr> {
        let mut state = RootState {
            names: args.names,
            on_restarts: args.on_restarts,
            children: args
                .children
                .into_iter()
                .map(|spec| Child {
                    spec,
                    cell: None,
                    restarts: 0,
                })
                .collect(),
            intensity: args.intensity,
            clock: args.clock,
            shutdown_timeout: args.shutdown_timeout,
            recent: VecDeque::new(),
            failed_starts: BTreeMap::new(),
        };
        // At first start a child that cannot start is a configuration or
        // environment problem: fail start-up instead of retrying forever.
        for index in 0..state.children.len() {
            let role = state.children[index].spec.role.clone();
            let start = state.children[index].spec.start.clone();
            match start(state.names.of(&role), myself.get_cell()).await {
                Ok(cell) => state.children[index].cell = Some(cell),
                Err(source) => {
                    state.stop_children().await;
                    return Err(Box::new(SupervisorError::ChildStart { role, source }));
                }
            }
        }
        state.publish_restart_counts();
        Ok(state)
    }

    async fn post_stop(
        &self,
        _myself: ActorRef<RootMsg>,
        state: &mut RootState,
    ) -> Result<(), ActorProcessingErr> {
        state.stop_children().await;
        Ok(())
    }

    async fn handle(
        &self,
        myself: ActorRef<RootMsg>,
        message: RootMsg,
        state: &mut RootState,
    ) -> Result<(), ActorProcessingErr> {
        match message {
            RootMsg::RetryStart(RetryStart { index }) => {
                if state.children.get(index).is_some_and(|c| c.cell.is_none()) {
                    state
                        .restart(
                            &myself,
                            index,
                            "previous replacement failed to start".to_string(),
                        )
                        .await?;
                }
            }
            RootMsg::Children(reply) => {
                let info = state
                    .children
                    .iter()
                    .map(|c| ChildInfo {
                        role: c.spec.role.clone(),
                        running: c.cell.is_some(),
                        restarts: c.restarts,
                    })
                    .collect();
                let _ = reply.send(info);
            }
        }
        Ok(())
    }

    async fn handle_supervisor_evt(
        &self,
        myself: ActorRef<RootMsg>,
        event: SupervisionEvent,
        state: &mut RootState,
    ) -> Result<(), ActorProcessingErr> {
        let (cell, reason) = match event {
            SupervisionEvent::ActorFailed(cell, err) => (cell, format!("failed: {err}")),
            SupervisionEvent::ActorTerminated(cell, _, reason) => (
                cell,
                format!(
                    "stopped unexpectedly: {}",
                    reason.unwrap_or_else(|| "no reason".into())
                ),
            ),
            _ => return Ok(()),
        };
        let Some(index) = state.children.iter().position(|c| {
            c.cell
                .as_ref()
                .is_some_and(|known| known.get_id() == cell.get_id())
        }) else {
            // Not a current child (an old incarnation, or one being shut down).
            return Ok(());
        };
        state.children[index].cell = None;
        state.restart(&myself, index, reason).await
    }
}
