//! The QueueDrainActor: the one path by which anything reaches a workspace.
//!
//! Messages are durable rows first (`Enqueue`), deliveries second. Draining is
//! event-driven: an enqueue for a workspace with room, a heartbeat reporting
//! room (`Capacity`), a finished delivery freeing a slot, or, on Postgres, a
//! NOTIFY from another node's enqueue, each drains at once; the periodic `Tick`
//! is only the safety net (and expires TTLs and rescues lost leases).
//!
//! A workspace never gets more than its spare capacity (max_concurrent −
//! active_tasks − our own deliveries in flight), and all workspaces together
//! never more than the global concurrency limit. Deliveries run as spawned
//! tasks, so the mailbox never waits on a slow agent. A task records its own
//! outcome (fenced by its lease token) and publishes it on the event bus before
//! telling the actor, so an outcome survives the actor restarting meanwhile;
//! the actor only keeps the in-flight counts. A dispatcher that panics, hangs
//! past the timeout or answers garbage ends as a recorded error, never a crash.
//!
//! Throughput comes from batching both ends. A slot is free again as soon as
//! its dispatcher call returns; the outcome goes to a completer task that
//! writes whatever has accumulated in one statement. Freed slots are not
//! refilled one claim each: `Dispatched` only marks the workspace dirty, and a
//! single `DrainDirty` behind them in the mailbox claims for all of them.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort};
use serde::Serialize;

use super::names::{self, Names};
use crate::clock::SharedClock;
use crate::dispatch::{Delivery, DispatchError, DispatchOutcome, Dispatcher};
use crate::events::EventBus;
use crate::store::{
    Claim, DispatchResult, Enqueued, NewQueueItem, QueueItem, QueueStatus, Recorded, Store,
    StoreError,
};

pub struct QueueDrainActor;

/// Exponential backoff between failed attempts: `base · 2^(attempt−1)`, at most `max`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    pub base: Duration,
    pub max: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Self {
            base: Duration::from_secs(2),
            max: Duration::from_secs(300),
        }
    }
}

impl Backoff {
    /// The pause after failed attempt number `attempt` (1-based).
    pub fn after(&self, attempt: u32) -> Duration {
        let factor = 1u32
            .checked_shl(attempt.saturating_sub(1).min(20))
            .unwrap_or(u32::MAX);
        self.base.saturating_mul(factor).min(self.max)
    }
}

pub struct QueueDrainArgs {
    pub names: Names,
    pub store: Store,
    pub clock: SharedClock,
    pub dispatcher: Arc<dyn Dispatcher>,
    /// This node's name on the leases it takes.
    pub node: String,
    /// Deliveries in flight across all workspaces.
    pub concurrency: u32,
    pub delivery_timeout: Duration,
    pub max_attempts: u32,
    pub lease: Duration,
    pub tick: Duration,
    pub backoff: Backoff,
    pub events: EventBus<QueueOutcome>,
}

/// An item reached an end state (completed, failed, expired).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct QueueOutcome {
    pub item: QueueItem,
    pub at: DateTime<Utc>,
}

#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    #[error("workspace id is empty")]
    EmptyWorkspace,
    #[error("body is not valid JSON: {0}")]
    BadBody(String),
    #[error("workspace {0:?} is not registered")]
    UnknownWorkspace(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What `Send` did with a message.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum SendOutcome {
    /// Delivered at once; the workspace's response.
    Delivered { queue_id: i64, response: String },
    /// Waiting in the queue (no room now, or the first try did not land).
    Queued { queue_id: i64, queue_depth: u64 },
}

/// What one tick did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DrainTickReport {
    pub expired: usize,
    pub rescued: usize,
    pub drained_workspaces: usize,
}

/// In-flight counts, for tests and metrics.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct InFlightReport {
    pub total: u32,
    pub by_workspace: Vec<(String, u32)>,
}

/// One recorded outcome, reported by the completer.
#[derive(Debug)]
pub struct Finished {
    pub item_id: i64,
    pub workspace: String,
    /// The row after recording, or `None` when the lease was lost or the
    /// store could not be written (the lease will be rescued).
    pub recorded: Option<QueueItem>,
}

