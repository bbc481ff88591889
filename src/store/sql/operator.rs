//! The operator's statements: conditional single-row changes whose
//! `WHERE status IN (…)` comes from the model's [`QueueAction`], a bulk
//! redrive bounded by a sub-select, a workspace's removal in one
//! transaction, and the admin lists.

use chrono::{DateTime, Utc};

use super::keyset::{Listing, Order, Where};
use super::rows::{self, DELEGATION_COLUMNS, QUEUE_COLUMNS, WORKSPACE_COLUMNS};
use super::{in_list, prefixed, query, Arg, Dialect, Exec, Row, SqlStore, TxMode};
use crate::model::delegation::Delegation;
use crate::model::operator::{
    BulkRetried, ItemChange, QueueAction, WorkspaceRemoved, CANCELLED_BY_OPERATOR,
    WORKSPACE_REMOVED,
};
use crate::model::page::{Cursor, Page, PageRequest};
use crate::model::queue::QueueStatus;
use crate::model::workspace::WorkspaceView;
use crate::store::operator::{DelegationFilter, OperatorStore};
use crate::store::{QueueStore, StoreError};

/// What a retry writes: back to the start, ready now, no lease; an expiry
/// already past is dropped so the item does not expire again at once.
/// (`$1` the item or items, `$2` now.)
const RETRY_SET: &str = "status = 'queued', attempts = 0, available_at = $2, finished_at = NULL,
     expires_at = CASE WHEN expires_at <= $2 THEN NULL ELSE expires_at END,
     lease_token = NULL, claimed_by = NULL, lease_expires_at = NULL, updated_at = $2";

/// What a cancel writes (`$3` the reason).
const CANCEL_SET: &str = "status = 'cancelled', finished_at = $2, last_error = $3, updated_at = $2";

fn statuses(list: &[QueueStatus]) -> String {
    in_list(list.iter().map(|s| s.as_str()))
}

/// The depth column of a workspace row: its queued and dispatched items,
/// counted from the claim and lease indexes.
fn workspace_view_columns() -> String {
    format!(
        "{}, {} AS depth",
        prefixed(WORKSPACE_COLUMNS, "w"),
        super::queue::active_count("q.workspace_id = w.id")
    )
}

fn workspace_view(row: &impl Row) -> Result<WorkspaceView, StoreError> {
    Ok(WorkspaceView {
        workspace: rows::workspace(row)?,
        depth: u64::try_from(row.i64("depth")?).unwrap_or(0),
    })
}

#[async_trait::async_trait]
impl<D: Dialect> OperatorStore for SqlStore<D> {
    async fn change_queue_item(
        &self,
        id: i64,
        action: QueueAction,
        now: DateTime<Utc>,
    ) -> Result<ItemChange, StoreError> {
        let set = match action {
            QueueAction::Retry => RETRY_SET,
            QueueAction::Cancel => CANCEL_SET,
        };
        let sql = format!(
            "UPDATE queue_items SET {set} WHERE id = $1 AND status IN ({})
             RETURNING {QUEUE_COLUMNS}",
            statuses(action.from())
        );
        let mut args = vec![Arg::I64(id), Arg::Time(now)];
        if action == QueueAction::Cancel {
            args.push(Arg::Text(CANCELLED_BY_OPERATOR));
        }
        let changed = self
            .d
            .pool()
            .opt(&sql, &args)
            .await
            .map_err(query("change queue item"))?;
        if let Some(row) = changed {
            let item = rows::queue_item(&row)?;
            if action == QueueAction::Retry {
                self.d.woke(&[item.workspace.as_str()]).await;
            }
            return Ok(ItemChange::Applied(Box::new(item)));
        }
        match self.get_queue_item(id).await? {
            Some(current) => Ok(ItemChange::refused(action, &current)),
            None => Err(StoreError::NotFound {
                what: "queue item",
                id: id.to_string(),
            }),
        }
    }

