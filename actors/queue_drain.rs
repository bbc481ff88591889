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
//! Throughput comes from batching both ends and from a prefetch buffer. A slot
//! is free again as soon as its dispatcher call returns; the outcome goes to a
//! completer task that writes whatever has accumulated in one statement. Claims
//! run in spawned tasks and report back (`Claimed`), and take up to the
//! workspace's room plus a node-wide prefetch allowance: the claimed-but-not-yet-
//! dispatched items wait in a per-workspace buffer, so a freed slot is refilled
//! from memory while the next claim is in flight. Buffered items are leased but
//! not delivered: they go back to `queued` without an attempt (`release`) when
//! the workspace answers busy, when their TTL passes, when they were held too
//! long (a quarter of the lease, at most [`MAX_HOLD`]) and when the actor stops.
//! If the actor dies without releasing them (killed, or the process gone), the
//! lease rescue brings them back like any lost claim, counting an attempt.

use std::collections::{BTreeSet, HashMap, VecDeque};
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

/// The longest an item waits in the prefetch buffer before it goes back to
/// the queue (for another node with free slots), whatever the lease. With a
/// short lease the bound is a quarter of it, so a buffered item is never
/// dispatched near the moment the rescue could hand it to someone else.
pub const MAX_HOLD: Duration = Duration::from_secs(30);

pub struct QueueDrainArgs {
    pub names: Names,
    pub store: Store,
    pub clock: SharedClock,
    pub dispatcher: Arc<dyn Dispatcher>,
    /// This node's name on the leases it takes.
    pub node: String,
    /// Deliveries in flight across all workspaces.
    pub concurrency: u32,
    /// Items this node may hold claimed but not yet dispatched, all
    /// workspaces together (the prefetch buffer).
    pub prefetch: u32,
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
    /// Buffered items given back (TTL passed or held too long).
    pub released: usize,
    pub drained_workspaces: usize,
}

/// In-flight and buffered counts, for tests and metrics.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct InFlightReport {
    pub total: u32,
    pub by_workspace: Vec<(String, u32)>,
    /// Claimed and waiting in the prefetch buffer, all workspaces.
    pub buffered: u32,
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

/// Claimed items not (yet) dispatched. Whoever drops one with items inside
/// (an actor incarnation killed with its buffer, a `Claimed` message dropped
/// with a stopped actor's mailbox) gives them back in a spawned task, so they
/// do not sit leased until the rescue. The normal paths empty it first.
pub struct Leased {
    store: Store,
    clock: SharedClock,
    items: VecDeque<Held>,
}

struct Held {
    item: QueueItem,
    claimed_at: DateTime<Utc>,
}

impl Leased {
    fn new(store: Store, clock: SharedClock) -> Self {
        Self {
            store,
            clock,
            items: VecDeque::new(),
        }
    }

    fn len(&self) -> u32 {
        u32::try_from(self.items.len()).unwrap_or(u32::MAX)
    }

    fn take_all(&mut self) -> Vec<Held> {
        self.items.drain(..).collect()
    }
}

impl Drop for Leased {
    fn drop(&mut self) {
        if self.items.is_empty() {
            return;
        }
        let leases = leases(self.items.drain(..));
        let store = self.store.clone();
        let clock = self.clock.clone();
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move {
                release_with_retry(&store, &leases, clock.now()).await;
            });
        }
    }
}

