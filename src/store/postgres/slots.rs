//! Slot claims as one transaction of two statements, whatever the batch size.
//!
//! The first claims: the slots arrive as arrays (`UNNEST`), the rows still at
//! their slot are locked with `FOR UPDATE SKIP LOCKED` (a row another node is
//! claiming right now is skipped, never waited on, so two nodes cannot
//! deadlock on a batch), the compare-and-set moves each to its next slot, and
//! the run records of exactly the rows it changed are inserted. Under READ
//! COMMITTED the update re-checks `next_run_at = slot` against the latest
//! row version, so a slot another node claimed after our snapshot is lost
//! here. The second enqueues the won fires (the outbox), and the commit
//! makes claim, runs and fires durable together. The scheduler wakes the
//! drains once per tick, after all its rounds (`Driver::notify`).

use chrono::{DateTime, Utc};
use sqlx::PgPool;

use crate::store::schedules::SlotFire;
use crate::store::StoreError;

pub(super) async fn claim(
    pool: &PgPool,
    fires: &[SlotFire],
    max_attempts: u32,
    now: DateTime<Utc>,
) -> Result<Vec<i64>, StoreError> {
    let claims: Vec<_> = fires.iter().map(|f| &f.claim).collect();
    let ids: Vec<i64> = claims.iter().map(|c| c.schedule_id).collect();
    let slots: Vec<DateTime<Utc>> = claims.iter().map(|c| c.slot).collect();
    let nexts: Vec<DateTime<Utc>> = claims.iter().map(|c| c.next).collect();
    let keys: Vec<&str> = claims.iter().map(|c| c.key.as_str()).collect();
    let workspaces: Vec<&str> = claims.iter().map(|c| c.workspace.as_str()).collect();
    let missed: Vec<Option<&str>> = claims.iter().map(|c| c.missed.as_deref()).collect();
    let mut tx = pool
        .begin()
        .await
        .map_err(StoreError::query("claim slots: begin"))?;
    let won: Vec<i64> = sqlx::query_scalar(
        "WITH u AS (
             SELECT * FROM UNNEST($1::bigint[], $2::timestamptz[], $3::timestamptz[],
                                  $4::text[], $5::text[], $6::text[])
                 AS u(id, slot, next, key, workspace, missed)
         ),
         locked AS (
             SELECT s.id FROM schedules s JOIN u ON u.id = s.id AND s.next_run_at = u.slot
             ORDER BY s.id
             FOR UPDATE OF s SKIP LOCKED
         ),
         claimed AS (
             UPDATE schedules s SET next_run_at = u.next, last_run_at = u.slot,
                 run_count = s.run_count + 1,
                 last_status = CASE WHEN u.missed IS NULL THEN s.last_status ELSE 'missed' END,
                 last_error = CASE WHEN u.missed IS NULL THEN s.last_error ELSE u.missed END,
                 updated_at = $7
             FROM u
             WHERE s.id = u.id AND s.next_run_at = u.slot AND s.id IN (SELECT id FROM locked)
             RETURNING s.id, u.slot, u.key, u.workspace, u.missed
         )
         INSERT INTO schedule_runs (schedule_id, workspace_id, slot, manual, idempotency_key,
             status, started_at, finished_at, error)
         SELECT id, workspace, slot, FALSE, key,
                CASE WHEN missed IS NULL THEN 'dispatched' ELSE 'missed' END,
                $7, CASE WHEN missed IS NULL THEN NULL ELSE $7 END, missed
         FROM claimed
         ON CONFLICT DO NOTHING
         RETURNING schedule_id",
    )
    .bind(&ids)
    .bind(&slots)
    .bind(&nexts)
    .bind(&keys)
    .bind(&workspaces)
    .bind(&missed)
    .bind(now)
    .fetch_all(&mut *tx)
    .await
    .map_err(StoreError::query("claim slots"))?;
    let items: Vec<_> = fires
        .iter()
        .filter(|f| f.claim.missed.is_none() && won.contains(&f.claim.schedule_id))
        .filter_map(|f| f.item.as_ref())
        .collect();
    if !items.is_empty() {
        let col = |f: fn(&crate::model::queue::NewQueueItem) -> Option<String>| {
            items.iter().map(|i| f(i)).collect::<Vec<_>>()
        };
        let priorities: Vec<i32> = items.iter().map(|i| i.priority.0).collect();
        let expiries: Vec<Option<DateTime<Utc>>> =
            items.iter().map(|i| i.expires_at(now)).collect();
        sqlx::query(
            "WITH ins AS (
                 INSERT INTO queue_items (workspace_id, caller, priority, method, body,
                     idempotency_key, max_attempts, enqueued_at, available_at, expires_at,
                     updated_at)
                 SELECT w, c, p, m, b, k, $8, $9, $9, e, $9
                 FROM UNNEST($1::text[], $2::text[], $3::int[], $4::text[], $5::text[],
                             $6::text[], $7::timestamptz[])
                     WITH ORDINALITY AS u(w, c, p, m, b, k, e, ord)
                 ORDER BY ord
                 ON CONFLICT (workspace_id, idempotency_key) WHERE idempotency_key IS NOT NULL
                 DO NOTHING
                 RETURNING workspace_id
             )
             SELECT COUNT(*) FROM ins",
        )
        .bind(col(|i| Some(i.workspace.clone())))
        .bind(col(|i| i.caller.clone()))
        .bind(&priorities)
        .bind(col(|i| Some(i.method.clone())))
        .bind(col(|i| Some(i.body.clone())))
        .bind(col(|i| i.idempotency_key.clone()))
        .bind(&expiries)
        .bind(i32::try_from(max_attempts).unwrap_or(i32::MAX))
        .bind(now)
        .execute(&mut *tx)
        .await
        .map_err(StoreError::query("claim slots: enqueue fires"))?;
    }
    // Test builds: die with the claim written but not committed.
    fail::fail_point!("claim.before_commit", !won.is_empty(), |_| {
        std::process::abort()
    });
    tx.commit()
        .await
        .map_err(StoreError::query("claim slots: commit"))?;
    Ok(won)
}
