//! The console's live feed: every event the actors publish, numbered,
//! kept in a bounded ring for `Last-Event-ID` resumes, and fanned out to
//! subscribers through a bounded broadcast. A slow subscriber never slows a
//! publisher: when it falls more than [`SUBSCRIBER_LAG`] events behind it
//! is dropped (it hears a last `stream.lagged` event and may resume).
//!
//! ```
//! use ringmaster::feed::{ConsoleEvent, Feed};
//! let feed = Feed::default();
//! let at = chrono::Utc::now();
//! feed.publish(ConsoleEvent::workspace("w", false, at));
//! let resumed = feed.subscribe(Some(0));
//! assert_eq!(resumed.backlog[0].event.kind, "workspace.offline");
//! ```

pub mod event;

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use tokio::sync::{broadcast, watch};

pub use event::ConsoleEvent;

use crate::events::{EventBus, Sink};

/// Events kept for resumes.
pub const RING: usize = 1024;
/// Events a subscriber may fall behind before it is dropped.
pub const SUBSCRIBER_LAG: usize = 1024;

/// An event with its number in this node's feed (1, 2, …).
#[derive(Debug, Clone, PartialEq)]
pub struct Numbered {
    pub id: u64,
    pub event: ConsoleEvent,
}

struct Ring {
    next_id: u64,
    kept: VecDeque<Arc<Numbered>>,
}

/// Cheap to clone; clones share one feed.
#[derive(Clone)]
pub struct Feed {
    ring: Arc<Mutex<Ring>>,
    live: broadcast::Sender<Arc<Numbered>>,
    /// True once the node shuts down: open streams end instead of holding
    /// the server's graceful shutdown for its whole drain timeout.
    closing: watch::Sender<bool>,
}

impl Default for Feed {
    fn default() -> Self {
        let (live, _) = broadcast::channel(SUBSCRIBER_LAG);
        Self {
            ring: Arc::new(Mutex::new(Ring {
                next_id: 1,
                kept: VecDeque::with_capacity(RING),
            })),
            live,
            closing: watch::channel(false).0,
        }
    }
}

/// A subscriber's start: what it missed, the live events after it, and
/// whether some it asked for are gone (older than the ring, or numbered by
/// an earlier run of this node: it should reload what it shows).
pub struct Subscription {
    pub backlog: Vec<Arc<Numbered>>,
    pub live: broadcast::Receiver<Arc<Numbered>>,
    pub gap: bool,
    pub closing: watch::Receiver<bool>,
}

impl Feed {
    /// Number `event`, keep it, and hand it to every subscriber. Never blocks
    /// for longer than the ring's lock (held for a push).
    pub fn publish(&self, event: ConsoleEvent) {
        let mut ring = self.ring.lock().unwrap_or_else(|p| p.into_inner());
        let numbered = Arc::new(Numbered {
            id: ring.next_id,
            event,
        });
        ring.next_id += 1;
        if ring.kept.len() == RING {
            ring.kept.pop_front();
        }
        ring.kept.push_back(numbered.clone());
        // Sent under the lock so numbers reach subscribers in order.
        let _ = self.live.send(numbered);
    }

    /// Subscribe: the kept events after `last_seen` (none when `None`), then
    /// the live ones, from the first one after the backlog.
    pub fn subscribe(&self, last_seen: Option<u64>) -> Subscription {
        let ring = self.ring.lock().unwrap_or_else(|p| p.into_inner());
        // Subscribed under the lock: nothing is published between the
        // backlog and the first live event.
        let live = self.live.subscribe();
        let oldest = ring.kept.front().map_or(ring.next_id, |n| n.id);
        // A number this run never gave out was given by an earlier run.
        let (after, gap) = match last_seen {
            Some(last) if last >= ring.next_id => (Some(0), true),
            Some(last) => (Some(last), last.saturating_add(1) < oldest),
            None => (None, false),
        };
        let backlog = match after {
            Some(last) => ring.kept.iter().filter(|n| n.id > last).cloned().collect(),
            None => Vec::new(),
        };
        Subscription {
            backlog,
            live,
            gap,
            closing: self.closing.subscribe(),
        }
    }

    /// The node is stopping: every open stream ends.
    pub fn close(&self) {
        self.closing.send_replace(true);
    }

    /// Publish every event of `bus`, converted, from now on (a sink that
    /// never refuses: publishing is a lock and a push).
    pub fn follow<E>(&self, bus: &EventBus<E>)
    where
        E: Clone + Send + 'static,
        for<'a> ConsoleEvent: From<&'a E>,
    {
        let feed = self.clone();
        bus.subscribe(Sink::func(move |e: &E| feed.publish(ConsoleEvent::from(e))));
    }

    /// The number the next event will get.
    pub fn next_id(&self) -> u64 {
        self.ring.lock().unwrap_or_else(|p| p.into_inner()).next_id
    }

    pub fn subscribers(&self) -> usize {
        self.live.receiver_count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(n: u32) -> ConsoleEvent {
        ConsoleEvent::workspace(&format!("w{n}"), true, chrono::Utc::now())
    }

    #[tokio::test]
    async fn a_resume_gets_what_it_missed_then_the_live_events_in_order() {
        let feed = Feed::default();
        for n in 0..5 {
            feed.publish(ev(n));
        }
        let mut sub = feed.subscribe(Some(3));
        assert!(!sub.gap);
        assert_eq!(sub.backlog.iter().map(|n| n.id).collect::<Vec<_>>(), [4, 5]);
        feed.publish(ev(5));
        assert_eq!(sub.live.recv().await.unwrap().id, 6);
        let fresh = feed.subscribe(None);
        assert!(fresh.backlog.is_empty(), "a new subscriber starts from now");
        // A number from an earlier run of the node: all that is kept, and a gap.
        let stale = feed.subscribe(Some(99));
        assert!(stale.gap);
        assert_eq!(stale.backlog.len(), 6);
    }

    #[tokio::test]
    async fn the_ring_keeps_the_latest_and_a_laggard_is_told() {
        let feed = Feed::default();
        let mut slow = feed.subscribe(None);
        for n in 0..(RING as u32 + 10) {
            feed.publish(ev(n));
        }
        let resumed = feed.subscribe(Some(0));
        assert!(resumed.gap, "events 1 to 10 are gone");
        assert_eq!(resumed.backlog.len(), RING);
        assert_eq!(resumed.backlog[0].id, 11);
        assert!(matches!(
            slow.live.recv().await,
            Err(broadcast::error::RecvError::Lagged(_))
        ));
    }
}