pub enum QueueMsg {
    Enqueue {
        item: NewQueueItem,
        reply: Option<RpcReplyPort<Result<Enqueued, QueueError>>>,
    },
    EnqueueBatch {
        items: Vec<NewQueueItem>,
        reply: Option<RpcReplyPort<Result<Vec<Enqueued>, QueueError>>>,
    },
    /// Enqueue and, when the workspace has room, answer with its response
    /// once delivered; otherwise answer `Queued` at once.
    Send {
        item: NewQueueItem,
        reply: RpcReplyPort<Result<SendOutcome, QueueError>>,
    },
    /// Deliver what a workspace has ready, within its room.
    Drain {
        workspace: String,
    },
    /// From the HeartbeatActor: the workspace reported room.
    Capacity {
        workspace: String,
        spare: u32,
    },
    /// From a delivery task: its dispatcher call returned (the slot is free).
    Dispatched {
        workspace: String,
        busy: bool,
    },
    /// Claim for every workspace marked dirty since the last drain.
    DrainDirty,
    /// From the completer: outcomes durably recorded.
    Recorded(Vec<Finished>),
    /// Safety net: expire TTLs, rescue lost leases, drain every ready workspace.
    Tick {
        now: Option<DateTime<Utc>>,
        reply: Option<RpcReplyPort<Result<DrainTickReport, QueueError>>>,
    },
    InFlight(RpcReplyPort<InFlightReport>),
    /// A workspace's items, newest first (`UnknownWorkspace` if never registered).
    List {
        workspace: String,
        status: Option<QueueStatus>,
        limit: u32,
        reply: RpcReplyPort<Result<Vec<QueueItem>, QueueError>>,
    },
    /// Items per status, all workspaces (for metrics).
    Counts(RpcReplyPort<Result<Vec<(QueueStatus, u64)>, QueueError>>),
}

pub struct QueueDrainState {
    args: QueueDrainArgs,
    in_flight: HashMap<String, u32>,
    total_in_flight: u32,
    /// Workspaces that answered busy: not drained again until a heartbeat
    /// reports room or the next tick, so a busy agent is not hammered.
    busy: BTreeSet<String>,
    /// Workspaces with work that waited for a global slot.
    starved: BTreeSet<String>,
    /// `Send` callers waiting for an item's first outcome.
    waiters: HashMap<i64, (RpcReplyPort<Result<SendOutcome, QueueError>>, u64)>,
    listener: Option<tokio::task::JoinHandle<()>>,
    /// Outcomes to record, batched by the completer task.
    completer: tokio::sync::mpsc::UnboundedSender<Completion>,
    /// Workspace rows read recently (capacity, URL); a beat invalidates one.
    workspaces: HashMap<String, (crate::store::Workspace, DateTime<Utc>)>,
    dirty: BTreeSet<String>,
    drain_scheduled: bool,
}

/// How long a cached workspace row is trusted. Beats on this node invalidate
/// it at once; this bounds staleness for beats received by other nodes.
const WORKSPACE_CACHE_MS: i64 = 1000;

/// One outcome for the completer to write.
pub struct Completion {
    item: QueueItem,
    result: DispatchResult,
    at: DateTime<Utc>,
}

impl QueueDrainState {
    fn chrono(d: Duration) -> chrono::Duration {
        chrono::Duration::from_std(d).unwrap_or(chrono::Duration::MAX)
    }

