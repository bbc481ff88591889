//! The drain's decisions, one rule per test, with no database and no runtime:
//! each test plays the events a shell would feed and reads the effects.

use chrono::{DateTime, TimeDelta, Utc};

use super::*;
use crate::messages::queue::SendOutcome;
use crate::model::queue::{fixture, QueueStatus};
use crate::model::workspace::WorkspaceStatus;

fn t(secs: i64) -> DateTime<Utc> {
    DateTime::<Utc>::UNIX_EPOCH + TimeDelta::days(20_000) + TimeDelta::seconds(secs)
}

fn cfg(concurrency: u32, prefetch: u32) -> CoreConfig {
    CoreConfig {
        concurrency,
        prefetch,
        max_hold: TimeDelta::seconds(30),
        cache_for: TimeDelta::seconds(1),
    }
}

fn row(ws: &str, max: i32, active: i32) -> Workspace {
    Workspace {
        id: ws.into(),
        url: Some("http://agent/".into()),
        max_concurrent: max,
        active_tasks: active,
        status: WorkspaceStatus::Online,
        last_heartbeat: None,
    }
}

fn item(id: i64, ws: &str) -> QueueItem {
    let mut it = fixture::item(0, 5);
    it.id = id;
    it.workspace = ws.into();
    it.lease_token = Some(format!("lease-{id}"));
    it
}

fn items(ws: &str, ids: std::ops::Range<i64>) -> Vec<QueueItem> {
    ids.map(|id| item(id, ws)).collect()
}

fn claims(effects: &[Effect]) -> Vec<(String, u64, u32)> {
    effects
        .iter()
        .filter_map(|e| match e {
            Effect::Claim {
                workspace,
                seq,
                limit,
                ..
            } => Some((workspace.clone(), *seq, *limit)),
            _ => None,
        })
        .collect()
}

fn delivered(effects: &[Effect]) -> Vec<i64> {
    effects
        .iter()
        .filter_map(|e| match e {
            Effect::Deliver { item, .. } => Some(item.id),
            _ => None,
        })
        .collect()
}

fn answers(effects: &[Effect]) -> Vec<(i64, SendOutcome)> {
    effects
        .iter()
        .filter_map(|e| match e {
            Effect::Answer { item_id, outcome } => Some((*item_id, outcome.clone())),
            _ => None,
        })
        .collect()
}

fn given_back(effects: &[Effect]) -> (Vec<i64>, Vec<i64>) {
    let mut expired = Vec::new();
    let mut released = Vec::new();
    for e in effects {
        if let Effect::GiveBack {
            expired: x,
            released: r,
            ..
        } = e
        {
            expired.extend(x.iter().map(|i| i.id));
            released.extend(r.iter().map(|i| i.id));
        }
    }
    (expired, released)
}

fn key(id: i64) -> (i64, String) {
    (id, format!("lease-{id}"))
}

/// Wake `ws` and answer its row read: the effects of the pump that follows.
fn wake_with_room(core: &mut DrainCore, ws: &str, max: i32, now: DateTime<Utc>) -> Vec<Effect> {
    let first = core.wake(ws, now);
    assert_eq!(
        first,
        vec![Effect::LoadWorkspace {
            workspace: ws.into()
        }]
    );
    let out = core.loaded(ws, Ok(Some(row(ws, max, 0))), now);
    core.check_counters();
    out
}

#[test]
fn a_wake_reads_the_row_then_claims_up_to_the_room() {
    let mut core = DrainCore::new(cfg(64, 1024));
    let out = wake_with_room(&mut core, "w", 3, t(0));
    assert_eq!(claims(&out), vec![("w".into(), 1, 3)]);
    let out = core.claimed("w", 1, Ok(items("w", 1..4)), t(0));
    assert_eq!(delivered(&out), vec![1, 2, 3]);
    core.check_counters();
    assert_eq!(core.in_flight_report().total, 3);
}

#[test]
fn never_more_in_flight_than_the_room_and_a_freed_slot_refills_from_the_buffer() {
    let mut core = DrainCore::new(cfg(2, 1024));
    let out = wake_with_room(&mut core, "w", 10, t(0));
    // Room 10, but only 2 global slots: claim the room, deliver 2, buffer 8.
    assert_eq!(claims(&out), vec![("w".into(), 1, 10)]);
    let out = core.claimed("w", 1, Ok(items("w", 1..11)), t(0));
    assert_eq!(delivered(&out), vec![1, 2]);
    assert_eq!(core.in_flight_report().buffered, 8);
    core.dispatched("w", key(1), false, None, t(0));
    let out = core.drain_dirty(t(0));
    assert_eq!(delivered(&out), vec![3], "refilled from memory");
    assert!(
        claims(&out).iter().all(|c| c.2 <= 1),
        "a claim never takes more than the room left: 10 − 2 running − 7 buffered"
    );
    core.check_counters();
}

