//! End to end, as a user would run it: `ringmaster serve` as a child process
//! on a temporary SQLite file, a local fake A2A workspace, and only HTTP
//! between them. A schedule fires and its run record appears; a message sent
//! while the workspace reports itself busy is queued (202), and a heartbeat
//! with room gets it delivered.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::routing::post;
use axum::Router;
use serde_json::{json, Value};

const BIN: &str = env!("CARGO_BIN_EXE_ringmaster");

/// A workspace that answers every A2A message and remembers what it got.
async fn fake_workspace() -> (String, Arc<Mutex<Vec<String>>>) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    let app = Router::new().route(
        "/a2a",
        post(move |body: String| {
            let log = log.clone();
            async move {
                let request: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
                let text = request.pointer("/params/message/parts/0/text").and_then(Value::as_str).unwrap_or("").to_string();
                log.lock().unwrap().push(text.clone());
                json!({"jsonrpc": "2.0", "id": request["id"], "result": {"kind": "message", "parts": [{"kind": "text", "text": format!("done: {text}")}]}}).to_string()
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("http://{addr}/a2a"), seen)
}

struct Server {
    child: Child,
    base: String,
    _dir: tempfile::TempDir,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn serve() -> Server {
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(BIN)
        .args(["serve", "--bind", "127.0.0.1:0"])
        .current_dir(dir.path())
        .env_remove("RINGMASTER_DATABASE_URL")
        .env("RINGMASTER_SCHEDULER_TICK_MS", "200")
        .env("RINGMASTER_QUEUE_TICK_MS", "500")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let base = line
        .trim()
        .strip_prefix("listening on ")
        .expect("address line")
        .to_string();
    Server {
        child,
        base,
        _dir: dir,
    }
}

async fn until<T, F, Fut>(what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    for _ in 0..400 {
        if let Some(v) = check().await {
            return v;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("timed out waiting for: {what}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_schedule_fires_and_a_busy_workspace_gets_its_message_when_room_comes() {
    let (workspace_url, seen) = fake_workspace().await;
    let server = serve();
    let http = reqwest::Client::new();
    let url = |path: &str| format!("{}{path}", server.base);

    until("the service is healthy", || async {
        let r = http.get(url("/healthz")).send().await.ok()?;
        (r.status() == 200).then_some(())
    })
    .await;

    let r = http
        .put(url("/v1/workspaces/agent"))
        .json(&json!({"url": workspace_url, "max_concurrent": 1}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);

    // Every second (6-field spec): its first fire comes within a second or two.
    let r = http
        .post(url("/v1/schedules"))
        .json(&json!({"workspace_id": "agent", "name": "pulse", "cron": "* * * * * *", "prompt": "pulse check"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let schedule: Value = r.json().await.unwrap();
    let id = schedule["id"].as_i64().unwrap();
    let run: Value = until("a run record with status ok", || async {
        let body: Value = http
            .get(url(&format!("/v1/schedules/{id}/runs")))
            .send()
            .await
            .ok()?
            .json()
            .await
            .ok()?;
        body["runs"]
            .as_array()?
            .iter()
            .find(|r| r["status"] == "ok")
            .cloned()
    })
    .await;
    assert!(
        run["response_summary"]
            .as_str()
            .unwrap()
            .contains("done: pulse check"),
        "{run}"
    );
    assert!(seen.lock().unwrap().iter().any(|t| t == "pulse check"));

    // Stop the schedule, then the workspace reports itself full.
    let r = http
        .patch(url(&format!("/v1/schedules/{id}")))
        .json(&json!({"enabled": false}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let r = http
        .post(url("/v1/workspaces/agent/heartbeat"))
        .json(&json!({"active_tasks": 1}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let message = json!({"jsonrpc": "2.0", "id": "e2e-1", "method": "message/send",
        "params": {"message": {"role": "user", "messageId": "e2e-1", "parts": [{"kind": "text", "text": "while you were busy"}]}}});
    let r = http
        .post(url("/v1/workspaces/agent/messages"))
        .json(&message)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202, "queued while busy is a success");
    let queued: Value = r.json().await.unwrap();
    assert_eq!(queued["queued"], true);
    assert!(
        !seen
            .lock()
            .unwrap()
            .iter()
            .any(|t| t == "while you were busy"),
        "not delivered while busy"
    );

    // Room comes back: the heartbeat wakes the drain.
    let r = http
        .post(url("/v1/workspaces/agent/heartbeat"))
        .json(&json!({"active_tasks": 0}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    until("the queued message reaches the workspace", || async {
        seen.lock()
            .unwrap()
            .iter()
            .any(|t| t == "while you were busy")
            .then_some(())
    })
    .await;
    let body: Value = until("the queue shows it completed", || async {
        let body: Value = http
            .get(url("/v1/workspaces/agent/queue?status=completed"))
            .send()
            .await
            .ok()?
            .json()
            .await
            .ok()?;
        body["items"]
            .as_array()?
            .iter()
            .any(|i| i["id"] == queued["queue_id"])
            .then_some(body)
    })
    .await;
    assert!(body["items"].as_array().unwrap().len() >= 2);
}
