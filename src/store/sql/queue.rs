//! The queue's statements. Enqueues dedupe by a unique index on
//! `(workspace_id, idempotency_key)` over every kept row, so two concurrent
//! enqueues of one key cannot both insert and a retry finds the first item
//! even after it finished; outcome writes are fenced by
//! `status = 'dispatched' AND lease_token = $token`.

use std::collections::{BTreeSet, HashMap};

use chrono::{DateTime, Utc};

use super::keyset::{Listing, Order, Where};
use super::rows::{self, QUEUE_COLUMNS};
use super::{query, values, Arg, Dialect, Exec, Row, SqlStore, TxMode};
use crate::model::page::{Cursor, Page, PageRequest};
use crate::store::queue::QueueFilter;

use crate::model::queue::{claim_order, Enqueued, NewQueueItem, QueueItem, QueueStatus};
use crate::store::{Claim, QueueStore, Settle, StoreError};

/// The active items among the `queue_items q` rows `filter` selects, as an
/// SQL expression: one count per active status added up, because each
/// matches a partial index exactly (queued: `queue_items_claim`,
/// dispatched: `queue_items_leases`, both keyed by workspace first) where
/// one `IN` over both statuses would match neither (migration 0009).
pub(crate) fn active_count(filter: &str) -> String {
    let counts: Vec<String> = QueueStatus::ACTIVE
        .iter()
        .map(|s| {
            format!(
                "(SELECT COUNT(*) FROM queue_items q WHERE q.status = '{}' AND {filter})",
                s.as_str()
            )
        })
        .collect();
    format!("({})", counts.join(" + "))
}

/// Active items by status, one index-served count per status.
fn active_by_status() -> String {
    let counts: Vec<String> = QueueStatus::ACTIVE
        .iter()
        .map(|s| {
            format!(
                "SELECT '{0}' AS status, COUNT(*) AS n FROM queue_items WHERE status = '{0}'",
                s.as_str()
            )
        })
        .collect();
    counts.join(" UNION ALL ")
}

/// Insert `item` unless an item (active or finished) holds its key; answers
/// its id, whether it was a duplicate, and its status. The insert and the
/// lookup of the kept item can race with that item being pruned; a second
/// round then inserts.
pub(crate) async fn insert_or_find<E: Exec>(
    on: &mut E,
    item: &NewQueueItem,
    max_attempts: u32,
    now: DateTime<Utc>,
) -> Result<(i64, bool, QueueStatus), StoreError> {
    const INSERT: &str = "INSERT INTO queue_items (workspace_id, caller, priority, method, body,
             idempotency_key, max_attempts, enqueued_at, available_at, expires_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8, $9, $8)
         ON CONFLICT (workspace_id, idempotency_key) WHERE idempotency_key IS NOT NULL
         DO NOTHING
         RETURNING id";
    const FIND: &str =
        "SELECT id, status FROM queue_items WHERE workspace_id = $1 AND idempotency_key = $2";
    for _ in 0..3 {
        let inserted = on
            .opt(
                INSERT,
                &[
                    Arg::Text(&item.workspace),
                    Arg::OptText(item.caller.as_deref()),
                    Arg::I32(item.priority.0),
                    Arg::Text(&item.method),
                    Arg::Text(&item.body),
                    Arg::OptText(item.idempotency_key.as_deref()),
                    Arg::I64(i64::from(max_attempts)),
                    Arg::Time(now),
                    Arg::OptTime(item.expires_at(now)),
                ],
            )
            .await
            .map_err(query("enqueue"))?;
        if let Some(row) = inserted {
            return Ok((row.i64("id")?, false, QueueStatus::Queued));
        }
        let Some(key) = item.idempotency_key.as_deref() else {
            break;
        };
        let existing = on
            .opt(FIND, &[Arg::Text(&item.workspace), Arg::Text(key)])
            .await
            .map_err(query("enqueue: find the item with the key"))?;
        if let Some(row) = existing {
            let status = row.text("status")?;
            let status = QueueStatus::from_name(&status).ok_or(StoreError::Corrupt {
                table: "queue_items",
                column: "status".into(),
                value: status,
            })?;
            return Ok((row.i64("id")?, true, status));
        }
    }
    Err(StoreError::Contended {
        operation: "enqueue",
        id: item.workspace.clone(),
    })
}

