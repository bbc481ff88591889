//! The one implementation of the store, written once for both databases.
//!
//! Everything that is the same logic on SQLite and PostgreSQL lives here: the
//! statements (with `$1`-style placeholders, which both accept), row mapping,
//! transactions, the retry loops. A [`Dialect`] supplies only what truly
//! differs: how values are bound and read (times are integer milliseconds on
//! SQLite and `TIMESTAMPTZ` on Postgres), how a transaction takes the write
//! lock, the few statements with no common form (the claim's
//! `FOR UPDATE SKIP LOCKED`, Postgres's `UNNEST` batches), and how other nodes
//! are told about new work (LISTEN/NOTIFY, or an in-process channel).
//!
//! The rules these statements carry out are the model's
//! ([`crate::model`]): a statement writes values the model decided, or
//! filters by sets the model defines; it does not decide on its own.

mod delegations;
mod keyset;
mod operator;
mod queue;
mod retention;
pub(crate) mod rows;

/// The per-status active count, for the dialects' own statements too.
pub(crate) use queue::active_count;
mod runs;
mod schedules;
mod slots;
mod workspaces;

use chrono::{DateTime, Utc};

use super::notify::WakeStream;
use super::schedules::SlotFire;
use super::Settle;
use super::{Backend, StoreError};
use crate::model::queue::{Enqueued, NewQueueItem};

pub(crate) use queue::{enqueue_each, settle_set};
pub(crate) use slots::claim_slots_set;

