//! Conformance of the schedules store: the same assertions on SQLite and
//! PostgreSQL — validation with the field to blame, the compare-and-set slot
//! claim, run outcomes (stale after three empty answers), reconciliation queries.

mod support;

use std::time::Duration;

use chrono::Duration as Span;
use ringmaster::model::a2a::a2a_message;
use ringmaster::model::outcome::DispatchResult;
use ringmaster::model::queue::NewQueueItem;
use ringmaster::model::run::{ManualRun, RunOutcome, RunStatus, SlotClaim, STALE_AFTER};
use ringmaster::model::schedule::{NewSchedule, SchedulePatch};
use ringmaster::schedule::DstPolicy;
use ringmaster::store::{Recorded, ScheduleError, SlotFire, Store};
use support::at;

fn t0() -> chrono::DateTime<chrono::Utc> {
    at(2026, 6, 1, 8, 0, 30)
}

const MAX: u32 = 5;

/// A claim of `slot` (moving on to `next`) with no fire attached.
fn claim(
    id: i64,
    slot: chrono::DateTime<chrono::Utc>,
    next: chrono::DateTime<chrono::Utc>,
) -> SlotFire {
    SlotFire {
        claim: SlotClaim {
            schedule_id: id,
            workspace: "w".into(),
            slot,
            next,
            key: format!("cron:{id}:{}", slot.timestamp()),
            missed: None,
        },
        item: None,
    }
}

/// The same claim carrying its fire, as the scheduler sends it.
fn fire(
    id: i64,
    slot: chrono::DateTime<chrono::Utc>,
    next: chrono::DateTime<chrono::Utc>,
) -> SlotFire {
    let mut f = claim(id, slot, next);
    let key = f.claim.key.clone();
    f.item = Some(NewQueueItem::new("w", a2a_message(&key, "p")).key(&key));
    f
}

async fn create_validates_and_sets_the_first_fire(store: Store) {
    let s = store
        .create_schedule(
            &NewSchedule::new("w", "report", "30 2 * * *", "write the report")
                .timezone("America/New_York")
                .defer_window(Duration::from_secs(60)),
            at(2026, 3, 7, 12, 0, 0),
        )
        .await
        .unwrap();
    assert_eq!(
        s.next_run_at,
        Some(at(2026, 3, 8, 7, 0, 0)),
        "gap slot fires at 03:00 EDT"
    );
    assert_eq!((s.enabled, s.invalid, s.run_count), (true, false, 0));
    assert_eq!(s.dst, DstPolicy::Vixie);
    assert_eq!(s.defer_window, Duration::from_secs(60));
    assert_eq!(s.starting_deadline, Duration::from_secs(3600));
    assert_eq!(store.get_schedule(s.id).await.unwrap(), Some(s.clone()));

    let refused = |spec: &str, tz: &str| NewSchedule::new("w", "n", spec, "p").timezone(tz);
    let cases: Vec<(NewSchedule, &str, &str)> = vec![
        (
            refused("0 0 32 * *", "UTC"),
            "cron",
            "day-of-month: 32 is out of range 1-31",
        ),
        (
            refused("* * * * *", "Mars/Base"),
            "timezone",
            "timezone: unknown IANA zone \"Mars/Base\"",
        ),
        (
            refused("0 0 30 2 *", "UTC"),
            "cron",
            "spec \"0 0 30 2 *\" can never fire",
        ),
        (
            NewSchedule::new("w", " ", "@hourly", "p"),
            "name",
            "name: must not be empty",
        ),
        (
            NewSchedule::new("", "n", "@hourly", "p"),
            "workspace_id",
            "workspace_id: must not be empty",
        ),
        (
            NewSchedule::new("w", "n", "@hourly", "p").defer_window(Duration::ZERO),
            "defer_window_s",
            "defer_window_s: must be at least 1 second",
        ),
    ];
    for (new, field, message) in cases {
        let err = store.create_schedule(&new, t0()).await.unwrap_err();
        assert_eq!(
            (err.field(), err.to_string().as_str()),
            (Some(field), message),
        );
    }
    assert_eq!(
        store.list_schedules(None).await.unwrap().len(),
        1,
        "nothing refused was written"
    );
}

