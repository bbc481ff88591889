//! Retention's statements: `DELETE … WHERE id IN (a bounded, oldest-first
//! SELECT)`, each served by a partial index over finished rows (migration
//! 0006), so a prune reads only what it deletes however large the table. On
//! Postgres the SELECT skips rows another node's prune has locked.

use chrono::{DateTime, Utc};

use super::{in_list, query, Arg, Dialect, Exec, SqlStore};
use crate::model::delegation::DelegationStatus;
use crate::model::queue::QueueStatus;
use crate::model::run::RunStatus;
use crate::store::retention::RetentionStore;
use crate::store::StoreError;

#[async_trait::async_trait]
impl<D: Dialect> RetentionStore for SqlStore<D> {
    async fn reclaim(&self) -> Result<(), StoreError> {
        if let Some(sql) = D::RECLAIM {
            self.d
                .pool()
                .run(sql, &[])
                .await
                .map_err(query("reclaim space"))?;
        }
        Ok(())
    }

    async fn prune_queue(
        &self,
        statuses: &[QueueStatus],
        before: DateTime<Utc>,
        limit: u32,
    ) -> Result<u64, StoreError> {
        let finals: Vec<&str> = statuses
            .iter()
            .filter(|s| s.is_final())
            .map(|s| s.as_str())
            .collect();
        if finals.is_empty() {
            return Ok(0);
        }
        // A fire whose run is still `dispatched` keeps its item: the run's
        // outcome is read from it.
        let sql = format!(
            "DELETE FROM queue_items WHERE id IN (
                 SELECT q.id FROM queue_items q
                 WHERE q.status IN ({}) AND q.finished_at < $1
                   AND NOT EXISTS (SELECT 1 FROM schedule_runs r
                                   WHERE r.idempotency_key = q.idempotency_key
                                     AND r.status = '{}')
                 ORDER BY q.finished_at LIMIT $2{})",
            in_list(finals),
            RunStatus::Dispatched.as_str(),
            D::SKIP_LOCKED,
        );
        self.d
            .pool()
            .run(&sql, &[Arg::Time(before), Arg::I64(i64::from(limit))])
            .await
            .map_err(query("prune queue items"))
    }

    async fn prune_runs(
        &self,
        before: DateTime<Utc>,
        keep: u32,
        limit: u32,
    ) -> Result<u64, StoreError> {
        // The newest `keep` of a schedule are those at or after its
        // keep-th newest slot; when it has fewer, the bound is NULL and
        // nothing of it qualifies.
        let sql = format!(
            "DELETE FROM schedule_runs WHERE id IN (
                 SELECT r.id FROM schedule_runs r
                 WHERE r.status <> '{dispatched}' AND r.finished_at < $1
                   AND r.slot < (SELECT n.slot FROM schedule_runs n
                                 WHERE n.schedule_id = r.schedule_id
                                 ORDER BY n.slot DESC LIMIT 1 OFFSET $3)
                 ORDER BY r.finished_at LIMIT $2{lock})",
            dispatched = RunStatus::Dispatched.as_str(),
            lock = D::SKIP_LOCKED,
        );
        let offset = i64::from(keep.saturating_sub(1));
        self.d
            .pool()
            .run(
                &sql,
                &[
                    Arg::Time(before),
                    Arg::I64(i64::from(limit)),
                    Arg::I64(offset),
                ],
            )
            .await
            .map_err(query("prune schedule runs"))
    }

    async fn prune_delegations(
        &self,
        statuses: &[DelegationStatus],
        before: DateTime<Utc>,
        limit: u32,
    ) -> Result<u64, StoreError> {
        let ended: Vec<&str> = statuses
            .iter()
            .filter(|s| s.is_terminal())
            .map(|s| s.as_str())
            .collect();
        if ended.is_empty() {
            return Ok(0);
        }
        let sql = format!(
            "DELETE FROM delegations WHERE id IN (
                 SELECT id FROM delegations
                 WHERE status IN ({}) AND updated_at < $1
                 ORDER BY updated_at LIMIT $2{})",
            in_list(ended),
            D::SKIP_LOCKED,
        );
        self.d
            .pool()
            .run(&sql, &[Arg::Time(before), Arg::I64(i64::from(limit))])
            .await
            .map_err(query("prune delegations"))
    }
}
