//! The SchedulerActor: decides *when*, claims each slot once across all
//! nodes, and writes down how each fire ended.
//!
//! It replaces schedulers whose bugs are the spec for this file: a `NULL
//! next_run_at` that never fired again (here: start-up repair, and a row
//! that cannot be parsed is marked invalid instead of hot-looping),
//! crons dropped when the target was busy (here: the fire waits in the queue
//! for the defer window), a panic that killed the loop (here: the dispatcher
//! runs in the queue's tasks, and this actor is supervised), "run, then
//! compute next" (here: next is computed first and written by the same
//! compare-and-set that claims the slot), and a fire lost between claim and
//! enqueue (here: the claim, its run record and its queue item are one
//! transaction).
//!
//! A thin shell: the [`Planner`] decides, the store writes. A tick reads a
//! batch of due rows, plans them (next fire, missed or fired, invalid), and
//! claims the round in one transaction that also enqueues the won fires; the
//! drain is woken by the store's notification channel. The queue's outcome
//! events (or reconciliation, when one was lost to a restart) become run
//! records.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::time::Duration;

use chrono::{DateTime, Utc};
use ractor::{Actor, ActorProcessingErr, ActorRef};

use super::ask::{abandoned, abandoned_opt};
use crate::clock::SharedClock;
use crate::events::EventBus;
use crate::messages::queue::QueueOutcome;
use crate::messages::scheduler::{
    FiredSlot, Outcomes, Reply, ScheduleEvent, SchedulerError, SchedulerMsg, SchedulerTickReport,
    Upsert,
};
use crate::model::run::{is_cron_key, manual_key, FinishedRun, ManualRun, RunOutcome, RunStatus};
use crate::model::schedule::Schedule;
use crate::model::time;
use crate::names::{self, Names};
use crate::schedule::SpecError;
use crate::scheduling::planner::{self, fire_item, Orphan, Planner, ORPHAN_GRACE};
use crate::store::Store;
use crate::tasks::Owned;

pub struct SchedulerActor;

/// Due schedules handled in one tick at most `batch × MAX_ROUNDS`; more waits
/// for a follow-up tick sent to ourselves, so the mailbox is never held long.
const MAX_ROUNDS: usize = 40;
/// Runs reconciled per pass.
const RECONCILE_LIMIT: u32 = 500;

pub struct SchedulerArgs {
    pub names: Names,
    pub store: Store,
    pub clock: SharedClock,
    /// The safety-net tick; the timer for the earliest `next_run_at` is what
    /// normally wakes the actor.
    pub tick: Duration,
    /// Due schedules read per round.
    pub batch: u32,
    /// Attempts a fire's queue item gets.
    pub max_attempts: u32,
    /// Where the QueueDrainActor publishes outcomes.
    pub queue_events: EventBus<QueueOutcome>,
    /// Where this actor publishes.
    pub events: EventBus<ScheduleEvent>,
}

/// The one-shot timer for the earliest known slot.
type WakeTimer = Owned<Result<(), ractor::MessagingErr<SchedulerMsg>>>;

pub struct SchedulerState {
    args: SchedulerArgs,
    planner: Planner,
    _forwarder: Owned<()>,
    wake: Option<(DateTime<Utc>, WakeTimer)>,
    last_reconcile: Option<DateTime<Utc>>,
    /// A write of outcomes failed: reconcile at the first tick from then.
    reconcile_at: Option<DateTime<Utc>>,
}

