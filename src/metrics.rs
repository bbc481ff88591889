//! Counters for `GET /metrics`, fed by the actors' event buses.
//!
//! The actors never touch these counters: they publish events, and small
//! tasks here count them. Gauges (queue depth, restarts, tick lag) are read
//! when scraped, by asking the actors. The tasks hold only a weak reference,
//! so they end when the service that owns the counters goes away.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::{Arc, Mutex, Weak};

use crate::events::{Buses, EventBus};
use crate::messages::heartbeat::HealthReport;
use crate::messages::scheduler::ScheduleEvent;
use crate::model::queue::QueueStatus;

/// `(metric, label value)` → count.
type Counts = BTreeMap<(&'static str, String), u64>;

#[derive(Default)]
struct Inner {
    counts: Mutex<Counts>,
}

/// The counters of one service.
#[derive(Clone, Default)]
pub struct Metrics {
    inner: Arc<Inner>,
}

/// Counter names and the label each one carries.
pub const DELIVERIES: (&str, &str) = ("ringmaster_deliveries_total", "outcome");
pub const DELEGATION_TRANSITIONS: (&str, &str) = ("ringmaster_delegation_transitions_total", "to");
pub const FIRES: (&str, &str) = ("ringmaster_schedule_fires_total", "status");

const HELP: &[(&str, &str)] = &[
    (
        DELIVERIES.0,
        "Queue items that reached an end state, by outcome.",
    ),
    (
        DELEGATION_TRANSITIONS.0,
        "Delegation status changes (sweeps and requests), by new status.",
    ),
    (FIRES.0, "Schedule fires recorded, by run status."),
];

impl Metrics {
    pub fn new() -> Self {
        Self::default()
    }

    /// Counters wired to the service's buses.
    pub fn for_buses(buses: &Buses) -> Self {
        let metrics = Self::new();
        metrics.count(&buses.queue, DELIVERIES.0, |e| e.item.status.to_string());
        metrics.count(&buses.delegations, DELEGATION_TRANSITIONS.0, |e| {
            e.to.to_string()
        });
        metrics.count(&buses.schedules, FIRES.0, |e| match e {
            ScheduleEvent::CronExecuted { status, .. } => status.as_str().to_string(),
            ScheduleEvent::CronSkipped { .. } => "skipped".to_string(),
            ScheduleEvent::CronMissed { .. } => "missed".to_string(),
            ScheduleEvent::ScheduleInvalid { .. } => "invalid".to_string(),
        });
        metrics
    }

    /// Count every event of `bus` under `metric`, labelled by `label(event)`.
    pub fn count<E: Clone + Send + 'static>(
        &self,
        bus: &EventBus<E>,
        metric: &'static str,
        label: fn(&E) -> String,
    ) {
        let mut events = bus.channel();
        let weak: Weak<Inner> = Arc::downgrade(&self.inner);
        tokio::spawn(async move {
            while let Some(event) = events.recv().await {
                let Some(inner) = weak.upgrade() else { return };
                let mut counts = inner.counts.lock().unwrap_or_else(|p| p.into_inner());
                *counts.entry((metric, label(&event))).or_insert(0) += 1;
            }
        });
    }

    pub fn get(&self, metric: &'static str, label: &str) -> u64 {
        let counts = self.inner.counts.lock().unwrap_or_else(|p| p.into_inner());
        counts
            .get(&(metric, label.to_string()))
            .copied()
            .unwrap_or(0)
    }

    /// The Prometheus text exposition, with the gauges read at scrape time.
    pub fn render(&self, queue: &[(QueueStatus, u64)], health: Option<&HealthReport>) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "# HELP ringmaster_queue_items Queue items by status.");
        let _ = writeln!(out, "# TYPE ringmaster_queue_items gauge");
        for status in QueueStatus::ALL {
            let n = queue
                .iter()
                .find(|(s, _)| *s == status)
                .map(|q| q.1)
                .unwrap_or(0);
            let _ = writeln!(out, "ringmaster_queue_items{{status=\"{status}\"}} {n}");
        }
        let counts = self
            .inner
            .counts
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        for (metric, label_name) in [DELIVERIES, DELEGATION_TRANSITIONS, FIRES] {
            let help = HELP
                .iter()
                .find(|h| h.0 == metric)
                .map(|h| h.1)
                .unwrap_or("");
            let _ = writeln!(out, "# HELP {metric} {help}");
            let _ = writeln!(out, "# TYPE {metric} counter");
            for ((m, label), n) in counts.iter().filter(|((m, _), _)| *m == metric) {
                let _ = writeln!(out, "{m}{{{label_name}=\"{}\"}} {n}", escape(label));
            }
        }
        if let Some(health) = health {
            let _ = writeln!(out, "# HELP ringmaster_actor_restarts_total Restarts of each actor by the root supervisor.");
            let _ = writeln!(out, "# TYPE ringmaster_actor_restarts_total counter");
            for a in &health.actors {
                let _ = writeln!(
                    out,
                    "ringmaster_actor_restarts_total{{actor=\"{}\"}} {}",
                    escape(&a.actor),
                    a.restarts
                );
            }
            let _ = writeln!(
                out,
                "# HELP ringmaster_actor_tick_lag_seconds Time since each actor last ticked."
            );
            let _ = writeln!(out, "# TYPE ringmaster_actor_tick_lag_seconds gauge");
            for a in &health.actors {
                if let Some(last) = a.last_tick {
                    let lag = (health.at - last).num_milliseconds().max(0) as f64 / 1000.0;
                    let _ = writeln!(
                        out,
                        "ringmaster_actor_tick_lag_seconds{{actor=\"{}\"}} {lag}",
                        escape(&a.actor)
                    );
                }
            }
            let _ = writeln!(out, "# HELP ringmaster_actor_healthy 1 when the actor ticked within twice its interval.");
            let _ = writeln!(out, "# TYPE ringmaster_actor_healthy gauge");
            for a in &health.actors {
                let _ = writeln!(
                    out,
                    "ringmaster_actor_healthy{{actor=\"{}\"}} {}",
                    escape(&a.actor),
                    u8::from(a.healthy)
                );
            }
        }
        out
    }
}

/// Label values escaped as the exposition format requires.
fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}