    async fn workspace(
        &mut self,
        id: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<crate::store::Workspace>, StoreError> {
        if let Some((row, read_at)) = self.workspaces.get(id) {
            if *read_at <= now
                && now - *read_at < chrono::Duration::milliseconds(WORKSPACE_CACHE_MS)
            {
                return Ok(Some(row.clone()));
            }
        }
        let row = self.args.store.get_workspace(id).await?;
        match &row {
            Some(r) => {
                self.workspaces.insert(id.to_string(), (r.clone(), now));
            }
            None => {
                self.workspaces.remove(id);
            }
        }
        Ok(row)
    }

    /// Deliver what `workspace` has ready, within its room. Answers the items
    /// it started.
    async fn drain(
        &mut self,
        myself: &ActorRef<QueueMsg>,
        workspace: &str,
        now: DateTime<Utc>,
    ) -> Result<Vec<i64>, QueueError> {
        if self.busy.contains(workspace) {
            return Ok(Vec::new());
        }
        let Some(row) = self.workspace(workspace, now).await? else {
            tracing::debug!(%workspace, "items wait: workspace not registered");
            return Ok(Vec::new());
        };
        let ours = self.in_flight.get(workspace).copied().unwrap_or(0);
        let room = row.spare_capacity().saturating_sub(ours);
        let global_room = self.args.concurrency.saturating_sub(self.total_in_flight);
        if room == 0 {
            return Ok(Vec::new());
        }
        if global_room == 0 {
            self.starved.insert(workspace.to_string());
            return Ok(Vec::new());
        }
        let limit = room.min(global_room);
        let claimed = self
            .args
            .store
            .claim(Claim {
                workspace,
                limit,
                now,
                lease_until: now + Self::chrono(self.args.lease),
                node: &self.args.node,
            })
            .await?;
        if claimed.len() as u32 == global_room && room > global_room {
            // It may have more than the global limit let us take.
            self.starved.insert(workspace.to_string());
        }
        let mut started = Vec::with_capacity(claimed.len());
        for item in claimed {
            *self.in_flight.entry(workspace.to_string()).or_insert(0) += 1;
            self.total_in_flight += 1;
            started.push(item.id);
            self.spawn_delivery(myself, item, row.clone());
        }
        Ok(started)
    }

    fn spawn_delivery(
        &self,
        myself: &ActorRef<QueueMsg>,
        item: QueueItem,
        workspace: crate::store::Workspace,
    ) {
        let dispatcher = self.args.dispatcher.clone();
        let clock = self.args.clock.clone();
        let names = self.args.names.clone();
        let completer = self.completer.clone();
        let timeout = self.args.delivery_timeout;
        let backoff = self.args.backoff;
        let fallback = myself.clone();
        tokio::spawn(async move {
            let delivery = Delivery {
                item_id: item.id,
                workspace,
                method: item.method.clone(),
                body: item.body.clone(),
                idempotency_key: item.idempotency_key.clone(),
            };
            let result = run_dispatch(dispatcher, delivery, timeout).await;
            let at = clock.now();
            let result = match result {
                Ok(DispatchOutcome::Delivered { response }) => {
                    DispatchResult::Delivered { response }
                }
                Ok(DispatchOutcome::Busy { reason }) => DispatchResult::Busy { reason },
                Err(err) => {
                    let attempt = u32::try_from(item.attempts + 1).unwrap_or(1);
                    tracing::warn!(item = item.id, workspace = %item.workspace, attempt, error = %err, "delivery failed");
                    DispatchResult::Error {
                        message: err.to_string(),
                        retry_at: at + QueueDrainState::chrono(backoff.after(attempt)),
                    }
                }
            };
            let dispatched = QueueMsg::Dispatched {
                workspace: item.workspace.clone(),
                busy: matches!(result, DispatchResult::Busy { .. }),
            };
            // The completer outlives the actor incarnation that spawned it, so
            // this send only fails if the process is going down; then the
            // lease runs out and the item is rescued.
            let _ = completer.send(Completion { item, result, at });
            // Prefer the incarnation registered now (the one that spawned us may
            // have been restarted meanwhile).
            let target = names
                .lookup::<QueueMsg>(names::QUEUE_DRAIN)
                .unwrap_or(fallback);
            let _ = target.cast(dispatched);
        });
    }

    /// A dispatcher call returned: free its slot and schedule one drain for
    /// every workspace that may now have room.
    fn dispatched(&mut self, myself: &ActorRef<QueueMsg>, workspace: String, busy: bool) {
        if let Some(n) = self.in_flight.get_mut(&workspace) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                self.in_flight.remove(&workspace);
            }
            self.total_in_flight = self.total_in_flight.saturating_sub(1);
        }
        if busy {
            self.busy.insert(workspace.clone());
        }
        self.dirty.insert(workspace);
        self.dirty.append(&mut self.starved);
        if !self.drain_scheduled {
            self.drain_scheduled = true;
            let _ = myself.cast(QueueMsg::DrainDirty);
        }
    }

    async fn drain_dirty(&mut self, myself: &ActorRef<QueueMsg>) {
        self.drain_scheduled = false;
        // Refill in batches: while more than half the global slots are busy,
        // wait for more deliveries to return (each one schedules this drain
        // again). Refilling one slot per claim would make every delivery pay
        // a claim round trip of its own.
        if self.total_in_flight > 0 && self.total_in_flight * 2 > self.args.concurrency {
            return;
        }
        let now = self.args.clock.now();
        for workspace in std::mem::take(&mut self.dirty) {
            if let Err(err) = self.drain(myself, &workspace, now).await {
                tracing::error!(%workspace, error = %err, "drain after a delivery failed");
            }
        }
    }

    /// Outcomes are durable: answer `Send` callers waiting on them.
    fn recorded(&mut self, done: Vec<Finished>) {
        for done in done {
            if let Some((reply, depth)) = self.waiters.remove(&done.item_id) {
                let answer = match &done.recorded {
                    Some(r) if r.status == QueueStatus::Completed => SendOutcome::Delivered {
                        queue_id: r.id,
                        response: r.response.clone().unwrap_or_default(),
                    },
                    _ => SendOutcome::Queued {
                        queue_id: done.item_id,
                        queue_depth: depth,
                    },
                };
                let _ = reply.send(Ok(answer));
            }
        }
    }

    async fn tick(
        &mut self,
        myself: &ActorRef<QueueMsg>,
        now: DateTime<Utc>,
    ) -> Result<DrainTickReport, QueueError> {
        self.args
            .names
            .report_alive(names::QUEUE_DRAIN, now, self.args.tick);
        let expired = self.args.store.expire_due(now).await?;
        for item in &expired {
            tracing::info!(item = item.id, workspace = %item.workspace, "expired before it could be delivered");
            self.args.events.publish(QueueOutcome {
                item: item.clone(),
                at: now,
            });
        }
        let rescued = self.args.store.rescue_expired_leases(now).await?;
        for item in &rescued {
            tracing::warn!(item = item.id, workspace = %item.workspace, status = %item.status, "rescued an item whose lease ran out");
            if item.status.is_final() {
                self.args.events.publish(QueueOutcome {
                    item: item.clone(),
                    at: now,
                });
            }
        }
        self.busy.clear();
        self.workspaces.clear();
        let ready = self.args.store.ready_workspaces(now).await?;
        for workspace in &ready {
            self.drain(myself, workspace, now).await?;
        }
        Ok(DrainTickReport {
            expired: expired.len(),
            rescued: rescued.len(),
            drained_workspaces: ready.len(),
        })
    }
}

