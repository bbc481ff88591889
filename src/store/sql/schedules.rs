//! The schedules' statements: validated writes, the due query, the
//! compare-and-set claim with its run record and queue item, and run outcomes
//! as the model judges them.

use chrono::{DateTime, Utc};

use super::keyset::{Listing, Order, Where};
use super::queue::insert_or_find;
use super::rows::{self, RUN_COLUMNS, SCHEDULE_COLUMNS};
use super::{query, Arg, Dialect, Exec, Row, SqlStore, TxMode};
use crate::model::page::{Cursor, Page, PageRequest};
use crate::model::queue::NewQueueItem;
use crate::model::run::{ManualRun, ScheduleRun};
use crate::model::schedule::{NewSchedule, PreparedSchedule, Schedule, SchedulePatch};
use crate::store::schedules::{ScheduleError, SlotFire};
use crate::store::{ScheduleStore, StoreError};

fn prepared_args(p: &PreparedSchedule) -> Vec<Arg<'_>> {
    vec![
        Arg::Text(&p.workspace),
        Arg::Text(&p.name),
        Arg::Text(&p.spec),
        Arg::Text(&p.timezone),
        Arg::Text(p.dst.as_str()),
        Arg::Text(&p.prompt),
        Arg::Bool(p.enabled),
        Arg::OptTime(p.next_run_at),
        Arg::I64(p.starting_deadline_ms),
        Arg::I64(p.defer_window_ms),
    ]
}

async fn get_on<E: Exec>(on: &mut E, id: i64, lock: &str) -> Result<Option<Schedule>, StoreError> {
    let sql = format!("SELECT {SCHEDULE_COLUMNS} FROM schedules WHERE id = $1{lock}");
    on.opt(&sql, &[Arg::I64(id)])
        .await
        .map_err(query("get schedule"))?
        .as_ref()
        .map(rows::schedule)
        .transpose()
}