    async fn retry_items(
        &self,
        workspace: &str,
        status: QueueStatus,
        limit: u32,
        now: DateTime<Utc>,
    ) -> Result<BulkRetried, StoreError> {
        let sql = format!(
            "UPDATE queue_items SET {RETRY_SET}
             WHERE status = $3 AND id IN (
                 SELECT id FROM queue_items WHERE workspace_id = $1 AND status = $3
                 ORDER BY id LIMIT $4)"
        );
        let args = [
            Arg::Text(workspace),
            Arg::Time(now),
            Arg::Text(status.as_str()),
            Arg::I64(i64::from(limit)),
        ];
        let retried = self
            .d
            .pool()
            .run(&sql, &args)
            .await
            .map_err(query("retry items"))?;
        let left = self
            .d
            .pool()
            .opt(
                "SELECT id FROM queue_items WHERE workspace_id = $1 AND status = $2 LIMIT 1",
                &[Arg::Text(workspace), Arg::Text(status.as_str())],
            )
            .await
            .map_err(query("retry items: any left"))?;
        if retried > 0 {
            self.d.woke(&[workspace]).await;
        }
        Ok(BulkRetried {
            retried,
            more: left.is_some(),
        })
    }

    async fn remove_workspace(
        &self,
        id: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<WorkspaceRemoved>, StoreError> {
        let mut tx = self
            .d
            .begin(TxMode::Write)
            .await
            .map_err(query("remove workspace: begin"))?;
        let removed = tx
            .run("DELETE FROM workspaces WHERE id = $1", &[Arg::Text(id)])
            .await
            .map_err(query("remove workspace"))?;
        if removed == 0 {
            // Nothing written; dropping the transaction rolls it back.
            return Ok(None);
        }
        let cancelled_items = tx
            .run(
                &format!(
                    "UPDATE queue_items SET {CANCEL_SET}
                     WHERE workspace_id = $1 AND status = 'queued'"
                ),
                &[Arg::Text(id), Arg::Time(now), Arg::Text(WORKSPACE_REMOVED)],
            )
            .await
            .map_err(query("remove workspace: cancel its items"))?;
        let paused_schedules = tx
            .run(
                "UPDATE schedules SET enabled = $3, updated_at = $2
                 WHERE workspace_id = $1 AND enabled = $4",
                &[
                    Arg::Text(id),
                    Arg::Time(now),
                    Arg::Bool(false),
                    Arg::Bool(true),
                ],
            )
            .await
            .map_err(query("remove workspace: pause its schedules"))?;
        D::commit(tx)
            .await
            .map_err(query("remove workspace: commit"))?;
        Ok(Some(WorkspaceRemoved {
            cancelled_items,
            paused_schedules,
        }))
    }

    async fn page_workspaces(&self, page: &PageRequest) -> Result<Page<WorkspaceView>, StoreError> {
        let by_id = Order {
            time: None,
            id: "w.id",
            desc: false,
        };
        self.page_of(
            Where::default(),
            Listing {
                select: &format!("SELECT {} FROM workspaces w", workspace_view_columns()),
                order: by_id,
                operation: "page workspaces",
            },
            page,
            workspace_view,
            |v| Cursor::Key(v.workspace.id.clone()),
        )
        .await
    }

    async fn workspace_view(&self, id: &str) -> Result<Option<WorkspaceView>, StoreError> {
        let sql = format!(
            "SELECT {} FROM workspaces w WHERE w.id = $1",
            workspace_view_columns()
        );
        self.d
            .pool()
            .opt(&sql, &[Arg::Text(id)])
            .await
            .map_err(query("get workspace view"))?
            .as_ref()
            .map(workspace_view)
            .transpose()
    }

    async fn page_delegations(
        &self,
        filter: DelegationFilter<'_>,
        page: &PageRequest,
    ) -> Result<Page<Delegation>, StoreError> {
        let mut w = Where::default();
        w.eq("workspace_id", filter.workspace.map(Arg::Text));
        w.eq("status", filter.status.map(|s| Arg::Text(s.as_str())));
        let newest_first = Order {
            time: Some("created_at"),
            id: "id",
            desc: true,
        };
        self.page_of(
            w,
            Listing {
                select: &format!("SELECT {DELEGATION_COLUMNS} FROM delegations"),
                order: newest_first,
                operation: "page delegations",
            },
            page,
            rows::delegation,
            |d| Cursor::AtKey(d.created_at, d.id.clone()),
        )
        .await
    }
}
