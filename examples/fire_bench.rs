//! Fire benchmark: 10,000 schedules due in the same minute, a no-op dispatcher,
//! the whole service running (scheduler → queue → dispatcher). Measures how
//! long after the slot the last fire reaches the dispatcher, the lateness of
//! each fire (slot → dispatch, p50/p99), and the cost of one next-fire
//! computation over a mix of specs and zones. Prints one JSON line.
//!
//! ```text
//! cargo run --release --example fire_bench -- --database postgres://root@127.0.0.1:5432/fire_bench
//! cargo run --release --example fire_bench -- --database sqlite:///tmp/fire_bench.db
//! ```
//!
//! Use a fresh database: the schedules are created by the run. Time is the
//! system clock shifted so the slot comes two seconds after start-up, so the
//! run does not wait for a real minute boundary.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, DurationRound, Utc};
use ringmaster::clock::Clock;
use ringmaster::config::Config;
use ringmaster::dispatch::{Delivery, DispatchError, DispatchOutcome, Dispatcher};
use ringmaster::model::schedule::NewSchedule;
use ringmaster::schedule::{DstPolicy, ScheduleSpec};
use ringmaster::{Ringmaster, StartOptions};

/// The system clock moved by a fixed offset.
#[derive(Debug)]
struct ShiftedClock {
    offset: chrono::Duration,
}

impl Clock for ShiftedClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now() + self.offset
    }
}

/// Answers at once and notes when each fire arrived.
struct NoopDispatcher {
    clock: Arc<ShiftedClock>,
    arrivals: Mutex<Vec<DateTime<Utc>>>,
}

#[async_trait::async_trait]
impl Dispatcher for NoopDispatcher {
    async fn deliver(&self, delivery: &Delivery) -> Result<DispatchOutcome, DispatchError> {
        let now = self.clock.now();
        self.arrivals
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(now);
        Ok(DispatchOutcome::Delivered {
            response: format!(
                r#"{{"jsonrpc":"2.0","id":{},"result":{{"parts":[{{"kind":"text","text":"ok"}}]}}}}"#,
                delivery.item_id
            ),
        })
    }
}

struct Args {
    database: String,
    schedules: usize,
    workspaces: usize,
    concurrency: u32,
    batch: u32,
}

fn args() -> Result<Args, String> {
    let mut out = Args {
        database: String::new(),
        schedules: 10_000,
        workspaces: 100,
        // Room for every fire at once: the queue's global limit is not what is
        // measured here (see BENCHMARKS.md for a run at the default of 64).
        concurrency: 10_000,
        batch: Config::default().scheduler_batch,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it.next().ok_or(format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--database" => out.database = value,
            "--schedules" => out.schedules = value.parse().map_err(|_| "--schedules: a number")?,
            "--workspaces" => {
                out.workspaces = value.parse().map_err(|_| "--workspaces: a number")?
            }
            "--batch" => out.batch = value.parse().map_err(|_| "--batch: a number")?,
            "--concurrency" => {
                out.concurrency = value.parse().map_err(|_| "--concurrency: a number")?
            }
            other => return Err(format!("unknown flag {other}")),
        }
    }
    if out.database.is_empty() {
        return Err(
            "usage: fire_bench --database URL [--schedules N] [--workspaces N] [--concurrency N] [--batch N]"
                .into(),
        );
    }
    Ok(out)
}

fn percentile(sorted: &[i64], p: f64) -> i64 {
    if sorted.is_empty() {
        return 0;
    }
    let rank = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    sorted[rank.min(sorted.len() - 1)]
}

/// Mean cost of `next_after` over specs × zones × instants spread over a year.
fn next_fire_ns() -> f64 {
    let specs = [
        "*/15 * * * *",
        "0 9 * * MON-FRI",
        "30 2 * * *",
        "@hourly",
        "0 0 1 * *",
        "0 0 1 * MON",
        "5 4 * * sun",
        "every 15m",
        "daily 07:00,13:00",
        "0 */6 * * *",
    ];
    let zones = [
        "UTC",
        "America/New_York",
        "Europe/London",
        "Australia/Lord_Howe",
        "Asia/Kolkata",
    ];
    let parsed: Vec<ScheduleSpec> = specs
        .iter()
        .flat_map(|s| zones.iter().map(move |z| (s, z)))
        .map(|(s, z)| ScheduleSpec::parse(s, z, DstPolicy::Vixie).expect("bench spec parses"))
        .collect();
    let start: DateTime<Utc> = "2026-01-01T00:00:00Z".parse().expect("instant");
    // 7919 minutes apart: a prime stride, so instants land on every hour and weekday.
    let instants: Vec<DateTime<Utc>> = (0..2_000)
        .map(|i| start + chrono::Duration::minutes(7919 * i / 30))
        .collect();
    let mut calls = 0u64;
    let began = Instant::now();
    for spec in &parsed {
        for t in &instants {
            std::hint::black_box(spec.next_after(std::hint::black_box(*t)));
            calls += 1;
        }
    }
    began.elapsed().as_nanos() as f64 / calls as f64
}

