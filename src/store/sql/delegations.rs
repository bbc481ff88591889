//! The delegation ledger's statements. Every status change is one
//! `UPDATE … WHERE id = $1 AND status IN (<the model's allowed predecessors>)`,
//! and `previous_status = status` in the same UPDATE names where the row came
//! from without a second, racing read. On Postgres under READ COMMITTED a
//! conditional UPDATE that meets a row changed by a concurrent commit
//! re-checks its WHERE clause against the new version, so a sweep that meets
//! a just-completed delegation skips it; SQLite's single writer serialises them.

use chrono::{DateTime, Utc};

use super::rows::{self, DELEGATION_COLUMNS};
use super::{in_list, query, Arg, Dialect, Exec, Row, SqlStore};
use crate::model::delegation::{
    Created, Delegation, DelegationBeatOutcome, DelegationStatus, PreparedDelegation, StatusChange,
    Swept, Transition, DEADLINE_EXCEEDED, NEVER_BEAT_SUFFIX, STUCK_PREFIX,
};
use crate::store::{DelegationStore, StoreError};

fn statuses(list: &[DelegationStatus]) -> String {
    in_list(list.iter().map(|s| s.as_str()))
}

fn swept(row: &impl Row, to: DelegationStatus) -> Result<Swept, StoreError> {
    let from = row.text("previous_status")?;
    Ok(Swept {
        id: row.text("id")?,
        from: DelegationStatus::from_name(&from).ok_or(StoreError::Corrupt {
            table: "delegations",
            column: "previous_status".into(),
            value: from,
        })?,
        to,
        reason: row.text("error_detail")?,
    })
}

fn not_found(id: &str) -> StoreError {
    StoreError::NotFound {
        what: "delegation",
        id: id.to_string(),
    }
}

#[async_trait::async_trait]
impl<D: Dialect> DelegationStore for SqlStore<D> {
    async fn create_delegation(
        &self,
        new: &PreparedDelegation,
        now: DateTime<Utc>,
    ) -> Result<Created, StoreError> {
        let sql = format!(
            "INSERT INTO delegations
                 (id, caller_workspace_id, workspace_id, status, created_at, updated_at, deadline)
             VALUES ($1, $2, $3, 'queued', $4, $4, $5)
             ON CONFLICT (id) DO NOTHING
             RETURNING {DELEGATION_COLUMNS}"
        );
        let inserted = self
            .d
            .pool()
            .opt(
                &sql,
                &[
                    Arg::Text(&new.id),
                    Arg::OptText(new.caller_workspace_id.as_deref()),
                    Arg::Text(&new.workspace_id),
                    Arg::Time(now),
                    Arg::Time(new.deadline),
                ],
            )
            .await
            .map_err(query("create delegation"))?;
        Ok(match inserted {
            Some(row) => Created {
                delegation: rows::delegation(&row)?,
                created: true,
            },
            None => Created {
                delegation: self
                    .get_delegation(&new.id)
                    .await?
                    .ok_or_else(|| not_found(&new.id))?,
                created: false,
            },
        })
    }

    async fn get_delegation(&self, id: &str) -> Result<Option<Delegation>, StoreError> {
        let sql = format!("SELECT {DELEGATION_COLUMNS} FROM delegations WHERE id = $1");
        self.d
            .pool()
            .opt(&sql, &[Arg::Text(id)])
            .await
            .map_err(query("get delegation"))?
            .as_ref()
            .map(rows::delegation)
            .transpose()
    }

    async fn list_delegations(
        &self,
        status: DelegationStatus,
        limit: u32,
    ) -> Result<Vec<Delegation>, StoreError> {
        let sql = format!(
            "SELECT {DELEGATION_COLUMNS} FROM delegations WHERE status = $1
             ORDER BY created_at, id LIMIT $2"
        );
        let found = self
            .d
            .pool()
            .all(
                &sql,
                &[Arg::Text(status.as_str()), Arg::I64(i64::from(limit))],
            )
            .await
            .map_err(query("list delegations"))?;
        rows::all(&found, rows::delegation)
    }