async fn update_recomputes_only_when_the_timetable_changes(store: Store) {
    let s = store
        .create_schedule(&NewSchedule::new("w", "n", "0 9 * * *", "p"), t0())
        .await
        .unwrap();
    assert_eq!(s.next_run_at, Some(at(2026, 6, 1, 9, 0, 0)));
    let later = t0() + Span::hours(2);
    let prompt_only = SchedulePatch {
        prompt: Some("new prompt".into()),
        ..Default::default()
    };
    let u = store
        .update_schedule(s.id, &prompt_only, later)
        .await
        .unwrap();
    assert_eq!(
        (u.prompt.as_str(), u.next_run_at),
        ("new prompt", s.next_run_at)
    );
    let spec = SchedulePatch {
        spec: Some("*/15 * * * *".into()),
        ..Default::default()
    };
    let u = store.update_schedule(s.id, &spec, later).await.unwrap();
    assert_eq!(u.next_run_at, Some(at(2026, 6, 1, 10, 15, 0)));
    let bad = SchedulePatch {
        timezone: Some("Nowhere/Land".into()),
        ..Default::default()
    };
    let err = store.update_schedule(s.id, &bad, later).await.unwrap_err();
    assert_eq!(err.field(), Some("timezone"));
    assert!(matches!(
        store
            .update_schedule(9999, &prompt_only, later)
            .await
            .unwrap_err(),
        ScheduleError::NotFound(9999)
    ));
    // Re-enabling recomputes from now: slots passed while disabled are not fired late.
    let off = SchedulePatch {
        enabled: Some(false),
        ..Default::default()
    };
    store.update_schedule(s.id, &off, later).await.unwrap();
    let on = SchedulePatch {
        enabled: Some(true),
        ..Default::default()
    };
    let u = store
        .update_schedule(s.id, &on, t0() + Span::hours(5))
        .await
        .unwrap();
    assert_eq!(u.next_run_at, Some(at(2026, 6, 1, 13, 15, 0)));
    assert!(store.delete_schedule(s.id).await.unwrap());
    assert!(!store.delete_schedule(s.id).await.unwrap());
    assert_eq!(store.get_schedule(s.id).await.unwrap(), None);
}

async fn due_reads_enabled_valid_schedules_oldest_first(store: Store) {
    let a = store
        .create_schedule(&NewSchedule::new("w", "a", "5 8 * * *", "p"), t0())
        .await
        .unwrap();
    let b = store
        .create_schedule(&NewSchedule::new("w", "b", "1 8 * * *", "p"), t0())
        .await
        .unwrap();
    let off = store
        .create_schedule(
            &NewSchedule::new("w", "off", "1 8 * * *", "p").enabled(false),
            t0(),
        )
        .await
        .unwrap();
    let _later = store
        .create_schedule(&NewSchedule::new("w", "later", "0 12 * * *", "p"), t0())
        .await
        .unwrap();
    assert_eq!(
        store.earliest_next_run().await.unwrap(),
        Some(at(2026, 6, 1, 8, 1, 0))
    );
    let now = at(2026, 6, 1, 8, 10, 0);
    let due: Vec<i64> = store
        .due_schedules(now, 10)
        .await
        .unwrap()
        .iter()
        .map(|s| s.id)
        .collect();
    assert_eq!(
        due,
        vec![b.id, a.id],
        "oldest slot first; disabled and future left out"
    );
    assert_eq!(store.due_schedules(now, 1).await.unwrap().len(), 1);
    assert!(!due.contains(&off.id));
    // An invalid row leaves the due set, and only while it still holds what failed.
    assert!(store.mark_schedule_invalid(&b, "boom", now).await.unwrap());
    assert!(!store.mark_schedule_invalid(&b, "boom", now).await.unwrap());
    let due: Vec<i64> = store
        .due_schedules(now, 10)
        .await
        .unwrap()
        .iter()
        .map(|s| s.id)
        .collect();
    assert_eq!(due, vec![a.id]);
    let b2 = store.get_schedule(b.id).await.unwrap().unwrap();
    assert_eq!(
        (b2.invalid, b2.invalid_error.as_deref()),
        (true, Some("boom"))
    );
    // Updating validates again and clears the mark.
    let fixed = store
        .update_schedule(b.id, &SchedulePatch::default(), now)
        .await
        .unwrap();
    assert!(!fixed.invalid && fixed.invalid_error.is_none());
}