/// Active items of one workspace.
pub(crate) async fn depth<E: Exec>(on: &mut E, workspace: &str) -> Result<u64, StoreError> {
    let sql = format!("SELECT {} AS n", active_count("q.workspace_id = $1"));
    let row = on
        .opt(&sql, &[Arg::Text(workspace)])
        .await
        .map_err(query("queue depth"))?;
    Ok(row.map(|r| r.i64("n")).transpose()?.unwrap_or(0).max(0) as u64)
}

/// Enqueue `items` in one transaction, one statement each, then wake the
/// other nodes (the generic path; a dialect may batch it). Depths are
/// counted when `count` (else 0).
pub(crate) async fn enqueue_each<D: Dialect>(
    d: &D,
    items: &[NewQueueItem],
    max_attempts: u32,
    now: DateTime<Utc>,
    count: bool,
) -> Result<Vec<Enqueued>, StoreError> {
    let mut tx = d
        .begin(TxMode::Write)
        .await
        .map_err(query("enqueue: begin"))?;
    let mut ids = Vec::with_capacity(items.len());
    for item in items {
        ids.push(insert_or_find(&mut tx, item, max_attempts, now).await?);
    }
    // Depth once per workspace, after the batch (every item of a workspace gets it).
    let mut depths = HashMap::new();
    for item in items.iter().filter(|_| count) {
        if !depths.contains_key(&item.workspace) {
            let n = depth(&mut tx, &item.workspace).await?;
            depths.insert(item.workspace.clone(), n);
        }
    }
    D::commit(tx).await.map_err(query("enqueue: commit"))?;
    let woken: BTreeSet<&str> = items.iter().map(|i| i.workspace.as_str()).collect();
    d.woke(&woken.into_iter().collect::<Vec<_>>()).await;
    Ok(items
        .iter()
        .zip(ids)
        .map(|(item, (id, deduplicated, status))| Enqueued {
            id,
            depth: depths.get(&item.workspace).copied().unwrap_or(0),
            deduplicated,
            status,
        })
        .collect())
}

/// Outcomes per statement: 8 values a row.
const SETTLES_PER_STATEMENT: usize = 100;

/// Settle rows a chunk per statement (`UPDATE … FROM (VALUES …)`), each row
/// fenced by its lease token, in one transaction (one commit). One
/// statement a row cost more in round trips to SQLite's worker thread than
/// in SQLite itself, and held the one writer meanwhile.
pub(crate) async fn settle_set<D: Dialect>(
    d: &D,
    rows: &[Settle<'_>],
    now: DateTime<Utc>,
) -> Result<Vec<i64>, StoreError> {
    if rows.is_empty() {
        return Ok(Vec::new());
    }
    let mut tx = d
        .begin(TxMode::Write)
        .await
        .map_err(query("record outcomes: begin"))?;
    let mut written = Vec::with_capacity(rows.len());
    for chunk in rows.chunks(SETTLES_PER_STATEMENT) {
        let (values, args) = values(vec![Arg::Time(now)], chunk, |r| {
            let s = &r.settled;
            [
                Arg::I64(r.item.id),
                Arg::Text(r.item.lease_token.as_deref().unwrap_or_default()),
                Arg::Text(s.status.as_str()),
                Arg::I32(s.attempts),
                Arg::Time(s.available_at),
                Arg::OptTime(s.finished_at),
                Arg::OptText(s.last_error.as_deref()),
                Arg::OptText(s.response.as_deref()),
            ]
        });
        let sql = format!(
            "WITH u(id, token, status, attempts, available_at, finished_at, last_error,
                    response) AS (VALUES {values})
             UPDATE queue_items SET
                 status = u.status, attempts = u.attempts, available_at = u.available_at,
                 finished_at = u.finished_at, last_error = u.last_error, response = u.response,
                 updated_at = $1, lease_token = NULL, claimed_by = NULL, lease_expires_at = NULL
             FROM u
             WHERE queue_items.id = u.id AND queue_items.status = 'dispatched'
               AND queue_items.lease_token = u.token
             RETURNING queue_items.id AS id"
        );
        for row in tx
            .all(&sql, &args)
            .await
            .map_err(query("record outcomes"))?
        {
            written.push(row.i64("id")?);
        }
    }
    D::commit(tx)
        .await
        .map_err(query("record outcomes: commit"))?;
    Ok(written)
}

