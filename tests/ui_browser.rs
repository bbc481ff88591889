//! The dashboard in a real headless Chromium (Debian's, over chromedriver):
//! the token from `/ui#token=…`, a failed item retried with a click and
//! seen delivered, a stuck delegation appearing without a reload (the live
//! events), and a screenshot of every page under `target/ui-screenshots/`
//! for a person to look at. Runs the release-shaped binary on SQLite.

mod support;

use std::path::PathBuf;
use std::time::Duration;

use serde_json::{json, Value};
use support::agent::Agent;
use support::process::{client, Node};
use support::webdriver::Browser;

const TOKEN: &str = "console-test-token";
const WAIT: Duration = Duration::from_secs(20);

fn shots() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/ui-screenshots")
}

async fn call(
    http: &reqwest::Client,
    node: &Node,
    method: reqwest::Method,
    path: &str,
    body: Value,
) -> Value {
    let r = http
        .request(method, node.url(path))
        .bearer_auth(TOKEN)
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = r.status();
    let v: Value = r.json().await.unwrap_or(Value::Null);
    assert!(status.is_success(), "{path}: {status} {v}");
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_retries_a_failed_item_and_shows_a_stuck_delegation_live() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("ui.db").display());
    let node = Node::start(
        "ui",
        &db,
        dir.path(),
        &[
            ("RINGMASTER_API_TOKEN", TOKEN),
            ("RINGMASTER_QUEUE_MAX_ATTEMPTS", "1"),
            ("RINGMASTER_QUEUE_TICK_MS", "200"),
        ],
    );
    let http = client(Duration::from_secs(10));
    support::process::healthy(&http, &node.base, WAIT).await;
    let agent = Agent::start().await;
    use reqwest::Method;
    call(
        &http,
        &node,
        Method::PUT,
        "/v1/workspaces/agent-1",
        json!({"url": agent.url, "max_concurrent": 2}),
    )
    .await;
    call(
        &http,
        &node,
        Method::POST,
        "/v1/schedules",
        json!({"workspace_id": "agent-1", "name": "standup", "cron": "30 9 * * MON-FRI",
               "timezone": "Europe/Paris", "prompt": "Post the standup"}),
    )
    .await;

    // The agent is down: with one attempt, the message fails for good.
    agent.fail(true);
    let message =
        serde_json::from_str::<Value>(&ringmaster::model::a2a::a2a_message("ui-1", "hello"))
            .unwrap();
    let sent = http
        .post(node.url("/v1/workspaces/agent-1/messages"))
        .bearer_auth(TOKEN)
        .json(&message)
        .send()
        .await
        .unwrap();
    let sent: Value = sent.json().await.unwrap();
    let id = sent["queue_id"]
        .as_i64()
        .unwrap_or_else(|| panic!("{sent}"));
    support::eventually(10, "the message failed", || async {
        let item = call(
            &http,
            &node,
            Method::GET,
            &format!("/v1/queue/{id}"),
            Value::Null,
        )
        .await;
        (item["status"] == "failed").then_some(())
    })
    .await;
    agent.fail(false);

    let browser = Browser::start().await;
    // The token arrives in the fragment, which never reaches the server.
    browser.goto(&node.url(&format!("/ui#token={TOKEN}"))).await;
    browser
        .wait_for("body[data-shown=overview] #actors tbody tr td", WAIT)
        .await;
    assert_eq!(
        browser.script("return location.hash").await,
        "#overview",
        "the token is taken out of the address bar"
    );
    browser.wait_for("#live.on", WAIT).await;
    browser.screenshot(&shots().join("overview.png")).await;

    browser.goto(&node.url("/ui#workspaces")).await;
    let row = browser
        .wait_for("#workspaces tr[data-id=agent-1] td.depth", WAIT)
        .await;
    assert_eq!(browser.text(&row).await, "0");
    browser.screenshot(&shots().join("workspaces.png")).await;

    browser.goto(&node.url("/ui#schedules")).await;
    browser.wait_for("#schedules tr[data-id] code", WAIT).await;
    browser.screenshot(&shots().join("schedules.png")).await;

    // The failed item, with its error; retry it with a click.
    browser.goto(&node.url("/ui#queue")).await;
    let retry = browser
        .wait_for(
            &format!("#queue tr[data-id='{id}'] button[data-action=retry]"),
            WAIT,
        )
        .await;
    browser.screenshot(&shots().join("queue.png")).await;
    browser.click(&retry).await;
    // Delivered: it leaves the failed list, the agent got it, and the
    // completed list shows it.
    browser
        .wait_gone(&format!("#queue tr[data-id='{id}']"), WAIT)
        .await;
    support::eventually(10, "the agent got the retried message", || async {
        agent.seen().contains(&"ui-1".to_string()).then_some(())
    })
    .await;
    browser
        .script("document.querySelector('#queue-status').value = 'completed'; document.querySelector('#queue-filter button').click(); return true")
        .await;
    browser
        .wait_for(&format!("#queue tr[data-id='{id}'] .chip.completed"), WAIT)
        .await;

    // A stuck delegation appears on the open page without a reload.
    browser.goto(&node.url("/ui#delegations")).await;
    browser
        .wait_for("body[data-shown=delegations] #delegations tbody tr", WAIT)
        .await;
    browser
        .script("window.__sameDocument = true; return true")
        .await;
    call(
        &http,
        &node,
        Method::POST,
        "/v1/delegations",
        json!({"id": "task-7", "workspace_id": "agent-1"}),
    )
    .await;
    call(
        &http,
        &node,
        Method::POST,
        "/v1/delegations/task-7/status",
        json!({"status": "stuck", "error": "no heartbeat for 11 min"}),
    )
    .await;
    let stuck = browser
        .wait_for(
            "#delegations tr[data-id=task-7] button[data-action=retry]",
            WAIT,
        )
        .await;
    assert_eq!(
        browser
            .script("return window.__sameDocument === true")
            .await,
        true,
        "no reload"
    );
    browser.screenshot(&shots().join("delegations.png")).await;
    browser.click(&stuck).await;
    browser
        .wait_gone("#delegations tr[data-id=task-7]", WAIT)
        .await;
    let d = call(
        &http,
        &node,
        Method::GET,
        "/v1/delegations/task-7",
        Value::Null,
    )
    .await;
    assert_eq!(d["status"], "queued", "{d}");
    browser.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_asks_for_the_token_and_serves_only_its_own_files() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("ui.db").display());
    let node = Node::start(
        "ui-token",
        &db,
        dir.path(),
        &[("RINGMASTER_API_TOKEN", TOKEN)],
    );
    let http = client(Duration::from_secs(10));
    support::process::healthy(&http, &node.base, WAIT).await;
    let page = http.get(node.url("/ui")).send().await.unwrap();
    let policy = page.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(
        policy.contains("default-src 'none'") && policy.contains("connect-src 'self'"),
        "{policy}"
    );
    let html = page.text().await.unwrap();
    assert!(
        !html.contains("http://") && !html.contains("https://"),
        "nothing fetched from elsewhere"
    );
    let missing = http.get(node.url("/ui/nothing.js")).send().await.unwrap();
    assert_eq!(missing.status(), 404);

    let browser = Browser::start().await;
    browser.goto(&node.url("/ui#workspaces")).await;
    let input = browser.wait_for("#login:not([hidden]) #token", WAIT).await;
    browser
        .script(&format!("document.querySelector('#token').value = '{TOKEN}'; document.querySelector('#login button').click(); return true"))
        .await;
    let _ = input;
    browser.wait_for("body[data-shown=workspaces]", WAIT).await;
    browser.wait_for("#login[hidden]", WAIT).await;
    assert_eq!(
        browser
            .script(&format!(
                "return sessionStorage.getItem('ringmaster.token') === '{TOKEN}'"
            ))
            .await,
        true
    );
    browser.close().await;
}
