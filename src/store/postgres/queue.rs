//! PostgreSQL implementation of the delivery queue.
//!
//! Several nodes claim from one table. The claim picks rows in a CTE with
//! `FOR UPDATE SKIP LOCKED` and updates only those: rows another node is
//! taking are skipped, not waited on, and the `LIMIT` inside the CTE keeps the
//! planner from updating more rows than asked (the fence Oban's claim uses).
//! Every enqueue sends `NOTIFY ringmaster_queue, '<workspace>'` in the same
//! transaction, so idle nodes wake as soon as it commits.

use std::collections::BTreeSet;

use futures::future::BoxFuture;

use chrono::{DateTime, Utc};
use sqlx::postgres::PgRow;
use sqlx::{PgConnection, Row};

use super::PgStore;
use crate::store::queue::{
    Claim, DispatchResult, Enqueued, NewQueueItem, QueueItem, QueueStatus, QueueStore, Recorded,
};
use crate::store::StoreError;

/// The channel enqueues notify on; the payload is the workspace id.
pub const QUEUE_CHANNEL: &str = "ringmaster_queue";

const COLUMNS: &str = "id, workspace_id, caller, priority, method, body, idempotency_key, status, \
    attempts, max_attempts, enqueued_at, available_at, expires_at, lease_token, claimed_by, \
    lease_expires_at, last_error, response, finished_at";

fn item(row: &PgRow) -> Result<QueueItem, StoreError> {
    let status: String = row.get("status");
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
        enqueued_at: row.get("enqueued_at"),
        available_at: row.get("available_at"),
        expires_at: row.get("expires_at"),
        lease_token: row.get("lease_token"),
        claimed_by: row.get("claimed_by"),
        lease_expires_at: row.get("lease_expires_at"),
        last_error: row.get("last_error"),
        response: row.get("response"),
        finished_at: row.get("finished_at"),
    })
}

fn items(rows: &[PgRow]) -> Result<Vec<QueueItem>, StoreError> {
    rows.iter().map(item).collect()
}

fn int(n: u32) -> i32 {
    i32::try_from(n).unwrap_or(i32::MAX)
}

/// One enqueue in one statement (one round trip): insert unless an active
/// item holds the key, find that item otherwise, count the depth and notify
/// the other nodes. The CTEs share one snapshot, taken before the insert, so
/// the count misses the new row (hence `+ 1`) and the lookup misses a row
/// committed by a concurrent enqueue of the same key: the insert then waited
/// for that row, did nothing, and the next round (a new snapshot) finds it.
async fn enqueue_on(
    conn: &mut PgConnection,
    item: &NewQueueItem,
    max_attempts: u32,
    now: DateTime<Utc>,
) -> Result<Enqueued, StoreError> {
    let expires_at = item
        .ttl
        .and_then(|ttl| chrono::Duration::from_std(ttl).ok())
        .map(|ttl| now + ttl);
    for _ in 0..5 {
        let row = sqlx::query(
            "WITH ins AS (
                 INSERT INTO queue_items (workspace_id, caller, priority, method, body,
                     idempotency_key, max_attempts, enqueued_at, available_at, expires_at, updated_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8, $9, $8)
                 ON CONFLICT (workspace_id, idempotency_key)
                     WHERE status IN ('queued', 'dispatched') AND idempotency_key IS NOT NULL
                 DO NOTHING
                 RETURNING id
             )
             SELECT
                 (SELECT id FROM ins) AS inserted,
                 (SELECT id FROM queue_items
                   WHERE $6::text IS NOT NULL AND workspace_id = $1 AND idempotency_key = $6
                     AND status IN ('queued', 'dispatched') LIMIT 1) AS existing,
                 (SELECT COUNT(*) FROM queue_items
                   WHERE workspace_id = $1 AND status IN ('queued', 'dispatched')) AS depth,
                 pg_notify($10, $1) IS NULL AS notified",
        )
        .bind(&item.workspace)
        .bind(&item.caller)
        .bind(item.priority.0)
        .bind(&item.method)
        .bind(&item.body)
        .bind(&item.idempotency_key)
        .bind(int(max_attempts))
        .bind(now)
        .bind(expires_at)
        .bind(QUEUE_CHANNEL)
        .fetch_one(&mut *conn)
        .await
        .map_err(StoreError::query("enqueue"))?;
        let inserted: Option<i64> = row.get("inserted");
        let existing: Option<i64> = row.get("existing");
        let depth: i64 = row.get("depth");
        match (inserted, existing) {
            (Some(id), _) => {
                return Ok(Enqueued {
                    id,
                    depth: depth as u64 + 1,
                    deduplicated: false,
                })
            }
            (None, Some(id)) => {
                return Ok(Enqueued {
                    id,
                    depth: depth as u64,
                    deduplicated: true,
                })
            }
            (None, None) => continue,
        }
    }
    Err(StoreError::Contended {
        operation: "enqueue",
        id: item.workspace.clone(),
    })
}

