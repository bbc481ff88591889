//! The reply ports of the `Send` callers the drain keeps waiting, each with
//! the moment it is overdue. One check a second finds the overdue ones
//! (only while someone waits) instead of a timer task per caller: at
//! 1,000 sends a second a timer each held some 300,000 sleeping tasks.

use std::collections::HashMap;

use tokio::time::Instant;

/// How often the overdue callers are looked for while any wait.
pub const OVERDUE_CHECK: std::time::Duration = std::time::Duration::from_secs(1);

#[derive(Debug)]
pub struct ReplyPorts<P> {
    waiting: HashMap<i64, (P, Instant)>,
}

impl<P> Default for ReplyPorts<P> {
    fn default() -> Self {
        Self {
            waiting: HashMap::new(),
        }
    }
}

impl<P> ReplyPorts<P> {
    /// The caller of `id` waits until `overdue_at` at the latest.
    pub fn insert(&mut self, id: i64, port: P, overdue_at: Instant) {
        self.waiting.insert(id, (port, overdue_at));
    }

    /// The port to answer `id`'s caller through, if it still waits.
    pub fn remove(&mut self, id: &i64) -> Option<P> {
        self.waiting.remove(id).map(|(port, _)| port)
    }

    /// The callers overdue at `now` (still held: they are answered through
    /// the core, which says with what).
    pub fn overdue(&self, now: Instant) -> Vec<i64> {
        self.waiting
            .iter()
            .filter(|(_, (_, at))| *at <= now)
            .map(|(id, _)| *id)
            .collect()
    }

    pub fn len(&self) -> usize {
        self.waiting.len()
    }

    pub fn is_empty(&self) -> bool {
        self.waiting.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn finds_only_the_callers_past_their_moment() {
        let t0 = Instant::now();
        let mut ports = ReplyPorts::default();
        ports.insert(1, "a", t0 + Duration::from_secs(1));
        ports.insert(2, "b", t0 + Duration::from_secs(5));
        assert!(ports.overdue(t0).is_empty());
        assert_eq!(ports.overdue(t0 + Duration::from_secs(2)), vec![1]);
        assert_eq!(ports.remove(&1), Some("a"));
        assert_eq!(ports.remove(&1), None);
        assert_eq!(ports.len(), 1);
    }
}
