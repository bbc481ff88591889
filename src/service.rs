//! The assembled service: store, clock and the root supervisor with its children.
//!
//! [`Ringmaster`] is what the binary starts and what an embedding host holds.
//! It owns nothing the actors need at run time; it only knows how to ask them.

use std::sync::Arc;
use std::time::Duration;

use ractor::{Actor, ActorCell, ActorRef, SpawnErr};
use tokio::task::JoinHandle;

use crate::actors::ask::{ask, AskError};
use crate::actors::supervisor::{RestartIntensity, RootArgs, RootSupervisor};
use crate::children::{child_specs, Wiring};
use crate::clock::{SharedClock, SystemClock};
use crate::config::Config;
use crate::dispatch::egress::Allowed;
use crate::dispatch::{A2aDispatcher, Dispatcher};
use crate::events::{Buses, EventBus};
use crate::feed::{ConsoleEvent, Feed};
use crate::ingest::Ingest;
use crate::known::KnownWorkspaces;
use crate::messages::heartbeat::{HealthReport, HeartbeatMsg};
use crate::messages::queue::{QueueError, QueueMsg, QueueOutcome, SendOutcome};
use crate::messages::root::{ChildInfo, RootMsg};
use crate::messages::scheduler::{ScheduleEvent, SchedulerMsg};
use crate::messages::sweeper::{DelegationEvent, SweeperMsg};
use crate::metrics::Metrics;
use crate::model::operator::{BulkRetried, ItemChange, QueueAction, WorkspaceRemoved};
use crate::model::queue::{Enqueued, NewQueueItem, QueueStatus};
use crate::names::{self, Names};
use crate::store::{self, Store, StoreError};

/// How long an embedding host's `send`/`enqueue` may wait for its write to begin.
pub const ENQUEUE_WITHIN: Duration = Duration::from_secs(10);

