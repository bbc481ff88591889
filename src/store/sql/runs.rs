//! The run history's statements: outcomes written as the model judges them
//! (the stale rule), the history read newest first, and the reconciliation
//! queries that find runs whose outcome or queue item went missing.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use chrono::{DateTime, Utc};

use super::keyset::{Listing, Order, Where};
use super::rows::{self, QUEUE_COLUMNS, RUN_COLUMNS};
use super::{placeholders, prefixed, query, values, Arg, Dialect, Exec, Row, SqlStore, TxMode};
use crate::model::page::{Cursor, Page, PageRequest};
use crate::model::queue::{QueueItem, QueueStatus};
use crate::model::run::{judge, FinishedRun, RunOutcome, RunStatus, ScheduleRun};
use crate::store::{RunStore, StoreError};

/// Rows per statement of the set-based outcome writes (4 values a row).
const RUNS_PER_STATEMENT: usize = 200;

/// The judged runs' outcomes, a chunk per statement: one statement a run
/// cost a round trip each (7,000 of them for a minute's fires).
async fn write_runs<E: Exec>(
    tx: &mut E,
    finished: &[FinishedRun],
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    for chunk in finished.chunks(RUNS_PER_STATEMENT) {
        let (values, args) = values(vec![Arg::Time(now)], chunk, |f| {
            [
                Arg::I64(f.run.id),
                Arg::Text(f.run.status.as_str()),
                Arg::OptText(f.run.error.as_deref()),
                Arg::OptText(f.run.response_summary.as_deref()),
            ]
        });
        let sql = format!(
            "WITH u(id, status, error, summary) AS (VALUES {values})
             UPDATE schedule_runs SET status = u.status, finished_at = $1, error = u.error,
                 response_summary = u.summary
             FROM u
             WHERE schedule_runs.id = u.id AND schedule_runs.status = 'dispatched'"
        );
        tx.run(&sql, &args).await.map_err(query("finish runs"))?;
    }
    Ok(())
}

/// Each touched schedule's empty-run count and last status, a chunk per
/// statement.
async fn write_schedule_status<E: Exec>(
    tx: &mut E,
    touched: &[(i64, i32, RunStatus, Option<String>)],
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    for chunk in touched.chunks(RUNS_PER_STATEMENT) {
        let (values, args) = values(vec![Arg::Time(now)], chunk, |(id, count, status, error)| {
            [
                Arg::I64(*id),
                Arg::I32(*count),
                Arg::Text(status.as_str()),
                Arg::OptText(error.as_deref()),
            ]
        });
        let sql = format!(
            "WITH u(id, empty_runs, status, error) AS (VALUES {values})
             UPDATE schedules SET consecutive_empty_runs = u.empty_runs,
                 last_status = u.status, last_error = u.error, updated_at = $1
             FROM u
             WHERE schedules.id = u.id"
        );
        tx.run(&sql, &args)
            .await
            .map_err(query("finish runs: schedule status"))?;
    }
    Ok(())
}

#[async_trait::async_trait]
impl<D: Dialect> RunStore for SqlStore<D> {
    async fn finish_runs(
        &self,
        outcomes: &[(String, RunOutcome)],
        now: DateTime<Utc>,
    ) -> Result<Vec<FinishedRun>, StoreError> {
        if outcomes.is_empty() {
            return Ok(Vec::new());
        }
        let mut tx = self
            .d
            .begin(TxMode::Write)
            .await
            .map_err(query("finish runs: begin"))?;
        // Lock the runs, then their schedules, each set in id order, so two
        // nodes finishing overlapping sets never wait on each other in a circle.
        let keys: Vec<Arg<'_>> = outcomes.iter().map(|(k, _)| Arg::Text(k)).collect();
        let sql = format!(
            "SELECT {RUN_COLUMNS} FROM schedule_runs
             WHERE status = 'dispatched' AND idempotency_key IN ({}) ORDER BY id{}",
            placeholders(1, keys.len()),
            D::LOCK_ROWS
        );
        let pending = tx
            .all(&sql, &keys)
            .await
            .map_err(query("finish runs: read"))?;
        let pending = rows::all(&pending, rows::run)?;
        if pending.is_empty() {
            D::commit(tx).await.map_err(query("finish runs: commit"))?;
            return Ok(Vec::new());
        }
        let ids: BTreeSet<i64> = pending.iter().map(|r| r.schedule_id).collect();
        let id_args: Vec<Arg<'_>> = ids.iter().map(|id| Arg::I64(*id)).collect();
        let sql = format!(
            "SELECT id, name, consecutive_empty_runs FROM schedules WHERE id IN ({}) ORDER BY id{}",
            placeholders(1, id_args.len()),
            D::LOCK_ROWS
        );
        let mut schedules: HashMap<i64, (String, i32)> = HashMap::new();
        for row in tx
            .all(&sql, &id_args)
            .await
            .map_err(query("finish runs: read schedules"))?
        {
            schedules.insert(
                row.i64("id")?,
                (row.text("name")?, row.i32("consecutive_empty_runs")?),
            );
        }
        let by_key: HashMap<&str, &RunOutcome> =
            outcomes.iter().map(|(k, o)| (k.as_str(), o)).collect();
        let mut finished = Vec::with_capacity(pending.len());
        let mut last: BTreeMap<i64, (RunStatus, Option<String>)> = BTreeMap::new();
        for mut run in pending {
            let (Some(outcome), Some((name, count))) = (
                by_key.get(run.key.as_str()),
                schedules.get_mut(&run.schedule_id),
            ) else {
                continue;
            };
            let verdict = judge(outcome, *count);
            *count = verdict.consecutive_empty_runs;
            last.insert(
                run.schedule_id,
                (verdict.last_status, verdict.last_error.clone()),
            );
            run.status = verdict.run_status;
            run.finished_at = Some(now);
            run.error = verdict.run_error;
            run.response_summary = verdict.response_summary;
            finished.push(FinishedRun {
                run,
                schedule_name: name.clone(),
                consecutive_empty_runs: verdict.consecutive_empty_runs,
            });
        }
        write_runs(&mut tx, &finished, now).await?;
        let touched: Vec<(i64, i32, RunStatus, Option<String>)> = last
            .into_iter()
            .filter_map(|(id, (status, error))| {
                schedules
                    .get(&id)
                    .map(|(_, count)| (id, *count, status, error))
            })
            .collect();
        write_schedule_status(&mut tx, &touched, now).await?;
        D::commit(tx).await.map_err(query("finish runs: commit"))?;
        Ok(finished)
    }

