//! Group commit: every enqueue that arrives while a write is in flight goes
//! into the next write, one transaction for all of them, and each caller
//! hears back once that transaction committed. Enqueues never wait behind a
//! delivery mailbox, and under load a thousand of them cost a handful of
//! commits instead of a thousand.
//!
//! Each request carries a deadline. A request still waiting when its
//! deadline passes is answered [`IngestError::TimedOut`] and is never
//! written: nothing a caller was told failed is carried out later. Once a
//! write has begun its callers wait for its end (bounded by the pool's
//! acquire timeout and the statement itself), because abandoning a commit
//! half-way would leave its outcome unknown. A batch the database refuses
//! for a reason other than being unreachable is retried one item at a time,
//! so one bad item cannot sink the others.
//!
//! A caller's own batch ([`Ingest::enqueue_batch`]) is written as one
//! transaction of its own, all or nothing, through the same writer.
//!
//! The write itself does not count queue depths (that cost grows with the
//! queue); the depth each caller hears is this node's [`DepthBook`]
//! estimate, counted again at most once a second per workspace.

use std::collections::BTreeMap;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

use crate::clock::SharedClock;
use crate::model::depth::DepthBook;
use crate::model::queue::{Enqueued, NewQueueItem};
use crate::model::Invalid;
use crate::store::{Store, StoreError};
use crate::tasks::Owned;

/// Told about every workspace a write added items to, with the new items'
/// ids (the service points it at this node's drain and the console's feed;
/// other nodes hear the store's notification).
pub type OnWritten = std::sync::Arc<dyn Fn(&str, &[i64]) + Send + Sync>;

/// Requests taken into one write at most.
const MAX_BATCH: usize = 512;
/// Requests that may wait for the writer before callers wait to get in.
const CHANNEL: usize = 8192;

/// Why an enqueue was not done.
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error(transparent)]
    Invalid(#[from] Invalid),
    /// Not written: its deadline passed before its turn came.
    #[error("not enqueued: the queue did not get to it within {0:?}")]
    TimedOut(Duration),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("the ingest writer has stopped")]
    Stopped,
}

enum Request {
    One {
        item: NewQueueItem,
        deadline: Instant,
        reply: OneReply,
    },
    Batch {
        items: Vec<NewQueueItem>,
        deadline: Instant,
        reply: oneshot::Sender<Result<Vec<Enqueued>, IngestError>>,
    },
}

impl Request {
    fn deadline(&self) -> Instant {
        match self {
            Request::One { deadline, .. } | Request::Batch { deadline, .. } => *deadline,
        }
    }

    fn time_out(self, waited: Duration) {
        match self {
            Request::One { reply, .. } => {
                let _ = reply.send(Err(IngestError::TimedOut(waited)));
            }
            Request::Batch { reply, .. } => {
                let _ = reply.send(Err(IngestError::TimedOut(waited)));
            }
        }
    }
}

/// The handle callers enqueue through; clones share one writer.
#[derive(Clone)]
pub struct Ingest {
    tx: mpsc::Sender<Request>,
    _writer: std::sync::Arc<Owned<()>>,
}

impl Ingest {
    /// Start the writer.
    pub fn start(store: Store, clock: SharedClock, max_attempts: u32, written: OnWritten) -> Self {
        let (tx, rx) = mpsc::channel(CHANNEL);
        let writer = Writer {
            store,
            clock,
            max_attempts,
            written,
            depths: DepthBook::default(),
        };
        let writer = Owned::new(tokio::spawn(writer.run(rx)));
        Self {
            tx,
            _writer: std::sync::Arc::new(writer),
        }
    }

    /// Enqueue `item`, durable when this answers `Ok`. `within` bounds how
    /// long the request may wait for its write to begin.
    pub async fn enqueue(
        &self,
        item: NewQueueItem,
        within: Duration,
    ) -> Result<Enqueued, IngestError> {
        item.validate()?;
        self.submit(within, |deadline, reply| Request::One {
            item,
            deadline,
            reply,
        })
        .await
    }

