//! What an operator does by hand through the console: redrive or cancel a
//! queue item, retry a workspace's dead letters in bulk, remove a workspace,
//! and the admin lists (workspaces with their depth, delegations). The rules
//! are [`crate::model::operator`]'s; each change is one conditional write.

use chrono::{DateTime, Utc};

use super::StoreError;
use crate::model::delegation::{Delegation, DelegationStatus};
use crate::model::operator::{BulkRetried, ItemChange, QueueAction, WorkspaceRemoved};
use crate::model::page::{Page, PageRequest};
use crate::model::queue::QueueStatus;
use crate::model::workspace::WorkspaceView;

/// Which delegations a list shows.
#[derive(Debug, Clone, Copy, Default)]
pub struct DelegationFilter<'a> {
    pub workspace: Option<&'a str>,
    pub status: Option<DelegationStatus>,
}

#[async_trait::async_trait]
pub trait OperatorStore {
    /// Apply `action` to item `id` if its status allows it (one conditional
    /// UPDATE); otherwise say why from the row. An unknown id is
    /// [`StoreError::NotFound`]. A retried item's workspace is woken.
    async fn change_queue_item(
        &self,
        id: i64,
        action: QueueAction,
        now: DateTime<Utc>,
    ) -> Result<ItemChange, StoreError>;

    /// Retry up to `limit` of `workspace`'s items in `status` (failed or
    /// expired), oldest first, in one statement; wakes the workspace.
    async fn retry_items(
        &self,
        workspace: &str,
        status: QueueStatus,
        limit: u32,
        now: DateTime<Utc>,
    ) -> Result<BulkRetried, StoreError>;

    /// Remove a workspace in one transaction: its row goes, its queued items
    /// are cancelled, its schedules disabled; items being delivered finish.
    /// `None` when it was not registered.
    async fn remove_workspace(
        &self,
        id: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<WorkspaceRemoved>, StoreError>;

    /// Workspaces by id, each with its depth (queued + dispatched items).
    async fn page_workspaces(&self, page: &PageRequest) -> Result<Page<WorkspaceView>, StoreError>;

    async fn workspace_view(&self, id: &str) -> Result<Option<WorkspaceView>, StoreError>;

    /// Delegations, newest first.
    async fn page_delegations(
        &self,
        filter: DelegationFilter<'_>,
        page: &PageRequest,
    ) -> Result<Page<Delegation>, StoreError>;
}
