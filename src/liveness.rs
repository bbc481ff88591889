//! The liveness board: when each actor last ticked, how often the root
//! restarted it, and whether it is healthy — it ticked within twice its
//! interval. The check that would have caught the scheduler this replaces, which sat
//! dead for twelve hours. Plain data; the HeartbeatActor holds one.

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::messages::heartbeat::{ActorHealth, HealthReport};
use crate::model::time;

struct Tick {
    at: DateTime<Utc>,
    every: Duration,
}

#[derive(Default)]
pub struct Board {
    ticks: BTreeMap<String, Tick>,
    restarts: BTreeMap<String, u32>,
}

impl Board {
    /// `actor` ticked at `at`, meaning to tick again within `every`. A report
    /// older than the one held (a late message) never moves it backwards.
    pub fn alive(&mut self, actor: String, at: DateTime<Utc>, every: Duration) {
        match self.ticks.get_mut(&actor) {
            Some(tick) if tick.at >= at => tick.every = every,
            _ => {
                self.ticks.insert(actor, Tick { at, every });
            }
        }
    }

    pub fn restarts(&mut self, counts: BTreeMap<String, u32>) {
        self.restarts = counts;
    }

    /// Per actor as of `now`: healthy if it ticked within twice its interval.
    /// Healthy overall when every known actor is.
    pub fn health(&self, now: DateTime<Utc>) -> HealthReport {
        let mut roles: Vec<&String> = self.restarts.keys().chain(self.ticks.keys()).collect();
        roles.sort();
        roles.dedup();
        let actors: Vec<ActorHealth> = roles
            .into_iter()
            .map(|role| {
                let tick = self.ticks.get(role);
                let healthy =
                    tick.is_some_and(|t| time::elapsed(t.at, now) <= t.every.saturating_mul(2));
                ActorHealth {
                    actor: role.clone(),
                    last_tick: tick.map(|t| t.at),
                    interval_ms: tick
                        .map(|t| u64::try_from(t.every.as_millis()).unwrap_or(u64::MAX)),
                    restarts: self.restarts.get(role).copied().unwrap_or(0),
                    healthy,
                }
            })
            .collect();
        HealthReport {
            healthy: !actors.is_empty() && actors.iter().all(|a| a.healthy),
            at: now,
            actors,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeDelta;

    fn t(secs: i64) -> DateTime<Utc> {
        DateTime::<Utc>::UNIX_EPOCH + TimeDelta::seconds(secs)
    }

    #[test]
    fn an_actor_is_healthy_within_twice_its_interval() {
        let mut board = Board::default();
        board.alive("scheduler".into(), t(100), Duration::from_secs(1));
        assert!(board.health(t(102)).healthy);
        let late = board.health(t(103));
        assert!(!late.healthy);
        assert_eq!(late.actors[0].last_tick, Some(t(100)));
    }

    #[test]
    fn a_late_report_never_moves_a_tick_backwards() {
        let mut board = Board::default();
        board.alive("q".into(), t(100), Duration::from_secs(5));
        board.alive("q".into(), t(50), Duration::from_secs(5));
        assert_eq!(board.health(t(100)).actors[0].last_tick, Some(t(100)));
    }

    #[test]
    fn a_restarted_actor_that_never_ticked_is_unhealthy_and_counted() {
        let mut board = Board::default();
        board.restarts(BTreeMap::from([("sweeper".to_string(), 2)]));
        let report = board.health(t(0));
        assert!(!report.healthy);
        assert_eq!(report.actors[0].restarts, 2);
        assert!(
            !Board::default().health(t(0)).healthy,
            "nothing known: not healthy"
        );
    }

    #[test]
    fn a_huge_interval_does_not_overflow() {
        let mut board = Board::default();
        board.alive("x".into(), t(0), Duration::MAX);
        assert!(board.health(t(1_000_000)).healthy);
    }
}