#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("root supervisor failed to start: {0}")]
    Spawn(#[from] SpawnErr),
    #[error("actor {actor} is not running (it may be restarting)")]
    ActorDown { actor: &'static str },
    #[error(transparent)]
    Ask(#[from] AskError),
    #[error(transparent)]
    Queue(#[from] QueueError),
}

/// What [`Ringmaster::start_with`] needs. Tests pass a manual clock and a
/// unique namespace; hosts pass their supervisor to link the root under it.
pub struct StartOptions {
    pub config: Config,
    pub store: Store,
    pub clock: SharedClock,
    pub names: Names,
    pub supervisor: Option<ActorCell>,
    /// How queue items reach workspaces (the binary: A2A over HTTP).
    pub dispatcher: Arc<dyn Dispatcher>,
    /// This node's name on queue leases; unique per process by default.
    pub node: String,
}

impl StartOptions {
    /// The binary's wiring: system clock, default names, A2A dispatcher.
    pub fn new(config: Config, store: Store) -> Self {
        // The list was checked when the configuration was read.
        let egress = Allowed::new(config.agent_allow.as_deref()).unwrap_or_default();
        let dispatcher = Arc::new(A2aDispatcher::with_limits(
            config.delivery_timeout,
            config.max_response_bytes,
            egress,
        ));
        Self {
            config,
            store,
            clock: Arc::new(SystemClock),
            names: Names::default(),
            supervisor: None,
            dispatcher,
            node: node_name(),
        }
    }
}

/// `host-pid-random`: readable in the queue's `claimed_by`, unique per start.
pub fn node_name() -> String {
    let host = std::env::var("HOSTNAME").unwrap_or_else(|_| "node".to_string());
    let nonce = uuid::Uuid::new_v4().simple().to_string();
    format!("{host}-{}-{}", std::process::id(), &nonce[..8])
}

/// A running ringmaster.
pub struct Ringmaster {
    root: ActorRef<RootMsg>,
    join: JoinHandle<()>,
    names: Names,
    store: Store,
    clock: SharedClock,
    config: Config,
    buses: Buses,
    metrics: Metrics,
    ingest: Ingest,
    feed: Feed,
    /// Workspaces lately read registered (a `Send` skips the read).
    known: KnownWorkspaces,
}

/// Every bus's events, in the console's feed.
fn feed_from(feed: &Feed, buses: &Buses) {
    feed.follow(&buses.queue);
    feed.follow(&buses.schedules);
    feed.follow(&buses.delegations);
    feed.follow(&buses.workspaces);
}

/// How long closing the pool may wait for connections to come back.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(5);

/// How long `call`s from outside the actors wait for an answer.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(10);

impl Ringmaster {
    /// Open the configured database and start with the system clock.
    pub async fn start(config: Config) -> Result<Self, ServiceError> {
        let store = store::open(&config.database_url).await?;
        Self::start_with(StartOptions::new(config, store)).await
    }

    pub async fn start_with(options: StartOptions) -> Result<Self, ServiceError> {
        let StartOptions {
            config,
            store,
            clock,
            names,
            supervisor,
            dispatcher,
            node,
        } = options;
        let buses = Buses::default();
        let feed = Feed::default();
        feed_from(&feed, &buses);
        // Every write of the ingest wakes this node's drain at once (other
        // nodes hear the store's notification) and is told in the feed.
        let ingest = Ingest::start(store.clone(), clock.clone(), config.queue_max_attempts, {
            let (names, feed, clock) = (names.clone(), feed.clone(), clock.clone());
            Arc::new(move |workspace: &str, ids: &[i64]| {
                if let Some(drain) = names.queue() {
                    let _ = drain.cast(QueueMsg::Wake {
                        workspace: workspace.to_string(),
                    });
                }
                let now = clock.now();
                for id in ids {
                    feed.publish(ConsoleEvent::enqueued(*id, workspace, now));
                }
            })
        });
        let wiring = Wiring {
            config: config.clone(),
            store: store.clone(),
            clock: clock.clone(),
            names: names.clone(),
            dispatcher,
            node,
            buses: buses.clone(),
            ingest: ingest.clone(),
        };
        let args = RootArgs {
            names: names.clone(),
            children: child_specs(&wiring),
            intensity: RestartIntensity {
                max_restarts: config.restart_max,
                window: config.restart_window,
            },
            clock: clock.clone(),
            shutdown_timeout: Duration::from_secs(30),
            on_restarts: {
                let (names, feed, clock) = (names.clone(), feed.clone(), clock.clone());
                let told = std::sync::Mutex::new(std::collections::BTreeMap::<String, u32>::new());
                Arc::new(move |counts| {
                    let mut told = told.lock().unwrap_or_else(|p| p.into_inner());
                    for (actor, n) in &counts {
                        if told.get(actor).is_none_or(|was| n > was) && *n > 0 {
                            feed.publish(ConsoleEvent::restarted(
                                actor,
                                u64::from(*n),
                                clock.now(),
                            ));
                        }
                    }
                    *told = counts.clone();
                    if let Some(heartbeat) = names.heartbeat() {
                        let _ = heartbeat.cast(HeartbeatMsg::Restarts(counts));
                    }
                })
            },
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
            metrics: Metrics::for_buses(&buses),
            buses,
            ingest,
            feed,
            known: KnownWorkspaces::default(),
        })
    }

    /// Remove a workspace (see [`crate::store::OperatorStore::remove_workspace`]):
    /// this node stops taking messages for it at once, and the feed says so.
    pub async fn remove_workspace(&self, id: &str) -> Result<Option<WorkspaceRemoved>, StoreError> {
        let now = self.clock.now();
        let removed = self.store.remove_workspace(id, now).await?;
        // After the removal: a `Send` read during it may have remembered it.
        self.known.forget(id);
        if let Some(r) = removed {
            let event = ConsoleEvent::workspace_removed(id, r.cancelled_items, now);
            self.feed.publish(event);
        }
        Ok(removed)
    }

    /// An operator's retry or cancel of one item; the feed tells what it did.
    pub async fn change_queue_item(
        &self,
        id: i64,
        action: QueueAction,
    ) -> Result<ItemChange, StoreError> {
        let now = self.clock.now();
        let change = self.store.change_queue_item(id, action, now).await?;
        if let ItemChange::Applied(item) = &change {
            self.feed.publish(match action {
                QueueAction::Retry => ConsoleEvent::redriven(item, now),
                QueueAction::Cancel => ConsoleEvent::queue(item, now),
            });
        }
        Ok(change)
    }

    /// An operator's bulk redrive of a workspace's dead letters in `status`.
    pub async fn retry_items(
        &self,
        workspace: &str,
        status: QueueStatus,
        limit: u32,
    ) -> Result<BulkRetried, StoreError> {
        let now = self.clock.now();
        let done = self
            .store
            .retry_items(workspace, status, limit, now)
            .await?;
        if done.retried > 0 {
            let event = ConsoleEvent::bulk_redriven(workspace, done.retried, now);
            self.feed.publish(event);
        }
        Ok(done)
    }

    /// The console's live feed (`GET /v1/events`).
    pub fn feed(&self) -> &Feed {
        &self.feed
    }

    /// Counters fed by the event buses, for `GET /metrics`.
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// Subscribe here to queue outcomes (completed, failed, expired).
    pub fn queue_events(&self) -> &EventBus<QueueOutcome> {
        &self.buses.queue
    }

    pub fn sweeper(&self) -> Result<ActorRef<SweeperMsg>, ServiceError> {
        self.names.sweeper().ok_or(ServiceError::ActorDown {
            actor: names::SWEEPER,
        })
    }

    /// Every delegation transition (sweeps and status changes), from now on.
    /// The subscription survives restarts of the sweeper.
    pub fn delegation_events(&self) -> &EventBus<DelegationEvent> {
        &self.buses.delegations
    }

    /// Subscribe here to schedule events (executed, skipped, missed, invalid).
    pub fn schedule_events(&self) -> &EventBus<ScheduleEvent> {
        &self.buses.schedules
    }

    pub fn scheduler(&self) -> Result<ActorRef<SchedulerMsg>, ServiceError> {
        self.names.scheduler().ok_or(ServiceError::ActorDown {
            actor: names::SCHEDULER,
        })
    }

    pub fn queue(&self) -> Result<ActorRef<QueueMsg>, ServiceError> {
        self.names.queue().ok_or(ServiceError::ActorDown {
            actor: names::QUEUE_DRAIN,
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

    /// Per-actor liveness, from the HeartbeatActor.
    pub async fn health(&self) -> Result<HealthReport, ServiceError> {
        self.health_within(CALL_TIMEOUT).await
    }

    /// [`health`](Self::health), waiting at most `timeout`.
    pub async fn health_within(&self, timeout: Duration) -> Result<HealthReport, ServiceError> {
        let heartbeat = self.heartbeat()?;
        Ok(ask(
            &heartbeat,
            names::HEARTBEAT,
            |reply| HeartbeatMsg::Health { now: None, reply },
            timeout,
        )
        .await?)
    }

    /// Enqueue through the group-committed ingest: `Ok` once durable.
    pub async fn enqueue(&self, item: NewQueueItem) -> Result<Enqueued, ServiceError> {
        Ok(self
            .ingest
            .enqueue(item, ENQUEUE_WITHIN)
            .await
            .map_err(QueueError::from)?)
    }

    /// Send a message to a workspace: enqueued (durable) first; then its
    /// response if it goes out at once, or `Queued`. A `messageId` (key)
    /// already used for this workspace answers that item instead: its
    /// response if it was delivered, `Queued` while active, `Ended` if it
    /// ended without a delivery.
    pub async fn send(&self, item: NewQueueItem) -> Result<SendOutcome, ServiceError> {
        self.send_within(item, ENQUEUE_WITHIN).await
    }

    /// [`send`](Self::send) whose write must begin within `admission`.
    pub async fn send_within(
        &self,
        item: NewQueueItem,
        admission: Duration,
    ) -> Result<SendOutcome, ServiceError> {
        let seen = std::time::Instant::now();
        if !self.known.is_known(&item.workspace, seen) {
            if self.store.get_workspace(&item.workspace).await?.is_none() {
                return Err(QueueError::UnknownWorkspace(item.workspace).into());
            }
            self.known.remember(&item.workspace, seen);
        }
        let workspace = item.workspace.clone();
        let enqueued = self
            .ingest
            .enqueue(item, admission)
            .await
            .map_err(QueueError::from)?;
        if enqueued.deduplicated && enqueued.status.is_final() {
            return self.ended(enqueued.id).await;
        }
        if enqueued.deduplicated {
            return Ok(SendOutcome::Queued {
                queue_id: enqueued.id,
                queue_depth: enqueued.depth,
            });
        }
        let queue = self.queue()?;
        // A delivery may take up to the delivery timeout; wait a little longer.
        let wait = self.config.delivery_timeout + CALL_TIMEOUT;
        Ok(ask(
            &queue,
            names::QUEUE_DRAIN,
            |reply| QueueMsg::Await {
                id: enqueued.id,
                workspace,
                depth: enqueued.depth,
                reply,
            },
            wait,
        )
        .await??)
    }

    /// The recorded end of a kept item named again by its key.
    async fn ended(&self, id: i64) -> Result<SendOutcome, ServiceError> {
        let Some(item) = self.store.get_queue_item(id).await? else {
            return Err(StoreError::NotFound {
                what: "queue item",
                id: id.to_string(),
            }
            .into());
        };
        Ok(SendOutcome::of_row(item, 0))
    }

    /// The root's view of its children.
    pub async fn children(&self) -> Result<Vec<ChildInfo>, ServiceError> {
        Ok(ask(&self.root, names::ROOT, RootMsg::Children, CALL_TIMEOUT).await?)
    }

    /// Stop gracefully: the drain claims and starts nothing more, gives its
    /// buffer back and waits (up to the shutdown timeout) for deliveries
    /// under way to return and their outcomes to be written; then the
    /// children stop in reverse start order, then the root, then the pool.
    /// Every step is bounded, so a stuck piece cannot hold the process.
    pub async fn shutdown(&self) {
        // Event streams end first: they would hold the server's drain.
        self.feed.close();
        let timeout = self.config.shutdown_timeout;
        if let Ok(queue) = self.queue() {
            let quiet = ask(
                &queue,
                names::QUEUE_DRAIN,
                |reply| QueueMsg::Quiesce {
                    within: timeout,
                    reply,
                },
                timeout + Duration::from_secs(2),
            )
            .await;
            if let Err(err) = quiet {
                tracing::warn!(error = %err, "the drain did not quiesce");
            }
        }
        if self
            .root
            .stop_and_wait(Some("shutdown".to_string()), Some(timeout))
            .await
            .is_err()
        {
            tracing::warn!("the supervision tree did not stop in time");
            self.root.kill();
        }
        if tokio::time::timeout(CLOSE_TIMEOUT, self.store.close())
            .await
            .is_err()
        {
            tracing::warn!("database connections were not returned in time");
        }
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