    async fn set_delegation_status(
        &self,
        id: &str,
        change: &StatusChange,
        now: DateTime<Utc>,
    ) -> Result<Transition, StoreError> {
        let to = change.to;
        // The operator's retry clears the old error and restarts the stuck
        // clock; any other change keeps what it is not given.
        let (error, beat) = if to.is_retry() {
            ("$4", "$3")
        } else {
            ("COALESCE($4, error_detail)", "last_heartbeat")
        };
        let sql = format!(
            "UPDATE delegations SET
                 previous_status = status, status = $2, updated_at = $3,
                 error_detail = {error}, result = COALESCE($5, result), last_heartbeat = {beat}
             WHERE id = $1 AND status IN ({})
             RETURNING {DELEGATION_COLUMNS}",
            statuses(to.allowed_predecessors())
        );
        // A refusal is decided from a read after the UPDATE matched nothing;
        // if the row moved in between into an allowed predecessor (only a
        // retry of a stuck one can do that), try once more.
        for _ in 0..3 {
            let row = self
                .d
                .pool()
                .opt(
                    &sql,
                    &[
                        Arg::Text(id),
                        Arg::Text(to.as_str()),
                        Arg::Time(now),
                        Arg::OptText(change.error_detail.as_deref()),
                        Arg::OptText(change.result.as_deref()),
                    ],
                )
                .await
                .map_err(query("set delegation status"))?;
            if let Some(row) = row {
                let delegation = rows::delegation(&row)?;
                let from = delegation.previous_status.ok_or(StoreError::Corrupt {
                    table: "delegations",
                    column: "previous_status".into(),
                    value: "NULL right after a transition".to_string(),
                })?;
                return Ok(Transition::Applied { from, delegation });
            }
            let current = self
                .get_delegation(id)
                .await?
                .ok_or_else(|| not_found(id))?;
            if let Some(answer) = Transition::explain(current, to) {
                return Ok(answer);
            }
        }
        Err(StoreError::Contended {
            operation: "set delegation status",
            id: id.to_string(),
        })
    }

    async fn beat_delegation(
        &self,
        id: &str,
        now: DateTime<Utc>,
    ) -> Result<DelegationBeatOutcome, StoreError> {
        let sql = format!(
            "UPDATE delegations SET
                 last_heartbeat = CASE WHEN last_heartbeat IS NULL OR last_heartbeat < $2
                                       THEN $2 ELSE last_heartbeat END,
                 updated_at = $2
             WHERE id = $1 AND status IN ({})
             RETURNING {DELEGATION_COLUMNS}",
            statuses(&DelegationStatus::IN_FLIGHT)
        );
        let row = self
            .d
            .pool()
            .opt(&sql, &[Arg::Text(id), Arg::Time(now)])
            .await
            .map_err(query("stamp delegation heartbeat"))?;
        if let Some(row) = row {
            return Ok(DelegationBeatOutcome::Stamped {
                delegation: rows::delegation(&row)?,
            });
        }
        // Terminal states are final, so what we read now is why it was refused.
        let current = self
            .get_delegation(id)
            .await?
            .ok_or_else(|| not_found(id))?;
        Ok(DelegationBeatOutcome::refused(&current))
    }

    async fn fail_past_deadline(&self, now: DateTime<Utc>) -> Result<Vec<Swept>, StoreError> {
        let sql = format!(
            "UPDATE delegations SET
                 previous_status = status, status = 'failed',
                 error_detail = $2, updated_at = $1
             WHERE status IN ({}) AND deadline < $1
             RETURNING id, previous_status, error_detail",
            statuses(&DelegationStatus::IN_FLIGHT)
        );
        let found = self
            .d
            .pool()
            .all(&sql, &[Arg::Time(now), Arg::Text(DEADLINE_EXCEEDED)])
            .await
            .map_err(query("fail delegations past deadline"))?;
        found
            .iter()
            .map(|r| swept(r, DelegationStatus::Failed))
            .collect()
    }

    async fn mark_stale_stuck(
        &self,
        silent_since: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<Vec<Swept>, StoreError> {
        // The model's stuck_reason, spelled in SQL from the same pieces.
        let sql = format!(
            "UPDATE delegations SET
                 previous_status = status, status = 'stuck',
                 error_detail = '{STUCK_PREFIX}' || {} || 's'
                     || CASE WHEN last_heartbeat IS NULL THEN '{NEVER_BEAT_SUFFIX}' ELSE '' END,
                 updated_at = $1
             WHERE status IN ({}) AND deadline >= $1
               AND COALESCE(last_heartbeat, created_at) < $2
             RETURNING id, previous_status, error_detail",
            D::seconds_to_param1("COALESCE(last_heartbeat, created_at)"),
            statuses(&DelegationStatus::IN_FLIGHT)
        );
        let found = self
            .d
            .pool()
            .all(&sql, &[Arg::Time(now), Arg::Time(silent_since)])
            .await
            .map_err(query("mark stale delegations stuck"))?;
        found
            .iter()
            .map(|r| swept(r, DelegationStatus::Stuck))
            .collect()
    }
}
