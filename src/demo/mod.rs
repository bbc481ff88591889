//! `ringmaster demo`: everything ringmaster does, on one screen, in a minute.
//!
//! It starts ringmaster on a temporary SQLite database with short intervals,
//! four simulated agents on loopback (steady, sometimes busy, sometimes empty,
//! one that dies), registers them, sends them messages, creates delegations
//! (one that finishes, one that never beats, one that runs out of time),
//! crashes an actor once to show the supervisor, and prints a live summary
//! until Ctrl-C. The HTTP API is served too, so a newcomer can curl it.

mod agents;
mod summary;

use std::sync::Arc;
use std::time::Duration;

use ractor::ActorRef;

use crate::actors::ask::ask;
use crate::config::Config;
use crate::messages::heartbeat::HeartbeatMsg;
use crate::messages::queue::QueueMsg;
use crate::messages::scheduler::{SchedulerMsg, Upsert};
use crate::messages::sweeper::SweeperMsg;
use crate::model::a2a::a2a_message;
use crate::model::delegation::{DelegationStatus, NewDelegation, StatusChange};
use crate::model::queue::NewQueueItem;
use crate::model::schedule::NewSchedule;
use crate::model::workspace::{Registration, WorkspaceBeat};
use crate::service::{Ringmaster, CALL_TIMEOUT};
use agents::{Agent, Temperament};

#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    #[error("demo setup failed: {0}")]
    Setup(String),
}

fn setup<E: std::fmt::Display>(e: E) -> DemoError {
    DemoError::Setup(e.to_string())
}

/// Short intervals so every behaviour shows within a minute.
pub fn demo_config(database_url: String, bind: std::net::SocketAddr) -> Config {
    Config {
        database_url,
        bind,
        scheduler_tick: Duration::from_millis(500),
        heartbeat_tick: Duration::from_secs(1),
        queue_tick: Duration::from_secs(1),
        sweep_interval: Duration::from_secs(2),
        stuck_threshold: Duration::from_secs(8),
        workspace_offline: Duration::from_secs(4),
        delivery_timeout: Duration::from_secs(2),
        queue_max_attempts: 3,
        ..Config::default()
    }
}

/// Run the demo until `stop` resolves (the binary passes Ctrl-C).
pub async fn run(
    bind: std::net::SocketAddr,
    stop: impl std::future::Future<Output = ()>,
) -> Result<(), DemoError> {
    let dir = tempfile::tempdir().map_err(setup)?;
    let url = format!("sqlite://{}", dir.path().join("demo.db").display());
    let database = url.clone();
    let config = demo_config(url, bind);
    let ringmaster = Arc::new(Ringmaster::start(config).await.map_err(setup)?);
    let listener = tokio::net::TcpListener::bind(bind).await.map_err(setup)?;
    let api = listener.local_addr().map_err(setup)?;
    let router = crate::http::router(ringmaster.clone());
    let server = tokio::spawn(async move {
        let _ = axum::serve(listener, router).await;
    });

    let mut agents = Vec::new();
    for (name, temperament) in [
        ("steady", Temperament::Steady),
        ("sometimes-busy", Temperament::SometimesBusy),
        ("sometimes-empty", Temperament::SometimesEmpty),
        ("doomed", Temperament::Dies),
    ] {
        agents.push(agents::spawn(name, temperament).await.map_err(setup)?);
    }
    let heartbeat = ringmaster.heartbeat().map_err(setup)?;
    for agent in &agents {
        ask(
            &heartbeat,
            "heartbeat",
            |reply| HeartbeatMsg::Register {
                registration: Registration {
                    workspace: agent.name.to_string(),
                    url: Some(agent.url.clone()),
                    max_concurrent: 2,
                },
                reply,
            },
            CALL_TIMEOUT,
        )
        .await
        .map_err(setup)?
        .map_err(setup)?;
    }
    // Registered on a port nobody listens on, and never beats (so it is not
    // marked offline): its messages fail, retry with backoff, and end `failed`.
    ask(
        &heartbeat,
        "heartbeat",
        |reply| HeartbeatMsg::Register {
            registration: Registration {
                workspace: "unreachable".to_string(),
                url: Some("http://127.0.0.1:1/a2a".to_string()),
                max_concurrent: 1,
            },
            reply,
        },
        CALL_TIMEOUT,
    )
    .await
    .map_err(setup)?
    .map_err(setup)?;
    let agents = Arc::new(agents);
    println!(
        "ringmaster demo: API on http://{api} (try: curl -s http://{api}/metrics), database {}",
        dir.path().display()
    );
    println!(
        "agents: {}",
        agents
            .iter()
            .map(|a| format!("{} ({:?})", a.name, a.temperament))
            .collect::<Vec<_>>()
            .join(", ")
    );
    println!("Ctrl-C to stop.\n");

    create_delegations(&ringmaster).await?;
    create_schedules(&ringmaster, &database).await?;
    let tasks = vec![
        tokio::spawn(beat_loop(ringmaster.clone(), agents.clone())),
        tokio::spawn(message_loop(ringmaster.clone())),
        tokio::spawn(scripted_events(ringmaster.clone(), agents.clone())),
        tokio::spawn(summary::print_loop(ringmaster.clone(), agents.clone())),
    ];
    stop.await;
    for t in tasks {
        t.abort();
    }
    server.abort();
    println!("\nstopping…");
    ringmaster.shutdown().await;
    Ok(())
}

