//! The drain's decisions, apart from their effects: a plain state machine
//! that takes what happened (a wake, a claim's answer, a delivery's return,
//! the tick) and answers what to do next ([`Effect`]s: claim N items of a
//! workspace, deliver this item, give those back, answer that caller). No
//! database, no runtime, no clock: the actor shell passes `now` in and runs
//! the effects, so every rule is unit-tested without either.
//!
//! The rules (the room and claim arithmetic is in `pump.rs`, the callers'
//! in `callers.rs`):
//! - **Room.** A workspace never has more deliveries in flight from this
//!   node than its spare capacity (`max_concurrent − active_tasks`, read at
//!   most [`CoreConfig::cache_for`] ago; a beat here replaces it at once),
//!   and all workspaces together never more than the global concurrency.
//! - **Prefetch.** Claims take up to the workspace's room ahead of dispatch
//!   (never more than it could take), within a node-wide allowance, in
//!   batches. Claimed items wait in the workspace's buffer and refill freed
//!   slots from memory while the next claim is in flight.
//! - **Give back.** A buffered item whose TTL passed expires; one held
//!   longer than [`CoreConfig::max_hold`] goes back to the queue, as does
//!   the whole buffer of a workspace that answered busy or is not registered.
//! - **Dry, busy, starved.** A claim that came back short marks the
//!   workspace dry (no empty claims on every freed slot) until something
//!   wakes it; a busy answer parks the workspace until a beat reports room
//!   or the tick; a workspace that waited for a global slot or claim budget
//!   is drained as soon as one frees.
//! - **Answers.** A `Send` caller whose item was delivered hears the
//!   response once the outcome is written, or after [`RECORD_PATIENCE`]
//!   from memory if the write is slow (the database may be away).

use std::collections::{BTreeSet, HashMap, VecDeque};

use chrono::{DateTime, TimeDelta, Utc};

/// How long a `Send` caller whose delivery returned waits for its outcome
/// to be written before it is answered from memory.
pub const RECORD_PATIENCE: std::time::Duration = std::time::Duration::from_millis(500);

use super::callers::Callers;
pub use super::effect::Effect;
use super::recent::RecentStarts;
use crate::messages::queue::InFlightReport;
use crate::model::queue::QueueItem;
use crate::model::workspace::Workspace;

/// The drain's limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CoreConfig {
    /// Deliveries in flight across all workspaces.
    pub concurrency: u32,
    /// Items the node may hold claimed ahead of dispatch, all workspaces.
    pub prefetch: u32,
    /// The longest an item waits in the buffer before it goes back.
    pub max_hold: TimeDelta,
    /// How long a workspace row read from the store is trusted.
    pub cache_for: TimeDelta,
}

pub(super) type Effects = Vec<Effect>;

/// An item claimed but not yet dispatched.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Held {
    pub item: QueueItem,
    pub claimed_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct PendingClaim {
    pub seq: u64,
    pub limit: u32,
    /// A wake arrived meanwhile: a short answer does not mean "nothing left".
    pub woken: bool,
}

/// One workspace as this node sees it.
#[derive(Debug, Default)]
pub(super) struct Ws {
    /// Its row and when it was read.
    pub row: Option<(Workspace, DateTime<Utc>)>,
    pub loading: bool,
    /// A fresher row arrived while a read was under way: its answer is old.
    pub load_superseded: bool,
    pub in_flight: u32,
    pub buffer: VecDeque<Held>,
    pub claiming: Option<PendingClaim>,
    pub dry: bool,
    pub busy: bool,
}

/// A delivery whose dispatcher call has not returned.
#[derive(Debug, Clone)]
pub(super) struct Flight {
    pub workspace: String,
    /// Counted at start from this node's leases (some may have been an
    /// earlier incarnation's buffer, not deliveries).
    pub inherited: bool,
}

/// The drain's state. Counters are moved only by the methods that move
/// items, so `in_flight == Σ per-workspace in flight` and the like always
/// hold (the unit tests check them after every step).
pub struct DrainCore {
    pub(super) cfg: CoreConfig,
    pub(super) ws: HashMap<String, Ws>,
    /// Keyed by (item id, lease token): unique per claim, so a late report
    /// from an earlier incarnation's delivery never frees a newer one's slot.
    pub(super) flights: HashMap<(i64, String), Flight>,
    pub(super) in_flight: u32,
    pub(super) buffered: u32,
    pub(super) claiming: u32,
    pub(super) claim_seq: u64,
    pub(super) callers: Callers,
    /// Workspaces with work that waited for a global slot or claim budget.
    pub(super) starved: BTreeSet<String>,
    pub(super) dirty: BTreeSet<String>,
    pub(super) drain_scheduled: bool,
    /// Items started whose outcome has not been reported written yet.
    pub(super) unrecorded: std::collections::HashSet<i64>,
    /// Items lately started here (a late `Send` caller is answered from the row).
    pub(super) recent: RecentStarts,
    /// Shutting down: nothing new starts, nothing more is claimed.
    pub(super) quiescing: bool,
}