impl<D: Dialect> SqlStore<D> {
    /// A batch through the dialect, depths counted when `count`.
    async fn batch(
        &self,
        items: &[NewQueueItem],
        max_attempts: u32,
        now: DateTime<Utc>,
        count: bool,
    ) -> Result<Vec<Enqueued>, StoreError> {
        if items.is_empty() {
            return Ok(Vec::new());
        }
        self.d.enqueue_batch(items, max_attempts, now, count).await
    }
}

#[async_trait::async_trait]
impl<D: Dialect> QueueStore for SqlStore<D> {
    async fn enqueue(
        &self,
        item: &NewQueueItem,
        max_attempts: u32,
        now: DateTime<Utc>,
    ) -> Result<Enqueued, StoreError> {
        self.d.enqueue(item, max_attempts, now).await
    }

    async fn enqueue_batch(
        &self,
        items: &[NewQueueItem],
        max_attempts: u32,
        now: DateTime<Utc>,
    ) -> Result<Vec<Enqueued>, StoreError> {
        self.batch(items, max_attempts, now, true).await
    }

    async fn enqueue_batch_uncounted(
        &self,
        items: &[NewQueueItem],
        max_attempts: u32,
        now: DateTime<Utc>,
    ) -> Result<Vec<Enqueued>, StoreError> {
        self.batch(items, max_attempts, now, false).await
    }

    async fn claim(&self, claim: Claim<'_>) -> Result<Vec<QueueItem>, StoreError> {
        if claim.limit == 0 {
            return Ok(Vec::new());
        }
        let token = uuid::Uuid::new_v4().to_string();
        let args = [
            Arg::Text(&token),
            Arg::Text(claim.node),
            Arg::Time(claim.lease_until),
            Arg::Time(claim.now),
            Arg::Text(claim.workspace),
            Arg::I64(i64::from(claim.limit)),
        ];
        let found = match D::CLAIM_PLAN {
            None => self.d.pool().all(self.d.claim_sql(), &args).await,
            Some(plan) => {
                let mut tx = self
                    .d
                    .begin(TxMode::Write)
                    .await
                    .map_err(query("claim: begin"))?;
                tx.all(plan, &[]).await.map_err(query("claim: plan"))?;
                let found = tx.all(self.d.claim_sql(), &args).await;
                if found.is_ok() {
                    D::commit(tx).await.map_err(query("claim: commit"))?;
                }
                found
            }
        }
        .map_err(query("claim"))?;
        let mut claimed = rows::all(&found, rows::queue_item)?;
        // RETURNING promises no order.
        claim_order(&mut claimed);
        Ok(claimed)
    }

