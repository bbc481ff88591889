//! SQLite implementation of the delegation ledger.
//!
//! SQLite has one writer, so a conditional UPDATE cannot interleave with
//! another write; the statements are still written exactly as on Postgres
//! (the rule in the WHERE clause) so both drivers mean the same thing.

use chrono::{DateTime, Utc};
use sqlx::sqlite::SqliteRow;
use sqlx::Row;

use super::{from_ms, to_ms, SqliteStore};
use crate::store::delegations::{DEADLINE_EXCEEDED, DEFAULT_DEADLINE};
use crate::store::{
    Created, Delegation, DelegationBeatOutcome, DelegationStatus, DelegationStore, NewDelegation,
    StatusChange, StoreError, Swept, Transition,
};

const COLUMNS: &str = "id, caller_workspace_id, workspace_id, status, previous_status, \
     created_at, updated_at, deadline, last_heartbeat, error_detail, result";

fn delegation(row: &SqliteRow) -> Result<Delegation, StoreError> {
    let status: String = row.get("status");
    let previous: Option<String> = row.get("previous_status");
    Ok(Delegation {
        id: row.get("id"),
        caller_workspace_id: row.get("caller_workspace_id"),
        workspace_id: row.get("workspace_id"),
        status: DelegationStatus::parse(&status)?,
        previous_status: previous
            .as_deref()
            .map(DelegationStatus::parse)
            .transpose()?,
        created_at: from_ms(row.get("created_at")),
        updated_at: from_ms(row.get("updated_at")),
        deadline: from_ms(row.get("deadline")),
        last_heartbeat: row.get::<Option<i64>, _>("last_heartbeat").map(from_ms),
        error_detail: row.get("error_detail"),
        result: row.get("result"),
    })
}

fn swept(row: &SqliteRow, to: DelegationStatus) -> Result<Swept, StoreError> {
    let from: String = row.get("previous_status");
    Ok(Swept {
        id: row.get("id"),
        from: DelegationStatus::parse(&from)?,
        to,
        reason: row.get("error_detail"),
    })
}

fn in_flight() -> String {
    DelegationStatus::sql_list(&DelegationStatus::IN_FLIGHT)
}

#[async_trait::async_trait]
impl DelegationStore for SqliteStore {
    async fn create_delegation(
        &self,
        new: &NewDelegation,
        now: DateTime<Utc>,
    ) -> Result<Created, StoreError> {
        let id = new
            .id
            .clone()
            .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
        let deadline = new.deadline.unwrap_or(now + DEFAULT_DEADLINE);
        let sql = format!(
            "INSERT INTO delegations
                 (id, caller_workspace_id, workspace_id, status, created_at, updated_at, deadline)
             VALUES (?1, ?2, ?3, 'queued', ?4, ?4, ?5)
             ON CONFLICT (id) DO NOTHING
             RETURNING {COLUMNS}"
        );
        let inserted = sqlx::query(&sql)
            .bind(&id)
            .bind(&new.caller_workspace_id)
            .bind(&new.workspace_id)
            .bind(to_ms(now))
            .bind(to_ms(deadline))
            .fetch_optional(&self.pool)
            .await
            .map_err(StoreError::query("create delegation"))?;
        match inserted {
            Some(row) => Ok(Created {
                delegation: delegation(&row)?,
                created: true,
            }),
            // Rows are never deleted, so the one that conflicted is still there.
            None => Ok(Created {
                delegation: self
                    .get_delegation(&id)
                    .await?
                    .ok_or(StoreError::NotFound {
                        what: "delegation",
                        id,
                    })?,
                created: false,
            }),
        }
    }

    async fn get_delegation(&self, id: &str) -> Result<Option<Delegation>, StoreError> {
        let sql = format!("SELECT {COLUMNS} FROM delegations WHERE id = ?1");
        let row = sqlx::query(&sql)
            .bind(id)
            .fetch_optional(&self.pool)
            .await
            .map_err(StoreError::query("get delegation"))?;
        row.as_ref().map(delegation).transpose()
    }

    async fn list_delegations(
        &self,
        status: DelegationStatus,
        limit: u32,
    ) -> Result<Vec<Delegation>, StoreError> {
        let sql = format!(
            "SELECT {COLUMNS} FROM delegations WHERE status = ?1
             ORDER BY created_at, id LIMIT ?2"
        );
        let rows = sqlx::query(&sql)
            .bind(status.as_str())
            .bind(i64::from(limit))
            .fetch_all(&self.pool)
            .await
            .map_err(StoreError::query("list delegations"))?;
        rows.iter().map(delegation).collect()
    }

