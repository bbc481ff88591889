//! The items this node started delivering lately, so a `Send` caller whose
//! `Await` reaches the drain after its item already went out and came back
//! (a fast agent, or a wake that beat the `Await` to the mailbox) is
//! answered from the item's row instead of hearing a false `Queued`.
//!
//! Bounded: the oldest ids are forgotten first. An `Await` follows its
//! enqueue by one mailbox hop, so only the last few thousand starts matter.

use std::collections::{HashSet, VecDeque};

/// Ids remembered at most.
pub const RECENT_MAX: usize = 8192;

#[derive(Debug, Default)]
pub struct RecentStarts {
    order: VecDeque<i64>,
    ids: HashSet<i64>,
}

impl RecentStarts {
    /// `id` went out for delivery from this node.
    pub fn started(&mut self, id: i64) {
        if !self.ids.insert(id) {
            return;
        }
        self.order.push_back(id);
        while self.order.len() > RECENT_MAX {
            if let Some(old) = self.order.pop_front() {
                self.ids.remove(&old);
            }
        }
    }

    pub fn contains(&self, id: i64) -> bool {
        self.ids.contains(&id)
    }

    pub fn len(&self) -> usize {
        self.ids.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remembers_the_latest_and_forgets_the_oldest_first() {
        let mut recent = RecentStarts::default();
        for id in 0..(RECENT_MAX as i64 + 10) {
            recent.started(id);
        }
        recent.started(20); // again: not counted twice
        assert_eq!(recent.len(), RECENT_MAX);
        assert!(!recent.contains(9));
        assert!(recent.contains(10));
        assert!(recent.contains(RECENT_MAX as i64 + 9));
    }
}
