//! From due schedules and `now` to what the scheduler writes.
//!
//! For each due row: parse its spec (once per spec, zone and policy), take
//! the next fire strictly after both the slot and now (so slots missed while
//! the process was down coalesce into one fire), and decide whether the slot
//! still fires or is recorded `missed` (older than its starting deadline).
//! A won slot's fire is an A2A `message/send` keyed `cron:{id}:{slot}` (the
//! queue's idempotency key and the messageId) with the schedule's defer
//! window as its TTL. No database, no clock: `now` is a parameter.

use std::collections::HashMap;
use std::time::Duration;

use chrono::{DateTime, SecondsFormat, TimeDelta, Utc};

use crate::model::a2a::a2a_message;
use crate::model::queue::NewQueueItem;
use crate::model::run::{cron_key, ScheduleRun, SlotClaim};
use crate::model::schedule::{first_fire, Schedule};
use crate::model::time;
use crate::schedule::{DstPolicy, ScheduleSpec, SpecError};
use crate::store::SlotFire;

/// Parsed specs kept between ticks.
const SPEC_CACHE: usize = 10_000;
/// How often (clock time) reconciliation runs besides the first tick.
pub const RECONCILE_EVERY: TimeDelta = TimeDelta::minutes(5);
/// A `dispatched` run with no queue item this long after it was claimed is
/// an orphan (only a version without the outbox, or a hand, leaves one).
pub const ORPHAN_GRACE: TimeDelta = TimeDelta::seconds(30);

type SpecKey = (String, String, DstPolicy);

/// What one round of due rows becomes.
#[derive(Debug, Default)]
pub struct Plan {
    /// Slots to claim, each with its fire (none when missed).
    pub fires: Vec<SlotFire>,
    /// Rows whose spec or zone does not parse: they leave the due set.
    pub invalid: Vec<(Schedule, SpecError)>,
}

/// The scheduler's pure decisions, with the one piece of state they need:
/// parsed specs.
#[derive(Default)]
pub struct Planner {
    specs: HashMap<SpecKey, Result<ScheduleSpec, SpecError>>,
}

/// A schedule's fire: `message/send` of its prompt, keyed by `key`, waiting
/// at most `ttl` for a busy workspace.
pub fn fire_item(schedule: &Schedule, key: &str, ttl: Duration) -> NewQueueItem {
    NewQueueItem::new(&schedule.workspace, a2a_message(key, &schedule.prompt))
        .key(key)
        .ttl(ttl.max(Duration::from_secs(1)))
        .caller(format!("schedule:{}", schedule.id))
}

/// What becomes of a run that never reached the queue.
#[derive(Debug, Clone, PartialEq)]
pub enum Orphan {
    /// Enqueue it again for the rest of its defer window.
    Requeue(NewQueueItem),
    /// Too late: record it `skipped` with this reason.
    Skip(String),
}

impl Planner {
    /// The spec of `s`, parsed once per (spec, zone, policy).
    pub fn spec(&mut self, s: &Schedule) -> Result<ScheduleSpec, SpecError> {
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

    /// One round: every due row becomes a claim (fire or missed) or an
    /// invalid mark.
    pub fn plan(&mut self, due: Vec<Schedule>, now: DateTime<Utc>) -> Plan {
        let mut plan = Plan::default();
        for s in due {
            let Some(slot) = s.next_run_at else { continue };
            // Next first: the first fire strictly after both the slot and
            // now, so a backlog of slots coalesces into this one fire.
            let next = self
                .spec(&s)
                .and_then(|spec| first_fire(&spec, slot.max(now)));
            let next = match next {
                Ok(next) => next,
                Err(error) => {
                    plan.invalid.push((s, error));
                    continue;
                }
            };
            let late = time::elapsed(slot, now);
            let deadline = s.starting_deadline_bounded();
            let missed = (late > deadline).then(|| {
                format!(
                    "slot {} was {} s late, past the starting deadline of {} s",
                    slot.to_rfc3339_opts(SecondsFormat::AutoSi, true),
                    late.as_secs(),
                    deadline.as_secs()
                )
            });
            let key = cron_key(s.id, slot);
            let item = missed
                .is_none()
                .then(|| fire_item(&s, &key, s.defer_window_bounded()));
            plan.fires.push(SlotFire {
                claim: SlotClaim {
                    schedule_id: s.id,
                    workspace: s.workspace.clone(),
                    slot,
                    next,
                    key,
                    missed,
                },
                item,
            });
        }
        plan
    }

    /// Enabled rows with no `next_run_at`: their first fire after `now`, or
    /// the error that makes them invalid.
    pub fn repair(&mut self, s: &Schedule, now: DateTime<Utc>) -> Result<DateTime<Utc>, SpecError> {
        self.spec(s).and_then(|spec| first_fire(&spec, now))
    }
}

/// Reconciliation is due at an incarnation's first tick, every
/// [`RECONCILE_EVERY`] of clock time (or when the clock went backwards), and
/// from the instant a failed write asked for it.
pub fn reconcile_due(
    last: Option<DateTime<Utc>>,
    asked_from: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> bool {
    asked_from.is_some_and(|at| now >= at)
        || last.is_none_or(|last| now < last || now - last >= RECONCILE_EVERY)
}

/// A run with no queue item, judged at `now`: enqueued again with the rest
/// of its defer window, or skipped once the window has passed.
pub fn orphan(run: &ScheduleRun, schedule: &Schedule, now: DateTime<Utc>) -> Orphan {
    let deadline = time::add_saturating(run.started_at, schedule.defer_window_bounded());
    if now >= deadline {
        Orphan::Skip("never reached the queue within the defer window".to_string())
    } else {
        Orphan::Requeue(fire_item(
            schedule,
            &run.key,
            time::elapsed(now, deadline).max(Duration::from_millis(1)),
        ))
    }
}

/// How long to sleep before the earliest known slot, or `None` when the
/// regular tick comes first or the slot is already due (being handled, or
/// held by another node: never a zero-delay loop).
pub fn wake_in(earliest: DateTime<Utc>, now: DateTime<Utc>, tick: Duration) -> Option<Duration> {
    if earliest <= now {
        return None;
    }
    let delay = time::elapsed(now, earliest) + Duration::from_millis(1);
    (delay <= tick).then_some(delay)
}

#[cfg(test)]
#[path = "planner_tests.rs"]
mod tests;