/// Run one dispatch in its own task so a panic is caught, bounded by `timeout`.
async fn run_dispatch(
    dispatcher: Arc<dyn Dispatcher>,
    delivery: Delivery,
    timeout: Duration,
) -> Result<DispatchOutcome, DispatchError> {
    let task = tokio::spawn(async move { dispatcher.deliver(&delivery).await });
    let abort = task.abort_handle();
    match tokio::time::timeout(timeout, task).await {
        Err(_) => {
            abort.abort();
            Err(DispatchError::Timeout(timeout))
        }
        Ok(Err(join)) if join.is_panic() => {
            let payload = join.into_panic();
            let message = payload
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "a panic without a message".to_string());
            Err(DispatchError::Panicked(message))
        }
        Ok(Err(_)) => Err(DispatchError::Other(
            "delivery task was cancelled".to_string(),
        )),
        Ok(Ok(result)) => result,
    }
}

/// Record an outcome, retrying briefly when the database is unreachable. If it
/// stays unreachable the lease runs out and the item is rescued: delivery is
/// at-least-once, and receivers dedupe on the messageId.
async fn record_with_retry(
    store: &Store,
    id: i64,
    token: &str,
    outcome: &DispatchResult,
    now: DateTime<Utc>,
) -> Option<QueueItem> {
    let mut pause = Duration::from_millis(100);
    for attempt in 1..=5 {
        match store.record_dispatch(id, token, outcome, now).await {
            Ok(Recorded::Applied(row)) => return Some(*row),
            Ok(Recorded::LeaseLost) => {
                tracing::warn!(
                    item = id,
                    "outcome not recorded: the lease was rescued meanwhile"
                );
                return None;
            }
            Err(err) if attempt < 5 => {
                tracing::warn!(item = id, error = %err, attempt, "recording an outcome failed; retrying");
                tokio::time::sleep(pause).await;
                pause *= 2;
            }
            Err(err) => {
                tracing::error!(item = id, error = %err, "outcome not recorded; the lease will be rescued");
            }
        }
    }
    None
}