async fn notify(conn: &mut PgConnection, workspaces: BTreeSet<&str>) -> Result<(), StoreError> {
    for workspace in workspaces {
        sqlx::query("SELECT pg_notify($1, $2)")
            .bind(QUEUE_CHANNEL)
            .bind(workspace)
            .execute(&mut *conn)
            .await
            .map_err(StoreError::query("enqueue: notify"))?;
    }
    Ok(())
}

/// Start a read-only repeatable-read snapshot on a fresh transaction: the
/// first statement takes it, so it is taken once this answers.
fn take_snapshot(conn: &mut PgConnection) -> BoxFuture<'_, Result<(), sqlx::Error>> {
    Box::pin(async move {
        sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            .execute(&mut *conn)
            .await?;
        sqlx::query("SELECT 1").execute(&mut *conn).await?;
        Ok(())
    })
}

/// Active items per workspace (those that have any).
async fn count_active(
    conn: &mut PgConnection,
    workspaces: &[String],
) -> Result<Vec<PgRow>, sqlx::Error> {
    sqlx::query(
        "SELECT workspace_id, COUNT(*) AS n FROM queue_items
         WHERE workspace_id = ANY($1) AND status IN ('queued', 'dispatched')
         GROUP BY workspace_id",
    )
    .bind(workspaces)
    .fetch_all(conn)
    .await
}

/// A batch's columns, one array each, in input order.
struct UnkeyedColumns<'a> {
    workspaces: &'a [Option<String>],
    callers: &'a [Option<String>],
    priorities: &'a [i32],
    methods: &'a [Option<String>],
    bodies: &'a [Option<String>],
    expiries: &'a [Option<DateTime<Utc>>],
}

/// Insert rows without keys and notify, in one statement; answers the new
/// ids ascending. Rows go in input order (ORDER BY the ordinality), so ids
/// ascend in input order. The notify subquery runs once, in the same commit.
async fn insert_unkeyed(
    pool: &sqlx::PgPool,
    cols: UnkeyedColumns<'_>,
    max_attempts: u32,
    now: DateTime<Utc>,
    notify: &[String],
) -> Result<Vec<i64>, sqlx::Error> {
    sqlx::query_scalar(
        "WITH ins AS (
             INSERT INTO queue_items (workspace_id, caller, priority, method, body,
                 max_attempts, enqueued_at, available_at, expires_at, updated_at)
             SELECT w, c, p, m, b, $7, $8, $8, e, $8
             FROM UNNEST($1::text[], $2::text[], $3::int[], $4::text[], $5::text[],
                         $6::timestamptz[]) WITH ORDINALITY AS u(w, c, p, m, b, e, ord)
             ORDER BY ord
             RETURNING id
         )
         SELECT ins.id FROM ins,
             (SELECT COUNT(pg_notify($9, n.w)) FROM UNNEST($10::text[]) AS n(w)) AS notified
         ORDER BY ins.id",
    )
    .bind(cols.workspaces)
    .bind(cols.callers)
    .bind(cols.priorities)
    .bind(cols.methods)
    .bind(cols.bodies)
    .bind(cols.expiries)
    .bind(int(max_attempts))
    .bind(now)
    .bind(QUEUE_CHANNEL)
    .bind(notify)
    .fetch_all(pool)
    .await
}