#[test]
fn reported_active_tasks_reduce_the_room() {
    let mut core = DrainCore::new(cfg(64, 1024));
    core.wake("w", t(0));
    let out = core.loaded("w", Ok(Some(row("w", 3, 3))), t(0));
    assert!(claims(&out).is_empty(), "full: no claim");
    let out = core.capacity(row("w", 3, 1), t(0));
    assert_eq!(
        claims(&out),
        vec![("w".into(), 1, 2)],
        "a beat with room replaces the cached row and claims at once"
    );
}

#[test]
fn a_beat_during_a_read_wins_over_the_older_answer() {
    let mut core = DrainCore::new(cfg(64, 8));
    core.wake("w", t(0));
    // The read began while the workspace was full; the beat with room lands
    // before its answer, which is then older than what the beat said.
    assert!(
        claims(&core.capacity(row("w", 1, 0), t(0))).is_empty(),
        "a read is under way"
    );
    let out = core.loaded("w", Ok(Some(row("w", 1, 1))), t(0));
    assert_eq!(
        claims(&out),
        vec![("w".into(), 1, 1)],
        "the beat's room counts"
    );
    core.check_counters();
}

#[test]
fn a_fresh_row_is_reused_and_a_stale_one_read_again() {
    let mut core = DrainCore::new(cfg(64, 1024));
    wake_with_room(&mut core, "w", 1, t(0));
    core.claimed("w", 1, Ok(vec![]), t(0));
    let out = core.wake("w", t(0) + TimeDelta::milliseconds(500));
    assert_eq!(claims(&out).len(), 1, "row still fresh: claim at once");
    core.claimed("w", 2, Ok(vec![]), t(0));
    let out = core.wake("w", t(2));
    assert_eq!(
        out,
        vec![Effect::LoadWorkspace {
            workspace: "w".into()
        }]
    );
}

#[test]
fn a_short_claim_marks_the_workspace_dry_until_a_wake() {
    let mut core = DrainCore::new(cfg(64, 1024));
    wake_with_room(&mut core, "w", 5, t(0));
    let out = core.claimed("w", 1, Ok(items("w", 1..2)), t(0));
    assert_eq!(delivered(&out), vec![1]);
    assert!(claims(&out).is_empty(), "came back short: dry");
    core.dispatched("w", key(1), false, None, t(0));
    let out = core.drain_dirty(t(0));
    assert!(
        claims(&out).is_empty(),
        "a freed slot does not claim a dry workspace"
    );
    let out = core.wake("w", t(0));
    assert_eq!(claims(&out), vec![("w".into(), 2, 5)], "a wake clears dry");
    core.check_counters();
}

#[test]
fn a_wake_during_a_claim_keeps_a_short_answer_from_meaning_empty() {
    let mut core = DrainCore::new(cfg(64, 1024));
    wake_with_room(&mut core, "w", 5, t(0));
    let out = core.wake("w", t(0));
    assert!(claims(&out).is_empty(), "one claim per workspace at a time");
    let out = core.claimed("w", 1, Ok(items("w", 1..2)), t(0));
    assert_eq!(
        claims(&out),
        vec![("w".into(), 2, 4)],
        "woken meanwhile: claim again for the rest of the room"
    );
}

#[test]
fn a_busy_answer_gives_the_buffer_back_and_parks_the_workspace_until_room() {
    let mut core = DrainCore::new(cfg(1, 1024));
    wake_with_room(&mut core, "w", 3, t(0));
    core.claimed("w", 1, Ok(items("w", 1..4)), t(0));
    let out = core.dispatched("w", key(1), true, None, t(0));
    assert_eq!(given_back(&out), (vec![], vec![2, 3]));
    let out = core.drain_dirty(t(0));
    assert!(out.is_empty(), "busy: not pumped");
    assert!(
        core.wake("w", t(0)).is_empty(),
        "busy: a wake does not hammer it"
    );
    assert!(
        core.capacity(row("w", 3, 3), t(0)).is_empty(),
        "no room: still parked"
    );
    let out = core.capacity(row("w", 3, 0), t(0));
    assert_eq!(delivered(&out).len(), 0, "{out:?}");
    assert_eq!(claims(&out).len(), 1, "room reported: drained again");
    core.check_counters();
}

