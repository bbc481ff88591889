//! The SchedulerActor: decides *when*, claims each slot once across all nodes,
//! hands the fire to the queue and writes down how it ended.
//!
//! It replaces schedulers whose bugs are the spec for this file (see the seeds):
//! a `NULL next_run_at` that never fired again (here: start-up repair, and a
//! row that cannot be parsed is marked invalid instead of being left unfired
//! or hot-looping), crons dropped when the target was busy (here: the fire
//! waits in the queue for the defer window, and a heartbeat with room delivers
//! it), a panic that killed the loop (here: the dispatcher runs in the queue's
//! tasks, and this actor is supervised), and "run, then compute next" (here:
//! the next slot is computed first and written by the same compare-and-set
//! that claims the slot, so a fire can never leave its schedule un-advanced).
//!
//! A tick: read a batch of due schedules → for each compute the next fire
//! strictly after max(slot, now) (so slots missed while down coalesce into one)
//! → claim all slots in one compare-and-set batch that also writes their run
//! records → enqueue the won fires with key `cron:{id}:{slot}` and TTL = the
//! defer window → later, the queue's outcome events (or reconciliation, when an
//! event was lost to a restart) write each run's status.

use std::collections::HashMap;
use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};
use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort};
use serde::Serialize;
use tokio::task::JoinHandle;

use super::names::{self, Names};
use super::queue_drain::{QueueMsg, QueueOutcome};
use crate::clock::SharedClock;
use crate::dispatch::a2a_message;
use crate::events::EventBus;
use crate::schedule::{DstPolicy, ScheduleSpec, SpecError};
use crate::store::schedules::first_fire;
use crate::store::{
    FinishedRun, ManualRun, NewQueueItem, NewSchedule, RunOutcome, RunStatus, Schedule,
    ScheduleError, SchedulePatch, ScheduleRun, SlotClaim, Store, StoreError,
};

pub struct SchedulerActor;

/// Due schedules handled in one tick at most `batch × MAX_ROUNDS`; more waits
/// for a follow-up tick sent to ourselves, so the mailbox is never held long.
const MAX_ROUNDS: usize = 40;
/// How often (clock time) reconciliation runs besides the first tick.
const RECONCILE_EVERY: chrono::Duration = chrono::Duration::minutes(5);
/// Runs reconciled per pass.
const RECONCILE_LIMIT: u32 = 500;
/// A `dispatched` run with no queue item this long after it was claimed lost
/// its enqueue (the node died, the queue refused); it is enqueued again.
const ORPHAN_GRACE: chrono::Duration = chrono::Duration::seconds(30);
/// How long the answer to an enqueue is awaited before reconciliation is asked for.
const ENQUEUE_TIMEOUT: Duration = Duration::from_secs(60);
/// Parsed specs kept between ticks (a spec is parsed once, not once per fire).
const SPEC_CACHE: usize = 10_000;

pub struct SchedulerArgs {
    pub names: Names,
    pub store: Store,
    pub clock: SharedClock,
    /// The safety-net tick; the timer for the earliest `next_run_at` is what
    /// normally wakes the actor.
    pub tick: Duration,
    /// Due schedules read per round.
    pub batch: u32,
    /// Where the QueueDrainActor publishes outcomes.
    pub queue_events: EventBus<QueueOutcome>,
    /// Where this actor publishes.
    pub events: EventBus<ScheduleEvent>,
}

/// What subscribers hear about schedules.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "event")]
pub enum ScheduleEvent {
    /// A fire was delivered (`ok`, `stale`) or failed for good (`error`).
    CronExecuted {
        schedule_id: i64,
        name: String,
        workspace: String,
        slot: DateTime<Utc>,
        key: String,
        status: RunStatus,
        error: Option<String>,
        at: DateTime<Utc>,
    },
    /// A fire expired in the queue: the workspace stayed busy past the defer window.
    CronSkipped {
        schedule_id: i64,
        name: String,
        workspace: String,
        slot: DateTime<Utc>,
        key: String,
        reason: String,
        at: DateTime<Utc>,
    },
    /// A slot older than the starting deadline: recorded, not fired.
    CronMissed {
        schedule_id: i64,
        name: String,
        workspace: String,
        slot: DateTime<Utc>,
        key: String,
        at: DateTime<Utc>,
    },
    /// A row whose spec or zone does not parse left the due set.
    ScheduleInvalid {
        schedule_id: i64,
        name: String,
        error: String,
        at: DateTime<Utc>,
    },
}