impl PgStore {
    /// A batch without idempotency keys: nothing can be deduplicated, so one
    /// statement inserts the rows and notifies, committed on its own (all or
    /// nothing). The depth count, the other cost that grows with the queue,
    /// runs beside it on a second connection, in a read-only snapshot taken
    /// before the insert starts: it counts what was active before this batch
    /// and can never see the batch itself, whose rows are then added.
    async fn enqueue_batch_unkeyed(
        &self,
        items: &[NewQueueItem],
        max_attempts: u32,
        now: DateTime<Utc>,
    ) -> Result<Vec<Enqueued>, StoreError> {
        let col = |f: fn(&NewQueueItem) -> Option<String>| items.iter().map(f).collect::<Vec<_>>();
        let workspaces = col(|i| Some(i.workspace.clone()));
        let callers = col(|i| i.caller.clone());
        let methods = col(|i| Some(i.method.clone()));
        let bodies = col(|i| Some(i.body.clone()));
        let priorities: Vec<i32> = items.iter().map(|i| i.priority.0).collect();
        let expiries: Vec<Option<DateTime<Utc>>> = items
            .iter()
            .map(|i| {
                i.ttl
                    .and_then(|t| chrono::Duration::from_std(t).ok())
                    .map(|t| now + t)
            })
            .collect();
        let distinct: BTreeSet<&str> = items.iter().map(|i| i.workspace.as_str()).collect();
        let names: Vec<String> = distinct.iter().map(|w| w.to_string()).collect();

        let mut counter = self
            .pool
            .begin()
            .await
            .map_err(StoreError::query("enqueue batch: begin count"))?;
        // The snapshot is taken by the first statement, answered before the
        // insert is sent.
        take_snapshot(&mut counter)
            .await
            .map_err(StoreError::query("enqueue batch: snapshot"))?;
        // (Boxed: async_trait cannot prove the borrowed connection futures
        // Send for every lifetime otherwise.)
        let count: BoxFuture<'_, Result<Vec<PgRow>, sqlx::Error>> =
            Box::pin(count_active(&mut counter, &names));
        let insert: BoxFuture<'_, Result<Vec<i64>, sqlx::Error>> = Box::pin(insert_unkeyed(
            &self.pool,
            UnkeyedColumns {
                workspaces: &workspaces,
                callers: &callers,
                priorities: &priorities,
                methods: &methods,
                bodies: &bodies,
                expiries: &expiries,
            },
            max_attempts,
            now,
            &names,
        ));
        let (before, ids) = tokio::join!(count, insert);
        let ids = ids.map_err(StoreError::query("enqueue batch"))?;
        // Read only: nothing to keep. A failed count after a committed insert
        // still answers the ids; only the depth would be missing, so fail
        // loudly rather than answer a wrong depth.
        let _ = counter.rollback().await;
        let before = before.map_err(StoreError::query("enqueue batch: depth"))?;
        if ids.len() != items.len() {
            return Err(StoreError::Contended {
                operation: "enqueue batch",
                id: format!("{} of {} rows inserted", ids.len(), items.len()),
            });
        }
        let mut depths: std::collections::HashMap<String, u64> = before
            .iter()
            .map(|r| (r.get("workspace_id"), r.get::<i64, _>("n") as u64))
            .collect();
        for item in items {
            *depths.entry(item.workspace.clone()).or_insert(0) += 1;
        }
        Ok(items
            .iter()
            .zip(ids)
            .map(|(item, id)| Enqueued {
                id,
                depth: depths[&item.workspace],
                deduplicated: false,
            })
            .collect())
    }
}

#[async_trait::async_trait]
impl QueueStore for PgStore {
    async fn enqueue(
        &self,
        item: &NewQueueItem,
        max_attempts: u32,
        now: DateTime<Utc>,
    ) -> Result<Enqueued, StoreError> {
        // No explicit transaction: each round of `enqueue_on` is one
        // statement (insert or find, count, notify), committed on its own, and
        // a round that goes on to another wrote nothing. That saves the BEGIN
        // and COMMIT round trips on the latency path.
        let mut conn = self
            .pool
            .acquire()
            .await
            .map_err(StoreError::query("enqueue: connect"))?;
        enqueue_on(&mut conn, item, max_attempts, now).await
    }

