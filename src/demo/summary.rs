//! The demo's live summary: one block every two seconds.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::agents::Agent;
use crate::metrics::{DELEGATION_TRANSITIONS, DELIVERIES, FIRES};
use crate::model::delegation::DelegationStatus;
use crate::model::queue::QueueStatus;
use crate::service::Ringmaster;

pub async fn print_loop(ringmaster: Arc<Ringmaster>, agents: Arc<Vec<Agent>>) {
    let started = Instant::now();
    loop {
        tokio::time::sleep(Duration::from_secs(2)).await;
        println!("{}", render(&ringmaster, &agents, started.elapsed()).await);
    }
}

async fn render(ringmaster: &Ringmaster, agents: &[Agent], elapsed: Duration) -> String {
    let mut out = format!(
        "── t+{:>3}s ─────────────────────────────────────────────\n",
        elapsed.as_secs()
    );
    let counts = ringmaster.store().queue_counts().await.unwrap_or_default();
    let count = |s: QueueStatus| counts.iter().find(|c| c.0 == s).map(|c| c.1).unwrap_or(0);
    out += &format!(
        "queue        queued {}  dispatched {}  completed {}  failed {}  expired {}\n",
        count(QueueStatus::Queued),
        count(QueueStatus::Dispatched),
        count(QueueStatus::Completed),
        count(QueueStatus::Failed),
        count(QueueStatus::Expired)
    );
    let m = ringmaster.metrics();
    out += &format!(
        "fires        ok {}  stale {}  skipped {}  error {}  missed {}\n",
        m.get(FIRES.0, "ok"),
        m.get(FIRES.0, "stale"),
        m.get(FIRES.0, "skipped"),
        m.get(FIRES.0, "error"),
        m.get(FIRES.0, "missed")
    );
    let _ = DELIVERIES;
    {
        let mut parts = Vec::new();
        for status in DelegationStatus::ALL {
            let n = ringmaster
                .store()
                .list_delegations(status, 1000)
                .await
                .map(|v| v.len())
                .unwrap_or(0);
            if n > 0 {
                parts.push(format!("{status} {n}"));
            }
        }
        out += &format!(
            "delegations  {}   (swept to stuck {}, to failed {})\n",
            parts.join("  "),
            m.get(DELEGATION_TRANSITIONS.0, "stuck"),
            m.get(DELEGATION_TRANSITIONS.0, "failed")
        );
    }
    if let Ok(workspaces) = ringmaster.store().list_workspaces().await {
        let line: Vec<String> = workspaces
            .iter()
            .map(|w| {
                let calls = agents
                    .iter()
                    .find(|a| a.name == w.id)
                    .map(|a| a.calls())
                    .unwrap_or(0);
                format!(
                    "{} {} {}/{} ({} calls)",
                    w.id,
                    w.status.as_str(),
                    w.active_tasks,
                    w.max_concurrent,
                    calls
                )
            })
            .collect();
        out += &format!("workspaces   {}\n", line.join("  "));
    }
    if let Ok(health) = ringmaster.health().await {
        let line: Vec<String> = health
            .actors
            .iter()
            .map(|a| {
                format!(
                    "{} {} restarts {}",
                    a.actor,
                    if a.healthy { "ok" } else { "LATE" },
                    a.restarts
                )
            })
            .collect();
        out += &format!("actors       {}", line.join("  |  "));
    }
    out
}
