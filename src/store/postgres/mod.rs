//! The PostgreSQL dialect: for several nodes sharing the work.
//!
//! Correctness never rests on a single node: every claim is a conditional
//! write, and queue claims pick rows in a CTE with `FOR UPDATE SKIP LOCKED`,
//! so nodes take disjoint rows without waiting on each other and the `LIMIT`
//! inside the CTE keeps the planner from updating more rows than asked (the
//! fence Oban's claim uses). What only Postgres can do is here too: batches
//! as arrays (`UNNEST`, one statement for a thousand rows), and wakes over
//! LISTEN/NOTIFY, sent inside the statements that enqueue.

mod enqueue;
mod listen;
mod settle;
mod slots;

use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::postgres::{PgArguments, PgPoolOptions, PgRow};
use sqlx::{PgPool, Postgres, Transaction};

use super::gate::Gate;
use super::notify::WakeStream;
use super::schedules::SlotFire;
use super::sql::{Arg, Dialect, Exec, Row, SqlStore, TxMode};
use super::Settle;
use super::{redact, Backend, StoreError};
use crate::model::queue::{Enqueued, NewQueueItem};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

/// How long an operation waits for a connection before the database counts
/// as unavailable.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(1);

/// The channel enqueues notify on; the payload is the workspace id.
pub const QUEUE_CHANNEL: &str = "ringmaster_queue";

pub struct PgDialect {
    pool: PgPool,
    /// Every operation passes it: during an outage they fail at once.
    gate: Gate,
}

/// The PostgreSQL store.
pub type PgStore = SqlStore<PgDialect>;

/// Connect to `url` and migrate. Fails loudly (no retry loop here) when the
/// server is unreachable: the caller decides whether to wait.
pub async fn open(url: &str) -> Result<PgStore, StoreError> {
    let pool = PgPoolOptions::new()
        .max_connections(16)
        // Short: during an outage a request must fail fast (503), not wait;
        // the pool re-establishes connections by itself afterwards.
        .acquire_timeout(ACQUIRE_TIMEOUT)
        .connect(url)
        .await
        .map_err(|source| StoreError::Connect {
            url: redact(url),
            source,
        })?;
    // Several nodes may start at once; sqlx takes an advisory lock around
    // the migration so only one applies it.
    MIGRATOR
        .run(&pool)
        .await
        .map_err(|source| StoreError::Migrate {
            url: redact(url),
            source,
        })?;
    Ok(SqlStore::new(PgDialect {
        pool,
        gate: Gate::default(),
    }))
}

type Query<'q> = sqlx::query::Query<'q, Postgres, PgArguments>;

fn bind<'q>(query: Query<'q>, arg: Arg<'q>) -> Query<'q> {
    match arg {
        Arg::I64(v) => query.bind(v),
        Arg::OptI64(v) => query.bind(v),
        Arg::I32(v) => query.bind(v),
        Arg::Bool(v) => query.bind(v),
        Arg::Text(v) => query.bind(v),
        Arg::OptText(v) => query.bind(v),
        Arg::Time(t) => query.bind(t),
        Arg::OptTime(t) => query.bind(t),
    }
}

fn prepare<'q>(sql: &'q str, args: &[Arg<'q>]) -> Query<'q> {
    args.iter().fold(sqlx::query(sql), |q, a| bind(q, *a))
}

fn get<'r, T: sqlx::Decode<'r, Postgres> + sqlx::Type<Postgres>>(
    row: &'r PgRow,
    col: &str,
) -> Result<T, StoreError> {
    sqlx::Row::try_get(row, col).map_err(|e| StoreError::Corrupt {
        table: "a result row",
        column: col.to_string(),
        value: e.to_string(),
    })
}

impl Row for PgRow {
    fn i64(&self, col: &str) -> Result<i64, StoreError> {
        get(self, col)
    }
    fn i32(&self, col: &str) -> Result<i32, StoreError> {
        get(self, col)
    }
    fn bool(&self, col: &str) -> Result<bool, StoreError> {
        get(self, col)
    }
    fn text(&self, col: &str) -> Result<String, StoreError> {
        get(self, col)
    }
    fn opt_text(&self, col: &str) -> Result<Option<String>, StoreError> {
        get(self, col)
    }
    fn time(&self, col: &str) -> Result<DateTime<Utc>, StoreError> {
        get(self, col)
    }
    fn opt_time(&self, col: &str) -> Result<Option<DateTime<Utc>>, StoreError> {
        get(self, col)
    }
}

/// Statements on the pool, each on its own.
pub struct OnPool<'a>(&'a PgDialect);