#[test]
fn the_global_limit_holds_a_workspace_in_its_buffer_until_a_slot_frees() {
    let mut core = DrainCore::new(cfg(1, 1));
    wake_with_room(&mut core, "a", 1, t(0));
    core.claimed("a", 1, Ok(items("a", 1..2)), t(0));
    let out = wake_with_room(&mut core, "b", 1, t(0));
    assert_eq!(
        claims(&out),
        vec![("b".into(), 2, 1)],
        "prefetch: b claims ahead"
    );
    let out = core.claimed("b", 2, Ok(items("b", 2..3)), t(0));
    assert!(delivered(&out).is_empty(), "the one global slot is a's");
    assert_eq!(core.in_flight_report().buffered, 1);
    core.dispatched("a", key(1), false, None, t(0));
    let out = core.drain_dirty(t(0));
    assert_eq!(
        delivered(&out),
        vec![2],
        "b's turn as soon as the slot frees"
    );
    core.check_counters();
}

#[test]
fn a_claim_that_returns_hands_its_budget_to_starved_workspaces() {
    let mut core = DrainCore::new(cfg(1, 4));
    let out = wake_with_room(&mut core, "a", 5, t(0));
    assert_eq!(claims(&out), vec![("a".into(), 1, 4)]);
    // a's claim holds 4 of the node's 5: b would claim less than a batch.
    let out = wake_with_room(&mut core, "b", 5, t(0));
    assert!(claims(&out).is_empty());
    let out = core.claimed("a", 1, Ok(vec![]), t(0));
    assert!(out.contains(&Effect::DrainSoon), "starved b is scheduled");
    let out = core.drain_dirty(t(0));
    assert_eq!(claims(&out).len(), 1, "b claims now, not at the tick");
}

#[test]
fn one_claim_never_reserves_more_than_the_prefetch_or_global_slots() {
    let mut core = DrainCore::new(cfg(4, 16));
    let out = wake_with_room(&mut core, "w", 10_000, t(0));
    assert_eq!(claims(&out), vec![("w".into(), 1, 16)]);
}

#[test]
fn claims_wait_for_half_the_prefetch_unless_slots_would_sit_idle() {
    let mut core = DrainCore::new(cfg(2, 8));
    wake_with_room(&mut core, "w", 100, t(0));
    core.claimed("w", 1, Ok(items("w", 1..9)), t(0));
    // 2 in flight, 6 buffered: budget 10 − 8 = 2 < half the prefetch (4).
    core.dispatched("w", key(1), false, None, t(0));
    let out = core.drain_dirty(t(0));
    assert_eq!(delivered(&out), vec![3]);
    assert!(claims(&out).is_empty(), "waits to claim a batch");
    core.check_counters();
}

#[test]
fn a_workspace_that_is_not_registered_gives_its_buffer_back() {
    let mut core = DrainCore::new(cfg(1, 8));
    wake_with_room(&mut core, "w", 5, t(0));
    core.claimed("w", 1, Ok(items("w", 1..4)), t(0));
    let out = core.wake("w", t(5));
    assert_eq!(
        out,
        vec![Effect::LoadWorkspace {
            workspace: "w".into()
        }]
    );
    let out = core.loaded("w", Ok(None), t(5));
    assert_eq!(given_back(&out), (vec![], vec![2, 3]));
    core.check_counters();
}

#[test]
fn stale_buffered_items_leave_at_dispatch_expired_or_released() {
    let mut core = DrainCore::new(cfg(1, 8));
    wake_with_room(&mut core, "w", 5, t(0));
    let mut short = item(2, "w");
    short.expires_at = Some(t(10));
    core.claimed("w", 1, Ok(vec![item(1, "w"), short, item(3, "w")]), t(0));
    core.dispatched("w", key(1), false, None, t(40));
    let out = core.drain_dirty(t(40));
    assert_eq!(
        out,
        vec![Effect::LoadWorkspace {
            workspace: "w".into()
        }],
        "the row read at t0 is stale at t40"
    );
    let out = core.loaded("w", Ok(Some(row("w", 5, 0))), t(40));
    assert_eq!(
        given_back(&out),
        (vec![2], vec![3]),
        "past its TTL: expired; held 40 s > 30 s: back to the queue"
    );
    core.check_counters();
}

