//! SQLite implementation of the workspace registry.

use chrono::{DateTime, Utc};
use sqlx::sqlite::SqliteRow;
use sqlx::Row;

use super::{from_ms, to_ms, SqliteStore};
use crate::store::workspaces::DEFAULT_MAX_CONCURRENT;
use crate::store::{StoreError, Workspace, WorkspaceBeat, WorkspaceStatus, WorkspaceStore};

const COLUMNS: &str = "id, url, max_concurrent, active_tasks, status, last_heartbeat";

fn workspace(row: &SqliteRow) -> Result<Workspace, StoreError> {
    let status: String = row.get("status");
    Ok(Workspace {
        id: row.get("id"),
        url: row.get("url"),
        max_concurrent: row.get("max_concurrent"),
        active_tasks: row.get("active_tasks"),
        status: WorkspaceStatus::parse(&status)?,
        last_heartbeat: row.get::<Option<i64>, _>("last_heartbeat").map(from_ms),
    })
}

#[async_trait::async_trait]
impl WorkspaceStore for SqliteStore {
    async fn register_workspace(
        &self,
        id: &str,
        url: Option<&str>,
        max_concurrent: u32,
        now: DateTime<Utc>,
    ) -> Result<Workspace, StoreError> {
        let sql = format!(
            "INSERT INTO workspaces (id, url, max_concurrent, created_at, updated_at)
             VALUES (?1, ?2, ?3, ?4, ?4)
             ON CONFLICT (id) DO UPDATE SET
                 url = COALESCE(excluded.url, workspaces.url),
                 max_concurrent = excluded.max_concurrent,
                 updated_at = excluded.updated_at
             RETURNING {COLUMNS}"
        );
        let row = sqlx::query(&sql)
            .bind(id)
            .bind(url)
            .bind(i64::from(max_concurrent))
            .bind(to_ms(now))
            .fetch_one(&self.pool)
            .await
            .map_err(StoreError::query("register workspace"))?;
        workspace(&row)
    }

    async fn record_beat(
        &self,
        beat: &WorkspaceBeat,
        now: DateTime<Utc>,
    ) -> Result<Workspace, StoreError> {
        let sql = format!(
            "INSERT INTO workspaces
                 (id, max_concurrent, active_tasks, status, last_heartbeat, created_at, updated_at)
             VALUES (?1, COALESCE(?2, ?3), ?4, 'online', ?5, ?5, ?5)
             ON CONFLICT (id) DO UPDATE SET
                 max_concurrent = COALESCE(?2, workspaces.max_concurrent),
                 active_tasks = excluded.active_tasks,
                 status = 'online',
                 last_heartbeat = excluded.last_heartbeat,
                 updated_at = excluded.updated_at
             RETURNING {COLUMNS}"
        );
        let row = sqlx::query(&sql)
            .bind(&beat.workspace)
            .bind(beat.max_concurrent.map(i64::from))
            .bind(DEFAULT_MAX_CONCURRENT)
            .bind(i64::from(beat.active_tasks))
            .bind(to_ms(now))
            .fetch_one(&self.pool)
            .await
            .map_err(StoreError::query("record workspace beat"))?;
        workspace(&row)
    }

    async fn mark_silent_offline(
        &self,
        silent_since: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<Vec<String>, StoreError> {
        let rows = sqlx::query(
            "UPDATE workspaces SET status = 'offline', updated_at = ?2
             WHERE status = 'online' AND last_heartbeat IS NOT NULL AND last_heartbeat < ?1
             RETURNING id",
        )
        .bind(to_ms(silent_since))
        .bind(to_ms(now))
        .fetch_all(&self.pool)
        .await
        .map_err(StoreError::query("mark silent workspaces offline"))?;
        let mut ids: Vec<String> = rows.iter().map(|r| r.get("id")).collect();
        ids.sort();
        Ok(ids)
    }

    async fn get_workspace(&self, id: &str) -> Result<Option<Workspace>, StoreError> {
        let sql = format!("SELECT {COLUMNS} FROM workspaces WHERE id = ?1");
        let row = sqlx::query(&sql)
            .bind(id)
            .fetch_optional(&self.pool)
            .await
            .map_err(StoreError::query("get workspace"))?;
        row.as_ref().map(workspace).transpose()
    }

    async fn list_workspaces(&self) -> Result<Vec<Workspace>, StoreError> {
        let sql = format!("SELECT {COLUMNS} FROM workspaces ORDER BY id");
        let rows = sqlx::query(&sql)
            .fetch_all(&self.pool)
            .await
            .map_err(StoreError::query("list workspaces"))?;
        rows.iter().map(workspace).collect()
    }
}
