//! The planner's decisions, without a database or a clock.

use chrono::{DateTime, TimeDelta, Utc};

use super::*;
use crate::model::run::RunStatus;
use crate::model::schedule::{DEFAULT_DEFER_WINDOW, DEFAULT_STARTING_DEADLINE};

fn at(text: &str) -> DateTime<Utc> {
    text.parse().unwrap()
}

fn schedule(id: i64, spec: &str, next: &str) -> Schedule {
    Schedule {
        id,
        workspace: "w".into(),
        name: format!("s{id}"),
        spec: spec.into(),
        timezone: "UTC".into(),
        dst: DstPolicy::Vixie,
        prompt: "go".into(),
        enabled: true,
        next_run_at: Some(at(next)),
        last_run_at: None,
        run_count: 0,
        last_status: None,
        last_error: None,
        consecutive_empty_runs: 0,
        starting_deadline: DEFAULT_STARTING_DEADLINE,
        defer_window: DEFAULT_DEFER_WINDOW,
        invalid: false,
        invalid_error: None,
        created_at: at(next),
        updated_at: at(next),
    }
}

#[test]
fn a_due_slot_becomes_a_claim_with_its_keyed_fire_and_the_next_slot() {
    let mut p = Planner::default();
    let plan = p.plan(
        vec![schedule(1, "*/15 * * * *", "2026-06-01T08:15:00Z")],
        at("2026-06-01T08:15:00.200Z"),
    );
    let fire = &plan.fires[0];
    assert_eq!(fire.claim.next, at("2026-06-01T08:30:00Z"));
    assert_eq!(fire.claim.key, "cron:1:2026-06-01T08:15:00Z");
    assert_eq!(fire.claim.missed, None);
    let item = fire.item.as_ref().unwrap();
    assert_eq!(
        item.idempotency_key.as_deref(),
        Some("cron:1:2026-06-01T08:15:00Z")
    );
    assert_eq!(item.ttl, Some(DEFAULT_DEFER_WINDOW));
    assert_eq!(item.caller.as_deref(), Some("schedule:1"));
    assert!(item
        .body
        .contains("\"messageId\":\"cron:1:2026-06-01T08:15:00Z\""));
}

#[test]
fn slots_missed_while_down_coalesce_into_one_fire_after_now() {
    let mut p = Planner::default();
    // Down for 50 minutes: 08:15, 08:30, 08:45, 09:00 passed; one fire, next 09:15.
    let plan = p.plan(
        vec![schedule(1, "*/15 * * * *", "2026-06-01T08:15:00Z")],
        at("2026-06-01T09:05:00Z"),
    );
    assert_eq!(plan.fires.len(), 1);
    assert_eq!(plan.fires[0].claim.next, at("2026-06-01T09:15:00Z"));
    assert!(
        plan.fires[0].item.is_some(),
        "50 min late is inside the 1 h deadline"
    );
}

#[test]
fn a_slot_older_than_its_starting_deadline_is_missed_not_fired() {
    let mut p = Planner::default();
    let plan = p.plan(
        vec![schedule(1, "0 * * * *", "2026-06-01T05:00:00Z")],
        at("2026-06-01T08:00:00.500Z"),
    );
    let fire = &plan.fires[0];
    assert!(fire.item.is_none());
    let reason = fire.claim.missed.as_deref().unwrap();
    assert!(reason.contains("10800 s late"), "{reason}");
    assert_eq!(fire.claim.next, at("2026-06-01T09:00:00Z"));
}

#[test]
fn a_row_that_does_not_parse_is_invalid_and_the_others_go_on() {
    let mut p = Planner::default();
    let mut bad = schedule(2, "61 * * * *", "2026-06-01T08:00:00Z");
    bad.timezone = "UTC".into();
    let mut zone = schedule(3, "* * * * *", "2026-06-01T08:00:00Z");
    zone.timezone = "Nowhere/Else".into();
    let plan = p.plan(
        vec![schedule(1, "* * * * *", "2026-06-01T08:00:00Z"), bad, zone],
        at("2026-06-01T08:00:00Z"),
    );
    assert_eq!(plan.fires.len(), 1);
    assert_eq!(
        plan.invalid.iter().map(|(s, _)| s.id).collect::<Vec<_>>(),
        vec![2, 3]
    );
}

