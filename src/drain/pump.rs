//! The room and claim arithmetic of the drain's core: how many deliveries a
//! workspace may have, when and how much to claim, what leaves the buffer.
//! Every function here moves items and the counters that count them together.

use chrono::{DateTime, Utc};

use super::core::{DrainCore, Effects, Flight, Held, PendingClaim, Ws};
use super::effect::Effect;
use crate::model::queue::QueueItem;
use crate::model::workspace::Workspace;

impl DrainCore {
    pub(super) fn w(&mut self, workspace: &str) -> &mut Ws {
        self.ws.entry(workspace.to_string()).or_default()
    }

    /// Forget a workspace with nothing going on, so the map does not grow
    /// with every workspace ever seen.
    pub(super) fn tidy(&mut self, workspace: &str) {
        let idle = self.ws.get(workspace).is_some_and(|w| {
            w.in_flight == 0
                && w.buffer.is_empty()
                && w.claiming.is_none()
                && !w.loading
                && !w.busy
                && !w.dry
                && w.row.is_none()
        });
        if idle {
            self.ws.remove(workspace);
        }
    }

    pub(super) fn mark_woken(&mut self, workspace: &str) {
        let w = self.w(workspace);
        w.dry = false;
        if let Some(pending) = w.claiming.as_mut() {
            pending.woken = true;
        }
    }

    fn ours(&self, workspace: &str) -> u32 {
        self.ws.get(workspace).map_or(0, |w| w.in_flight)
    }

    fn buffered_in(&self, workspace: &str) -> u32 {
        self.ws
            .get(workspace)
            .map_or(0, |w| u32::try_from(w.buffer.len()).unwrap_or(u32::MAX))
    }

    /// Start what `workspace` has buffered, within its room and the global
    /// limit, then claim ahead if it has room left and the node has budget.
    /// A row older than the cache window is read first.
    pub(super) fn pump(&mut self, workspace: &str, now: DateTime<Utc>, out: &mut Effects) {
        if self.quiescing {
            return;
        }
        let cache_for = self.cfg.cache_for;
        let w = self.w(workspace);
        if w.busy || w.loading {
            return;
        }
        let fresh = w
            .row
            .as_ref()
            .filter(|(_, read_at)| *read_at <= now && now - *read_at < cache_for)
            .map(|(row, _)| row.clone());
        let Some(row) = fresh else {
            w.loading = true;
            out.push(Effect::LoadWorkspace {
                workspace: workspace.to_string(),
            });
            return;
        };
        let spare = row.spare_capacity();
        self.dispatch_buffered(workspace, &row, spare, now, out);
        self.claim_ahead(workspace, spare, now, out);
    }

    fn dispatch_buffered(
        &mut self,
        workspace: &str,
        row: &Workspace,
        spare: u32,
        now: DateTime<Utc>,
        out: &mut Effects,
    ) {
        let mut stale = Vec::new();
        while self.ours(workspace) < spare {
            if self.in_flight >= self.cfg.concurrency {
                if self.buffered_in(workspace) > 0 {
                    self.starved.insert(workspace.to_string());
                }
                break;
            }
            let Some(held) = self.w(workspace).buffer.pop_front() else {
                break;
            };
            self.buffered -= 1;
            if held.item.expired_at(now) || now - held.claimed_at >= self.cfg.max_hold {
                stale.push(held.item);
                continue;
            }
            self.start(held.item, row.clone(), out);
        }
        self.give_back(workspace, stale, now, out);
    }

    fn start(&mut self, item: QueueItem, row: Workspace, out: &mut Effects) {
        let key = (item.id, item.lease_token.clone().unwrap_or_default());
        let flight = Flight {
            workspace: item.workspace.clone(),
            inherited: false,
        };
        self.flights.insert(key, flight);
        self.w(&item.workspace).in_flight += 1;
        self.in_flight += 1;
        self.unrecorded.insert(item.id);
        self.recent.started(item.id);
        out.push(Effect::Deliver {
            item: Box::new(item),
            workspace: Box::new(row),
        });
    }

