//! Postgres enqueues: one statement per item, one statement per batch.
//!
//! A single enqueue is one round trip: insert unless an active item holds the
//! key, find that item otherwise, count the depth and notify the other nodes,
//! committed on its own. A batch goes in as arrays (`UNNEST`).

use std::collections::{BTreeSet, HashMap};
use std::sync::LazyLock;

use chrono::{DateTime, Utc};
use futures::future::BoxFuture;
use sqlx::postgres::PgRow;
use sqlx::{PgConnection, PgPool, Row};

use super::QUEUE_CHANNEL;
use crate::model::queue::{Enqueued, NewQueueItem, QueueStatus};
use crate::store::sql::active_count;
use crate::store::StoreError;

fn int(n: u32) -> i32 {
    i32::try_from(n).unwrap_or(i32::MAX)
}

/// The single enqueue's statement (its depth counted per status, see
/// [`active_count`]).
static ONE_SQL: LazyLock<String> = LazyLock::new(|| {
    format!(
        "WITH ins AS (
                 INSERT INTO queue_items (workspace_id, caller, priority, method, body,
                     idempotency_key, max_attempts, enqueued_at, available_at, expires_at, updated_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8, $9, $8)
                 ON CONFLICT (workspace_id, idempotency_key) WHERE idempotency_key IS NOT NULL
                 DO NOTHING
                 RETURNING id
             )
             SELECT
                 (SELECT id FROM ins) AS inserted,
                 (SELECT id FROM queue_items
                   WHERE $6::text IS NOT NULL AND workspace_id = $1 AND idempotency_key = $6)
                     AS existing,
                 (SELECT status FROM queue_items
                   WHERE $6::text IS NOT NULL AND workspace_id = $1 AND idempotency_key = $6)
                     AS existing_status,
                 {depth} AS depth,
                 pg_notify($10, $1) IS NULL AS notified",
        depth = active_count("q.workspace_id = $1")
    )
});