#[test]
fn a_huge_stored_window_or_deadline_is_bounded_not_a_panic() {
    let mut p = Planner::default();
    let mut s = schedule(1, "* * * * *", "2026-06-01T08:00:00Z");
    s.defer_window = Duration::from_secs(10_000_000_000_000);
    s.starting_deadline = Duration::from_secs(u64::MAX);
    let plan = p.plan(vec![s.clone()], at("2026-06-01T08:00:00Z"));
    let ttl = plan.fires[0].item.as_ref().unwrap().ttl.unwrap();
    assert_eq!(
        ttl,
        Duration::from_secs(crate::model::limits::DEFER_WINDOW_MAX_S)
    );
    let run = ScheduleRun {
        id: 1,
        schedule_id: 1,
        workspace: "w".into(),
        slot: at("2026-06-01T08:00:00Z"),
        manual: false,
        key: "cron:1:x".into(),
        status: RunStatus::Dispatched,
        started_at: DateTime::<Utc>::MAX_UTC - TimeDelta::seconds(1),
        finished_at: None,
        error: None,
        response_summary: None,
    };
    assert!(matches!(
        orphan(&run, &s, at("2026-06-01T08:00:00Z")),
        Orphan::Requeue(_)
    ));
}

#[test]
fn an_orphan_is_requeued_for_the_rest_of_its_window_then_skipped() {
    let s = schedule(1, "* * * * *", "2026-06-01T08:00:00Z");
    let mut run = ScheduleRun {
        id: 1,
        schedule_id: 1,
        workspace: "w".into(),
        slot: at("2026-06-01T08:00:00Z"),
        manual: false,
        key: "cron:1:2026-06-01T08:00:00Z".into(),
        status: RunStatus::Dispatched,
        started_at: at("2026-06-01T08:00:00Z"),
        finished_at: None,
        error: None,
        response_summary: None,
    };
    let Orphan::Requeue(item) = orphan(&run, &s, at("2026-06-01T08:01:00Z")) else {
        panic!("inside the window");
    };
    assert_eq!(item.ttl, Some(Duration::from_secs(60)));
    assert_eq!(item.idempotency_key.as_deref(), Some(run.key.as_str()));
    run.started_at = at("2026-06-01T07:00:00Z");
    assert!(matches!(
        orphan(&run, &s, at("2026-06-01T08:01:00Z")),
        Orphan::Skip(_)
    ));
}

#[test]
fn reconciliation_runs_first_then_every_five_minutes_or_when_asked() {
    let t = at("2026-06-01T08:00:00Z");
    assert!(reconcile_due(None, None, t), "an incarnation's first tick");
    assert!(!reconcile_due(Some(t), None, t + TimeDelta::minutes(4)));
    assert!(reconcile_due(Some(t), None, t + TimeDelta::minutes(5)));
    assert!(
        reconcile_due(Some(t), None, t - TimeDelta::seconds(1)),
        "clock went back"
    );
    assert!(!reconcile_due(
        Some(t),
        Some(t + TimeDelta::seconds(31)),
        t + TimeDelta::seconds(30)
    ));
    assert!(reconcile_due(
        Some(t),
        Some(t + TimeDelta::seconds(31)),
        t + TimeDelta::seconds(31)
    ));
}

#[test]
fn the_wake_timer_targets_the_earliest_slot_within_one_tick() {
    let t = at("2026-06-01T08:00:00Z");
    let tick = Duration::from_secs(1);
    assert_eq!(
        wake_in(t + TimeDelta::milliseconds(400), t, tick),
        Some(Duration::from_millis(401))
    );
    assert_eq!(wake_in(t, t, tick), None, "already due: the tick has it");
    assert_eq!(
        wake_in(t + TimeDelta::seconds(5), t, tick),
        None,
        "the tick comes first"
    );
}

#[test]
fn specs_are_parsed_once_per_spec_zone_and_policy() {
    let mut p = Planner::default();
    let s = schedule(1, "30 2 * * *", "2026-03-08T00:00:00Z");
    let mut ny = s.clone();
    ny.timezone = "America/New_York".into();
    assert_eq!(
        p.repair(&ny, at("2026-03-07T12:00:00Z")).unwrap(),
        at("2026-03-08T07:00:00Z"),
        "the gap slot fires at 03:00 EDT"
    );
    p.repair(&s, at("2026-03-07T12:00:00Z")).unwrap();
    p.repair(&s, at("2026-03-07T12:00:00Z")).unwrap();
    assert_eq!(p.specs.len(), 2);
}