    /// Enqueue `items` in one transaction of their own: all durable when
    /// this answers `Ok`, none written otherwise. Answers in input order.
    pub async fn enqueue_batch(
        &self,
        items: Vec<NewQueueItem>,
        within: Duration,
    ) -> Result<Vec<Enqueued>, IngestError> {
        items.iter().try_for_each(NewQueueItem::validate)?;
        if items.is_empty() {
            return Ok(Vec::new());
        }
        self.submit(within, |deadline, reply| Request::Batch {
            items,
            deadline,
            reply,
        })
        .await
    }

    /// Hand the writer the request `make` builds and wait for its answer.
    async fn submit<T>(
        &self,
        within: Duration,
        make: impl FnOnce(Instant, oneshot::Sender<Result<T, IngestError>>) -> Request,
    ) -> Result<T, IngestError> {
        let deadline = Instant::now() + within;
        let (reply, answer) = oneshot::channel();
        match tokio::time::timeout_at(deadline, self.tx.send(make(deadline, reply))).await {
            Err(_) => return Err(IngestError::TimedOut(within)),
            Ok(Err(_)) => return Err(IngestError::Stopped),
            Ok(Ok(())) => {}
        }
        answer.await.unwrap_or(Err(IngestError::Stopped))
    }
}

/// The answer channel of one single enqueue.
type OneReply = oneshot::Sender<Result<Enqueued, IngestError>>;

/// The writer task: where it writes, whom it tells, and the depth book it
/// answers depths from.
struct Writer {
    store: Store,
    clock: SharedClock,
    max_attempts: u32,
    written: OnWritten,
    depths: DepthBook,
}

impl Writer {
    async fn run(mut self, mut rx: mpsc::Receiver<Request>) {
        let mut batch = Vec::with_capacity(MAX_BATCH);
        while rx.recv_many(&mut batch, MAX_BATCH).await > 0 {
            let now = Instant::now();
            let mut ones = Vec::new();
            for request in batch.drain(..) {
                if request.deadline() <= now {
                    let waited = now.saturating_duration_since(request.deadline());
                    request.time_out(waited);
                    continue;
                }
                match request {
                    Request::One { item, reply, .. } => ones.push((item, reply)),
                    Request::Batch { items, reply, .. } => {
                        self.write_own_batch(items, reply).await;
                    }
                }
            }
            if !ones.is_empty() {
                self.write_ones(ones).await;
            }
        }
    }

    /// Single enqueues that arrived together: one transaction for all.
    async fn write_ones(&mut self, ones: Vec<(NewQueueItem, OneReply)>) {
        let (items, replies): (Vec<NewQueueItem>, Vec<OneReply>) = ones.into_iter().unzip();
        let mut answers = write(&self.store, &items, self.max_attempts, self.clock.now()).await;
        let stale = estimate_depths(&mut self.depths, &items, &mut answers);
        let woken = new_ids(&items, &answers);
        for (reply, answer) in replies.into_iter().zip(answers) {
            let _ = reply.send(answer);
        }
        self.tell(woken);
        self.recount(&stale).await;
    }

    /// A caller's batch, one transaction: answered, its workspaces told,
    /// their depths estimated as for single enqueues.
    async fn write_own_batch(
        &mut self,
        items: Vec<NewQueueItem>,
        reply: oneshot::Sender<Result<Vec<Enqueued>, IngestError>>,
    ) {
        let done = match self
            .store
            .enqueue_batch_uncounted(&items, self.max_attempts, self.clock.now())
            .await
        {
            Ok(done) => done,
            Err(err) => {
                let _ = reply.send(Err(err.into()));
                return;
            }
        };
        let mut answers: Vec<Result<Enqueued, IngestError>> = done.into_iter().map(Ok).collect();
        let stale = estimate_depths(&mut self.depths, &items, &mut answers);
        let woken = new_ids(&items, &answers);
        let _ = reply.send(answers.into_iter().collect());
        self.tell(woken);
        self.recount(&stale).await;
    }

