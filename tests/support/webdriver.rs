//! Just enough of the W3C WebDriver protocol to drive Debian's Chromium
//! through `chromedriver` from a test: open a page, find elements, click,
//! read text, run a line of script, take a screenshot. Plain JSON over HTTP
//! with the reqwest the crate already has.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";
pub const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
pub const CHROMIUM: &str = "/usr/bin/chromium";

/// A running chromedriver and one headless browser session.
pub struct Browser {
    driver: Child,
    http: reqwest::Client,
    session: String,
}

impl Browser {
    /// Start chromedriver and a headless Chromium. Panics with how to
    /// install them when they are missing (`.ci/test` installs them).
    pub async fn start() -> Browser {
        for path in [CHROMEDRIVER, CHROMIUM] {
            assert!(
                std::path::Path::new(path).exists(),
                "{path} is missing: apt-get install -y chromium chromium-driver (.ci/test does)"
            );
        }
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let driver = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver starts");
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .unwrap();
        let base = format!("http://127.0.0.1:{port}");
        let started = Instant::now();
        loop {
            let ready = http.get(format!("{base}/status")).send().await;
            if let Ok(r) = ready {
                let v: Value = r.json().await.unwrap_or(Value::Null);
                if v["value"]["ready"] == true {
                    break;
                }
            }
            assert!(
                started.elapsed() < Duration::from_secs(15),
                "chromedriver did not come up"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": CHROMIUM,
                "args": ["--headless", "--no-sandbox", "--disable-gpu",
                         "--disable-background-networking", "--disable-component-update",
                         "--no-first-run", "--disable-dev-shm-usage", "--window-size=1280,900"]
            }
        }}});
        let made: Value = http
            .post(format!("{base}/session"))
            .json(&caps)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let session = made["value"]["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no browser session: {made}"))
            .to_string();
        Browser {
            driver,
            http,
            session: format!("{base}/session/{session}"),
        }
    }

    async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let mut req = self.http.request(method, format!("{}{path}", self.session));
        if let Some(b) = body {
            req = req.json(&b);
        }
        let v: Value = req.send().await.unwrap().json().await.unwrap();
        v["value"].clone()
    }

    pub async fn goto(&self, url: &str) {
        self.call(reqwest::Method::POST, "/url", Some(json!({"url": url})))
            .await;
    }

    /// Run `script` (a function body; `return` answers) in the page.
    pub async fn script(&self, script: &str) -> Value {
        self.call(
            reqwest::Method::POST,
            "/execute/sync",
            Some(json!({"script": script, "args": []})),
        )
        .await
    }

    /// The element matching `css` once there is one (waits up to `within`).
    pub async fn wait_for(&self, css: &str, within: Duration) -> String {
        let started = Instant::now();
        loop {
            let found = self
                .call(
                    reqwest::Method::POST,
                    "/element",
                    Some(json!({"using": "css selector", "value": css})),
                )
                .await;
            if let Some(id) = found[ELEMENT].as_str() {
                return id.to_string();
            }
            assert!(
                started.elapsed() < within,
                "no {css:?} within {within:?}; the page shows:\n{}",
                self.script("return document.body.innerText").await
            );
            tokio::time::sleep(Duration::from_millis(150)).await;
        }
    }

    /// Wait until `css` matches nothing.
    pub async fn wait_gone(&self, css: &str, within: Duration) {
        let started = Instant::now();
        let query = format!("return document.querySelector({}) === null", json!(css));
        while self.script(&query).await != true {
            assert!(
                started.elapsed() < within,
                "{css:?} still there after {within:?}"
            );
            tokio::time::sleep(Duration::from_millis(150)).await;
        }
    }

    pub async fn click(&self, element: &str) {
        self.call(
            reqwest::Method::POST,
            &format!("/element/{element}/click"),
            Some(json!({})),
        )
        .await;
    }

    pub async fn text(&self, element: &str) -> String {
        self.call(
            reqwest::Method::GET,
            &format!("/element/{element}/text"),
            None,
        )
        .await
        .as_str()
        .unwrap_or_default()
        .to_string()
    }

    /// A PNG of the window, written to `path`.
    pub async fn screenshot(&self, path: &std::path::Path) {
        use base64::Engine;
        let data = self.call(reqwest::Method::GET, "/screenshot", None).await;
        let png = base64::engine::general_purpose::STANDARD
            .decode(data.as_str().unwrap_or_default())
            .expect("a base64 screenshot");
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).unwrap();
        }
        std::fs::write(path, png).unwrap();
    }

    pub async fn close(mut self) {
        let _ = self.http.delete(&self.session).send().await;
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.driver.kill();
    }
}
