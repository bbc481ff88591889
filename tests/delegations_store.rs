//! The delegation ledger's conformance suite: every transition of the state
//! machine, allowed and refused, heartbeats and the two sweep rules, with the
//! same assertions on SQLite and PostgreSQL.

mod support;

use chrono::Duration as Span;
use ringmaster::model::delegation::{
    DelegationBeatOutcome, DelegationStatus, NewDelegation, StatusChange, Transition,
    DEADLINE_EXCEEDED, DEFAULT_DEADLINE,
};
use ringmaster::store::{Store, StoreError};
use support::at;

use DelegationStatus::*;

fn new(id: &str, workspace: &str) -> NewDelegation {
    NewDelegation {
        id: Some(id.to_string()),
        caller_workspace_id: Some("caller".to_string()),
        workspace_id: workspace.to_string(),
        deadline: None,
    }
}

/// The state machine as the design states it, written out independently of
/// the code under test: every (from, to) pair that must be applied.
const ALLOWED: &[(DelegationStatus, DelegationStatus)] = &[
    (Queued, Dispatched),
    (Queued, InProgress),
    (Queued, Completed),
    (Queued, Failed),
    (Queued, Stuck),
    (Queued, Cancelled),
    (Dispatched, InProgress),
    (Dispatched, Completed),
    (Dispatched, Failed),
    (Dispatched, Stuck),
    (Dispatched, Cancelled),
    (InProgress, Completed),
    (InProgress, Failed),
    (InProgress, Stuck),
    (InProgress, Cancelled),
    // The operator's retry.
    (Stuck, Queued),
];

async fn set(
    store: &Store,
    id: &str,
    to: DelegationStatus,
    now: chrono::DateTime<chrono::Utc>,
) -> Transition {
    store
        .set_delegation_status(id, &StatusChange::to(to), now)
        .await
        .unwrap()
}

/// Creates `id` and walks it to `status` along allowed moves.
async fn delegation_in(
    store: &Store,
    id: &str,
    status: DelegationStatus,
    t0: chrono::DateTime<chrono::Utc>,
) {
    store
        .create_delegation(&(new(id, "w")).prepare(t0).unwrap(), t0)
        .await
        .unwrap();
    let path = match status {
        Queued => vec![],
        Dispatched => vec![Dispatched],
        InProgress => vec![Dispatched, InProgress],
        terminal => vec![Dispatched, InProgress, terminal],
    };
    for to in path {
        assert!(matches!(
            set(store, id, to, t0).await,
            Transition::Applied { .. }
        ));
    }
}

async fn create_defaults_and_is_idempotent(store: Store) {
    let t0 = at(2026, 6, 1, 12, 0, 0);
    let first = store
        .create_delegation(&(new("d1", "w")).prepare(t0).unwrap(), t0)
        .await
        .unwrap();
    assert!(first.created);
    let d = first.delegation;
    assert_eq!(d.id, "d1");
    assert_eq!(d.caller_workspace_id.as_deref(), Some("caller"));
    assert_eq!(d.workspace_id, "w");
    assert_eq!(d.status, Queued);
    assert_eq!(d.previous_status, None);
    assert_eq!((d.created_at, d.updated_at), (t0, t0));
    assert_eq!(d.deadline, t0 + Span::hours(6));
    assert_eq!(DEFAULT_DEADLINE, Span::hours(6));
    assert_eq!(d.last_heartbeat, None);
    assert_eq!(
        (d.error_detail.as_deref(), d.result.as_deref()),
        (None, None)
    );

    // The same id again, even with other fields and later: the stored row, untouched.
    let again = store
        .create_delegation(
            &(NewDelegation {
                deadline: Some(t0 + Span::minutes(5)),
                workspace_id: "other".into(),
                ..new("d1", "w")
            })
            .prepare(t0 + Span::minutes(1))
            .unwrap(),
            t0 + Span::minutes(1),
        )
        .await
        .unwrap();
    assert!(!again.created);
    assert_eq!(again.delegation, d);

    // No id given: one is made up; an explicit deadline is kept.
    let made = store
        .create_delegation(
            &(NewDelegation {
                id: None,
                caller_workspace_id: None,
                workspace_id: "w".into(),
                deadline: Some(t0 + Span::minutes(30)),
            })
            .prepare(t0)
            .unwrap(),
            t0,
        )
        .await
        .unwrap();
    assert!(made.created);
    assert!(uuid::Uuid::parse_str(&made.delegation.id).is_ok());
    assert_eq!(made.delegation.deadline, t0 + Span::minutes(30));
    assert_eq!(made.delegation.caller_workspace_id, None);
    assert_eq!(store.get_delegation("d1").await.unwrap(), Some(d));
    assert_eq!(store.get_delegation("nope").await.unwrap(), None);
}

