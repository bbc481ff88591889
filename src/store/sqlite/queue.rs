//! SQLite implementation of the delivery queue.
//!
//! SQLite has one writer at a time, so a claim is a single
//! `UPDATE … WHERE id IN (SELECT … ORDER BY … LIMIT n) RETURNING`: nothing can
//! interleave between choosing the rows and taking them.

use chrono::{DateTime, Utc};
use sqlx::sqlite::SqliteRow;
use sqlx::{Row, SqliteConnection};

use super::{from_ms, to_ms, SqliteStore};
use crate::store::queue::{
    Claim, DispatchResult, Enqueued, NewQueueItem, QueueItem, QueueStatus, QueueStore, Recorded,
};
use crate::store::StoreError;

const COLUMNS: &str = "id, workspace_id, caller, priority, method, body, idempotency_key, status, \
    attempts, max_attempts, enqueued_at, available_at, expires_at, lease_token, claimed_by, \
    lease_expires_at, last_error, response, finished_at";

fn item(row: &SqliteRow) -> Result<QueueItem, StoreError> {
    let status: String = row.get("status");
    let at = |col: &str| row.get::<Option<i64>, _>(col).map(from_ms);
    Ok(QueueItem {
        id: row.get("id"),
        workspace: row.get("workspace_id"),
        caller: row.get("caller"),
        priority: row.get("priority"),
        method: row.get("method"),
        body: row.get("body"),
        idempotency_key: row.get("idempotency_key"),
        status: QueueStatus::parse(&status)?,
        attempts: row.get("attempts"),
        max_attempts: row.get("max_attempts"),
        enqueued_at: from_ms(row.get("enqueued_at")),
        available_at: from_ms(row.get("available_at")),
        expires_at: at("expires_at"),
        lease_token: row.get("lease_token"),
        claimed_by: row.get("claimed_by"),
        lease_expires_at: at("lease_expires_at"),
        last_error: row.get("last_error"),
        response: row.get("response"),
        finished_at: at("finished_at"),
    })
}

fn items(rows: &[SqliteRow]) -> Result<Vec<QueueItem>, StoreError> {
    rows.iter().map(item).collect()
}

/// Claim order, restored after `RETURNING` (which promises no order).
fn claim_order(items: &mut [QueueItem]) {
    items.sort_by(|a, b| {
        b.priority
            .cmp(&a.priority)
            .then(a.enqueued_at.cmp(&b.enqueued_at))
            .then(a.id.cmp(&b.id))
    });
}

/// Insert one item (or find the active item holding its key); answers its id
/// and whether it was deduplicated.
async fn insert_on(
    conn: &mut SqliteConnection,
    item: &NewQueueItem,
    max_attempts: u32,
    now: DateTime<Utc>,
) -> Result<(i64, bool), StoreError> {
    let expires_at = item
        .ttl
        .map(|ttl| to_ms(now) + i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX / 2));
    // The insert and the lookup of an existing active item can race with that
    // item finishing; a second round then inserts. Two rounds always suffice
    // under SQLite's single writer; the bound only guards against a bug.
    for _ in 0..3 {
        let inserted: Option<i64> = sqlx::query_scalar(
            "INSERT INTO queue_items (workspace_id, caller, priority, method, body, idempotency_key,
                 max_attempts, enqueued_at, available_at, expires_at, updated_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?8, ?9, ?8)
             ON CONFLICT (workspace_id, idempotency_key)
                 WHERE status IN ('queued', 'dispatched') AND idempotency_key IS NOT NULL
             DO NOTHING
             RETURNING id",
        )
        .bind(&item.workspace)
        .bind(&item.caller)
        .bind(item.priority.0)
        .bind(&item.method)
        .bind(&item.body)
        .bind(&item.idempotency_key)
        .bind(i64::from(max_attempts))
        .bind(to_ms(now))
        .bind(expires_at)
        .fetch_optional(&mut *conn)
        .await
        .map_err(StoreError::query("enqueue"))?;
        match inserted {
            Some(id) => return Ok((id, false)),
            None => {
                let existing: Option<i64> = sqlx::query_scalar(
                    "SELECT id FROM queue_items
                     WHERE workspace_id = ?1 AND idempotency_key = ?2
                       AND status IN ('queued', 'dispatched')",
                )
                .bind(&item.workspace)
                .bind(&item.idempotency_key)
                .fetch_optional(&mut *conn)
                .await
                .map_err(StoreError::query("enqueue: find active item with key"))?;
                if let Some(id) = existing {
                    return Ok((id, true));
                }
            }
        }
    }
    Err(StoreError::Contended {
        operation: "enqueue",
        id: item.workspace.clone(),
    })
}

