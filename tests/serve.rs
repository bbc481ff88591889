//! The real binary, as a child process: `serve` in an empty directory creates
//! its database and answers `/healthz`; bad configuration stops start-up with
//! the key named; SIGTERM ends it cleanly; `migrate` works on both backends.

mod support;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

const BIN: &str = env!("CARGO_BIN_EXE_ringmaster");

/// Start `ringmaster serve` on port 0 in `dir`; answer the child and its base URL.
fn serve(dir: &std::path::Path, extra_env: &[(&str, &str)]) -> (Child, String) {
    let mut cmd = Command::new(BIN);
    cmd.args(["serve", "--bind", "127.0.0.1:0"])
        .current_dir(dir)
        .env_remove("RINGMASTER_DATABASE_URL")
        .env("RINGMASTER_HEARTBEAT_TICK_MS", "200")
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    for (k, v) in extra_env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().expect("start ringmaster");
    let stdout = child.stdout.take().unwrap();
    let mut line = String::new();
    BufReader::new(stdout)
        .read_line(&mut line)
        .expect("read stdout");
    let url = line
        .trim()
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
        .to_string();
    (child, url)
}

fn terminate(child: &mut Child) -> std::process::ExitStatus {
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    for _ in 0..500 {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().unwrap();
    panic!("ringmaster did not stop within 10 s of SIGTERM");
}

#[tokio::test]
async fn serve_in_an_empty_directory_creates_its_database_and_is_healthy() {
    let dir = tempfile::tempdir().unwrap();
    let (mut child, base) = serve(dir.path(), &[]);
    let client = reqwest::Client::new();
    let body: serde_json::Value = support::eventually(10, "/healthz answers 200", || {
        let client = client.clone();
        let url = format!("{base}/healthz");
        async move {
            let resp = client.get(url).send().await.ok()?;
            (resp.status() == 200).then_some(())?;
            resp.json().await.ok()
        }
    })
    .await;
    assert_eq!(body["healthy"], true, "{body}");
    assert_eq!(body["database"]["ok"], true, "{body}");
    let actors = body["actors"].as_array().unwrap();
    assert!(
        actors
            .iter()
            .any(|a| a["actor"] == "heartbeat" && a["healthy"] == true),
        "{body}"
    );
    assert!(
        dir.path().join("ringmaster.db").exists(),
        "the SQLite file was created in the working directory"
    );

    let status = terminate(&mut child);
    assert!(status.success(), "clean exit on SIGTERM, got {status}");
}

#[test]
fn invalid_configuration_stops_start_up_naming_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(BIN)
        .args(["serve", "--bind", "127.0.0.1:0"])
        .current_dir(dir.path())
        .env("RINGMASTER_SWEEP_INTERVAL_S", "0")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("RINGMASTER_SWEEP_INTERVAL_S"), "{stderr}");
    assert!(stderr.contains("is zero"), "{stderr}");
    assert!(
        !dir.path().join("ringmaster.db").exists(),
        "nothing started"
    );
}

#[tokio::test]
async fn migrate_brings_up_both_backends() {
    let dir = tempfile::tempdir().unwrap();
    let sqlite = format!("sqlite://{}", dir.path().join("m.db").display());
    let out = Command::new(BIN)
        .args(["migrate", "--database", &sqlite])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(dir.path().join("m.db").exists());

    if let Some(pg) = support::fresh_postgres_database().await {
        let _dropped = support::DropDatabase(pg.clone());
        let out = Command::new(BIN)
            .args(["migrate", "--database", &pg])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let store = ringmaster::store::open(&pg).await.unwrap();
        assert!(store.list_workspaces().await.unwrap().is_empty());
    }

    let out = Command::new(BIN)
        .args(["migrate", "--database", "mysql://nope"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("unsupported database URL"));
}

#[test]
fn the_demo_prints_a_summary_and_stops_on_sigint() {
    let mut child = Command::new(BIN)
        .args(["demo", "--bind", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut seen = Vec::new();
    for line in lines.by_ref() {
        let line = line.unwrap();
        let done = line.starts_with("actors ");
        seen.push(line);
        if done {
            break;
        }
    }
    let text = seen.join("\n");
    assert!(
        text.contains("ringmaster demo: API on http://127.0.0.1:"),
        "{text}"
    );
    assert!(text.contains("queue        queued"), "{text}");
    assert!(text.contains("heartbeat ok"), "{text}");
    Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    // Keep reading so the demo's last lines have somewhere to go.
    let rest: Vec<String> = lines.map_while(Result::ok).collect();
    assert!(rest.iter().any(|l| l == "stopping…"), "{rest:?}");
    let status = child.wait().unwrap();
    assert!(status.success(), "clean exit on SIGINT, got {status}");
}
