//! What `GET /metrics` exposes, through `prometheus-client`.
//!
//! Two kinds of numbers, each read the cheap way. Totals (items that ended,
//! by outcome; fires; delegation transitions; rows pruned) are counters fed
//! by the actors' event buses: the actors never touch them, small tasks here
//! count their events, and a scrape reads memory. Levels (active queue items
//! by status, actor liveness) are gauges set at scrape time from an
//! index-covered count and the health board; finished rows are never counted,
//! so a scrape costs the same with three rows or three million. A level that
//! could not be read is left out of that scrape and counted in
//! `ringmaster_metrics_read_errors_total{source}`: a missing gauge and a
//! rising error counter, never a false zero.
//!
//! The counters are this node's since it started (Prometheus sums nodes and
//! handles restarts); the gauges are the database's, the same on every node.

use std::sync::{Arc, Mutex, Weak};

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use crate::events::{Buses, EventBus};
use crate::messages::heartbeat::HealthReport;
use crate::messages::scheduler::ScheduleEvent;
use crate::model::queue::QueueStatus;

/// One label, named by the family it belongs to.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Outcome {
    outcome: String,
}
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct To {
    to: String,
}
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Status {
    status: String,
}
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Table {
    table: String,
}
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Source {
    source: String,
}
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ActorLabel {
    actor: String,
}

/// Counter names (as exposed, with `_total`) and the label each carries.
pub const DELIVERIES: (&str, &str) = ("ringmaster_deliveries_total", "outcome");
pub const DELEGATION_TRANSITIONS: (&str, &str) = ("ringmaster_delegation_transitions_total", "to");
pub const FIRES: (&str, &str) = ("ringmaster_schedule_fires_total", "status");
pub const PRUNED: (&str, &str) = ("ringmaster_pruned_rows_total", "table");
pub const READ_ERRORS: (&str, &str) = ("ringmaster_metrics_read_errors_total", "source");

struct Inner {
    registry: Registry,
    deliveries: Family<Outcome, Counter>,
    transitions: Family<To, Counter>,
    fires: Family<Status, Counter>,
    pruned: Family<Table, Counter>,
    read_errors: Family<Source, Counter>,
    queue_items: Family<Status, Gauge>,
    restarts: Family<ActorLabel, Gauge>,
    healthy: Family<ActorLabel, Gauge>,
    tick_lag: Family<ActorLabel, Gauge<f64, std::sync::atomic::AtomicU64>>,
    /// One scrape at a time sets and encodes the gauges.
    scrape: Mutex<()>,
}

/// The metrics of one service.
#[derive(Clone)]
pub struct Metrics {
    inner: Arc<Inner>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

/// `name` without the `_total` the encoder adds to counters.
fn base(name: &str) -> &str {
    name.strip_suffix("_total").unwrap_or(name)
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::default();
        let deliveries = Family::<Outcome, Counter>::default();
        let transitions = Family::<To, Counter>::default();
        let fires = Family::<Status, Counter>::default();
        let pruned = Family::<Table, Counter>::default();
        let read_errors = Family::<Source, Counter>::default();
        let queue_items = Family::<Status, Gauge>::default();
        let restarts = Family::<ActorLabel, Gauge>::default();
        let healthy = Family::<ActorLabel, Gauge>::default();
        let tick_lag = Family::<ActorLabel, Gauge<f64, std::sync::atomic::AtomicU64>>::default();
        registry.register(
            base(DELIVERIES.0),
            "Queue items that reached an end state on this node, by outcome",
            deliveries.clone(),
        );
        registry.register(
            base(DELEGATION_TRANSITIONS.0),
            "Delegation status changes (sweeps and requests), by new status",
            transitions.clone(),
        );
        registry.register(
            base(FIRES.0),
            "Schedule fires recorded, by run status",
            fires.clone(),
        );
        registry.register(
            base(PRUNED.0),
            "Finished rows removed by retention, by table",
            pruned.clone(),
        );
        registry.register(
            base(READ_ERRORS.0),
            "Scrapes that could not read a level (its gauges were left out), by source",
            read_errors.clone(),
        );
        registry.register(
            "ringmaster_queue_items",
            "Active queue items by status (queued, dispatched)",
            queue_items.clone(),
        );
        registry.register(
            "ringmaster_actor_restarts",
            "Restarts of each actor by the root supervisor",
            restarts.clone(),
        );
        registry.register(
            "ringmaster_actor_healthy",
            "1 when the actor ticked within twice its interval",
            healthy.clone(),
        );
        registry.register(
            "ringmaster_actor_tick_lag_seconds",
            "Time since each actor last ticked",
            tick_lag.clone(),
        );
        Self {
            inner: Arc::new(Inner {
                registry,
                deliveries,
                transitions,
                fires,
                pruned,
                read_errors,
                queue_items,
                restarts,
                healthy,
                tick_lag,
                scrape: Mutex::new(()),
            }),
        }
    }

    /// Counters wired to the service's buses.
    pub fn for_buses(buses: &Buses) -> Self {
        let metrics = Self::new();
        metrics.count(&buses.queue, |m, e| {
            m.deliveries
                .get_or_create(&Outcome {
                    outcome: e.item.status.to_string(),
                })
                .inc();
        });
        metrics.count(&buses.delegations, |m, e| {
            m.transitions
                .get_or_create(&To {
                    to: e.to.to_string(),
                })
                .inc();
        });
        metrics.count(&buses.schedules, |m, e| {
            let status = match e {
                ScheduleEvent::CronExecuted { status, .. } => status.as_str(),
                ScheduleEvent::CronSkipped { .. } => "skipped",
                ScheduleEvent::CronMissed { .. } => "missed",
                ScheduleEvent::ScheduleInvalid { .. } => "invalid",
            };
            m.fires
                .get_or_create(&Status {
                    status: status.to_string(),
                })
                .inc();
        });
        metrics.count(&buses.pruned, |m, e| {
            for (table, n) in [
                (
                    "queue_items",
                    e.pruned.queue_completed + e.pruned.queue_failed,
                ),
                ("schedule_runs", e.pruned.runs),
                ("delegations", e.pruned.delegations),
            ] {
                m.pruned
                    .get_or_create(&Table {
                        table: table.to_string(),
                    })
                    .inc_by(n);
            }
        });
        metrics
    }

