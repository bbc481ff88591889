//! How long one delegation sweep takes over a large ledger, set-based (what
//! the DelegationSweeperActor does) against row at a time (what the old Go
//! Go sweeper did: read every in-flight row, then one status write per
//! offender). Prints one JSON line.
//!
//! ```sh
//! cargo run --release --example sweep_bench -- --database postgres://root@127.0.0.1:5432/test
//! cargo run --release --example sweep_bench -- --database sqlite:///tmp/sweep-bench.db
//! ```
//!
//! Nothing existing is touched: on Postgres the run gets a scratch database on
//! the named server (dropped afterwards); on SQLite the file must not exist
//! yet (it is removed afterwards).

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Duration as Span, TimeZone, Utc};
use clap::Parser;
use ractor::Actor;
use ringmaster::actors::sweeper::{DelegationSweeperActor, SweeperArgs};
use ringmaster::clock::ManualClock;
use ringmaster::events::EventBus;
use ringmaster::messages::sweeper::SweeperMsg;
use ringmaster::model::delegation::{DelegationStatus, StatusChange, DEADLINE_EXCEEDED};
use ringmaster::names::Names;
use ringmaster::store::{self, Store};
use sqlx::{Connection, QueryBuilder};

#[derive(Parser)]
#[command(about = "Time one delegation sweep, set-based and row at a time")]
struct Args {
    /// `postgres://…` (a scratch database is made on that server) or
    /// `sqlite://PATH` (PATH must not exist yet).
    #[arg(long)]
    database: String,
    /// In-flight delegations to sweep; 10% past deadline, 10% silent.
    #[arg(long, default_value_t = 100_000)]
    rows: usize,
}

const THRESHOLD: Span = Span::minutes(10);
const BATCH: usize = 1000;

type Failure = Box<dyn std::error::Error + Send + Sync>;

/// One seeded row: (id, status, created_at, deadline, last_heartbeat).
type Row = (
    String,
    &'static str,
    DateTime<Utc>,
    DateTime<Utc>,
    Option<DateTime<Utc>>,
);

/// Every tenth row is past its deadline (though beating), every tenth+1 has
/// been silent for 15 minutes (half of those never beat), the rest are healthy.
fn rows(n: usize, now: DateTime<Utc>) -> Vec<Row> {
    let statuses = ["queued", "dispatched", "in_progress", "in_progress"];
    (0..n)
        .map(|i| {
            let id = format!("bench-{i:07}");
            let status = statuses[i % statuses.len()];
            match i % 10 {
                0 => (
                    id,
                    status,
                    now - Span::hours(7),
                    now - Span::minutes(1),
                    Some(now - Span::seconds(30)),
                ),
                1 => (
                    id,
                    status,
                    now - Span::minutes(20),
                    now + Span::hours(5),
                    (i % 20 == 1).then(|| now - Span::minutes(15)),
                ),
                _ => (
                    id,
                    status,
                    now - Span::minutes(5),
                    now + Span::hours(6),
                    Some(now - Span::seconds(30)),
                ),
            }
        })
        .collect()
}

enum Db {
    Postgres { admin: String, name: String },
    Sqlite { path: String },
}

