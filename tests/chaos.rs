//! Chaos, short form (CI): real `ringmaster serve` processes under a steady
//! stream of messages and every-second schedules, while nodes are killed
//! with SIGKILL at random instants and at the slot-claim fail point, and the
//! database is stopped and started. Then: nothing accepted is lost, no slot
//! fires twice, a message is delivered twice only when a node died with it
//! in flight, and every node is healthy afterwards.
//!
//! Postgres runs on a private cluster this test starts and stops itself; a
//! second test does the same to a node on a SQLite file and checks the file.
//! `RINGMASTER_TEST_CHAOS_SECONDS` lengthens the run (default 24). The figures
//! are printed as one `chaos:` line per backend.
#![cfg(feature = "failpoints")]

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use support::agent::Agent;
use support::api::message;
use support::process::{self, Node};

/// Short ticks and a short lease, so a dead node's items come back quickly.
const ENV: [(&str, &str); 4] = [
    ("RINGMASTER_QUEUE_TICK_MS", "300"),
    ("RINGMASTER_QUEUE_LEASE_S", "4"),
    ("RINGMASTER_HEARTBEAT_TICK_MS", "500"),
    ("RINGMASTER_SHUTDOWN_TIMEOUT_S", "2"),
];

fn seconds() -> u64 {
    std::env::var("RINGMASTER_TEST_CHAOS_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(24)
}

fn client() -> reqwest::Client {
    process::client(Duration::from_secs(5))
}

/// What the clients saw.
#[derive(Default)]
struct Ledger {
    /// Keys answered 2xx.
    accepted: BTreeSet<String>,
    /// Slowest answer of any kind, and of requests sent during the outage.
    slowest: Duration,
    slowest_in_outage: Duration,
    answered_in_outage: usize,
    refused_in_outage: usize,
}

/// The live nodes' base URLs, for the clients to spread requests over.
type Live = Arc<Mutex<Vec<String>>>;

/// Post a fresh key every `every` to a live node, retrying a key (on the
/// next node) until one answers 2xx, as a careful client would.
fn producer(
    live: Live,
    ledger: Arc<Mutex<Ledger>>,
    outage: Arc<AtomicBool>,
    stop: Arc<AtomicBool>,
    every: Duration,
    prefix: &'static str,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let http = client();
        let mut n = 0usize;
        while !stop.load(Ordering::SeqCst) {
            let key = format!("{prefix}-{n}");
            n += 1;
            let mut attempt = 0usize;
            loop {
                let nodes = live.lock().unwrap().clone();
                if nodes.is_empty() {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
                let base = &nodes[(n + attempt) % nodes.len()];
                attempt += 1;
                let during = outage.load(Ordering::SeqCst);
                let began = Instant::now();
                let answer = http
                    .post(format!("{base}/v1/workspaces/w/messages"))
                    .json(&message(&key))
                    .send()
                    .await;
                let took = began.elapsed();
                let status = answer.as_ref().map(|r| r.status().as_u16()).ok();
                {
                    let mut l = ledger.lock().unwrap();
                    l.slowest = l.slowest.max(took);
                    if during && status.is_some() {
                        l.slowest_in_outage = l.slowest_in_outage.max(took);
                        l.answered_in_outage += 1;
                        if status == Some(503) {
                            l.refused_in_outage += 1;
                        }
                    }
                    if status.is_some_and(|s| (200..300).contains(&s)) {
                        l.accepted.insert(key.clone());
                    }
                }
                match status {
                    Some(s) if (200..300).contains(&s) => break,
                    Some(s) if s != 503 => panic!("{key}: answered {s}"),
                    _ => tokio::time::sleep(Duration::from_millis(100)).await,
                }
                if stop.load(Ordering::SeqCst) && attempt > 100 {
                    break;
                }
            }
            tokio::time::sleep(every).await;
        }
    })
}