/// Each live agent reports its load every second; a dead one falls silent
/// and goes `offline`.
async fn beat_loop(ringmaster: Arc<Ringmaster>, agents: Arc<Vec<Agent>>) {
    let mut n = 0u64;
    loop {
        if let Ok(heartbeat) = ringmaster.heartbeat() {
            for agent in agents.iter().filter(|a| a.alive()) {
                let _ = heartbeat.cast(HeartbeatMsg::WorkspaceBeat {
                    beat: WorkspaceBeat {
                        workspace: agent.name.to_string(),
                        active_tasks: agents::load(agent.temperament, n),
                        max_concurrent: None,
                    },
                    reply: None,
                });
            }
        }
        n += 1;
        tokio::time::sleep(agents::BEAT_EVERY).await;
    }
}

/// Someone keeps sending the agents work, as other agents would.
async fn message_loop(ringmaster: Arc<Ringmaster>) {
    let mut n = 0u64;
    loop {
        if let Ok(queue) = ringmaster.queue() {
            let mut targets = vec!["steady", "sometimes-busy", "doomed"];
            if n % 10 == 0 {
                targets.push("unreachable");
            }
            for workspace in targets {
                let key = format!("demo-{workspace}-{n}");
                // Ten seconds to find room, or the message expires (the dead
                // agent's pile shows it).
                let item = NewQueueItem::new(workspace, a2a_message(&key, "summarise the inbox"))
                    .key(key)
                    .ttl(Duration::from_secs(10));
                let _ = queue.cast(QueueMsg::Enqueue { item, reply: None });
            }
        }
        n += 1;
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
}

async fn create_delegations(ringmaster: &Ringmaster) -> Result<(), DemoError> {
    let sweeper = ringmaster.sweeper().map_err(setup)?;
    let now = ringmaster.clock().now();
    for (id, deadline) in [
        ("delegation-finishes", None),
        ("delegation-never-beats", None),
        (
            "delegation-runs-out-of-time",
            Some(now + chrono::Duration::seconds(12)),
        ),
        ("delegation-keeps-beating", None),
    ] {
        let new = NewDelegation {
            id: Some(id.to_string()),
            caller_workspace_id: Some("planner".to_string()),
            workspace_id: "steady".to_string(),
            deadline,
        };
        ask(
            &sweeper,
            "delegation-sweeper",
            |reply| SweeperMsg::Create { new, reply },
            CALL_TIMEOUT,
        )
        .await
        .map_err(setup)?
        .map_err(setup)?;
    }
    Ok(())
}

/// Schedules firing every few seconds (6-field specs, seconds first), each
/// showing one outcome: `ok` (standup), `stale` (inbox sweep), `skipped`
/// (price check, 2 s to find room), `error` (backup to an unreachable agent),
/// and `missed` (a weekly digest due while "down").
async fn create_schedules(ringmaster: &Ringmaster, database: &str) -> Result<(), DemoError> {
    let scheduler = ringmaster.scheduler().map_err(setup)?;
    let plans = [
        ("steady", "standup", "*/3 * * * * *", 120),
        ("sometimes-empty", "inbox sweep", "*/4 * * * * *", 120),
        ("sometimes-busy", "price check", "*/5 * * * * *", 2),
        ("doomed", "nightly report", "*/6 * * * * *", 120),
        ("unreachable", "backup", "*/7 * * * * *", 120),
        (
            "steady",
            "weekly digest (was down for 2 h)",
            "0 0 9 * * MON",
            120,
        ),
    ];
    let mut last = 0;
    for (workspace, name, spec, defer_s) in plans {
        let mut new = NewSchedule::new(workspace, name, spec, format!("{name}, please"));
        new.defer_window = Duration::from_secs(defer_s);
        let stored = ask(
            &scheduler,
            "scheduler",
            |reply| SchedulerMsg::Upsert {
                upsert: Upsert::Create(new),
                reply,
            },
            CALL_TIMEOUT,
        )
        .await
        .map_err(setup)?
        .map_err(setup)?;
        last = stored.id;
    }
    // Pretend the process was down for two hours while the weekly digest was
    // due: its slot is past the one-hour starting deadline, so it is recorded
    // `missed` instead of firing late.
    let two_hours_ago = (ringmaster.clock().now() - chrono::Duration::hours(2)).timestamp_millis();
    let pool = sqlx::SqlitePool::connect(database).await.map_err(setup)?;
    sqlx::query("UPDATE schedules SET next_run_at = ?1 WHERE id = ?2")
        .bind(two_hours_ago)
        .bind(last)
        .execute(&pool)
        .await
        .map_err(setup)?;
    pool.close().await;
    Ok(())
}

fn set_status(sweeper: &ActorRef<SweeperMsg>, id: &str, to: DelegationStatus) {
    let _ = sweeper.cast(SweeperMsg::SetStatus {
        id: id.to_string(),
        change: StatusChange::to(to),
        reply: None,
    });
}

/// The story of the first minute.
async fn scripted_events(ringmaster: Arc<Ringmaster>, agents: Arc<Vec<Agent>>) {
    let mut second = 0u64;
    loop {
        tokio::time::sleep(Duration::from_secs(1)).await;
        second += 1;
        if let (Ok(sweeper), Ok(heartbeat)) = (ringmaster.sweeper(), ringmaster.heartbeat()) {
            if second == 1 {
                for id in [
                    "delegation-finishes",
                    "delegation-runs-out-of-time",
                    "delegation-keeps-beating",
                ] {
                    set_status(&sweeper, id, DelegationStatus::InProgress);
                }
            }
            for id in ["delegation-keeps-beating", "delegation-runs-out-of-time"] {
                let _ = heartbeat.cast(HeartbeatMsg::DelegationBeat {
                    delegation: id.to_string(),
                    reply: None,
                });
            }
            if second == 6 {
                set_status(&sweeper, "delegation-finishes", DelegationStatus::Completed);
            }
        }
        if second == 15 {
            if let Some(doomed) = agents.iter().find(|a| a.temperament == Temperament::Dies) {
                println!(
                    ">>> {} dies: its messages fail and retry, then it goes offline",
                    doomed.name
                );
                doomed.kill();
            }
        }
        if second == 25 {
            if let Ok(queue) = ringmaster.queue() {
                println!(">>> the queue drain is killed: the supervisor restarts it; nothing queued is lost");
                queue.kill();
            }
        }
    }
}