async fn depth_on(conn: &mut SqliteConnection, workspace: &str) -> Result<u64, StoreError> {
    let depth: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM queue_items
         WHERE workspace_id = ?1 AND status IN ('queued', 'dispatched')",
    )
    .bind(workspace)
    .fetch_one(&mut *conn)
    .await
    .map_err(StoreError::query("enqueue: depth"))?;
    Ok(depth as u64)
}

#[async_trait::async_trait]
impl QueueStore for SqliteStore {
    async fn enqueue(
        &self,
        item: &NewQueueItem,
        max_attempts: u32,
        now: DateTime<Utc>,
    ) -> Result<Enqueued, StoreError> {
        let mut tx = self
            .pool
            .begin()
            .await
            .map_err(StoreError::query("enqueue: begin"))?;
        let (id, deduplicated) = insert_on(&mut tx, item, max_attempts, now).await?;
        let depth = depth_on(&mut tx, &item.workspace).await?;
        tx.commit()
            .await
            .map_err(StoreError::query("enqueue: commit"))?;
        Ok(Enqueued {
            id,
            depth,
            deduplicated,
        })
    }

    async fn enqueue_batch(
        &self,
        items: &[NewQueueItem],
        max_attempts: u32,
        now: DateTime<Utc>,
    ) -> Result<Vec<Enqueued>, StoreError> {
        let mut tx = self
            .pool
            .begin()
            .await
            .map_err(StoreError::query("enqueue batch: begin"))?;
        let mut ids = Vec::with_capacity(items.len());
        for item in items {
            ids.push(insert_on(&mut tx, item, max_attempts, now).await?);
        }
        // Depth once per workspace, after the batch (every item of a workspace gets it).
        let mut depths = std::collections::HashMap::new();
        for item in items {
            if !depths.contains_key(&item.workspace) {
                let depth = depth_on(&mut tx, &item.workspace).await?;
                depths.insert(item.workspace.clone(), depth);
            }
        }
        let out = items
            .iter()
            .zip(ids)
            .map(|(item, (id, deduplicated))| Enqueued {
                id,
                depth: depths[&item.workspace],
                deduplicated,
            })
            .collect();
        tx.commit()
            .await
            .map_err(StoreError::query("enqueue batch: commit"))?;
        Ok(out)
    }

    async fn claim(&self, claim: Claim<'_>) -> Result<Vec<QueueItem>, StoreError> {
        if claim.limit == 0 {
            return Ok(Vec::new());
        }
        let token = uuid::Uuid::new_v4().to_string();
        let sql = format!(
            "UPDATE queue_items
             SET status = 'dispatched', lease_token = ?1, claimed_by = ?2,
                 lease_expires_at = ?3, updated_at = ?4
             WHERE id IN (
                 SELECT id FROM queue_items
                 WHERE workspace_id = ?5 AND status = 'queued' AND available_at <= ?4
                   AND (expires_at IS NULL OR expires_at > ?4)
                 ORDER BY priority DESC, enqueued_at, id
                 LIMIT ?6)
             RETURNING {COLUMNS}"
        );
        let rows = sqlx::query(&sql)
            .bind(&token)
            .bind(claim.node)
            .bind(to_ms(claim.lease_until))
            .bind(to_ms(claim.now))
            .bind(claim.workspace)
            .bind(i64::from(claim.limit))
            .fetch_all(&self.pool)
            .await
            .map_err(StoreError::query("claim"))?;
        let mut claimed = items(&rows)?;
        claim_order(&mut claimed);
        Ok(claimed)
    }