#[derive(Debug, thiserror::Error)]
pub enum SchedulerError {
    #[error(transparent)]
    Schedule(#[from] ScheduleError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("schedule {0} not found")]
    NotFound(i64),
    #[error("the queue did not take the fire: {0}")]
    Queue(String),
}

impl SchedulerError {
    /// The input field to blame (for an HTTP 400), when there is one.
    pub fn field(&self) -> Option<&'static str> {
        match self {
            SchedulerError::Schedule(e) => e.field(),
            _ => None,
        }
    }
}

/// One slot this node fired (or recorded as missed).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FiredSlot {
    pub schedule_id: i64,
    pub slot: DateTime<Utc>,
    pub key: String,
}

/// What one tick did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct SchedulerTickReport {
    /// Due schedules read.
    pub due: usize,
    /// Slots this node claimed and enqueued.
    pub fired: Vec<FiredSlot>,
    /// Slots this node claimed and recorded `missed`.
    pub missed: Vec<FiredSlot>,
    /// Claims another node (or an edit) got to first.
    pub lost: usize,
    /// Schedules marked invalid.
    pub invalid: Vec<i64>,
    /// Runs whose outcome reconciliation wrote.
    pub reconciled: usize,
    /// Orphaned runs enqueued again (or given up as skipped).
    pub requeued: usize,
}

/// Create a schedule, or change one.
#[derive(Debug, Clone, PartialEq)]
pub enum Upsert {
    Create(NewSchedule),
    Update { id: i64, patch: SchedulePatch },
}

pub type Reply<T> = RpcReplyPort<Result<T, SchedulerError>>;

pub enum SchedulerMsg {
    /// Fire what is due at `now` (the clock when `None`), reconcile outcomes.
    Tick {
        now: Option<DateTime<Utc>>,
        reply: Option<Reply<SchedulerTickReport>>,
    },
    /// Fire a schedule now, outside its timetable (key `cron:{id}:manual:{now}`).
    RunNow {
        schedule: i64,
        reply: Option<Reply<ScheduleRun>>,
    },
    Upsert {
        upsert: Upsert,
        reply: Reply<Schedule>,
    },
    /// Remove a schedule and its history; answers whether it existed.
    Delete { schedule: i64, reply: Reply<bool> },
    Get {
        schedule: i64,
        reply: Reply<Option<Schedule>>,
    },
    List {
        workspace: Option<String>,
        reply: Reply<Vec<Schedule>>,
    },
    /// A schedule's runs, newest first.
    Runs {
        schedule: i64,
        limit: u32,
        reply: Reply<Vec<ScheduleRun>>,
    },
    /// Queue outcomes of cron fires, forwarded from the event bus in batches.
    Outcomes(Vec<QueueOutcome>),
    /// The queue refused (or did not answer) an enqueue of fires.
    EnqueueFailed,
}

type SpecKey = (String, String, DstPolicy);
type WakeTimer = JoinHandle<Result<(), ractor::MessagingErr<SchedulerMsg>>>;

pub struct SchedulerState {
    args: SchedulerArgs,
    specs: HashMap<SpecKey, Result<ScheduleSpec, SpecError>>,
    forwarder: Option<JoinHandle<()>>,
    wake: Option<(DateTime<Utc>, WakeTimer)>,
    last_reconcile: Option<DateTime<Utc>>,
    /// A write of outcomes or an enqueue failed: reconcile at the first tick from then.
    reconcile_at: Option<DateTime<Utc>>,
    /// This actor, for the tasks that await the queue's answers.
    me: ActorRef<SchedulerMsg>,
}

/// `cron:{schedule_id}:{slot}`: the queue's idempotency key and the A2A messageId.
pub fn cron_key(schedule_id: i64, slot: DateTime<Utc>) -> String {
    format!(
        "cron:{schedule_id}:{}",
        slot.to_rfc3339_opts(SecondsFormat::AutoSi, true)
    )
}

fn manual_key(schedule_id: i64, now: DateTime<Utc>) -> String {
    format!(
        "cron:{schedule_id}:manual:{}",
        now.to_rfc3339_opts(SecondsFormat::AutoSi, true)
    )
}

