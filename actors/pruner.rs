//! PrunerActor: removes finished rows past their retention, as Oban's
//! Pruner and River's cleaner do, so the tables hold days of history instead
//! of everything ever done.
//!
//! Apart from the others on purpose: a prune is long, unhurried work, and in
//! its own mailbox it never delays a delivery, a fire or a beat. Each table
//! is pruned in batches of [`PRUNE_BATCH`] rows, oldest first, up to
//! [`PRUNE_BATCHES`] per prune; a prune cut short asks for the next one at
//! once instead of waiting a whole interval. Several nodes may prune the same
//! database: each batch deletes rows nobody else is deleting. Database
//! errors are answered and logged, never raised: a restart would not bring
//! the database back.

use std::time::Duration;

use chrono::{DateTime, Utc};
use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort};

use crate::clock::SharedClock;
use crate::events::EventBus;
use crate::messages::pruner::{PruneReport, PrunerError, PrunerMsg};
use crate::model::retention::{
    batches_done, Pruned, Retention, DELEGATIONS_FINISHED, PRUNE_BATCH, PRUNE_BATCHES,
    QUEUE_COMPLETED, QUEUE_FAILED, RUNS_KEPT_PER_SCHEDULE,
};
use crate::names::{self, Names};
use crate::store::{Store, StoreError};

pub struct PrunerActor;

pub struct PrunerArgs {
    pub names: Names,
    pub store: Store,
    pub clock: SharedClock,
    pub retention: Retention,
    /// How often a prune runs on its own (the first one at start).
    pub interval: Duration,
    pub events: EventBus<PruneReport>,
}

pub struct PrunerState {
    args: PrunerArgs,
}

/// Which table a batch loop prunes.
#[derive(Clone, Copy)]
enum Table {
    QueueCompleted,
    QueueFailed,
    Runs,
    Delegations,
}

impl PrunerState {
    /// One batch of `table` as of `now`.
    async fn batch(&self, table: Table, now: DateTime<Utc>) -> Result<u64, StoreError> {
        let cut = self.args.retention.cutoffs(now);
        let store = &self.args.store;
        match table {
            Table::QueueCompleted => {
                store
                    .prune_queue(&QUEUE_COMPLETED, cut.completed, PRUNE_BATCH)
                    .await
            }
            Table::QueueFailed => {
                store
                    .prune_queue(&QUEUE_FAILED, cut.failed, PRUNE_BATCH)
                    .await
            }
            Table::Runs => {
                store
                    .prune_runs(cut.runs, RUNS_KEPT_PER_SCHEDULE, PRUNE_BATCH)
                    .await
            }
            Table::Delegations => {
                store
                    .prune_delegations(&DELEGATIONS_FINISHED, cut.failed, PRUNE_BATCH)
                    .await
            }
        }
    }

    /// Batches of one table until one comes back short (or the cap).
    async fn table(&self, table: Table, now: DateTime<Utc>) -> (u64, bool, Option<StoreError>) {
        let mut taken = Vec::new();
        while taken.len() < PRUNE_BATCHES as usize {
            match self.batch(table, now).await {
                Ok(n) => {
                    taken.push(n);
                    if n < u64::from(PRUNE_BATCH) {
                        break;
                    }
                }
                Err(err) => {
                    let (total, _) = batches_done(&taken);
                    return (total, false, Some(err));
                }
            }
        }
        let (total, cut_short) = batches_done(&taken);
        (total, cut_short, None)
    }

    async fn prune(&self, now: DateTime<Utc>) -> Result<PruneReport, PrunerError> {
        let mut pruned = Pruned::default();
        let mut first_error = None;
        for table in [
            Table::QueueCompleted,
            Table::QueueFailed,
            Table::Runs,
            Table::Delegations,
        ] {
            let (n, cut_short, err) = self.table(table, now).await;
            match table {
                Table::QueueCompleted => pruned.queue_completed = n,
                Table::QueueFailed => pruned.queue_failed = n,
                Table::Runs => pruned.runs = n,
                Table::Delegations => pruned.delegations = n,
            }
            pruned.cut_short |= cut_short;
            if let Some(err) = err {
                tracing::warn!(error = %err, "prune: a table could not be pruned");
                first_error.get_or_insert(err);
            }
        }
        let report = PruneReport { at: now, pruned };
        if pruned.total() > 0 {
            tracing::info!(
                completed = pruned.queue_completed,
                failed = pruned.queue_failed,
                runs = pruned.runs,
                delegations = pruned.delegations,
                cut_short = pruned.cut_short,
                "pruned"
            );
            self.args.events.publish(report);
        }
        // After a round that deleted (a table in steady state, so the
        // statistics it also refreshes describe it): bounded by the table's
        // size, off the drain's path. Not on a table that has seen no prune:
        // statistics taken of a young, near-empty queue misled the claim's
        // plan once it filled (queue_bench W2 fell from ~35k to 380/s).
        if pruned.total() > 0 {
            if let Err(err) = self.args.store.reclaim().await {
                tracing::warn!(error = %err, "prune: space not reclaimed");
            }
        }
        match first_error {
            None => Ok(report),
            Some(source) => Err(PrunerError::Prune { report, source }),
        }
    }
}

fn answer<T: Send + 'static>(reply: Option<RpcReplyPort<T>>, value: T) {
    if let Some(reply) = reply {
        let _ = reply.send(value);
    }
}

impl Actor for PrunerActor {
    type Msg = PrunerMsg;
    type State = PrunerState;
    type Arguments = PrunerArgs;

    async fn pre_start(
        &self,
        _myself: ActorRef<PrunerMsg>,
        args: PrunerArgs,
    ) -> Result<PrunerState, ActorProcessingErr> {
        // From pre_start: see `Names::report_alive`.
        args.names
            .report_alive(names::PRUNER, args.clock.now(), args.interval);
        Ok(PrunerState { args })
    }

    async fn post_start(
        &self,
        myself: ActorRef<PrunerMsg>,
        state: &mut PrunerState,
    ) -> Result<(), ActorProcessingErr> {
        let _ = myself.cast(PrunerMsg::Prune {
            now: None,
            reply: None,
        });
        myself.send_interval(state.args.interval, || PrunerMsg::Prune {
            now: None,
            reply: None,
        });
        Ok(())
    }

    async fn handle(
        &self,
        myself: ActorRef<PrunerMsg>,
        message: PrunerMsg,
        state: &mut PrunerState,
    ) -> Result<(), ActorProcessingErr> {
        match message {
            PrunerMsg::Prune { now, reply } => {
                let timed = now.is_none();
                let now = now.unwrap_or_else(|| state.args.clock.now());
                state
                    .args
                    .names
                    .report_alive(names::PRUNER, now, state.args.interval);
                let result = state.prune(now).await;
                // More was left: go on at once (timer prunes only, so a
                // test's explicit prune stays one prune).
                if timed && matches!(&result, Ok(r) if r.pruned.cut_short) {
                    let _ = myself.cast(PrunerMsg::Prune {
                        now: None,
                        reply: None,
                    });
                }
                answer(reply, result);
            }
        }
        Ok(())
    }
}
