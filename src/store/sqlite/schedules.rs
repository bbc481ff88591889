//! SQLite implementation of the schedules store.
//!
//! SQLite has one writer, so a batch of slot claims is a transaction of
//! single-row compare-and-set updates: nothing interleaves inside it, and the
//! transaction costs one fsync however many slots it claims.

use std::str::FromStr;
use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::sqlite::SqliteRow;
use sqlx::{Row, SqliteConnection};

use super::{from_ms, to_ms, SqliteStore};
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

fn schedule(row: &SqliteRow) -> Result<Schedule, StoreError> {
    let dst: String = row.get("dst");
    let last_status: Option<String> = row.get("last_status");
    let at = |col: &str| row.get::<Option<i64>, _>(col).map(from_ms);
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
        next_run_at: at("next_run_at"),
        last_run_at: at("last_run_at"),
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
        created_at: from_ms(row.get("created_at")),
        updated_at: from_ms(row.get("updated_at")),
    })
}

fn run(row: &SqliteRow) -> Result<ScheduleRun, StoreError> {
    let status: String = row.get("status");
    Ok(ScheduleRun {
        id: row.get("id"),
        schedule_id: row.get("schedule_id"),
        workspace: row.get("workspace_id"),
        slot: from_ms(row.get("slot")),
        manual: row.get("manual"),
        key: row.get("idempotency_key"),
        status: RunStatus::parse(&status, "schedule_runs")?,
        started_at: from_ms(row.get("started_at")),
        finished_at: row.get::<Option<i64>, _>("finished_at").map(from_ms),
        error: row.get("error"),
        response_summary: row.get("response_summary"),
    })
}

fn schedules(rows: &[SqliteRow]) -> Result<Vec<Schedule>, StoreError> {
    rows.iter().map(schedule).collect()
}

async fn get_on(conn: &mut SqliteConnection, id: i64) -> Result<Option<Schedule>, StoreError> {
    let sql = format!("SELECT {COLUMNS} FROM schedules WHERE id = ?1");
    let row = sqlx::query(&sql)
        .bind(id)
        .fetch_optional(conn)
        .await
        .map_err(StoreError::query("get schedule"))?;
    row.as_ref().map(schedule).transpose()
}