    async fn record_dispatch(
        &self,
        id: i64,
        lease_token: &str,
        result: &DispatchResult,
        now: DateTime<Utc>,
    ) -> Result<Recorded, StoreError> {
        let fence = "WHERE id = ?1 AND status = 'dispatched' AND lease_token = ?2";
        let release = "lease_token = NULL, claimed_by = NULL, lease_expires_at = NULL";
        // One parameter list for every outcome (1 id, 2 lease token, 3 response
        // or error text, 4 now, 5 retry time), so one query serves them all.
        let (sql, text, retry_at) = match result {
            DispatchResult::Delivered { response } => (
                format!(
                    "UPDATE queue_items SET status = 'completed', response = ?3, finished_at = ?4,
                         updated_at = ?4, available_at = COALESCE(?5, available_at),
                         {release} {fence} RETURNING {COLUMNS}"
                ),
                response,
                None,
            ),
            DispatchResult::Busy { reason } => (
                format!(
                    "UPDATE queue_items SET status = 'queued', last_error = ?3, updated_at = ?4,
                         available_at = COALESCE(?5, available_at),
                         {release} {fence} RETURNING {COLUMNS}"
                ),
                reason,
                None,
            ),
            DispatchResult::Error { message, retry_at } => (
                format!(
                    "UPDATE queue_items SET
                         attempts = attempts + 1,
                         last_error = ?3,
                         status = CASE WHEN attempts + 1 >= max_attempts THEN 'failed' ELSE 'queued' END,
                         finished_at = CASE WHEN attempts + 1 >= max_attempts THEN ?4 ELSE NULL END,
                         available_at = COALESCE(?5, available_at),
                         updated_at = ?4,
                         {release} {fence} RETURNING {COLUMNS}"
                ),
                message,
                Some(*retry_at),
            ),
        };
        let query = sqlx::query(&sql)
            .bind(id)
            .bind(lease_token)
            .bind(text)
            .bind(to_ms(now))
            .bind(retry_at.map(to_ms));
        let row = query
            .fetch_optional(&self.pool)
            .await
            .map_err(StoreError::query("record dispatch outcome"))?;
        match row {
            Some(row) => Ok(Recorded::Applied(Box::new(item(&row)?))),
            None => Ok(Recorded::LeaseLost),
        }
    }

    async fn complete_many(
        &self,
        done: &[(i64, String, String)],
        now: DateTime<Utc>,
    ) -> Result<Vec<QueueItem>, StoreError> {
        let sql = format!(
            "UPDATE queue_items SET status = 'completed', response = ?3, finished_at = ?4,
                 updated_at = ?4, lease_token = NULL, claimed_by = NULL, lease_expires_at = NULL
             WHERE id = ?1 AND status = 'dispatched' AND lease_token = ?2
             RETURNING {COLUMNS}"
        );
        // One transaction: one fsync for the whole batch.
        let mut tx = self
            .pool
            .begin()
            .await
            .map_err(StoreError::query("complete many: begin"))?;
        let mut out = Vec::with_capacity(done.len());
        for (id, token, response) in done {
            let row = sqlx::query(&sql)
                .bind(id)
                .bind(token)
                .bind(response)
                .bind(to_ms(now))
                .fetch_optional(&mut *tx)
                .await
                .map_err(StoreError::query("complete many"))?;
            if let Some(row) = row {
                out.push(item(&row)?);
            }
        }
        tx.commit()
            .await
            .map_err(StoreError::query("complete many: commit"))?;
        Ok(out)
    }

    async fn release(
        &self,
        leases: &[(i64, String)],
        now: DateTime<Utc>,
    ) -> Result<Vec<QueueItem>, StoreError> {
        if leases.is_empty() {
            return Ok(Vec::new());
        }
        let sql = format!(
            "UPDATE queue_items SET status = 'queued', updated_at = ?3,
                 lease_token = NULL, claimed_by = NULL, lease_expires_at = NULL
             WHERE id = ?1 AND status = 'dispatched' AND lease_token = ?2
             RETURNING {COLUMNS}"
        );
        // One transaction: one commit for the whole batch.
        let mut tx = self
            .pool
            .begin()
            .await
            .map_err(StoreError::query("release: begin"))?;
        let mut out = Vec::with_capacity(leases.len());
        for (id, token) in leases {
            let row = sqlx::query(&sql)
                .bind(id)
                .bind(token)
                .bind(to_ms(now))
                .fetch_optional(&mut *tx)
                .await
                .map_err(StoreError::query("release claimed items"))?;
            if let Some(row) = row {
                out.push(item(&row)?);
            }
        }
        tx.commit()
            .await
            .map_err(StoreError::query("release: commit"))?;
        Ok(out)
    }

