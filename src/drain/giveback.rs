//! Claimed items that will not be delivered from here go back: expired if
//! their TTL passed while they waited in the buffer, otherwise `queued`
//! again in their place, no attempt counted. Fenced by their lease tokens,
//! retried briefly when the database is unreachable; if it stays
//! unreachable the items stay leased and the lease rescue brings them back
//! (counting an attempt): late, but never lost.

use chrono::{DateTime, Utc};

use super::completer::settle_with_retry;
use crate::events::EventBus;
use crate::messages::queue::QueueOutcome;
use crate::model::queue::QueueItem;
use crate::store::{Settle, Store};

/// What a give-back did: items released, and items expired (already published).
#[derive(Debug, Default, Clone, PartialEq)]
pub struct GivenBack {
    pub released: usize,
    pub expired: Vec<QueueItem>,
}

pub async fn give_back(
    store: &Store,
    events: &EventBus<QueueOutcome>,
    expired: &[QueueItem],
    released: &[QueueItem],
    now: DateTime<Utc>,
) -> GivenBack {
    let rows: Vec<Settle<'_>> = expired
        .iter()
        .map(|item| Settle {
            item,
            settled: item.expired_unsent(now),
        })
        .chain(released.iter().map(|item| Settle {
            item,
            settled: item.released(),
        }))
        .collect();
    if rows.is_empty() {
        return GivenBack::default();
    }
    let written = settle_with_retry(store, &rows, now).await;
    let mut done = GivenBack::default();
    for r in rows.iter().filter(|r| written.contains(&r.item.id)) {
        let row = r.item.with(&r.settled);
        if row.status.is_final() {
            tracing::info!(item = row.id, workspace = %row.workspace, "expired before it could be delivered");
            events.publish(QueueOutcome {
                item: row.clone(),
                at: now,
            });
            done.expired.push(row);
        } else {
            tracing::debug!(item = row.id, workspace = %row.workspace, "gave back a buffered item");
            done.released += 1;
        }
    }
    done
}