async fn a_slot_is_claimed_once_and_leaves_its_run_record(store: Store) {
    let s = store
        .create_schedule(&NewSchedule::new("w", "n", "* * * * *", "p"), t0())
        .await
        .unwrap();
    let slot = s.next_run_at.unwrap();
    assert_eq!(slot, at(2026, 6, 1, 8, 1, 0));
    let next = slot + Span::minutes(1);
    let c = claim(s.id, slot, next);
    assert_eq!(
        store
            .claim_slots(std::slice::from_ref(&c), MAX, slot)
            .await
            .unwrap(),
        vec![s.id]
    );
    assert_eq!(
        store
            .claim_slots(std::slice::from_ref(&c), MAX, slot)
            .await
            .unwrap(),
        Vec::<i64>::new(),
        "the loser does nothing"
    );
    let after = store.get_schedule(s.id).await.unwrap().unwrap();
    assert_eq!(
        (after.next_run_at, after.last_run_at, after.run_count),
        (Some(next), Some(slot), 1)
    );
    let run = store.get_run_by_key(&c.claim.key).await.unwrap().unwrap();
    assert_eq!(
        (run.schedule_id, run.slot, run.status, run.manual),
        (s.id, slot, RunStatus::Dispatched, false)
    );
    assert_eq!(run.finished_at, None);

    // A slot past its deadline is recorded missed, and still advances.
    let mut late = claim(s.id, next, next + Span::minutes(1));
    late.claim.missed = Some("too late".into());
    late.claim.key = "cron:late".into();
    assert_eq!(
        store
            .claim_slots(&[late], MAX, next + Span::hours(2))
            .await
            .unwrap(),
        vec![s.id]
    );
    let run = store.get_run_by_key("cron:late").await.unwrap().unwrap();
    assert_eq!(
        (run.status, run.error.as_deref()),
        (RunStatus::Missed, Some("too late"))
    );
    assert!(run.finished_at.is_some());
    let after = store.get_schedule(s.id).await.unwrap().unwrap();
    assert_eq!(
        (after.last_status, after.run_count),
        (Some(RunStatus::Missed), 2)
    );
    let runs = store.list_runs(s.id, 10).await.unwrap();
    assert_eq!(
        runs.iter().map(|r| r.slot).collect::<Vec<_>>(),
        vec![next, slot],
        "newest first"
    );
}

