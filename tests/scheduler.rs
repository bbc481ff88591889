//! The SchedulerActor, driven by messages on both backends, time given in
//! `Tick { now }` and a manual clock (no test sleeps through schedule time):
//! fires once, busy targets, stale, downtime, bad rows, panics, RunNow,
//! repair, and outcomes written after a lost event.

mod support;

use support::Ask;

use std::time::Duration;

use chrono::{DateTime, Duration as Span, Utc};
use ractor::ActorRef;
use ringmaster::dispatch::Behavior;
use ringmaster::messages::scheduler::{ScheduleEvent, SchedulerError, SchedulerMsg, Upsert};
use ringmaster::model::outcome::DispatchResult;
use ringmaster::model::queue::QueueStatus;
use ringmaster::model::run::{RunStatus, ScheduleRun, SlotClaim};
use ringmaster::model::schedule::{NewSchedule, Schedule, SchedulePatch};
use ringmaster::store::{Claim, SlotFire};
use support::{at, eventually, quiet_config, Harness, TestDb};
use tokio::sync::mpsc::UnboundedReceiver;

fn t0() -> DateTime<Utc> {
    at(2026, 6, 1, 8, 0, 30)
}

fn scheduler(h: &Harness) -> ActorRef<SchedulerMsg> {
    h.ringmaster.scheduler().unwrap()
}

/// Move the clock to `now`, then run the queue's tick there.
async fn queue_tick(h: &Harness, now: DateTime<Utc>) {
    h.clock.set(now);
    h.queue_tick(now).await;
}

async fn create(h: &Harness, new: NewSchedule) -> Schedule {
    scheduler(h)
        .ask(|reply| SchedulerMsg::Upsert {
            upsert: Upsert::Create(new),
            reply,
        })
        .await
        .unwrap()
}

/// Wait until the run with `key` is no longer `dispatched`.
async fn finished_run(h: &Harness, key: &str) -> ScheduleRun {
    eventually(10, &format!("run {key} finishes"), || async {
        let run = h.store().get_run_by_key(key).await.unwrap()?;
        (run.status != RunStatus::Dispatched).then_some(run)
    })
    .await
}

async fn schedule(h: &Harness, id: i64) -> Schedule {
    h.store().get_schedule(id).await.unwrap().unwrap()
}

async fn next_event(rx: &mut UnboundedReceiver<ScheduleEvent>) -> ScheduleEvent {
    tokio::time::timeout(Duration::from_secs(10), rx.recv())
        .await
        .expect("an event within 10 s")
        .expect("bus open")
}

/// Run a statement on the test database behind the store's back (hand-written rows).
async fn raw_sql(url: &str, sql: &str) {
    use sqlx::Executor;
    if url.starts_with("sqlite:") {
        let pool = sqlx::SqlitePool::connect(url).await.unwrap();
        pool.execute(sql).await.unwrap();
        pool.close().await;
    } else {
        let pool = sqlx::PgPool::connect(url).await.unwrap();
        pool.execute(sql).await.unwrap();
        pool.close().await;
    }
}

async fn a_due_schedule_fires_once(db: &TestDb) {
    let h = Harness::start(db.store.clone(), quiet_config(), t0()).await;
    let mut events = h.ringmaster.schedule_events().channel();
    h.register("w", 1, t0()).await;
    h.fake.set("w", Behavior::Reply("report written".into()));
    let s = create(&h, NewSchedule::new("w", "report", "* * * * *", "write it")).await;
    let slot = at(2026, 6, 1, 8, 1, 0);
    assert_eq!(s.next_run_at, Some(slot));

    assert!(
        h.scheduler_tick(slot - Span::seconds(1))
            .await
            .fired
            .is_empty(),
        "not due yet"
    );
    let report = h.scheduler_tick(slot).await;
    let key = format!("cron:{}:2026-06-01T08:01:00Z", s.id);
    assert_eq!(report.fired.len(), 1);
    assert_eq!(report.fired[0].key, key);
    assert_eq!((report.lost, report.due), (0, 1));
    // The same instant again, and a later one before the next slot: nothing.
    assert!(h.scheduler_tick(slot).await.fired.is_empty());
    assert!(h
        .scheduler_tick(slot + Span::seconds(30))
        .await
        .fired
        .is_empty());

    let run = finished_run(&h, &key).await;
    assert_eq!(run.status, RunStatus::Ok);
    assert_eq!(run.response_summary.as_deref(), Some("report written"));
    let items = h.store().list_queue("w", None, 10).await.unwrap();
    assert_eq!(items.len(), 1, "one queue item for one slot");
    assert_eq!(items[0].idempotency_key.as_deref(), Some(key.as_str()));
    let body: serde_json::Value = serde_json::from_str(&items[0].body).unwrap();
    assert_eq!(body["params"]["message"]["messageId"], key.as_str());
    assert_eq!(body["params"]["message"]["parts"][0]["text"], "write it");
    assert_eq!(
        items[0].expires_at,
        Some(items[0].enqueued_at + Span::minutes(2)),
        "TTL = defer window"
    );
    let after = schedule(&h, s.id).await;
    assert_eq!(
        (
            after.next_run_at,
            after.last_run_at,
            after.run_count,
            after.last_status
        ),
        (
            Some(slot + Span::minutes(1)),
            Some(slot),
            1,
            Some(RunStatus::Ok)
        )
    );
    match next_event(&mut events).await {
        ScheduleEvent::CronExecuted {
            schedule_id,
            slot: s2,
            status,
            ..
        } => assert_eq!((schedule_id, s2, status), (s.id, slot, RunStatus::Ok)),
        other => panic!("expected CronExecuted, got {other:?}"),
    }
    h.ringmaster.shutdown().await;
}

