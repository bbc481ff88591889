//! The delivery queue's benchmark harness (not a timed test).
//!
//! `cargo run --release --example queue_bench -- --database URL` runs against a
//! fresh database (a new Postgres database on the given server, or a new
//! SQLite file) with a no-op dispatcher and delivery concurrency 10:
//! - W1: bulk-enqueue 20,000 items in batches of 1,000 (the workspace has no room);
//! - W1s: enqueue 2,000 one at a time;
//! - W2: give the workspace room and time until the database shows all 20,000 completed;
//! - W3: enqueue 500 one at a time at 50/s into the idle running system and
//!   measure enqueue → dispatch-start latency.
//!
//! It prints one JSON line.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use clap::Parser;
use ringmaster::config::Config;
use ringmaster::dispatch::{Delivery, DispatchError, DispatchOutcome, Dispatcher};
use ringmaster::messages::heartbeat::HeartbeatMsg;
use ringmaster::messages::queue::QueueMsg;
use ringmaster::model::a2a::a2a_message;
use ringmaster::model::queue::{NewQueueItem, QueueStatus};
use ringmaster::model::workspace::WorkspaceBeat;
use ringmaster::names::Names;
use ringmaster::{Ringmaster, StartOptions};
use serde_json::json;

#[derive(Parser)]
struct Args {
    /// postgres://… (a fresh database is created on that server) or sqlite://… (a fresh file beside it).
    #[arg(long)]
    database: String,
    #[arg(long, default_value_t = 20_000)]
    jobs: usize,
    #[arg(long, default_value_t = 10)]
    concurrency: u32,
    /// Items the node may hold claimed ahead of dispatch (default: the
    /// configuration's default).
    #[arg(long)]
    prefetch: Option<u32>,
}

/// Answers at once and notes when each item's dispatch started.
#[derive(Clone, Default)]
struct NoOp {
    started: Arc<Mutex<HashMap<i64, Instant>>>,
}

#[async_trait::async_trait]
impl Dispatcher for NoOp {
    async fn deliver(&self, d: &Delivery) -> Result<DispatchOutcome, DispatchError> {
        self.started
            .lock()
            .unwrap()
            .insert(d.item_id, Instant::now());
        Ok(DispatchOutcome::Delivered {
            response: r#"{"jsonrpc":"2.0","id":1,"result":{"kind":"message","parts":[]}}"#
                .to_string(),
        })
    }
}

async fn fresh_database(url: &str) -> Result<String, Box<dyn std::error::Error>> {
    use sqlx::Connection;
    let name = format!("ringmaster_bench_{}", uuid::Uuid::new_v4().simple());
    if url.starts_with("sqlite:") {
        let dir = std::env::temp_dir().join(&name);
        std::fs::create_dir_all(&dir)?;
        return Ok(format!("sqlite://{}", dir.join("bench.db").display()));
    }
    let mut conn = sqlx::PgConnection::connect(url).await?;
    sqlx::query(&format!("CREATE DATABASE \"{name}\""))
        .execute(&mut conn)
        .await?;
    let base = url.split('?').next().unwrap_or(url);
    let (server, _) = base
        .rsplit_once('/')
        .ok_or("postgres URL without a database")?;
    Ok(format!("{server}/{name}"))
}

/// The scratch database made by [`fresh_database`] goes when the run ends.
async fn drop_database(admin: &str, url: &str) {
    use sqlx::Connection;
    if url.starts_with("sqlite:") {
        if let Some(dir) = std::path::Path::new(url.trim_start_matches("sqlite://")).parent() {
            let _ = std::fs::remove_dir_all(dir);
        }
        return;
    }
    let name = url.rsplit('/').next().unwrap_or_default();
    if let Ok(mut conn) = sqlx::PgConnection::connect(admin).await {
        let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
            .execute(&mut conn)
            .await;
    }
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((p / 100.0) * (sorted.len() as f64 - 1.0)).round() as usize;
    sorted[rank.min(sorted.len() - 1)]
}