impl DrainCore {
    pub fn new(cfg: CoreConfig) -> Self {
        Self {
            cfg,
            ws: HashMap::new(),
            flights: HashMap::new(),
            in_flight: 0,
            buffered: 0,
            claiming: 0,
            claim_seq: 0,
            callers: Callers::default(),
            starved: BTreeSet::new(),
            dirty: BTreeSet::new(),
            drain_scheduled: false,
            unrecorded: std::collections::HashSet::new(),
            recent: RecentStarts::default(),
            quiescing: false,
        }
    }

    /// Deliveries an earlier incarnation on this node may still be running
    /// (this node's leases at start, as `(id, lease token, workspace)`):
    /// counted so capacity is not overrun after a restart.
    pub fn inherit(&mut self, leases: Vec<(i64, String, String)>) {
        for (id, token, workspace) in leases {
            let flight = Flight {
                workspace: workspace.clone(),
                inherited: true,
            };
            if self.flights.insert((id, token), flight).is_none() {
                self.w(&workspace).in_flight += 1;
                self.in_flight += 1;
            }
        }
    }

    /// Whether any inherited flight is still counted (the tick then asks the
    /// store which leases are still ours).
    pub fn has_inherited(&self) -> bool {
        self.flights.values().any(|f| f.inherited)
    }

    /// Something may have arrived for `workspace`: claim again even if the
    /// last claim came back short, and look now.
    pub fn wake(&mut self, workspace: &str, now: DateTime<Utc>) -> Effects {
        let mut out = Vec::new();
        self.mark_woken(workspace);
        self.pump(workspace, now, &mut out);
        out
    }

    /// A beat (or registration) on this node wrote `row`: it replaces what
    /// was cached (and what a read under way will answer); room wakes it.
    pub fn capacity(&mut self, row: Workspace, now: DateTime<Utc>) -> Effects {
        let mut out = Vec::new();
        let workspace = row.id.clone();
        let spare = row.spare_capacity();
        let w = self.w(&workspace);
        w.load_superseded = w.loading;
        w.row = Some((row, now));
        if spare > 0 {
            w.busy = false;
            self.mark_woken(&workspace);
            self.pump(&workspace, now, &mut out);
        }
        self.tidy(&workspace);
        out
    }

    /// The row asked for by [`Effect::LoadWorkspace`]: `Ok(None)` when the
    /// workspace is not registered, `Err` when it could not be read.
    pub fn loaded(
        &mut self,
        workspace: &str,
        row: Result<Option<Workspace>, ()>,
        now: DateTime<Utc>,
    ) -> Effects {
        let mut out = Vec::new();
        let w = self.w(workspace);
        w.loading = false;
        if std::mem::take(&mut w.load_superseded) {
            // A beat replaced the row after this read began: the beat's is newer.
            self.pump(workspace, now, &mut out);
            self.settle_callers(workspace, &mut out);
            self.tidy(workspace);
            return out;
        }
        match row {
            Ok(Some(row)) => {
                self.w(workspace).row = Some((row, now));
                self.pump(workspace, now, &mut out);
            }
            Ok(None) => {
                // Not registered: nothing can go out; give the buffer back.
                let held = self.unbuffer(workspace);
                self.give_back(workspace, held, now, &mut out);
            }
            // Unreadable now: the items wait for the next wake or the tick.
            Err(()) => {}
        }
        self.settle_callers(workspace, &mut out);
        self.tidy(workspace);
        out
    }