fn is_cron_key(key: Option<&str>) -> bool {
    key.is_some_and(|k| k.starts_with("cron:"))
}

fn chrono(d: Duration) -> chrono::Duration {
    chrono::Duration::from_std(d).unwrap_or(chrono::Duration::MAX)
}

fn fire_item(schedule: &Schedule, key: &str, ttl: Duration) -> NewQueueItem {
    NewQueueItem::new(&schedule.workspace, a2a_message(key, &schedule.prompt))
        .key(key)
        .ttl(ttl)
        .caller(format!("schedule:{}", schedule.id))
}

impl SchedulerState {
    fn spec(&mut self, s: &Schedule) -> Result<ScheduleSpec, SpecError> {
        let key = (s.spec.clone(), s.timezone.clone(), s.dst);
        if let Some(cached) = self.specs.get(&key) {
            return cached.clone();
        }
        if self.specs.len() >= SPEC_CACHE {
            self.specs.clear();
        }
        let parsed = ScheduleSpec::parse(&s.spec, &s.timezone, s.dst);
        self.specs.insert(key, parsed.clone());
        parsed
    }

    async fn mark_invalid(&self, s: &Schedule, error: &SpecError, now: DateTime<Utc>) -> bool {
        let message = error.to_string();
        match self
            .args
            .store
            .mark_schedule_invalid(s, &message, now)
            .await
        {
            Ok(true) => {
                tracing::warn!(schedule = s.id, name = %s.name, error = %message, "schedule is invalid; it leaves the due set");
                self.args.events.publish(ScheduleEvent::ScheduleInvalid {
                    schedule_id: s.id,
                    name: s.name.clone(),
                    error: message,
                    at: now,
                });
                true
            }
            Ok(false) => false,
            Err(err) => {
                tracing::error!(schedule = s.id, error = %err, "could not mark schedule invalid");
                false
            }
        }
    }

    /// Hand fires to the QueueDrainActor without waiting for its answer: its
    /// mailbox may be busy with deliveries, and the next schedules must not
    /// wait behind them. The answer is awaited in a task; a failure (or no
    /// answer) comes back as `EnqueueFailed`, and the runs, still `dispatched`
    /// with no queue item, are enqueued again by reconciliation.
    fn enqueue(&self, items: Vec<NewQueueItem>) -> Result<(), SchedulerError> {
        if items.is_empty() {
            return Ok(());
        }
        let queue = self
            .args
            .names
            .lookup::<QueueMsg>(names::QUEUE_DRAIN)
            .ok_or_else(|| SchedulerError::Queue("the queue actor is not running".into()))?;
        let (tx, rx) = ractor::concurrency::oneshot();
        queue
            .cast(QueueMsg::EnqueueBatch {
                items,
                reply: Some(tx.into()),
            })
            .map_err(|e| SchedulerError::Queue(e.to_string()))?;
        let me = self.me.clone();
        tokio::spawn(async move {
            let failure = match tokio::time::timeout(ENQUEUE_TIMEOUT, rx).await {
                Ok(Ok(Ok(_))) => return,
                Ok(Ok(Err(e))) => e.to_string(),
                Ok(Err(_)) => "the queue actor stopped before answering".to_string(),
                Err(_) => format!("no answer within {ENQUEUE_TIMEOUT:?}"),
            };
            tracing::error!(error = %failure, "fires claimed but maybe not enqueued; reconciliation will retry them");
            let _ = me.cast(SchedulerMsg::EnqueueFailed);
        });
        Ok(())
    }

    /// Reconcile at the first tick from `at` on.
    fn reconcile_from(&mut self, at: DateTime<Utc>) {
        self.reconcile_at = Some(self.reconcile_at.map_or(at, |t| t.min(at)));
    }

