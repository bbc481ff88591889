//! What the drain's core asks its shell to do. Each effect is carried out
//! by a task that reports back with a message, which the shell turns into
//! the matching call on [`DrainCore`](super::DrainCore).

use chrono::{DateTime, Utc};

use crate::messages::queue::SendOutcome;
use crate::model::queue::QueueItem;
use crate::model::workspace::Workspace;

/// What the shell must do.
#[derive(Debug, Clone, PartialEq)]
pub enum Effect {
    /// Read the workspace's row and report it with [`DrainCore::loaded`](super::DrainCore::loaded).
    LoadWorkspace { workspace: String },
    /// Claim up to `limit` items and report with [`DrainCore::claimed`](super::DrainCore::claimed).
    Claim {
        workspace: String,
        seq: u64,
        limit: u32,
        now: DateTime<Utc>,
    },
    /// Deliver one claimed item; report its return with [`DrainCore::dispatched`](super::DrainCore::dispatched).
    Deliver {
        item: Box<QueueItem>,
        workspace: Box<Workspace>,
    },
    /// Buffered items that will not be delivered from here: `expired` past
    /// their TTL, `released` back to the queue. Report with [`DrainCore::released`](super::DrainCore::released).
    GiveBack {
        workspace: String,
        expired: Vec<QueueItem>,
        released: Vec<QueueItem>,
    },
    /// Answer the `Send` caller waiting on this item.
    Answer { item_id: i64, outcome: SendOutcome },
    /// Answer the `Send` caller of this item from its row (see
    /// [`SendOutcome::of_row`]): it went out and came back before the caller came.
    AnswerFromRow { item_id: i64, depth: u64 },
    /// Come back with [`DrainCore::record_overdue`](super::DrainCore::record_overdue)
    /// after [`RECORD_PATIENCE`](super::core::RECORD_PATIENCE).
    RecordOverdueLater { item_id: i64 },
    /// Come back with [`DrainCore::drain_dirty`](super::DrainCore::drain_dirty) once the mailbox has moved on.
    DrainSoon,
}