/// The completer: writes outcomes in batches (all deliveries that finished
/// while the previous write was in flight go in one statement), publishes
/// end states, and reports to the actor. It ends when every sender is gone:
/// the actor incarnation that made it and all its delivery tasks.
fn spawn_completer(
    store: Store,
    events: EventBus<QueueOutcome>,
    names: Names,
    clock: SharedClock,
    fallback: ActorRef<QueueMsg>,
) -> tokio::sync::mpsc::UnboundedSender<Completion> {
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Completion>();
    tokio::spawn(async move {
        const BATCH: usize = 1000;
        let mut batch = Vec::with_capacity(BATCH);
        while rx.recv_many(&mut batch, BATCH).await > 0 {
            let mut done = Vec::with_capacity(batch.len());
            let mut delivered = Vec::new();
            for c in batch.drain(..) {
                let token = c.item.lease_token.clone().unwrap_or_default();
                match c.result {
                    DispatchResult::Delivered { response } => {
                        delivered.push((c.item.id, token, response))
                    }
                    other => {
                        let recorded =
                            record_with_retry(&store, c.item.id, &token, &other, c.at).await;
                        done.push(Finished {
                            item_id: c.item.id,
                            workspace: c.item.workspace,
                            recorded,
                        });
                    }
                }
            }
            if !delivered.is_empty() {
                let rows = complete_with_retry(&store, &delivered, clock.now()).await;
                let mut by_id: HashMap<i64, QueueItem> =
                    rows.into_iter().map(|r| (r.id, r)).collect();
                for (id, _, _) in &delivered {
                    let recorded = by_id.remove(id);
                    if recorded.is_none() {
                        tracing::warn!(
                            item = id,
                            "completion not recorded (lease lost or database down)"
                        );
                    }
                    done.push(Finished {
                        item_id: *id,
                        workspace: recorded
                            .as_ref()
                            .map(|r| r.workspace.clone())
                            .unwrap_or_default(),
                        recorded,
                    });
                }
            }
            for f in &done {
                if let Some(row) = &f.recorded {
                    if row.status.is_final() {
                        events.publish(QueueOutcome {
                            item: row.clone(),
                            at: row.finished_at.unwrap_or_else(|| clock.now()),
                        });
                    }
                }
            }
            let target = names
                .lookup::<QueueMsg>(names::QUEUE_DRAIN)
                .unwrap_or_else(|| fallback.clone());
            let _ = target.cast(QueueMsg::Recorded(done));
        }
    });
    tx
}

/// `complete_many`, retried briefly when the database is unreachable.
async fn complete_with_retry(
    store: &Store,
    done: &[(i64, String, String)],
    now: DateTime<Utc>,
) -> Vec<QueueItem> {
    let mut pause = Duration::from_millis(100);
    for attempt in 1..=5 {
        match store.complete_many(done, now).await {
            Ok(rows) => return rows,
            Err(err) if attempt < 5 => {
                tracing::warn!(error = %err, attempt, items = done.len(), "recording completions failed; retrying");
                tokio::time::sleep(pause).await;
                pause *= 2;
            }
            Err(err) => {
                tracing::error!(error = %err, items = done.len(), "completions not recorded; their leases will be rescued");
            }
        }
    }
    Vec::new()
}

fn validate(item: &NewQueueItem) -> Result<(), QueueError> {
    if item.workspace.trim().is_empty() {
        return Err(QueueError::EmptyWorkspace);
    }
    serde_json::from_str::<serde::de::IgnoredAny>(&item.body)
        .map_err(|e| QueueError::BadBody(e.to_string()))?;
    Ok(())
}

impl Actor for QueueDrainActor {
    type Msg = QueueMsg;
    type State = QueueDrainState;
    type Arguments = QueueDrainArgs;

