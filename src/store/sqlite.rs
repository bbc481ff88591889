//! The SQLite dialect: the embedded default.
//!
//! One file, created on first use, in WAL mode so readers do not block the
//! single writer. SQLite serialises writers, so a claim needs no row locks:
//! one `UPDATE … WHERE id IN (SELECT … LIMIT n) RETURNING` and nothing can
//! interleave inside it; write transactions take the lock at `BEGIN
//! IMMEDIATE`. Times are integer milliseconds since the epoch. Wakes travel
//! on an in-process channel: one process owns the file.
//!
//! Writers take turns here first (a fair async mutex held for a write
//! statement or a write transaction). Writers on several connections meet
//! SQLite's lock as `SQLITE_BUSY`, and its busy handler sleeps in steps of
//! up to 100 ms before it tries again, so the lock sat idle while a queue of
//! claims and outcome writes slept (a claim of 100 rows waited up to 0.8 s
//! behind 10,000 fires). The turn is a FIFO queue in this process that
//! hands the lock on at once; the connection is any idle one of the pool (a
//! pool of one writer connection cost a third of bulk enqueue). The busy
//! timeout stays for other processes (`ringmaster migrate`, a `sqlite3`
//! shell).

use std::str::FromStr;
use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::sqlite::{
    SqliteArguments, SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteRow,
    SqliteSynchronous,
};
use sqlx::{Sqlite, SqlitePool, Transaction};
use std::sync::Arc;

use tokio::sync::{broadcast, Mutex, MutexGuard, OwnedMutexGuard};

use super::notify::{Wake, WakeStream};
use super::sql::{Arg, Dialect, Exec, Row, SqlStore, TxMode};
use super::{Backend, StoreError};
use crate::model::time::from_millis;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");

/// The longest a writer waits for its turn, as for SQLite's own lock: past
/// it the write fails as the database being unavailable (503), never hangs.
const WRITE_WAIT: Duration = Duration::from_secs(5);

/// Wakes a slow listener may fall behind by before it is told it missed some.
const WAKE_BUFFER: usize = 4096;

pub struct SqliteDialect {
    pool: SqlitePool,
    /// Whose turn it is to write.
    turn: Arc<Mutex<()>>,
    wakes: broadcast::Sender<String>,
}

/// The SQLite store.
pub type SqliteStore = SqlStore<SqliteDialect>;

/// Open (creating if needed) the database file named by `url` and migrate it.
pub async fn open(url: &str) -> Result<SqliteStore, StoreError> {
    let connect = |source| StoreError::Connect {
        url: url.to_string(),
        source,
    };
    let options = SqliteConnectOptions::from_str(url)
        .map_err(connect)?
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Normal)
        // A writer waits for the lock instead of failing with SQLITE_BUSY,
        // but not for ever: past this the request is answered 503.
        .busy_timeout(Duration::from_secs(5))
        .foreign_keys(true);
    let pool = SqlitePoolOptions::new()
        .max_connections(8)
        .acquire_timeout(Duration::from_secs(5))
        .connect_with(options)
        .await
        .map_err(connect)?;
    MIGRATOR
        .run(&pool)
        .await
        .map_err(|source| StoreError::Migrate {
            url: url.to_string(),
            source,
        })?;
    let (wakes, _) = broadcast::channel(WAKE_BUFFER);
    Ok(SqlStore::new(SqliteDialect {
        pool,
        turn: Arc::new(Mutex::new(())),
        wakes,
    }))
}

type Query<'q> = sqlx::query::Query<'q, Sqlite, SqliteArguments<'q>>;

fn bind<'q>(query: Query<'q>, arg: Arg<'q>) -> Query<'q> {
    match arg {
        Arg::I64(v) => query.bind(v),
        Arg::OptI64(v) => query.bind(v),
        Arg::I32(v) => query.bind(v),
        Arg::Bool(v) => query.bind(v),
        Arg::Text(v) => query.bind(v),
        Arg::OptText(v) => query.bind(v),
        Arg::Time(t) => query.bind(t.timestamp_millis()),
        Arg::OptTime(t) => query.bind(t.map(|t| t.timestamp_millis())),
    }
}