async fn every_transition_is_applied_or_refused_as_the_state_machine_says(store: Store) {
    let t0 = at(2026, 6, 1, 12, 0, 0);
    let t1 = t0 + Span::seconds(30);
    for from in DelegationStatus::ALL {
        for to in DelegationStatus::ALL {
            let id = format!("{from}-to-{to}");
            delegation_in(&store, &id, from, t0).await;
            let before = store.get_delegation(&id).await.unwrap().unwrap();
            assert_eq!(before.status, from);
            let change = StatusChange {
                to,
                error_detail: Some("why".into()),
                result: Some("what".into()),
            };
            let outcome = store.set_delegation_status(&id, &change, t1).await.unwrap();
            let after = store.get_delegation(&id).await.unwrap().unwrap();
            if from == to {
                assert_eq!(
                    outcome,
                    Transition::Unchanged {
                        delegation: before.clone()
                    },
                    "{id}"
                );
                assert_eq!(after, before, "{id}: a no-op writes nothing");
            } else if ALLOWED.contains(&(from, to)) {
                let Transition::Applied {
                    from: was,
                    delegation,
                } = outcome
                else {
                    panic!("{id}: expected applied, got {outcome:?}");
                };
                assert_eq!(was, from, "{id}");
                assert_eq!(delegation, after, "{id}");
                assert_eq!(
                    (after.status, after.previous_status),
                    (to, Some(from)),
                    "{id}"
                );
                assert_eq!(after.updated_at, t1, "{id}");
                assert_eq!(after.error_detail.as_deref(), Some("why"), "{id}");
                assert_eq!(after.result.as_deref(), Some("what"), "{id}");
            } else {
                let Transition::Refused {
                    from: was,
                    to: asked,
                    reason,
                } = outcome
                else {
                    panic!("{id}: expected refused, got {outcome:?}");
                };
                assert_eq!((was, asked), (from, to), "{id}");
                assert!(!reason.is_empty());
                assert_eq!(after, before, "{id}: a refusal writes nothing");
            }
        }
    }
}

async fn refusals_say_why(store: Store) {
    let t0 = at(2026, 6, 1, 12, 0, 0);
    let reason = |t: Transition| match t {
        Transition::Refused { reason, .. } => reason,
        other => panic!("expected refused, got {other:?}"),
    };
    delegation_in(&store, "done", Completed, t0).await;
    assert_eq!(
        reason(set(&store, "done", Failed, t0).await),
        "completed is terminal; a finished delegation never moves again"
    );
    delegation_in(&store, "busy", InProgress, t0).await;
    assert_eq!(
        reason(set(&store, "busy", Dispatched, t0).await),
        "in_progress → dispatched would move backwards"
    );
    assert_eq!(
        reason(set(&store, "busy", Queued, t0).await),
        "only a stuck delegation can be retried back to queued; this one is in_progress"
    );
    delegation_in(&store, "wedged", Stuck, t0).await;
    assert_eq!(
        reason(set(&store, "wedged", Completed, t0).await),
        "stuck is terminal; the only way out is a retry back to queued, not completed"
    );
}