/// One enqueue in one statement. The CTEs share one snapshot, taken before
/// the insert, so the count misses the new row (hence `+ 1`) and the lookup
/// misses a row committed by a concurrent enqueue of the same key: the insert
/// then waited for that row, did nothing, and the next round (a new
/// snapshot) finds it. No explicit transaction: each round is one statement,
/// and a round that goes on to another wrote nothing.
pub(super) async fn one(
    pool: &PgPool,
    item: &NewQueueItem,
    max_attempts: u32,
    now: DateTime<Utc>,
) -> Result<Enqueued, StoreError> {
    let mut conn = pool
        .acquire()
        .await
        .map_err(StoreError::query("enqueue: connect"))?;
    for _ in 0..5 {
        let row = sqlx::query(&ONE_SQL)
            .bind(&item.workspace)
            .bind(&item.caller)
            .bind(item.priority.0)
            .bind(&item.method)
            .bind(&item.body)
            .bind(&item.idempotency_key)
            .bind(int(max_attempts))
            .bind(now)
            .bind(item.expires_at(now))
            .bind(QUEUE_CHANNEL)
            .fetch_one(&mut *conn)
            .await
            .map_err(StoreError::query("enqueue"))?;
        let inserted: Option<i64> = row.get("inserted");
        let existing: Option<i64> = row.get("existing");
        let existing_status: Option<String> = row.get("existing_status");
        let depth = u64::try_from(row.get::<i64, _>("depth")).unwrap_or(0);
        match (inserted, existing) {
            (Some(id), _) => {
                return Ok(Enqueued {
                    id,
                    depth: depth + 1,
                    deduplicated: false,
                    status: QueueStatus::Queued,
                })
            }
            (None, Some(id)) => {
                return Ok(Enqueued {
                    id,
                    depth,
                    deduplicated: true,
                    status: status_of(existing_status)?,
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

fn status_of(text: Option<String>) -> Result<QueueStatus, StoreError> {
    let text = text.unwrap_or_default();
    QueueStatus::from_name(&text).ok_or(StoreError::Corrupt {
        table: "queue_items",
        column: "status".into(),
        value: text,
    })
}

/// A batch's columns, one array each, in input order.
struct Columns {
    workspaces: Vec<String>,
    callers: Vec<Option<String>>,
    priorities: Vec<i32>,
    methods: Vec<String>,
    bodies: Vec<String>,
    keys: Vec<Option<String>>,
    expiries: Vec<Option<DateTime<Utc>>>,
}

impl Columns {
    fn of(items: &[NewQueueItem], now: DateTime<Utc>) -> Self {
        Self {
            workspaces: items.iter().map(|i| i.workspace.clone()).collect(),
            callers: items.iter().map(|i| i.caller.clone()).collect(),
            priorities: items.iter().map(|i| i.priority.0).collect(),
            methods: items.iter().map(|i| i.method.clone()).collect(),
            bodies: items.iter().map(|i| i.body.clone()).collect(),
            keys: items.iter().map(|i| i.idempotency_key.clone()).collect(),
            expiries: items.iter().map(|i| i.expires_at(now)).collect(),
        }
    }
}

pub(super) async fn batch(
    pool: &PgPool,
    items: &[NewQueueItem],
    max_attempts: u32,
    now: DateTime<Utc>,
    count: bool,
) -> Result<Vec<Enqueued>, StoreError> {
    if items.iter().all(|i| i.idempotency_key.is_none()) {
        unkeyed(pool, items, max_attempts, now, count).await
    } else {
        keyed(pool, items, max_attempts, now, count).await
    }
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

/// Active items of each of `workspaces`, one row each.
async fn count_active(
    conn: &mut PgConnection,
    workspaces: &[String],
) -> Result<Vec<PgRow>, sqlx::Error> {
    let sql = format!(
        "SELECT u.w AS workspace_id, {} AS n FROM UNNEST($1::text[]) AS u(w)",
        active_count("q.workspace_id = u.w")
    );
    sqlx::query(&sql).bind(workspaces).fetch_all(conn).await
}

/// Insert rows without keys and notify, in one statement; answers the new
/// ids ascending. Rows go in input order (ORDER BY the ordinality), so ids
/// ascend in input order. The notify subquery runs once, in the same commit.
async fn insert_unkeyed(
    pool: &PgPool,
    cols: &Columns,
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
    .bind(&cols.workspaces)
    .bind(&cols.callers)
    .bind(&cols.priorities)
    .bind(&cols.methods)
    .bind(&cols.bodies)
    .bind(&cols.expiries)
    .bind(int(max_attempts))
    .bind(now)
    .bind(QUEUE_CHANNEL)
    .bind(notify)
    .fetch_all(pool)
    .await
}

/// A batch without idempotency keys: nothing can be deduplicated, so one
/// statement inserts the rows and notifies, committed on its own (all or
/// nothing). Depths are counted when `count` (else 0; see
/// [`insert_counting`]).
async fn unkeyed(
    pool: &PgPool,
    items: &[NewQueueItem],
    max_attempts: u32,
    now: DateTime<Utc>,
    count: bool,
) -> Result<Vec<Enqueued>, StoreError> {
    let cols = Columns::of(items, now);
    let distinct: BTreeSet<&str> = items.iter().map(|i| i.workspace.as_str()).collect();
    let names: Vec<String> = distinct.iter().map(|w| w.to_string()).collect();
    let (ids, before) = if count {
        insert_counting(pool, &cols, max_attempts, now, &names).await?
    } else {
        let ids = insert_unkeyed(pool, &cols, max_attempts, now, &names)
            .await
            .map_err(StoreError::query("enqueue batch"))?;
        (ids, Vec::new())
    };
    if ids.len() != items.len() {
        return Err(StoreError::Contended {
            operation: "enqueue batch",
            id: format!("{} of {} rows inserted", ids.len(), items.len()),
        });
    }
    let mut depths: HashMap<String, u64> = HashMap::new();
    for r in &before {
        let n: i64 = r.get("n");
        depths.insert(r.get("workspace_id"), u64::try_from(n).unwrap_or(0));
    }
    for item in items.iter().filter(|_| count) {
        *depths.entry(item.workspace.clone()).or_insert(0) += 1;
    }
    Ok(items
        .iter()
        .zip(ids)
        .map(|(item, id)| Enqueued {
            id,
            depth: depths.get(&item.workspace).copied().unwrap_or(0),
            deduplicated: false,
            status: QueueStatus::Queued,
        })
        .collect())
}

/// The insert, with the depth count, the other cost that grows with the
/// queue, beside it on a second connection, in a read-only snapshot taken
/// before the insert starts: it counts what was active before this batch
/// and can never see the batch itself, whose rows are then added.
async fn insert_counting(
    pool: &PgPool,
    cols: &Columns,
    max_attempts: u32,
    now: DateTime<Utc>,
    names: &[String],
) -> Result<(Vec<i64>, Vec<PgRow>), StoreError> {
    let mut counter = pool
        .begin()
        .await
        .map_err(StoreError::query("enqueue batch: begin count"))?;
    take_snapshot(&mut counter)
        .await
        .map_err(StoreError::query("enqueue batch: snapshot"))?;
    // (Boxed: async_trait cannot prove the borrowed connection futures Send
    // for every lifetime otherwise.)
    let count: BoxFuture<'_, Result<Vec<PgRow>, sqlx::Error>> =
        Box::pin(count_active(&mut counter, names));
    let insert: BoxFuture<'_, Result<Vec<i64>, sqlx::Error>> =
        Box::pin(insert_unkeyed(pool, cols, max_attempts, now, names));
    let (before, ids) = tokio::join!(count, insert);
    let ids = ids.map_err(StoreError::query("enqueue batch"))?;
    // Read only: nothing to keep. A failed count after a committed insert
    // still fails the call: a wrong depth is worse than a retry.
    let _ = counter.rollback().await;
    let before = before.map_err(StoreError::query("enqueue batch: depth"))?;
    Ok((ids, before))
}

/// A batch with keys: one `UNNEST` insert that skips rows whose key is
/// active, then the skipped rows' existing ids, the depths and the notify,
/// all in one transaction.
async fn keyed(
    pool: &PgPool,
    items: &[NewQueueItem],
    max_attempts: u32,
    now: DateTime<Utc>,
    count: bool,
) -> Result<Vec<Enqueued>, StoreError> {
    let cols = Columns::of(items, now);
    let mut tx = pool
        .begin()
        .await
        .map_err(StoreError::query("enqueue batch: begin"))?;
    let inserted = sqlx::query(
        "INSERT INTO queue_items (workspace_id, caller, priority, method, body, idempotency_key,
             max_attempts, enqueued_at, available_at, expires_at, updated_at)
         SELECT w, c, p, m, b, k, $8, $9, $9, e, $9
         FROM UNNEST($1::text[], $2::text[], $3::int[], $4::text[], $5::text[], $6::text[],
                     $7::timestamptz[]) WITH ORDINALITY AS u(w, c, p, m, b, k, e, ord)
         ORDER BY ord
         ON CONFLICT (workspace_id, idempotency_key) WHERE idempotency_key IS NOT NULL
         DO NOTHING
         RETURNING id, workspace_id, idempotency_key",
    )
    .bind(&cols.workspaces)
    .bind(&cols.callers)
    .bind(&cols.priorities)
    .bind(&cols.methods)
    .bind(&cols.bodies)
    .bind(&cols.keys)
    .bind(&cols.expiries)
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
    // Inserted rows come back in input order (ids ascend with the
    // ordinality); an input row that is not the next inserted one was a
    // duplicate, of a kept item or of an earlier row of this batch.
    let mut next = rows.into_iter().peekable();
    let mut by_key: HashMap<(String, String), (i64, QueueStatus)> = HashMap::new();
    let mut resolved: Vec<(i64, bool, QueueStatus)> = Vec::with_capacity(items.len());
    for item in items {
        let fresh_key = item
            .idempotency_key
            .as_ref()
            .is_none_or(|key| !by_key.contains_key(&(item.workspace.clone(), key.clone())));
        let matches_next = fresh_key
            && next
                .peek()
                .is_some_and(|(_, w, k)| *w == item.workspace && *k == item.idempotency_key);
        if matches_next {
            if let Some((id, w, k)) = next.next() {
                if let Some(k) = k {
                    by_key.insert((w, k), (id, QueueStatus::Queued));
                }
                resolved.push((id, false, QueueStatus::Queued));
                continue;
            }
        }
        let Some(key) = item.idempotency_key.clone() else {
            return Err(StoreError::Contended {
                operation: "enqueue batch",
                id: item.workspace.clone(),
            });
        };
        let (id, status) = match by_key.get(&(item.workspace.clone(), key.clone())) {
            Some(found) => *found,
            None => {
                let row = sqlx::query(
                    "SELECT id, status FROM queue_items
                     WHERE workspace_id = $1 AND idempotency_key = $2",
                )
                .bind(&item.workspace)
                .bind(&key)
                .fetch_optional(&mut *tx)
                .await
                .map_err(StoreError::query(
                    "enqueue batch: find the item with the key",
                ))?
                .ok_or_else(|| StoreError::Contended {
                    operation: "enqueue batch",
                    id: key.clone(),
                })?;
                let found = (row.get::<i64, _>("id"), status_of(row.get("status"))?);
                by_key.insert((item.workspace.clone(), key), found);
                found
            }
        };
        resolved.push((id, true, status));
    }
    let distinct: BTreeSet<&str> = items.iter().map(|i| i.workspace.as_str()).collect();
    let names: Vec<String> = distinct.iter().map(|w| w.to_string()).collect();
    let mut depths: HashMap<String, u64> = HashMap::new();
    let counted = if count {
        count_active(&mut tx, &names)
            .await
            .map_err(StoreError::query("enqueue batch: depth"))?
    } else {
        Vec::new()
    };
    for r in counted {
        let n: i64 = r.get("n");
        depths.insert(r.get("workspace_id"), u64::try_from(n).unwrap_or(0));
    }
    sqlx::query("SELECT pg_notify($1, w) FROM UNNEST($2::text[]) AS w")
        .bind(QUEUE_CHANNEL)
        .bind(&names)
        .execute(&mut *tx)
        .await
        .map_err(StoreError::query("enqueue batch: notify"))?;
    tx.commit()
        .await
        .map_err(StoreError::query("enqueue batch: commit"))?;
    Ok(items
        .iter()
        .zip(resolved)
        .map(|(item, (id, deduplicated, status))| Enqueued {
            id,
            depth: depths.get(&item.workspace).copied().unwrap_or(0),
            deduplicated,
            status,
        })
        .collect())
}