async fn a_busy_workspace_gets_its_fire_within_the_defer_window_else_skipped(db: &TestDb) {
    let h = Harness::start(db.store.clone(), quiet_config(), t0()).await;
    let mut events = h.ringmaster.schedule_events().channel();
    h.register("w", 1, t0()).await;
    h.beat("w", 1, 1).await; // full
    let s = create(
        &h,
        NewSchedule::new("w", "n", "* * * * *", "p").defer_window(Duration::from_secs(120)),
    )
    .await;
    let first = h.scheduler_tick(at(2026, 6, 1, 8, 1, 0)).await.fired[0]
        .key
        .clone();
    h.clock.set(at(2026, 6, 1, 8, 2, 30)); // inside the window
    assert_eq!(
        h.store()
            .get_run_by_key(&first)
            .await
            .unwrap()
            .unwrap()
            .status,
        RunStatus::Dispatched,
        "waits in the queue while the workspace is full"
    );
    assert_eq!(h.fake.calls(), 0);
    h.beat("w", 0, 1).await; // room: the heartbeat wakes the drain
    assert_eq!(finished_run(&h, &first).await.status, RunStatus::Ok);

    h.beat("w", 1, 1).await; // full again, and stays full
    let second = h.scheduler_tick(at(2026, 6, 1, 8, 3, 0)).await.fired[0]
        .key
        .clone();
    // The enqueue is a message: let it land (stamped 08:03) before time moves.
    eventually(10, "the second fire is queued", || async {
        let items = h
            .store()
            .list_queue("w", Some(QueueStatus::Queued), 10)
            .await
            .unwrap();
        items
            .iter()
            .any(|i| i.idempotency_key.as_deref() == Some(second.as_str()))
            .then_some(())
    })
    .await;
    queue_tick(&h, at(2026, 6, 1, 8, 4, 59)).await;
    assert_eq!(
        h.store()
            .get_run_by_key(&second)
            .await
            .unwrap()
            .unwrap()
            .status,
        RunStatus::Dispatched
    );
    queue_tick(&h, at(2026, 6, 1, 8, 5, 1)).await; // past the TTL
    let skipped = finished_run(&h, &second).await;
    assert_eq!(skipped.status, RunStatus::Skipped);
    let reason = skipped.error.unwrap();
    assert!(
        reason.contains("defer window") && reason.contains("w had no room"),
        "{reason}"
    );
    let after = schedule(&h, s.id).await;
    assert_eq!(after.last_status, Some(RunStatus::Skipped));
    let mut saw_skip = false;
    while !saw_skip {
        if let ScheduleEvent::CronSkipped { key, .. } = next_event(&mut events).await {
            assert_eq!(key, second);
            saw_skip = true;
        }
    }
    h.ringmaster.shutdown().await;
}

