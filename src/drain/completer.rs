//! The completer: outcomes of deliveries, written in batches.
//!
//! Delivery tasks hand their outcome over a bounded channel and are done;
//! the completer writes everything that arrived while its previous write was
//! in flight in one statement (Postgres) or one transaction (SQLite), each
//! row as the model settles it and fenced by its lease token. Then it
//! publishes end states and tells the drain which outcomes are durable (so
//! waiting `Send` callers get their answer). A full channel makes delivery
//! tasks wait: back-pressure instead of unbounded memory. It ends when every
//! sender is gone (its drain incarnation and that incarnation's deliveries),
//! so outcomes of deliveries that outlive a restart are still written.

use std::time::Duration;

use chrono::{DateTime, Utc};
use ractor::ActorRef;
use tokio::sync::mpsc;

use crate::events::EventBus;
use crate::messages::queue::{DrainReport, Finished, Internal, QueueMsg, QueueOutcome};
use crate::model::outcome::{Backoff, DispatchResult};
use crate::model::queue::QueueItem;
use crate::names::{self, Names};
use crate::store::{Settle, Store, StoreError};

/// Outcomes written per statement at most.
const BATCH: usize = 1000;
/// Outcomes that may wait for the completer before deliveries wait.
const CHANNEL: usize = 4096;

/// One outcome for the completer to write.
pub struct Completion {
    pub item: QueueItem,
    pub result: DispatchResult,
    pub at: DateTime<Utc>,
}

/// Where delivery tasks hand their outcomes.
#[derive(Clone)]
pub struct Completer {
    tx: mpsc::Sender<Completion>,
}

impl Completer {
    pub async fn send(&self, completion: Completion) {
        if self.tx.send(completion).await.is_err() {
            tracing::warn!("completer gone; the outcome will be found by the lease rescue");
        }
    }

    pub fn start(
        store: Store,
        events: EventBus<QueueOutcome>,
        names: Names,
        backoff: Backoff,
        fallback: ActorRef<QueueMsg>,
    ) -> Self {
        let (tx, mut rx) = mpsc::channel::<Completion>(CHANNEL);
        tokio::spawn(async move {
            let mut batch = Vec::with_capacity(BATCH);
            while rx.recv_many(&mut batch, BATCH).await > 0 {
                let done = write(&store, &events, backoff, std::mem::take(&mut batch)).await;
                let target = names
                    .lookup::<QueueMsg>(names::QUEUE_DRAIN)
                    .unwrap_or_else(|| fallback.clone());
                let _ = target.cast(QueueMsg::Internal(Internal(DrainReport::Recorded(done))));
            }
        });
        Self { tx }
    }
}

/// Settle a batch as the model decides, publish end states, report.
async fn write(
    store: &Store,
    events: &EventBus<QueueOutcome>,
    backoff: Backoff,
    batch: Vec<Completion>,
) -> Vec<Finished> {
    let rows: Vec<Settle<'_>> = batch
        .iter()
        .map(|c| Settle {
            item: &c.item,
            settled: c.item.settle(&c.result, c.at, backoff),
        })
        .collect();
    let now = batch.iter().map(|c| c.at).max().unwrap_or_default();
    let written = settle_with_retry(store, &rows, now).await;
    rows.iter()
        .map(|r| {
            let recorded = written
                .contains(&r.item.id)
                .then(|| r.item.with(&r.settled));
            match &recorded {
                Some(row) if row.status.is_final() => events.publish(QueueOutcome {
                    item: row.clone(),
                    at: row.finished_at.unwrap_or(now),
                }),
                Some(_) => {}
                None => tracing::warn!(
                    item = r.item.id,
                    "outcome not recorded (lease lost or database down); the lease rescue has it"
                ),
            }
            Finished {
                item_id: r.item.id,
                recorded,
            }
        })
        .collect()
}

/// `settle`, retried while the database is unreachable, for up to
/// [`RECORD_BUDGET`] (an outage of that length loses no outcome; waiting
/// `Send` callers are answered meanwhile from memory, see
/// [`RECORD_PATIENCE`](super::core::RECORD_PATIENCE)). Past it, or after a
/// few tries at any other error, the lease runs out and the item is rescued:
/// delivery is at-least-once, and receivers dedupe on the messageId.
pub async fn settle_with_retry(store: &Store, rows: &[Settle<'_>], now: DateTime<Utc>) -> Vec<i64> {
    retry("recording outcomes", || store.settle(rows, now))
        .await
        .unwrap_or_default()
}

/// How long an outcome write keeps trying while the database is away.
pub const RECORD_BUDGET: Duration = Duration::from_secs(30);

/// The longest pause between two tries of an outcome write.
pub const RETRY_PAUSE_MAX: Duration = Duration::from_secs(2);

/// After the database comes back, how long the tick leaves leases that ran
/// out alone: every node's completer retries within [`RETRY_PAUSE_MAX`],
/// so an outcome held through an outage lands before the lease rescue
/// would deliver its item a second time.
pub const RESCUE_GRACE: Duration = Duration::from_secs(3);

/// Try `op` until it succeeds: while the database is unreachable, for up to
/// [`RECORD_BUDGET`] (pauses from 100 ms, doubling to 2 s); on any other
/// error, five times. Each failure is logged.
pub async fn retry<T, F, Fut>(what: &str, mut op: F) -> Option<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, StoreError>>,
{
    let began = tokio::time::Instant::now();
    let mut pause = Duration::from_millis(100);
    let mut attempt = 0u32;
    loop {
        attempt += 1;
        match op().await {
            Ok(v) => return Some(v),
            Err(err) => {
                let more = if err.is_unavailable() {
                    began.elapsed() + pause < RECORD_BUDGET
                } else {
                    attempt < 5
                };
                if !more {
                    tracing::error!(error = %err, attempt, "{what} failed; giving up");
                    return None;
                }
                tracing::warn!(error = %err, attempt, "{what} failed; retrying");
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(RETRY_PAUSE_MAX);
            }
        }
    }
}
