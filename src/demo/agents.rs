//! Simulated agent workspaces for the demo: small A2A servers on loopback,
//! each with a temperament, and a loop that beats for each of them.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use axum::Router;
use serde_json::{json, Value};

/// How a simulated agent behaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Temperament {
    /// Always answers with text.
    Steady,
    /// Answers 429 about half the time and reports itself full now and then.
    SometimesBusy,
    /// Answers twice, then only with no text (its cron goes `stale`).
    SometimesEmpty,
    /// Answers for a while, then its server goes away and it stops beating.
    Dies,
}

pub struct Agent {
    pub name: &'static str,
    pub temperament: Temperament,
    pub url: String,
    calls: Arc<AtomicU64>,
    alive: Arc<AtomicBool>,
    server: tokio::task::JoinHandle<()>,
}

impl Agent {
    pub fn calls(&self) -> u64 {
        self.calls.load(Ordering::Relaxed)
    }

    pub fn alive(&self) -> bool {
        self.alive.load(Ordering::Relaxed)
    }

    /// Stop serving: connections are refused from now on.
    pub fn kill(&self) {
        self.alive.store(false, Ordering::Relaxed);
        self.server.abort();
    }
}

#[derive(Clone)]
struct AgentState {
    temperament: Temperament,
    calls: Arc<AtomicU64>,
}

async fn answer(State(agent): State<AgentState>, body: String) -> (StatusCode, String) {
    let n = agent.calls.fetch_add(1, Ordering::Relaxed);
    let request: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
    let id = request.get("id").cloned().unwrap_or(Value::Null);
    let prompt = request
        .pointer("/params/message/parts/0/text")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    let reply = |text: Option<String>| {
        let parts = match text {
            Some(t) => json!([{"kind": "text", "text": t}]),
            None => json!([]),
        };
        json!({"jsonrpc": "2.0", "id": id, "result": {"kind": "message", "role": "agent", "parts": parts}}).to_string()
    };
    match agent.temperament {
        Temperament::SometimesBusy if n % 2 == 1 => {
            (StatusCode::TOO_MANY_REQUESTS, "busy".to_string())
        }
        // Answers at first, then only with empty messages: its cron goes
        // `stale` at the third empty answer in a row.
        Temperament::SometimesEmpty if n >= 2 => (StatusCode::OK, reply(None)),
        _ => (StatusCode::OK, reply(Some(format!("did: {prompt}")))),
    }
}

/// Start an agent's server on a free loopback port.
pub async fn spawn(name: &'static str, temperament: Temperament) -> std::io::Result<Agent> {
    let listener = tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0))).await?;
    let addr = listener.local_addr()?;
    let calls = Arc::new(AtomicU64::new(0));
    let app = Router::new()
        .route("/a2a", post(answer))
        .with_state(AgentState {
            temperament,
            calls: calls.clone(),
        });
    let server = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Ok(Agent {
        name,
        temperament,
        url: format!("http://{addr}/a2a"),
        calls,
        alive: Arc::new(AtomicBool::new(true)),
        server,
    })
}

/// The load an agent reports on its `beat`-th heartbeat.
pub fn load(temperament: Temperament, beat: u64) -> u32 {
    match temperament {
        // Full for three seconds out of every ten: its messages wait in the queue.
        Temperament::SometimesBusy if beat % 10 < 3 => 2,
        _ => 0,
    }
}

/// One beat interval.
pub const BEAT_EVERY: Duration = Duration::from_secs(1);