/// The outbox: a won slot's run record and its queue item are written by
/// the claim itself; the loser writes neither.
async fn a_won_slot_enqueues_its_fire_in_the_same_write(store: Store) {
    let s = store
        .create_schedule(&NewSchedule::new("w", "n", "* * * * *", "p"), t0())
        .await
        .unwrap();
    let slot = s.next_run_at.unwrap();
    let f = fire(s.id, slot, slot + Span::minutes(1));
    assert_eq!(
        store
            .claim_slots(std::slice::from_ref(&f), MAX, slot)
            .await
            .unwrap(),
        vec![s.id]
    );
    assert_eq!(
        store
            .claim_slots(std::slice::from_ref(&f), MAX, slot)
            .await
            .unwrap(),
        Vec::<i64>::new()
    );
    let items = store.list_queue("w", None, 10).await.unwrap();
    assert_eq!(items.len(), 1, "one fire, whoever tried");
    assert_eq!(
        items[0].idempotency_key.as_deref(),
        Some(f.claim.key.as_str())
    );
    assert_eq!(items[0].max_attempts, MAX as i32);
    assert!(store
        .orphaned_runs(slot + Span::hours(1), 10)
        .await
        .unwrap()
        .is_empty());
    // A missed slot records its run and enqueues nothing.
    let mut late = fire(s.id, slot + Span::minutes(1), slot + Span::minutes(2));
    late.claim.missed = Some("too late".into());
    store
        .claim_slots(&[late], MAX, slot + Span::hours(2))
        .await
        .unwrap();
    assert_eq!(store.list_queue("w", None, 10).await.unwrap().len(), 1);
}

async fn outcomes_update_runs_and_three_empty_answers_make_stale(store: Store) {
    let s = store
        .create_schedule(&NewSchedule::new("w", "n", "* * * * *", "p"), t0())
        .await
        .unwrap();
    let mut slot = s.next_run_at.unwrap();
    let mut keys = Vec::new();
    for _ in 0..6 {
        let c = claim(s.id, slot, slot + Span::minutes(1));
        store
            .claim_slots(std::slice::from_ref(&c), MAX, slot)
            .await
            .unwrap();
        keys.push(c.claim.key);
        slot += Span::minutes(1);
    }
    let empty = || RunOutcome::Completed {
        summary: String::new(),
        empty: true,
    };
    let mut statuses = Vec::new();
    for (i, outcome) in [empty(), empty(), empty(), empty()].into_iter().enumerate() {
        let done = store
            .finish_runs(&[(keys[i].clone(), outcome)], slot)
            .await
            .unwrap();
        statuses.push((done[0].run.status, done[0].consecutive_empty_runs));
    }
    assert_eq!(
        statuses,
        vec![
            (RunStatus::Ok, 1),
            (RunStatus::Ok, 2),
            (RunStatus::Stale, STALE_AFTER),
            (RunStatus::Stale, 4)
        ]
    );
    let stale = store.get_schedule(s.id).await.unwrap().unwrap();
    assert_eq!(stale.last_status, Some(RunStatus::Stale));
    let done = store
        .finish_runs(
            &[
                (
                    keys[4].clone(),
                    RunOutcome::Completed {
                        summary: "real answer".into(),
                        empty: false,
                    },
                ),
                (
                    keys[5].clone(),
                    RunOutcome::Failed {
                        error: "HTTP 500".into(),
                    },
                ),
            ],
            slot,
        )
        .await
        .unwrap();
    assert_eq!(done[0].run.response_summary.as_deref(), Some("real answer"));
    assert_eq!(
        done[0].consecutive_empty_runs, 0,
        "a non-empty success resets the count"
    );
    assert_eq!(
        (done[1].run.status, done[1].run.error.as_deref()),
        (RunStatus::Error, Some("HTTP 500"))
    );
    let after = store.get_schedule(s.id).await.unwrap().unwrap();
    assert_eq!(
        (after.last_status, after.last_error.as_deref()),
        (Some(RunStatus::Error), Some("HTTP 500"))
    );
    // A second write of the same outcome is a no-op.
    let again = store
        .finish_runs(
            &[(keys[5].clone(), RunOutcome::Expired { reason: "x".into() })],
            slot,
        )
        .await
        .unwrap();
    assert!(again.is_empty());
}

