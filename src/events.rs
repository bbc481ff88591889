//! Event fan-out that neither drops events nor forgets subscribers.
//!
//! ractor's `OutputPort` drops messages when a subscriber lags, and a
//! subscription made to an actor is lost when that actor restarts. Outcomes
//! (a delivery completed, a delegation marked stuck) must not be lost, so an
//! [`EventBus`] is created once by the service and handed to the publishing
//! actor in its arguments: every incarnation publishes to the same
//! subscribers. Each subscriber is an unbounded sink (an actor's mailbox or an
//! unbounded channel), so publishing never blocks and never drops.
//!
//! The lock here guards only the list of subscribers, never actor state.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};

use ractor::{ActorRef, Message};

use crate::messages::heartbeat::WorkspaceEvent;
use crate::messages::pruner::PruneReport;
use crate::messages::queue::QueueOutcome;
use crate::messages::scheduler::ScheduleEvent;
use crate::messages::sweeper::DelegationEvent;

type SinkFn<E> = dyn Fn(&E) -> bool + Send + Sync;

/// Where one subscriber's events go. Answers `false` once it is closed, and
/// is then dropped from the bus.
pub struct Sink<E> {
    deliver: Box<SinkFn<E>>,
    closed: AtomicBool,
}

impl<E: Clone + Send + 'static> Sink<E> {
    /// Events become messages to `actor`, through `wrap`.
    pub fn actor<M: Message>(actor: ActorRef<M>, wrap: fn(E) -> M) -> Self {
        Self::new(move |event: &E| actor.cast(wrap(event.clone())).is_ok())
    }

    /// Events go to an unbounded channel (tests, HTTP streaming, metrics).
    pub fn channel(sender: tokio::sync::mpsc::UnboundedSender<E>) -> Self {
        Self::new(move |event: &E| sender.send(event.clone()).is_ok())
    }

    /// Events go to a function that never refuses (the console's feed).
    pub fn func(f: impl Fn(&E) + Send + Sync + 'static) -> Self {
        Self::new(move |event: &E| {
            f(event);
            true
        })
    }

    fn new(deliver: impl Fn(&E) -> bool + Send + Sync + 'static) -> Self {
        Sink {
            deliver: Box::new(deliver),
            closed: AtomicBool::new(false),
        }
    }
}

/// A list of subscribers shared by every incarnation of a publisher.
pub struct EventBus<E> {
    sinks: Arc<RwLock<Vec<Sink<E>>>>,
}

impl<E> Clone for EventBus<E> {
    fn clone(&self) -> Self {
        Self {
            sinks: self.sinks.clone(),
        }
    }
}

impl<E> Default for EventBus<E> {
    fn default() -> Self {
        Self {
            sinks: Arc::new(RwLock::new(Vec::new())),
        }
    }
}

impl<E: Clone + Send + 'static> EventBus<E> {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn subscribe(&self, sink: Sink<E>) {
        self.sinks
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .push(sink);
    }

    /// A fresh unbounded channel subscribed to this bus.
    pub fn channel(&self) -> tokio::sync::mpsc::UnboundedReceiver<E> {
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        self.subscribe(Sink::channel(tx));
        rx
    }

    /// Deliver `event` to every live subscriber; forget the closed ones.
    pub fn publish(&self, event: E) {
        let mut any_closed = false;
        {
            let sinks = self.sinks.read().unwrap_or_else(|p| p.into_inner());
            for sink in sinks.iter().filter(|s| !s.closed.load(Ordering::Relaxed)) {
                if !(sink.deliver)(&event) {
                    sink.closed.store(true, Ordering::Relaxed);
                    any_closed = true;
                }
            }
        }
        if any_closed {
            self.sinks
                .write()
                .unwrap_or_else(|p| p.into_inner())
                .retain(|sink| !sink.closed.load(Ordering::Relaxed));
        }
    }

    pub fn subscribers(&self) -> usize {
        self.sinks.read().unwrap_or_else(|p| p.into_inner()).len()
    }
}

/// The service's buses, made once so subscriptions outlive actor restarts.
#[derive(Clone, Default)]
pub struct Buses {
    pub queue: EventBus<QueueOutcome>,
    pub delegations: EventBus<DelegationEvent>,
    pub schedules: EventBus<ScheduleEvent>,
    pub pruned: EventBus<PruneReport>,
    pub workspaces: EventBus<WorkspaceEvent>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn every_subscriber_gets_every_event_once_and_closed_ones_are_dropped() {
        let bus = EventBus::<u32>::new();
        let mut a = bus.channel();
        let b = bus.channel();
        let publisher = bus.clone();
        for n in 0..1000 {
            publisher.publish(n);
        }
        drop(b);
        publisher.publish(1000);
        assert_eq!(bus.subscribers(), 1);
        let mut got = Vec::new();
        while let Ok(n) = a.try_recv() {
            got.push(n);
        }
        assert_eq!(got, (0..=1000).collect::<Vec<_>>());
    }
}