impl Db {
    /// A place to run that holds nothing of anyone's, and its URL.
    async fn scratch(url: &str) -> Result<(Db, String), Failure> {
        if let Some(path) = url.strip_prefix("sqlite://") {
            let path = path.split('?').next().unwrap_or(path).to_string();
            if std::path::Path::new(&path).exists() {
                return Err(
                    format!("{path} exists; give a path the bench may create and remove").into(),
                );
            }
            return Ok((Db::Sqlite { path }, url.to_string()));
        }
        if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
            return Err(format!("unsupported database URL {url:?}").into());
        }
        let name = format!("ringmaster_bench_{}", uuid::Uuid::new_v4().simple());
        let mut conn = sqlx::PgConnection::connect(url).await?;
        sqlx::query(&format!("CREATE DATABASE \"{name}\""))
            .execute(&mut conn)
            .await?;
        conn.close().await?;
        let (base, query) = url
            .split_once('?')
            .map_or((url, String::new()), |(b, q)| (b, format!("?{q}")));
        let (server, _) = base
            .rsplit_once('/')
            .ok_or("postgres URL has no database path")?;
        let scratch = format!("{server}/{name}{query}");
        Ok((
            Db::Postgres {
                admin: url.to_string(),
                name,
            },
            scratch,
        ))
    }

    async fn remove(self) -> Result<(), Failure> {
        match self {
            Db::Postgres { admin, name } => {
                let mut conn = sqlx::PgConnection::connect(&admin).await?;
                sqlx::query(&format!("DROP DATABASE IF EXISTS \"{name}\""))
                    .execute(&mut conn)
                    .await?;
                conn.close().await?;
            }
            Db::Sqlite { path } => {
                for suffix in ["", "-wal", "-shm"] {
                    let _ = std::fs::remove_file(format!("{path}{suffix}"));
                }
            }
        }
        Ok(())
    }
}

/// Empty the table and insert `rows` in multi-row INSERTs of [`BATCH`], one
/// transaction, then refresh planner statistics as autovacuum eventually would.
async fn seed(url: &str, rows: &[Row]) -> Result<(), Failure> {
    const INSERT: &str = "INSERT INTO delegations \
        (id, workspace_id, status, created_at, updated_at, deadline, last_heartbeat) ";
    if url.starts_with("sqlite:") {
        let mut conn = sqlx::SqliteConnection::connect(url).await?;
        let mut tx = conn.begin().await?;
        sqlx::query("DELETE FROM delegations")
            .execute(&mut *tx)
            .await?;
        for chunk in rows.chunks(BATCH) {
            let mut insert = QueryBuilder::<sqlx::Sqlite>::new(INSERT);
            insert.push_values(chunk, |mut b, (id, status, created, deadline, beat)| {
                b.push_bind(id)
                    .push_bind("worker")
                    .push_bind(*status)
                    .push_bind(created.timestamp_millis())
                    .push_bind(created.timestamp_millis())
                    .push_bind(deadline.timestamp_millis())
                    .push_bind(beat.map(|t| t.timestamp_millis()));
            });
            insert.build().execute(&mut *tx).await?;
        }
        tx.commit().await?;
        sqlx::query("ANALYZE").execute(&mut conn).await?;
        conn.close().await?;
    } else {
        let mut conn = sqlx::PgConnection::connect(url).await?;
        let mut tx = conn.begin().await?;
        sqlx::query("TRUNCATE delegations")
            .execute(&mut *tx)
            .await?;
        for chunk in rows.chunks(BATCH) {
            let mut insert = QueryBuilder::<sqlx::Postgres>::new(INSERT);
            insert.push_values(chunk, |mut b, (id, status, created, deadline, beat)| {
                b.push_bind(id)
                    .push_bind("worker")
                    .push_bind(*status)
                    .push_bind(*created)
                    .push_bind(*created)
                    .push_bind(*deadline)
                    .push_bind(*beat);
            });
            insert.build().execute(&mut *tx).await?;
        }
        tx.commit().await?;
        sqlx::query("VACUUM ANALYZE delegations")
            .execute(&mut conn)
            .await?;
        conn.close().await?;
    }
    Ok(())
}