    async fn pre_start(
        &self,
        myself: ActorRef<QueueMsg>,
        args: QueueDrainArgs,
    ) -> Result<QueueDrainState, ActorProcessingErr> {
        // Deliveries started by an earlier incarnation on this node may still
        // be running; count them so capacity is not overrun after a restart.
        let mut in_flight = HashMap::new();
        let mut total = 0;
        match args.store.dispatched_by(&args.node).await {
            Ok(items) => {
                for item in items {
                    *in_flight.entry(item.workspace).or_insert(0) += 1;
                    total += 1;
                }
            }
            Err(err) => tracing::warn!(error = %err, "could not read in-flight items at start"),
        }
        let completer = spawn_completer(
            args.store.clone(),
            args.events.clone(),
            args.names.clone(),
            args.clock.clone(),
            myself.clone(),
        );
        Ok(QueueDrainState {
            completer,
            workspaces: HashMap::new(),
            dirty: BTreeSet::new(),
            drain_scheduled: false,
            args,
            in_flight,
            total_in_flight: total,
            busy: BTreeSet::new(),
            starved: BTreeSet::new(),
            waiters: HashMap::new(),
            listener: None,
        })
    }

    async fn post_start(
        &self,
        myself: ActorRef<QueueMsg>,
        state: &mut QueueDrainState,
    ) -> Result<(), ActorProcessingErr> {
        if let Some(pool) = state.args.store.postgres_pool() {
            state.listener = Some(spawn_listener(pool, state.args.names.clone()));
        }
        let _ = myself.cast(QueueMsg::Tick {
            now: None,
            reply: None,
        });
        myself.send_interval(state.args.tick, || QueueMsg::Tick {
            now: None,
            reply: None,
        });
        Ok(())
    }

    async fn post_stop(
        &self,
        _myself: ActorRef<QueueMsg>,
        state: &mut QueueDrainState,
    ) -> Result<(), ActorProcessingErr> {
        if let Some(listener) = state.listener.take() {
            listener.abort();
        }
        Ok(())
    }

