//! The QueueDrainActor's vocabulary: enqueues, sends that wait for a
//! delivery, wakes, capacity reports, the safety-net tick; and the outcome
//! events it publishes.

use chrono::{DateTime, Utc};
use ractor::RpcReplyPort;
use serde::Serialize;

use crate::model::queue::{Enqueued, NewQueueItem, QueueItem};
use crate::model::Invalid;
use crate::store::{Leased, StoreError};

/// An item reached an end state (completed, failed, expired).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct QueueOutcome {
    pub item: QueueItem,
    pub at: DateTime<Utc>,
}

#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    #[error(transparent)]
    Invalid(#[from] Invalid),
    #[error("workspace {0:?} is not registered")]
    UnknownWorkspace(String),
    #[error(transparent)]
    Ingest(#[from] crate::ingest::IngestError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What became of a message sent to a workspace.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum SendOutcome {
    /// Delivered (at once, or earlier under the same key); the workspace's response.
    Delivered { queue_id: i64, response: String },
    /// Waiting in the queue (no room now, or the first try did not land).
    Queued { queue_id: i64, queue_depth: u64 },
    /// Its key names an item that already ended without a delivery.
    Ended {
        queue_id: i64,
        status: crate::model::queue::QueueStatus,
        error: Option<String>,
    },
}

impl SendOutcome {
    /// What a caller of `item` hears from its row (`depth`: the active
    /// items it was counted behind): the response once completed, its end
    /// if it ended otherwise, `Queued` while it is still active.
    pub fn of_row(item: crate::model::queue::QueueItem, depth: u64) -> Self {
        use crate::model::queue::QueueStatus;
        match item.status {
            QueueStatus::Completed => Self::Delivered {
                queue_id: item.id,
                response: item.response.unwrap_or_default(),
            },
            status if status.is_final() => Self::Ended {
                queue_id: item.id,
                status,
                error: item.last_error,
            },
            _ => Self::Queued {
                queue_id: item.id,
                queue_depth: depth,
            },
        }
    }
}

/// What one tick did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DrainTickReport {
    pub expired: usize,
    pub rescued: usize,
    /// Buffered items given back (TTL passed or held too long).
    pub released: usize,
    pub drained_workspaces: usize,
}

/// In-flight and buffered counts, for tests and metrics.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct InFlightReport {
    pub total: u32,
    pub by_workspace: Vec<(String, u32)>,
    /// Claimed and waiting in the prefetch buffer, all workspaces.
    pub buffered: u32,
}

/// The answer to `Quiesce`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quiesced {
    /// Deliveries still under way when it answered (0 unless `within` passed).
    pub left_in_flight: u32,
}

pub type Reply<T> = RpcReplyPort<Result<T, QueueError>>;

pub enum QueueMsg {
    /// Enqueue (through the group-committed ingest): answered once durable.
    Enqueue {
        item: NewQueueItem,
        reply: Option<Reply<Enqueued>>,
    },
    EnqueueBatch {
        items: Vec<NewQueueItem>,
        reply: Option<Reply<Vec<Enqueued>>>,
    },
    /// Item `id` of `workspace` was just enqueued (`depth` active items):
    /// answer with its response once delivered if a claim takes it now,
    /// otherwise `Queued` as soon as that is known.
    Await {
        id: i64,
        workspace: String,
        depth: u64,
        reply: Reply<SendOutcome>,
    },
    /// Something may be ready for `workspace` (another node's enqueue, a
    /// fire): look now.
    Wake {
        workspace: String,
    },
    /// From the HeartbeatActor: a workspace's row as a beat or registration
    /// just wrote it (its capacity and URL now).
    Capacity(Box<crate::model::workspace::Workspace>),
    /// Safety net: expire TTLs, rescue lost leases, give back buffered items
    /// held too long, drain every ready workspace.
    Tick {
        now: Option<DateTime<Utc>>,
        reply: Option<Reply<DrainTickReport>>,
    },
    InFlight(RpcReplyPort<InFlightReport>),
    /// Shutdown: claim and start nothing more, give the buffer back, and
    /// answer once every delivery under way has returned and its outcome is
    /// written — or when `within` has passed.
    Quiesce {
        within: std::time::Duration,
        reply: RpcReplyPort<Quiesced>,
    },
    /// Reports from the actor's own tasks; only the crate builds one.
    #[doc(hidden)]
    Internal(Internal),
}

/// The drain's reports from its own tasks.
pub struct Internal(pub(crate) DrainReport);

pub(crate) enum DrainReport {
    /// A claim task: what it took (or that it failed).
    Claimed {
        workspace: String,
        seq: u64,
        result: Result<Leased, StoreError>,
    },
    /// A row read: the workspace's capacity and URL (`None`: not registered).
    Loaded {
        workspace: String,
        result: Result<Option<crate::model::workspace::Workspace>, StoreError>,
    },
    /// A give-back task: the items are settled.
    Released { workspace: String },
    /// A delivery task: its dispatcher call returned (the slot is free).
    Dispatched {
        workspace: String,
        item_id: i64,
        lease_token: String,
        busy: bool,
        /// The agent's response, when it answered.
        response: Option<String>,
    },
    /// An answered delivery's outcome was not written within the patience.
    RecordOverdue { id: i64 },
    /// The completer: these outcomes are durable.
    Recorded(Vec<Finished>),
    /// Dispatch and claim for the workspaces marked since the last one.
    DrainDirty,
    /// Time to look for `Send` callers that waited too long.
    CheckOverdue,
    /// The tick's database work is done.
    Swept {
        now: DateTime<Utc>,
        result: Result<Swept, StoreError>,
        reply: Option<Reply<DrainTickReport>>,
    },
    /// The notification channel: new items somewhere (or maybe missed).
    Woken(crate::store::Wake),
    /// The time allowed for a `Quiesce` has passed.
    QuiesceDeadline,
}

/// One recorded outcome, reported by the completer.
#[derive(Debug)]
pub(crate) struct Finished {
    pub item_id: i64,
    /// The row after recording, or `None` when the lease was lost or the
    /// store could not be written (the lease will be rescued).
    pub recorded: Option<QueueItem>,
}

/// What the tick's database work found.
#[derive(Debug)]
pub(crate) struct Swept {
    pub released: usize,
    pub expired: Vec<QueueItem>,
    pub rescued: Vec<QueueItem>,
    pub ready: Vec<String>,
    /// This node's leases as the store holds them, when the tick asked.
    pub ours: Option<Vec<(i64, String)>>,
}