async fn three_empty_responses_make_stale_and_an_answer_resets(db: &TestDb) {
    let h = Harness::start(db.store.clone(), quiet_config(), t0()).await;
    h.register("w", 1, t0()).await;
    h.fake.set("w", Behavior::Empty);
    let s = create(&h, NewSchedule::new("w", "n", "* * * * *", "p")).await;
    let mut statuses = Vec::new();
    for minute in 1..=4 {
        if minute == 4 {
            h.fake.set("w", Behavior::Reply("something at last".into()));
        }
        let report = h.scheduler_tick(at(2026, 6, 1, 8, minute, 0)).await;
        let key = report.fired[0].key.clone();
        let run = finished_run(&h, &key).await;
        let sched = schedule(&h, s.id).await;
        statuses.push((run.status, sched.consecutive_empty_runs, sched.last_status));
    }
    assert_eq!(
        statuses,
        vec![
            (RunStatus::Ok, 1, Some(RunStatus::Ok)),
            (RunStatus::Ok, 2, Some(RunStatus::Ok)),
            (RunStatus::Stale, 3, Some(RunStatus::Stale)),
            (RunStatus::Ok, 0, Some(RunStatus::Ok)),
        ]
    );
    h.ringmaster.shutdown().await;
}

async fn a_three_hour_gap_is_missed_then_fires_normally(db: &TestDb) {
    let h = Harness::start(db.store.clone(), quiet_config(), t0()).await;
    let mut events = h.ringmaster.schedule_events().channel();
    h.register("w", 5, t0()).await;
    let hourly = create(&h, NewSchedule::new("w", "hourly", "0 * * * *", "p")).await;
    let five = create(&h, NewSchedule::new("w", "five", "*/5 * * * *", "p")).await;
    assert_eq!(hourly.next_run_at, Some(at(2026, 6, 1, 9, 0, 0)));

    // 35 minutes late, inside the deadline: the seven slots 08:05..08:35
    // coalesce into one fire, and the next is the first slot after now.
    let r = h.scheduler_tick(at(2026, 6, 1, 8, 40, 0)).await;
    assert_eq!(
        r.fired
            .iter()
            .map(|f| (f.schedule_id, f.slot))
            .collect::<Vec<_>>(),
        vec![(five.id, at(2026, 6, 1, 8, 5, 0))]
    );
    assert_eq!(
        schedule(&h, five.id).await.next_run_at,
        Some(at(2026, 6, 1, 8, 45, 0))
    );

    // Down from 08:40 to 12:30: both slots are past the 1 h starting deadline.
    let r = h.scheduler_tick(at(2026, 6, 1, 12, 30, 0)).await;
    assert!(r.fired.is_empty(), "{r:?}");
    let mut missed: Vec<(i64, DateTime<Utc>)> =
        r.missed.iter().map(|f| (f.schedule_id, f.slot)).collect();
    missed.sort();
    assert_eq!(
        missed,
        vec![
            (hourly.id, at(2026, 6, 1, 9, 0, 0)),
            (five.id, at(2026, 6, 1, 8, 45, 0))
        ]
    );
    let run = h.store().list_runs(hourly.id, 1).await.unwrap().remove(0);
    assert_eq!(run.status, RunStatus::Missed);
    assert!(run
        .error
        .unwrap()
        .contains("past the starting deadline of 3600 s"));
    assert_eq!(
        schedule(&h, hourly.id).await.next_run_at,
        Some(at(2026, 6, 1, 13, 0, 0))
    );
    assert_eq!(
        schedule(&h, hourly.id).await.last_status,
        Some(RunStatus::Missed)
    );
    let mut missed_events = 0;
    while missed_events < 2 {
        if let ScheduleEvent::CronMissed { .. } = next_event(&mut events).await {
            missed_events += 1;
        }
    }

    // Back to normal: the next slots fire.
    let r = h.scheduler_tick(at(2026, 6, 1, 12, 35, 0)).await;
    assert_eq!(r.fired.len(), 1);
    let r = h.scheduler_tick(at(2026, 6, 1, 13, 0, 0)).await;
    let mut fired: Vec<i64> = r.fired.iter().map(|f| f.schedule_id).collect();
    fired.sort();
    assert_eq!(fired, vec![hourly.id, five.id]);
    assert!(r.missed.is_empty());
    h.ringmaster.shutdown().await;
}