    async fn settle(
        &self,
        rows: &[Settle<'_>],
        now: DateTime<Utc>,
    ) -> Result<Vec<i64>, StoreError> {
        if rows.is_empty() {
            return Ok(Vec::new());
        }
        self.d.settle(rows, now).await
    }

    async fn expire_due(&self, now: DateTime<Utc>) -> Result<Vec<QueueItem>, StoreError> {
        let sql = format!(
            "UPDATE queue_items SET status = 'expired', finished_at = $1, updated_at = $1
             WHERE status = 'queued' AND expires_at IS NOT NULL AND expires_at <= $1
             RETURNING {QUEUE_COLUMNS}"
        );
        let found = self
            .d
            .pool()
            .all(&sql, &[Arg::Time(now)])
            .await
            .map_err(query("expire queue items"))?;
        rows::all(&found, rows::queue_item)
    }

    async fn expired_leases(
        &self,
        now: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<QueueItem>, StoreError> {
        let sql = format!(
            "SELECT {QUEUE_COLUMNS} FROM queue_items
             WHERE status = 'dispatched' AND lease_expires_at <= $1
             ORDER BY lease_expires_at, id LIMIT $2"
        );
        let found = self
            .d
            .pool()
            .all(&sql, &[Arg::Time(now), Arg::I64(i64::from(limit))])
            .await
            .map_err(query("expired leases"))?;
        rows::all(&found, rows::queue_item)
    }

    async fn ready_workspaces(&self, now: DateTime<Utc>) -> Result<Vec<String>, StoreError> {
        let found = self
            .d
            .pool()
            .all(
                "SELECT DISTINCT workspace_id FROM queue_items
                 WHERE status = 'queued' AND available_at <= $1
                   AND (expires_at IS NULL OR expires_at > $1)
                 ORDER BY workspace_id",
                &[Arg::Time(now)],
            )
            .await
            .map_err(query("ready workspaces"))?;
        found.iter().map(|r| r.text("workspace_id")).collect()
    }

    async fn queue_depth(&self, workspace: &str) -> Result<u64, StoreError> {
        depth(&mut self.d.pool(), workspace).await
    }

    async fn queue_counts(&self) -> Result<Vec<(QueueStatus, u64)>, StoreError> {
        counts(
            &mut self.d.pool(),
            "SELECT status, COUNT(*) AS n FROM queue_items GROUP BY status",
        )
        .await
    }

    async fn active_counts(&self) -> Result<Vec<(QueueStatus, u64)>, StoreError> {
        counts(&mut self.d.pool(), &active_by_status()).await
    }

    async fn page_queue(
        &self,
        filter: QueueFilter<'_>,
        page: &PageRequest,
    ) -> Result<Page<QueueItem>, StoreError> {
        let mut w = Where::default();
        w.eq("workspace_id", filter.workspace.map(Arg::Text));
        w.eq("status", filter.status.map(|s| Arg::Text(s.as_str())));
        let newest_first = Order {
            time: None,
            id: "id",
            desc: true,
        };
        self.page_of(
            w,
            Listing {
                select: &format!("SELECT {QUEUE_COLUMNS} FROM queue_items"),
                order: newest_first,
                operation: "list queue",
            },
            page,
            rows::queue_item,
            |i| Cursor::Id(i.id),
        )
        .await
    }

    async fn get_queue_item(&self, id: i64) -> Result<Option<QueueItem>, StoreError> {
        let sql = format!("SELECT {QUEUE_COLUMNS} FROM queue_items WHERE id = $1");
        self.d
            .pool()
            .opt(&sql, &[Arg::I64(id)])
            .await
            .map_err(query("get queue item"))?
            .as_ref()
            .map(rows::queue_item)
            .transpose()
    }

    async fn dispatched_by(&self, node: &str) -> Result<Vec<QueueItem>, StoreError> {
        let sql = format!(
            "SELECT {QUEUE_COLUMNS} FROM queue_items WHERE status = 'dispatched' AND claimed_by = $1"
        );
        let found = self
            .d
            .pool()
            .all(&sql, &[Arg::Text(node)])
            .await
            .map_err(query("items dispatched by node"))?;
        rows::all(&found, rows::queue_item)
    }
}

/// `(status, n)` rows read as counts per status.
async fn counts(on: &mut impl Exec, sql: &str) -> Result<Vec<(QueueStatus, u64)>, StoreError> {
    let found = on.all(sql, &[]).await.map_err(query("queue counts"))?;
    found
        .iter()
        .map(|r| {
            let status = r.text("status")?;
            let parsed = QueueStatus::from_name(&status).ok_or(StoreError::Corrupt {
                table: "queue_items",
                column: "status".into(),
                value: status,
            })?;
            Ok((parsed, r.i64("n")?.max(0) as u64))
        })
        .collect()
}
