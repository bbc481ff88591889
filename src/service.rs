//! The assembled service: store, clock and the root supervisor with its children.
//!
//! [`Ringmaster`] is what the binary starts and what an embedding host holds.
//! It owns nothing the actors need at run time; it only knows how to ask them.

use std::time::Duration;

use ractor::{Actor, ActorCell, ActorRef, SpawnErr};
use tokio::task::JoinHandle;

use crate::actors::heartbeat::{HealthReport, HeartbeatActor, HeartbeatArgs, HeartbeatMsg};
use crate::actors::names;
use crate::actors::supervisor::{
    ChildInfo, ChildSpec, RestartIntensity, RootArgs, RootMsg, RootSupervisor,
};
use crate::actors::sweeper::{DelegationEvent, DelegationSweeperActor, SweeperArgs, SweeperMsg};
use crate::actors::Names;
use crate::clock::{SharedClock, SystemClock};
use crate::config::Config;
use crate::events::EventBus;
use crate::store::{self, Store, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("root supervisor failed to start: {0}")]
    Spawn(#[from] SpawnErr),
    #[error("actor {actor} is not running (it may be restarting)")]
    ActorDown { actor: &'static str },
    #[error("actor {actor} did not answer: {reason}")]
    NoAnswer { actor: &'static str, reason: String },
}

/// What [`Ringmaster::start_with`] needs. Tests pass a manual clock and a
/// unique namespace; hosts pass their supervisor to link the root under it.
pub struct StartOptions {
    pub config: Config,
    pub store: Store,
    pub clock: SharedClock,
    pub names: Names,
    pub supervisor: Option<ActorCell>,
}

/// A running ringmaster.
pub struct Ringmaster {
    root: ActorRef<RootMsg>,
    join: JoinHandle<()>,
    names: Names,
    store: Store,
    clock: SharedClock,
    config: Config,
    delegation_events: EventBus<DelegationEvent>,
}

/// Buses made once per service and handed to every incarnation of their
/// publisher, so a subscription outlives the publisher's restarts.
#[derive(Clone, Default)]
pub struct EventBuses {
    pub delegations: EventBus<DelegationEvent>,
}

/// How long `call`s from outside the actors wait for an answer.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(10);

/// The root's children, in start order. The HeartbeatActor comes first so the
/// others can report their ticks to it from their first tick.
pub fn child_specs(
    config: &Config,
    store: &Store,
    clock: &SharedClock,
    names: &Names,
    events: &EventBuses,
) -> Vec<ChildSpec> {
    let heartbeat = {
        let (config, store, clock, names) =
            (config.clone(), store.clone(), clock.clone(), names.clone());
        ChildSpec::new(names::HEARTBEAT, move || {
            (
                HeartbeatActor,
                HeartbeatArgs {
                    names: names.clone(),
                    store: store.clone(),
                    clock: clock.clone(),
                    tick: config.heartbeat_tick,
                    offline_after: config.workspace_offline,
                },
            )
        })
    };
    let sweeper = {
        let (config, store, clock, names, events) = (
            config.clone(),
            store.clone(),
            clock.clone(),
            names.clone(),
            events.delegations.clone(),
        );
        ChildSpec::new(names::SWEEPER, move || {
            (
                DelegationSweeperActor,
                SweeperArgs {
                    names: names.clone(),
                    store: store.clone(),
                    clock: clock.clone(),
                    interval: config.sweep_interval,
                    stuck_threshold: config.stuck_threshold,
                    events: events.clone(),
                },
            )
        })
    };
    vec![heartbeat, sweeper]
}

impl Ringmaster {
    /// Open the configured database and start with the system clock.
    pub async fn start(config: Config) -> Result<Self, ServiceError> {
        let store = store::open(&config.database_url).await?;
        Self::start_with(StartOptions {
            config,
            store,
            clock: std::sync::Arc::new(SystemClock),
            names: Names::default(),
            supervisor: None,
        })
        .await
    }

    pub async fn start_with(options: StartOptions) -> Result<Self, ServiceError> {
        let StartOptions {
            config,
            store,
            clock,
            names,
            supervisor,
        } = options;
        let events = EventBuses::default();
        let args = RootArgs {
            names: names.clone(),
            children: child_specs(&config, &store, &clock, &names, &events),
            intensity: RestartIntensity {
                max_restarts: config.restart_max,
                window: config.restart_window,
            },
            clock: clock.clone(),
            shutdown_timeout: Duration::from_secs(30),
        };
        let name = Some(names.of(names::ROOT));
        let (root, join) = match supervisor {
            Some(host) => Actor::spawn_linked(name, RootSupervisor, args, host).await?,
            None => Actor::spawn(name, RootSupervisor, args).await?,
        };
        Ok(Self {
            root,
            join,
            names,
            store,
            clock,
            config,
            delegation_events: events.delegations,
        })
    }

    pub fn names(&self) -> &Names {
        &self.names
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    pub fn clock(&self) -> &SharedClock {
        &self.clock
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    pub fn root(&self) -> &ActorRef<RootMsg> {
        &self.root
    }

    pub fn heartbeat(&self) -> Result<ActorRef<HeartbeatMsg>, ServiceError> {
        self.names.heartbeat().ok_or(ServiceError::ActorDown {
            actor: names::HEARTBEAT,
        })
    }

    pub fn sweeper(&self) -> Result<ActorRef<SweeperMsg>, ServiceError> {
        self.names.sweeper().ok_or(ServiceError::ActorDown {
            actor: names::SWEEPER,
        })
    }

    /// Every delegation transition (sweeps and status changes), from now on.
    /// Subscribe with [`EventBus::channel`] or [`EventBus::subscribe`]; the
    /// subscription survives restarts of the sweeper.
    pub fn delegation_events(&self) -> &EventBus<DelegationEvent> {
        &self.delegation_events
    }

    /// Per-actor liveness, from the HeartbeatActor.
    pub async fn health(&self) -> Result<HealthReport, ServiceError> {
        let heartbeat = self.heartbeat()?;
        heartbeat
            .call(
                |reply| HeartbeatMsg::Health { now: None, reply },
                Some(CALL_TIMEOUT),
            )
            .await
            .map_err(|e| ServiceError::NoAnswer {
                actor: names::HEARTBEAT,
                reason: e.to_string(),
            })?
            .answered_by(names::HEARTBEAT)
    }

    /// The root's view of its children.
    pub async fn children(&self) -> Result<Vec<ChildInfo>, ServiceError> {
        self.root
            .call(RootMsg::Children, Some(CALL_TIMEOUT))
            .await
            .map_err(|e| ServiceError::NoAnswer {
                actor: names::ROOT,
                reason: e.to_string(),
            })?
            .answered_by(names::ROOT)
    }

    /// Stop the children in reverse start order, wait for them, then the root,
    /// then close the database pool.
    pub async fn shutdown(&self) {
        let _ = self
            .root
            .stop_and_wait(Some("shutdown".to_string()), None)
            .await;
        self.store.close().await;
    }

    /// Resolves when the root stops for any reason (for the binary: a root
    /// that gave up must end the process).
    pub async fn stopped(&self) {
        let _ = self.root.get_cell().wait(None).await;
    }

    /// The root's task, for hosts that prefer to await it.
    pub fn into_join_handle(self) -> JoinHandle<()> {
        self.join
    }
}

/// Turns a ractor call result into ours, naming the actor that did not answer.
trait CallResultExt<T> {
    fn answered_by(self, actor: &'static str) -> Result<T, ServiceError>;
}

impl<T> CallResultExt<T> for ractor::rpc::CallResult<T> {
    fn answered_by(self, actor: &'static str) -> Result<T, ServiceError> {
        match self {
            ractor::rpc::CallResult::Success(v) => Ok(v),
            ractor::rpc::CallResult::Timeout => Err(ServiceError::NoAnswer {
                actor,
                reason: "timed out".to_string(),
            }),
            ractor::rpc::CallResult::SenderError => Err(ServiceError::NoAnswer {
                actor,
                reason: "it stopped before answering".to_string(),
            }),
        }
    }
}