async fn a_status_change_keeps_detail_it_is_not_given(store: Store) {
    let t0 = at(2026, 6, 1, 12, 0, 0);
    delegation_in(&store, "d", Queued, t0).await;
    store
        .set_delegation_status(
            "d",
            &StatusChange {
                to: InProgress,
                error_detail: Some("slow start".into()),
                result: None,
            },
            t0,
        )
        .await
        .unwrap();
    let Transition::Applied { delegation, .. } = store
        .set_delegation_status(
            "d",
            &StatusChange {
                to: Completed,
                error_detail: None,
                result: Some("42".into()),
            },
            t0,
        )
        .await
        .unwrap()
    else {
        panic!("completion not applied")
    };
    assert_eq!(delegation.error_detail.as_deref(), Some("slow start"));
    assert_eq!(delegation.result.as_deref(), Some("42"));
}

async fn a_retried_stuck_delegation_starts_a_fresh_stuck_clock(store: Store) {
    let t0 = at(2026, 6, 1, 12, 0, 0);
    store
        .create_delegation(&(new("d", "w")).prepare(t0).unwrap(), t0)
        .await
        .unwrap();
    let threshold = Span::minutes(10);
    let t1 = t0 + Span::minutes(11);
    let stuck = store.mark_stale_stuck(t1 - threshold, t1).await.unwrap();
    assert_eq!(stuck.len(), 1);

    let t2 = t0 + Span::minutes(30);
    let Transition::Applied { from, delegation } = set(&store, "d", Queued, t2).await else {
        panic!("retry not applied")
    };
    assert_eq!((from, delegation.status), (Stuck, Queued));
    assert_eq!(
        delegation.last_heartbeat,
        Some(t2),
        "the clock restarts at the retry"
    );
    assert_eq!(delegation.error_detail, None, "the old verdict is cleared");

    // One threshold after the retry it is not yet stuck; just past it, it is.
    let t3 = t2 + threshold;
    assert!(store
        .mark_stale_stuck(t3 - threshold, t3)
        .await
        .unwrap()
        .is_empty());
    let t4 = t3 + Span::seconds(1);
    assert_eq!(
        store
            .mark_stale_stuck(t4 - threshold, t4)
            .await
            .unwrap()
            .len(),
        1
    );
}

async fn an_unknown_delegation_is_not_found(store: Store) {
    let t0 = at(2026, 6, 1, 12, 0, 0);
    let err = store
        .set_delegation_status("ghost", &StatusChange::to(Completed), t0)
        .await
        .unwrap_err();
    assert!(
        matches!(err, StoreError::NotFound { what: "delegation", ref id } if id == "ghost"),
        "{err}"
    );
    let err = store.beat_delegation("ghost", t0).await.unwrap_err();
    assert_eq!(err.to_string(), "delegation \"ghost\" not found");
}

async fn heartbeats_stamp_only_in_flight_delegations(store: Store) {
    let t0 = at(2026, 6, 1, 12, 0, 0);
    let t1 = t0 + Span::minutes(1);
    for status in DelegationStatus::ALL {
        let id = format!("beat-{status}");
        delegation_in(&store, &id, status, t0).await;
        let before = store.get_delegation(&id).await.unwrap().unwrap();
        let outcome = store.beat_delegation(&id, t1).await.unwrap();
        if status.is_in_flight() {
            let DelegationBeatOutcome::Stamped { delegation } = outcome else {
                panic!("{id}: in flight but not stamped: {outcome:?}");
            };
            assert_eq!(delegation.last_heartbeat, Some(t1));
            assert_eq!(delegation.status, status, "a beat never changes the status");
        } else {
            assert_eq!(
                outcome,
                DelegationBeatOutcome::Refused {
                    status,
                    reason: format!(
                        "delegation is {status}; only an in-flight delegation takes heartbeats"
                    ),
                }
            );
            assert_eq!(store.get_delegation(&id).await.unwrap().unwrap(), before);
        }
    }
    // A late beat carrying an older instant never moves the last beat backwards.
    store.beat_delegation("beat-queued", t0).await.unwrap();
    let d = store.get_delegation("beat-queued").await.unwrap().unwrap();
    assert_eq!(d.last_heartbeat, Some(t1));
}