#[test]
fn the_tick_takes_stale_items_out_of_the_buffer() {
    let mut core = DrainCore::new(cfg(1, 8));
    wake_with_room(&mut core, "w", 5, t(0));
    let mut short = item(2, "w");
    short.expires_at = Some(t(20));
    core.claimed("w", 1, Ok(vec![item(1, "w"), short, item(3, "w")]), t(0));
    let (stale, _) = core.tick(t(19));
    assert!(stale.is_empty());
    let (stale, _) = core.tick(t(20));
    assert_eq!(stale.iter().map(|i| i.id).collect::<Vec<_>>(), vec![2]);
    let (stale, _) = core.tick(t(30));
    assert_eq!(stale.iter().map(|i| i.id).collect::<Vec<_>>(), vec![3]);
    core.check_counters();
    assert_eq!(core.in_flight_report().buffered, 0);
}

#[test]
fn inherited_leases_count_as_in_flight_until_the_store_says_they_are_gone() {
    let mut core = DrainCore::new(cfg(64, 8));
    core.inherit(vec![
        (1, "lease-1".into(), "w".into()),
        (2, "lease-2".into(), "w".into()),
    ]);
    assert!(core.has_inherited());
    let out = wake_with_room(&mut core, "w", 3, t(0));
    assert_eq!(
        claims(&out),
        vec![("w".into(), 1, 1)],
        "room 3 − 2 inherited"
    );
    core.claimed("w", 1, Ok(vec![]), t(0));
    let out = core.swept(t(1), &["w".to_string()], Some(&[key(2)]));
    assert_eq!(core.in_flight_report().total, 1, "lease 1 no longer ours");
    assert_eq!(
        out,
        vec![Effect::LoadWorkspace {
            workspace: "w".into()
        }],
        "the tick forgets cached rows"
    );
    core.check_counters();
}

#[test]
fn a_late_report_of_an_unknown_delivery_frees_nothing() {
    let mut core = DrainCore::new(cfg(64, 8));
    wake_with_room(&mut core, "w", 2, t(0));
    core.claimed("w", 1, Ok(items("w", 1..2)), t(0));
    core.dispatched("w", (1, "an-older-lease".into()), false, None, t(0));
    assert_eq!(core.in_flight_report().total, 1);
    core.check_counters();
}

#[test]
fn a_claim_nobody_waits_for_is_given_back() {
    let mut core = DrainCore::new(cfg(64, 8));
    let out = core.claimed("w", 9, Ok(items("w", 1..3)), t(0));
    assert_eq!(given_back(&out), (vec![], vec![1, 2]));
    core.check_counters();
}

#[test]
fn a_send_whose_item_is_claimed_waits_for_the_response() {
    let mut core = DrainCore::new(cfg(64, 8));
    wake_with_room(&mut core, "w", 1, t(0));
    core.claimed("w", 1, Ok(vec![]), t(0));
    let out = core.send(7, "w", 1, t(0));
    assert_eq!(claims(&out), vec![("w".into(), 2, 1)]);
    assert!(answers(&out).is_empty(), "a claim is under way");
    let out = core.claimed("w", 2, Ok(vec![item(7, "w")]), t(0));
    assert_eq!(delivered(&out), vec![7]);
    assert!(answers(&out).is_empty(), "taken: wait for the outcome");
    let mut done = item(7, "w");
    done.status = QueueStatus::Completed;
    done.response = Some("hello".into());
    let out = core.recorded(vec![(7, Some(done))]);
    assert_eq!(
        answers(&out),
        vec![(
            7,
            SendOutcome::Delivered {
                queue_id: 7,
                response: "hello".into()
            }
        )]
    );
}

#[test]
fn a_send_without_room_hears_queued_at_once() {
    let mut core = DrainCore::new(cfg(64, 8));
    core.wake("w", t(0));
    core.loaded("w", Ok(Some(row("w", 1, 1))), t(0));
    let out = core.send(7, "w", 3, t(0));
    assert_eq!(
        answers(&out),
        vec![(
            7,
            SendOutcome::Queued {
                queue_id: 7,
                queue_depth: 3
            }
        )]
    );
}