    async fn tick(
        &mut self,
        myself: &ActorRef<SchedulerMsg>,
        now: DateTime<Utc>,
    ) -> Result<SchedulerTickReport, SchedulerError> {
        self.args
            .names
            .report_alive(names::SCHEDULER, now, self.args.tick);
        let mut report = SchedulerTickReport::default();
        // Outcomes first: a lost event must not wait behind a large due set.
        // Events are the normal path; this sweep (it reads every pending run)
        // runs at the first tick of an incarnation, which is when events were
        // lost, then every few minutes, and at once after a failed write.
        let reconcile_due = self.reconcile_at.is_some_and(|at| now >= at)
            || self
                .last_reconcile
                .is_none_or(|last| now - last >= RECONCILE_EVERY || now < last);
        if reconcile_due {
            self.reconcile_at = None;
            self.last_reconcile = Some(now);
            report.reconciled = self.reconcile_settled(now).await?;
            report.requeued = self.reconcile_orphans(now).await?;
        }
        // The won fires of all rounds go to the queue as one batch: each batch
        // costs the queue actor a drain of every workspace it names, so fewer,
        // larger batches reach the workspaces sooner than many small ones.
        let mut items = Vec::new();
        let mut full = false;
        let mut failed = None;
        for _ in 0..MAX_ROUNDS {
            let round = match self.args.store.due_schedules(now, self.args.batch).await {
                Ok(due) => {
                    full = due.len() as u32 >= self.args.batch;
                    self.fire_round(due, now, &mut report, &mut items).await
                }
                Err(e) => Err(e.into()),
            };
            if let Err(e) = round {
                failed = Some(e);
                break;
            }
            if !full {
                break;
            }
        }
        // What was claimed before a failure is enqueued all the same.
        if let Err(err) = self.enqueue(items) {
            self.reconcile_from(now + ORPHAN_GRACE + chrono::Duration::seconds(1));
            tracing::error!(error = %err, "fires claimed but not enqueued; reconciliation will retry them");
        }
        if let Some(e) = failed {
            return Err(e);
        }
        if full {
            // Still more due: continue after whatever else is in the mailbox.
            let _ = myself.cast(SchedulerMsg::Tick {
                now: Some(now),
                reply: None,
            });
        }
        Ok(report)
    }

    async fn fire_round(
        &mut self,
        due: Vec<Schedule>,
        now: DateTime<Utc>,
        report: &mut SchedulerTickReport,
        items: &mut Vec<NewQueueItem>,
    ) -> Result<(), SchedulerError> {
        report.due += due.len();
        let mut claims = Vec::with_capacity(due.len());
        let mut by_id = HashMap::with_capacity(due.len());
        for s in due {
            let Some(slot) = s.next_run_at else { continue };
            // Next first: the first fire strictly after both the slot and now,
            // so a backlog of slots coalesces into this one fire.
            let next = self
                .spec(&s)
                .and_then(|spec| first_fire(&spec, slot.max(now)));
            let next = match next {
                Ok(next) => next,
                Err(error) => {
                    if self.mark_invalid(&s, &error, now).await {
                        report.invalid.push(s.id);
                    }
                    continue;
                }
            };
            let late = now - slot;
            let missed = (late > chrono(s.starting_deadline)).then(|| {
                format!(
                    "slot {} was {} s late, past the starting deadline of {} s",
                    slot.to_rfc3339_opts(SecondsFormat::AutoSi, true),
                    late.num_seconds(),
                    s.starting_deadline.as_secs()
                )
            });
            claims.push(SlotClaim {
                schedule_id: s.id,
                workspace: s.workspace.clone(),
                slot,
                next,
                key: cron_key(s.id, slot),
                missed,
            });
            by_id.insert(s.id, s);
        }
        let won = self.args.store.claim_slots(&claims, now).await?;
        report.lost += claims.len() - won.len();
        let won: std::collections::HashSet<i64> = won.into_iter().collect();
        for claim in claims.into_iter().filter(|c| won.contains(&c.schedule_id)) {
            let Some(s) = by_id.get(&claim.schedule_id) else {
                continue;
            };
            let fired = FiredSlot {
                schedule_id: claim.schedule_id,
                slot: claim.slot,
                key: claim.key,
            };
            if let Some(reason) = &claim.missed {
                tracing::warn!(schedule = s.id, name = %s.name, %reason, "slot missed");
                self.args.events.publish(ScheduleEvent::CronMissed {
                    schedule_id: s.id,
                    name: s.name.clone(),
                    workspace: s.workspace.clone(),
                    slot: fired.slot,
                    key: fired.key.clone(),
                    at: now,
                });
                report.missed.push(fired);
            } else {
                items.push(fire_item(s, &fired.key, s.defer_window));
                report.fired.push(fired);
            }
        }
        Ok(())
    }