/// When the last fire of `slot` entered the queue (the queue actor's clock at
/// insertion): the scheduler's share of the time to dispatch; the rest is the queue's.
async fn last_enqueued(
    store: &ringmaster::store::Store,
    slot: DateTime<Utc>,
) -> Result<DateTime<Utc>, Box<dyn std::error::Error>> {
    let key = format!(
        "cron:%:{}",
        slot.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)
    );
    const ENQUEUED: &str = "SELECT MAX(enqueued_at) FROM queue_items WHERE idempotency_key LIKE $1";
    let url = std::env::args()
        .skip_while(|a| a != "--database")
        .nth(1)
        .unwrap_or_default();
    if store.backend() == ringmaster::store::Backend::Postgres {
        let pool = sqlx::PgPool::connect(&url).await?;
        let enqueued: DateTime<Utc> = sqlx::query_scalar(ENQUEUED)
            .bind(&key)
            .fetch_one(&pool)
            .await?;
        pool.close().await;
        return Ok(enqueued);
    }
    let pool = sqlx::SqlitePool::connect(&url).await?;
    let ms = |v: i64| DateTime::from_timestamp_millis(v).unwrap_or_default();
    let enqueued: i64 = sqlx::query_scalar(&ENQUEUED.replace("$1", "?1"))
        .bind(&key)
        .fetch_one(&pool)
        .await?;
    pool.close().await;
    Ok(ms(enqueued))
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = args()?;
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    let store = ringmaster::store::open(&args.database).await?;

    // The slot: a whole minute, with the schedules created half a minute before it.
    let slot =
        (Utc::now() + chrono::Duration::minutes(2)).duration_trunc(chrono::Duration::minutes(1))?;
    let created = slot - chrono::Duration::seconds(30);
    for w in 0..args.workspaces {
        store
            .register_workspace(&format!("ws-{w}"), Some("http://unused"), 10_000, created)
            .await?;
    }
    for i in 0..args.schedules {
        let new = NewSchedule::new(
            format!("ws-{}", i % args.workspaces),
            format!("bench-{i}"),
            "* * * * *",
            "tick",
        );
        let s = store.create_schedule(&new, created).await?;
        assert_eq!(s.next_run_at, Some(slot));
    }

    // Shift the clock so the slot is two seconds from now.
    let offset = slot - Utc::now() - chrono::Duration::seconds(2);
    let clock = Arc::new(ShiftedClock { offset });
    let dispatcher = Arc::new(NoopDispatcher {
        clock: clock.clone(),
        arrivals: Mutex::new(Vec::with_capacity(args.schedules)),
    });
    let config = Config {
        database_url: args.database.clone(),
        delivery_concurrency: args.concurrency,
        scheduler_batch: args.batch,
        ..Config::default()
    };
    let options = StartOptions {
        clock: clock.clone(),
        dispatcher: dispatcher.clone(),
        ..StartOptions::new(config, store.clone())
    };
    let ringmaster = Ringmaster::start_with(options).await?;

    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let n = dispatcher
            .arrivals
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .len();
        if n >= args.schedules {
            break;
        }
        if Instant::now() > deadline {
            return Err(format!("only {n} of {} dispatched within 120 s", args.schedules).into());
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let mut lateness: Vec<i64> = dispatcher
        .arrivals
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .iter()
        .map(|t| (*t - slot).num_milliseconds())
        .collect();
    lateness.sort_unstable();
    let last = *lateness.last().unwrap_or(&0);
    let enqueued = last_enqueued(&store, slot).await?;
    ringmaster.shutdown().await;

    println!(
        "{}",
        serde_json::json!({
            "schedules": args.schedules,
            "all_dispatched_s": last as f64 / 1000.0,
            "lateness_p50_ms": percentile(&lateness, 50.0),
            "lateness_p99_ms": percentile(&lateness, 99.0),
            "next_fire_ns": next_fire_ns().round(),
            "all_enqueued_s": (enqueued - slot).num_milliseconds() as f64 / 1000.0,
        })
    );
    Ok(())
}