    /// Tell each workspace a write added items to (after the answers).
    fn tell(&self, woken: BTreeMap<&str, Vec<i64>>) {
        for (workspace, ids) in woken {
            (self.written)(workspace, &ids);
        }
    }

    /// Count again the workspaces whose count went stale (one indexed
    /// read each, at most once a second per workspace).
    async fn recount(&mut self, stale: &[&str]) {
        for workspace in stale {
            let now = std::time::Instant::now();
            match self.store.queue_depth(workspace).await {
                Ok(depth) => self.depths.counted(workspace, depth, now),
                Err(err) => tracing::debug!(error = %err, workspace, "queue depth not counted"),
            }
        }
    }
}

/// The ids a write added, by workspace (a workspace whose items were all
/// repeats is listed with none: it is told all the same).
fn new_ids<'a>(
    items: &'a [NewQueueItem],
    answers: &[Result<Enqueued, IngestError>],
) -> BTreeMap<&'a str, Vec<i64>> {
    let mut woken: BTreeMap<&str, Vec<i64>> = BTreeMap::new();
    for (item, answer) in items.iter().zip(answers) {
        let new = woken.entry(item.workspace.as_str()).or_default();
        match answer {
            Ok(done) if !done.deduplicated => new.push(done.id),
            _ => {}
        }
    }
    woken
}

/// Fill in each answer's depth from the book; answers the workspaces whose
/// count is stale, to be counted after the answers went out.
fn estimate_depths<'a>(
    book: &mut DepthBook,
    items: &'a [NewQueueItem],
    answers: &mut [Result<Enqueued, IngestError>],
) -> Vec<&'a str> {
    let mut added: std::collections::BTreeMap<&str, u64> = Default::default();
    for (item, answer) in items.iter().zip(answers.iter()) {
        if let Ok(done) = answer {
            *added.entry(item.workspace.as_str()).or_default() += u64::from(!done.deduplicated);
        }
    }
    let now = std::time::Instant::now();
    let mut stale = Vec::new();
    let mut depth_of = std::collections::BTreeMap::new();
    for (workspace, new) in added {
        let (depth, recount) = book.after_write(workspace, new, now);
        if recount {
            stale.push(workspace);
        }
        depth_of.insert(workspace, depth);
    }
    for (item, answer) in items.iter().zip(answers.iter_mut()) {
        if let (Ok(done), Some(depth)) = (answer, depth_of.get(item.workspace.as_str())) {
            done.depth = *depth;
        }
    }
    stale
}

/// One transaction for the batch; a refused batch (not an unreachable
/// database) item by item, so each item gets its own answer.
async fn write(
    store: &Store,
    items: &[NewQueueItem],
    max_attempts: u32,
    now: chrono::DateTime<chrono::Utc>,
) -> Vec<Result<Enqueued, IngestError>> {
    match store
        .enqueue_batch_uncounted(items, max_attempts, now)
        .await
    {
        Ok(done) => done.into_iter().map(Ok).collect(),
        Err(err) if err.is_unavailable() || items.len() == 1 => {
            let message = err.to_string();
            let mut first = Some(err);
            items
                .iter()
                .map(|_| {
                    Err(IngestError::Store(first.take().unwrap_or(
                        StoreError::Unavailable {
                            reason: message.clone(),
                        },
                    )))
                })
                .collect()
        }
        Err(err) => {
            tracing::warn!(error = %err, items = items.len(), "a batch of enqueues was refused; writing them one by one");
            let mut out = Vec::with_capacity(items.len());
            for item in items {
                let one = store
                    .enqueue_batch_uncounted(std::slice::from_ref(item), max_attempts, now)
                    .await
                    .map(|mut done| done.remove(0));
                out.push(one.map_err(IngestError::from));
            }
            out
        }
    }
}