async fn list_by_status_is_oldest_first_and_limited(store: Store) {
    let t0 = at(2026, 6, 1, 12, 0, 0);
    for (i, id) in ["c", "a", "b"].iter().enumerate() {
        store
            .create_delegation(
                &(new(id, "w"))
                    .prepare(t0 + Span::seconds(i as i64))
                    .unwrap(),
                t0 + Span::seconds(i as i64),
            )
            .await
            .unwrap();
    }
    set(&store, "a", Completed, t0).await;
    let ids = |v: Vec<ringmaster::model::delegation::Delegation>| {
        v.into_iter().map(|d| d.id).collect::<Vec<_>>()
    };
    assert_eq!(
        ids(store.list_delegations(Queued, 10).await.unwrap()),
        vec!["c", "b"]
    );
    assert_eq!(
        ids(store.list_delegations(Queued, 1).await.unwrap()),
        vec!["c"]
    );
    assert_eq!(
        ids(store.list_delegations(Completed, 10).await.unwrap()),
        vec!["a"]
    );
    assert!(store.list_delegations(Stuck, 10).await.unwrap().is_empty());
}

async fn the_sweep_rules_fail_the_late_and_flag_the_silent(store: Store) {
    let t0 = at(2026, 6, 1, 12, 0, 0);
    let threshold = Span::minutes(10);
    let deadline_soon = |id: &str, minutes| NewDelegation {
        deadline: Some(t0 + Span::minutes(minutes)),
        ..new(id, "w")
    };
    // Late and beating: failed by the deadline.
    store
        .create_delegation(&(deadline_soon("late", 5)).prepare(t0).unwrap(), t0)
        .await
        .unwrap();
    // Late and silent too: the deadline wins.
    store
        .create_delegation(
            &(deadline_soon("late-and-silent", 5)).prepare(t0).unwrap(),
            t0,
        )
        .await
        .unwrap();
    // Silent since its last beat.
    store
        .create_delegation(&(new("silent", "w")).prepare(t0).unwrap(), t0)
        .await
        .unwrap();
    // Never beat: judged from creation.
    store
        .create_delegation(&(new("never-beat", "w")).prepare(t0).unwrap(), t0)
        .await
        .unwrap();
    // Beating: untouched.
    store
        .create_delegation(&(new("alive", "w")).prepare(t0).unwrap(), t0)
        .await
        .unwrap();
    // Finished: untouched even though late and silent.
    store
        .create_delegation(&(deadline_soon("done", 5)).prepare(t0).unwrap(), t0)
        .await
        .unwrap();
    set(&store, "done", Completed, t0).await;
    for id in ["late", "silent"] {
        set(&store, id, InProgress, t0).await;
    }
    store
        .beat_delegation("silent", t0 + Span::minutes(1))
        .await
        .unwrap();

    let now = t0 + Span::minutes(12);
    store.beat_delegation("late", now).await.unwrap();
    store
        .beat_delegation("alive", now - Span::minutes(1))
        .await
        .unwrap();

    let mut failed = store.fail_past_deadline(now).await.unwrap();
    failed.sort_by(|a, b| a.id.cmp(&b.id));
    let failed: Vec<_> = failed
        .iter()
        .map(|s| (s.id.as_str(), s.from, s.to, s.reason.as_str()))
        .collect();
    assert_eq!(
        failed,
        vec![
            ("late", InProgress, Failed, DEADLINE_EXCEEDED),
            ("late-and-silent", Queued, Failed, DEADLINE_EXCEEDED),
        ]
    );
    let mut stuck = store.mark_stale_stuck(now - threshold, now).await.unwrap();
    stuck.sort_by(|a, b| a.id.cmp(&b.id));
    let stuck: Vec<_> = stuck
        .iter()
        .map(|s| (s.id.as_str(), s.from, s.to, s.reason.as_str()))
        .collect();
    assert_eq!(
        stuck,
        vec![
            (
                "never-beat",
                Queued,
                Stuck,
                "no heartbeat for 720s (never beat)"
            ),
            ("silent", InProgress, Stuck, "no heartbeat for 660s"),
        ]
    );
    let status = |id: &'static str| {
        let store = store.clone();
        async move { store.get_delegation(id).await.unwrap().unwrap() }
    };
    let late = status("late").await;
    assert_eq!(
        (late.status, late.error_detail.as_deref(), late.updated_at),
        (Failed, Some(DEADLINE_EXCEEDED), now)
    );
    assert_eq!(status("alive").await.status, Queued);
    assert_eq!(status("done").await.status, Completed);

    // Idempotent: the same sweep again changes nothing.
    assert!(store.fail_past_deadline(now).await.unwrap().is_empty());
    assert!(store
        .mark_stale_stuck(now - threshold, now)
        .await
        .unwrap()
        .is_empty());
}

