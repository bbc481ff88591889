//! A node dies at the worst instant of a slot claim, and no fire is lost or
//! doubled.
//!
//! The fail points (`--features failpoints`) abort the process at the two
//! instants that matter: right after the claim committed (the fire is in the
//! queue, nobody has sent it: the outbox must deliver it) and with the claim
//! written but not committed (nothing happened: another node, or the node
//! restarted, must fire the slot itself). On Postgres a second node shares the
//! work and carries on; on SQLite the same node is started again on its file.
#![cfg(feature = "failpoints")]

mod support;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use support::agent::Agent;
use support::process::{self, Node};

const POINTS: [&str; 2] = ["scheduler.claimed", "claim.before_commit"];

fn client() -> reqwest::Client {
    process::client(Duration::from_secs(10))
}

async fn healthy(http: &reqwest::Client, node: &Node) {
    process::healthy(http, &node.base, Duration::from_secs(30)).await
}

const FAST: [(&str, &str); 1] = [("RINGMASTER_QUEUE_TICK_MS", "200")];

/// Register the workspace and a schedule firing every second; its id.
async fn every_second(http: &reqwest::Client, node: &Node, agent: &Agent) -> i64 {
    let r = http
        .put(node.url("/v1/workspaces/w"))
        .json(&json!({"url": agent.url, "max_concurrent": 50}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let r = http
        .post(node.url("/v1/schedules"))
        .json(
            &json!({"workspace_id": "w", "name": "pulse", "cron": "* * * * * *",
            "prompt": "pulse"}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201, "{}", r.text().await.unwrap());
    r.json::<Value>().await.unwrap()["id"].as_i64().unwrap()
}

async fn runs(http: &reqwest::Client, node: &Node, schedule: i64) -> Vec<Value> {
    let url = node.url(&format!("/v1/schedules/{schedule}/runs?limit=1000"));
    let r = process::get_json(http, &url).await;
    r["runs"].as_array().cloned().unwrap_or_default()
}

/// Wait for the node with the fail point to abort at it.
fn died(node: &mut Node) {
    let status = node
        .wait(Duration::from_secs(30))
        .unwrap_or_else(|| panic!("never reached the fail point\n{}", node.log_text()));
    assert!(!status.success(), "it aborted: {status:?}");
}

/// Stop the schedule, let the survivor finish, then check every slot: one
/// run each, none left dispatched, each delivered exactly once.
async fn every_slot_once(http: &reqwest::Client, node: &Node, agent: &Agent, schedule: i64) {
    tokio::time::sleep(Duration::from_secs(3)).await;
    let r = http
        .patch(node.url(&format!("/v1/schedules/{schedule}")))
        .json(&json!({"enabled": false}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let deadline = Instant::now() + Duration::from_secs(45);
    let runs = loop {
        let runs = runs(http, node, schedule).await;
        if !runs.is_empty() && runs.iter().all(|r| r["status"] != "dispatched") {
            break runs;
        }
        assert!(
            Instant::now() < deadline,
            "runs still dispatched: {runs:?}\n{}",
            node.log_text()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let mut per_slot: BTreeMap<String, usize> = BTreeMap::new();
    for run in &runs {
        *per_slot.entry(run["slot"].to_string()).or_default() += 1;
    }
    assert!(
        per_slot.values().all(|n| *n == 1),
        "a slot ran twice: {per_slot:?}"
    );
    let seen = agent.seen();
    let mut delivered: BTreeMap<&str, usize> = BTreeMap::new();
    for key in &seen {
        *delivered.entry(key.as_str()).or_default() += 1;
    }
    assert!(
        delivered.values().all(|n| *n == 1),
        "delivered twice: {delivered:?}"
    );
    for run in &runs {
        let key = run["key"].as_str().unwrap();
        match run["status"].as_str().unwrap() {
            "ok" => assert!(delivered.contains_key(key), "{key} ok but never delivered"),
            // Recorded, not lost: the restart came after the slot's deadline.
            "missed" => assert!(!delivered.contains_key(key), "{key} missed yet delivered"),
            other => panic!("run {key} ended {other}: {run}"),
        }
    }
    for key in delivered.keys() {
        assert!(
            runs.iter().any(|r| r["key"] == *key),
            "{key} delivered without a run"
        );
    }
    let ok = runs.iter().filter(|r| r["status"] == "ok").count();
    eprintln!(
        "{} runs, {ok} ok, {} delivered, none twice",
        runs.len(),
        delivered.len()
    );
    assert!(ok >= 3, "{runs:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_a_node_killed_at_a_slot_claim_leaves_the_other_to_fire_it_once() {
    let Some(probe) = support::fresh_postgres_database().await else {
        return;
    };
    support::drop_postgres_database(&probe);
    for point in POINTS {
        let db = support::fresh_postgres_database().await.unwrap();
        let _dropped = support::DropDatabase(db.clone());
        let dir = tempfile::tempdir().unwrap();
        let agent = Agent::start().await;
        let http = client();
        let survivor = Node::start("survivor", &db, dir.path(), &FAST);
        healthy(&http, &survivor).await;
        let schedule = every_second(&http, &survivor, &agent).await;
        let failpoint = format!("{point}=return");
        let mut victim = Node::start(
            "victim",
            &db,
            dir.path(),
            &[FAST[0], ("FAILPOINTS", failpoint.as_str())],
        );
        died(&mut victim);
        every_slot_once(&http, &survivor, &agent, schedule).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_a_node_killed_at_a_slot_claim_fires_it_once_after_restart() {
    for point in POINTS {
        let dir = tempfile::tempdir().unwrap();
        let db = format!("sqlite://{}", dir.path().join("rm.db").display());
        let agent = Agent::start().await;
        let http = client();
        let failpoint = format!("{point}=return");
        let mut victim = Node::start(
            "victim",
            &db,
            dir.path(),
            &[FAST[0], ("FAILPOINTS", failpoint.as_str())],
        );
        healthy(&http, &victim).await;
        let schedule = every_second(&http, &victim, &agent).await;
        died(&mut victim);
        let restarted = Node::start("restarted", &db, dir.path(), &FAST);
        healthy(&http, &restarted).await;
        every_slot_once(&http, &restarted, &agent, schedule).await;
    }
}