/// A value to bind. Times are the only values whose encoding differs.
#[derive(Debug, Clone, Copy)]
pub enum Arg<'a> {
    I64(i64),
    OptI64(Option<i64>),
    I32(i32),
    Bool(bool),
    Text(&'a str),
    OptText(Option<&'a str>),
    Time(DateTime<Utc>),
    OptTime(Option<DateTime<Utc>>),
}

/// `$first, $first+1, …` for `n` values.
pub(crate) fn placeholders(first: usize, n: usize) -> String {
    (first..first + n)
        .map(|i| format!("${i}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// `($a, $a+1, …), (…)`: `rows` groups of `width` placeholders numbered
/// from `first`, for the multi-row `VALUES` of set-based statements.
fn value_rows(first: usize, rows: usize, width: usize) -> String {
    (0..rows)
        .map(|r| format!("({})", placeholders(first + r * width, width)))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The multi-row `VALUES` of `rows`, numbered after the statement's own
/// arguments `fixed` (`$1…`), and all the arguments in order: each row's
/// cells as `cells` gives them, so the numbering cannot drift from them.
pub(crate) fn values<'a, T, const W: usize>(
    mut fixed: Vec<Arg<'a>>,
    rows: &'a [T],
    cells: impl Fn(&'a T) -> [Arg<'a>; W],
) -> (String, Vec<Arg<'a>>) {
    let sql = value_rows(fixed.len() + 1, rows.len(), W);
    fixed.reserve(rows.len() * W);
    for row in rows {
        fixed.extend(cells(row));
    }
    (sql, fixed)
}

/// A row read back: every getter names its column and fails with
/// [`StoreError::Corrupt`] instead of panicking on a value it cannot read.
pub trait Row: Send + Sync {
    fn i64(&self, col: &str) -> Result<i64, StoreError>;
    fn i32(&self, col: &str) -> Result<i32, StoreError>;
    fn bool(&self, col: &str) -> Result<bool, StoreError>;
    fn text(&self, col: &str) -> Result<String, StoreError>;
    fn opt_text(&self, col: &str) -> Result<Option<String>, StoreError>;
    fn time(&self, col: &str) -> Result<DateTime<Utc>, StoreError>;
    fn opt_time(&self, col: &str) -> Result<Option<DateTime<Utc>>, StoreError>;
}

/// Where statements run: the pool (each statement on its own) or a transaction.
#[async_trait::async_trait]
pub trait Exec: Send {
    type Row: Row;
    async fn all(&mut self, sql: &str, args: &[Arg<'_>]) -> Result<Vec<Self::Row>, sqlx::Error>;
    async fn opt(&mut self, sql: &str, args: &[Arg<'_>]) -> Result<Option<Self::Row>, sqlx::Error>;
    /// Rows affected.
    async fn run(&mut self, sql: &str, args: &[Arg<'_>]) -> Result<u64, sqlx::Error>;
}

/// What a transaction is for. SQLite takes its write lock at `BEGIN` for
/// writes, so a read-then-write never fails to upgrade its lock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TxMode {
    Write,
    Read,
}

/// The per-database part of the store.
#[async_trait::async_trait]
pub trait Dialect: Send + Sync + Sized + 'static {
    type Row: Row;
    type Pool<'a>: Exec<Row = Self::Row>
    where
        Self: 'a;
    type Tx: Exec<Row = Self::Row>;

    const BACKEND: Backend;
    /// Appended to a `SELECT` that reads rows it will then change in the same
    /// transaction (`FOR UPDATE` where rows can be locked; nothing where the
    /// whole database is).
    const LOCK_ROWS: &'static str;
    /// Appended to a bounded `SELECT` that picks rows to change when another
    /// node may be picking the same ones: take only rows nobody has locked.
    const SKIP_LOCKED: &'static str;
    /// What makes the space of deleted and updated rows reusable, if the
    /// database needs telling (see [`crate::store::RetentionStore::reclaim`]).
    const RECLAIM: Option<&'static str> = None;

    fn pool(&self) -> Self::Pool<'_>;
    /// The fail-fast gate in front of the database, where there is one.
    fn gate(&self) -> Option<&super::gate::Gate> {
        None
    }
    async fn begin(&self, mode: TxMode) -> Result<Self::Tx, sqlx::Error>;
    async fn commit(tx: Self::Tx) -> Result<(), sqlx::Error>;
    async fn close(&self);

    /// The claim: set `status = 'dispatched'` and the lease on up to `$6`
    /// queued, ready, unexpired items of workspace `$5`, in claim order.
    /// Parameters: `$1` lease token, `$2` node, `$3` lease until, `$4` now,
    /// `$5` workspace, `$6` limit. Returns the claimed rows' columns.
    fn claim_sql(&self) -> &str;

    /// A statement run first, in the claim's own transaction, when the
    /// dialect needs the claim planned a certain way (`None`: the claim
    /// runs on its own).
    const CLAIM_PLAN: Option<&'static str> = None;

    /// Whole seconds from the SQL expression `since` to the instant bound at
    /// `$1`, as SQL text (the stuck reason's number).
    fn seconds_to_param1(since: &str) -> String;

    /// Tell every node's drain that these workspaces have new items; called
    /// after the commit that wrote them. (The dialect's own batch statements
    /// may notify inside the statement instead, saving the round trip.)
    async fn woke(&self, workspaces: &[&str]);

    /// Wakes from every node's enqueues.
    async fn listen(&self) -> Result<Box<dyn WakeStream>, StoreError>;

    async fn enqueue(
        &self,
        item: &NewQueueItem,
        max_attempts: u32,
        now: DateTime<Utc>,
    ) -> Result<Enqueued, StoreError> {
        enqueue_each(self, std::slice::from_ref(item), max_attempts, now, true)
            .await
            .map(|mut v| v.remove(0))
    }

    /// Depths counted when `count` (else 0).
    async fn enqueue_batch(
        &self,
        items: &[NewQueueItem],
        max_attempts: u32,
        now: DateTime<Utc>,
        count: bool,
    ) -> Result<Vec<Enqueued>, StoreError> {
        enqueue_each(self, items, max_attempts, now, count).await
    }

    /// Write outcomes of claimed items, each fenced by its lease token;
    /// answers the ids written.
    async fn settle(
        &self,
        rows: &[Settle<'_>],
        now: DateTime<Utc>,
    ) -> Result<Vec<i64>, StoreError> {
        settle_set(self, rows, now).await
    }

    /// The compare-and-set slot claims with their run records and fires.
    async fn claim_slots(
        &self,
        fires: &[SlotFire],
        max_attempts: u32,
        now: DateTime<Utc>,
    ) -> Result<Vec<i64>, StoreError> {
        claim_slots_set(self, fires, max_attempts, now).await
    }
}

/// The store: the shared statements over one dialect.
pub struct SqlStore<D: Dialect> {
    pub(crate) d: D,
}

impl<D: Dialect> SqlStore<D> {
    pub fn new(dialect: D) -> Self {
        Self { d: dialect }
    }
}

/// `'a', 'b'` for an SQL `IN (…)` list of our own status names (constants,
/// never input, so inlining them is safe and keeps one statement per use).
pub(crate) fn in_list<'a>(names: impl IntoIterator<Item = &'a str>) -> String {
    names
        .into_iter()
        .map(|s| format!("'{s}'"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// `a.x, a.y` from `x, y`.
pub(crate) fn prefixed(columns: &str, alias: &str) -> String {
    columns
        .split(", ")
        .map(|c| format!("{alias}.{}", c.trim()))
        .collect::<Vec<_>>()
        .join(", ")
}

/// A mapper from a sqlx error to ours, naming the operation.
pub(crate) fn query(operation: &'static str) -> impl FnOnce(sqlx::Error) -> StoreError {
    StoreError::query(operation)
}

#[async_trait::async_trait]
impl<D: Dialect> super::Driver for SqlStore<D> {
    fn backend(&self) -> Backend {
        D::BACKEND
    }

    async fn ping(&self) -> Result<(), StoreError> {
        self.d
            .pool()
            .run("SELECT 1", &[])
            .await
            .map_err(query("ping"))?;
        Ok(())
    }

    async fn listen(&self) -> Result<Box<dyn WakeStream>, StoreError> {
        self.d.listen().await
    }

    async fn notify(&self, workspaces: &[&str]) {
        if !workspaces.is_empty() {
            self.d.woke(workspaces).await;
        }
    }

    async fn close(&self) {
        self.d.close().await;
    }

    fn recovering(&self, window: std::time::Duration) -> bool {
        self.d
            .gate()
            .is_some_and(|g| g.unsettled(std::time::Instant::now(), window))
    }
}

#[cfg(test)]
mod tests {
    use super::{value_rows, values, Arg};

    #[test]
    fn value_rows_number_every_cell_once_in_order() {
        assert_eq!(value_rows(2, 2, 3), "($2, $3, $4), ($5, $6, $7)");
        assert_eq!(value_rows(1, 1, 1), "($1)");
        assert_eq!(value_rows(3, 0, 7), "");
    }

    #[test]
    fn values_number_rows_after_the_fixed_arguments() {
        let rows = [1_i64, 2];
        let (sql, args) = values(vec![Arg::Bool(true)], &rows, |n| {
            [Arg::I64(*n), Arg::I64(-n)]
        });
        assert_eq!(sql, "($2, $3), ($4, $5)");
        let ints: Vec<i64> = args
            .iter()
            .filter_map(|a| match a {
                Arg::I64(v) => Some(*v),
                _ => None,
            })
            .collect();
        assert_eq!(ints, [1, -1, 2, -2]);
        assert_eq!(args.len(), 5);
    }
}
