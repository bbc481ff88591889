//! Durable state, behind one driver interface with two implementations.
//!
//! SQLite is the embedded default (one file, one writer); PostgreSQL is for
//! several nodes sharing the work. Each domain (workspaces, the queue,
//! schedules, delegations) is a trait in its own file here; each driver
//! implements it in `sqlite/` or `postgres/`. [`Driver`] gathers them, and one
//! conformance suite (`tests/store_conformance.rs`) runs against both, the way
//! River tests its drivers.
//!
//! Time never comes from the database's `now()`: every operation that depends
//! on time takes the instant as a parameter, so a manual clock drives it.

mod delegations;
mod error;
pub mod postgres;
pub mod queue;
pub mod schedules;
pub mod sqlite;
mod workspaces;

use std::sync::Arc;

pub use delegations::{
    Created, Delegation, DelegationBeatOutcome, DelegationStatus, DelegationStore, NewDelegation,
    StatusChange, SweepCounts, Swept, Transition, UnknownStatus, DEADLINE_EXCEEDED,
    DEFAULT_DEADLINE,
};
pub use error::StoreError;
pub use queue::{
    Claim, DispatchResult, Enqueued, NewQueueItem, Priority, QueueItem, QueueStatus, QueueStore,
    Recorded,
};
pub use schedules::{
    FinishedRun, ManualRun, NewSchedule, RunOutcome, RunStatus, Schedule, ScheduleError,
    SchedulePatch, ScheduleRun, ScheduleStore, SlotClaim,
};
pub use workspaces::{Workspace, WorkspaceBeat, WorkspaceStatus, WorkspaceStore};

/// Which database a store talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Everything a driver offers. New domains join here as supertraits.
#[async_trait::async_trait]
pub trait Driver:
    WorkspaceStore + QueueStore + ScheduleStore + DelegationStore + Send + Sync + 'static
{
    fn backend(&self) -> Backend;

    /// A cheap round trip, for health checks and start-up.
    async fn ping(&self) -> Result<(), StoreError>;

    /// The Postgres pool, for what only Postgres has (LISTEN/NOTIFY).
    fn postgres_pool(&self) -> Option<sqlx::PgPool> {
        None
    }

    /// Close the pool, waiting for connections to be returned.
    async fn close(&self);
}

/// The handle every actor holds.
pub type Store = Arc<dyn Driver>;

/// Open the database named by `url` (`sqlite://…` or `postgres://…`), creating
/// a SQLite file on first use, and bring its schema up to date.
pub async fn open(url: &str) -> Result<Store, StoreError> {
    if url.starts_with("sqlite:") {
        Ok(Arc::new(sqlite::SqliteStore::open(url).await?))
    } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        Ok(Arc::new(postgres::PgStore::open(url).await?))
    } else {
        Err(StoreError::UnsupportedUrl { url: redact(url) })
    }
}

/// A URL fit for a log line: the password, if any, replaced by `***`.
pub fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            let userinfo = &url[scheme_end + 3..at];
            match userinfo.find(':') {
                Some(colon) => format!(
                    "{}{}:***{}",
                    &url[..scheme_end + 3],
                    &userinfo[..colon],
                    &url[at..]
                ),
                None => url.to_string(),
            }
        }
        _ => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::redact;

    #[test]
    fn redact_hides_only_the_password() {
        assert_eq!(
            redact("postgres://u:secret@h:5432/db"),
            "postgres://u:***@h:5432/db"
        );
        assert_eq!(
            redact("postgres://root@127.0.0.1/test"),
            "postgres://root@127.0.0.1/test"
        );
        assert_eq!(redact("sqlite://ringmaster.db"), "sqlite://ringmaster.db");
    }
}
