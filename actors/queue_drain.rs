//! The QueueDrainActor: the one path by which anything reaches a workspace.
//!
//! A thin shell around [`DrainCore`]: each message becomes an event for the
//! core, and the core's effects become tasks (claims, deliveries, give-backs,
//! row reads) that report back by message, so the mailbox never waits on the
//! database or an agent. Enqueues are written here and answered once durable;
//! the completer (a task with a bounded channel) writes outcomes in batches
//! and publishes end states on the [`EventBus`]; the tick's database work
//! (expire, rescue) runs in a task too. Wakes come from enqueues, beats with
//! room (`Capacity`), finished deliveries, and other nodes' enqueues through
//! the store's notification channel; the tick is only the safety net.
//!
//! Buffered items are given back in `post_stop`; if the actor panics or is
//! killed, dropping its state gives them back, and the listener task dies
//! with it.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort};

use crate::clock::SharedClock;
use crate::dispatch::Dispatcher;
use crate::drain::claims::ClaimTask;
use crate::drain::completer::Completer;
use crate::drain::core::RECORD_PATIENCE;
use crate::drain::delivery::DeliveryTask;
use crate::drain::giveback::give_back;
use crate::drain::ports::{ReplyPorts, OVERDUE_CHECK};
use crate::drain::sweep::SweepTask;
use crate::drain::{listen, CoreConfig, DrainCore, Effect};
use crate::events::EventBus;
use crate::ingest::Ingest;
use crate::messages::queue::{
    DrainReport, DrainTickReport, Internal, QueueError, QueueMsg, QueueOutcome, Quiesced, Reply,
    SendOutcome,
};
use crate::model::outcome::Backoff;
use crate::model::time;
use crate::names::{self, Names};
use crate::store::Store;
use crate::tasks::Owned;

pub struct QueueDrainActor;

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
    /// The group-committed enqueue path, shared by every incarnation.
    pub ingest: Ingest,
}

/// The longest an item waits in the prefetch buffer before it goes back to
/// the queue (for another node with free slots), whatever the lease. With a
/// short lease the bound is a quarter of it, so a buffered item is never
/// dispatched near the moment the rescue could hand it to someone else.
pub const MAX_HOLD: Duration = Duration::from_secs(30);

/// How long a workspace row is trusted. Beats on this node replace it at
/// once; this bounds staleness for beats received by other nodes.
const WORKSPACE_CACHE: Duration = Duration::from_secs(1);

/// How much longer than one delivery a `Send` caller may wait for its answer.
const SEND_ANSWER_MARGIN: Duration = Duration::from_secs(5);

/// How long an `Enqueue` message may wait for its write to begin.
const ENQUEUE_WITHIN: Duration = Duration::from_secs(10);

pub struct QueueDrainState {
    args: QueueDrainArgs,
    core: DrainCore,
    /// `Send` callers, by their item's id.
    callers: ReplyPorts<Reply<SendOutcome>>,
    /// A check for overdue callers is on its way.
    overdue_check: bool,
    completer: Completer,
    _listener: Owned<()>,
    /// Ticks asked for while one's database work is running.
    ticks: VecDeque<(DateTime<Utc>, Option<Reply<DrainTickReport>>)>,
    sweeping: bool,
    /// The caller of `Quiesce`, answered once quiet.
    quiescing: Option<RpcReplyPort<Quiesced>>,
    me: ActorRef<QueueMsg>,
}

impl QueueDrainState {
    fn now(&self) -> DateTime<Utc> {
        self.args.clock.now()
    }

