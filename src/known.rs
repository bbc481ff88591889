//! Which workspaces this node has lately seen registered, so a `Send`
//! does not read the registry on every request (at ingest rates that read
//! cost more than the enqueue's share of its group commit). Only positive
//! answers are kept, each for [`FRESH`]: a workspace removed on another
//! node may still be taken for registered here that long (its message then
//! waits in the queue like any for an unreachable agent); one removed on
//! this node is forgotten at once.

use std::collections::HashMap;
use std::sync::RwLock;
use std::time::{Duration, Instant};

/// How long a seen registration is trusted.
pub const FRESH: Duration = Duration::from_secs(1);
/// Entries kept at most (then the memory starts afresh).
pub const KNOWN_MAX: usize = 10_000;

#[derive(Debug, Default)]
pub struct KnownWorkspaces {
    seen: RwLock<HashMap<String, Instant>>,
}

impl KnownWorkspaces {
    /// Seen registered within [`FRESH`] of `now`.
    pub fn is_known(&self, id: &str, now: Instant) -> bool {
        let seen = self.seen.read().unwrap_or_else(|p| p.into_inner());
        seen.get(id)
            .is_some_and(|at| now.saturating_duration_since(*at) < FRESH)
    }

    /// `id` was just read registered.
    pub fn remember(&self, id: &str, now: Instant) {
        let mut seen = self.seen.write().unwrap_or_else(|p| p.into_inner());
        if seen.len() >= KNOWN_MAX && !seen.contains_key(id) {
            seen.clear();
        }
        seen.insert(id.to_string(), now);
    }

    /// `id` was removed here.
    pub fn forget(&self, id: &str) {
        self.seen
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .remove(id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_registration_is_trusted_for_a_second_and_a_removal_at_once() {
        let known = KnownWorkspaces::default();
        let t0 = Instant::now();
        assert!(!known.is_known("w", t0));
        known.remember("w", t0);
        assert!(known.is_known("w", t0 + Duration::from_millis(999)));
        assert!(!known.is_known("w", t0 + FRESH));
        known.remember("w", t0);
        known.forget("w");
        assert!(!known.is_known("w", t0));
    }

    #[test]
    fn the_memory_is_bounded() {
        let known = KnownWorkspaces::default();
        let t0 = Instant::now();
        for n in 0..=KNOWN_MAX {
            known.remember(&format!("w{n}"), t0);
        }
        assert!(known.seen.read().unwrap().len() <= KNOWN_MAX);
        assert!(known.is_known(&format!("w{KNOWN_MAX}"), t0));
    }
}
