//! The binary under faults, as an operator would meet them: SIGTERM under
//! load, a database outage, a root supervisor that gives up, a node killed
//! at the worst instant of a slot claim. Each runs real `ringmaster serve`
//! processes; the outage uses a private PostgreSQL cluster it stops and
//! starts itself (the shared server is never touched).

mod support;

use std::time::{Duration, Instant};

use ringmaster::model::queue::QueueStatus;
use serde_json::{json, Value};
use support::agent::Agent;
use support::api::message;
use support::eventually;
use support::process::{self, Node};

fn client() -> reqwest::Client {
    process::client(Duration::from_secs(10))
}

async fn healthy(http: &reqwest::Client, node: &Node) {
    process::healthy(http, &node.base, Duration::from_secs(30)).await
}

async fn items(http: &reqwest::Client, node: &Node, status: &str) -> Vec<Value> {
    let url = node.url(&format!(
        "/v1/workspaces/w/queue?status={status}&limit=1000"
    ));
    let r = process::get_json(http, &url).await;
    r["items"].as_array().cloned().unwrap_or_default()
}

/// SIGTERM with nine deliveries under way and eleven items in the prefetch
/// buffer: the nine finish and are recorded, the eleven go back, the process
/// exits 0; after a restart nothing is delivered twice and nothing is left
/// `dispatched`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_lets_deliveries_finish_and_gives_the_buffer_back() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("rm.db").display());
    let agent = Agent::start().await;
    agent.pause(Duration::from_millis(1500));
    let env = [
        ("RINGMASTER_DELIVERY_CONCURRENCY", "9"),
        ("RINGMASTER_QUEUE_TICK_MS", "500"),
    ];
    let http = client();
    let mut node = Node::start("first", &db, dir.path(), &env);
    healthy(&http, &node).await;
    let put = http
        .put(node.url("/v1/workspaces/w"))
        .json(&json!({"url": agent.url, "max_concurrent": 20}))
        .send()
        .await
        .unwrap();
    assert_eq!(put.status(), 200);
    // No room while the twenty are posted, so each is simply queued.
    let beat = |active: u32| {
        http.post(node.url("/v1/workspaces/w/heartbeat"))
            .json(&json!({"active_tasks": active}))
            .send()
    };
    assert_eq!(beat(20).await.unwrap().status(), 200);
    for i in 0..20 {
        let r = http
            .post(node.url("/v1/workspaces/w/messages"))
            .json(&message(&format!("m{i}")))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 202);
    }
    assert_eq!(beat(0).await.unwrap().status(), 200);
    eventually(
        10,
        "9 delivering and 11 buffered: all 20 dispatched",
        || async { (items(&http, &node, "dispatched").await.len() == 20).then_some(()) },
    )
    .await;
    let began = Instant::now();
    let status = node.term(Duration::from_secs(20)).expect("exits");
    assert!(status.success(), "{status:?}\n{}", node.log_text());
    assert!(
        began.elapsed() >= Duration::from_millis(500),
        "it waited for the deliveries under way"
    );
    assert_eq!(agent.seen().len(), 9, "the nine under way finished");
    // What the stopped node left behind, read straight from its database.
    let store = ringmaster::store::open(&db).await.unwrap();
    let counts = store.queue_counts().await.unwrap();
    store.close().await;
    let count = |s: QueueStatus| counts.iter().find(|c| c.0 == s).map_or(0, |c| c.1);
    assert_eq!(count(QueueStatus::Completed), 9, "{counts:?}");
    assert_eq!(
        count(QueueStatus::Queued),
        11,
        "the buffer went back: {counts:?}"
    );
    assert_eq!(count(QueueStatus::Dispatched), 0, "{counts:?}");

    let mut node = Node::start("second", &db, dir.path(), &env);
    healthy(&http, &node).await;
    agent.pause(Duration::ZERO);
    eventually(20, "all 20 delivered", || async {
        (items(&http, &node, "completed").await.len() == 20).then_some(())
    })
    .await;
    let mut seen = agent.seen();
    seen.sort();
    let before = seen.len();
    seen.dedup();
    assert_eq!((before, seen.len()), (20, 20), "no redelivery");
    node.term(Duration::from_secs(20));
}

