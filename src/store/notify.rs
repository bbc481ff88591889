//! The notification channel of the driver interface: how a drain learns that
//! some node enqueued work, without polling. PostgreSQL carries it over
//! LISTEN/NOTIFY (every node hears every node); SQLite, which one process
//! owns, over an in-process channel. Both say when they may have missed
//! something (a reconnect, a lagging reader), so the listener can look at
//! everything once instead of trusting a gap.

/// What a listener hears.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Wake {
    /// New items for this workspace were committed.
    Workspace(String),
    /// Notifications may have been lost (the connection dropped and came
    /// back, or the reader fell behind): every workspace may have work.
    Missed,
}

/// A subscription to wakes. Dropping it stops listening (and, on Postgres,
/// returns its connection).
#[async_trait::async_trait]
pub trait WakeStream: Send {
    /// The next wake. Errors are not returned: a broken connection is
    /// retried inside, and reported as [`Wake::Missed`] once it is back.
    async fn next(&mut self) -> Wake;
}
