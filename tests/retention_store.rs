//! Retention's store operations on both backends: what goes, what stays,
//! batches bounded, and two prunes at once deleting each row once.

mod support;

use chrono::{DateTime, Duration as Span, Utc};
use ringmaster::model::a2a::a2a_message;
use ringmaster::model::delegation::{DelegationStatus, NewDelegation, StatusChange};
use ringmaster::model::outcome::DispatchResult;
use ringmaster::model::queue::{NewQueueItem, QueueStatus};
use ringmaster::model::retention::{DELEGATIONS_FINISHED, QUEUE_COMPLETED, QUEUE_FAILED};
use ringmaster::model::run::{RunOutcome, SlotClaim};
use ringmaster::model::schedule::NewSchedule;
use ringmaster::store::{SlotFire, Store};
use support::{at, finish};

fn t0() -> DateTime<Utc> {
    at(2026, 6, 1, 0, 0, 0)
}

/// `n` items of `ws` enqueued and delivered at `when`.
async fn completed(store: &Store, ws: &str, n: usize, when: DateTime<Utc>) -> Vec<i64> {
    let mut ids = Vec::new();
    for i in 0..n {
        let key = format!("{ws}-{}-{i}", when.timestamp());
        let item = NewQueueItem::new(ws, a2a_message(&key, "x")).key(&key);
        ids.push(store.enqueue(&item, 5, when).await.unwrap().id);
    }
    let ok = DispatchResult::Delivered {
        response: "{}".into(),
    };
    assert_eq!(finish(store, ws, n as u32, &ok, when).await.len(), n);
    ids
}

/// An item of workspace `f` that failed its only attempt at `when`.
async fn failed_item(store: &Store, when: DateTime<Utc>) -> i64 {
    let id = store
        .enqueue(&NewQueueItem::new("f", "{}"), 1, when)
        .await
        .unwrap()
        .id;
    let error = DispatchResult::Error {
        message: "HTTP 500".into(),
    };
    assert_eq!(finish(store, "f", 1, &error, when).await, vec![id]);
    id
}

async fn status_of(store: &Store, id: i64) -> Option<QueueStatus> {
    store.get_queue_item(id).await.unwrap().map(|i| i.status)
}

async fn queue_items_go_after_their_retention_and_active_ones_never(store: Store) {
    let old = completed(&store, "w", 3, t0()).await;
    let recent = completed(&store, "w", 2, t0() + Span::hours(20)).await;
    // A failed item, and a queued one older than any cutoff.
    let failed = failed_item(&store, t0()).await;
    let waiting = store
        .enqueue(&NewQueueItem::new("w", "{}"), 5, t0() - Span::days(30))
        .await
        .unwrap()
        .id;
    let cutoff = t0() + Span::hours(1);
    // Only end states are ever pruned, whatever is asked.
    let none = store
        .prune_queue(&[QueueStatus::Queued, QueueStatus::Dispatched], cutoff, 100)
        .await
        .unwrap();
    assert_eq!(none, 0);
    // A bounded batch, oldest first.
    assert_eq!(
        store
            .prune_queue(&QUEUE_COMPLETED, cutoff, 2)
            .await
            .unwrap(),
        2
    );
    assert_eq!(
        store
            .prune_queue(&QUEUE_COMPLETED, cutoff, 100)
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        store
            .prune_queue(&QUEUE_COMPLETED, cutoff, 100)
            .await
            .unwrap(),
        0
    );
    for id in &old {
        assert_eq!(status_of(&store, *id).await, None);
    }
    for id in &recent {
        assert_eq!(status_of(&store, *id).await, Some(QueueStatus::Completed));
    }
    // The failed retention is another list of statuses, with its own cutoff.
    assert_eq!(status_of(&store, failed).await, Some(QueueStatus::Failed));
    assert_eq!(
        store.prune_queue(&QUEUE_FAILED, t0(), 100).await.unwrap(),
        0
    );
    assert_eq!(
        store.prune_queue(&QUEUE_FAILED, cutoff, 100).await.unwrap(),
        1
    );
    assert_eq!(status_of(&store, failed).await, None);
    assert_eq!(status_of(&store, waiting).await, Some(QueueStatus::Queued));
    // Its key is free again once the item is gone (kept only while kept).
    let key = format!("w-{}-0", t0().timestamp());
    let again = store
        .enqueue(
            &NewQueueItem::new("w", "{}").key(&key),
            5,
            t0() + Span::days(1),
        )
        .await
        .unwrap();
    assert!(!again.deduplicated);
}

async fn a_fire_whose_run_waits_for_its_outcome_keeps_its_item(store: Store) {
    let s = store
        .create_schedule(&NewSchedule::new("w", "n", "* * * * *", "p"), t0())
        .await
        .unwrap();
    let slot = s.next_run_at.unwrap();
    let key = format!("cron:{}:{}", s.id, slot.timestamp());
    let fire = SlotFire {
        claim: SlotClaim {
            schedule_id: s.id,
            workspace: "w".into(),
            slot,
            next: slot + Span::minutes(1),
            key: key.clone(),
            missed: None,
        },
        item: Some(NewQueueItem::new("w", a2a_message(&key, "p")).key(&key)),
    };
    store.claim_slots(&[fire], 5, slot).await.unwrap();
    let ok = DispatchResult::Delivered {
        response: "{}".into(),
    };
    assert_eq!(finish(&store, "w", 1, &ok, slot).await.len(), 1);
    let later = slot + Span::days(2);
    // The run is still `dispatched` (its outcome event was lost): the item stays.
    assert_eq!(
        store
            .prune_queue(&QUEUE_COMPLETED, later, 100)
            .await
            .unwrap(),
        0
    );
    store
        .finish_runs(
            &[(
                key,
                RunOutcome::Completed {
                    summary: "ok".into(),
                    empty: false,
                },
            )],
            slot,
        )
        .await
        .unwrap();
    assert_eq!(
        store
            .prune_queue(&QUEUE_COMPLETED, later, 100)
            .await
            .unwrap(),
        1
    );
}