async fn a_bad_row_is_marked_invalid_while_the_others_fire(db: &TestDb) {
    let h = Harness::start(db.store.clone(), quiet_config(), t0()).await;
    let mut events = h.ringmaster.schedule_events().channel();
    h.register("w", 5, t0()).await;
    let good = create(&h, NewSchedule::new("w", "good", "* * * * *", "p")).await;
    let bad_spec = create(&h, NewSchedule::new("w", "bad-spec", "* * * * *", "p")).await;
    let bad_zone = create(&h, NewSchedule::new("w", "bad-zone", "* * * * *", "p")).await;
    raw_sql(
        &db.url,
        &format!(
            "UPDATE schedules SET spec = '61 * * * *' WHERE id = {}",
            bad_spec.id
        ),
    )
    .await;
    raw_sql(
        &db.url,
        &format!(
            "UPDATE schedules SET timezone = 'Mars/Olympus' WHERE id = {}",
            bad_zone.id
        ),
    )
    .await;

    let r = h.scheduler_tick(at(2026, 6, 1, 8, 1, 0)).await;
    assert_eq!(
        r.fired.iter().map(|f| f.schedule_id).collect::<Vec<_>>(),
        vec![good.id]
    );
    let mut invalid = r.invalid.clone();
    invalid.sort();
    assert_eq!(invalid, vec![bad_spec.id, bad_zone.id]);
    let row = schedule(&h, bad_spec.id).await;
    assert!(row.invalid);
    assert_eq!(
        row.invalid_error.as_deref(),
        Some("minute: 61 is out of range 0-59")
    );
    assert_eq!(
        schedule(&h, bad_zone.id).await.invalid_error.as_deref(),
        Some("timezone: unknown IANA zone \"Mars/Olympus\"")
    );
    let mut invalid_events = Vec::new();
    while invalid_events.len() < 2 {
        if let ScheduleEvent::ScheduleInvalid { schedule_id, .. } = next_event(&mut events).await {
            invalid_events.push(schedule_id);
        }
    }
    // They left the due set: the next tick neither reads nor retries them.
    let r = h.scheduler_tick(at(2026, 6, 1, 8, 2, 0)).await;
    assert_eq!((r.due, r.fired.len(), r.invalid.len()), (1, 1, 0));
    // Fixing the row through an update brings it back.
    let fixed = scheduler(&h)
        .ask(|reply| SchedulerMsg::Upsert {
            upsert: Upsert::Update {
                id: bad_spec.id,
                patch: SchedulePatch {
                    spec: Some("* * * * *".into()),
                    ..Default::default()
                },
            },
            reply,
        })
        .await
        .unwrap();
    assert!(!fixed.invalid);
    assert_eq!(
        h.scheduler_tick(at(2026, 6, 1, 8, 3, 0)).await.fired.len(),
        2
    );
    h.ringmaster.shutdown().await;
}

async fn a_panicking_dispatcher_leaves_the_schedule_firing(db: &TestDb) {
    let config = ringmaster::config::Config {
        queue_max_attempts: 1,
        ..quiet_config()
    };
    let h = Harness::start(db.store.clone(), config, t0()).await;
    h.register("w", 1, t0()).await;
    h.fake.set("w", Behavior::Panic);
    let s = create(&h, NewSchedule::new("w", "n", "* * * * *", "p")).await;
    let key = h.scheduler_tick(at(2026, 6, 1, 8, 1, 0)).await.fired[0]
        .key
        .clone();
    let run = finished_run(&h, &key).await;
    assert_eq!(run.status, RunStatus::Error);
    assert!(run.error.unwrap().contains("dispatcher panicked"));
    h.fake.set("w", Behavior::Reply("fine now".into()));
    let key = h.scheduler_tick(at(2026, 6, 1, 8, 2, 0)).await.fired[0]
        .key
        .clone();
    assert_eq!(finished_run(&h, &key).await.status, RunStatus::Ok);
    let children = h.ringmaster.children().await.unwrap();
    assert!(children.iter().all(|c| c.restarts == 0), "{children:?}");
    assert_eq!(schedule(&h, s.id).await.run_count, 2);
    h.ringmaster.shutdown().await;
}

async fn run_now_fires_outside_the_timetable(db: &TestDb) {
    let h = Harness::start(db.store.clone(), quiet_config(), t0()).await;
    h.register("w", 1, t0()).await;
    let s = create(&h, NewSchedule::new("w", "n", "0 0 1 1 *", "p")).await;
    let run = scheduler(&h)
        .ask(|reply| SchedulerMsg::RunNow {
            schedule: s.id,
            reply: Some(reply),
        })
        .await
        .unwrap();
    assert!(run.manual);
    assert_eq!(
        run.key,
        format!("cron:{}:manual:2026-06-01T08:00:30Z", s.id)
    );
    assert_eq!(finished_run(&h, &run.key).await.status, RunStatus::Ok);
    assert_eq!(
        schedule(&h, s.id).await.next_run_at,
        s.next_run_at,
        "the timetable is untouched"
    );
    let missing = scheduler(&h)
        .ask(|reply| SchedulerMsg::RunNow {
            schedule: 424242,
            reply: Some(reply),
        })
        .await
        .unwrap_err();
    assert_eq!(missing.to_string(), "schedule 424242 not found");
    h.ringmaster.shutdown().await;
}