fn leases(held: impl IntoIterator<Item = Held>) -> Vec<(i64, String)> {
    held.into_iter()
        .map(|h| (h.item.id, h.item.lease_token.unwrap_or_default()))
        .collect()
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
    /// From a claim task: what it took (or why it could not).
    Claimed {
        workspace: String,
        seq: u64,
        result: Result<Leased, StoreError>,
    },
    /// From a release task: items are `queued` again, so look once more.
    Released {
        workspace: String,
    },
    /// From a delivery task: its dispatcher call returned (the slot is free).
    Dispatched {
        workspace: String,
        item_id: i64,
        lease_token: String,
        busy: bool,
    },
    /// Dispatch and claim for every workspace marked dirty since the last one.
    DrainDirty,
    /// A `Send` caller still has no answer: answer `Queued` (internal).
    SendOverdue {
        id: i64,
    },
    /// From the completer: outcomes durably recorded.
    Recorded(Vec<Finished>),
    /// Safety net: expire TTLs, rescue lost leases, give back buffered items
    /// held too long, drain every ready workspace.
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

/// A delivery whose dispatcher call has not returned.
struct Flight {
    workspace: String,
    /// Started by an earlier incarnation (counted at start from the leases
    /// this node holds; some of those may have been buffered, not running).
    inherited: bool,
}

/// A claim task not yet reported.
struct PendingClaim {
    seq: u64,
    limit: u32,
    /// A wake arrived meanwhile: a short answer does not mean "nothing left".
    woken: bool,
}

/// A `Send` whose item's fate is not known yet.
struct PendingSend {
    workspace: String,
    reply: RpcReplyPort<Result<SendOutcome, QueueError>>,
    depth: u64,
    /// Claims numbered above this started after the item was committed.
    after: u64,
}

pub struct QueueDrainState {
    args: QueueDrainArgs,
    /// Keyed by (item id, lease token): unique per claim, so a late report
    /// from an earlier incarnation's delivery never frees a newer one's slot.
    flying: HashMap<(i64, String), Flight>,
    in_flight: HashMap<String, u32>,
    total_in_flight: u32,
    /// The prefetch buffer, per workspace, in claim order.
    buffer: HashMap<String, Leased>,
    buffered_total: u32,
    claiming: HashMap<String, PendingClaim>,
    claiming_total: u32,
    claim_seq: u64,
    /// Workspaces whose last claim came back short: nothing more to claim
    /// until something wakes them (an enqueue, a NOTIFY, a beat, the tick).
    dry: BTreeSet<String>,
    /// Workspaces that answered busy: not drained again until a heartbeat
    /// reports room or the next tick, so a busy agent is not hammered.
    busy: BTreeSet<String>,
    /// Workspaces with work that waited for a global slot or budget.
    starved: BTreeSet<String>,
    /// `Send` callers waiting for an item's first outcome.
    waiters: HashMap<i64, (RpcReplyPort<Result<SendOutcome, QueueError>>, u64)>,
    /// `Send` callers waiting to learn whether their item was claimed.
    sends: HashMap<i64, PendingSend>,
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

/// How much longer than one delivery a `Send` caller may wait for its answer.
const SEND_ANSWER_MARGIN: Duration = Duration::from_secs(5);

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

    /// How long an item may wait in the buffer.
    fn max_hold(&self) -> chrono::Duration {
        Self::chrono((self.args.lease / 4).min(MAX_HOLD))
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

    fn ours(&self, workspace: &str) -> u32 {
        self.in_flight.get(workspace).copied().unwrap_or(0)
    }

    fn buffered(&self, workspace: &str) -> u32 {
        self.buffer.get(workspace).map_or(0, Leased::len)
    }

    /// Something may have arrived for `workspace`: claim again even if the
    /// last claim came back short.
    fn wake(&mut self, workspace: &str) {
        self.dry.remove(workspace);
        if let Some(pending) = self.claiming.get_mut(workspace) {
            pending.woken = true;
        }
    }

    /// Start what `workspace` has buffered, within its room and the global
    /// limit, then claim ahead if it has room left and the node has budget.
    async fn pump(
        &mut self,
        myself: &ActorRef<QueueMsg>,
        workspace: &str,
        now: DateTime<Utc>,
    ) -> Result<(), QueueError> {
        if self.busy.contains(workspace) {
            return Ok(());
        }
        let Some(row) = self.workspace(workspace, now).await? else {
            tracing::debug!(%workspace, "items wait: workspace not registered");
            let stale = self.unbuffer(workspace);
            self.release_later(myself, workspace, stale);
            return Ok(());
        };
        let spare = row.spare_capacity();
        self.dispatch_buffered(myself, workspace, &row, spare, now);
        self.claim_ahead(myself, workspace, spare, now);
        Ok(())
    }

    fn dispatch_buffered(
        &mut self,
        myself: &ActorRef<QueueMsg>,
        workspace: &str,
        row: &crate::store::Workspace,
        spare: u32,
        now: DateTime<Utc>,
    ) {
        let max_hold = self.max_hold();
        let mut stale = Vec::new();
        while self.ours(workspace) < spare {
            if self.total_in_flight >= self.args.concurrency {
                if self.buffered(workspace) > 0 {
                    self.starved.insert(workspace.to_string());
                }
                break;
            }
            let Some(held) = self
                .buffer
                .get_mut(workspace)
                .and_then(|b| b.items.pop_front())
            else {
                break;
            };
            self.buffered_total = self.buffered_total.saturating_sub(1);
            let ttl_passed = held.item.expires_at.is_some_and(|e| e <= now);
            if ttl_passed || now - held.claimed_at >= max_hold {
                stale.push(held);
                continue;
            }
            self.start(myself, held.item, row.clone());
        }
        if self.buffer.get(workspace).is_some_and(|b| b.len() == 0) {
            self.buffer.remove(workspace);
        }
        self.release_later(myself, workspace, stale);
    }

    fn claim_ahead(
        &mut self,
        myself: &ActorRef<QueueMsg>,
        workspace: &str,
        spare: u32,
        now: DateTime<Utc>,
    ) {
        if self.dry.contains(workspace) || self.claiming.contains_key(workspace) {
            return;
        }
        // Never claim more than the workspace could take: every buffered item
        // must be dispatchable within its room.
        let claimable = spare.saturating_sub(self.ours(workspace) + self.buffered(workspace));
        if claimable == 0 {
            return;
        }
        let held = self.total_in_flight + self.buffered_total + self.claiming_total;
        let budget = (self.args.concurrency + self.args.prefetch).saturating_sub(held);
        // One claim never reserves more than the prefetch allowance (or the
        // global slots, if larger): a workspace with a huge room must not hold
        // the whole node budget for a claim that may bring back a handful,
        // while other workspaces starve.
        let per_claim = self.args.prefetch.max(self.args.concurrency).max(1);
        let limit = claimable.min(budget).min(per_claim);
        // Claim in batches, not a few items at a time: unless slots would sit
        // idle (nothing buffered or coming to fill them), wait until at least
        // half the prefetch allowance is free again.
        let idle = held < self.args.concurrency;
        let batch = (self.args.prefetch / 2).max(1).min(claimable);
        if limit == 0 || (!idle && limit < batch) {
            self.starved.insert(workspace.to_string());
            return;
        }
        self.claim_seq += 1;
        let seq = self.claim_seq;
        self.claiming.insert(
            workspace.to_string(),
            PendingClaim {
                seq,
                limit,
                woken: false,
            },
        );
        self.claiming_total += limit;
        let store = self.args.store.clone();
        let clock = self.args.clock.clone();
        let node = self.args.node.clone();
        let lease = Self::chrono(self.args.lease);
        let workspace = workspace.to_string();
        let myself = myself.clone();
        tokio::spawn(async move {
            // The time it runs, not the time it was asked for: a claim that
            // waited (for a connection, for SQLite's writer) must not take an
            // item whose TTL passed meanwhile, or one given back meanwhile
            // because its TTL passed. A tick's explicit time may be later.
            let now = now.max(clock.now());
            let lease_until = now + lease;
            let result = store
                .claim(Claim {
                    workspace: &workspace,
                    limit,
                    now,
                    lease_until,
                    node: &node,
                })
                .await
                .map(|items| {
                    let mut leased = Leased::new(store.clone(), clock);
                    leased.items = items
                        .into_iter()
                        .map(|item| Held {
                            item,
                            claimed_at: now,
                        })
                        .collect();
                    leased
                });
            // Only the incarnation that counted this claim may take it; if it
            // is gone, the message (and the items in it) is dropped, which
            // gives the items back.
            let _ = myself.cast(QueueMsg::Claimed {
                workspace,
                seq,
                result,
            });
        });
    }

    /// A claim came back: buffer what it took, answer `Send` callers, pump.
    async fn claimed(
        &mut self,
        myself: &ActorRef<QueueMsg>,
        workspace: String,
        seq: u64,
        result: Result<Leased, StoreError>,
    ) {
        if self.claiming.get(&workspace).is_none_or(|p| p.seq != seq) {
            // Not a claim we counted (cannot happen: one claim per workspace at
            // a time). Dropping `result` gives its items back.
            tracing::warn!(%workspace, seq, "a claim nobody is waiting for; giving it back");
            return;
        }
        let Some(pending) = self.claiming.remove(&workspace) else {
            return;
        };
        self.claiming_total = self.claiming_total.saturating_sub(pending.limit);
        let mut taken: Vec<i64> = Vec::new();
        match result {
            Ok(mut leased) => {
                if leased.len() < pending.limit && !pending.woken {
                    self.dry.insert(workspace.clone());
                }
                taken = leased.items.iter().map(|h| h.item.id).collect();
                let items = leased.take_all();
                if self.busy.contains(&workspace) {
                    // It answered busy while we were claiming.
                    self.release_later(myself, &workspace, items);
                } else {
                    self.buffered_total += u32::try_from(items.len()).unwrap_or(u32::MAX);
                    let store = self.args.store.clone();
                    let clock = self.args.clock.clone();
                    self.buffer
                        .entry(workspace.clone())
                        .or_insert_with(|| Leased::new(store, clock))
                        .items
                        .extend(items);
                }
            }
            Err(err) => {
                tracing::error!(%workspace, error = %err, "claim failed");
            }
        }
        // `Send` callers this claim answers: those whose item was committed
        // before it started, and those whose item it took anyway (the claim
        // runs in a task, so it may start after a later enqueue committed).
        let settled: Vec<i64> = self
            .sends
            .iter()
            .filter(|(id, s)| {
                s.workspace == workspace && (s.after < pending.seq || taken.contains(id))
            })
            .map(|(id, _)| *id)
            .collect();
        for id in settled {
            let Some(send) = self.sends.remove(&id) else {
                continue;
            };
            if taken.contains(&id) && !self.busy.contains(&workspace) {
                self.waiters.insert(id, (send.reply, send.depth));
            } else {
                let _ = send.reply.send(Ok(SendOutcome::Queued {
                    queue_id: id,
                    queue_depth: send.depth,
                }));
            }
        }
        let now = self.args.clock.now();
        if let Err(err) = self.pump(myself, &workspace, now).await {
            tracing::error!(%workspace, error = %err, "drain after a claim failed");
        }
        self.settle_sends(&workspace);
        // The claim's budget is free again: workspaces that were starved of
        // it must get their turn now. Waiting for a delivery to return would
        // wait forever when this claim came back empty and nothing is in
        // flight (then only the safety-net tick would find them).
        self.schedule_starved(myself);
    }

    /// Drain the starved workspaces soon (once, behind what is in the mailbox).
    fn schedule_starved(&mut self, myself: &ActorRef<QueueMsg>) {
        if self.starved.is_empty() {
            return;
        }
        self.dirty.append(&mut self.starved);
        if !self.drain_scheduled {
            self.drain_scheduled = true;
            let _ = myself.cast(QueueMsg::DrainDirty);
        }
    }

    /// `Send` callers whose workspace has no claim under way will not learn
    /// more from one: their item waits in the queue.
    fn settle_sends(&mut self, workspace: &str) {
        if self.claiming.contains_key(workspace) {
            return;
        }
        let settled: Vec<i64> = self
            .sends
            .iter()
            .filter(|(_, s)| s.workspace == workspace)
            .map(|(id, _)| *id)
            .collect();
        for id in settled {
            if let Some(send) = self.sends.remove(&id) {
                let _ = send.reply.send(Ok(SendOutcome::Queued {
                    queue_id: id,
                    queue_depth: send.depth,
                }));
            }
        }
    }

    /// Give buffered items back in a spawned task; a `Released` message
    /// wakes the workspace once they are `queued` again.
    fn release_later(&mut self, myself: &ActorRef<QueueMsg>, workspace: &str, held: Vec<Held>) {
        if held.is_empty() {
            return;
        }
        self.answer_released(&held);
        let leases = leases(held);
        let store = self.args.store.clone();
        let now = self.args.clock.now();
        let workspace = workspace.to_string();
        let myself = myself.clone();
        tokio::spawn(async move {
            release_with_retry(&store, &leases, now).await;
            let _ = myself.cast(QueueMsg::Released { workspace });
        });
    }

    /// `Send` callers whose item went back to the queue instead of out.
    fn answer_released(&mut self, held: &[Held]) {
        for h in held {
            if let Some((reply, depth)) = self.waiters.remove(&h.item.id) {
                let _ = reply.send(Ok(SendOutcome::Queued {
                    queue_id: h.item.id,
                    queue_depth: depth,
                }));
            }
        }
    }

    /// Everything buffered for `workspace`, out of the buffer.
    fn unbuffer(&mut self, workspace: &str) -> Vec<Held> {
        let held = self
            .buffer
            .remove(workspace)
            .map(|mut b| b.take_all())
            .unwrap_or_default();
        self.buffered_total = self
            .buffered_total
            .saturating_sub(u32::try_from(held.len()).unwrap_or(u32::MAX));
        held
    }

    fn start(
        &mut self,
        myself: &ActorRef<QueueMsg>,
        item: QueueItem,
        row: crate::store::Workspace,
    ) {
        let key = (item.id, item.lease_token.clone().unwrap_or_default());
        self.flying.insert(
            key,
            Flight {
                workspace: item.workspace.clone(),
                inherited: false,
            },
        );
        *self.in_flight.entry(item.workspace.clone()).or_insert(0) += 1;
        self.total_in_flight += 1;
        self.spawn_delivery(myself, item, row);
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
                item_id: item.id,
                lease_token: item.lease_token.clone().unwrap_or_default(),
                busy: matches!(result, DispatchResult::Busy { .. }),
            };
            // The completer outlives the actor incarnation that spawned it, so
            // this send only fails if the process is going down; then the
            // lease runs out and the item is rescued.
            let _ = completer.send(Completion { item, result, at });
            // Prefer the incarnation registered now (the one that spawned us may
            // have been restarted meanwhile; it counted us as inherited).
            let target = names
                .lookup::<QueueMsg>(names::QUEUE_DRAIN)
                .unwrap_or(fallback);
            let _ = target.cast(dispatched);
        });
    }

    /// A dispatcher call returned: free its slot and schedule one pump for
    /// every workspace that may now have room.
    fn dispatched(
        &mut self,
        myself: &ActorRef<QueueMsg>,
        workspace: String,
        key: (i64, String),
        busy: bool,
    ) {
        if let Some(flight) = self.flying.remove(&key) {
            self.land(&flight.workspace);
        }
        if busy {
            self.busy.insert(workspace.clone());
            // Its buffered items would only hammer it: back to the queue.
            let held = self.unbuffer(&workspace);
            self.release_later(myself, &workspace, held);
        }
        self.dirty.insert(workspace);
        self.dirty.append(&mut self.starved);
        if !self.drain_scheduled {
            self.drain_scheduled = true;
            let _ = myself.cast(QueueMsg::DrainDirty);
        }
    }

    fn land(&mut self, workspace: &str) {
        if let Some(n) = self.in_flight.get_mut(workspace) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                self.in_flight.remove(workspace);
            }
            self.total_in_flight = self.total_in_flight.saturating_sub(1);
        }
    }

    async fn drain_dirty(&mut self, myself: &ActorRef<QueueMsg>) {
        self.drain_scheduled = false;
        let now = self.args.clock.now();
        for workspace in std::mem::take(&mut self.dirty) {
            if let Err(err) = self.pump(myself, &workspace, now).await {
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

    /// Buffered items whose TTL passed or that were held too long, out of the
    /// buffer.
    fn stale_buffered(&mut self, now: DateTime<Utc>) -> Vec<Held> {
        let max_hold = self.max_hold();
        let mut stale = Vec::new();
        for leased in self.buffer.values_mut() {
            let (keep, out): (VecDeque<Held>, VecDeque<Held>) =
                leased.items.drain(..).partition(|h| {
                    !(h.item.expires_at.is_some_and(|e| e <= now) || now - h.claimed_at >= max_hold)
                });
            leased.items = keep;
            stale.extend(out);
        }
        self.buffer.retain(|_, b| b.len() > 0);
        self.buffered_total = self
            .buffered_total
            .saturating_sub(u32::try_from(stale.len()).unwrap_or(u32::MAX));
        stale
    }

    /// Deliveries counted at start from this node's leases that are no longer
    /// in flight (they finished, or were an earlier incarnation's buffer and
    /// went back to the queue): free their slots.
    async fn reconcile_inherited(&mut self) -> Result<(), StoreError> {
        if !self.flying.values().any(|f| f.inherited) {
            return Ok(());
        }
        let held: std::collections::HashSet<(i64, String)> = self
            .args
            .store
            .dispatched_by(&self.args.node)
            .await?
            .into_iter()
            .map(|i| (i.id, i.lease_token.unwrap_or_default()))
            .collect();
        let gone: Vec<(i64, String)> = self
            .flying
            .iter()
            .filter(|(key, f)| f.inherited && !held.contains(*key))
            .map(|(key, _)| key.clone())
            .collect();
        for key in gone {
            if let Some(flight) = self.flying.remove(&key) {
                self.land(&flight.workspace);
            }
        }
        Ok(())
    }

    async fn tick(
        &mut self,
        myself: &ActorRef<QueueMsg>,
        now: DateTime<Utc>,
    ) -> Result<DrainTickReport, QueueError> {
        self.args
            .names
            .report_alive(names::QUEUE_DRAIN, now, self.args.tick);
        // Give back stale buffered items first, so an item whose TTL passed
        // in the buffer is expired just below like any queued one.
        let stale = self.stale_buffered(now);
        self.answer_released(&stale);
        let released = release_with_retry(&self.args.store, &leases(stale), now).await;
        for item in &released {
            tracing::debug!(item = item.id, workspace = %item.workspace, "gave back a buffered item");
        }
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
        self.reconcile_inherited().await?;
        self.busy.clear();
        self.workspaces.clear();
        self.dry.clear();
        let ready = self.args.store.ready_workspaces(now).await?;
        let mut workspaces: BTreeSet<String> = ready.iter().cloned().collect();
        workspaces.extend(self.buffer.keys().cloned());
        for workspace in &workspaces {
            self.wake(workspace);
            self.pump(myself, workspace, now).await?;
        }
        Ok(DrainTickReport {
            expired: expired.len(),
            rescued: rescued.len(),
            released: released.len(),
            drained_workspaces: ready.len(),
        })
    }
}

/// `release`, retried briefly when the database is unreachable. If it stays
/// unreachable the items stay leased and the rescue brings them back (counting
/// an attempt): late, but never lost.
async fn release_with_retry(
    store: &Store,
    leases: &[(i64, String)],
    now: DateTime<Utc>,
) -> Vec<QueueItem> {
    if leases.is_empty() {
        return Vec::new();
    }
    let mut pause = Duration::from_millis(100);
    for attempt in 1..=5 {
        match store.release(leases, now).await {
            Ok(rows) => return rows,
            Err(err) if attempt < 5 => {
                tracing::warn!(error = %err, attempt, items = leases.len(), "giving back buffered items failed; retrying");
                tokio::time::sleep(pause).await;
                pause *= 2;
            }
            Err(err) => {
                tracing::error!(error = %err, items = leases.len(), "buffered items not given back; their leases will be rescued");
            }
        }
    }
    Vec::new()
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
        // Some may have been its buffer, not yet given back: the tick frees
        // those slots once their leases are no longer ours.
        let mut flying = HashMap::new();
        let mut in_flight = HashMap::new();
        let mut total = 0;
        match args.store.dispatched_by(&args.node).await {
            Ok(items) => {
                for item in items {
                    *in_flight.entry(item.workspace.clone()).or_insert(0) += 1;
                    total += 1;
                    flying.insert(
                        (item.id, item.lease_token.unwrap_or_default()),
                        Flight {
                            workspace: item.workspace,
                            inherited: true,
                        },
                    );
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
            flying,
            in_flight,
            total_in_flight: total,
            buffer: HashMap::new(),
            buffered_total: 0,
            claiming: HashMap::new(),
            claiming_total: 0,
            claim_seq: 0,
            dry: BTreeSet::new(),
            busy: BTreeSet::new(),
            starved: BTreeSet::new(),
            waiters: HashMap::new(),
            sends: HashMap::new(),
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
        // Give the buffer back before the next incarnation (or node) starts,
        // so nothing waits for the lease rescue or costs an attempt.
        let held: Vec<Held> = state
            .buffer
            .values_mut()
            .flat_map(Leased::take_all)
            .collect();
        state.buffer.clear();
        state.buffered_total = 0;
        let now = state.args.clock.now();
        let released = release_with_retry(&state.args.store, &leases(held), now).await;
        if !released.is_empty() {
            tracing::info!(items = released.len(), "gave back buffered items on stop");
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
                state.wake(&workspace);
                if let Err(err) = state.pump(&myself, &workspace, now).await {
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
                    state.wake(&workspace);
                    if let Err(err) = state.pump(&myself, &workspace, now).await {
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
                if enqueued.deduplicated {
                    // Another caller's item: it is already on its way.
                    let _ = reply.send(Ok(SendOutcome::Queued {
                        queue_id: enqueued.id,
                        queue_depth: enqueued.depth,
                    }));
                    return Ok(());
                }
                let workspace = item.workspace;
                state.sends.insert(
                    enqueued.id,
                    PendingSend {
                        workspace: workspace.clone(),
                        reply,
                        depth: enqueued.depth,
                        after: state.claim_seq,
                    },
                );
                // A caller never waits longer than one delivery (plus a
                // margin) for an answer: the item is durable either way, and
                // `Queued` is a true answer while it has not been delivered.
                let id = enqueued.id;
                myself.send_after(
                    state.args.delivery_timeout + SEND_ANSWER_MARGIN,
                    move || QueueMsg::SendOverdue { id },
                );
                let now = state.args.clock.now();
                state.wake(&workspace);
                if let Err(err) = state.pump(&myself, &workspace, now).await {
                    tracing::error!(%workspace, error = %err, "drain after send failed");
                }
                state.settle_sends(&workspace);
            }
            QueueMsg::SendOverdue { id } => {
                let pending = match state.sends.remove(&id) {
                    Some(send) => Some((send.reply, send.depth)),
                    None => state.waiters.remove(&id),
                };
                if let Some((reply, depth)) = pending {
                    tracing::warn!(item = id, "no outcome in time for a Send; answering queued");
                    let _ = reply.send(Ok(SendOutcome::Queued {
                        queue_id: id,
                        queue_depth: depth,
                    }));
                }
            }
            QueueMsg::Drain { workspace } => {
                let now = state.args.clock.now();
                state.wake(&workspace);
                if let Err(err) = state.pump(&myself, &workspace, now).await {
                    tracing::error!(%workspace, error = %err, "drain failed");
                }
            }
            QueueMsg::Capacity { workspace, spare } => {
                tracing::debug!(%workspace, spare, "capacity reported");
                state.workspaces.remove(&workspace);
                if spare > 0 {
                    state.busy.remove(&workspace);
                    state.wake(&workspace);
                    let now = state.args.clock.now();
                    if let Err(err) = state.pump(&myself, &workspace, now).await {
                        tracing::error!(%workspace, error = %err, "drain on capacity failed");
                    }
                }
            }
            QueueMsg::Claimed {
                workspace,
                seq,
                result,
            } => state.claimed(&myself, workspace, seq, result).await,
            QueueMsg::Released { workspace } => {
                state.wake(&workspace);
                let now = state.args.clock.now();
                if let Err(err) = state.pump(&myself, &workspace, now).await {
                    tracing::error!(%workspace, error = %err, "drain after a release failed");
                }
            }
            QueueMsg::Dispatched {
                workspace,
                item_id,
                lease_token,
                busy,
            } => state.dispatched(&myself, workspace, (item_id, lease_token), busy),
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
                    buffered: state.buffered_total,
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