impl SchedulerState {
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
        if planner::reconcile_due(self.last_reconcile, self.reconcile_at, now) {
            self.reconcile_at = None;
            self.last_reconcile = Some(now);
            report.reconciled = self.reconcile_settled(now).await?;
            report.requeued = self.reconcile_orphans(now).await?;
        }
        let mut full = false;
        for _ in 0..MAX_ROUNDS {
            let mut woken: BTreeSet<String> = BTreeSet::new();
            let round = match self.args.store.due_schedules(now, self.args.batch).await {
                Ok(due) => {
                    full = due.len() >= self.args.batch as usize;
                    self.round(due, now, &mut report, &mut woken).await
                }
                Err(err) => Err(err.into()),
            };
            // Wake the drains after each round: rounds take a workspace's
            // fires of a slot together (due rows are ordered by slot, then
            // workspace), so a drain claims them in one go while the next
            // round is written, instead of waiting for the whole tick.
            let woken: Vec<&str> = woken.iter().map(String::as_str).collect();
            self.args.store.notify(&woken).await;
            round?;
            if !full {
                break;
            }
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

    /// Plan one batch of due rows and claim it, fires and all, in one write.
    async fn round(
        &mut self,
        due: Vec<Schedule>,
        now: DateTime<Utc>,
        report: &mut SchedulerTickReport,
        woken: &mut BTreeSet<String>,
    ) -> Result<(), SchedulerError> {
        report.due += due.len();
        let titles: HashMap<i64, String> = due.iter().map(|s| (s.id, s.name.clone())).collect();
        let plan = self.planner.plan(due, now);
        for (s, error) in &plan.invalid {
            if self.mark_invalid(s, error, now).await {
                report.invalid.push(s.id);
            }
        }
        let won: HashSet<i64> = self
            .args
            .store
            .claim_slots(&plan.fires, self.args.max_attempts, now)
            .await?
            .into_iter()
            .collect();
        // Test builds: die right after the claim committed (fires included).
        fail::fail_point!("scheduler.claimed", !won.is_empty(), |_| {
            std::process::abort()
        });
        report.lost += plan.fires.len() - won.len();
        for fire in plan
            .fires
            .iter()
            .filter(|f| won.contains(&f.claim.schedule_id))
        {
            let c = &fire.claim;
            let slot = FiredSlot {
                schedule_id: c.schedule_id,
                slot: c.slot,
                key: c.key.clone(),
            };
            match &c.missed {
                Some(reason) => {
                    tracing::warn!(schedule = c.schedule_id, %reason, "slot missed");
                    self.args.events.publish(ScheduleEvent::CronMissed {
                        schedule_id: c.schedule_id,
                        name: titles.get(&c.schedule_id).cloned().unwrap_or_default(),
                        workspace: c.workspace.clone(),
                        slot: c.slot,
                        key: c.key.clone(),
                        at: now,
                    });
                    report.missed.push(slot);
                }
                None => {
                    woken.insert(c.workspace.clone());
                    report.fired.push(slot);
                }
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

    /// Runs claimed without a queue item (written by a version without the
    /// outbox): enqueued again, or `skipped` past their defer window.
    async fn reconcile_orphans(&mut self, now: DateTime<Utc>) -> Result<usize, SchedulerError> {
        let orphans = self
            .args
            .store
            .orphaned_runs(now - ORPHAN_GRACE, RECONCILE_LIMIT)
            .await?;
        let mut requeue = Vec::new();
        let mut skipped = Vec::new();
        for run in &orphans {
            let Some(s) = self.args.store.get_schedule(run.schedule_id).await? else {
                continue;
            };
            match planner::orphan(run, &s, now) {
                Orphan::Requeue(item) => requeue.push(item),
                Orphan::Skip(reason) => {
                    skipped.push((run.key.clone(), RunOutcome::Expired { reason }))
                }
            }
        }
        if !orphans.is_empty() {
            tracing::warn!(
                requeued = requeue.len(),
                skipped = skipped.len(),
                "runs claimed without a queue item"
            );
        }
        let finished = self.args.store.finish_runs(&skipped, now).await?;
        self.publish_finished(finished, now);
        if !requeue.is_empty() {
            self.args
                .store
                .enqueue_batch(&requeue, self.args.max_attempts, now)
                .await?;
        }
        Ok(requeue.len() + skipped.len())
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
                self.reconcile_at = Some(self.reconcile_at.map_or(at, |t| t.min(at)));
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

    /// Fire now, outside the timetable: the run record and its queue item
    /// in one write; `next_run_at` untouched.
    async fn run_now(
        &mut self,
        id: i64,
        now: DateTime<Utc>,
    ) -> Result<crate::model::run::ScheduleRun, SchedulerError> {
        let s = self
            .args
            .store
            .get_schedule(id)
            .await?
            .ok_or(SchedulerError::NotFound(id))?;
        let now = time::whole_ms(now);
        let key = manual_key(id, now);
        let run = ManualRun {
            schedule_id: id,
            workspace: s.workspace.clone(),
            slot: now,
            key: key.clone(),
        };
        let item = fire_item(&s, &key, s.defer_window_bounded());
        let run = self
            .args
            .store
            .fire_manual(&run, &item, self.args.max_attempts, now)
            .await?;
        self.args.store.notify(&[s.workspace.as_str()]).await;
        Ok(run)
    }

    /// Enabled schedules that lost their `next_run_at` get one (or, when
    /// their spec no longer parses, the invalid mark): the old schedulers'
    /// that never fired again after a bad write.
    async fn repair(&mut self, now: DateTime<Utc>) -> Result<usize, SchedulerError> {
        let mut repaired = 0;
        for s in self.args.store.schedules_missing_next().await? {
            match self.planner.repair(&s, now) {
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

    /// Sleep until the earliest known `next_run_at`, so lateness is not
    /// bounded by the tick interval alone.
    async fn arm_wake(&mut self, myself: &ActorRef<SchedulerMsg>) {
        let earliest = match self.args.store.earliest_next_run().await {
            Ok(Some(t)) => t,
            Ok(None) => return,
            Err(err) => {
                tracing::warn!(error = %err, "could not read the earliest next run");
                return;
            }
        };
        if let Some((at, timer)) = &self.wake {
            if *at == earliest && !timer.is_finished() {
                return;
            }
        }
        self.wake = None;
        let now = self.args.clock.now();
        if let Some(delay) = planner::wake_in(earliest, now, self.args.tick) {
            let timer = myself.send_after(delay, || SchedulerMsg::Tick {
                now: None,
                reply: None,
            });
            self.wake = Some((earliest, Owned::new(timer)));
        }
    }
}

/// Forward cron outcomes from the bus to the actor in batches (a burst of
/// thousands of completions becomes a few store transactions). Dies with the
/// incarnation; its successor subscribes afresh and reconciliation covers
/// what fell in between.
fn spawn_forwarder(bus: &EventBus<QueueOutcome>, me: ActorRef<SchedulerMsg>) -> Owned<()> {
    let mut rx = bus.channel();
    Owned::new(tokio::spawn(async move {
        let mut buf = Vec::with_capacity(512);
        while rx.recv_many(&mut buf, 512).await > 0 {
            let batch: Vec<QueueOutcome> = buf
                .drain(..)
                .filter(|o| is_cron_key(o.item.idempotency_key.as_deref()))
                .collect();
            if !batch.is_empty() && me.cast(SchedulerMsg::Outcomes(Outcomes(batch))).is_err() {
                break;
            }
        }
    }))
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
        // From pre_start: see `Names::report_alive`.
        args.names
            .report_alive(names::SCHEDULER, args.clock.now(), args.tick);
        let forwarder = spawn_forwarder(&args.queue_events, myself);
        Ok(SchedulerState {
            args,
            planner: Planner::default(),
            _forwarder: forwarder,
            wake: None,
            last_reconcile: None,
            reconcile_at: None,
        })
    }

    async fn post_start(
        &self,
        myself: ActorRef<SchedulerMsg>,
        state: &mut SchedulerState,
    ) -> Result<(), ActorProcessingErr> {
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
            SchedulerMsg::RunNow { reply, .. } if abandoned_opt(&reply) => {
                tracing::debug!("run-now dropped: its sender stopped waiting");
            }
            SchedulerMsg::Upsert { reply, .. } if abandoned(&reply) => {
                tracing::debug!("schedule change dropped: its sender stopped waiting");
            }
            SchedulerMsg::Delete { reply, .. } if abandoned(&reply) => {
                tracing::debug!("schedule delete dropped: its sender stopped waiting");
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
            SchedulerMsg::Outcomes(Outcomes(outcomes)) => state.outcomes(outcomes).await,
        }
        Ok(())
    }
}