async fn runs_go_after_their_retention_but_each_schedule_keeps_its_newest(store: Store) {
    let s = store
        .create_schedule(&NewSchedule::new("w", "n", "* * * * *", "p"), t0())
        .await
        .unwrap();
    let mut slot = s.next_run_at.unwrap();
    let mut keys = Vec::new();
    for _ in 0..15 {
        let key = format!("cron:{}:{}", s.id, slot.timestamp());
        let claim = SlotFire {
            claim: SlotClaim {
                schedule_id: s.id,
                workspace: "w".into(),
                slot,
                next: slot + Span::minutes(1),
                key: key.clone(),
                missed: None,
            },
            item: None,
        };
        store.claim_slots(&[claim], 5, slot).await.unwrap();
        store
            .finish_runs(
                &[(key.clone(), RunOutcome::Failed { error: "e".into() })],
                slot,
            )
            .await
            .unwrap();
        keys.push(key);
        slot += Span::minutes(1);
    }
    let everything = slot + Span::days(1);
    assert_eq!(store.prune_runs(everything, 10, 3).await.unwrap(), 3);
    assert_eq!(store.prune_runs(everything, 10, 100).await.unwrap(), 2);
    assert_eq!(store.prune_runs(everything, 10, 100).await.unwrap(), 0);
    let left = store.list_runs(s.id, 100).await.unwrap();
    assert_eq!(left.len(), 10);
    let kept: Vec<&String> = left.iter().map(|r| &r.key).collect();
    for key in &keys[5..] {
        assert!(kept.contains(&key), "{key} is among the newest ten");
    }
    // Nothing older than the cutoff: nothing goes.
    assert_eq!(store.prune_runs(t0(), 0, 100).await.unwrap(), 0);
}

async fn finished_delegations_go_and_stuck_ones_stay(store: Store) {
    let mut ids = Vec::new();
    for (i, end) in [
        DelegationStatus::Completed,
        DelegationStatus::Failed,
        DelegationStatus::Cancelled,
        DelegationStatus::Stuck,
        DelegationStatus::InProgress,
    ]
    .into_iter()
    .enumerate()
    {
        let id = format!("d{i}");
        let new = NewDelegation {
            id: Some(id.clone()),
            caller_workspace_id: None,
            workspace_id: "w".into(),
            deadline: None,
        };
        store
            .create_delegation(&new.prepare(t0()).unwrap(), t0())
            .await
            .unwrap();
        if end == DelegationStatus::Stuck {
            store
                .set_delegation_status(&id, &StatusChange::to(DelegationStatus::InProgress), t0())
                .await
                .unwrap();
        }
        store
            .set_delegation_status(&id, &StatusChange::to(end), t0())
            .await
            .unwrap();
        ids.push(id);
    }
    let later = t0() + Span::days(8);
    assert_eq!(
        store
            .prune_delegations(&DELEGATIONS_FINISHED, later, 100)
            .await
            .unwrap(),
        3
    );
    for (i, id) in ids.iter().enumerate() {
        let found = store.get_delegation(id).await.unwrap().is_some();
        assert_eq!(found, i >= 3, "{id}");
    }
}

/// Prune completed items in batches of 25 until a batch finds none.
async fn prune_all(store: &Store, cutoff: DateTime<Utc>) -> u64 {
    let mut n = 0;
    loop {
        let got = store
            .prune_queue(&QUEUE_COMPLETED, cutoff, 25)
            .await
            .unwrap();
        if got == 0 {
            return n;
        }
        n += got;
    }
}

async fn two_prunes_at_once_delete_each_row_once(store: Store) {
    completed(&store, "w", 300, t0()).await;
    let cutoff = t0() + Span::hours(1);
    let (a, b) = tokio::join!(prune_all(&store, cutoff), prune_all(&store, cutoff));
    assert_eq!(a + b, 300, "{a} + {b}");
    assert!(store.queue_counts().await.unwrap().is_empty());
}

backend_tests!(
    queue_items_go_after_their_retention_and_active_ones_never,
    a_fire_whose_run_waits_for_its_outcome_keeps_its_item,
    runs_go_after_their_retention_but_each_schedule_keeps_its_newest,
    finished_delegations_go_and_stuck_ones_stay,
    two_prunes_at_once_delete_each_row_once,
    space_is_reclaimed_after_a_prune_without_touching_live_rows,
);

/// `reclaim` (VACUUM on Postgres) runs outside any transaction, while items
/// are written, and leaves every live row as it was.
async fn space_is_reclaimed_after_a_prune_without_touching_live_rows(store: Store) {
    let t0 = at(2026, 9, 1, 12, 0, 0);
    completed(&store, "w", 20, t0).await;
    let keep = store
        .enqueue(&NewQueueItem::new("w", a2a_message("live", "p")), 3, t0)
        .await
        .unwrap()
        .id;
    prune_all(&store, t0 + Span::seconds(1)).await;
    let writer = {
        let store = store.clone();
        tokio::spawn(async move {
            for n in 0..20 {
                let item = NewQueueItem::new("w2", a2a_message(&format!("during-{n}"), "p"));
                store.enqueue(&item, 3, t0).await.unwrap();
            }
        })
    };
    store.reclaim().await.unwrap();
    store.reclaim().await.unwrap();
    writer.await.unwrap();
    assert_eq!(status_of(&store, keep).await, Some(QueueStatus::Queued));
    assert_eq!(store.queue_depth("w2").await.unwrap(), 20);
}
