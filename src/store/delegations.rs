//! The delegation ledger's contract. The forward-only rule is the model's
//! ([`DelegationStatus::allowed_predecessors`]); the store carries it out in
//! the write itself, so it holds across any number of nodes.
//!
//! Owned by the DelegationSweeperActor (sweeps, create, status changes); the
//! HeartbeatActor stamps beats; HTTP reads.

use chrono::{DateTime, Utc};

use super::StoreError;
use crate::model::delegation::{
    Created, Delegation, DelegationBeatOutcome, DelegationStatus, PreparedDelegation, StatusChange,
    Swept, Transition,
};

#[async_trait::async_trait]
pub trait DelegationStore {
    /// Insert a delegation `queued` at `now`. An id that exists already
    /// answers the stored row with `created: false` and changes nothing.
    async fn create_delegation(
        &self,
        new: &PreparedDelegation,
        now: DateTime<Utc>,
    ) -> Result<Created, StoreError>;

    async fn get_delegation(&self, id: &str) -> Result<Option<Delegation>, StoreError>;

    /// Delegations with `status`, oldest first, at most `limit`.
    async fn list_delegations(
        &self,
        status: DelegationStatus,
        limit: u32,
    ) -> Result<Vec<Delegation>, StoreError>;

    /// Move a delegation forward (one conditional UPDATE). A retry of a stuck
    /// one to `queued` restarts its stuck clock at `now`. An unknown id is
    /// [`StoreError::NotFound`].
    async fn set_delegation_status(
        &self,
        id: &str,
        change: &StatusChange,
        now: DateTime<Utc>,
    ) -> Result<Transition, StoreError>;

    /// Stamp `last_heartbeat = now` on an in-flight delegation (never moving
    /// it backwards). An unknown id is [`StoreError::NotFound`].
    async fn beat_delegation(
        &self,
        id: &str,
        now: DateTime<Utc>,
    ) -> Result<DelegationBeatOutcome, StoreError>;

    /// Rule one of a sweep, one statement: every in-flight delegation whose
    /// deadline is before `now` becomes `failed` ("deadline exceeded").
    async fn fail_past_deadline(&self, now: DateTime<Utc>) -> Result<Vec<Swept>, StoreError>;

    /// Rule two, one statement: every in-flight delegation not past its
    /// deadline whose last beat (or creation, if it never beat) is before
    /// `silent_since` becomes `stuck` with
    /// [`crate::model::delegation::stuck_reason`] as its detail. Excluding
    /// past-deadline rows here keeps "deadline wins" true even if rule one
    /// could not run.
    async fn mark_stale_stuck(
        &self,
        silent_since: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<Vec<Swept>, StoreError>;
}