    /// Carry out the core's decisions.
    fn run(&mut self, effects: Vec<Effect>) {
        for effect in effects {
            match effect {
                Effect::LoadWorkspace { workspace } => {
                    let store = self.args.store.clone();
                    let me = self.me.clone();
                    tokio::spawn(async move {
                        let result = store.get_workspace(&workspace).await;
                        report(&me, DrainReport::Loaded { workspace, result });
                    });
                }
                Effect::Claim {
                    workspace,
                    seq,
                    limit,
                    now,
                } => ClaimTask {
                    store: self.args.store.clone(),
                    clock: self.args.clock.clone(),
                    node: self.args.node.clone(),
                    lease: self.args.lease,
                    workspace,
                    seq,
                    limit,
                    now,
                }
                .spawn(self.me.clone()),
                Effect::Deliver { item, workspace } => DeliveryTask {
                    dispatcher: self.args.dispatcher.clone(),
                    clock: self.args.clock.clone(),
                    names: self.args.names.clone(),
                    completer: self.completer.clone(),
                    timeout: self.args.delivery_timeout,
                    item: *item,
                    workspace: *workspace,
                }
                .spawn(self.me.clone()),
                Effect::GiveBack {
                    workspace,
                    expired,
                    released,
                } => {
                    let (store, events) = (self.args.store.clone(), self.args.events.clone());
                    let (now, me) = (self.now(), self.me.clone());
                    tokio::spawn(async move {
                        give_back(&store, &events, &expired, &released, now).await;
                        report(&me, DrainReport::Released { workspace });
                    });
                }
                Effect::Answer { item_id, outcome } => {
                    if let Some(reply) = self.callers.remove(&item_id) {
                        let _ = reply.send(Ok(outcome));
                    }
                }
                Effect::AnswerFromRow { item_id, depth } => {
                    if let Some(reply) = self.callers.remove(&item_id) {
                        let store = self.args.store.clone();
                        tokio::spawn(async move {
                            let answer = match store.get_queue_item(item_id).await {
                                Ok(Some(row)) => Ok(SendOutcome::of_row(row, depth)),
                                // Gone (pruned) or unreadable: it is durable either way.
                                Ok(None) | Err(_) => Ok(SendOutcome::Queued {
                                    queue_id: item_id,
                                    queue_depth: depth,
                                }),
                            };
                            let _ = reply.send(answer);
                        });
                    }
                }
                Effect::DrainSoon => report(&self.me, DrainReport::DrainDirty),
                Effect::RecordOverdueLater { item_id } => {
                    self.me.send_after(RECORD_PATIENCE, move || {
                        QueueMsg::Internal(Internal(DrainReport::RecordOverdue { id: item_id }))
                    });
                }
            }
        }
    }

    /// A committed item's caller waits here for its fate.
    fn await_item(&mut self, id: i64, workspace: &str, depth: u64, reply: Reply<SendOutcome>) {
        // A caller never waits longer than one delivery (plus a margin): the
        // item is durable either way, and `Queued` is a true answer.
        let overdue_at =
            tokio::time::Instant::now() + self.args.delivery_timeout + SEND_ANSWER_MARGIN;
        self.callers.insert(id, reply, overdue_at);
        let now = self.now();
        let effects = self.core.send(id, workspace, depth, now);
        self.run(effects);
        self.arm_overdue_check();
    }

    /// Look for overdue callers in a second, if any wait and no look is due.
    fn arm_overdue_check(&mut self) {
        if self.overdue_check || self.callers.is_empty() {
            return;
        }
        self.overdue_check = true;
        self.me.send_after(OVERDUE_CHECK, || {
            QueueMsg::Internal(Internal(DrainReport::CheckOverdue))
        });
    }

    /// Answer the callers that waited longer than a delivery may take.
    fn check_overdue(&mut self) -> Vec<Effect> {
        self.overdue_check = false;
        let mut effects = Vec::new();
        for id in self.callers.overdue(tokio::time::Instant::now()) {
            let answered = self.core.send_overdue(id);
            if answered.is_empty() {
                // The core holds no such caller (cannot happen: both let go
                // together); the item is durable, so `Queued` is still true.
                if let Some(reply) = self.callers.remove(&id) {
                    let _ = reply.send(Ok(SendOutcome::Queued {
                        queue_id: id,
                        queue_depth: 0,
                    }));
                }
            } else {
                tracing::warn!(item = id, "no outcome in time for a Send; answering queued");
            }
            effects.extend(answered);
        }
        effects
    }

    /// Start a tick's database work, or queue it behind the one running.
    fn tick(&mut self, now: DateTime<Utc>, reply: Option<Reply<DrainTickReport>>) {
        if self.sweeping {
            self.ticks.push_back((now, reply));
            return;
        }
        self.sweeping = true;
        // Test builds: a drain that crashes on every tick.
        fail::fail_point!("queue.tick");
        self.args
            .names
            .report_alive(names::QUEUE_DRAIN, now, self.args.tick);
        let (stale, effects) = self.core.tick(now);
        self.run(effects);
        let task = SweepTask {
            store: self.args.store.clone(),
            events: self.args.events.clone(),
            stale,
            check_leases_of: self.core.has_inherited().then(|| self.args.node.clone()),
            now,
        };
        let me = self.me.clone();
        tokio::spawn(async move {
            let result = task.run().await;
            report(&me, DrainReport::Swept { now, result, reply });
        });
    }

