//! Soak: `--rate` messages a second (1,000 by default) for `--seconds`
//! (600) to an idle agent that beats every 5 s as a live one does,
//! completed retention 60 s and a prune every 10 s; every 10 s the queue
//! table's size, the server's RSS, that stretch's round-trip p99 and how
//! many items wait undelivered (near 0 while the drain keeps up). Flat
//! means the last minute within 10 % of the first.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};

use crate::db::ScratchDb;
use crate::load::{self, MakeRequest};
use crate::node::Server;
use crate::{agent, Opts};

const STRETCH_S: u64 = 10;

pub async fn run(opts: &Opts) -> String {
    let db = ScratchDb::create(&opts.database).await;
    let env = [
        ("RINGMASTER_RETENTION_COMPLETED_S", "60".to_string()),
        ("RINGMASTER_PRUNE_INTERVAL_S", "10".to_string()),
        ("RINGMASTER_DELIVERY_CONCURRENCY", "256".to_string()),
    ];
    let server = Server::start(&opts.bin, &db.url, &env);
    let url = agent::start().await;
    load::workspace(&server.base, "soak", &url, 256, 0).await;
    // Without beats the workspace goes offline after its threshold and
    // nothing more is delivered (every later message only queues).
    let beats = {
        let base = server.base.clone();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_secs(5)).await;
                load::beat(&base, "soak", 0).await;
            }
        })
    };
    let post: MakeRequest = Arc::new(|n| {
        (
            reqwest::Method::POST,
            "/v1/workspaces/soak/messages".into(),
            Some(load::message(&format!("s{n}"))),
        )
    });
    let mut samples: Vec<Value> = Vec::new();
    let stretches = (opts.seconds / STRETCH_S).max(1);
    let (mut ok, mut other) = (0, 0);
    for k in 0..stretches {
        let stats = load::open(
            &server.base,
            opts.rate,
            Duration::from_secs(STRETCH_S),
            k * opts.rate * STRETCH_S,
            post.clone(),
        )
        .await;
        ok += stats.ok;
        other += stats.other;
        let sample = json!({
            "t_s": (k + 1) * STRETCH_S,
            "per_s": stats.rate().round(),
            "p99_ms": load::round2(stats.percentile_ms(0.99)),
            "rows": db.number("SELECT COUNT(*) FROM queue_items").await,
            "waiting": db.number("SELECT COUNT(*) FROM queue_items WHERE status IN ('queued', 'dispatched')").await,
            "table_mb": load::round2(db.queue_bytes().await as f64 / 1e6),
            "rss_mb": load::round2(server.rss_kib() as f64 / 1024.0),
        });
        eprintln!("{sample}");
        samples.push(sample);
    }
    beats.abort();
    drop(server);
    let per_minute = (60 / STRETCH_S) as usize;
    let first = average(&samples[..per_minute.min(samples.len())]);
    let last = average(&samples[samples.len().saturating_sub(per_minute)..]);
    let line = json!({
        "bench": "soak",
        "backend": if db.is_postgres() { "postgres" } else { "sqlite" },
        "rate": opts.rate,
        "seconds": opts.seconds,
        "ok": ok,
        "other": other,
        "first_minute": first,
        "last_minute": last,
    });
    db.drop_now().await;
    line.to_string()
}

/// Mean of each figure over the samples.
fn average(samples: &[Value]) -> Value {
    let mean = |key: &str| {
        let sum: f64 = samples.iter().filter_map(|s| s[key].as_f64()).sum();
        load::round2(sum / samples.len().max(1) as f64)
    };
    json!({
        "p99_ms": mean("p99_ms"),
        "rows": mean("rows"),
        "waiting": mean("waiting"),
        "table_mb": mean("table_mb"),
        "rss_mb": mean("rss_mb"),
    })
}
