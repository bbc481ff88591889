//! Durable state, behind one driver interface.
//!
//! SQLite is the embedded default (one file, one writer); PostgreSQL is for
//! several nodes sharing the work. Each domain (workspaces, the queue,
//! schedules, their runs, delegations) is a trait in its own file here, and so is the
//! notification channel ([`notify`]). They are implemented once, in [`sql`],
//! over a dialect: [`sqlite`] and [`postgres`] hold only what differs between
//! the two databases. One conformance suite (`tests/store_conformance.rs` and
//! the other `*_store.rs` files) runs against both, the way River tests its
//! drivers.
//!
//! Time never comes from the database's `now()`: every operation that depends
//! on time takes the instant as a parameter, so a manual clock drives it.

mod delegations;
mod error;
pub mod gate;
mod lease;
pub mod notify;
pub mod operator;
pub mod postgres;
pub mod queue;
pub mod retention;
pub mod runs;
pub mod schedules;
pub mod sql;
pub mod sqlite;
mod workspaces;

use std::sync::Arc;

pub use delegations::DelegationStore;
pub use error::StoreError;
pub use lease::Leased;
pub use notify::{Wake, WakeStream};
pub use operator::{DelegationFilter, OperatorStore};
pub use queue::{Claim, QueueFilter, QueueStore, Recorded, Settle};
pub use retention::RetentionStore;
pub use runs::RunStore;
pub use schedules::{ScheduleError, ScheduleStore, SlotFire};
pub use workspaces::WorkspaceStore;

/// Which database a store talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Everything a driver offers. New domains join here as supertraits.
#[async_trait::async_trait]
pub trait Driver:
    WorkspaceStore
    + QueueStore
    + ScheduleStore
    + RunStore
    + DelegationStore
    + RetentionStore
    + OperatorStore
    + Send
    + Sync
    + 'static
{
    fn backend(&self) -> Backend;

    /// A cheap round trip, for health checks and start-up.
    async fn ping(&self) -> Result<(), StoreError>;

    /// Wakes from every node's enqueues (the notification channel).
    async fn listen(&self) -> Result<Box<dyn WakeStream>, StoreError>;

    /// Tell every node that these workspaces have new items (the enqueue
    /// paths do it themselves; a writer that batches its wakes, such as the
    /// scheduler's claim rounds, calls this once).
    async fn notify(&self, workspaces: &[&str]);

    /// Close the pool, waiting for connections to be returned.
    async fn close(&self);

    /// The database is down, or came back within `window`: leases that ran
    /// out meanwhile may belong to deliveries whose outcomes are still on
    /// their way (see [`crate::drain::completer::RESCUE_GRACE`]).
    fn recovering(&self, window: std::time::Duration) -> bool;
}

/// The handle every actor holds.
pub type Store = Arc<dyn Driver>;

/// Open the database named by `url` (`sqlite://…` or `postgres://…`), creating
/// a SQLite file on first use, and bring its schema up to date.
pub async fn open(url: &str) -> Result<Store, StoreError> {
    if url.starts_with("sqlite:") {
        Ok(Arc::new(sqlite::open(url).await?))
    } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        Ok(Arc::new(postgres::open(url).await?))
    } else {
        Err(StoreError::UnsupportedUrl { url: redact(url) })
    }
}

/// A database URL fit for a log line: credentials replaced by `***`.
pub fn redact(url: &str) -> String {
    crate::model::workspace::redact_url(url)
}
