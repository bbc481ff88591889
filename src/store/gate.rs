//! Fail fast while the database is known to be down.
//!
//! Without this, every operation during an outage waits the pool's whole
//! acquire timeout before it fails; an actor handles its messages one at a
//! time, so a request queued behind two ticks waits three timeouts, and
//! timer ticks pile up in the mailbox faster than they fail. With it, the
//! first operation that finds the server gone closes the gate; until a probe
//! gets through, the others fail at once with an "unavailable" error (a 503
//! with `Retry-After` at the edge). One operation at a time is let through as
//! the probe, every [`PROBE_EVERY`]; its success opens the gate for all.
//!
//! Only connection-level failures close the gate: a statement the database
//! refused, or SQLite's busy lock, says nothing about whether it is there.

use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::error::connection_lost;
use super::StoreError;

/// How long after a failure the next probe is let through.
pub const PROBE_EVERY: Duration = Duration::from_millis(250);

/// How long a probe may take before another one is let through (a probe that
/// hangs must not keep the gate shut for good).
pub const PROBE_PATIENCE: Duration = Duration::from_secs(2);

/// The error text of an operation refused while the gate is shut.
pub const REFUSED: &str = "the last attempt failed; the next one is a moment away";

#[derive(Debug, Default)]
pub struct Gate {
    /// Fast path: true while the database is believed down.
    shut: AtomicBool,
    next_probe: Mutex<Option<Instant>>,
    /// When the gate last opened again after being shut.
    reopened: Mutex<Option<Instant>>,
}

/// Whether an operation may go to the database.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// The gate is open.
    Go,
    /// The gate is shut but this operation is the probe.
    Probe,
    /// The gate is shut: fail without trying.
    Refused,
}

impl Gate {
    pub fn admit(&self, now: Instant) -> Admission {
        if !self.shut.load(Ordering::Acquire) {
            return Admission::Go;
        }
        let mut next = self.next_probe.lock().unwrap_or_else(|p| p.into_inner());
        match *next {
            Some(at) if now < at => Admission::Refused,
            _ => {
                *next = Some(now + PROBE_PATIENCE);
                Admission::Probe
            }
        }
    }

    /// Record how an admitted operation ended: `lost` when the connection
    /// failed (not when a statement was refused).
    pub fn record(&self, now: Instant, lost: bool) {
        if lost {
            let mut next = self.next_probe.lock().unwrap_or_else(|p| p.into_inner());
            *next = Some(now + PROBE_EVERY);
            self.shut.store(true, Ordering::Release);
        } else if self.shut.load(Ordering::Acquire) {
            let mut next = self.next_probe.lock().unwrap_or_else(|p| p.into_inner());
            *next = None;
            self.shut.store(false, Ordering::Release);
            *self.reopened.lock().unwrap_or_else(|p| p.into_inner()) = Some(now);
        }
    }

    /// Whether the database was down, or came back less than `window`
    /// before `now`.
    pub fn unsettled(&self, now: Instant, window: std::time::Duration) -> bool {
        self.is_shut()
            || self
                .reopened
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .is_some_and(|at| now.saturating_duration_since(at) < window)
    }

    pub fn is_shut(&self) -> bool {
        self.shut.load(Ordering::Acquire)
    }

    /// Run `operation` through the gate: refused at once while shut (unless
    /// it is the probe), and its ending recorded.
    pub async fn pass<T, E: GatedError>(
        &self,
        operation: impl Future<Output = Result<T, E>>,
    ) -> Result<T, E> {
        if self.admit(Instant::now()) == Admission::Refused {
            return Err(E::refused());
        }
        let result = operation.await;
        self.record(
            Instant::now(),
            matches!(&result, Err(err) if err.connection_lost()),
        );
        result
    }
}

/// The error types of operations that pass the gate.
pub trait GatedError {
    /// Whether this error says the connection failed.
    fn connection_lost(&self) -> bool;
    /// The error of an operation refused while the gate is shut.
    fn refused() -> Self;
}

impl GatedError for sqlx::Error {
    fn connection_lost(&self) -> bool {
        connection_lost(self)
    }
    fn refused() -> Self {
        sqlx::Error::Io(std::io::Error::new(
            std::io::ErrorKind::NotConnected,
            REFUSED,
        ))
    }
}

impl GatedError for StoreError {
    fn connection_lost(&self) -> bool {
        self.is_connection_lost()
    }
    fn refused() -> Self {
        StoreError::Unavailable {
            reason: REFUSED.to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_gate_is_unsettled_while_shut_and_for_a_while_after() {
        let gate = Gate::default();
        let t0 = Instant::now();
        let window = Duration::from_secs(3);
        assert!(!gate.unsettled(t0, window), "never shut");
        gate.record(t0, true);
        assert!(gate.unsettled(t0, window));
        let back = t0 + Duration::from_secs(5);
        gate.record(back, false);
        assert!(gate.unsettled(back + Duration::from_secs(2), window));
        assert!(!gate.unsettled(back + window, window));
    }

    #[test]
    fn an_open_gate_admits_everything() {
        let gate = Gate::default();
        let now = Instant::now();
        assert_eq!(gate.admit(now), Admission::Go);
        gate.record(now, false);
        assert_eq!(gate.admit(now), Admission::Go);
    }

    #[test]
    fn a_lost_connection_refuses_the_rest_until_one_probe() {
        let gate = Gate::default();
        let t0 = Instant::now();
        gate.record(t0, true);
        assert_eq!(gate.admit(t0), Admission::Refused);
        assert_eq!(gate.admit(t0 + PROBE_EVERY / 2), Admission::Refused);
        // One probe, and while it runs the others still fail fast.
        assert_eq!(gate.admit(t0 + PROBE_EVERY), Admission::Probe);
        assert_eq!(gate.admit(t0 + PROBE_EVERY), Admission::Refused);
        // It failed: the next probe waits another interval.
        let t1 = t0 + PROBE_EVERY + Duration::from_millis(10);
        gate.record(t1, true);
        assert_eq!(gate.admit(t1 + PROBE_EVERY / 2), Admission::Refused);
        assert_eq!(gate.admit(t1 + PROBE_EVERY), Admission::Probe);
        // It got through: open for all.
        gate.record(t1 + PROBE_EVERY, false);
        assert!(!gate.is_shut());
        assert_eq!(gate.admit(t1 + PROBE_EVERY), Admission::Go);
    }

    #[test]
    fn a_probe_that_never_ends_does_not_keep_the_gate_shut() {
        let gate = Gate::default();
        let t0 = Instant::now();
        gate.record(t0, true);
        assert_eq!(gate.admit(t0 + PROBE_EVERY), Admission::Probe);
        let later = t0 + PROBE_EVERY + PROBE_PATIENCE;
        assert_eq!(gate.admit(later), Admission::Probe);
    }

    #[test]
    fn any_success_opens_it() {
        let gate = Gate::default();
        let t0 = Instant::now();
        gate.record(t0, true);
        // An operation admitted before the gate shut ends well.
        gate.record(t0, false);
        assert_eq!(gate.admit(t0), Admission::Go);
    }
}