    /// Write outcomes whose events never reached us (we were restarting).
    async fn reconcile_settled(&mut self, now: DateTime<Utc>) -> Result<usize, SchedulerError> {
        let settled = self
            .args
            .store
            .settled_pending_runs(RECONCILE_LIMIT)
            .await?;
        let outcomes: Vec<(String, RunOutcome)> = settled
            .iter()
            .filter_map(|(run, item)| RunOutcome::from_item(item).map(|o| (run.key.clone(), o)))
            .collect();
        let finished = self.args.store.finish_runs(&outcomes, now).await?;
        let n = finished.len();
        self.publish_finished(finished, now);
        Ok(n)
    }

    /// Enqueue again the runs that were claimed but never reached the queue;
    /// past their defer window they are `skipped` instead.
    async fn reconcile_orphans(&mut self, now: DateTime<Utc>) -> Result<usize, SchedulerError> {
        let orphans = self
            .args
            .store
            .orphaned_runs(now - ORPHAN_GRACE, RECONCILE_LIMIT)
            .await?;
        let mut items = Vec::new();
        let mut expired = Vec::new();
        for run in &orphans {
            let Some(s) = self.args.store.get_schedule(run.schedule_id).await? else {
                continue;
            };
            let deadline = run.started_at + chrono(s.defer_window);
            if now >= deadline {
                expired.push((
                    run.key.clone(),
                    RunOutcome::Expired {
                        reason: "never reached the queue within the defer window".to_string(),
                    },
                ));
            } else {
                let left = (deadline - now)
                    .to_std()
                    .unwrap_or(Duration::from_millis(1));
                items.push(fire_item(&s, &run.key, left));
            }
        }
        let n = items.len() + expired.len();
        if !orphans.is_empty() {
            tracing::warn!(
                requeued = items.len(),
                skipped = expired.len(),
                "runs claimed without a queue item"
            );
        }
        let finished = self.args.store.finish_runs(&expired, now).await?;
        self.publish_finished(finished, now);
        self.enqueue(items)?;
        Ok(n)
    }

    async fn outcomes(&mut self, outcomes: Vec<QueueOutcome>) {
        let mut written = Vec::with_capacity(outcomes.len());
        let mut at = self.args.clock.now();
        for o in &outcomes {
            let Some(key) = o.item.idempotency_key.clone() else {
                continue;
            };
            if let Some(outcome) = RunOutcome::from_item(&o.item) {
                written.push((key, outcome));
                at = at.max(o.at);
            }
        }
        match self.args.store.finish_runs(&written, at).await {
            Ok(finished) => self.publish_finished(finished, at),
            // The runs stay `dispatched`; the next tick reconciles them.
            Err(err) => {
                tracing::error!(error = %err, n = written.len(), "could not record fire outcomes");
                self.reconcile_from(at);
            }
        }
    }

    fn publish_finished(&self, finished: Vec<FinishedRun>, at: DateTime<Utc>) {
        for f in finished {
            let run = f.run;
            let event = match run.status {
                RunStatus::Skipped => ScheduleEvent::CronSkipped {
                    schedule_id: run.schedule_id,
                    name: f.schedule_name,
                    workspace: run.workspace,
                    slot: run.slot,
                    key: run.key,
                    reason: run.error.unwrap_or_default(),
                    at,
                },
                status => {
                    if status == RunStatus::Stale {
                        tracing::warn!(
                            schedule = run.schedule_id,
                            empty = f.consecutive_empty_runs,
                            "schedule is stale: empty responses in a row"
                        );
                    }
                    ScheduleEvent::CronExecuted {
                        schedule_id: run.schedule_id,
                        name: f.schedule_name,
                        workspace: run.workspace,
                        slot: run.slot,
                        key: run.key,
                        status,
                        error: run.error,
                        at,
                    }
                }
            };
            self.args.events.publish(event);
        }
    }