    /// Apply `record` to every event of `bus`. The task holds only a weak
    /// reference, so it ends when the service that owns the metrics does.
    fn count<E: Clone + Send + 'static>(&self, bus: &EventBus<E>, record: fn(&Inner, &E)) {
        let mut events = bus.channel();
        let weak: Weak<Inner> = Arc::downgrade(&self.inner);
        tokio::spawn(async move {
            while let Some(event) = events.recv().await {
                let Some(inner) = weak.upgrade() else { return };
                record(&inner, &event);
            }
        });
    }

    /// A counter's value for one label (`metric` as in [`DELIVERIES`]…).
    pub fn get(&self, metric: &str, label: &str) -> u64 {
        let label = label.to_string();
        let m = &self.inner;
        match metric {
            n if n == DELIVERIES.0 => m
                .deliveries
                .get_or_create(&Outcome { outcome: label })
                .get(),
            n if n == DELEGATION_TRANSITIONS.0 => {
                m.transitions.get_or_create(&To { to: label }).get()
            }
            n if n == FIRES.0 => m.fires.get_or_create(&Status { status: label }).get(),
            n if n == PRUNED.0 => m.pruned.get_or_create(&Table { table: label }).get(),
            n if n == READ_ERRORS.0 => m.read_errors.get_or_create(&Source { source: label }).get(),
            _ => 0,
        }
    }

    /// The exposition, with the levels read for this scrape: `active` is the
    /// count of active items by status (`None`: it could not be read),
    /// `health` the health board (`None`: not answered).
    pub fn render(
        &self,
        active: Option<&[(QueueStatus, u64)]>,
        health: Option<&HealthReport>,
    ) -> String {
        let m = &self.inner;
        let _one = m.scrape.lock().unwrap_or_else(|p| p.into_inner());
        m.queue_items.clear();
        match active {
            Some(counts) => {
                for status in QueueStatus::ACTIVE {
                    let n = counts.iter().find(|(s, _)| *s == status).map_or(0, |c| c.1);
                    m.queue_items
                        .get_or_create(&Status {
                            status: status.to_string(),
                        })
                        .set(i64::try_from(n).unwrap_or(i64::MAX));
                }
            }
            None => {
                m.read_errors
                    .get_or_create(&Source {
                        source: "queue".into(),
                    })
                    .inc();
            }
        }
        m.restarts.clear();
        m.healthy.clear();
        m.tick_lag.clear();
        match health {
            Some(health) => {
                for a in &health.actors {
                    let label = ActorLabel {
                        actor: a.actor.clone(),
                    };
                    m.restarts.get_or_create(&label).set(i64::from(a.restarts));
                    m.healthy.get_or_create(&label).set(i64::from(a.healthy));
                    if let Some(last) = a.last_tick {
                        let lag = (health.at - last).num_milliseconds().max(0) as f64 / 1000.0;
                        m.tick_lag.get_or_create(&label).set(lag);
                    }
                }
            }
            None => {
                m.read_errors
                    .get_or_create(&Source {
                        source: "health".into(),
                    })
                    .inc();
            }
        }
        let mut out = String::new();
        // Writing to a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &m.registry);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_level_that_could_not_be_read_is_left_out_and_counted_not_zeroed() {
        let m = Metrics::new();
        let text = m.render(Some(&[(QueueStatus::Queued, 7)]), None);
        assert!(
            text.contains("ringmaster_queue_items{status=\"queued\"} 7"),
            "{text}"
        );
        assert!(
            text.contains("ringmaster_queue_items{status=\"dispatched\"} 0"),
            "{text}"
        );
        assert!(
            text.contains("ringmaster_metrics_read_errors_total{source=\"health\"} 1"),
            "{text}"
        );
        let text = m.render(None, None);
        assert!(!text.contains("ringmaster_queue_items{"), "{text}");
        assert!(
            text.contains("ringmaster_metrics_read_errors_total{source=\"queue\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("ringmaster_metrics_read_errors_total{source=\"health\"} 2"),
            "{text}"
        );
        assert_eq!(m.get(READ_ERRORS.0, "queue"), 1);
    }

    #[tokio::test]
    async fn counters_follow_the_buses() {
        let buses = Buses::default();
        let m = Metrics::for_buses(&buses);
        buses.pruned.publish(crate::messages::pruner::PruneReport {
            at: chrono::Utc::now(),
            pruned: crate::model::retention::Pruned {
                queue_completed: 5,
                queue_failed: 2,
                runs: 1,
                delegations: 0,
                cut_short: false,
            },
        });
        for _ in 0..100 {
            if m.get(PRUNED.0, "queue_items") == 7 {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
        assert_eq!(m.get(PRUNED.0, "queue_items"), 7);
        assert_eq!(m.get(PRUNED.0, "schedule_runs"), 1);
        let text = m.render(Some(&[]), None);
        assert!(
            text.contains("ringmaster_pruned_rows_total{table=\"queue_items\"} 7"),
            "{text}"
        );
    }
}