/// The real path: a `Sweep { now }` message to the DelegationSweeperActor.
async fn set_based(store: &Store, now: DateTime<Utc>) -> Result<(u64, u64, Duration), Failure> {
    // The actor sweeps once at start by its clock: a day early, so that
    // start-up sweep finds nothing and the timed one does all the work.
    let clock = Arc::new(ManualClock::new(now - Span::days(1)));
    let (sweeper, handle) = Actor::spawn(
        None,
        DelegationSweeperActor,
        SweeperArgs {
            names: Names::unique("bench"),
            store: store.clone(),
            clock,
            interval: Duration::from_secs(3600),
            stuck_threshold: THRESHOLD.to_std()?,
            events: EventBus::new(),
        },
    )
    .await?;
    let ping = |now| {
        let sweeper = sweeper.clone();
        async move {
            sweeper
                .call(
                    |reply| SweeperMsg::Sweep {
                        now: Some(now),
                        reply: Some(reply),
                    },
                    None,
                )
                .await
        }
    };
    // Wait out the start-up sweep so it is not timed.
    ping(now - Span::days(1)).await?;
    let started = Instant::now();
    let report = ping(now).await?;
    let took = started.elapsed();
    let report = match report {
        ractor::rpc::CallResult::Success(r) => r?,
        _ => return Err("the sweeper did not answer".into()),
    };
    sweeper.stop(None);
    handle.await?;
    Ok((report.failed, report.stuck, took))
}

/// The naive sweeper: read every in-flight row, decide in the program, then
/// one conditional status write per offender (the old Go sweeper's `SetStatus` loop).
async fn row_at_a_time(store: &Store, now: DateTime<Utc>) -> Result<(u64, u64, Duration), Failure> {
    let started = Instant::now();
    let mut in_flight = Vec::new();
    for status in DelegationStatus::IN_FLIGHT {
        in_flight.extend(store.list_delegations(status, u32::MAX).await?);
    }
    let (mut failed, mut stuck) = (0, 0);
    for d in in_flight {
        let last_sign = d.last_heartbeat.unwrap_or(d.created_at);
        let change = if d.deadline < now {
            failed += 1;
            StatusChange {
                to: DelegationStatus::Failed,
                error_detail: Some(DEADLINE_EXCEEDED.into()),
                result: None,
            }
        } else if last_sign < now - THRESHOLD {
            stuck += 1;
            StatusChange {
                to: DelegationStatus::Stuck,
                error_detail: Some(format!(
                    "no heartbeat for {}s",
                    (now - last_sign).num_seconds()
                )),
                result: None,
            }
        } else {
            continue;
        };
        store.set_delegation_status(&d.id, &change, now).await?;
    }
    Ok((failed, stuck, started.elapsed()))
}

async fn run(url: &str, n: usize) -> Result<String, Failure> {
    let now = Utc.with_ymd_and_hms(2026, 1, 15, 12, 0, 0).unwrap();
    let rows = rows(n, now);
    let store = store::open(url).await?;

    seed(url, &rows).await?;
    let (failed, stuck, sweep) = set_based(&store, now).await?;

    seed(url, &rows).await?;
    let (naive_failed, naive_stuck, naive) = row_at_a_time(&store, now).await?;
    store.close().await;

    if (failed, stuck) != (naive_failed, naive_stuck) {
        return Err(format!(
            "the two sweeps disagree: set-based {failed}/{stuck}, row at a time {naive_failed}/{naive_stuck}"
        )
        .into());
    }
    eprintln!(
        "{}: set-based {:.3}s, row at a time {:.3}s, {:.0}x",
        store::redact(url),
        sweep.as_secs_f64(),
        naive.as_secs_f64(),
        naive.as_secs_f64() / sweep.as_secs_f64()
    );
    // Written by hand to keep the keys in the documented order.
    Ok(format!(
        r#"{{"rows":{n},"failed":{failed},"stuck":{stuck},"sweep_s":{:.3},"row_at_a_time_s":{:.3}}}"#,
        sweep.as_secs_f64(),
        naive.as_secs_f64()
    ))
}

#[tokio::main]
async fn main() -> Result<(), Failure> {
    let args = Args::parse();
    let (db, url) = Db::scratch(&args.database).await?;
    let result = run(&url, args.rows).await;
    db.remove().await?;
    println!("{}", result?);
    Ok(())
}