async fn the_stuck_rule_leaves_past_deadline_rows_to_the_deadline_rule(store: Store) {
    let t0 = at(2026, 6, 1, 12, 0, 0);
    store
        .create_delegation(
            &(NewDelegation {
                deadline: Some(t0 + Span::minutes(5)),
                ..new("late-and-silent", "w")
            })
            .prepare(t0)
            .unwrap(),
            t0,
        )
        .await
        .unwrap();
    let now = t0 + Span::hours(1);
    // Even run first (the deadline rule failed), the stuck rule leaves it.
    assert!(store
        .mark_stale_stuck(now - Span::minutes(10), now)
        .await
        .unwrap()
        .is_empty());
    assert_eq!(store.fail_past_deadline(now).await.unwrap().len(), 1);
}

async fn exactly_at_the_threshold_or_deadline_is_not_yet_late(store: Store) {
    let t0 = at(2026, 6, 1, 12, 0, 0);
    let threshold = Span::minutes(10);
    store
        .create_delegation(
            &(NewDelegation {
                deadline: Some(t0 + threshold),
                ..new("edge", "w")
            })
            .prepare(t0)
            .unwrap(),
            t0,
        )
        .await
        .unwrap();
    store
        .create_delegation(&(new("quiet", "w")).prepare(t0).unwrap(), t0)
        .await
        .unwrap();
    let now = t0 + threshold;
    assert!(store.fail_past_deadline(now).await.unwrap().is_empty());
    assert!(store
        .mark_stale_stuck(now - threshold, now)
        .await
        .unwrap()
        .is_empty());
    let later = now + Span::milliseconds(1);
    assert_eq!(store.fail_past_deadline(later).await.unwrap()[0].id, "edge");
    assert_eq!(
        store
            .mark_stale_stuck(later - threshold, later)
            .await
            .unwrap()[0]
            .id,
        "quiet"
    );
}

#[test]
fn statuses_round_trip_through_their_names() {
    for status in DelegationStatus::ALL {
        assert_eq!(DelegationStatus::from_name(status.as_str()), Some(status));
        assert_eq!(
            serde_json::to_value(status).unwrap(),
            serde_json::Value::String(status.as_str().into())
        );
    }
    assert_eq!(
        DelegationStatus::parse_field("status", "done").unwrap_err().to_string(),
        "status: unknown delegation status \"done\": expected one of queued, dispatched, in_progress, completed, failed, stuck, cancelled"
    );
    assert_eq!(DelegationStatus::from_name("done"), None);
}

backend_tests!(
    create_defaults_and_is_idempotent,
    every_transition_is_applied_or_refused_as_the_state_machine_says,
    refusals_say_why,
    a_status_change_keeps_detail_it_is_not_given,
    a_retried_stuck_delegation_starts_a_fresh_stuck_clock,
    an_unknown_delegation_is_not_found,
    heartbeats_stamp_only_in_flight_delegations,
    list_by_status_is_oldest_first_and_limited,
    the_sweep_rules_fail_the_late_and_flag_the_silent,
    the_stuck_rule_leaves_past_deadline_rows_to_the_deadline_rule,
    exactly_at_the_threshold_or_deadline_is_not_yet_late,
);