/// Retry a setup request until a node answers 2xx.
async fn must(request: impl Fn() -> reqwest::RequestBuilder) -> Value {
    for _ in 0..100 {
        if let Ok(r) = request().send().await {
            if r.status().is_success() {
                return r.json().await.unwrap_or(Value::Null);
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("never answered 2xx");
}

/// Wait until every accepted key reached the agent; then count.
struct Tally {
    accepted: usize,
    delivered: usize,
    lost: Vec<String>,
    /// Delivered more than once, with the first receipt.
    duplicated: BTreeMap<String, Instant>,
    slots_fired: usize,
    slots_doubled: usize,
}

async fn tally(agent: &Agent, accepted: &BTreeSet<String>, within: Duration) -> Tally {
    let deadline = Instant::now() + within;
    loop {
        let seen: BTreeSet<String> = agent.seen().into_iter().collect();
        if accepted.iter().all(|k| seen.contains(k)) || Instant::now() > deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let mut first: BTreeMap<String, (Instant, usize)> = BTreeMap::new();
    for (key, at) in agent.receipts() {
        first.entry(key).or_insert((at, 0)).1 += 1;
    }
    let lost = accepted
        .iter()
        .filter(|k| !first.contains_key(*k))
        .cloned()
        .collect();
    let cron = |k: &str| k.starts_with("cron:");
    Tally {
        accepted: accepted.len(),
        delivered: first.keys().filter(|k| !cron(k)).count(),
        lost,
        duplicated: first
            .iter()
            .filter(|(k, (_, n))| *n > 1 && !cron(k))
            .map(|(k, (at, _))| (k.clone(), *at))
            .collect(),
        slots_fired: first.keys().filter(|k| cron(k)).count(),
        slots_doubled: first.iter().filter(|(k, (_, n))| cron(k) && *n > 1).count(),
    }
}

/// A duplicate is excused only when its first delivery was under way on a
/// node that died: received within `before` ahead of a kill (or `after` it,
/// for an agent still answering a dead node's request).
fn unexcused(t: &Tally, kills: &[Instant], before: Duration, after: Duration) -> Vec<String> {
    t.duplicated
        .iter()
        .filter(|(_, at)| {
            !kills
                .iter()
                .any(|k| **at + before >= *k && **at <= *k + after)
        })
        .map(|(k, _)| k.clone())
        .collect()
}

fn set_live(live: &Live, nodes: &[&Node]) {
    *live.lock().unwrap() = nodes.iter().map(|n| n.base.clone()).collect();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_three_nodes_killed_and_the_database_stopped_lose_nothing() {
    let cluster = support::cluster::Cluster::start();
    let db = cluster.url();
    let dir = tempfile::tempdir().unwrap();
    let agent = Agent::start().await;
    let http = client();
    let run = Duration::from_secs(seconds());
    let mut a = Node::start("a", &db, dir.path(), &ENV);
    let mut b = Node::start("b", &db, dir.path(), &ENV);
    let c = Node::start("c", &db, dir.path(), &ENV);
    for n in [&a, &b, &c] {
        process::healthy(&http, &n.base, Duration::from_secs(30)).await;
    }
    must(|| {
        http.put(a.url("/v1/workspaces/w"))
            .json(&json!({"url": agent.url, "max_concurrent": 200}))
    })
    .await;
    let mut schedules = Vec::new();
    for i in 0..3 {
        let s = must(|| {
            http.post(a.url("/v1/schedules"))
                .json(&json!({"workspace_id": "w",
                "name": format!("pulse-{i}"), "cron": "* * * * * *", "prompt": "tick"}))
        })
        .await;
        schedules.push(s["id"].as_i64().unwrap());
    }
    let live: Live = Arc::new(Mutex::new(Vec::new()));
    set_live(&live, &[&a, &b, &c]);
    let ledger = Arc::new(Mutex::new(Ledger::default()));
    let (outage, stop) = (
        Arc::new(AtomicBool::new(false)),
        Arc::new(AtomicBool::new(false)),
    );
    let producers: Vec<_> = ["p1", "p2"]
        .into_iter()
        .map(|p| {
            producer(
                live.clone(),
                ledger.clone(),
                outage.clone(),
                stop.clone(),
                Duration::from_millis(15),
                p,
            )
        })
        .collect();
    let began = Instant::now();
    let at = |fraction: f64| began + run.mul_f64(fraction);
    let mut kills = Vec::new();

    // 1. SIGKILL node a at a random instant; back a second later.
    tokio::time::sleep_until(at(0.15).into()).await;
    tokio::time::sleep(Duration::from_millis(rand_ms(800))).await;
    set_live(&live, &[&b, &c]);
    kills.push(Instant::now());
    a.kill9();
    tokio::time::sleep(Duration::from_secs(1)).await;
    a = Node::start("a2", &db, dir.path(), &ENV);
    process::healthy(&http, &a.base, Duration::from_secs(30)).await;
    set_live(&live, &[&a, &b, &c]);

    // 2. Node b replaced by one that dies at its first won slot claim.
    tokio::time::sleep_until(at(0.35).into()).await;
    set_live(&live, &[&a, &c]);
    kills.push(Instant::now());
    b.kill9();
    let failpoint = [
        ENV[0],
        ENV[1],
        ENV[2],
        ENV[3],
        ("FAILPOINTS", "scheduler.claimed=return"),
    ];
    let mut doomed = Node::start("b-doomed", &db, dir.path(), &failpoint);
    let status = doomed
        .wait(Duration::from_secs(30))
        .expect("reached the fail point");
    assert!(!status.success());
    kills.push(Instant::now());
    b = Node::start("b2", &db, dir.path(), &ENV);
    process::healthy(&http, &b.base, Duration::from_secs(30)).await;
    set_live(&live, &[&a, &b, &c]);

    // 3. The database stops for a few seconds.
    tokio::time::sleep_until(at(0.6).into()).await;
    outage.store(true, Ordering::SeqCst);
    let outage_began = Instant::now();
    cluster.down("fast");
    tokio::time::sleep(Duration::from_secs(4)).await;
    outage.store(false, Ordering::SeqCst);
    cluster.up();
    let outage_took = outage_began.elapsed();

    tokio::time::sleep_until(at(1.0).into()).await;
    stop.store(true, Ordering::SeqCst);
    for p in producers {
        p.await.unwrap();
    }
    for id in &schedules {
        must(|| {
            http.patch(c.url(&format!("/v1/schedules/{id}")))
                .json(&json!({"enabled": false}))
        })
        .await;
    }
    let ledger = std::mem::take(&mut *ledger.lock().unwrap());
    let t = tally(&agent, &ledger.accepted, Duration::from_secs(60)).await;
    for n in [&a, &b, &c] {
        process::healthy(&http, &n.base, Duration::from_secs(30)).await;
    }
    // Every run ended; none is left dispatched, no slot has two.
    let mut runs = 0;
    for id in &schedules {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let url = c.url(&format!("/v1/schedules/{id}/runs?limit=1000"));
            let r = process::get_json(&http, &url).await;
            let list = r["runs"].as_array().cloned().unwrap_or_default();
            let slots: BTreeSet<String> = list.iter().map(|r| r["slot"].to_string()).collect();
            assert_eq!(slots.len(), list.len(), "a slot has two runs");
            if list.iter().all(|r| r["status"] != "dispatched") {
                runs += list.len();
                break;
            }
            assert!(Instant::now() < deadline, "runs still dispatched: {list:?}");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    let unexcused = unexcused(
        &t,
        &kills,
        Duration::from_secs(2),
        Duration::from_millis(500),
    );
    println!(
        "chaos: postgres, 3 nodes, {}s: accepted {}, delivered {}, lost {}, duplicated {} \
         ({} outside a kill window); slots fired {}, doubled {}, runs {}; kills {}; \
         outage {:?}: {} answers, {} of them 503, slowest {:?}; slowest answer overall {:?}",
        run.as_secs(),
        t.accepted,
        t.delivered,
        t.lost.len(),
        t.duplicated.len(),
        unexcused.len(),
        t.slots_fired,
        t.slots_doubled,
        runs,
        kills.len(),
        outage_took,
        ledger.answered_in_outage,
        ledger.refused_in_outage,
        ledger.slowest_in_outage,
        ledger.slowest,
    );
    assert!(t.lost.is_empty(), "lost: {:?}", t.lost);
    assert!(
        unexcused.is_empty(),
        "delivered twice outside a kill window: {unexcused:?}"
    );
    assert_eq!(t.slots_doubled, 0);
    assert!(t.slots_fired > 0 && t.accepted > 100);
    assert!(
        ledger.answered_in_outage > 0,
        "requests were answered during the outage"
    );
    assert!(
        ledger.slowest_in_outage < Duration::from_secs(2),
        "an answer during the outage took {:?}",
        ledger.slowest_in_outage
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sqlite_a_node_killed_mid_delivery_loses_nothing_and_keeps_its_file() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("chaos.db");
    let db = format!("sqlite://{}", file.display());
    let agent = Agent::start().await;
    agent.pause(Duration::from_millis(150));
    let http = client();
    let run = Duration::from_secs(seconds() / 2);
    let mut node = Node::start("s1", &db, dir.path(), &ENV);
    process::healthy(&http, &node.base, Duration::from_secs(30)).await;
    must(|| {
        http.put(node.url("/v1/workspaces/w"))
            .json(&json!({"url": agent.url, "max_concurrent": 50}))
    })
    .await;
    let live: Live = Arc::new(Mutex::new(Vec::new()));
    set_live(&live, &[&node]);
    let ledger = Arc::new(Mutex::new(Ledger::default()));
    let (outage, stop) = (
        Arc::new(AtomicBool::new(false)),
        Arc::new(AtomicBool::new(false)),
    );
    let p = producer(
        live.clone(),
        ledger.clone(),
        outage,
        stop.clone(),
        Duration::from_millis(10),
        "s",
    );
    let mut kills = Vec::new();
    for round in 0..2 {
        tokio::time::sleep(run / 3 + Duration::from_millis(rand_ms(700))).await;
        set_live(&live, &[]);
        kills.push(Instant::now());
        node.kill9();
        node = Node::start(&format!("s{}", round + 2), &db, dir.path(), &ENV);
        process::healthy(&http, &node.base, Duration::from_secs(30)).await;
        set_live(&live, &[&node]);
    }
    tokio::time::sleep(run / 3).await;
    stop.store(true, Ordering::SeqCst);
    p.await.unwrap();
    let ledger = std::mem::take(&mut *ledger.lock().unwrap());
    let t = tally(&agent, &ledger.accepted, Duration::from_secs(60)).await;
    process::healthy(&http, &node.base, Duration::from_secs(10)).await;
    node.term(Duration::from_secs(10));
    let unexcused = unexcused(&t, &kills, Duration::from_secs(1), Duration::from_secs(1));
    println!(
        "chaos: sqlite, 1 node, {}s: accepted {}, delivered {}, lost {}, duplicated {} \
         ({} outside a kill window); kills {}",
        run.as_secs(),
        t.accepted,
        t.delivered,
        t.lost.len(),
        t.duplicated.len(),
        unexcused.len(),
        kills.len(),
    );
    assert!(t.lost.is_empty(), "lost: {:?}", t.lost);
    assert!(
        unexcused.is_empty(),
        "delivered twice outside a kill window: {unexcused:?}"
    );
    // The file survived two SIGKILLs intact.
    use sqlx::Connection;
    let mut conn = sqlx::SqliteConnection::connect(&db).await.unwrap();
    let check: (String,) = sqlx::query_as("PRAGMA integrity_check")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(check.0, "ok");
}

/// A random number of milliseconds below `max`, without a crate: the
/// clock's low bits.
fn rand_ms(max: u64) -> u64 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    u64::from(nanos) % max.max(1)
}
