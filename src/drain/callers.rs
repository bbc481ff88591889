//! The `Send` callers a drain keeps waiting, and when each one hears what.
//!
//! A caller whose item a claim took waits for the outcome (its answer is the
//! workspace's response); any other caller hears `Queued` as soon as that is
//! known: the claim that could have taken its item came back without it, no
//! claim is under way, the item went back to the queue, or it waited longer
//! than a delivery may take. Callers are named by their item's id (one
//! caller per item: a second `Send` of the same key is answered at once).

use std::collections::HashMap;

use super::effect::Effect;
use crate::messages::queue::SendOutcome;
use crate::model::queue::{QueueItem, QueueStatus};

#[derive(Debug, Clone)]
struct Pending {
    workspace: String,
    depth: u64,
    /// Claims numbered above this started after the item was committed.
    after: u64,
}

#[derive(Debug, Default)]
pub struct Callers {
    /// Waiting to learn whether their item was claimed.
    pending: HashMap<i64, Pending>,
    /// Waiting for their item's first outcome (with its depth).
    waiting: HashMap<i64, u64>,
    /// Of those, the ones whose delivery returned but whose outcome is not
    /// written yet: the agent's response, if it answered.
    returned: HashMap<i64, Option<String>>,
}

/// `Queued` for the caller of `item_id`.
pub fn queued(item_id: i64, depth: u64) -> Effect {
    Effect::Answer {
        item_id,
        outcome: SendOutcome::Queued {
            queue_id: item_id,
            queue_depth: depth,
        },
    }
}

/// The agent's `response` for the caller of `item_id`.
fn delivered(item_id: i64, response: String) -> Effect {
    Effect::Answer {
        item_id,
        outcome: SendOutcome::Delivered {
            queue_id: item_id,
            response,
        },
    }
}

impl Callers {
    /// A caller of `id` (committed when the latest claim was number `after`).
    pub fn add(&mut self, id: i64, workspace: &str, depth: u64, after: u64) {
        self.pending.insert(
            id,
            Pending {
                workspace: workspace.to_string(),
                depth,
                after,
            },
        );
    }

    /// A caller whose item a claim already took: it waits for the outcome.
    pub fn waiting(&mut self, id: i64, depth: u64) {
        self.waiting.insert(id, depth);
    }

    /// Claim `seq` of `workspace` came back having taken `taken`: its callers
    /// learn their fate. A taken item's caller waits for the delivery, unless
    /// the workspace went busy meanwhile (then the item goes back).
    pub fn claim_returned(
        &mut self,
        workspace: &str,
        seq: u64,
        taken: &[i64],
        busy: bool,
        out: &mut Vec<Effect>,
    ) {
        let settled: Vec<i64> = self
            .pending
            .iter()
            .filter(|(id, p)| p.workspace == workspace && (p.after < seq || taken.contains(id)))
            .map(|(id, _)| *id)
            .collect();
        for id in settled {
            let Some(p) = self.pending.remove(&id) else {
                continue;
            };
            if taken.contains(&id) && !busy {
                self.waiting.insert(id, p.depth);
            } else {
                out.push(queued(id, p.depth));
            }
        }
    }

    /// No claim is under way for `workspace`: its pending callers' items
    /// wait in the queue.
    pub fn no_claim(&mut self, workspace: &str, out: &mut Vec<Effect>) {
        let settled: Vec<i64> = self
            .pending
            .iter()
            .filter(|(_, p)| p.workspace == workspace)
            .map(|(id, _)| *id)
            .collect();
        for id in settled {
            if let Some(p) = self.pending.remove(&id) {
                out.push(queued(id, p.depth));
            }
        }
    }

    /// These items go back to the queue instead of out.
    pub fn given_back<'a>(
        &mut self,
        items: impl IntoIterator<Item = &'a QueueItem>,
        out: &mut Vec<Effect>,
    ) {
        for item in items {
            self.returned.remove(&item.id);
            if let Some(depth) = self.waiting.remove(&item.id) {
                out.push(queued(item.id, depth));
            }
        }
    }

    /// The delivery of `id` returned (`response`: the agent's, if it
    /// answered); its outcome is on its way to the database. True when a
    /// caller waits on it.
    pub fn returned(&mut self, id: i64, response: Option<String>) -> bool {
        if !self.waiting.contains_key(&id) {
            return false;
        }
        self.returned.insert(id, response);
        true
    }

    /// The outcome of `id` was not written in time (the database is slow or
    /// away): its caller hears what is known from memory — the response if
    /// the agent answered, else `Queued`. Delivery is at-least-once, so an
    /// outcome written later (or never, and redelivered) changes nothing for
    /// this caller.
    pub fn record_overdue(&mut self, id: i64, out: &mut Vec<Effect>) {
        let Some(response) = self.returned.remove(&id) else {
            return;
        };
        let Some(depth) = self.waiting.remove(&id) else {
            return;
        };
        out.push(match response {
            Some(response) => delivered(id, response),
            None => queued(id, depth),
        });
    }

    /// A caller waited longer than a delivery may take.
    pub fn overdue(&mut self, id: i64, out: &mut Vec<Effect>) {
        self.returned.remove(&id);
        let depth = match self.pending.remove(&id) {
            Some(p) => Some(p.depth),
            None => self.waiting.remove(&id),
        };
        if let Some(depth) = depth {
            out.push(queued(id, depth));
        }
    }

    /// Outcomes are durable: the response to a delivered item's caller,
    /// `Queued` to one whose item went back (or whose outcome could not be
    /// written: it will be rescued).
    pub fn recorded(&mut self, done: Vec<(i64, Option<QueueItem>)>, out: &mut Vec<Effect>) {
        for (id, row) in done {
            self.returned.remove(&id);
            let Some(depth) = self.waiting.remove(&id) else {
                continue;
            };
            out.push(match row {
                Some(r) if r.status == QueueStatus::Completed => {
                    delivered(id, r.response.unwrap_or_default())
                }
                _ => queued(id, depth),
            });
        }
    }

    /// Callers still without an answer.
    pub fn len(&self) -> usize {
        self.pending.len() + self.waiting.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