#[async_trait::async_trait]
impl Exec for OnPool<'_> {
    type Row = PgRow;
    async fn all(&mut self, sql: &str, args: &[Arg<'_>]) -> Result<Vec<PgRow>, sqlx::Error> {
        let PgDialect { pool, gate } = self.0;
        gate.pass(prepare(sql, args).fetch_all(pool)).await
    }
    async fn opt(&mut self, sql: &str, args: &[Arg<'_>]) -> Result<Option<PgRow>, sqlx::Error> {
        let PgDialect { pool, gate } = self.0;
        gate.pass(prepare(sql, args).fetch_optional(pool)).await
    }
    async fn run(&mut self, sql: &str, args: &[Arg<'_>]) -> Result<u64, sqlx::Error> {
        let PgDialect { pool, gate } = self.0;
        Ok(gate
            .pass(prepare(sql, args).execute(pool))
            .await?
            .rows_affected())
    }
}

#[async_trait::async_trait]
impl Exec for Transaction<'static, Postgres> {
    type Row = PgRow;
    async fn all(&mut self, sql: &str, args: &[Arg<'_>]) -> Result<Vec<PgRow>, sqlx::Error> {
        prepare(sql, args).fetch_all(&mut **self).await
    }
    async fn opt(&mut self, sql: &str, args: &[Arg<'_>]) -> Result<Option<PgRow>, sqlx::Error> {
        prepare(sql, args).fetch_optional(&mut **self).await
    }
    async fn run(&mut self, sql: &str, args: &[Arg<'_>]) -> Result<u64, sqlx::Error> {
        Ok(prepare(sql, args)
            .execute(&mut **self)
            .await?
            .rows_affected())
    }
}

const CLAIM_SQL: &str = "WITH picked AS (
         SELECT id FROM queue_items
         WHERE workspace_id = $5 AND status = 'queued' AND available_at <= $4
           AND (expires_at IS NULL OR expires_at > $4)
         ORDER BY priority DESC, enqueued_at, id
         LIMIT $6
         FOR UPDATE SKIP LOCKED
     )
     UPDATE queue_items q
     SET status = 'dispatched', lease_token = $1, claimed_by = $2,
         lease_expires_at = $3, updated_at = $4
     FROM picked WHERE q.id = picked.id
     RETURNING q.id, q.workspace_id, q.caller, q.priority, q.method, q.body, q.idempotency_key, \
         q.status, q.attempts, q.max_attempts, q.enqueued_at, q.available_at, q.expires_at, \
         q.lease_token, q.claimed_by, q.lease_expires_at, q.last_error, q.response, q.finished_at";

#[async_trait::async_trait]
impl Dialect for PgDialect {
    type Row = PgRow;
    type Pool<'a> = OnPool<'a>;
    type Tx = Transaction<'static, Postgres>;

    const BACKEND: Backend = Backend::Postgres;
    const LOCK_ROWS: &'static str = " FOR UPDATE";
    // Each message leaves three row versions in queue_items; a default
    // autovacuum (or none: some servers run with it off) lets the table and
    // its indexes grow with the churn. SKIP_LOCKED: another node's vacuum
    // of the same table is enough. ANALYZE: with autovacuum off nothing else
    // keeps the planner's statistics current.
    const RECLAIM: Option<&'static str> =
        Some("VACUUM (SKIP_LOCKED, ANALYZE) queue_items, schedule_runs, delegations");
    const SKIP_LOCKED: &'static str = " FOR UPDATE SKIP LOCKED";
    // The claim must walk `queue_items_claim` in order and stop at its
    // limit. With statistics older than a burst (a table analyzed while
    // small, or never: this server runs no autovacuum) the planner chose a
    // bitmap scan of every queued row of the workspace and a sort of them
    // all: 49 ms a claim at 100,000 deep instead of 4.6 ms, and a drain of
    // 100,000 at 18k/s instead of 44k/s. Off for the claim's transaction only.
    const CLAIM_PLAN: Option<&'static str> = Some(
        "SELECT set_config('enable_bitmapscan', 'off', true), set_config('enable_sort', 'off', true)",
    );

    fn pool(&self) -> OnPool<'_> {
        OnPool(self)
    }

    fn gate(&self) -> Option<&Gate> {
        Some(&self.gate)
    }

    async fn begin(&self, _mode: TxMode) -> Result<Self::Tx, sqlx::Error> {
        self.gate.pass(self.pool.begin()).await
    }

    async fn commit(tx: Self::Tx) -> Result<(), sqlx::Error> {
        tx.commit().await
    }

    async fn close(&self) {
        self.pool.close().await;
    }

    fn claim_sql(&self) -> &str {
        CLAIM_SQL
    }

    fn seconds_to_param1(since: &str) -> String {
        format!("CAST(floor(extract(epoch FROM (CAST($1 AS timestamptz) - {since}))) AS bigint)")
    }

    async fn woke(&self, workspaces: &[&str]) {
        let names: Vec<&str> = workspaces.to_vec();
        let notify = sqlx::query("SELECT pg_notify($1, w) FROM UNNEST($2::text[]) AS w")
            .bind(QUEUE_CHANNEL)
            .bind(&names)
            .execute(&self.pool);
        let sent = self.gate.pass(notify).await;
        if let Err(err) = sent {
            // The items are committed; a drain that misses the wake finds
            // them at its next tick.
            tracing::warn!(error = %err, "could not notify other nodes of new items");
        }
    }

    async fn listen(&self) -> Result<Box<dyn WakeStream>, StoreError> {
        listen::listen(&self.pool).await
    }

    async fn enqueue(
        &self,
        item: &NewQueueItem,
        max_attempts: u32,
        now: DateTime<Utc>,
    ) -> Result<Enqueued, StoreError> {
        self.gate
            .pass(enqueue::one(&self.pool, item, max_attempts, now))
            .await
    }

    async fn enqueue_batch(
        &self,
        items: &[NewQueueItem],
        max_attempts: u32,
        now: DateTime<Utc>,
        count: bool,
    ) -> Result<Vec<Enqueued>, StoreError> {
        self.gate
            .pass(enqueue::batch(&self.pool, items, max_attempts, now, count))
            .await
    }

    async fn settle(
        &self,
        rows: &[Settle<'_>],
        now: DateTime<Utc>,
    ) -> Result<Vec<i64>, StoreError> {
        self.gate.pass(settle::batch(&self.pool, rows, now)).await
    }

    async fn claim_slots(
        &self,
        fires: &[SlotFire],
        max_attempts: u32,
        now: DateTime<Utc>,
    ) -> Result<Vec<i64>, StoreError> {
        self.gate
            .pass(slots::claim(&self.pool, fires, max_attempts, now))
            .await
    }
}