/// Write one outcome inside the caller's transaction.
async fn finish_on(
    conn: &mut SqliteConnection,
    key: &str,
    outcome: &RunOutcome,
    now: DateTime<Utc>,
) -> Result<Option<FinishedRun>, StoreError> {
    let (status, error, summary) = match outcome {
        RunOutcome::Completed { summary, .. } => (RunStatus::Ok, None, Some(summary.as_str())),
        RunOutcome::Failed { error } => (RunStatus::Error, Some(error.as_str()), None),
        RunOutcome::Expired { reason } => (RunStatus::Skipped, Some(reason.as_str()), None),
    };
    let sql = format!(
        "UPDATE schedule_runs SET status = ?2, finished_at = ?3, error = ?4, response_summary = ?5
         WHERE idempotency_key = ?1 AND status = 'dispatched'
         RETURNING {RUN_COLUMNS}"
    );
    let Some(row) = sqlx::query(&sql)
        .bind(key)
        .bind(status.as_str())
        .bind(to_ms(now))
        .bind(error)
        .bind(summary)
        .fetch_optional(&mut *conn)
        .await
        .map_err(StoreError::query("finish run"))?
    else {
        return Ok(None);
    };
    let mut finished = run(&row)?;
    let (count, name): (i32, String) = match outcome {
        RunOutcome::Completed { empty: true, .. } => {
            let row = sqlx::query(
                "UPDATE schedules SET consecutive_empty_runs = consecutive_empty_runs + 1,
                     last_status = CASE WHEN consecutive_empty_runs + 1 >= ?2 THEN 'stale' ELSE 'ok' END,
                     last_error = CASE WHEN consecutive_empty_runs + 1 >= ?2
                         THEN 'empty response ' || (consecutive_empty_runs + 1) || ' times in a row'
                         ELSE NULL END,
                     updated_at = ?3
                 WHERE id = ?1 RETURNING consecutive_empty_runs, name",
            )
            .bind(finished.schedule_id)
            .bind(STALE_AFTER)
            .bind(to_ms(now))
            .fetch_one(&mut *conn)
            .await
            .map_err(StoreError::query("finish run: count empty response"))?;
            (row.get(0), row.get(1))
        }
        _ => {
            let row = sqlx::query(
                "UPDATE schedules SET consecutive_empty_runs = CASE WHEN ?2 = 'ok' THEN 0
                         ELSE consecutive_empty_runs END,
                     last_status = ?2, last_error = ?3, updated_at = ?4
                 WHERE id = ?1 RETURNING consecutive_empty_runs, name",
            )
            .bind(finished.schedule_id)
            .bind(status.as_str())
            .bind(error)
            .bind(to_ms(now))
            .fetch_one(&mut *conn)
            .await
            .map_err(StoreError::query("finish run: schedule status"))?;
            (row.get(0), row.get(1))
        }
    };
    if matches!(outcome, RunOutcome::Completed { empty: true, .. }) && count >= STALE_AFTER {
        let error = format!("empty response {count} times in a row");
        sqlx::query("UPDATE schedule_runs SET status = 'stale', error = ?2 WHERE id = ?1")
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
impl ScheduleStore for SqliteStore {
    async fn create_schedule(
        &self,
        new: &NewSchedule,
        now: DateTime<Utc>,
    ) -> Result<Schedule, ScheduleError> {
        let p = PreparedSchedule::create(new, now)?;
        let sql = format!(
            "INSERT INTO schedules (workspace_id, name, spec, timezone, dst, prompt, enabled,
                 next_run_at, starting_deadline_ms, defer_window_ms, created_at, updated_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?11)
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
            .bind(p.next_run_at.map(to_ms))
            .bind(p.starting_deadline_ms)
            .bind(p.defer_window_ms)
            .bind(to_ms(now))
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
        // IMMEDIATE: take the write lock before reading, so the read-then-write
        // waits for other writers instead of failing to upgrade its lock.
        let mut tx = self
            .pool
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(StoreError::query("update schedule: begin"))?;
        let current = get_on(&mut tx, id)
            .await?
            .ok_or(ScheduleError::NotFound(id))?;
        let p = PreparedSchedule::update(&current, patch, now)?;
        let sql = format!(
            "UPDATE schedules SET workspace_id = ?2, name = ?3, spec = ?4, timezone = ?5, dst = ?6,
                 prompt = ?7, enabled = ?8, next_run_at = ?9, starting_deadline_ms = ?10,
                 defer_window_ms = ?11, invalid = 0, invalid_error = NULL, updated_at = ?12
             WHERE id = ?1 RETURNING {COLUMNS}"
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
            .bind(p.next_run_at.map(to_ms))
            .bind(p.starting_deadline_ms)
            .bind(p.defer_window_ms)
            .bind(to_ms(now))
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
        let done = sqlx::query("DELETE FROM schedules WHERE id = ?1")
            .bind(id)
            .execute(&self.pool)
            .await
            .map_err(StoreError::query("delete schedule"))?;
        Ok(done.rows_affected() > 0)
    }

    async fn get_schedule(&self, id: i64) -> Result<Option<Schedule>, StoreError> {
        let mut conn = self
            .pool
            .acquire()
            .await
            .map_err(StoreError::query("get schedule: connect"))?;
        get_on(&mut conn, id).await
    }

    async fn list_schedules(&self, workspace: Option<&str>) -> Result<Vec<Schedule>, StoreError> {
        let sql = format!(
            "SELECT {COLUMNS} FROM schedules WHERE (?1 IS NULL OR workspace_id = ?1) ORDER BY id"
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
             WHERE enabled = 1 AND invalid = 0 AND next_run_at IS NOT NULL AND next_run_at <= ?1
             ORDER BY next_run_at, id LIMIT ?2"
        );
        let rows = sqlx::query(&sql)
            .bind(to_ms(now))
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
        let mut tx = self
            .pool
            .begin()
            .await
            .map_err(StoreError::query("claim slots: begin"))?;
        let mut won = Vec::with_capacity(claims.len());
        for c in claims {
            let claimed = sqlx::query(
                "UPDATE schedules SET next_run_at = ?3, last_run_at = ?2, run_count = run_count + 1,
                     last_status = CASE WHEN ?5 IS NULL THEN last_status ELSE 'missed' END,
                     last_error = CASE WHEN ?5 IS NULL THEN last_error ELSE ?5 END,
                     updated_at = ?4
                 WHERE id = ?1 AND next_run_at = ?2",
            )
            .bind(c.schedule_id)
            .bind(to_ms(c.slot))
            .bind(to_ms(c.next))
            .bind(to_ms(now))
            .bind(&c.missed)
            .execute(&mut *tx)
            .await
            .map_err(StoreError::query("claim slot"))?;
            if claimed.rows_affected() == 0 {
                continue;
            }
            let (status, finished) = match &c.missed {
                Some(_) => (RunStatus::Missed, Some(to_ms(now))),
                None => (RunStatus::Dispatched, None),
            };
            let recorded = sqlx::query(
                "INSERT INTO schedule_runs (schedule_id, workspace_id, slot, manual,
                     idempotency_key, status, started_at, finished_at, error)
                 VALUES (?1, ?2, ?3, 0, ?4, ?5, ?6, ?7, ?8)
                 ON CONFLICT DO NOTHING",
            )
            .bind(c.schedule_id)
            .bind(&c.workspace)
            .bind(to_ms(c.slot))
            .bind(&c.key)
            .bind(status.as_str())
            .bind(to_ms(now))
            .bind(finished)
            .bind(&c.missed)
            .execute(&mut *tx)
            .await
            .map_err(StoreError::query("claim slot: record run"))?;
            // A slot fired before (the schedule was edited back onto it) is
            // not fired twice.
            if recorded.rows_affected() > 0 {
                won.push(c.schedule_id);
            }
        }
        tx.commit()
            .await
            .map_err(StoreError::query("claim slots: commit"))?;
        Ok(won)
    }

    async fn mark_schedule_invalid(
        &self,
        seen: &Schedule,
        error: &str,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE schedules SET invalid = 1, invalid_error = ?5, last_error = ?5, updated_at = ?6
             WHERE id = ?1 AND spec = ?2 AND timezone = ?3 AND dst = ?4 AND invalid = 0",
        )
        .bind(seen.id)
        .bind(&seen.spec)
        .bind(&seen.timezone)
        .bind(seen.dst.to_string())
        .bind(error)
        .bind(to_ms(now))
        .execute(&self.pool)
        .await
        .map_err(StoreError::query("mark schedule invalid"))?;
        Ok(done.rows_affected() > 0)
    }

    async fn schedules_missing_next(&self) -> Result<Vec<Schedule>, StoreError> {
        let sql = format!(
            "SELECT {COLUMNS} FROM schedules
             WHERE enabled = 1 AND next_run_at IS NULL AND invalid = 0 ORDER BY id"
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
            "UPDATE schedules SET next_run_at = ?2, updated_at = ?3
             WHERE id = ?1 AND next_run_at IS NULL",
        )
        .bind(id)
        .bind(to_ms(next))
        .bind(to_ms(now))
        .execute(&self.pool)
        .await
        .map_err(StoreError::query("repair next run"))?;
        Ok(done.rows_affected() > 0)
    }

    async fn earliest_next_run(&self) -> Result<Option<DateTime<Utc>>, StoreError> {
        let ms: Option<i64> = sqlx::query_scalar(
            "SELECT MIN(next_run_at) FROM schedules WHERE enabled = 1 AND invalid = 0",
        )
        .fetch_one(&self.pool)
        .await
        .map_err(StoreError::query("earliest next run"))?;
        Ok(ms.map(from_ms))
    }

    async fn insert_manual_run(
        &self,
        r: &ManualRun,
        now: DateTime<Utc>,
    ) -> Result<ScheduleRun, StoreError> {
        let sql = format!(
            "INSERT INTO schedule_runs (schedule_id, workspace_id, slot, manual, idempotency_key,
                 status, started_at)
             VALUES (?1, ?2, ?3, 1, ?4, 'dispatched', ?5)
             RETURNING {RUN_COLUMNS}"
        );
        let row = sqlx::query(&sql)
            .bind(r.schedule_id)
            .bind(&r.workspace)
            .bind(to_ms(r.slot))
            .bind(&r.key)
            .bind(to_ms(now))
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
            "SELECT {RUN_COLUMNS} FROM schedule_runs WHERE schedule_id = ?1
             ORDER BY slot DESC, id DESC LIMIT ?2"
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
        let sql = format!("SELECT {RUN_COLUMNS} FROM schedule_runs WHERE idempotency_key = ?1");
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
             ORDER BY r.started_at LIMIT ?1";
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
        let cols = RUN_COLUMNS
            .split(", ")
            .map(|c| format!("r.{c}"))
            .collect::<Vec<_>>()
            .join(", ");
        let sql = format!(
            "SELECT {cols} FROM schedule_runs r
             WHERE r.status = 'dispatched' AND r.started_at < ?1
               AND NOT EXISTS (SELECT 1 FROM queue_items q
                   WHERE q.workspace_id = r.workspace_id AND q.idempotency_key = r.idempotency_key)
             ORDER BY r.started_at LIMIT ?2"
        );
        let rows = sqlx::query(&sql)
            .bind(to_ms(started_before))
            .bind(i64::from(limit))
            .fetch_all(&self.pool)
            .await
            .map_err(StoreError::query("orphaned runs"))?;
        rows.iter().map(run).collect()
    }
}