#[test]
fn a_claim_that_started_before_the_send_and_missed_its_item_answers_queued() {
    let mut core = DrainCore::new(cfg(64, 8));
    wake_with_room(&mut core, "w", 2, t(0));
    let out = core.send(7, "w", 1, t(0));
    assert!(answers(&out).is_empty(), "claim 1 is under way");
    // Claim 1 began before the item existed and did not take it: whether
    // the item is ready is for a claim that starts after it to say.
    let out = core.claimed("w", 1, Ok(vec![item(3, "w")]), t(0));
    assert!(answers(&out).is_empty());
    assert_eq!(claims(&out), vec![("w".into(), 2, 1)], "woken: claim again");
    let out = core.claimed("w", 2, Ok(vec![]), t(0));
    assert_eq!(
        answers(&out),
        vec![(
            7,
            SendOutcome::Queued {
                queue_id: 7,
                queue_depth: 1
            }
        )],
        "a claim after the enqueue came back without it: it waits in the queue"
    );
}

#[test]
fn a_claim_that_started_before_the_send_but_took_its_item_waits_for_it() {
    let mut core = DrainCore::new(cfg(64, 8));
    wake_with_room(&mut core, "w", 2, t(0));
    core.send(7, "w", 1, t(0));
    let out = core.claimed("w", 1, Ok(vec![item(7, "w")]), t(0));
    assert!(answers(&out).is_empty());
    assert_eq!(delivered(&out), vec![7]);
}

#[test]
fn a_send_whose_item_goes_back_or_waits_too_long_hears_queued() {
    let mut core = DrainCore::new(cfg(1, 8));
    wake_with_room(&mut core, "w", 3, t(0));
    core.send(8, "w", 2, t(0));
    core.claimed("w", 1, Ok(vec![item(7, "w"), item(8, "w")]), t(0));
    let out = core.dispatched("w", key(7), true, None, t(0));
    assert_eq!(
        answers(&out),
        vec![(
            8,
            SendOutcome::Queued {
                queue_id: 8,
                queue_depth: 2
            }
        )],
        "item 8 went back with the busy workspace's buffer"
    );
    core.send(9, "w", 2, t(0));
    let out = core.send_overdue(9);
    assert_eq!(answers(&out).len(), 1);
    assert!(core.send_overdue(9).is_empty(), "answered once");
}

#[test]
fn an_outcome_that_could_not_be_written_answers_queued() {
    let mut core = DrainCore::new(cfg(64, 8));
    wake_with_room(&mut core, "w", 1, t(0));
    core.send(7, "w", 1, t(0));
    core.claimed("w", 1, Ok(vec![item(7, "w")]), t(0));
    let out = core.recorded(vec![(7, None)]);
    assert!(matches!(
        answers(&out)[..],
        [(7, SendOutcome::Queued { .. })]
    ));
}

#[test]
fn quiescing_gives_the_buffer_back_and_waits_for_deliveries_and_their_outcomes() {
    let mut core = DrainCore::new(cfg(2, 8));
    wake_with_room(&mut core, "w", 5, t(0));
    core.claimed("w", 1, Ok(items("w", 1..6)), t(0));
    assert!(!core.quiet());
    let out = core.quiesce(t(1));
    assert_eq!(given_back(&out), (vec![], vec![3, 4, 5]));
    assert!(
        core.wake("w", t(1)).is_empty(),
        "nothing new starts or is claimed"
    );
    core.dispatched("w", key(1), false, None, t(1));
    core.dispatched("w", key(2), false, None, t(1));
    assert!(core.drain_dirty(t(1)).is_empty());
    assert!(
        !core.quiet(),
        "returned, but their outcomes are not written yet"
    );
    core.recorded(vec![(1, None), (2, None)]);
    assert!(core.quiet());
    core.check_counters();
}

#[test]
fn taking_the_buffer_on_stop_empties_it() {
    let mut core = DrainCore::new(cfg(1, 8));
    wake_with_room(&mut core, "w", 5, t(0));
    core.claimed("w", 1, Ok(items("w", 1..5)), t(0));
    let mut taken: Vec<i64> = core.take_buffered().iter().map(|i| i.id).collect();
    taken.sort();
    assert_eq!(taken, vec![2, 3, 4]);
    assert_eq!(core.in_flight_report().buffered, 0);
    core.check_counters();
}

#[path = "core_answers_tests.rs"]
mod answers_tests;

#[path = "core_props.rs"]
mod properties;
