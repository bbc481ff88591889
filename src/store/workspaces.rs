//! The workspace registry: who can receive messages, and how much room they have.
//!
//! Owned by the HeartbeatActor (beats, offline marking); read by the queue
//! drain to know a workspace's URL and spare capacity.

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::StoreError;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum WorkspaceStatus {
    Online,
    Offline,
}

impl WorkspaceStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            WorkspaceStatus::Online => "online",
            WorkspaceStatus::Offline => "offline",
        }
    }

    pub fn parse(text: &str) -> Result<Self, StoreError> {
        match text {
            "online" => Ok(WorkspaceStatus::Online),
            "offline" => Ok(WorkspaceStatus::Offline),
            other => Err(StoreError::Corrupt {
                table: "workspaces",
                column: "status",
                value: other.to_string(),
            }),
        }
    }
}

/// One row of the registry.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Workspace {
    pub id: String,
    /// Where A2A messages are POSTed; `None` until registered with one.
    pub url: Option<String>,
    pub max_concurrent: i32,
    pub active_tasks: i32,
    pub status: WorkspaceStatus,
    pub last_heartbeat: Option<DateTime<Utc>>,
}

impl Workspace {
    /// Room for more work right now. Never negative: an agent that reports
    /// more active tasks than its limit simply has none.
    pub fn spare_capacity(&self) -> u32 {
        if self.status == WorkspaceStatus::Offline {
            return 0;
        }
        u32::try_from(self.max_concurrent.saturating_sub(self.active_tasks)).unwrap_or(0)
    }
}

/// A workspace's report of its load.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkspaceBeat {
    pub workspace: String,
    pub active_tasks: u32,
    /// A new limit, when the workspace reports one; else the stored one stays.
    pub max_concurrent: Option<u32>,
}

/// Default limit for a workspace that beats before it was registered.
pub const DEFAULT_MAX_CONCURRENT: i32 = 1;

#[async_trait::async_trait]
pub trait WorkspaceStore {
    /// Register a workspace or change its URL and limit. Status is left alone
    /// (a registration is not a sign of life).
    async fn register_workspace(
        &self,
        id: &str,
        url: Option<&str>,
        max_concurrent: u32,
        now: DateTime<Utc>,
    ) -> Result<Workspace, StoreError>;

    /// Record a beat: active tasks, maybe a new limit, `online`, stamped `now`.
    /// A beat from a workspace never registered creates it (with no URL), so
    /// capacity is known before registration catches up.
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