#[async_trait::async_trait]
impl<D: Dialect> ScheduleStore for SqlStore<D> {
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
             RETURNING {SCHEDULE_COLUMNS}"
        );
        let mut args = prepared_args(&p);
        args.push(Arg::Time(now));
        let row = self
            .d
            .pool()
            .opt(&sql, &args)
            .await
            .map_err(query("create schedule"))?
            .ok_or(StoreError::Contended {
                operation: "create schedule",
                id: p.name.clone(),
            })?;
        Ok(rows::schedule(&row)?)
    }

    async fn update_schedule(
        &self,
        id: i64,
        patch: &SchedulePatch,
        now: DateTime<Utc>,
    ) -> Result<Schedule, ScheduleError> {
        let mut tx = self
            .d
            .begin(TxMode::Write)
            .await
            .map_err(query("update schedule: begin"))?;
        // Locked (or, on SQLite, under the write lock) so a concurrent edit
        // cannot interleave between the read and the write.
        let current = get_on(&mut tx, id, D::LOCK_ROWS)
            .await?
            .ok_or(ScheduleError::NotFound(id))?;
        let p = PreparedSchedule::update(&current, patch, now)?;
        let sql = format!(
            "UPDATE schedules SET workspace_id = $1, name = $2, spec = $3, timezone = $4, dst = $5,
                 prompt = $6, enabled = $7, next_run_at = $8, starting_deadline_ms = $9,
                 defer_window_ms = $10, invalid = FALSE, invalid_error = NULL, updated_at = $11
             WHERE id = $12 RETURNING {SCHEDULE_COLUMNS}"
        );
        let mut args = prepared_args(&p);
        args.push(Arg::Time(now));
        args.push(Arg::I64(id));
        let row = tx
            .opt(&sql, &args)
            .await
            .map_err(query("update schedule"))?
            .ok_or(ScheduleError::NotFound(id))?;
        let updated = rows::schedule(&row)?;
        D::commit(tx)
            .await
            .map_err(query("update schedule: commit"))?;
        Ok(updated)
    }

    async fn delete_schedule(&self, id: i64) -> Result<bool, StoreError> {
        let n = self
            .d
            .pool()
            .run("DELETE FROM schedules WHERE id = $1", &[Arg::I64(id)])
            .await
            .map_err(query("delete schedule"))?;
        Ok(n > 0)
    }

    async fn get_schedule(&self, id: i64) -> Result<Option<Schedule>, StoreError> {
        get_on(&mut self.d.pool(), id, "").await
    }

    async fn list_schedules(&self, workspace: Option<&str>) -> Result<Vec<Schedule>, StoreError> {
        let sql = format!(
            "SELECT {SCHEDULE_COLUMNS} FROM schedules
             WHERE (CAST($1 AS TEXT) IS NULL OR workspace_id = $1) ORDER BY id"
        );
        let found = self
            .d
            .pool()
            .all(&sql, &[Arg::OptText(workspace)])
            .await
            .map_err(query("list schedules"))?;
        rows::all(&found, rows::schedule)
    }

    async fn page_schedules(
        &self,
        workspace: Option<&str>,
        page: &PageRequest,
    ) -> Result<Page<Schedule>, StoreError> {
        let mut w = Where::default();
        w.eq("workspace_id", workspace.map(Arg::Text));
        let by_id = Order {
            time: None,
            id: "id",
            desc: false,
        };
        self.page_of(
            w,
            Listing {
                select: &format!("SELECT {SCHEDULE_COLUMNS} FROM schedules"),
                order: by_id,
                operation: "page schedules",
            },
            page,
            rows::schedule,
            |s| Cursor::Id(s.id),
        )
        .await
    }

    async fn due_schedules(
        &self,
        now: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<Schedule>, StoreError> {
        let sql = format!(
            "SELECT {SCHEDULE_COLUMNS} FROM schedules
             WHERE enabled AND NOT invalid AND next_run_at IS NOT NULL AND next_run_at <= $1
             ORDER BY next_run_at, workspace_id, id LIMIT $2"
        );
        let found = self
            .d
            .pool()
            .all(&sql, &[Arg::Time(now), Arg::I64(i64::from(limit))])
            .await
            .map_err(query("due schedules"))?;
        rows::all(&found, rows::schedule)
    }

    async fn claim_slots(
        &self,
        fires: &[SlotFire],
        max_attempts: u32,
        now: DateTime<Utc>,
    ) -> Result<Vec<i64>, StoreError> {
        if fires.is_empty() {
            return Ok(Vec::new());
        }
        self.d.claim_slots(fires, max_attempts, now).await
    }

    async fn fire_manual(
        &self,
        r: &ManualRun,
        item: &NewQueueItem,
        max_attempts: u32,
        now: DateTime<Utc>,
    ) -> Result<ScheduleRun, StoreError> {
        let mut tx = self
            .d
            .begin(TxMode::Write)
            .await
            .map_err(query("fire now: begin"))?;
        let sql = format!(
            "INSERT INTO schedule_runs (schedule_id, workspace_id, slot, manual, idempotency_key,
                 status, started_at)
             VALUES ($1, $2, $3, TRUE, $4, 'dispatched', $5)
             RETURNING {RUN_COLUMNS}"
        );
        let row = tx
            .opt(
                &sql,
                &[
                    Arg::I64(r.schedule_id),
                    Arg::Text(&r.workspace),
                    Arg::Time(r.slot),
                    Arg::Text(&r.key),
                    Arg::Time(now),
                ],
            )
            .await
            .map_err(query("fire now: record run"))?
            .ok_or(StoreError::Contended {
                operation: "fire now",
                id: r.key.clone(),
            })?;
        let run = rows::run(&row)?;
        insert_or_find(&mut tx, item, max_attempts, now).await?;
        D::commit(tx).await.map_err(query("fire now: commit"))?;
        Ok(run)
    }

    async fn mark_schedule_invalid(
        &self,
        seen: &Schedule,
        error: &str,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let n = self
            .d
            .pool()
            .run(
                "UPDATE schedules SET invalid = TRUE, invalid_error = $5, last_error = $5,
                     updated_at = $6
                 WHERE id = $1 AND spec = $2 AND timezone = $3 AND dst = $4 AND NOT invalid",
                &[
                    Arg::I64(seen.id),
                    Arg::Text(&seen.spec),
                    Arg::Text(&seen.timezone),
                    Arg::Text(seen.dst.as_str()),
                    Arg::Text(error),
                    Arg::Time(now),
                ],
            )
            .await
            .map_err(query("mark schedule invalid"))?;
        Ok(n > 0)
    }

    async fn schedules_missing_next(&self) -> Result<Vec<Schedule>, StoreError> {
        let sql = format!(
            "SELECT {SCHEDULE_COLUMNS} FROM schedules
             WHERE enabled AND next_run_at IS NULL AND NOT invalid ORDER BY id"
        );
        let found = self
            .d
            .pool()
            .all(&sql, &[])
            .await
            .map_err(query("schedules missing next run"))?;
        rows::all(&found, rows::schedule)
    }

    async fn repair_next_run(
        &self,
        id: i64,
        next: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let n = self
            .d
            .pool()
            .run(
                "UPDATE schedules SET next_run_at = $2, updated_at = $3
                 WHERE id = $1 AND next_run_at IS NULL",
                &[Arg::I64(id), Arg::Time(next), Arg::Time(now)],
            )
            .await
            .map_err(query("repair next run"))?;
        Ok(n > 0)
    }

    async fn earliest_next_run(&self) -> Result<Option<DateTime<Utc>>, StoreError> {
        let row = self
            .d
            .pool()
            .opt(
                "SELECT MIN(next_run_at) AS earliest FROM schedules WHERE enabled AND NOT invalid",
                &[],
            )
            .await
            .map_err(query("earliest next run"))?;
        Ok(row.map(|r| r.opt_time("earliest")).transpose()?.flatten())
    }
}