async fn upsert_get_list_runs_delete_by_message(db: &TestDb) {
    let h = Harness::start(db.store.clone(), quiet_config(), t0()).await;
    let refused = scheduler(&h)
        .ask(|reply| SchedulerMsg::Upsert {
            upsert: Upsert::Create(NewSchedule::new("w", "n", "0 0 32 * *", "p")),
            reply,
        })
        .await
        .unwrap_err();
    assert!(
        matches!(&refused, SchedulerError::Rejected(r) if r.field() == "cron"),
        "{refused}"
    );
    assert_eq!(refused.to_string(), "day-of-month: 32 is out of range 1-31");
    let s = create(&h, NewSchedule::new("w", "n", "@hourly", "p")).await;
    // Reads go to the store, not through the scheduler's mailbox.
    let got = h.store().get_schedule(s.id).await.unwrap();
    assert_eq!(got, Some(s.clone()));
    let listed = h.store().list_schedules(Some("w")).await.unwrap();
    assert_eq!(listed, vec![s.clone()]);
    h.scheduler_tick(at(2026, 6, 1, 9, 0, 0)).await;
    let runs = h.store().list_runs(s.id, 10).await.unwrap();
    assert_eq!(runs.len(), 1);
    let deleted = scheduler(&h)
        .ask(|reply| SchedulerMsg::Delete {
            schedule: s.id,
            reply,
        })
        .await
        .unwrap();
    assert!(deleted);
    h.ringmaster.shutdown().await;
}

async fn start_up_repairs_schedules_without_a_next_run(db: &TestDb) {
    let store = db.store.clone();
    let s = store
        .create_schedule(&NewSchedule::new("w", "lost", "*/10 * * * *", "p"), t0())
        .await
        .unwrap();
    let broken = store
        .create_schedule(&NewSchedule::new("w", "broken", "@daily", "p"), t0())
        .await
        .unwrap();
    raw_sql(&db.url, "UPDATE schedules SET next_run_at = NULL").await;
    raw_sql(
        &db.url,
        &format!(
            "UPDATE schedules SET spec = 'every 0m' WHERE id = {}",
            broken.id
        ),
    )
    .await;
    assert_eq!(
        store
            .due_schedules(t0() + Span::days(1), 10)
            .await
            .unwrap()
            .len(),
        0,
        "NULL never fires"
    );
    let start = at(2026, 6, 1, 9, 3, 0);
    let h = Harness::start(store.clone(), quiet_config(), start).await;
    let repaired = eventually(10, "next_run_at repaired", || async {
        let row = h.store().get_schedule(s.id).await.unwrap().unwrap();
        row.next_run_at.map(|_| row)
    })
    .await;
    assert_eq!(repaired.next_run_at, Some(at(2026, 6, 1, 9, 10, 0)));
    // A row that cannot be repaired is marked, not left silent.
    eventually(10, "the unrepairable row marked invalid", || async {
        schedule(&h, broken.id).await.invalid.then_some(())
    })
    .await;
    assert_eq!(
        h.scheduler_tick(at(2026, 6, 1, 9, 10, 0)).await.fired.len(),
        1
    );
    h.ringmaster.shutdown().await;
}