/// During an outage every request is answered within 2 s (503 with
/// Retry-After, /healthz saying why), nothing a client was told failed is
/// carried out later, and the node recovers on its own.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_outage_is_answered_within_two_seconds_and_recovers() {
    let cluster = support::cluster::Cluster::start();
    let dir = tempfile::tempdir().unwrap();
    let agent = Agent::start().await;
    let http = client();
    let node = Node::start(
        "outage",
        &cluster.url(),
        dir.path(),
        &[
            ("RINGMASTER_QUEUE_TICK_MS", "500"),
            ("RINGMASTER_HEARTBEAT_TICK_MS", "500"),
        ],
    );
    healthy(&http, &node).await;
    http.put(node.url("/v1/workspaces/w"))
        .json(&json!({"url": agent.url, "max_concurrent": 5}))
        .send()
        .await
        .unwrap();
    let r = http
        .post(node.url("/v1/workspaces/w/messages"))
        .json(&message("before"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);

    cluster.down("fast");
    let mut refused = Vec::new();
    let mut slowest = Duration::ZERO;
    for i in 0..6 {
        let key = format!("during-{i}");
        let requests = [
            http.post(node.url("/v1/workspaces/w/messages"))
                .json(&message(&key)),
            http.get(node.url("/healthz")),
            http.get(node.url("/v1/schedules")),
            http.put(node.url("/v1/workspaces/w"))
                .json(&json!({"url": agent.url, "max_concurrent": 5})),
            http.post(node.url("/v1/workspaces/w/heartbeat"))
                .json(&json!({"active_tasks": 0})),
            http.get(node.url("/v1/delegations/d-1")),
        ];
        for (n, request) in requests.into_iter().enumerate() {
            let began = Instant::now();
            let r = request.send().await.expect("answered");
            let took = began.elapsed();
            slowest = slowest.max(took);
            let status = r.status().as_u16();
            let retry = r.headers().get("retry-after").is_some();
            let body: Value = r.json().await.unwrap_or(Value::Null);
            assert!(
                took < Duration::from_secs(2),
                "request {n} took {took:?}: {body}"
            );
            assert_eq!(status, 503, "request {n}: {body}");
            if n == 1 {
                assert_eq!(body["database"]["ok"], json!(false), "{body}");
                assert!(
                    body["database"]["error"]
                        .as_str()
                        .is_some_and(|e| e.contains("unavailable")),
                    "{body}"
                );
            } else {
                assert!(retry, "request {n} has Retry-After");
                assert!(body["error"].is_string(), "{body}");
            }
            if n == 0 {
                refused.push(key.clone());
            }
        }
    }
    eprintln!("slowest answer during the outage: {slowest:?}");

    cluster.up();
    healthy(&http, &node).await;
    let r = eventually(30, "a message goes through again", || async {
        let r = http
            .post(node.url("/v1/workspaces/w/messages"))
            .json(&message("after"))
            .send()
            .await
            .ok()?;
        (r.status() == 200).then_some(r)
    })
    .await;
    assert_eq!(r.status(), 200);
    eventually(15, "LISTEN is back", || async {
        node.log_text()
            .contains("LISTEN connection re-established")
            .then_some(())
    })
    .await;
    // What was refused is never carried out later.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let seen = agent.seen();
    for key in &refused {
        assert!(!seen.contains(key), "{key} was refused, then delivered");
    }
    let kept: Vec<String> = items(&http, &node, "completed")
        .await
        .iter()
        .chain(items(&http, &node, "queued").await.iter())
        .filter_map(|i| i["idempotency_key"].as_str().map(str::to_string))
        .collect();
    for key in &refused {
        assert!(!kept.contains(key), "{key} was refused, then enqueued");
    }
}

/// The store's gate: once the server is found gone, operations fail at once
/// (not after the pool's acquire timeout each), and the first probe after
/// the server is back opens it for all.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_store_fails_fast_while_postgres_is_down_and_recovers() {
    let cluster = support::cluster::Cluster::start();
    let store = ringmaster::store::open(&cluster.url()).await.unwrap();
    store.ping().await.unwrap();
    let grace = ringmaster::drain::completer::RESCUE_GRACE;
    assert!(!store.recovering(grace), "never down");
    cluster.down("immediate");
    let began = Instant::now();
    let first = store.ping().await.unwrap_err();
    assert!(first.is_unavailable(), "{first}");
    assert!(
        began.elapsed() < Duration::from_millis(1500),
        "{:?}",
        began.elapsed()
    );
    // Until the next probe is due, every operation is refused at once.
    let shut_at = Instant::now();
    let mut refused = 0;
    while shut_at.elapsed() < ringmaster::store::gate::PROBE_EVERY / 2 {
        refused += 1;
        let began = Instant::now();
        let err = store.list_workspaces().await.unwrap_err();
        assert!(err.is_unavailable(), "{err}");
        assert!(
            began.elapsed() < Duration::from_millis(100),
            "failed fast: {:?}",
            began.elapsed()
        );
    }
    assert!(refused > 1);
    cluster.up();
    let deadline = Instant::now() + Duration::from_secs(15);
    while store.list_workspaces().await.is_err() {
        assert!(Instant::now() < deadline, "never recovered");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    store.ping().await.unwrap();
    // Lease rescues wait a little while the holders write their outcomes back.
    assert!(store.recovering(grace), "just back");
    tokio::time::sleep(grace).await;
    assert!(!store.recovering(grace), "settled");
    store.close().await;
}

/// A root supervisor that gives up ends the process, non-zero, within
/// seconds, without leaking its listener.
#[cfg(feature = "failpoints")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_binary_exits_non_zero_when_the_root_gives_up() {
    let dir = tempfile::tempdir().unwrap();
    let mut databases = vec![format!("sqlite://{}", dir.path().join("root.db").display())];
    let mut _dropped = None;
    if let Some(url) = support::fresh_postgres_database().await {
        _dropped = Some(support::DropDatabase(url.clone()));
        databases.push(url);
    }
    for db in databases {
        let log = dir.path().join("root.log");
        let began = Instant::now();
        let mut child = std::process::Command::new(support::process::BIN)
            .args(["serve", "--bind", "127.0.0.1:0", "--database", &db])
            .env("FAILPOINTS", "queue.tick=panic")
            .env("RINGMASTER_QUEUE_TICK_MS", "100")
            .stdout(std::process::Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        let status = loop {
            if let Some(s) = child.try_wait().unwrap() {
                break s;
            }
            assert!(
                began.elapsed() < Duration::from_secs(15),
                "still running after the root gave up"
            );
            std::thread::sleep(Duration::from_millis(50));
        };
        let text = std::fs::read_to_string(&log).unwrap();
        assert!(!status.success(), "{db}: {status:?}");
        assert!(text.contains("restart intensity exceeded"), "{text}");
        assert!(!text.contains("LISTEN connection lost"), "{text}");
    }
}