    async fn page_runs(
        &self,
        schedule_id: i64,
        page: &PageRequest,
    ) -> Result<Page<ScheduleRun>, StoreError> {
        let mut w = Where::default();
        w.eq("schedule_id", Some(Arg::I64(schedule_id)));
        let newest_slot_first = Order {
            time: Some("slot"),
            id: "id",
            desc: true,
        };
        self.page_of(
            w,
            Listing {
                select: &format!("SELECT {RUN_COLUMNS} FROM schedule_runs"),
                order: newest_slot_first,
                operation: "page runs",
            },
            page,
            rows::run,
            |r| Cursor::AtId(r.slot, r.id),
        )
        .await
    }

    async fn get_run_by_key(&self, key: &str) -> Result<Option<ScheduleRun>, StoreError> {
        let sql = format!("SELECT {RUN_COLUMNS} FROM schedule_runs WHERE idempotency_key = $1");
        self.d
            .pool()
            .opt(&sql, &[Arg::Text(key)])
            .await
            .map_err(query("get run by key"))?
            .as_ref()
            .map(rows::run)
            .transpose()
    }

    async fn settled_pending_runs(
        &self,
        limit: u32,
    ) -> Result<Vec<(ScheduleRun, QueueItem)>, StoreError> {
        let finals = super::in_list(
            QueueStatus::ALL
                .iter()
                .filter(|s| s.is_final())
                .map(|s| s.as_str()),
        );
        let sql = format!(
            "SELECT {}, {} FROM schedule_runs r
             JOIN queue_items q
               ON q.workspace_id = r.workspace_id AND q.idempotency_key = r.idempotency_key
             WHERE r.status = 'dispatched' AND q.status IN ({finals})
             ORDER BY r.started_at LIMIT $1",
            aliased(RUN_COLUMNS, "r", "run_"),
            aliased(QUEUE_COLUMNS, "q", "item_"),
        );
        let found = self
            .d
            .pool()
            .all(&sql, &[Arg::I64(i64::from(limit))])
            .await
            .map_err(query("settled pending runs"))?;
        found
            .iter()
            .map(|row| {
                Ok((
                    rows::run(&Prefixed {
                        row,
                        prefix: "run_",
                    })?,
                    rows::queue_item(&Prefixed {
                        row,
                        prefix: "item_",
                    })?,
                ))
            })
            .collect()
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
        let found = self
            .d
            .pool()
            .all(
                &sql,
                &[Arg::Time(started_before), Arg::I64(i64::from(limit))],
            )
            .await
            .map_err(query("orphaned runs"))?;
        rows::all(&found, rows::run)
    }
}

/// `a.x AS px, a.y AS py` from `x, y`.
fn aliased(columns: &str, alias: &str, prefix: &str) -> String {
    columns
        .split(", ")
        .map(|c| format!("{alias}.{c} AS {prefix}{c}", c = c.trim()))
        .collect::<Vec<_>>()
        .join(", ")
}

/// A joined row read through one side's column names.
struct Prefixed<'r, R> {
    row: &'r R,
    prefix: &'static str,
}

impl<R: Row> Prefixed<'_, R> {
    fn col(&self, col: &str) -> String {
        format!("{}{col}", self.prefix)
    }
}

impl<R: Row> Row for Prefixed<'_, R> {
    fn i64(&self, col: &str) -> Result<i64, StoreError> {
        self.row.i64(&self.col(col))
    }
    fn i32(&self, col: &str) -> Result<i32, StoreError> {
        self.row.i32(&self.col(col))
    }
    fn bool(&self, col: &str) -> Result<bool, StoreError> {
        self.row.bool(&self.col(col))
    }
    fn text(&self, col: &str) -> Result<String, StoreError> {
        self.row.text(&self.col(col))
    }
    fn opt_text(&self, col: &str) -> Result<Option<String>, StoreError> {
        self.row.opt_text(&self.col(col))
    }
    fn time(&self, col: &str) -> Result<DateTime<Utc>, StoreError> {
        self.row.time(&self.col(col))
    }
    fn opt_time(&self, col: &str) -> Result<Option<DateTime<Utc>>, StoreError> {
        self.row.opt_time(&self.col(col))
    }
}