    async fn expire_due(&self, now: DateTime<Utc>) -> Result<Vec<QueueItem>, StoreError> {
        let sql = format!(
            "UPDATE queue_items SET status = 'expired', finished_at = ?1, updated_at = ?1
             WHERE status = 'queued' AND expires_at IS NOT NULL AND expires_at <= ?1
             RETURNING {COLUMNS}"
        );
        let rows = sqlx::query(&sql)
            .bind(to_ms(now))
            .fetch_all(&self.pool)
            .await
            .map_err(StoreError::query("expire queue items"))?;
        items(&rows)
    }

    async fn rescue_expired_leases(
        &self,
        now: DateTime<Utc>,
    ) -> Result<Vec<QueueItem>, StoreError> {
        let sql = format!(
            "UPDATE queue_items SET
                 attempts = attempts + 1,
                 last_error = 'lease held by ' || COALESCE(claimed_by, 'an unknown node')
                              || ' expired before an outcome was recorded',
                 status = CASE WHEN attempts + 1 >= max_attempts THEN 'failed' ELSE 'queued' END,
                 finished_at = CASE WHEN attempts + 1 >= max_attempts THEN ?1 ELSE NULL END,
                 lease_token = NULL, claimed_by = NULL, lease_expires_at = NULL,
                 updated_at = ?1
             WHERE status = 'dispatched' AND lease_expires_at <= ?1
             RETURNING {COLUMNS}"
        );
        let rows = sqlx::query(&sql)
            .bind(to_ms(now))
            .fetch_all(&self.pool)
            .await
            .map_err(StoreError::query("rescue expired leases"))?;
        items(&rows)
    }

    async fn ready_workspaces(&self, now: DateTime<Utc>) -> Result<Vec<String>, StoreError> {
        sqlx::query_scalar(
            "SELECT DISTINCT workspace_id FROM queue_items
             WHERE status = 'queued' AND available_at <= ?1
               AND (expires_at IS NULL OR expires_at > ?1)
             ORDER BY workspace_id",
        )
        .bind(to_ms(now))
        .fetch_all(&self.pool)
        .await
        .map_err(StoreError::query("ready workspaces"))
    }

    async fn queue_depth(&self, workspace: &str) -> Result<u64, StoreError> {
        let n: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM queue_items
             WHERE workspace_id = ?1 AND status IN ('queued', 'dispatched')",
        )
        .bind(workspace)
        .fetch_one(&self.pool)
        .await
        .map_err(StoreError::query("queue depth"))?;
        Ok(n as u64)
    }

    async fn queue_counts(&self) -> Result<Vec<(QueueStatus, u64)>, StoreError> {
        let rows = sqlx::query("SELECT status, COUNT(*) AS n FROM queue_items GROUP BY status")
            .fetch_all(&self.pool)
            .await
            .map_err(StoreError::query("queue counts"))?;
        rows.iter()
            .map(|r| {
                let status: String = r.get("status");
                Ok((QueueStatus::parse(&status)?, r.get::<i64, _>("n") as u64))
            })
            .collect()
    }

    async fn list_queue(
        &self,
        workspace: &str,
        status: Option<QueueStatus>,
        limit: u32,
    ) -> Result<Vec<QueueItem>, StoreError> {
        let sql = format!(
            "SELECT {COLUMNS} FROM queue_items
             WHERE workspace_id = ?1 AND (?2 IS NULL OR status = ?2)
             ORDER BY id DESC LIMIT ?3"
        );
        let rows = sqlx::query(&sql)
            .bind(workspace)
            .bind(status.map(QueueStatus::as_str))
            .bind(i64::from(limit))
            .fetch_all(&self.pool)
            .await
            .map_err(StoreError::query("list queue"))?;
        items(&rows)
    }

    async fn get_queue_item(&self, id: i64) -> Result<Option<QueueItem>, StoreError> {
        let sql = format!("SELECT {COLUMNS} FROM queue_items WHERE id = ?1");
        let row = sqlx::query(&sql)
            .bind(id)
            .fetch_optional(&self.pool)
            .await
            .map_err(StoreError::query("get queue item"))?;
        row.as_ref().map(item).transpose()
    }

    async fn dispatched_by(&self, node: &str) -> Result<Vec<QueueItem>, StoreError> {
        let sql = format!(
            "SELECT {COLUMNS} FROM queue_items WHERE status = 'dispatched' AND claimed_by = ?1"
        );
        let rows = sqlx::query(&sql)
            .bind(node)
            .fetch_all(&self.pool)
            .await
            .map_err(StoreError::query("items dispatched by node"))?;
        items(&rows)
    }
}