    async fn run_now(
        &mut self,
        id: i64,
        now: DateTime<Utc>,
    ) -> Result<ScheduleRun, SchedulerError> {
        let s = self
            .args
            .store
            .get_schedule(id)
            .await?
            .ok_or(SchedulerError::NotFound(id))?;
        let now = crate::store::schedules::whole_ms(now);
        let key = manual_key(id, now);
        let run = self
            .args
            .store
            .insert_manual_run(
                &ManualRun {
                    schedule_id: id,
                    workspace: s.workspace.clone(),
                    slot: now,
                    key: key.clone(),
                },
                now,
            )
            .await?;
        if let Err(err) = self.enqueue(vec![fire_item(&s, &key, s.defer_window)]) {
            self.reconcile_from(now + ORPHAN_GRACE + chrono::Duration::seconds(1));
            tracing::error!(schedule = id, error = %err, "manual fire recorded but not enqueued; reconciliation will retry it");
        }
        Ok(run)
    }

    /// Enabled schedules that lost their `next_run_at` get one (or, when
    /// their spec no longer parses, the invalid mark): the seeds' schedules
    /// that never fired again after a bad write.
    async fn repair(&mut self, now: DateTime<Utc>) -> Result<usize, SchedulerError> {
        let missing = self.args.store.schedules_missing_next().await?;
        let mut repaired = 0;
        for s in missing {
            match self.spec(&s).and_then(|spec| first_fire(&spec, now)) {
                Ok(next) => {
                    if self.args.store.repair_next_run(s.id, next, now).await? {
                        tracing::info!(schedule = s.id, %next, "repaired a schedule with no next run");
                        repaired += 1;
                    }
                }
                Err(error) => {
                    self.mark_invalid(&s, &error, now).await;
                }
            }
        }
        Ok(repaired)
    }

    /// Sleep until the earliest known `next_run_at`, so lateness is not bounded
    /// by the tick interval alone.
    async fn arm_wake(&mut self, myself: &ActorRef<SchedulerMsg>) {
        let earliest = match self.args.store.earliest_next_run().await {
            Ok(Some(t)) => t,
            Ok(None) => return,
            Err(err) => {
                tracing::warn!(error = %err, "could not read the earliest next run");
                return;
            }
        };
        let now = self.args.clock.now();
        if earliest <= now {
            // Already due: being handled, or held by another node; the
            // tick catches whatever is left. Never a zero-delay loop.
            return;
        }
        if let Some((at, handle)) = &self.wake {
            if *at == earliest && !handle.is_finished() {
                return;
            }
        }
        if let Some((_, handle)) = self.wake.take() {
            handle.abort();
        }
        let delay = (earliest - now).to_std().unwrap_or_default() + Duration::from_millis(1);
        if delay > self.args.tick {
            return; // the regular tick comes first
        }
        let handle = myself.send_after(delay, || SchedulerMsg::Tick {
            now: None,
            reply: None,
        });
        self.wake = Some((earliest, handle));
    }
}

/// Forward cron outcomes from the bus to the actor in batches (a burst of
/// thousands of completions becomes a few store transactions, not thousands).
/// Ends when the actor is gone; its successor subscribes afresh and
/// reconciliation covers what fell in between.
fn spawn_forwarder(bus: &EventBus<QueueOutcome>, me: ActorRef<SchedulerMsg>) -> JoinHandle<()> {
    let mut rx = bus.channel();
    tokio::spawn(async move {
        let mut buf = Vec::with_capacity(512);
        while rx.recv_many(&mut buf, 512).await > 0 {
            let batch: Vec<QueueOutcome> = buf
                .drain(..)
                .filter(|o| is_cron_key(o.item.idempotency_key.as_deref()))
                .collect();
            if !batch.is_empty() && me.cast(SchedulerMsg::Outcomes(batch)).is_err() {
                break;
            }
        }
    })
}

fn answer<T>(reply: Option<Reply<T>>, result: Result<T, SchedulerError>, what: &str) {
    if let Err(err) = &result {
        tracing::warn!(error = %err, "{what} failed");
    }
    if let Some(reply) = reply {
        let _ = reply.send(result);
    }
}

impl Actor for SchedulerActor {
    type Msg = SchedulerMsg;
    type State = SchedulerState;
    type Arguments = SchedulerArgs;

    async fn pre_start(
        &self,
        myself: ActorRef<SchedulerMsg>,
        args: SchedulerArgs,
    ) -> Result<SchedulerState, ActorProcessingErr> {
        Ok(SchedulerState {
            args,
            specs: HashMap::new(),
            forwarder: None,
            wake: None,
            last_reconcile: None,
            reconcile_at: None,
            me: myself,
        })
    }

