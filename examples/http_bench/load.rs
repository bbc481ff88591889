//! Load: `conns` clients each sending its next request when the last is
//! answered (closed loop), or requests started at a steady rate (open loop);
//! each answer's status and latency kept.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

/// What a request is: method, path and body.
pub type MakeRequest = Arc<dyn Fn(u64) -> (reqwest::Method, String, Option<String>) + Send + Sync>;

#[derive(Default)]
pub struct Stats {
    pub latencies_us: Vec<u64>,
    pub ok: u64,
    pub other: u64,
    pub seconds: f64,
}

impl Stats {
    pub fn rate(&self) -> f64 {
        self.ok as f64 / self.seconds.max(1e-9)
    }

    pub fn percentile_ms(&self, p: f64) -> f64 {
        let mut v = self.latencies_us.clone();
        if v.is_empty() {
            return 0.0;
        }
        v.sort_unstable();
        let i = ((v.len() as f64 - 1.0) * p).round() as usize;
        v[i.min(v.len() - 1)] as f64 / 1000.0
    }

    pub fn json(&self) -> Value {
        json!({
            "per_s": self.rate().round(),
            "ok": self.ok,
            "other": self.other,
            "p50_ms": round2(self.percentile_ms(0.5)),
            "p99_ms": round2(self.percentile_ms(0.99)),
        })
    }

    /// One answer, `started` when its request was sent.
    pub fn add(&mut self, started: Instant, ok: bool) {
        self.latencies_us.push(started.elapsed().as_micros() as u64);
        if ok {
            self.ok += 1;
        } else {
            self.other += 1;
        }
    }

    fn merge(&mut self, other: Stats) {
        self.latencies_us.extend(other.latencies_us);
        self.ok += other.ok;
        self.other += other.other;
    }
}

pub fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .pool_max_idle_per_host(1024)
        .timeout(Duration::from_secs(30))
        .build()
        .expect("a client")
}

async fn one(client: &reqwest::Client, base: &str, make: &MakeRequest, n: u64, into: &mut Stats) {
    let (method, path, body) = make(n);
    let mut req = client.request(method, format!("{base}{path}"));
    if let Some(b) = body {
        req = req.header("content-type", "application/json").body(b);
    }
    let started = Instant::now();
    let ok = match req.send().await {
        Ok(resp) => {
            let s = resp.status();
            let _ = resp.bytes().await;
            s.is_success()
        }
        Err(_) => false,
    };
    into.add(started, ok);
}

/// `conns` clients in a closed loop for `duration`.
pub async fn closed(base: &str, conns: usize, duration: Duration, make: MakeRequest) -> Stats {
    let client = client();
    let counter = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let until = started + duration;
    let mut tasks = Vec::new();
    for _ in 0..conns {
        let (client, base, make, counter) = (
            client.clone(),
            base.to_string(),
            make.clone(),
            counter.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let mut stats = Stats::default();
            while Instant::now() < until {
                let n = counter.fetch_add(1, Ordering::Relaxed);
                one(&client, &base, &make, n, &mut stats).await;
            }
            stats
        }));
    }
    let mut all = Stats::default();
    for t in tasks {
        all.merge(t.await.expect("a client task"));
    }
    all.seconds = started.elapsed().as_secs_f64();
    all
}

/// Requests started `rate` a second for `duration` (each in its own task,
/// at most `cap` open at once), `n` counting on from `first`.
pub async fn open(
    base: &str,
    rate: u64,
    duration: Duration,
    first: u64,
    make: MakeRequest,
) -> Stats {
    let client = client();
    let cap = Arc::new(tokio::sync::Semaphore::new(2000));
    let started = Instant::now();
    let total = rate * duration.as_secs();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let mut ticker = tokio::time::interval(Duration::from_millis(10));
    let per_tick = (rate / 100).max(1);
    let mut sent = 0;
    while sent < total {
        ticker.tick().await;
        for _ in 0..per_tick.min(total - sent) {
            let permit = cap.clone().acquire_owned().await.expect("open");
            let (client, base, make, tx) =
                (client.clone(), base.to_string(), make.clone(), tx.clone());
            let n = first + sent;
            tokio::spawn(async move {
                let mut stats = Stats::default();
                one(&client, &base, &make, n, &mut stats).await;
                let _ = tx.send(stats);
                drop(permit);
            });
            sent += 1;
        }
    }
    drop(tx);
    let mut all = Stats::default();
    while let Some(s) = rx.recv().await {
        all.merge(s);
    }
    all.seconds = started.elapsed().as_secs_f64();
    all
}

/// An A2A `message/send` with messageId `key`.
pub fn message(key: &str) -> String {
    json!({"jsonrpc": "2.0", "id": key, "method": "message/send",
        "params": {"message": {"role": "user", "messageId": key,
        "parts": [{"kind": "text", "text": "bench"}]}}})
    .to_string()
}

/// Register `workspace` at `url` with room `room`, reporting `active` busy.
pub async fn workspace(base: &str, workspace: &str, url: &str, room: u32, active: u32) {
    let c = client();
    let r = c
        .put(format!("{base}/v1/workspaces/{workspace}"))
        .json(&json!({"url": url, "max_concurrent": room}))
        .send()
        .await
        .expect("register");
    assert!(r.status().is_success(), "register: {}", r.status());
    let r = c
        .post(format!("{base}/v1/workspaces/{workspace}/heartbeat"))
        .json(&json!({"active_tasks": active}))
        .send()
        .await
        .expect("beat");
    assert!(r.status().is_success(), "beat: {}", r.status());
}

/// One heartbeat of `workspace` (`active` tasks); a failure is only printed.
pub async fn beat(base: &str, workspace: &str, active: u32) {
    let sent = client()
        .post(format!("{base}/v1/workspaces/{workspace}/heartbeat"))
        .json(&json!({"active_tasks": active}))
        .send()
        .await;
    if let Err(err) = sent {
        eprintln!("beat failed: {err}");
    }
}