    fn claim_ahead(&mut self, workspace: &str, spare: u32, now: DateTime<Utc>, out: &mut Effects) {
        let w = self.w(workspace);
        if w.dry || w.claiming.is_some() {
            return;
        }
        // Never claim more than the workspace could take: every buffered
        // item must be dispatchable within its room.
        let claimable = spare.saturating_sub(self.ours(workspace) + self.buffered_in(workspace));
        if claimable == 0 {
            return;
        }
        let held = self.in_flight + self.buffered + self.claiming;
        let budget = (self.cfg.concurrency + self.cfg.prefetch).saturating_sub(held);
        // One claim never reserves more than the prefetch allowance (or the
        // global slots, if larger): a workspace with a huge room must not
        // hold the whole node budget for a claim that may bring back a
        // handful while other workspaces starve.
        let per_claim = self.cfg.prefetch.max(self.cfg.concurrency).max(1);
        let limit = claimable.min(budget).min(per_claim);
        // Claim in batches: unless slots would sit idle, wait until at least
        // half the prefetch allowance is free again.
        let idle = held < self.cfg.concurrency;
        let batch = (self.cfg.prefetch / 2).max(1).min(claimable);
        if limit == 0 || (!idle && limit < batch) {
            self.starved.insert(workspace.to_string());
            return;
        }
        self.claim_seq += 1;
        let seq = self.claim_seq;
        self.w(workspace).claiming = Some(PendingClaim {
            seq,
            limit,
            woken: false,
        });
        self.claiming += limit;
        out.push(Effect::Claim {
            workspace: workspace.to_string(),
            seq,
            limit,
            now,
        });
    }

    /// Drain the starved workspaces soon (once, behind what is in the mailbox).
    pub(super) fn schedule_starved(&mut self, out: &mut Effects) {
        if self.starved.is_empty() {
            return;
        }
        self.dirty.append(&mut self.starved);
        if !self.drain_scheduled {
            self.drain_scheduled = true;
            out.push(Effect::DrainSoon);
        }
    }

    /// Callers of a workspace with no claim under way (or row being read)
    /// will not learn more from one: their items wait in the queue.
    pub(super) fn settle_callers(&mut self, workspace: &str, out: &mut Effects) {
        let busy = self
            .ws
            .get(workspace)
            .is_some_and(|w| w.claiming.is_some() || w.loading);
        if !busy {
            self.callers.no_claim(workspace, out);
        }
    }

    /// Items that will not go out from here: expired past their TTL, the
    /// rest back to the queue. Callers waiting on them hear `Queued`.
    pub(super) fn give_back(
        &mut self,
        workspace: &str,
        items: Vec<QueueItem>,
        now: DateTime<Utc>,
        out: &mut Effects,
    ) {
        if items.is_empty() {
            return;
        }
        self.callers.given_back(&items, out);
        let (expired, released) = items.into_iter().partition(|i| i.expired_at(now));
        out.push(Effect::GiveBack {
            workspace: workspace.to_string(),
            expired,
            released,
        });
    }

    /// Everything buffered for `workspace`, out of the buffer.
    pub(super) fn unbuffer(&mut self, workspace: &str) -> Vec<QueueItem> {
        let held: Vec<QueueItem> = self
            .ws
            .get_mut(workspace)
            .map(|w| w.buffer.drain(..).map(|h: Held| h.item).collect())
            .unwrap_or_default();
        self.buffered -= u32::try_from(held.len()).unwrap_or(u32::MAX);
        held
    }

    /// One delivery of `workspace` returned.
    pub(super) fn land(&mut self, workspace: &str) {
        if let Some(w) = self.ws.get_mut(workspace) {
            if w.in_flight > 0 {
                w.in_flight -= 1;
                self.in_flight -= 1;
            }
        }
        self.tidy(workspace);
    }
}
