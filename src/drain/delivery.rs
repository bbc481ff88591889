//! One delivery: the dispatcher called in its own task (a panic is caught,
//! a hang ends at the delivery timeout), the outcome handed to the
//! completer, and the drain told that the slot is free.

use std::sync::Arc;
use std::time::Duration;

use ractor::ActorRef;

use super::completer::{Completer, Completion};
use crate::clock::SharedClock;
use crate::dispatch::{Delivery, DispatchError, DispatchOutcome, Dispatcher};
use crate::messages::queue::{DrainReport, Internal, QueueMsg};
use crate::model::outcome::DispatchResult;
use crate::model::queue::QueueItem;
use crate::model::workspace::Workspace;
use crate::names::{self, Names};

pub struct DeliveryTask {
    pub dispatcher: Arc<dyn Dispatcher>,
    pub clock: SharedClock,
    pub names: Names,
    pub completer: Completer,
    pub timeout: Duration,
    pub item: QueueItem,
    pub workspace: Workspace,
}

impl DeliveryTask {
    pub fn spawn(self, fallback: ActorRef<QueueMsg>) {
        tokio::spawn(async move {
            let item = self.item;
            let delivery = Delivery {
                item_id: item.id,
                workspace: self.workspace,
                method: item.method.clone(),
                body: item.body.clone(),
                idempotency_key: item.idempotency_key.clone(),
            };
            let result = match run(self.dispatcher, delivery, self.timeout).await {
                Ok(DispatchOutcome::Delivered { response }) => {
                    DispatchResult::Delivered { response }
                }
                Ok(DispatchOutcome::Busy { reason }) => DispatchResult::Busy { reason },
                Err(err) => {
                    tracing::warn!(item = item.id, workspace = %item.workspace,
                        attempt = item.attempts.saturating_add(1), error = %err, "delivery failed");
                    DispatchResult::Error {
                        message: err.to_string(),
                    }
                }
            };
            let report = DrainReport::Dispatched {
                workspace: item.workspace.clone(),
                item_id: item.id,
                lease_token: item.lease_token.clone().unwrap_or_default(),
                busy: matches!(result, DispatchResult::Busy { .. }),
                response: match &result {
                    DispatchResult::Delivered { response } => Some(response.clone()),
                    _ => None,
                },
            };
            let at = self.clock.now();
            // The completer outlives the incarnation that spawned us; if it
            // is gone the process is going down and the lease is rescued.
            self.completer.send(Completion { item, result, at }).await;
            // Prefer the incarnation registered now (the one that spawned us
            // may have been restarted meanwhile; it counted us as inherited).
            let target = self
                .names
                .lookup::<QueueMsg>(names::QUEUE_DRAIN)
                .unwrap_or(fallback);
            let _ = target.cast(QueueMsg::Internal(Internal(report)));
        });
    }
}

/// Run one dispatch in its own task so a panic is caught, bounded by `timeout`.
pub async fn run(
    dispatcher: Arc<dyn Dispatcher>,
    delivery: Delivery,
    timeout: Duration,
) -> Result<DispatchOutcome, DispatchError> {
    let task = tokio::spawn(async move { dispatcher.deliver(&delivery).await });
    let abort = task.abort_handle();
    match tokio::time::timeout(timeout, task).await {
        Err(_) => {
            abort.abort();
            Err(DispatchError::Timeout(timeout))
        }
        Ok(Err(join)) if join.is_panic() => {
            let payload = join.into_panic();
            let message = payload
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "a panic without a message".to_string());
            Err(DispatchError::Panicked(message))
        }
        Ok(Err(_)) => Err(DispatchError::Other(
            "delivery task was cancelled".to_string(),
        )),
        Ok(Ok(result)) => result,
    }
}
