//! The tick's database work, run in a task so the mailbox keeps serving:
//! give back what left the buffer, expire TTLs, rescue lost leases, read
//! which leases are still ours (after a restart) and which workspaces have
//! ready items. Reported back as `Swept`.

use chrono::{DateTime, Utc};

use super::completer::RESCUE_GRACE;
use super::giveback::give_back;
use crate::events::EventBus;
use crate::messages::queue::{QueueOutcome, Swept};
use crate::model::queue::QueueItem;
use crate::store::{Store, StoreError};

pub struct SweepTask {
    pub store: Store,
    pub events: EventBus<QueueOutcome>,
    /// Items the tick took out of the buffer.
    pub stale: Vec<QueueItem>,
    /// This node's name, when inherited flights must be checked.
    pub check_leases_of: Option<String>,
    pub now: DateTime<Utc>,
}

impl SweepTask {
    pub(crate) async fn run(self) -> Result<Swept, StoreError> {
        let now = self.now;
        let (expired_stale, released): (Vec<QueueItem>, Vec<QueueItem>) =
            self.stale.into_iter().partition(|i| i.expired_at(now));
        let back = give_back(&self.store, &self.events, &expired_stale, &released, now).await;
        // Every item that left the buffer and was settled counts as given
        // back, whether it went back to the queue or expired.
        let released = back.released + back.expired.len();
        let mut expired = back.expired;
        for item in self.store.expire_due(now).await? {
            tracing::info!(item = item.id, workspace = %item.workspace, "expired before it could be delivered");
            self.events.publish(QueueOutcome {
                item: item.clone(),
                at: now,
            });
            expired.push(item);
        }
        // Right after an outage the holders of those leases are writing
        // their outcomes back: rescuing now would deliver them twice.
        let rescued = if self.store.recovering(RESCUE_GRACE) {
            Vec::new()
        } else {
            self.store.rescue_expired_leases(now).await?
        };
        for item in &rescued {
            tracing::warn!(item = item.id, workspace = %item.workspace, status = %item.status,
                "rescued an item whose lease ran out");
            if item.status.is_final() {
                self.events.publish(QueueOutcome {
                    item: item.clone(),
                    at: now,
                });
            }
        }
        let ours = match &self.check_leases_of {
            Some(node) => Some(
                self.store
                    .dispatched_by(node)
                    .await?
                    .into_iter()
                    .map(|i| (i.id, i.lease_token.unwrap_or_default()))
                    .collect(),
            ),
            None => None,
        };
        let ready = self.store.ready_workspaces(now).await?;
        Ok(Swept {
            released,
            expired,
            rescued,
            ready,
            ours,
        })
    }
}