    /// A claim came back: buffer what it took, answer `Send` callers, pump.
    /// `Err` when the claim failed (nothing was taken).
    pub fn claimed(
        &mut self,
        workspace: &str,
        seq: u64,
        result: Result<Vec<QueueItem>, ()>,
        now: DateTime<Utc>,
    ) -> Effects {
        let mut out = Vec::new();
        let pending = match self.ws.get(workspace).and_then(|w| w.claiming) {
            Some(p) if p.seq == seq => p,
            // Not a claim we counted (cannot happen: one claim per workspace
            // at a time): give back whatever it took.
            _ => {
                if let Ok(items) = result {
                    self.give_back(workspace, items, now, &mut out);
                }
                return out;
            }
        };
        self.w(workspace).claiming = None;
        self.claiming -= pending.limit;
        let mut taken: Vec<i64> = Vec::new();
        if let Ok(items) = result {
            let short = u32::try_from(items.len()).unwrap_or(u32::MAX) < pending.limit;
            if short && !pending.woken {
                self.w(workspace).dry = true;
            }
            taken = items.iter().map(|i| i.id).collect();
            if self.w(workspace).busy {
                // It answered busy while we were claiming.
                self.give_back(workspace, items, now, &mut out);
            } else {
                self.buffered += u32::try_from(items.len()).unwrap_or(u32::MAX);
                let w = self.w(workspace);
                w.buffer.extend(items.into_iter().map(|item| Held {
                    item,
                    claimed_at: now,
                }));
            }
        }
        // `Send` callers this claim answers: those whose item was committed
        // before it started, and those whose item it took anyway (a claim
        // may start after a later enqueue committed).
        let busy = self.w(workspace).busy;
        self.callers
            .claim_returned(workspace, pending.seq, &taken, busy, &mut out);
        self.pump(workspace, now, &mut out);
        self.settle_callers(workspace, &mut out);
        // The claim's budget is free again: starved workspaces get their turn
        // now, not at the next delivery (there may be none) or the tick.
        self.schedule_starved(&mut out);
        self.tidy(workspace);
        out
    }

    /// Items given back by [`Effect::GiveBack`] are settled: look again.
    pub fn released(&mut self, workspace: &str, now: DateTime<Utc>) -> Effects {
        self.wake(workspace, now)
    }

    /// A delivery's dispatcher call returned (its outcome is with the
    /// completer): free the slot and schedule one pump of every workspace
    /// that may now have room.
    pub fn dispatched(
        &mut self,
        workspace: &str,
        key: (i64, String),
        busy: bool,
        response: Option<String>,
        now: DateTime<Utc>,
    ) -> Effects {
        let mut out = Vec::new();
        if self.callers.returned(key.0, response) {
            out.push(Effect::RecordOverdueLater { item_id: key.0 });
        }
        if let Some(flight) = self.flights.remove(&key) {
            self.land(&flight.workspace);
        }
        if busy {
            self.w(workspace).busy = true;
            // Its buffered items would only hammer it: back to the queue.
            let held = self.unbuffer(workspace);
            self.give_back(workspace, held, now, &mut out);
        }
        self.dirty.insert(workspace.to_string());
        self.dirty.append(&mut self.starved);
        if !self.drain_scheduled {
            self.drain_scheduled = true;
            out.push(Effect::DrainSoon);
        }
        out
    }

    /// Pump every workspace marked since the last time.
    pub fn drain_dirty(&mut self, now: DateTime<Utc>) -> Effects {
        let mut out = Vec::new();
        self.drain_scheduled = false;
        for workspace in std::mem::take(&mut self.dirty) {
            self.pump(&workspace, now, &mut out);
            self.tidy(&workspace);
        }
        out
    }

    /// Item `id` of `workspace` (`depth` active items) is committed and its
    /// caller waits: for the outcome if a claim takes it (or took it already,
    /// even if its delivery is back), else `Queued` as soon as that is known.
    pub fn send(&mut self, id: i64, workspace: &str, depth: u64, now: DateTime<Utc>) -> Effects {
        let taken = self.flights.keys().any(|(i, _)| *i == id)
            || self.unrecorded.contains(&id)
            || self
                .ws
                .get(workspace)
                .is_some_and(|w| w.buffer.iter().any(|h| h.item.id == id));
        if taken {
            // Answered when its outcome is written (from the written row).
            self.callers.waiting(id, depth);
            return Vec::new();
        }
        if self.recent.contains(id) {
            // Delivered and written before its caller came: the row knows.
            return vec![Effect::AnswerFromRow { item_id: id, depth }];
        }
        self.callers.add(id, workspace, depth, self.claim_seq);
        let mut out = self.wake(workspace, now);
        self.settle_callers(workspace, &mut out);
        out
    }

    /// A `Send` caller waited longer than a delivery may take: the item is
    /// durable, so `Queued` is a true answer.
    pub fn send_overdue(&mut self, id: i64) -> Effects {
        let mut out = Vec::new();
        self.callers.overdue(id, &mut out);
        out
    }

    /// The outcome of `id` was not written within [`RECORD_PATIENCE`] of
    /// its delivery's return: answer its caller from memory.
    pub fn record_overdue(&mut self, id: i64) -> Effects {
        let mut out = Vec::new();
        self.callers.record_overdue(id, &mut out);
        out
    }

    /// Outcomes are durable (`None`: it could not be written; the item will
    /// be rescued): answer the callers waiting on them.
    pub fn recorded(&mut self, done: Vec<(i64, Option<QueueItem>)>) -> Effects {
        let mut out = Vec::new();
        for (id, _) in &done {
            self.unrecorded.remove(id);
        }
        self.callers.recorded(done, &mut out);
        out
    }