    async fn post_start(
        &self,
        myself: ActorRef<SchedulerMsg>,
        state: &mut SchedulerState,
    ) -> Result<(), ActorProcessingErr> {
        state.forwarder = Some(spawn_forwarder(&state.args.queue_events, myself.clone()));
        let now = state.args.clock.now();
        if let Err(err) = state.repair(now).await {
            tracing::error!(error = %err, "start-up repair failed; the next start tries again");
        }
        // The first tick runs here, before any message: a tick cast now would
        // queue behind messages already waiting and read the clock later.
        if let Err(err) = state.tick(&myself, now).await {
            tracing::error!(error = %err, "first scheduler tick failed");
        }
        state.arm_wake(&myself).await;
        myself.send_interval(state.args.tick, || SchedulerMsg::Tick {
            now: None,
            reply: None,
        });
        Ok(())
    }

    async fn post_stop(
        &self,
        _myself: ActorRef<SchedulerMsg>,
        state: &mut SchedulerState,
    ) -> Result<(), ActorProcessingErr> {
        if let Some(forwarder) = state.forwarder.take() {
            forwarder.abort();
        }
        if let Some((_, wake)) = state.wake.take() {
            wake.abort();
        }
        Ok(())
    }

    async fn handle(
        &self,
        myself: ActorRef<SchedulerMsg>,
        message: SchedulerMsg,
        state: &mut SchedulerState,
    ) -> Result<(), ActorProcessingErr> {
        // Store errors are logged and answered, never a crash: a restart
        // would not bring the database back and would spend the restart
        // intensity meant for bugs.
        match message {
            SchedulerMsg::Tick { now, reply } => {
                let now = now.unwrap_or_else(|| state.args.clock.now());
                let began = std::time::Instant::now();
                let result = state.tick(&myself, now).await;
                if let Ok(r) = &result {
                    if !r.fired.is_empty() || !r.missed.is_empty() {
                        tracing::info!(
                            fired = r.fired.len(),
                            missed = r.missed.len(),
                            lost = r.lost,
                            took_ms = began.elapsed().as_millis() as u64,
                            "scheduler tick"
                        );
                    }
                }
                answer(reply, result, "scheduler tick");
                state.arm_wake(&myself).await;
            }
            SchedulerMsg::RunNow { schedule, reply } => {
                let now = state.args.clock.now();
                let result = state.run_now(schedule, now).await;
                answer(reply, result, "run now");
            }
            SchedulerMsg::Upsert { upsert, reply } => {
                let now = state.args.clock.now();
                let result = match upsert {
                    Upsert::Create(new) => state.args.store.create_schedule(&new, now).await,
                    Upsert::Update { id, patch } => {
                        state.args.store.update_schedule(id, &patch, now).await
                    }
                };
                answer(Some(reply), result.map_err(SchedulerError::from), "upsert");
                state.arm_wake(&myself).await;
            }
            SchedulerMsg::Delete { schedule, reply } => {
                let result = state.args.store.delete_schedule(schedule).await;
                answer(Some(reply), result.map_err(SchedulerError::from), "delete");
                state.arm_wake(&myself).await;
            }
            SchedulerMsg::Get { schedule, reply } => {
                let result = state.args.store.get_schedule(schedule).await;
                answer(Some(reply), result.map_err(SchedulerError::from), "get");
            }
            SchedulerMsg::List { workspace, reply } => {
                let result = state.args.store.list_schedules(workspace.as_deref()).await;
                answer(Some(reply), result.map_err(SchedulerError::from), "list");
            }
            SchedulerMsg::Runs {
                schedule,
                limit,
                reply,
            } => {
                let result = state.args.store.list_runs(schedule, limit).await;
                answer(Some(reply), result.map_err(SchedulerError::from), "runs");
            }
            SchedulerMsg::Outcomes(outcomes) => state.outcomes(outcomes).await,
            SchedulerMsg::EnqueueFailed => {
                let at = state.args.clock.now() + ORPHAN_GRACE + chrono::Duration::seconds(1);
                state.reconcile_from(at);
            }
        }
        Ok(())
    }
}
