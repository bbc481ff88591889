//! PostgreSQL implementation of the schedules store.
//!
//! Several nodes read the same due schedules and race to claim them. A batch
//! of claims is one statement: the slots arrive as arrays (`UNNEST`), the rows
//! still at their slot are locked with `FOR UPDATE SKIP LOCKED` (a row another
//! node is claiming right now is skipped, never waited on, so two nodes cannot
//! deadlock on a batch), the compare-and-set update moves each to its next
//! slot, and the run records of exactly the rows it changed are inserted. Under
//! READ COMMITTED the update re-checks `next_run_at = slot` against the latest
//! row version, so a slot another node claimed after our snapshot is lost here.

use std::str::FromStr;
use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::postgres::PgRow;
use sqlx::{PgConnection, Row};

use super::PgStore;
use crate::schedule::DstPolicy;
use crate::store::schedules::{
    FinishedRun, ManualRun, NewSchedule, PreparedSchedule, RunOutcome, RunStatus, Schedule,
    ScheduleError, SchedulePatch, ScheduleRun, ScheduleStore, SlotClaim, STALE_AFTER,
};
use crate::store::{QueueItem, StoreError};

const COLUMNS: &str = "id, workspace_id, name, spec, timezone, dst, prompt, enabled, next_run_at, \
    last_run_at, run_count, last_status, last_error, consecutive_empty_runs, starting_deadline_ms, \
    defer_window_ms, invalid, invalid_error, created_at, updated_at";

const RUN_COLUMNS: &str = "id, schedule_id, workspace_id, slot, manual, idempotency_key, status, \
    started_at, finished_at, error, response_summary";

fn schedule(row: &PgRow) -> Result<Schedule, StoreError> {
    let dst: String = row.get("dst");
    let last_status: Option<String> = row.get("last_status");
    let ms = |col: &str| Duration::from_millis(row.get::<i64, _>(col).max(0) as u64);
    Ok(Schedule {
        id: row.get("id"),
        workspace: row.get("workspace_id"),
        name: row.get("name"),
        spec: row.get("spec"),
        timezone: row.get("timezone"),
        dst: DstPolicy::from_str(&dst).map_err(|_| StoreError::Corrupt {
            table: "schedules",
            column: "dst",
            value: dst.clone(),
        })?,
        prompt: row.get("prompt"),
        enabled: row.get("enabled"),
        next_run_at: row.get("next_run_at"),
        last_run_at: row.get("last_run_at"),
        run_count: row.get("run_count"),
        last_status: last_status
            .map(|s| RunStatus::parse(&s, "schedules"))
            .transpose()?,
        last_error: row.get("last_error"),
        consecutive_empty_runs: row.get("consecutive_empty_runs"),
        starting_deadline: ms("starting_deadline_ms"),
        defer_window: ms("defer_window_ms"),
        invalid: row.get("invalid"),
        invalid_error: row.get("invalid_error"),
        created_at: row.get("created_at"),
        updated_at: row.get("updated_at"),
    })
}

fn run(row: &PgRow) -> Result<ScheduleRun, StoreError> {
    let status: String = row.get("status");
    Ok(ScheduleRun {
        id: row.get("id"),
        schedule_id: row.get("schedule_id"),
        workspace: row.get("workspace_id"),
        slot: row.get("slot"),
        manual: row.get("manual"),
        key: row.get("idempotency_key"),
        status: RunStatus::parse(&status, "schedule_runs")?,
        started_at: row.get("started_at"),
        finished_at: row.get("finished_at"),
        error: row.get("error"),
        response_summary: row.get("response_summary"),
    })
}

fn schedules(rows: &[PgRow]) -> Result<Vec<Schedule>, StoreError> {
    rows.iter().map(schedule).collect()
}

