//! Where "now" comes from.
//!
//! Actors never read the wall clock directly: they ask a [`Clock`]. The binary
//! uses [`SystemClock`]; tests use [`ManualClock`] and move time by hand, so no
//! test ever sleeps through schedule time.

use std::fmt::Debug;
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Duration, Utc};

/// A source of the current instant.
pub trait Clock: Send + Sync + Debug + 'static {
    fn now(&self) -> DateTime<Utc>;
}

/// Shared handle to a clock, cheap to clone into every actor.
pub type SharedClock = Arc<dyn Clock>;

/// The operating system's clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// A clock that only moves when told to. Clones share the same instant, so a
/// test keeps one handle and the actors hold the others.
#[derive(Debug, Clone)]
pub struct ManualClock {
    now: Arc<Mutex<DateTime<Utc>>>,
}

impl ManualClock {
    pub fn new(start: DateTime<Utc>) -> Self {
        Self {
            now: Arc::new(Mutex::new(start)),
        }
    }

    /// Jump to an absolute instant (backwards too: tests of clock skew need it).
    pub fn set(&self, to: DateTime<Utc>) {
        *self.lock() = to;
    }

    /// Move forward by `by` and answer the new instant.
    pub fn advance(&self, by: Duration) -> DateTime<Utc> {
        let mut now = self.lock();
        *now += by;
        *now
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, DateTime<Utc>> {
        // A panic while holding this lock cannot leave the instant half-written,
        // so a poisoned lock is still safe to read.
        self.now
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl Clock for ManualClock {
    fn now(&self) -> DateTime<Utc> {
        *self.lock()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn manual_clock_moves_only_when_told_and_clones_share_it() {
        let start = Utc.with_ymd_and_hms(2026, 3, 8, 6, 0, 0).unwrap();
        let clock = ManualClock::new(start);
        let held_by_actor = clock.clone();
        assert_eq!(held_by_actor.now(), start);
        clock.advance(Duration::minutes(90));
        assert_eq!(held_by_actor.now(), start + Duration::minutes(90));
        clock.set(start);
        assert_eq!(held_by_actor.now(), start);
    }
}