    /// Shutdown begins: claim nothing more, start nothing more, give the
    /// whole buffer back; deliveries under way finish (see [`quiet`](Self::quiet)).
    pub fn quiesce(&mut self, now: DateTime<Utc>) -> Effects {
        self.quiescing = true;
        let mut out = Vec::new();
        let names: Vec<String> = self.ws.keys().cloned().collect();
        for workspace in names {
            let held = self.unbuffer(&workspace);
            self.give_back(&workspace, held, now, &mut out);
        }
        out
    }

    /// Nothing in flight and every started delivery's outcome written.
    pub fn quiet(&self) -> bool {
        self.flights.is_empty() && self.unrecorded.is_empty()
    }

    /// The tick begins: buffered items whose TTL passed or that were held
    /// too long leave the buffer; the tick's database work settles them
    /// (expired or back to the queue). Their callers hear `Queued`.
    pub fn tick(&mut self, now: DateTime<Utc>) -> (Vec<QueueItem>, Effects) {
        let mut out = Vec::new();
        let max_hold = self.cfg.max_hold;
        let mut stale = Vec::new();
        for w in self.ws.values_mut() {
            let (keep, gone): (VecDeque<Held>, VecDeque<Held>) = w
                .buffer
                .drain(..)
                .partition(|h| !(h.item.expired_at(now) || now - h.claimed_at >= max_hold));
            w.buffer = keep;
            stale.extend(gone.into_iter().map(|h| h.item));
        }
        self.buffered -= u32::try_from(stale.len()).unwrap_or(u32::MAX);
        self.callers.given_back(&stale, &mut out);
        (stale, out)
    }

    /// The tick's database work is done: free inherited slots whose leases
    /// are no longer ours, forget every cached row and mark, and drain every
    /// workspace with ready or buffered items.
    pub fn swept(
        &mut self,
        now: DateTime<Utc>,
        ready: &[String],
        ours: Option<&[(i64, String)]>,
    ) -> Effects {
        if let Some(ours) = ours {
            let gone: Vec<(i64, String)> = self
                .flights
                .iter()
                .filter(|(key, f)| f.inherited && !ours.contains(key))
                .map(|(key, _)| key.clone())
                .collect();
            for key in gone {
                if let Some(flight) = self.flights.remove(&key) {
                    self.land(&flight.workspace);
                }
            }
        }
        for w in self.ws.values_mut() {
            w.busy = false;
            w.dry = false;
            if !w.loading {
                w.row = None;
            }
        }
        let mut targets: BTreeSet<String> = ready.iter().cloned().collect();
        targets.extend(
            self.ws
                .iter()
                .filter(|(_, w)| !w.buffer.is_empty())
                .map(|(k, _)| k.clone()),
        );
        let mut out = Vec::new();
        for workspace in targets {
            self.mark_woken(&workspace);
            self.pump(&workspace, now, &mut out);
        }
        let known: Vec<String> = self.ws.keys().cloned().collect();
        for workspace in known {
            self.tidy(&workspace);
        }
        out
    }

    /// Everything still buffered, out of the buffer (the actor is stopping).
    pub fn take_buffered(&mut self) -> Vec<QueueItem> {
        let names: Vec<String> = self.ws.keys().cloned().collect();
        names.iter().flat_map(|w| self.unbuffer(w)).collect()
    }

    pub fn in_flight_report(&self) -> InFlightReport {
        let mut by_workspace: Vec<(String, u32)> = self
            .ws
            .iter()
            .filter(|(_, w)| w.in_flight > 0)
            .map(|(k, w)| (k.clone(), w.in_flight))
            .collect();
        by_workspace.sort();
        InFlightReport {
            total: self.in_flight,
            by_workspace,
            buffered: self.buffered,
        }
    }

    /// The counters agree with the per-workspace state (for tests).
    #[cfg(test)]
    pub(crate) fn check_counters(&self) {
        let in_flight: u32 = self.ws.values().map(|w| w.in_flight).sum();
        let buffered: usize = self.ws.values().map(|w| w.buffer.len()).sum();
        let claiming: u32 = self
            .ws
            .values()
            .filter_map(|w| w.claiming.map(|c| c.limit))
            .sum();
        assert_eq!(self.in_flight, in_flight, "in flight");
        assert_eq!(self.in_flight as usize, self.flights.len(), "flights");
        assert_eq!(self.buffered as usize, buffered, "buffered");
        assert_eq!(self.claiming, claiming, "claiming");
    }
}

#[cfg(test)]
#[path = "core_tests.rs"]
mod tests;
