//! Metrics at scale: `--rows` finished queue rows present (3 M by default),
//! then `/metrics` scraped one at a time, and a message round trip to an
//! idle agent (200, delivered) timed alone and while another client scrapes
//! `/metrics` in a loop.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;

use crate::db::ScratchDb;
use crate::load::{self, Stats};
use crate::node::Server;
use crate::{agent, Opts};

const SCRAPES: usize = 40;
const ROUND_TRIPS: usize = 150;

pub async fn run(opts: &Opts) -> String {
    let db = ScratchDb::create(&opts.database).await;
    // Start once so the binary brings the schema up, seed, then serve.
    drop(Server::start(&opts.bin, &db.url, &[]));
    let seeded = Instant::now();
    seed(&db, opts.rows).await;
    let seed_s = seeded.elapsed().as_secs_f64();
    let server = Server::start(&opts.bin, &db.url, &[]);
    let url = agent::start().await;
    load::workspace(&server.base, "idle", &url, 64, 0).await;
    let client = load::client();

    let mut scrapes = Stats::default();
    let started = Instant::now();
    for _ in 0..SCRAPES {
        let t = Instant::now();
        let ok = client
            .get(format!("{}/metrics", server.base))
            .send()
            .await
            .map(|r| r.status().is_success())
            .unwrap_or(false);
        scrapes.add(t, ok);
    }
    scrapes.seconds = started.elapsed().as_secs_f64();

    let alone = round_trips(&client, &server.base, 0).await;
    let stop = Arc::new(AtomicBool::new(false));
    let scraper = {
        let (stop, base, client) = (stop.clone(), server.base.clone(), client.clone());
        tokio::spawn(async move {
            let mut n = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let _ = client
                    .get(format!("{base}/metrics"))
                    .send()
                    .await
                    .map(|r| r.bytes());
                n += 1;
            }
            n
        })
    };
    let scraped = round_trips(&client, &server.base, ROUND_TRIPS).await;
    stop.store(true, Ordering::Relaxed);
    let scrapes_during = scraper.await.unwrap_or(0);
    drop(server);
    let line = json!({
        "bench": "metrics",
        "backend": if db.is_postgres() { "postgres" } else { "sqlite" },
        "finished_rows": opts.rows,
        "seed_s": load::round2(seed_s),
        "metrics_scrape": scrapes.json(),
        "round_trip_alone": alone.json(),
        "round_trip_while_scraping": scraped.json(),
        "scrapes_during": scrapes_during,
    });
    db.drop_now().await;
    line.to_string()
}

/// `ROUND_TRIPS` messages one after another to the idle agent.
async fn round_trips(client: &reqwest::Client, base: &str, offset: usize) -> Stats {
    let mut stats = Stats::default();
    let started = Instant::now();
    for n in 0..ROUND_TRIPS {
        let t = Instant::now();
        let ok = client
            .post(format!("{base}/v1/workspaces/idle/messages"))
            .header("content-type", "application/json")
            .body(load::message(&format!("rt{}", n + offset)))
            .timeout(Duration::from_secs(10))
            .send()
            .await
            .map(|r| r.status() == reqwest::StatusCode::OK)
            .unwrap_or(false);
        stats.add(t, ok);
    }
    stats.seconds = started.elapsed().as_secs_f64();
    stats
}

/// `rows` completed items of another workspace, finished now (inside any
/// retention), in chunks.
async fn seed(db: &ScratchDb, rows: u64) {
    let chunk = 500_000u64;
    let mut done = 0;
    while done < rows {
        let n = chunk.min(rows - done);
        let sql = if db.is_postgres() {
            format!(
                "INSERT INTO queue_items (workspace_id, body, status, attempts, max_attempts,
                     enqueued_at, available_at, finished_at, updated_at, response)
                 SELECT 'old', '{{}}', 'completed', 1, 5, now(), now(), now(), now(), 'ok'
                 FROM generate_series(1, {n})"
            )
        } else {
            format!(
                "WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM s WHERE i < {n})
                 INSERT INTO queue_items (workspace_id, body, status, attempts, max_attempts,
                     enqueued_at, available_at, finished_at, updated_at, response)
                 SELECT 'old', '{{}}', 'completed', 1, 5, t, t, t, t, 'ok'
                 FROM s, (SELECT CAST(unixepoch('subsec') * 1000 AS INTEGER) AS t)"
            )
        };
        db.execute(&sql).await;
        done += n;
    }
    db.execute("ANALYZE").await;
}
