//! A claim, run in a task so the mailbox never waits on the database, and
//! reported back as `Claimed` with its items in a [`Leased`] (given back if
//! the report is never taken).

use std::time::Duration;

use chrono::{DateTime, Utc};
use ractor::ActorRef;

use crate::clock::SharedClock;
use crate::messages::queue::{DrainReport, Internal, QueueMsg};
use crate::model::time;
use crate::store::{Claim, Leased, Store};

pub struct ClaimTask {
    pub store: Store,
    pub clock: SharedClock,
    pub node: String,
    pub lease: Duration,
    pub workspace: String,
    pub seq: u64,
    pub limit: u32,
    /// When the core decided; the claim runs at this or the clock's now,
    /// whichever is later.
    pub now: DateTime<Utc>,
}

impl ClaimTask {
    pub fn spawn(self, drain: ActorRef<QueueMsg>) {
        tokio::spawn(async move {
            // The time it runs, not the time it was asked for: a claim that
            // waited (for a connection, for SQLite's writer) must not take an
            // item whose TTL passed meanwhile.
            let now = self.now.max(self.clock.now());
            let result = self
                .store
                .claim(Claim {
                    workspace: &self.workspace,
                    limit: self.limit,
                    now,
                    lease_until: time::add_saturating(now, self.lease),
                    node: &self.node,
                })
                .await
                .map(|items| Leased::new(self.store.clone(), self.clock.clone(), items));
            // Only the incarnation that counted this claim may take it; if it
            // is gone, the message (and the items in it) is dropped, which
            // gives the items back.
            let _ = drain.cast(QueueMsg::Internal(Internal(DrainReport::Claimed {
                workspace: self.workspace,
                seq: self.seq,
                result,
            })));
        });
    }
}
