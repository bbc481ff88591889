//! The queue depth an enqueue reports (`queue_depth` of a 202), estimated so
//! that an enqueue's cost does not grow with the queue: a workspace's active
//! items are counted again, after the answers went out, when its count is
//! older than [`DEPTH_FRESH`]; between counts the estimate adds what this
//! node enqueued. It is exact at each count, low by at most other nodes'
//! enqueues since, high by at most what was delivered since; a workspace
//! this node never counted reports what the write added.

use std::collections::HashMap;
use std::time::{Duration, Instant};

/// How long a count stands before the next enqueue counts again.
pub const DEPTH_FRESH: Duration = Duration::from_secs(1);
/// Workspaces remembered at most (then the book starts afresh: a recount
/// costs one read, a forgotten entry nothing else).
pub const DEPTH_BOOK_MAX: usize = 10_000;

#[derive(Debug, Clone, Copy)]
struct Count {
    at: Instant,
    depth: u64,
}

/// This node's depth estimates, one per workspace.
#[derive(Debug, Default)]
pub struct DepthBook {
    counts: HashMap<String, Count>,
}

impl DepthBook {
    /// The estimate after a write added `added` items to `workspace`, and
    /// whether its count is missing or older than [`DEPTH_FRESH`] and should
    /// be taken again (then [`DepthBook::counted`]). Without any count the
    /// estimate is what this write added.
    pub fn after_write(&mut self, workspace: &str, added: u64, now: Instant) -> (u64, bool) {
        match self.counts.get_mut(workspace) {
            None => (added, true),
            Some(count) => {
                count.depth = count.depth.saturating_add(added);
                let stale = now.saturating_duration_since(count.at) >= DEPTH_FRESH;
                (count.depth, stale)
            }
        }
    }

    /// A fresh count of `workspace`'s active items, taken at `now`.
    pub fn counted(&mut self, workspace: &str, depth: u64, now: Instant) {
        if self.counts.len() >= DEPTH_BOOK_MAX && !self.counts.contains_key(workspace) {
            self.counts.clear();
        }
        self.counts
            .insert(workspace.to_string(), Count { at: now, depth });
    }

    pub fn len(&self) -> usize {
        self.counts.len()
    }

    pub fn is_empty(&self) -> bool {
        self.counts.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_workspace_never_counted_must_be_counted() {
        let mut book = DepthBook::default();
        assert_eq!(book.after_write("w", 3, Instant::now()), (3, true));
    }

    #[test]
    fn within_the_window_the_estimate_adds_this_nodes_writes() {
        let mut book = DepthBook::default();
        let t0 = Instant::now();
        book.counted("w", 10, t0);
        assert_eq!(
            book.after_write("w", 3, t0 + Duration::from_millis(10)),
            (13, false)
        );
        assert_eq!(
            book.after_write("w", 0, t0 + Duration::from_millis(20)),
            (13, false)
        );
        assert_eq!(
            book.after_write("v", 1, t0),
            (1, true),
            "each workspace apart"
        );
    }

    #[test]
    fn a_count_as_old_as_the_window_is_taken_again() {
        let mut book = DepthBook::default();
        let t0 = Instant::now();
        book.counted("w", 10, t0);
        assert_eq!(book.after_write("w", 1, t0 + DEPTH_FRESH), (11, true));
        book.counted("w", 2, t0 + DEPTH_FRESH);
        assert_eq!(book.after_write("w", 1, t0 + DEPTH_FRESH), (3, false));
    }

    #[test]
    fn the_estimate_saturates_and_the_book_stays_bounded() {
        let mut book = DepthBook::default();
        let t0 = Instant::now();
        book.counted("w", u64::MAX - 1, t0);
        assert_eq!(book.after_write("w", 5, t0), (u64::MAX, false));
        for n in 0..DEPTH_BOOK_MAX + 5 {
            book.counted(&format!("w{n}"), 1, t0);
        }
        assert!(book.len() <= DEPTH_BOOK_MAX);
        assert!(!book.is_empty());
    }
}