    async fn handle(
        &self,
        myself: ActorRef<QueueMsg>,
        message: QueueMsg,
        state: &mut QueueDrainState,
    ) -> Result<(), ActorProcessingErr> {
        match message {
            QueueMsg::Enqueue { item, reply } => {
                let result = enqueue(state, &item).await;
                let workspace = item.workspace;
                if let Some(reply) = reply {
                    let _ = reply.send(result);
                }
                let now = state.args.clock.now();
                if let Err(err) = state.drain(&myself, &workspace, now).await {
                    tracing::error!(%workspace, error = %err, "drain after enqueue failed");
                }
            }
            QueueMsg::EnqueueBatch { items, reply } => {
                let result = match items.iter().try_for_each(validate) {
                    Err(e) => Err(e),
                    Ok(()) => state
                        .args
                        .store
                        .enqueue_batch(&items, state.args.max_attempts, state.args.clock.now())
                        .await
                        .map_err(QueueError::from),
                };
                if let Some(reply) = reply {
                    let _ = reply.send(result);
                }
                let workspaces: BTreeSet<String> = items.into_iter().map(|i| i.workspace).collect();
                let now = state.args.clock.now();
                for workspace in workspaces {
                    if let Err(err) = state.drain(&myself, &workspace, now).await {
                        tracing::error!(%workspace, error = %err, "drain after enqueue failed");
                    }
                }
            }
            QueueMsg::Send { item, reply } => {
                let now = state.args.clock.now();
                match state.workspace(&item.workspace, now).await {
                    Ok(Some(_)) => {}
                    Ok(None) => {
                        let _ = reply.send(Err(QueueError::UnknownWorkspace(item.workspace)));
                        return Ok(());
                    }
                    Err(err) => {
                        let _ = reply.send(Err(err.into()));
                        return Ok(());
                    }
                }
                let enqueued = match enqueue(state, &item).await {
                    Ok(e) => e,
                    Err(err) => {
                        let _ = reply.send(Err(err));
                        return Ok(());
                    }
                };
                let now = state.args.clock.now();
                let started = match state.drain(&myself, &item.workspace, now).await {
                    Ok(started) => started,
                    Err(err) => {
                        tracing::error!(workspace = %item.workspace, error = %err, "drain after send failed");
                        Vec::new()
                    }
                };
                if started.contains(&enqueued.id) {
                    state.waiters.insert(enqueued.id, (reply, enqueued.depth));
                } else {
                    let _ = reply.send(Ok(SendOutcome::Queued {
                        queue_id: enqueued.id,
                        queue_depth: enqueued.depth,
                    }));
                }
            }
            QueueMsg::Drain { workspace } => {
                let now = state.args.clock.now();
                if let Err(err) = state.drain(&myself, &workspace, now).await {
                    tracing::error!(%workspace, error = %err, "drain failed");
                }
            }
            QueueMsg::Capacity { workspace, spare } => {
                tracing::debug!(%workspace, spare, "capacity reported");
                state.workspaces.remove(&workspace);
                if spare > 0 {
                    state.busy.remove(&workspace);
                    let now = state.args.clock.now();
                    if let Err(err) = state.drain(&myself, &workspace, now).await {
                        tracing::error!(%workspace, error = %err, "drain on capacity failed");
                    }
                }
            }
            QueueMsg::Dispatched { workspace, busy } => state.dispatched(&myself, workspace, busy),
            QueueMsg::DrainDirty => state.drain_dirty(&myself).await,
            QueueMsg::Recorded(done) => state.recorded(done),
            QueueMsg::Tick { now, reply } => {
                let now = now.unwrap_or_else(|| state.args.clock.now());
                let result = state.tick(&myself, now).await;
                if let Err(err) = &result {
                    tracing::error!(error = %err, "queue tick failed");
                }
                if let Some(reply) = reply {
                    let _ = reply.send(result);
                }
            }
            QueueMsg::List {
                workspace,
                status,
                limit,
                reply,
            } => {
                let result = match state.args.store.get_workspace(&workspace).await {
                    Ok(None) => Err(QueueError::UnknownWorkspace(workspace)),
                    Ok(Some(_)) => state
                        .args
                        .store
                        .list_queue(&workspace, status, limit)
                        .await
                        .map_err(QueueError::from),
                    Err(err) => Err(err.into()),
                };
                let _ = reply.send(result);
            }
            QueueMsg::Counts(reply) => {
                let _ = reply.send(
                    state
                        .args
                        .store
                        .queue_counts()
                        .await
                        .map_err(QueueError::from),
                );
            }
            QueueMsg::InFlight(reply) => {
                let mut by_workspace: Vec<(String, u32)> = state
                    .in_flight
                    .iter()
                    .map(|(k, v)| (k.clone(), *v))
                    .collect();
                by_workspace.sort();
                let _ = reply.send(InFlightReport {
                    total: state.total_in_flight,
                    by_workspace,
                });
            }
        }
        Ok(())
    }
}

async fn enqueue(state: &QueueDrainState, item: &NewQueueItem) -> Result<Enqueued, QueueError> {
    validate(item)?;
    Ok(state
        .args
        .store
        .enqueue(item, state.args.max_attempts, state.args.clock.now())
        .await?)
}

/// On Postgres, wake this node when any node enqueues. The connection is
/// re-established by `PgListener` itself after a drop; if it cannot listen at
/// all, the tick still drains.
fn spawn_listener(pool: sqlx::PgPool, names: Names) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut listener = match sqlx::postgres::PgListener::connect_with(&pool).await {
            Ok(l) => l,
            Err(err) => {
                tracing::warn!(error = %err, "cannot LISTEN; relying on the tick");
                return;
            }
        };
        if let Err(err) = listener
            .listen(crate::store::postgres::queue::QUEUE_CHANNEL)
            .await
        {
            tracing::warn!(error = %err, "cannot LISTEN; relying on the tick");
            return;
        }
        loop {
            match listener.recv().await {
                Ok(note) => {
                    if let Some(queue) = names.lookup::<QueueMsg>(names::QUEUE_DRAIN) {
                        let _ = queue.cast(QueueMsg::Drain {
                            workspace: note.payload().to_string(),
                        });
                    }
                }
                Err(err) => {
                    tracing::warn!(error = %err, "LISTEN connection lost; reconnecting");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            }
        }
    })
}