async fn reconciliation_finds_settled_and_orphaned_runs(store: Store) {
    let s = store
        .create_schedule(&NewSchedule::new("w", "n", "* * * * *", "p"), t0())
        .await
        .unwrap();
    let slot = s.next_run_at.unwrap();
    let settled = claim(s.id, slot, slot + Span::minutes(1));
    let orphan = claim(s.id, slot + Span::minutes(1), slot + Span::minutes(2));
    store
        .claim_slots(std::slice::from_ref(&settled), MAX, slot)
        .await
        .unwrap();
    store
        .claim_slots(std::slice::from_ref(&orphan), MAX, slot)
        .await
        .unwrap();
    let manual_item = NewQueueItem::new("w", a2a_message("cron:m", "p")).key("cron:m");
    let manual = store
        .fire_manual(
            &ManualRun {
                schedule_id: s.id,
                workspace: "w".into(),
                slot,
                key: "cron:m".into(),
            },
            &manual_item,
            MAX,
            slot,
        )
        .await
        .unwrap();
    assert!(manual.manual);
    // The settled run's item goes through the queue and completes.
    let item = NewQueueItem::new("w", a2a_message(&settled.claim.key, "p")).key(&settled.claim.key);
    store.enqueue(&item, 5, slot).await.unwrap();
    assert!(
        store.settled_pending_runs(10).await.unwrap().is_empty(),
        "active items are not settled"
    );
    let claimed = store
        .claim(ringmaster::store::Claim {
            workspace: "w",
            limit: 10,
            now: slot,
            lease_until: slot + Span::minutes(5),
            node: "n",
        })
        .await
        .unwrap();
    let first = claimed
        .iter()
        .find(|i| i.idempotency_key.as_deref() == Some(settled.claim.key.as_str()))
        .unwrap();
    let recorded = support::record(
        &store,
        first.id,
        first.lease_token.as_deref().unwrap(),
        &DispatchResult::Delivered {
            response: "{\"result\":{\"parts\":[{\"text\":\"hi\"}]}}".into(),
        },
        slot,
    )
    .await
    .unwrap();
    assert!(matches!(recorded, Recorded::Applied(_)));
    let found = store.settled_pending_runs(10).await.unwrap();
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].0.key, settled.claim.key);
    assert_eq!(
        RunOutcome::from_item(&found[0].1),
        Some(RunOutcome::Completed {
            summary: "hi".into(),
            empty: false
        })
    );
    // The orphan has no queue item; it shows only once its grace has passed.
    assert!(store.orphaned_runs(slot, 10).await.unwrap().is_empty());
    let orphans = store
        .orphaned_runs(slot + Span::seconds(1), 10)
        .await
        .unwrap();
    assert_eq!(
        orphans.iter().map(|r| r.key.as_str()).collect::<Vec<_>>(),
        vec![orphan.claim.key.as_str()]
    );
}

async fn repair_fills_only_missing_next_runs(store: Store) {
    let s = store
        .create_schedule(&NewSchedule::new("w", "n", "@hourly", "p"), t0())
        .await
        .unwrap();
    assert!(store.schedules_missing_next().await.unwrap().is_empty());
    assert!(
        !store.repair_next_run(s.id, t0(), t0()).await.unwrap(),
        "a set next_run_at is left alone"
    );
    // Deleting cascades to the runs.
    store
        .claim_slots(
            &[claim(s.id, s.next_run_at.unwrap(), t0() + Span::hours(2))],
            MAX,
            t0(),
        )
        .await
        .unwrap();
    assert!(store.delete_schedule(s.id).await.unwrap());
    assert!(store.list_runs(s.id, 10).await.unwrap().is_empty());
}

backend_tests!(
    create_validates_and_sets_the_first_fire,
    update_recomputes_only_when_the_timetable_changes,
    due_reads_enabled_valid_schedules_oldest_first,
    a_slot_is_claimed_once_and_leaves_its_run_record,
    a_won_slot_enqueues_its_fire_in_the_same_write,
    outcomes_update_runs_and_three_empty_answers_make_stale,
    reconciliation_finds_settled_and_orphaned_runs,
    repair_fills_only_missing_next_runs,
);
