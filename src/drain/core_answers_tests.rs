//! How `Send` callers are answered when the outcome's write is slow or
//! fails: from memory, after the patience, and never twice.

use super::*;

/// A caller of item 7 whose item was claimed and is being delivered.
fn delivering() -> DrainCore {
    let mut core = DrainCore::new(cfg(64, 8));
    wake_with_room(&mut core, "w", 1, t(0));
    core.claimed("w", 1, Ok(vec![]), t(0));
    core.send(7, "w", 1, t(0));
    let out = core.claimed("w", 2, Ok(vec![item(7, "w")]), t(0));
    assert_eq!(delivered(&out), vec![7]);
    core
}

#[test]
fn an_answered_delivery_whose_write_is_slow_is_answered_from_memory() {
    let mut core = delivering();
    let out = core.dispatched("w", key(7), false, Some("hello".into()), t(1));
    assert!(
        out.contains(&Effect::RecordOverdueLater { item_id: 7 }),
        "{out:?}"
    );
    assert!(answers(&out).is_empty(), "the write may still come in time");
    let out = core.record_overdue(7);
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
    // The write arriving later answers nobody a second time.
    let mut done = item(7, "w");
    done.status = QueueStatus::Completed;
    assert!(answers(&core.recorded(vec![(7, Some(done))])).is_empty());
    assert!(answers(&core.record_overdue(7)).is_empty());
}

#[test]
fn a_write_in_time_wins_over_the_patience() {
    let mut core = delivering();
    core.dispatched("w", key(7), false, Some("hello".into()), t(1));
    let mut done = item(7, "w");
    done.status = QueueStatus::Completed;
    done.response = Some("hello".into());
    assert_eq!(answers(&core.recorded(vec![(7, Some(done))])).len(), 1);
    assert!(answers(&core.record_overdue(7)).is_empty());
}

#[test]
fn a_delivery_without_an_answer_is_queued_when_its_write_is_slow() {
    let mut core = delivering();
    core.dispatched("w", key(7), false, None, t(1));
    assert_eq!(
        answers(&core.record_overdue(7)),
        vec![(
            7,
            SendOutcome::Queued {
                queue_id: 7,
                queue_depth: 1
            }
        )]
    );
}

#[test]
fn a_delivery_nobody_waits_for_sets_no_timer() {
    let mut core = DrainCore::new(cfg(64, 8));
    wake_with_room(&mut core, "w", 1, t(0));
    core.claimed("w", 1, Ok(vec![item(3, "w")]), t(0));
    let out = core.dispatched("w", key(3), false, Some("x".into()), t(1));
    assert!(!out
        .iter()
        .any(|e| matches!(e, Effect::RecordOverdueLater { .. })));
}

/// Item 3 claimed and delivered before anybody asked for it (the wake that
/// followed its commit beat its caller's `Await` to the mailbox).
fn delivered_before_its_caller() -> DrainCore {
    let mut core = DrainCore::new(cfg(64, 8));
    wake_with_room(&mut core, "w", 1, t(0));
    let out = core.claimed("w", 1, Ok(vec![item(3, "w")]), t(0));
    assert_eq!(delivered(&out), vec![3]);
    core.dispatched("w", key(3), false, Some("x".into()), t(1));
    core
}

#[test]
fn a_caller_late_for_a_written_delivery_is_answered_from_the_row() {
    let mut core = delivered_before_its_caller();
    let mut done = item(3, "w");
    done.status = QueueStatus::Completed;
    core.recorded(vec![(3, Some(done))]);
    let out = core.send(3, "w", 1, t(1));
    assert_eq!(
        out,
        vec![Effect::AnswerFromRow {
            item_id: 3,
            depth: 1
        }]
    );
}

#[test]
fn a_caller_late_for_an_unwritten_delivery_hears_the_written_row() {
    let mut core = delivered_before_its_caller();
    let out = core.send(3, "w", 1, t(1));
    assert!(out.is_empty(), "no claim and no answer yet: {out:?}");
    let mut done = item(3, "w");
    done.status = QueueStatus::Completed;
    done.response = Some("x".into());
    assert_eq!(
        answers(&core.recorded(vec![(3, Some(done))])),
        vec![(
            3,
            SendOutcome::Delivered {
                queue_id: 3,
                response: "x".into()
            }
        )]
    );
}

#[test]
fn a_caller_of_an_item_never_started_here_waits_for_a_claim() {
    let mut core = delivered_before_its_caller();
    let out = core.send(4, "w", 1, t(1));
    assert!(
        out.iter()
            .any(|e| matches!(e, Effect::LoadWorkspace { .. })),
        "it looks for room to claim item 4: {out:?}"
    );
    assert!(answers(&out).is_empty(), "{out:?}");
    assert!(!out
        .iter()
        .any(|e| matches!(e, Effect::AnswerFromRow { .. })));
}