fn round(x: f64, places: i32) -> f64 {
    let f = 10f64.powi(places);
    (x * f).round() / f
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse();
    // RUST_LOG=sqlx::query=debug shows where the time goes; quiet otherwise.
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("error")),
        )
        .with_writer(std::io::stderr)
        .init();
    let url = fresh_database(&args.database).await?;
    let store = ringmaster::store::open(&url).await?;
    let config = Config {
        database_url: url.clone(),
        delivery_concurrency: args.concurrency,
        queue_prefetch: args
            .prefetch
            .unwrap_or_else(|| Config::default().queue_prefetch),
        ..Config::default()
    };
    let prefetch = config.queue_prefetch;
    let noop = NoOp::default();
    let ringmaster = Ringmaster::start_with(StartOptions {
        names: Names::unique("bench"),
        dispatcher: Arc::new(noop.clone()),
        ..StartOptions::new(config, store.clone())
    })
    .await?;
    let queue = ringmaster.queue()?;
    let now = chrono::Utc::now();
    // No room yet: W1 and W1s only enqueue.
    store
        .register_workspace("bench", Some("http://127.0.0.1:9/"), 0, now)
        .await?;
    store
        .register_workspace("bench-w1s", Some("http://127.0.0.1:9/"), 0, now)
        .await?;
    store
        .register_workspace("bench-w3", Some("http://127.0.0.1:9/"), 10_000, now)
        .await?;

    // W1: bulk enqueue in batches of 1,000.
    let w1_start = Instant::now();
    for chunk in (0..args.jobs).collect::<Vec<_>>().chunks(1000) {
        let items: Vec<NewQueueItem> = chunk
            .iter()
            .map(|i| NewQueueItem::new("bench", a2a_message(&format!("w1-{i}"), "bench")))
            .collect();
        queue
            .call(
                |reply| QueueMsg::EnqueueBatch {
                    items,
                    reply: Some(reply),
                },
                None,
            )
            .await?
            .success_or("no answer")??;
    }
    let w1 = w1_start.elapsed().as_secs_f64();

    // W1s: one at a time.
    let w1s_jobs = 2_000;
    let w1s_start = Instant::now();
    for i in 0..w1s_jobs {
        let item = NewQueueItem::new("bench-w1s", a2a_message(&format!("w1s-{i}"), "bench"));
        queue
            .call(
                |reply| QueueMsg::Enqueue {
                    item,
                    reply: Some(reply),
                },
                None,
            )
            .await?
            .success_or("no answer")??;
    }
    let w1s = w1s_start.elapsed().as_secs_f64();

    // W2: room arrives; time until the database shows all completed.
    let heartbeat = ringmaster.heartbeat()?;
    let w2_start = Instant::now();
    heartbeat.cast(HeartbeatMsg::WorkspaceBeat {
        beat: WorkspaceBeat {
            workspace: "bench".into(),
            active_tasks: 0,
            max_concurrent: Some(10_000),
        },
        reply: None,
    })?;
    // Wait in process until every item was handed to the dispatcher, then
    // poll the database until all are recorded completed: the workspace's
    // active count, then the per-status counts. Counting from the start
    // (every 2 ms, each a walk over all active items) took a good share of
    // the 2 cores the drain is measured on (4.3 s of counting in a 5.4 s
    // drain of 100,000); graphile-worker's bench likewise waits for its
    // in-process completions before it polls.
    let mut drained = false;
    while w2_start.elapsed() < Duration::from_secs(300)
        && noop.started.lock().unwrap().len() < args.jobs
    {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    while w2_start.elapsed() < Duration::from_secs(300) {
        if store.queue_depth("bench").await? == 0 {
            let counts = store.queue_counts().await?;
            let completed = counts
                .iter()
                .find(|(s, _)| *s == QueueStatus::Completed)
                .map(|c| c.1)
                .unwrap_or(0);
            if completed as usize >= args.jobs {
                drained = true;
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let w2 = w2_start.elapsed().as_secs_f64();

    // W3: 500 at 50/s into the idle system; enqueue → dispatch start.
    let w3_jobs = 500;
    let mut sent: Vec<(i64, Instant)> = Vec::with_capacity(w3_jobs);
    let mut replies: Vec<f64> = Vec::with_capacity(w3_jobs);
    let mut ticker = tokio::time::interval(Duration::from_millis(20));
    for i in 0..w3_jobs {
        ticker.tick().await;
        let item = NewQueueItem::new("bench-w3", a2a_message(&format!("w3-{i}"), "bench"));
        let start = Instant::now();
        let e = queue
            .call(
                |reply| QueueMsg::Enqueue {
                    item,
                    reply: Some(reply),
                },
                None,
            )
            .await?
            .success_or("no answer")??;
        replies.push(start.elapsed().as_secs_f64() * 1000.0);
        sent.push((e.id, start));
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let started = noop.started.lock().unwrap().clone();
    let mut latencies: Vec<f64> = sent
        .iter()
        .filter_map(|(id, at)| {
            started
                .get(id)
                .map(|s| s.duration_since(*at).as_secs_f64() * 1000.0)
        })
        .collect();
    latencies.sort_by(|a, b| a.partial_cmp(b).unwrap());

    replies.sort_by(|a, b| a.partial_cmp(b).unwrap());
    ringmaster.shutdown().await;
    let line = json!({
        "peer": "ringmaster",
        "version": env!("CARGO_PKG_VERSION"),
        "profile": "default",
        "config": {
            "backend": if url.starts_with("sqlite:") { "sqlite" } else { "postgres" },
            "concurrency": args.concurrency,
            "prefetch": prefetch,
            "batch": 1000,
        },
        "w1": {"jobs": args.jobs, "seconds": round(w1, 4), "jobs_per_s": round(args.jobs as f64 / w1, 0)},
        "w1s": {"jobs": w1s_jobs, "seconds": round(w1s, 4), "jobs_per_s": round(w1s_jobs as f64 / w1s, 0)},
        "w2": {"jobs": args.jobs, "seconds": round(w2, 4), "jobs_per_s": round(args.jobs as f64 / w2, 0), "concurrency": args.concurrency, "drained": drained},
        "w3": {
            "jobs": w3_jobs,
            "p50_ms": round(percentile(&latencies, 50.0), 3),
            "p90_ms": round(percentile(&latencies, 90.0), 3),
            "p99_ms": round(percentile(&latencies, 99.0), 3),
            "max_ms": round(latencies.last().copied().unwrap_or(f64::NAN), 3),
            "seen": latencies.len(),
            "enqueue_reply_p50_ms": round(percentile(&replies, 50.0), 3),
        },
    });
    println!("{line}");
    store.close().await;
    drop_database(&args.database, &url).await;
    Ok(())
}