    fn swept(
        &mut self,
        now: DateTime<Utc>,
        result: Result<crate::messages::queue::Swept, crate::store::StoreError>,
        reply: Option<Reply<DrainTickReport>>,
    ) {
        self.sweeping = false;
        let answer = match result {
            Ok(swept) => {
                let effects = self.core.swept(now, &swept.ready, swept.ours.as_deref());
                self.run(effects);
                Ok(DrainTickReport {
                    expired: swept.expired.len(),
                    rescued: swept.rescued.len(),
                    released: swept.released,
                    drained_workspaces: swept.ready.len(),
                })
            }
            Err(err) => {
                tracing::error!(error = %err, "queue tick failed");
                Err(QueueError::from(err))
            }
        };
        if let Some(reply) = reply {
            let _ = reply.send(answer);
        }
        if let Some((now, reply)) = self.ticks.pop_front() {
            self.tick(now, reply);
        }
    }
}

fn report(drain: &ActorRef<QueueMsg>, report: DrainReport) {
    let _ = drain.cast(QueueMsg::Internal(Internal(report)));
}

impl Drop for QueueDrainState {
    /// Killed or panicked: `post_stop` did not run, so the buffer goes back
    /// from here (in a task: a drop cannot wait).
    fn drop(&mut self) {
        let held = self.core.take_buffered();
        if held.is_empty() {
            return;
        }
        let (store, events, now) = (
            self.args.store.clone(),
            self.args.events.clone(),
            self.now(),
        );
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move {
                give_back(&store, &events, &[], &held, now).await;
            });
        }
    }
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
        // From pre_start: see `Names::report_alive`.
        args.names
            .report_alive(names::QUEUE_DRAIN, args.clock.now(), args.tick);
        let mut core = DrainCore::new(CoreConfig {
            concurrency: args.concurrency,
            prefetch: args.prefetch,
            max_hold: time::span((args.lease / 4).min(MAX_HOLD)),
            cache_for: time::span(WORKSPACE_CACHE),
        });
        // Deliveries started by an earlier incarnation on this node may
        // still be running; count them so capacity is not overrun. Some may
        // have been its buffer: the tick frees those once they are not ours.
        match args.store.dispatched_by(&args.node).await {
            Ok(items) => core.inherit(
                items
                    .into_iter()
                    .map(|i| (i.id, i.lease_token.unwrap_or_default(), i.workspace))
                    .collect(),
            ),
            Err(err) => tracing::warn!(error = %err, "could not read in-flight items at start"),
        }
        let completer = Completer::start(
            args.store.clone(),
            args.events.clone(),
            args.names.clone(),
            args.backoff,
            myself.clone(),
        );
        let listener = listen::spawn(args.store.clone(), args.names.clone());
        Ok(QueueDrainState {
            args,
            core,
            callers: ReplyPorts::default(),
            overdue_check: false,
            completer,
            _listener: listener,
            ticks: VecDeque::new(),
            sweeping: false,
            quiescing: None,
            me: myself,
        })
    }

    async fn post_start(
        &self,
        myself: ActorRef<QueueMsg>,
        state: &mut QueueDrainState,
    ) -> Result<(), ActorProcessingErr> {
        let now = state.now();
        state.tick(now, None);
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
        // Give the buffer back before the next incarnation (or node) starts,
        // so nothing waits for the lease rescue or costs an attempt.
        let held = state.core.take_buffered();
        let now = state.now();
        let back = give_back(&state.args.store, &state.args.events, &[], &held, now).await;
        if back.released > 0 {
            tracing::info!(items = back.released, "gave back buffered items on stop");
        }
        Ok(())
    }

    async fn handle(
        &self,
        _myself: ActorRef<QueueMsg>,
        message: QueueMsg,
        state: &mut QueueDrainState,
    ) -> Result<(), ActorProcessingErr> {
        let now = state.now();
        match message {
            // Writes happen beside the mailbox (the ingest's group commit wakes
            // the workspace once the item is durable), never inside it.
            QueueMsg::Enqueue { item, reply } => {
                let ingest = state.args.ingest.clone();
                tokio::spawn(async move {
                    let result = ingest.enqueue(item, ENQUEUE_WITHIN).await;
                    if let Some(reply) = reply {
                        let _ = reply.send(result.map_err(QueueError::from));
                    }
                });
            }
            // A batch is one transaction of its own, as its caller grouped it,
            // through the same writer (its depths estimated, not counted).
            QueueMsg::EnqueueBatch { items, reply } => {
                let ingest = state.args.ingest.clone();
                tokio::spawn(async move {
                    let result = ingest.enqueue_batch(items, ENQUEUE_WITHIN).await;
                    if let Some(reply) = reply {
                        let _ = reply.send(result.map_err(QueueError::from));
                    }
                });
            }
            QueueMsg::Await {
                id,
                workspace,
                depth,
                reply,
            } => state.await_item(id, &workspace, depth, reply),
            QueueMsg::Wake { workspace } => {
                let effects = state.core.wake(&workspace, now);
                state.run(effects);
            }
            QueueMsg::Capacity(row) => {
                let effects = state.core.capacity(*row, now);
                state.run(effects);
            }
            QueueMsg::Tick { now: at, reply } => state.tick(at.unwrap_or(now), reply),
            QueueMsg::InFlight(reply) => {
                let _ = reply.send(state.core.in_flight_report());
            }
            QueueMsg::Quiesce { within, reply } => {
                tracing::info!(
                    in_flight = state.core.in_flight_report().total,
                    "quiescing the drain"
                );
                let effects = state.core.quiesce(now);
                state.run(effects);
                state.quiescing = Some(reply);
                state.me.send_after(within, || {
                    QueueMsg::Internal(Internal(DrainReport::QuiesceDeadline))
                });
            }
            QueueMsg::Internal(Internal(DrainReport::QuiesceDeadline)) => {
                if let Some(reply) = state.quiescing.take() {
                    let left = state.core.in_flight_report().total;
                    tracing::warn!(
                        left_in_flight = left,
                        "shutdown timeout: deliveries left for the lease rescue"
                    );
                    let _ = reply.send(Quiesced {
                        left_in_flight: left,
                    });
                }
            }
            QueueMsg::Internal(Internal(report)) => handle_report(state, report, now),
        }
        if state.quiescing.is_some() && state.core.quiet() {
            if let Some(reply) = state.quiescing.take() {
                let _ = reply.send(Quiesced { left_in_flight: 0 });
            }
        }
        Ok(())
    }
}