    async fn set_delegation_status(
        &self,
        id: &str,
        change: &StatusChange,
        now: DateTime<Utc>,
    ) -> Result<Transition, StoreError> {
        let to = change.to;
        let retry = to == DelegationStatus::Queued;
        // `previous_status = status` reads the row as it was before this
        // UPDATE: the transition's origin, in the same atomic write.
        let sql = format!(
            "UPDATE delegations SET
                 previous_status = status,
                 status = ?2,
                 updated_at = ?3,
                 error_detail = CASE WHEN ?6 THEN ?4 ELSE COALESCE(?4, error_detail) END,
                 result = COALESCE(?5, result),
                 last_heartbeat = CASE WHEN ?6 THEN ?3 ELSE last_heartbeat END
             WHERE id = ?1 AND status IN ({})
             RETURNING {COLUMNS}",
            DelegationStatus::sql_list(to.allowed_predecessors())
        );
        // A refusal is decided from a read after the UPDATE matched nothing;
        // if the row moved in between into an allowed predecessor (only a
        // retry of a stuck one can do that), try once more.
        for _ in 0..3 {
            let row = sqlx::query(&sql)
                .bind(id)
                .bind(to.as_str())
                .bind(to_ms(now))
                .bind(&change.error_detail)
                .bind(&change.result)
                .bind(retry)
                .fetch_optional(&self.pool)
                .await
                .map_err(StoreError::query("set delegation status"))?;
            if let Some(row) = row {
                let delegation = delegation(&row)?;
                let from = delegation.previous_status.ok_or(StoreError::Corrupt {
                    table: "delegations",
                    column: "previous_status",
                    value: "NULL right after a transition".to_string(),
                })?;
                return Ok(Transition::Applied { from, delegation });
            }
            let current = self
                .get_delegation(id)
                .await?
                .ok_or_else(|| StoreError::NotFound {
                    what: "delegation",
                    id: id.to_string(),
                })?;
            if current.status == to {
                return Ok(Transition::Unchanged {
                    delegation: current,
                });
            }
            if let Some(reason) = current.status.refusal(to) {
                return Ok(Transition::Refused {
                    from: current.status,
                    to,
                    reason,
                });
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
                 last_heartbeat = MAX(COALESCE(last_heartbeat, ?2), ?2),
                 updated_at = ?2
             WHERE id = ?1 AND status IN ({})
             RETURNING {COLUMNS}",
            in_flight()
        );
        let row = sqlx::query(&sql)
            .bind(id)
            .bind(to_ms(now))
            .fetch_optional(&self.pool)
            .await
            .map_err(StoreError::query("stamp delegation heartbeat"))?;
        if let Some(row) = row {
            return Ok(DelegationBeatOutcome::Stamped {
                delegation: delegation(&row)?,
            });
        }
        // Terminal states are final, so what we read now is why it was refused.
        match self.get_delegation(id).await? {
            None => Err(StoreError::NotFound {
                what: "delegation",
                id: id.to_string(),
            }),
            Some(d) => Ok(DelegationBeatOutcome::Refused {
                status: d.status,
                reason: format!(
                    "delegation is {}; only an in-flight delegation takes heartbeats",
                    d.status
                ),
            }),
        }
    }

    async fn fail_past_deadline(&self, now: DateTime<Utc>) -> Result<Vec<Swept>, StoreError> {
        let sql = format!(
            "UPDATE delegations SET
                 previous_status = status, status = 'failed',
                 error_detail = ?2, updated_at = ?1
             WHERE status IN ({}) AND deadline < ?1
             RETURNING id, previous_status, error_detail",
            in_flight()
        );
        let rows = sqlx::query(&sql)
            .bind(to_ms(now))
            .bind(DEADLINE_EXCEEDED)
            .fetch_all(&self.pool)
            .await
            .map_err(StoreError::query("fail delegations past deadline"))?;
        rows.iter()
            .map(|r| swept(r, DelegationStatus::Failed))
            .collect()
    }

    async fn mark_stale_stuck(
        &self,
        silent_since: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<Vec<Swept>, StoreError> {
        // Integer milliseconds divide down to whole seconds, as on Postgres.
        let sql = format!(
            "UPDATE delegations SET
                 previous_status = status, status = 'stuck',
                 error_detail = 'no heartbeat for '
                     || ((?1 - COALESCE(last_heartbeat, created_at)) / 1000) || 's'
                     || CASE WHEN last_heartbeat IS NULL THEN ' (never beat)' ELSE '' END,
                 updated_at = ?1
             WHERE status IN ({}) AND deadline >= ?1
               AND COALESCE(last_heartbeat, created_at) < ?2
             RETURNING id, previous_status, error_detail",
            in_flight()
        );
        let rows = sqlx::query(&sql)
            .bind(to_ms(now))
            .bind(to_ms(silent_since))
            .fetch_all(&self.pool)
            .await
            .map_err(StoreError::query("mark stale delegations stuck"))?;
        rows.iter()
            .map(|r| swept(r, DelegationStatus::Stuck))
            .collect()
    }
}