fn prepare<'q>(sql: &'q str, args: &[Arg<'q>]) -> Query<'q> {
    args.iter().fold(sqlx::query(sql), |q, a| bind(q, *a))
}

fn unreadable(col: &str, err: sqlx::Error) -> StoreError {
    StoreError::Corrupt {
        table: "a result row",
        column: col.to_string(),
        value: err.to_string(),
    }
}

fn get<'r, T: sqlx::Decode<'r, Sqlite> + sqlx::Type<Sqlite>>(
    row: &'r SqliteRow,
    col: &str,
) -> Result<T, StoreError> {
    sqlx::Row::try_get(row, col).map_err(|e| unreadable(col, e))
}

impl Row for SqliteRow {
    fn i64(&self, col: &str) -> Result<i64, StoreError> {
        get(self, col)
    }
    fn i32(&self, col: &str) -> Result<i32, StoreError> {
        let wide: i64 = get(self, col)?;
        i32::try_from(wide).map_err(|_| StoreError::Corrupt {
            table: "a result row",
            column: col.to_string(),
            value: wide.to_string(),
        })
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
        Ok(from_millis(get(self, col)?))
    }
    fn opt_time(&self, col: &str) -> Result<Option<DateTime<Utc>>, StoreError> {
        Ok(get::<Option<i64>>(self, col)?.map(from_millis))
    }
}

/// Statements on their own: a `SELECT` at once, anything else in its turn.
pub struct OnPool<'a> {
    pool: &'a SqlitePool,
    turn: &'a Mutex<()>,
}

impl OnPool<'_> {
    async fn turn_for(&self, sql: &str) -> Result<Option<MutexGuard<'_, ()>>, sqlx::Error> {
        if is_read(sql) {
            return Ok(None);
        }
        let turn = tokio::time::timeout(WRITE_WAIT, self.turn.lock()).await;
        turn.map(Some).map_err(|_| sqlx::Error::PoolTimedOut)
    }
}

/// A statement that cannot write: one that starts with `SELECT`. (A `WITH`
/// may lead to an `UPDATE`, so it counts as a write.)
fn is_read(sql: &str) -> bool {
    sql.trim_start()
        .get(..6)
        .is_some_and(|head| head.eq_ignore_ascii_case("select"))
}

