//! The workspace registry's statements.

use chrono::{DateTime, Utc};

use super::rows::{self, WORKSPACE_COLUMNS};
use super::{query, Arg, Dialect, Exec, SqlStore};
use crate::model::workspace::{Workspace, WorkspaceBeat, DEFAULT_MAX_CONCURRENT};
use crate::store::{StoreError, WorkspaceStore};

#[async_trait::async_trait]
impl<D: Dialect> WorkspaceStore for SqlStore<D> {
    async fn register_workspace(
        &self,
        id: &str,
        url: Option<&str>,
        max_concurrent: u32,
        now: DateTime<Utc>,
    ) -> Result<Workspace, StoreError> {
        let sql = format!(
            "INSERT INTO workspaces (id, url, max_concurrent, created_at, updated_at)
             VALUES ($1, $2, $3, $4, $4)
             ON CONFLICT (id) DO UPDATE SET
                 url = COALESCE(excluded.url, workspaces.url),
                 max_concurrent = excluded.max_concurrent,
                 updated_at = excluded.updated_at
             RETURNING {WORKSPACE_COLUMNS}"
        );
        let row = self
            .d
            .pool()
            .opt(
                &sql,
                &[
                    Arg::Text(id),
                    Arg::OptText(url),
                    Arg::I64(i64::from(max_concurrent)),
                    Arg::Time(now),
                ],
            )
            .await
            .map_err(query("register workspace"))?
            .ok_or_else(|| StoreError::NotFound {
                what: "workspace",
                id: id.to_string(),
            })?;
        rows::workspace(&row)
    }

    async fn record_beat(
        &self,
        beat: &WorkspaceBeat,
        now: DateTime<Utc>,
    ) -> Result<Workspace, StoreError> {
        let sql = format!(
            "INSERT INTO workspaces
                 (id, max_concurrent, active_tasks, status, last_heartbeat, created_at, updated_at)
             VALUES ($1, COALESCE($2, $3), $4, 'online', $5, $5, $5)
             ON CONFLICT (id) DO UPDATE SET
                 max_concurrent = COALESCE($2, workspaces.max_concurrent),
                 active_tasks = excluded.active_tasks,
                 status = 'online',
                 last_heartbeat = excluded.last_heartbeat,
                 updated_at = excluded.updated_at
             RETURNING {WORKSPACE_COLUMNS}"
        );
        let row = self
            .d
            .pool()
            .opt(
                &sql,
                &[
                    Arg::Text(&beat.workspace),
                    Arg::OptI64(beat.max_concurrent.map(i64::from)),
                    Arg::I64(i64::from(DEFAULT_MAX_CONCURRENT)),
                    Arg::I64(i64::from(beat.active_tasks)),
                    Arg::Time(now),
                ],
            )
            .await
            .map_err(query("record workspace beat"))?
            .ok_or_else(|| StoreError::NotFound {
                what: "workspace",
                id: beat.workspace.clone(),
            })?;
        rows::workspace(&row)
    }

    async fn mark_silent_offline(
        &self,
        silent_since: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<Vec<String>, StoreError> {
        let found = self
            .d
            .pool()
            .all(
                "UPDATE workspaces SET status = 'offline', updated_at = $2
                 WHERE status = 'online' AND last_heartbeat IS NOT NULL AND last_heartbeat < $1
                 RETURNING id",
                &[Arg::Time(silent_since), Arg::Time(now)],
            )
            .await
            .map_err(query("mark silent workspaces offline"))?;
        let mut ids = found
            .iter()
            .map(|r| super::Row::text(r, "id"))
            .collect::<Result<Vec<_>, _>>()?;
        ids.sort();
        Ok(ids)
    }

    async fn get_workspace(&self, id: &str) -> Result<Option<Workspace>, StoreError> {
        let sql = format!("SELECT {WORKSPACE_COLUMNS} FROM workspaces WHERE id = $1");
        self.d
            .pool()
            .opt(&sql, &[Arg::Text(id)])
            .await
            .map_err(query("get workspace"))?
            .as_ref()
            .map(rows::workspace)
            .transpose()
    }

    async fn list_workspaces(&self) -> Result<Vec<Workspace>, StoreError> {
        let sql = format!("SELECT {WORKSPACE_COLUMNS} FROM workspaces ORDER BY id");
        let found = self
            .d
            .pool()
            .all(&sql, &[])
            .await
            .map_err(query("list workspaces"))?;
        rows::all(&found, rows::workspace)
    }
}
