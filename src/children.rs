//! The root's children: how each actor is built, afresh on every restart,
//! from the configuration and the service's shared parts.

use std::sync::Arc;

use crate::actors::heartbeat::{HeartbeatActor, HeartbeatArgs};
use crate::actors::pruner::{PrunerActor, PrunerArgs};
use crate::actors::queue_drain::{QueueDrainActor, QueueDrainArgs};
use crate::actors::scheduler::{SchedulerActor, SchedulerArgs};
use crate::actors::supervisor::ChildSpec;
use crate::actors::sweeper::{DelegationSweeperActor, SweeperArgs};
use crate::clock::SharedClock;
use crate::config::Config;
use crate::dispatch::Dispatcher;
use crate::events::Buses;
use crate::ingest::Ingest;
use crate::model::outcome::Backoff;
use crate::names::{self, Names};
use crate::store::Store;

/// What the child builders need; cloned into each builder.
#[derive(Clone)]
pub struct Wiring {
    pub config: Config,
    pub store: Store,
    pub clock: SharedClock,
    pub names: Names,
    pub dispatcher: Arc<dyn Dispatcher>,
    pub node: String,
    pub buses: Buses,
    pub ingest: Ingest,
}

/// The root's children, in start order. The HeartbeatActor comes first so the
/// others can report their ticks to it from their first tick.
pub fn child_specs(w: &Wiring) -> Vec<ChildSpec> {
    let heartbeat = {
        let w = w.clone();
        ChildSpec::new(names::HEARTBEAT, move || {
            (
                HeartbeatActor,
                HeartbeatArgs {
                    names: w.names.clone(),
                    store: w.store.clone(),
                    clock: w.clock.clone(),
                    tick: w.config.heartbeat_tick,
                    offline_after: w.config.workspace_offline,
                    events: w.buses.workspaces.clone(),
                },
            )
        })
    };
    let queue_drain = {
        let w = w.clone();
        ChildSpec::new(names::QUEUE_DRAIN, move || {
            (
                QueueDrainActor,
                QueueDrainArgs {
                    names: w.names.clone(),
                    store: w.store.clone(),
                    clock: w.clock.clone(),
                    dispatcher: w.dispatcher.clone(),
                    node: w.node.clone(),
                    concurrency: w.config.delivery_concurrency,
                    prefetch: w.config.queue_prefetch,
                    delivery_timeout: w.config.delivery_timeout,
                    max_attempts: w.config.queue_max_attempts,
                    lease: w.config.queue_lease,
                    tick: w.config.queue_tick,
                    backoff: Backoff::default(),
                    events: w.buses.queue.clone(),
                    ingest: w.ingest.clone(),
                },
            )
        })
    };
    let sweeper = {
        let w = w.clone();
        ChildSpec::new(names::SWEEPER, move || {
            (
                DelegationSweeperActor,
                SweeperArgs {
                    names: w.names.clone(),
                    store: w.store.clone(),
                    clock: w.clock.clone(),
                    interval: w.config.sweep_interval,
                    stuck_threshold: w.config.stuck_threshold,
                    events: w.buses.delegations.clone(),
                },
            )
        })
    };
    // After the queue: its first tick may already hand fires to the drain.
    let scheduler = {
        let w = w.clone();
        ChildSpec::new(names::SCHEDULER, move || {
            (
                SchedulerActor,
                SchedulerArgs {
                    names: w.names.clone(),
                    store: w.store.clone(),
                    clock: w.clock.clone(),
                    tick: w.config.scheduler_tick,
                    batch: w.config.scheduler_batch,
                    max_attempts: w.config.queue_max_attempts,
                    queue_events: w.buses.queue.clone(),
                    events: w.buses.schedules.clone(),
                },
            )
        })
    };
    // Last: nothing waits on it, and it must not slow the others' start.
    let pruner = {
        let w = w.clone();
        ChildSpec::new(names::PRUNER, move || {
            (
                PrunerActor,
                PrunerArgs {
                    names: w.names.clone(),
                    store: w.store.clone(),
                    clock: w.clock.clone(),
                    retention: w.config.retention,
                    interval: w.config.prune_interval,
                    events: w.buses.pruned.clone(),
                },
            )
        })
    };
    vec![heartbeat, queue_drain, scheduler, sweeper, pruner]
}