fn prefixed(columns: &str, alias: &str) -> String {
    columns
        .split(", ")
        .map(|c| format!("{alias}.{c}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Write one outcome inside the caller's transaction.
async fn finish_on(
    conn: &mut PgConnection,
    key: &str,
    outcome: &RunOutcome,
    now: DateTime<Utc>,
) -> Result<Option<FinishedRun>, StoreError> {
    let (status, error, summary) = match outcome {
        RunOutcome::Completed { summary, .. } => (RunStatus::Ok, None, Some(summary.as_str())),
        RunOutcome::Failed { error } => (RunStatus::Error, Some(error.as_str()), None),
        RunOutcome::Expired { reason } => (RunStatus::Skipped, Some(reason.as_str()), None),
    };
    // Changing the status is what claims the write: a second writer (another
    // node reconciling) re-checks `status = 'dispatched'` after our commit.
    let sql = format!(
        "UPDATE schedule_runs SET status = $2, finished_at = $3, error = $4, response_summary = $5
         WHERE idempotency_key = $1 AND status = 'dispatched'
         RETURNING {RUN_COLUMNS}"
    );
    let Some(row) = sqlx::query(&sql)
        .bind(key)
        .bind(status.as_str())
        .bind(now)
        .bind(error)
        .bind(summary)
        .fetch_optional(&mut *conn)
        .await
        .map_err(StoreError::query("finish run"))?
    else {
        return Ok(None);
    };
    let mut finished = run(&row)?;
    let empty = matches!(outcome, RunOutcome::Completed { empty: true, .. });
    let row = if empty {
        sqlx::query(
            "UPDATE schedules SET consecutive_empty_runs = consecutive_empty_runs + 1,
                 last_status = CASE WHEN consecutive_empty_runs + 1 >= $2 THEN 'stale' ELSE 'ok' END,
                 last_error = CASE WHEN consecutive_empty_runs + 1 >= $2
                     THEN 'empty response ' || (consecutive_empty_runs + 1) || ' times in a row'
                     ELSE NULL END,
                 updated_at = $3
             WHERE id = $1 RETURNING consecutive_empty_runs, name",
        )
        .bind(finished.schedule_id)
        .bind(STALE_AFTER)
        .bind(now)
        .fetch_one(&mut *conn)
        .await
        .map_err(StoreError::query("finish run: count empty response"))?
    } else {
        sqlx::query(
            "UPDATE schedules SET consecutive_empty_runs = CASE WHEN $2 = 'ok' THEN 0
                     ELSE consecutive_empty_runs END,
                 last_status = $2, last_error = $3, updated_at = $4
             WHERE id = $1 RETURNING consecutive_empty_runs, name",
        )
        .bind(finished.schedule_id)
        .bind(status.as_str())
        .bind(error)
        .bind(now)
        .fetch_one(&mut *conn)
        .await
        .map_err(StoreError::query("finish run: schedule status"))?
    };
    let count: i32 = row.get(0);
    let name: String = row.get(1);
    if empty && count >= STALE_AFTER {
        let error = format!("empty response {count} times in a row");
        sqlx::query("UPDATE schedule_runs SET status = 'stale', error = $2 WHERE id = $1")
            .bind(finished.id)
            .bind(&error)
            .execute(&mut *conn)
            .await
            .map_err(StoreError::query("finish run: mark stale"))?;
        finished.status = RunStatus::Stale;
        finished.error = Some(error);
    }
    Ok(Some(FinishedRun {
        run: finished,
        schedule_name: name,
        consecutive_empty_runs: count,
    }))
}

#[async_trait::async_trait]
impl ScheduleStore for PgStore {
    async fn create_schedule(
        &self,
        new: &NewSchedule,
        now: DateTime<Utc>,
    ) -> Result<Schedule, ScheduleError> {
        let p = PreparedSchedule::create(new, now)?;
        let sql = format!(
            "INSERT INTO schedules (workspace_id, name, spec, timezone, dst, prompt, enabled,
                 next_run_at, starting_deadline_ms, defer_window_ms, created_at, updated_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $11)
             RETURNING {COLUMNS}"
        );
        let row = sqlx::query(&sql)
            .bind(&p.workspace)
            .bind(&p.name)
            .bind(&p.spec)
            .bind(&p.timezone)
            .bind(p.dst.to_string())
            .bind(&p.prompt)
            .bind(p.enabled)
            .bind(p.next_run_at)
            .bind(p.starting_deadline_ms)
            .bind(p.defer_window_ms)
            .bind(now)
            .fetch_one(&self.pool)
            .await
            .map_err(StoreError::query("create schedule"))?;
        Ok(schedule(&row)?)
    }

    async fn update_schedule(
        &self,
        id: i64,
        patch: &SchedulePatch,
        now: DateTime<Utc>,
    ) -> Result<Schedule, ScheduleError> {
        let mut tx = self
            .pool
            .begin()
            .await
            .map_err(StoreError::query("update schedule: begin"))?;
        // Locked so a concurrent edit cannot interleave between read and write.
        let sql = format!("SELECT {COLUMNS} FROM schedules WHERE id = $1 FOR UPDATE");
        let current = sqlx::query(&sql)
            .bind(id)
            .fetch_optional(&mut *tx)
            .await
            .map_err(StoreError::query("update schedule: read"))?
            .as_ref()
            .map(schedule)
            .transpose()?
            .ok_or(ScheduleError::NotFound(id))?;
        let p = PreparedSchedule::update(&current, patch, now)?;
        let sql = format!(
            "UPDATE schedules SET workspace_id = $2, name = $3, spec = $4, timezone = $5, dst = $6,
                 prompt = $7, enabled = $8, next_run_at = $9, starting_deadline_ms = $10,
                 defer_window_ms = $11, invalid = FALSE, invalid_error = NULL, updated_at = $12
             WHERE id = $1 RETURNING {COLUMNS}"
        );
        let row = sqlx::query(&sql)
            .bind(id)
            .bind(&p.workspace)
            .bind(&p.name)
            .bind(&p.spec)
            .bind(&p.timezone)
            .bind(p.dst.to_string())
            .bind(&p.prompt)
            .bind(p.enabled)
            .bind(p.next_run_at)
            .bind(p.starting_deadline_ms)
            .bind(p.defer_window_ms)
            .bind(now)
            .fetch_one(&mut *tx)
            .await
            .map_err(StoreError::query("update schedule"))?;
        let updated = schedule(&row)?;
        tx.commit()
            .await
            .map_err(StoreError::query("update schedule: commit"))?;
        Ok(updated)
    }

    async fn delete_schedule(&self, id: i64) -> Result<bool, StoreError> {
        let done = sqlx::query("DELETE FROM schedules WHERE id = $1")
            .bind(id)
            .execute(&self.pool)
            .await
            .map_err(StoreError::query("delete schedule"))?;
        Ok(done.rows_affected() > 0)
    }

    async fn get_schedule(&self, id: i64) -> Result<Option<Schedule>, StoreError> {
        let sql = format!("SELECT {COLUMNS} FROM schedules WHERE id = $1");
        let row = sqlx::query(&sql)
            .bind(id)
            .fetch_optional(&self.pool)
            .await
            .map_err(StoreError::query("get schedule"))?;
        row.as_ref().map(schedule).transpose()
    }

    async fn list_schedules(&self, workspace: Option<&str>) -> Result<Vec<Schedule>, StoreError> {
        let sql = format!(
            "SELECT {COLUMNS} FROM schedules WHERE ($1::text IS NULL OR workspace_id = $1)
             ORDER BY id"
        );
        let rows = sqlx::query(&sql)
            .bind(workspace)
            .fetch_all(&self.pool)
            .await
            .map_err(StoreError::query("list schedules"))?;
        schedules(&rows)
    }

    async fn due_schedules(
        &self,
        now: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<Schedule>, StoreError> {
        let sql = format!(
            "SELECT {COLUMNS} FROM schedules
             WHERE enabled AND NOT invalid AND next_run_at <= $1
             ORDER BY next_run_at, id LIMIT $2"
        );
        let rows = sqlx::query(&sql)
            .bind(now)
            .bind(i64::from(limit))
            .fetch_all(&self.pool)
            .await
            .map_err(StoreError::query("due schedules"))?;
        schedules(&rows)
    }

    async fn claim_slots(
        &self,
        claims: &[SlotClaim],
        now: DateTime<Utc>,
    ) -> Result<Vec<i64>, StoreError> {
        if claims.is_empty() {
            return Ok(Vec::new());
        }
        let ids: Vec<i64> = claims.iter().map(|c| c.schedule_id).collect();
        let slots: Vec<DateTime<Utc>> = claims.iter().map(|c| c.slot).collect();
        let nexts: Vec<DateTime<Utc>> = claims.iter().map(|c| c.next).collect();
        let keys: Vec<String> = claims.iter().map(|c| c.key.clone()).collect();
        let workspaces: Vec<String> = claims.iter().map(|c| c.workspace.clone()).collect();
        let missed: Vec<Option<String>> = claims.iter().map(|c| c.missed.clone()).collect();
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
        .fetch_all(&self.pool)
        .await
        .map_err(StoreError::query("claim slots"))?;
        Ok(won)
    }

    async fn mark_schedule_invalid(
        &self,
        seen: &Schedule,
        error: &str,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE schedules SET invalid = TRUE, invalid_error = $5, last_error = $5,
                 updated_at = $6
             WHERE id = $1 AND spec = $2 AND timezone = $3 AND dst = $4 AND NOT invalid",
        )
        .bind(seen.id)
        .bind(&seen.spec)
        .bind(&seen.timezone)
        .bind(seen.dst.to_string())
        .bind(error)
        .bind(now)
        .execute(&self.pool)
        .await
        .map_err(StoreError::query("mark schedule invalid"))?;
        Ok(done.rows_affected() > 0)
    }

    async fn schedules_missing_next(&self) -> Result<Vec<Schedule>, StoreError> {
        let sql = format!(
            "SELECT {COLUMNS} FROM schedules
             WHERE enabled AND next_run_at IS NULL AND NOT invalid ORDER BY id"
        );
        let rows = sqlx::query(&sql)
            .fetch_all(&self.pool)
            .await
            .map_err(StoreError::query("schedules missing next run"))?;
        schedules(&rows)
    }

    async fn repair_next_run(
        &self,
        id: i64,
        next: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE schedules SET next_run_at = $2, updated_at = $3
             WHERE id = $1 AND next_run_at IS NULL",
        )
        .bind(id)
        .bind(next)
        .bind(now)
        .execute(&self.pool)
        .await
        .map_err(StoreError::query("repair next run"))?;
        Ok(done.rows_affected() > 0)
    }

    async fn earliest_next_run(&self) -> Result<Option<DateTime<Utc>>, StoreError> {
        sqlx::query_scalar("SELECT MIN(next_run_at) FROM schedules WHERE enabled AND NOT invalid")
            .fetch_one(&self.pool)
            .await
            .map_err(StoreError::query("earliest next run"))
    }

    async fn insert_manual_run(
        &self,
        r: &ManualRun,
        now: DateTime<Utc>,
    ) -> Result<ScheduleRun, StoreError> {
        let sql = format!(
            "INSERT INTO schedule_runs (schedule_id, workspace_id, slot, manual, idempotency_key,
                 status, started_at)
             VALUES ($1, $2, $3, TRUE, $4, 'dispatched', $5)
             RETURNING {RUN_COLUMNS}"
        );
        let row = sqlx::query(&sql)
            .bind(r.schedule_id)
            .bind(&r.workspace)
            .bind(r.slot)
            .bind(&r.key)
            .bind(now)
            .fetch_one(&self.pool)
            .await
            .map_err(StoreError::query("insert manual run"))?;
        run(&row)
    }

    async fn finish_runs(
        &self,
        outcomes: &[(String, RunOutcome)],
        now: DateTime<Utc>,
    ) -> Result<Vec<FinishedRun>, StoreError> {
        if outcomes.is_empty() {
            return Ok(Vec::new());
        }
        let mut tx = self
            .pool
            .begin()
            .await
            .map_err(StoreError::query("finish runs: begin"))?;
        let mut out = Vec::new();
        for (key, outcome) in outcomes {
            if let Some(done) = finish_on(&mut tx, key, outcome, now).await? {
                out.push(done);
            }
        }
        tx.commit()
            .await
            .map_err(StoreError::query("finish runs: commit"))?;
        Ok(out)
    }

    async fn list_runs(
        &self,
        schedule_id: i64,
        limit: u32,
    ) -> Result<Vec<ScheduleRun>, StoreError> {
        let sql = format!(
            "SELECT {RUN_COLUMNS} FROM schedule_runs WHERE schedule_id = $1
             ORDER BY slot DESC, id DESC LIMIT $2"
        );
        let rows = sqlx::query(&sql)
            .bind(schedule_id)
            .bind(i64::from(limit))
            .fetch_all(&self.pool)
            .await
            .map_err(StoreError::query("list runs"))?;
        rows.iter().map(run).collect()
    }

    async fn get_run_by_key(&self, key: &str) -> Result<Option<ScheduleRun>, StoreError> {
        let sql = format!("SELECT {RUN_COLUMNS} FROM schedule_runs WHERE idempotency_key = $1");
        let row = sqlx::query(&sql)
            .bind(key)
            .fetch_optional(&self.pool)
            .await
            .map_err(StoreError::query("get run by key"))?;
        row.as_ref().map(run).transpose()
    }

    async fn settled_pending_runs(
        &self,
        limit: u32,
    ) -> Result<Vec<(ScheduleRun, QueueItem)>, StoreError> {
        let sql = "SELECT r.idempotency_key AS run_key, q.id AS queue_id FROM schedule_runs r
             JOIN queue_items q
               ON q.workspace_id = r.workspace_id AND q.idempotency_key = r.idempotency_key
             WHERE r.status = 'dispatched' AND q.status IN ('completed', 'failed', 'expired')
             ORDER BY r.started_at LIMIT $1";
        let pairs = sqlx::query(sql)
            .bind(i64::from(limit))
            .fetch_all(&self.pool)
            .await
            .map_err(StoreError::query("settled pending runs"))?;
        let mut out = Vec::with_capacity(pairs.len());
        for pair in &pairs {
            let key: String = pair.get("run_key");
            let queue_id: i64 = pair.get("queue_id");
            let (Some(r), Some(item)) = (
                self.get_run_by_key(&key).await?,
                crate::store::QueueStore::get_queue_item(self, queue_id).await?,
            ) else {
                continue;
            };
            out.push((r, item));
        }
        Ok(out)
    }

    async fn orphaned_runs(
        &self,
        started_before: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<ScheduleRun>, StoreError> {
        let sql = format!(
            "SELECT {} FROM schedule_runs r
             WHERE r.status = 'dispatched' AND r.started_at < $1
               AND NOT EXISTS (SELECT 1 FROM queue_items q
                   WHERE q.workspace_id = r.workspace_id AND q.idempotency_key = r.idempotency_key)
             ORDER BY r.started_at LIMIT $2",
            prefixed(RUN_COLUMNS, "r")
        );
        let rows = sqlx::query(&sql)
            .bind(started_before)
            .bind(i64::from(limit))
            .fetch_all(&self.pool)
            .await
            .map_err(StoreError::query("orphaned runs"))?;
        rows.iter().map(run).collect()
    }
}