#[async_trait::async_trait]
impl Exec for OnPool<'_> {
    type Row = SqliteRow;
    async fn all(&mut self, sql: &str, args: &[Arg<'_>]) -> Result<Vec<SqliteRow>, sqlx::Error> {
        let _turn = self.turn_for(sql).await?;
        prepare(sql, args).fetch_all(self.pool).await
    }
    async fn opt(&mut self, sql: &str, args: &[Arg<'_>]) -> Result<Option<SqliteRow>, sqlx::Error> {
        let _turn = self.turn_for(sql).await?;
        prepare(sql, args).fetch_optional(self.pool).await
    }
    async fn run(&mut self, sql: &str, args: &[Arg<'_>]) -> Result<u64, sqlx::Error> {
        let _turn = self.turn_for(sql).await?;
        Ok(prepare(sql, args).execute(self.pool).await?.rows_affected())
    }
}

/// A transaction, holding the write turn when it is for writing.
pub struct SqliteTx {
    // Declared first, dropped first: the turn outlives the transaction.
    tx: Transaction<'static, Sqlite>,
    _turn: Option<OwnedMutexGuard<()>>,
}

#[async_trait::async_trait]
impl Exec for SqliteTx {
    type Row = SqliteRow;
    async fn all(&mut self, sql: &str, args: &[Arg<'_>]) -> Result<Vec<SqliteRow>, sqlx::Error> {
        prepare(sql, args).fetch_all(&mut *self.tx).await
    }
    async fn opt(&mut self, sql: &str, args: &[Arg<'_>]) -> Result<Option<SqliteRow>, sqlx::Error> {
        prepare(sql, args).fetch_optional(&mut *self.tx).await
    }
    async fn run(&mut self, sql: &str, args: &[Arg<'_>]) -> Result<u64, sqlx::Error> {
        Ok(prepare(sql, args)
            .execute(&mut *self.tx)
            .await?
            .rows_affected())
    }
}

const CLAIM_SQL: &str = "UPDATE queue_items
     SET status = 'dispatched', lease_token = $1, claimed_by = $2,
         lease_expires_at = $3, updated_at = $4
     WHERE id IN (
         SELECT id FROM queue_items
         WHERE workspace_id = $5 AND status = 'queued' AND available_at <= $4
           AND (expires_at IS NULL OR expires_at > $4)
         ORDER BY priority DESC, enqueued_at, id
         LIMIT $6)
     RETURNING id, workspace_id, caller, priority, method, body, idempotency_key, status, \
         attempts, max_attempts, enqueued_at, available_at, expires_at, lease_token, claimed_by, \
         lease_expires_at, last_error, response, finished_at";

#[async_trait::async_trait]
impl Dialect for SqliteDialect {
    type Row = SqliteRow;
    type Pool<'a> = OnPool<'a>;
    type Tx = SqliteTx;

    const BACKEND: Backend = Backend::Sqlite;
    // The write transaction holds the whole database.
    const LOCK_ROWS: &'static str = "";
    const SKIP_LOCKED: &'static str = "";

    fn pool(&self) -> OnPool<'_> {
        OnPool {
            pool: &self.pool,
            turn: &self.turn,
        }
    }

    async fn begin(&self, mode: TxMode) -> Result<Self::Tx, sqlx::Error> {
        match mode {
            TxMode::Write => {
                let turn = tokio::time::timeout(WRITE_WAIT, self.turn.clone().lock_owned())
                    .await
                    .map_err(|_| sqlx::Error::PoolTimedOut)?;
                Ok(SqliteTx {
                    tx: self.pool.begin_with("BEGIN IMMEDIATE").await?,
                    _turn: Some(turn),
                })
            }
            TxMode::Read => Ok(SqliteTx {
                tx: self.pool.begin().await?,
                _turn: None,
            }),
        }
    }

    async fn commit(tx: Self::Tx) -> Result<(), sqlx::Error> {
        tx.tx.commit().await
    }

    async fn close(&self) {
        self.pool.close().await;
    }

    fn claim_sql(&self) -> &str {
        CLAIM_SQL
    }

    fn seconds_to_param1(since: &str) -> String {
        format!("(($1 - {since}) / 1000)")
    }

    async fn woke(&self, workspaces: &[&str]) {
        for w in workspaces {
            // No receiver is fine: nobody is listening yet.
            let _ = self.wakes.send((*w).to_string());
        }
    }

    async fn listen(&self) -> Result<Box<dyn WakeStream>, StoreError> {
        Ok(Box::new(Listener(self.wakes.subscribe())))
    }
}

struct Listener(broadcast::Receiver<String>);

#[async_trait::async_trait]
impl WakeStream for Listener {
    async fn next(&mut self) -> Wake {
        match self.0.recv().await {
            Ok(workspace) => Wake::Workspace(workspace),
            Err(broadcast::error::RecvError::Lagged(_)) => Wake::Missed,
            // The store is gone (closed): nothing will ever come again.
            Err(broadcast::error::RecvError::Closed) => std::future::pending().await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::is_read;

    #[test]
    fn only_a_select_goes_to_a_reader() {
        assert!(is_read("SELECT 1"));
        assert!(is_read("\n   select id FROM queue_items"));
        assert!(!is_read("UPDATE queue_items SET status = 'queued'"));
        assert!(!is_read(
            "WITH u(id) AS (VALUES (1)) UPDATE schedules SET id = 1"
        ));
        assert!(!is_read("INSERT INTO t VALUES (1)"));
        assert!(!is_read("SEL"));
        assert!(!is_read("ſelect"));
    }
}
