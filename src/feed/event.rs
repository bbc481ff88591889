//! One event of the console's live feed: a `type` (`queue.delivered`,
//! `cron.executed`, `delegation.stuck`, `workspace.offline`,
//! `actor.restarted`, …), the ids it concerns and the time, as one flat JSON
//! object. Built from what the actors already publish on their buses, so
//! the feed adds no work to any actor.

use chrono::{DateTime, Utc};
use serde_json::{json, Map, Value};

use crate::messages::heartbeat::WorkspaceEvent;
use crate::messages::queue::QueueOutcome;
use crate::messages::scheduler::ScheduleEvent;
use crate::messages::sweeper::DelegationEvent;
use crate::model::queue::{QueueItem, QueueStatus};
use crate::model::run::RunStatus;

/// One event, before the feed numbers it.
#[derive(Debug, Clone, PartialEq)]
pub struct ConsoleEvent {
    pub kind: String,
    pub at: DateTime<Utc>,
    /// The ids and details (never the message body or a response).
    pub fields: Map<String, Value>,
}

/// Errors longer than this are cut in events (the item keeps the whole text).
const ERROR_CHARS: usize = 300;

fn cut(error: Option<&str>) -> Value {
    match error {
        Some(e) => Value::String(e.chars().take(ERROR_CHARS).collect()),
        None => Value::Null,
    }
}

fn object(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(map) => map,
        _ => Map::new(),
    }
}

impl ConsoleEvent {
    pub fn new(kind: impl Into<String>, at: DateTime<Utc>, fields: Value) -> Self {
        Self {
            kind: kind.into(),
            at,
            fields: object(fields),
        }
    }

    /// The JSON object a subscriber reads: `type`, `at`, then the fields.
    pub fn to_json(&self, id: u64) -> Value {
        let mut map = Map::with_capacity(self.fields.len() + 3);
        map.insert("type".into(), Value::String(self.kind.clone()));
        map.insert("id".into(), Value::from(id));
        map.insert("at".into(), json!(self.at));
        map.extend(self.fields.clone());
        Value::Object(map)
    }

    /// An item's state as an event (`queue.<state>`, `delivered` for completed).
    pub fn queue(item: &QueueItem, at: DateTime<Utc>) -> Self {
        let kind = match item.status {
            QueueStatus::Completed => "queue.delivered",
            QueueStatus::Failed => "queue.failed",
            QueueStatus::Expired => "queue.expired",
            QueueStatus::Cancelled => "queue.cancelled",
            QueueStatus::Queued => "queue.queued",
            QueueStatus::Dispatched => "queue.dispatched",
        };
        Self::new(
            kind,
            at,
            json!({
                "queue_id": item.id,
                "workspace_id": item.workspace,
                "attempts": item.attempts,
                "error": cut(item.last_error.as_deref()),
            }),
        )
    }

    /// An item an operator sent back to the queue.
    pub fn redriven(item: &QueueItem, at: DateTime<Utc>) -> Self {
        Self::new(
            "queue.retried",
            at,
            json!({"queue_id": item.id, "workspace_id": item.workspace}),
        )
    }

    /// An operator sent `count` of a workspace's dead letters back at once.
    pub fn bulk_redriven(workspace: &str, count: u64, at: DateTime<Utc>) -> Self {
        Self::new(
            "queue.retried",
            at,
            json!({"workspace_id": workspace, "count": count}),
        )
    }

    /// An operator removed a workspace (its queued items cancelled).
    pub fn workspace_removed(workspace: &str, cancelled_items: u64, at: DateTime<Utc>) -> Self {
        Self::new(
            "workspace.removed",
            at,
            json!({"workspace_id": workspace, "cancelled_items": cancelled_items}),
        )
    }

    pub fn enqueued(queue_id: i64, workspace: &str, at: DateTime<Utc>) -> Self {
        Self::new(
            "queue.enqueued",
            at,
            json!({"queue_id": queue_id, "workspace_id": workspace}),
        )
    }

    pub fn workspace(workspace: &str, online: bool, at: DateTime<Utc>) -> Self {
        let kind = if online {
            "workspace.online"
        } else {
            "workspace.offline"
        };
        Self::new(kind, at, json!({"workspace_id": workspace}))
    }

    pub fn restarted(actor: &str, restarts: u64, at: DateTime<Utc>) -> Self {
        Self::new(
            "actor.restarted",
            at,
            json!({"actor": actor, "restarts": restarts}),
        )
    }
}

impl From<&WorkspaceEvent> for ConsoleEvent {
    fn from(e: &WorkspaceEvent) -> Self {
        ConsoleEvent::workspace(&e.workspace, e.online, e.at)
    }
}

impl From<&QueueOutcome> for ConsoleEvent {
    fn from(outcome: &QueueOutcome) -> Self {
        ConsoleEvent::queue(&outcome.item, outcome.at)
    }
}

impl From<&DelegationEvent> for ConsoleEvent {
    fn from(e: &DelegationEvent) -> Self {
        ConsoleEvent::new(
            format!("delegation.{}", e.to.as_str()),
            e.at,
            json!({
                "delegation_id": e.id,
                "from": e.from.as_str(),
                "to": e.to.as_str(),
                "reason": cut(e.reason.as_deref()),
            }),
        )
    }
}

impl From<&ScheduleEvent> for ConsoleEvent {
    fn from(e: &ScheduleEvent) -> Self {
        match e {
            ScheduleEvent::CronExecuted {
                schedule_id,
                workspace,
                slot,
                status,
                error,
                at,
                ..
            } => {
                let kind = if *status == RunStatus::Stale {
                    "cron.stale"
                } else {
                    "cron.executed"
                };
                ConsoleEvent::new(
                    kind,
                    *at,
                    json!({
                        "schedule_id": schedule_id,
                        "workspace_id": workspace,
                        "slot": slot,
                        "status": status,
                        "error": cut(error.as_deref()),
                    }),
                )
            }
            ScheduleEvent::CronSkipped {
                schedule_id,
                workspace,
                slot,
                reason,
                at,
                ..
            } => ConsoleEvent::new(
                "cron.skipped",
                *at,
                json!({"schedule_id": schedule_id, "workspace_id": workspace, "slot": slot,
                       "reason": cut(Some(reason))}),
            ),
            ScheduleEvent::CronMissed {
                schedule_id,
                workspace,
                slot,
                at,
                ..
            } => ConsoleEvent::new(
                "cron.missed",
                *at,
                json!({"schedule_id": schedule_id, "workspace_id": workspace, "slot": slot}),
            ),
            ScheduleEvent::ScheduleInvalid {
                schedule_id,
                error,
                at,
                ..
            } => ConsoleEvent::new(
                "cron.invalid",
                *at,
                json!({"schedule_id": schedule_id, "error": cut(Some(error))}),
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::queue::fixture;

    #[test]
    fn an_event_is_one_flat_object_with_type_id_and_time() {
        let mut item = fixture::item(1, 5);
        item.status = QueueStatus::Failed;
        item.last_error = Some("x".repeat(1000));
        let at = DateTime::from_timestamp(1_800_000_000, 0).unwrap();
        let json = ConsoleEvent::queue(&item, at).to_json(42);
        assert_eq!(json["type"], "queue.failed");
        assert_eq!(json["id"], 42);
        assert_eq!(json["queue_id"], item.id);
        assert_eq!(json["workspace_id"], item.workspace.as_str());
        assert_eq!(json["error"].as_str().unwrap().len(), ERROR_CHARS);
        assert!(json.get("body").is_none() && json.get("response").is_none());
    }
}