/// An outcome whose event never reached the scheduler (it was restarting)
/// is written by reconciliation; a claimed slot that never reached the queue
/// is enqueued again. Reconciliation runs at the first tick and then every
/// five minutes of clock time.
async fn lost_outcomes_and_lost_enqueues_are_reconciled(db: &TestDb) {
    let h = Harness::start(db.store.clone(), quiet_config(), t0()).await;
    let s = create(
        &h,
        NewSchedule::new("w", "n", "* * * * *", "p").defer_window(Duration::from_secs(600)),
    )
    .await;
    // No workspace row yet: the item waits in the queue, undelivered.
    let key = h.scheduler_tick(at(2026, 6, 1, 8, 1, 0)).await.fired[0]
        .key
        .clone();
    // Deliver it behind the actors' backs: no outcome event is published.
    let store = h.store().clone();
    let claimed = eventually(10, "the fire is in the queue", || async {
        let claimed = store
            .claim(Claim {
                workspace: "w",
                limit: 1,
                now: at(2026, 6, 1, 8, 1, 1),
                lease_until: at(2026, 6, 1, 8, 20, 0),
                node: "someone-else",
            })
            .await
            .unwrap();
        (!claimed.is_empty()).then_some(claimed)
    })
    .await;
    support::record(
        &store,
        claimed[0].id,
        claimed[0].lease_token.as_deref().unwrap(),
        &DispatchResult::Delivered {
            response: r#"{"result":{"parts":[{"text":"done elsewhere"}]}}"#.into(),
        },
        at(2026, 6, 1, 8, 1, 2),
    )
    .await
    .unwrap();
    assert_eq!(
        store.get_run_by_key(&key).await.unwrap().unwrap().status,
        RunStatus::Dispatched
    );
    let r = h.scheduler_tick(at(2026, 6, 1, 8, 6, 30)).await;
    assert_eq!(r.reconciled, 1);
    let run = store.get_run_by_key(&key).await.unwrap().unwrap();
    assert_eq!(
        (run.status, run.response_summary.as_deref()),
        (RunStatus::Ok, Some("done elsewhere"))
    );

    // A slot claimed by a node that died before enqueueing.
    h.register("w", 1, t0()).await;
    let slot = schedule(&h, s.id).await.next_run_at.unwrap();
    assert_eq!(slot, at(2026, 6, 1, 8, 7, 0));
    let orphan_key = format!("cron:{}:2026-06-01T08:07:00Z", s.id);
    // (A version without the outbox claimed slots without their fire.)
    store
        .claim_slots(
            &[SlotFire {
                claim: SlotClaim {
                    schedule_id: s.id,
                    workspace: "w".into(),
                    slot,
                    next: at(2026, 6, 1, 8, 8, 0),
                    key: orphan_key.clone(),
                    missed: None,
                },
                item: None,
            }],
            5,
            slot,
        )
        .await
        .unwrap();
    assert_eq!(h.scheduler_tick(at(2026, 6, 1, 8, 7, 10)).await.requeued, 0);
    let r = h.scheduler_tick(at(2026, 6, 1, 8, 11, 40)).await;
    assert_eq!(r.requeued, 1);
    assert_eq!(finished_run(&h, &orphan_key).await.status, RunStatus::Ok);
    let items = store
        .list_queue("w", Some(QueueStatus::Completed), 10)
        .await
        .unwrap();
    assert!(items
        .iter()
        .any(|i| i.idempotency_key.as_deref() == Some(orphan_key.as_str())));
    h.ringmaster.shutdown().await;
}

/// The scheduler restarting between fire and outcome: the new incarnation
/// subscribes afresh and still records the outcome.
async fn outcomes_survive_a_scheduler_restart(db: &TestDb) {
    let h = Harness::start(db.store.clone(), quiet_config(), t0()).await;
    h.register("w", 1, t0()).await;
    h.beat("w", 1, 1).await;
    create(&h, NewSchedule::new("w", "n", "* * * * *", "p")).await;
    let key = h.scheduler_tick(at(2026, 6, 1, 8, 1, 0)).await.fired[0]
        .key
        .clone();
    let old = scheduler(&h);
    old.kill();
    eventually(10, "scheduler restarted", || async {
        h.ringmaster
            .scheduler()
            .ok()
            .filter(|s| s.get_id() != old.get_id())
    })
    .await;
    h.beat("w", 0, 1).await;
    assert_eq!(finished_run(&h, &key).await.status, RunStatus::Ok);
    h.ringmaster.shutdown().await;
}

macro_rules! db_tests {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let db = $crate::support::TestDb::sqlite().await;
                    super::$name(&db).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let Some(db) = $crate::support::TestDb::postgres().await else { return };
                    super::$name(&db).await;
                    db.store.close().await;
                }
            )*
        }
    };
}

db_tests!(
    a_due_schedule_fires_once,
    a_busy_workspace_gets_its_fire_within_the_defer_window_else_skipped,
    three_empty_responses_make_stale_and_an_answer_resets,
    a_three_hour_gap_is_missed_then_fires_normally,
    a_bad_row_is_marked_invalid_while_the_others_fire,
    a_panicking_dispatcher_leaves_the_schedule_firing,
    run_now_fires_outside_the_timetable,
    upsert_get_list_runs_delete_by_message,
    start_up_repairs_schedules_without_a_next_run,
    lost_outcomes_and_lost_enqueues_are_reconciled,
    outcomes_survive_a_scheduler_restart,
);
