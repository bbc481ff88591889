//! The workspace registry's contract. Owned by the HeartbeatActor
//! (registrations, beats, offline marking); read by the drain and HTTP.

use chrono::{DateTime, Utc};

use super::StoreError;
use crate::model::workspace::{Workspace, WorkspaceBeat};

#[async_trait::async_trait]
pub trait WorkspaceStore {
    /// Register a workspace or change its URL and limit. Status is left alone
    /// (a registration is not a sign of life). Inputs are validated by the
    /// caller ([`crate::model::workspace::Registration`]).
    async fn register_workspace(
        &self,
        id: &str,
        url: Option<&str>,
        max_concurrent: u32,
        now: DateTime<Utc>,
    ) -> Result<Workspace, StoreError>;

    /// Record a beat: active tasks, maybe a new limit, `online`, stamped `now`.
    /// A beat from a workspace never registered creates it (with no URL).
    async fn record_beat(
        &self,
        beat: &WorkspaceBeat,
        now: DateTime<Utc>,
    ) -> Result<Workspace, StoreError>;

    /// Mark `offline` every online workspace whose last beat is older than
    /// `silent_since` (one statement). Answers the ids it changed.
    async fn mark_silent_offline(
        &self,
        silent_since: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<Vec<String>, StoreError>;

    async fn get_workspace(&self, id: &str) -> Result<Option<Workspace>, StoreError>;

    async fn list_workspaces(&self) -> Result<Vec<Workspace>, StoreError>;
}