/// The actor's own tasks reporting back.
fn handle_report(state: &mut QueueDrainState, report: DrainReport, now: DateTime<Utc>) {
    let effects = match report {
        DrainReport::Claimed {
            workspace,
            seq,
            result,
        } => {
            let items = result.map(|leased| leased.take()).map_err(|err| {
                tracing::error!(%workspace, error = %err, "claim failed");
            });
            state.core.claimed(&workspace, seq, items, now)
        }
        DrainReport::Loaded { workspace, result } => {
            let row = result.map_err(|err| {
                tracing::warn!(%workspace, error = %err, "could not read the workspace");
            });
            state.core.loaded(&workspace, row, now)
        }
        DrainReport::Released { workspace } => state.core.released(&workspace, now),
        DrainReport::Dispatched {
            workspace,
            item_id,
            lease_token,
            busy,
            response,
        } => state
            .core
            .dispatched(&workspace, (item_id, lease_token), busy, response, now),
        DrainReport::RecordOverdue { id } => {
            let effects = state.core.record_overdue(id);
            if !effects.is_empty() {
                tracing::warn!(
                    item = id,
                    "outcome not written in time; answering from memory"
                );
            }
            effects
        }
        DrainReport::Recorded(done) => state
            .core
            .recorded(done.into_iter().map(|f| (f.item_id, f.recorded)).collect()),
        DrainReport::DrainDirty => state.core.drain_dirty(now),
        DrainReport::CheckOverdue => {
            let effects = state.check_overdue();
            state.run(effects);
            state.arm_overdue_check();
            Vec::new()
        }
        DrainReport::Swept { now, result, reply } => {
            state.swept(now, result, reply);
            Vec::new()
        }
        DrainReport::Woken(crate::store::Wake::Workspace(workspace)) => {
            state.core.wake(&workspace, now)
        }
        DrainReport::Woken(crate::store::Wake::Missed) => {
            state.tick(now, None);
            Vec::new()
        }
        DrainReport::QuiesceDeadline => Vec::new(),
    };
    state.run(effects);
}
