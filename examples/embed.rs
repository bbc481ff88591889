//! Embedding ringmaster in a host's own ractor system.
//!
//! The host runs its own supervisor; ringmaster's root is spawned linked under
//! it, so if ringmaster gives up (restart intensity exceeded) the host is told
//! by an ordinary supervision event and decides what to do. Run it with
//! `cargo run --example embed`; it starts, beats a workspace, prints health,
//! and shuts down.

use std::sync::Arc;

use ractor::{Actor, ActorProcessingErr, ActorRef, SupervisionEvent};
use ringmaster::clock::SystemClock;
use ringmaster::config::Config;
use ringmaster::messages::heartbeat::HeartbeatMsg;
use ringmaster::model::workspace::WorkspaceBeat;
use ringmaster::names::Names;
use ringmaster::{Ringmaster, StartOptions};

/// The host's supervisor: here it only logs what happens to its children.
struct HostSupervisor;

impl Actor for HostSupervisor {
    type Msg = ();
    type State = ();
    type Arguments = ();

    async fn pre_start(&self, _: ActorRef<()>, _: ()) -> Result<(), ActorProcessingErr> {
        Ok(())
    }

    async fn handle_supervisor_evt(
        &self,
        _: ActorRef<()>,
        event: SupervisionEvent,
        _: &mut (),
    ) -> Result<(), ActorProcessingErr> {
        if let SupervisionEvent::ActorFailed(who, why) = event {
            eprintln!("host: ringmaster root {who:?} failed: {why}");
        }
        Ok(())
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let config = Config {
        database_url: format!("sqlite://{}", dir.path().join("embedded.db").display()),
        ..Config::default()
    };
    let (host, host_handle) = Actor::spawn(None, HostSupervisor, ()).await?;

    let store = ringmaster::store::open(&config.database_url).await?;
    let ringmaster = Ringmaster::start_with(StartOptions {
        clock: Arc::new(SystemClock),
        names: Names::new("embedded"),
        supervisor: Some(host.get_cell()),
        ..StartOptions::new(config, store)
    })
    .await?;

    // Talk to an actor the way host code would: a typed message, a typed answer.
    let ack = ringmaster
        .heartbeat()?
        .call(
            |reply| HeartbeatMsg::WorkspaceBeat {
                beat: WorkspaceBeat {
                    workspace: "agent-1".into(),
                    active_tasks: 1,
                    max_concurrent: Some(4),
                },
                reply: Some(reply),
            },
            None,
        )
        .await?
        .success_or("heartbeat did not answer")??;
    println!("agent-1 has room for {} more", ack.spare_capacity);

    let health = ringmaster.health().await?;
    println!(
        "healthy: {} ({} actors)",
        health.healthy,
        health.actors.len()
    );

    ringmaster.shutdown().await;
    host.stop(None);
    host_handle.await?;
    Ok(())
}