    async fn enqueue_batch(
        &self,
        items: &[NewQueueItem],
        max_attempts: u32,
        now: DateTime<Utc>,
    ) -> Result<Vec<Enqueued>, StoreError> {
        if items.is_empty() {
            return Ok(Vec::new());
        }
        if items.iter().all(|i| i.idempotency_key.is_none()) {
            return self.enqueue_batch_unkeyed(items, max_attempts, now).await;
        }
        let mut tx = self
            .pool
            .begin()
            .await
            .map_err(StoreError::query("enqueue batch: begin"))?;
        let col = |f: fn(&NewQueueItem) -> Option<String>| items.iter().map(f).collect::<Vec<_>>();
        let workspaces = col(|i| Some(i.workspace.clone()));
        let callers = col(|i| i.caller.clone());
        let methods = col(|i| Some(i.method.clone()));
        let bodies = col(|i| Some(i.body.clone()));
        let keys = col(|i| i.idempotency_key.clone());
        let priorities: Vec<i32> = items.iter().map(|i| i.priority.0).collect();
        let expiries: Vec<Option<DateTime<Utc>>> = items
            .iter()
            .map(|i| {
                i.ttl
                    .and_then(|t| chrono::Duration::from_std(t).ok())
                    .map(|t| now + t)
            })
            .collect();
        // One INSERT for the batch. Rows are inserted in input order (the
        // ORDER BY on the ordinality), so ids ascend in input order; a keyed
        // row that hit an active item (or an earlier row of this batch) is
        // skipped and resolved below.
        let inserted = sqlx::query(
            "INSERT INTO queue_items (workspace_id, caller, priority, method, body,
                 idempotency_key, max_attempts, enqueued_at, available_at, expires_at, updated_at)
             SELECT w, c, p, m, b, k, $8, $9, $9, e, $9
             FROM UNNEST($1::text[], $2::text[], $3::int[], $4::text[], $5::text[], $6::text[],
                         $7::timestamptz[]) WITH ORDINALITY AS u(w, c, p, m, b, k, e, ord)
             ORDER BY ord
             ON CONFLICT (workspace_id, idempotency_key)
                 WHERE status IN ('queued', 'dispatched') AND idempotency_key IS NOT NULL
             DO NOTHING
             RETURNING id, workspace_id, idempotency_key",
        )
        .bind(&workspaces)
        .bind(&callers)
        .bind(&priorities)
        .bind(&methods)
        .bind(&bodies)
        .bind(&keys)
        .bind(&expiries)
        .bind(int(max_attempts))
        .bind(now)
        .fetch_all(&mut *tx)
        .await
        .map_err(StoreError::query("enqueue batch"))?;
        let mut rows: Vec<(i64, String, Option<String>)> = inserted
            .iter()
            .map(|r| (r.get("id"), r.get("workspace_id"), r.get("idempotency_key")))
            .collect();
        rows.sort_by_key(|r| r.0);
        let mut next = rows.into_iter().peekable();
        let mut by_key: std::collections::HashMap<(String, String), i64> = Default::default();
        let mut resolved: Vec<(i64, bool)> = Vec::with_capacity(items.len());
        for item in items {
            let matches_next = next.peek().is_some_and(|(_, w, k)| {
                *w == item.workspace
                    && *k == item.idempotency_key
                    && item
                        .idempotency_key
                        .as_ref()
                        .is_none_or(|key| !by_key.contains_key(&(w.clone(), key.clone())))
            });
            if matches_next {
                let (id, w, k) = next.next().expect("peeked");
                if let Some(k) = k {
                    by_key.insert((w, k), id);
                }
                resolved.push((id, false));
                continue;
            }
            let key = item
                .idempotency_key
                .clone()
                .expect("only keyed rows can be skipped by ON CONFLICT");
            let id = match by_key.get(&(item.workspace.clone(), key.clone())) {
                Some(id) => *id,
                None => {
                    let id: i64 = sqlx::query_scalar(
                        "SELECT id FROM queue_items WHERE workspace_id = $1 AND idempotency_key = $2
                           AND status IN ('queued', 'dispatched')",
                    )
                    .bind(&item.workspace)
                    .bind(&key)
                    .fetch_optional(&mut *tx)
                    .await
                    .map_err(StoreError::query("enqueue batch: find active item with key"))?
                    .ok_or_else(|| StoreError::Contended {
                        operation: "enqueue batch",
                        id: key.clone(),
                    })?;
                    by_key.insert((item.workspace.clone(), key), id);
                    id
                }
            };
            resolved.push((id, true));
        }
        // Depth per workspace after the batch (every item of a workspace gets it).
        let distinct: BTreeSet<&str> = items.iter().map(|i| i.workspace.as_str()).collect();
        let names: Vec<String> = distinct.iter().map(|w| w.to_string()).collect();
        let depths: std::collections::HashMap<String, i64> = sqlx::query(
            "SELECT workspace_id, COUNT(*) AS n FROM queue_items
             WHERE workspace_id = ANY($1) AND status IN ('queued', 'dispatched')
             GROUP BY workspace_id",
        )
        .bind(&names)
        .fetch_all(&mut *tx)
        .await
        .map_err(StoreError::query("enqueue batch: depth"))?
        .iter()
        .map(|r| (r.get("workspace_id"), r.get("n")))
        .collect();
        notify(&mut tx, distinct).await?;
        tx.commit()
            .await
            .map_err(StoreError::query("enqueue batch: commit"))?;
        Ok(items
            .iter()
            .zip(resolved)
            .map(|(item, (id, deduplicated))| Enqueued {
                id,
                depth: depths.get(&item.workspace).copied().unwrap_or(0) as u64,
                deduplicated,
            })
            .collect())
    }

    async fn claim(&self, claim: Claim<'_>) -> Result<Vec<QueueItem>, StoreError> {
        if claim.limit == 0 {
            return Ok(Vec::new());
        }
        let token = uuid::Uuid::new_v4().to_string();
        let sql = format!(
            "WITH picked AS (
                 SELECT id FROM queue_items
                 WHERE workspace_id = $5 AND status = 'queued' AND available_at <= $4
                   AND (expires_at IS NULL OR expires_at > $4)
                 ORDER BY priority DESC, enqueued_at, id
                 LIMIT $6
                 FOR UPDATE SKIP LOCKED
             )
             UPDATE queue_items q
             SET status = 'dispatched', lease_token = $1, claimed_by = $2,
                 lease_expires_at = $3, updated_at = $4
             FROM picked WHERE q.id = picked.id
             RETURNING {}",
            COLUMNS
                .split(", ")
                .map(|c| format!("q.{}", c.trim()))
                .collect::<Vec<_>>()
                .join(", ")
        );
        let rows = sqlx::query(&sql)
            .bind(&token)
            .bind(claim.node)
            .bind(claim.lease_until)
            .bind(claim.now)
            .bind(claim.workspace)
            .bind(i64::from(claim.limit))
            .fetch_all(&self.pool)
            .await
            .map_err(StoreError::query("claim"))?;
        let mut claimed = items(&rows)?;
        claimed.sort_by(|a, b| {
            b.priority
                .cmp(&a.priority)
                .then(a.enqueued_at.cmp(&b.enqueued_at))
                .then(a.id.cmp(&b.id))
        });
        Ok(claimed)
    }

    async fn record_dispatch(
        &self,
        id: i64,
        lease_token: &str,
        result: &DispatchResult,
        now: DateTime<Utc>,
    ) -> Result<Recorded, StoreError> {
        let fence = "WHERE id = $1 AND status = 'dispatched' AND lease_token = $2";
        let release = "lease_token = NULL, claimed_by = NULL, lease_expires_at = NULL";
        // One parameter list for every outcome (1 id, 2 lease token, 3 response
        // or error text, 4 now, 5 retry time), so one query serves them all.
        let (sql, text, retry_at) = match result {
            DispatchResult::Delivered { response } => (
                format!(
                    "UPDATE queue_items SET status = 'completed', response = $3, finished_at = $4,
                         updated_at = $4, available_at = COALESCE($5, available_at),
                         {release} {fence} RETURNING {COLUMNS}"
                ),
                response,
                None,
            ),
            DispatchResult::Busy { reason } => (
                format!(
                    "UPDATE queue_items SET status = 'queued', last_error = $3, updated_at = $4,
                         available_at = COALESCE($5, available_at),
                         {release} {fence} RETURNING {COLUMNS}"
                ),
                reason,
                None,
            ),
            DispatchResult::Error { message, retry_at } => (
                format!(
                    "UPDATE queue_items SET
                         attempts = attempts + 1,
                         last_error = $3,
                         status = CASE WHEN attempts + 1 >= max_attempts THEN 'failed' ELSE 'queued' END,
                         finished_at = CASE WHEN attempts + 1 >= max_attempts THEN $4 ELSE NULL END,
                         available_at = COALESCE($5, available_at),
                         updated_at = $4,
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
            .bind(now)
            .bind(retry_at);
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
        if done.is_empty() {
            return Ok(Vec::new());
        }
        let ids: Vec<i64> = done.iter().map(|d| d.0).collect();
        let tokens: Vec<&str> = done.iter().map(|d| d.1.as_str()).collect();
        let responses: Vec<&str> = done.iter().map(|d| d.2.as_str()).collect();
        let sql = format!(
            "UPDATE queue_items q SET status = 'completed', response = u.response, finished_at = $4,
                 updated_at = $4, lease_token = NULL, claimed_by = NULL, lease_expires_at = NULL
             FROM UNNEST($1::bigint[], $2::text[], $3::text[]) AS u(id, token, response)
             WHERE q.id = u.id AND q.status = 'dispatched' AND q.lease_token = u.token
             RETURNING {}",
            COLUMNS
                .split(", ")
                .map(|c| format!("q.{}", c.trim()))
                .collect::<Vec<_>>()
                .join(", ")
        );
        let rows = sqlx::query(&sql)
            .bind(&ids)
            .bind(&tokens)
            .bind(&responses)
            .bind(now)
            .fetch_all(&self.pool)
            .await
            .map_err(StoreError::query("complete many"))?;
        items(&rows)
    }

    async fn release(
        &self,
        leases: &[(i64, String)],
        now: DateTime<Utc>,
    ) -> Result<Vec<QueueItem>, StoreError> {
        if leases.is_empty() {
            return Ok(Vec::new());
        }
        let ids: Vec<i64> = leases.iter().map(|l| l.0).collect();
        let tokens: Vec<&str> = leases.iter().map(|l| l.1.as_str()).collect();
        let sql = format!(
            "UPDATE queue_items q SET status = 'queued', updated_at = $3,
                 lease_token = NULL, claimed_by = NULL, lease_expires_at = NULL
             FROM UNNEST($1::bigint[], $2::text[]) AS u(id, token)
             WHERE q.id = u.id AND q.status = 'dispatched' AND q.lease_token = u.token
             RETURNING {}",
            COLUMNS
                .split(", ")
                .map(|c| format!("q.{}", c.trim()))
                .collect::<Vec<_>>()
                .join(", ")
        );
        let rows = sqlx::query(&sql)
            .bind(&ids)
            .bind(&tokens)
            .bind(now)
            .fetch_all(&self.pool)
            .await
            .map_err(StoreError::query("release claimed items"))?;
        items(&rows)
    }

    async fn expire_due(&self, now: DateTime<Utc>) -> Result<Vec<QueueItem>, StoreError> {
        let sql = format!(
            "UPDATE queue_items SET status = 'expired', finished_at = $1, updated_at = $1
             WHERE status = 'queued' AND expires_at IS NOT NULL AND expires_at <= $1
             RETURNING {COLUMNS}"
        );
        let rows = sqlx::query(&sql)
            .bind(now)
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
                 finished_at = CASE WHEN attempts + 1 >= max_attempts THEN $1 ELSE NULL END,
                 lease_token = NULL, claimed_by = NULL, lease_expires_at = NULL,
                 updated_at = $1
             WHERE status = 'dispatched' AND lease_expires_at <= $1
             RETURNING {COLUMNS}"
        );
        let rows = sqlx::query(&sql)
            .bind(now)
            .fetch_all(&self.pool)
            .await
            .map_err(StoreError::query("rescue expired leases"))?;
        items(&rows)
    }

    async fn ready_workspaces(&self, now: DateTime<Utc>) -> Result<Vec<String>, StoreError> {
        sqlx::query_scalar(
            "SELECT DISTINCT workspace_id FROM queue_items
             WHERE status = 'queued' AND available_at <= $1
               AND (expires_at IS NULL OR expires_at > $1)
             ORDER BY workspace_id",
        )
        .bind(now)
        .fetch_all(&self.pool)
        .await
        .map_err(StoreError::query("ready workspaces"))
    }

    async fn queue_depth(&self, workspace: &str) -> Result<u64, StoreError> {
        let n: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM queue_items
             WHERE workspace_id = $1 AND status IN ('queued', 'dispatched')",
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
             WHERE workspace_id = $1 AND ($2::text IS NULL OR status = $2)
             ORDER BY id DESC LIMIT $3"
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
        let sql = format!("SELECT {COLUMNS} FROM queue_items WHERE id = $1");
        let row = sqlx::query(&sql)
            .bind(id)
            .fetch_optional(&self.pool)
            .await
            .map_err(StoreError::query("get queue item"))?;
        row.as_ref().map(item).transpose()
    }

    async fn dispatched_by(&self, node: &str) -> Result<Vec<QueueItem>, StoreError> {
        let sql = format!(
            "SELECT {COLUMNS} FROM queue_items WHERE status = 'dispatched' AND claimed_by = $1"
        );
        let rows = sqlx::query(&sql)
            .bind(node)
            .fetch_all(&self.pool)
            .await
            .map_err(StoreError::query("items dispatched by node"))?;
        items(&rows)
    }
}
