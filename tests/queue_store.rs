//! Queue store conformance: the same assertions on SQLite and PostgreSQL.

mod support;

use std::time::Duration;

use chrono::{DateTime, Duration as Span, Utc};
use ringmaster::model::a2a::a2a_message;
use ringmaster::model::outcome::DispatchResult;
use ringmaster::model::queue::{NewQueueItem, Priority, QueueItem, QueueStatus};
use ringmaster::store::{Claim, Recorded, Store};
use support::at;

const MAX: u32 = 3;

fn item(ws: &str, text: &str) -> NewQueueItem {
    NewQueueItem::new(ws, a2a_message(text, text))
}

async fn claim(store: &Store, ws: &str, limit: u32, now: DateTime<Utc>) -> Vec<QueueItem> {
    store
        .claim(Claim {
            workspace: ws,
            limit,
            now,
            lease_until: now + Span::seconds(600),
            node: "node-a",
        })
        .await
        .unwrap()
}

fn applied(r: Recorded) -> QueueItem {
    match r {
        Recorded::Applied(item) => *item,
        Recorded::LeaseLost => panic!("lease unexpectedly lost"),
    }
}

async fn claims_by_priority_then_age(store: Store) {
    let t0 = at(2026, 2, 1, 0, 0, 0);
    let mut ids = Vec::new();
    for (i, p) in [
        Priority::INFO,
        Priority::TASK,
        Priority::CRITICAL,
        Priority::TASK,
        Priority::INFO,
    ]
    .into_iter()
    .enumerate()
    {
        let e = store
            .enqueue(
                &item("w", &format!("m{i}")).priority(p),
                MAX,
                t0 + Span::seconds(i as i64),
            )
            .await
            .unwrap();
        assert_eq!(e.depth, i as u64 + 1);
        assert!(!e.deduplicated);
        ids.push(e.id);
    }
    store.enqueue(&item("other", "x"), MAX, t0).await.unwrap();
    let now = t0 + Span::seconds(10);
    let first = claim(&store, "w", 3, now).await;
    assert_eq!(
        first.iter().map(|i| i.id).collect::<Vec<_>>(),
        vec![ids[2], ids[1], ids[3]]
    );
    assert!(first
        .iter()
        .all(|i| i.status == QueueStatus::Dispatched && i.claimed_by.as_deref() == Some("node-a")));
    let rest = claim(&store, "w", 10, now).await;
    assert_eq!(
        rest.iter().map(|i| i.id).collect::<Vec<_>>(),
        vec![ids[0], ids[4]]
    );
    assert!(
        claim(&store, "w", 10, now).await.is_empty(),
        "nothing is claimed twice"
    );
    assert_eq!(
        store.queue_depth("w").await.unwrap(),
        5,
        "dispatched items are still active"
    );
    assert_eq!(store.ready_workspaces(now).await.unwrap(), vec!["other"]);
}

async fn idempotency_key_names_one_item_while_it_is_kept(store: Store) {
    let t0 = at(2026, 2, 1, 0, 0, 0);
    let a = store
        .enqueue(&item("w", "a").key("k1"), MAX, t0)
        .await
        .unwrap();
    let b = store
        .enqueue(&item("w", "b").key("k1"), MAX, t0)
        .await
        .unwrap();
    assert_eq!(b.id, a.id);
    assert!(b.deduplicated);
    assert_eq!(b.depth, 1);
    // Same key, other workspace: a different item.
    let c = store
        .enqueue(&item("v", "c").key("k1"), MAX, t0)
        .await
        .unwrap();
    assert_ne!(c.id, a.id);

    // Still deduped while dispatched.
    let claimed = claim(&store, "w", 1, t0).await;
    assert_eq!(
        store
            .enqueue(&item("w", "again").key("k1"), MAX, t0)
            .await
            .unwrap()
            .id,
        a.id
    );
    // Once it ended, the key still names it: a retry finds its outcome.
    let token = claimed[0].lease_token.clone().unwrap();
    applied(
        support::record(
            &store,
            a.id,
            &token,
            &DispatchResult::Delivered {
                response: "{}".into(),
            },
            t0,
        )
        .await
        .unwrap(),
    );
    let d = store
        .enqueue(&item("w", "new").key("k1"), MAX, t0)
        .await
        .unwrap();
    assert_eq!((d.id, d.deduplicated), (a.id, true));
    assert_eq!(d.status, QueueStatus::Completed);
    assert_eq!(d.depth, 0, "nothing active");
    assert_eq!(b.status, QueueStatus::Queued);
}

async fn batch_enqueue_answers_in_order_with_dedupe(store: Store) {
    let t0 = at(2026, 2, 1, 0, 0, 0);
    let batch = vec![
        item("w", "1").key("a"),
        item("w", "2"),
        item("w", "3").key("a"),
        item("x", "4"),
    ];
    let out = store.enqueue_batch(&batch, MAX, t0).await.unwrap();
    assert_eq!(out.len(), 4);
    assert_eq!(out[2].id, out[0].id);
    assert!(out[2].deduplicated);
    assert_eq!(store.queue_depth("w").await.unwrap(), 2);
    assert_eq!(store.queue_depth("x").await.unwrap(), 1);
    let listed = store.list_queue("w", None, 10).await.unwrap();
    assert_eq!(
        listed.iter().map(|i| i.id).collect::<Vec<_>>(),
        vec![out[1].id, out[0].id],
        "newest first"
    );
    let mut counts = store.queue_counts().await.unwrap();
    counts.sort();
    assert_eq!(counts, vec![(QueueStatus::Queued, 3)]);
}

async fn batch_without_keys_answers_ids_in_order_and_depth_after_the_batch(store: Store) {
    let t0 = at(2026, 2, 1, 0, 0, 0);
    store.enqueue(&item("w", "old"), MAX, t0).await.unwrap();
    let batch = vec![
        item("w", "1"),
        item("x", "2").priority(Priority::CRITICAL),
        item("w", "3").ttl(Duration::from_secs(60)),
        item("w", "4").caller("me"),
    ];
    let out = store
        .enqueue_batch(&batch, MAX, t0 + Span::seconds(1))
        .await
        .unwrap();
    let ids: Vec<i64> = out.iter().map(|e| e.id).collect();
    let mut sorted = ids.clone();
    sorted.sort();
    assert_eq!(ids, sorted, "ids ascend in input order");
    assert_eq!(
        out.iter()
            .map(|e| (e.depth, e.deduplicated))
            .collect::<Vec<_>>(),
        vec![(4, false), (1, false), (4, false), (4, false)],
        "each item answers its workspace's depth after the batch"
    );
    let third = store.get_queue_item(ids[2]).await.unwrap().unwrap();
    assert_eq!(third.expires_at, Some(t0 + Span::seconds(61)));
    let fourth = store.get_queue_item(ids[3]).await.unwrap().unwrap();
    assert_eq!(
        (fourth.caller.as_deref(), fourth.max_attempts),
        (Some("me"), MAX as i32)
    );
    let second = store.get_queue_item(ids[1]).await.unwrap().unwrap();
    assert_eq!(
        (second.workspace.as_str(), second.priority),
        ("x", Priority::CRITICAL.0)
    );
    assert!(store.enqueue_batch(&[], MAX, t0).await.unwrap().is_empty());
}

async fn ttl_expiry_skips_and_then_expires(store: Store) {
    let t0 = at(2026, 2, 1, 0, 0, 0);
    let short = store
        .enqueue(&item("w", "short").ttl(Duration::from_secs(60)), MAX, t0)
        .await
        .unwrap();
    let long = store
        .enqueue(&item("w", "long").ttl(Duration::from_secs(600)), MAX, t0)
        .await
        .unwrap();
    let later = t0 + Span::seconds(61);
    // The claim skips the expired one even before the expiry sweep ran.
    let claimed = claim(&store, "w", 10, later).await;
    assert_eq!(
        claimed.iter().map(|i| i.id).collect::<Vec<_>>(),
        vec![long.id]
    );
    let expired = store.expire_due(later).await.unwrap();
    assert_eq!(
        expired.iter().map(|i| i.id).collect::<Vec<_>>(),
        vec![short.id]
    );
    assert_eq!(expired[0].status, QueueStatus::Expired);
    assert_eq!(expired[0].finished_at, Some(later));
    assert!(
        store.expire_due(later).await.unwrap().is_empty(),
        "expiry is idempotent"
    );
    // A dispatched item is not expired under its deliverer.
    assert!(store
        .expire_due(t0 + Span::seconds(700))
        .await
        .unwrap()
        .is_empty());
}

async fn busy_requeues_without_counting_an_attempt(store: Store) {
    let t0 = at(2026, 2, 1, 0, 0, 0);
    let e = store.enqueue(&item("w", "m"), MAX, t0).await.unwrap();
    for _ in 0..5 {
        let c = claim(&store, "w", 1, t0).await;
        let row = applied(
            support::record(
                &store,
                e.id,
                c[0].lease_token.as_deref().unwrap(),
                &DispatchResult::Busy {
                    reason: "no room".into(),
                },
                t0,
            )
            .await
            .unwrap(),
        );
        assert_eq!((row.status, row.attempts), (QueueStatus::Queued, 0));
        assert_eq!(row.last_error.as_deref(), Some("no room"));
        assert_eq!(row.available_at, t0, "busy keeps its place in line");
    }
}

async fn errors_back_off_and_end_failed_with_the_error_kept(store: Store) {
    let t0 = at(2026, 2, 1, 0, 0, 0);
    let e = store.enqueue(&item("w", "m"), MAX, t0).await.unwrap();
    let mut now = t0;
    for attempt in 1..=MAX {
        let c = claim(&store, "w", 1, now).await;
        assert_eq!(c.len(), 1, "attempt {attempt} is claimable");
        let retry_at = now + Span::seconds(2i64 << attempt);
        let row = applied(
            support::record(
                &store,
                e.id,
                c[0].lease_token.as_deref().unwrap(),
                &DispatchResult::Error {
                    message: format!("HTTP 500 #{attempt}"),
                },
                now,
            )
            .await
            .unwrap(),
        );
        assert_eq!(row.attempts, attempt as i32);
        assert_eq!(
            row.last_error.as_deref(),
            Some(format!("HTTP 500 #{attempt}").as_str())
        );
        if attempt < MAX {
            assert_eq!(row.status, QueueStatus::Queued);
            assert!(
                claim(&store, "w", 1, retry_at - Span::milliseconds(1))
                    .await
                    .is_empty(),
                "not before the backoff"
            );
            now = retry_at;
        } else {
            assert_eq!(row.status, QueueStatus::Failed);
            assert_eq!(row.finished_at, Some(now));
        }
    }
    assert!(
        claim(&store, "w", 1, now + Span::days(1)).await.is_empty(),
        "failed is final"
    );
    let stored = store.get_queue_item(e.id).await.unwrap().unwrap();
    assert_eq!(stored.last_error.as_deref(), Some("HTTP 500 #3"));
}

async fn outcomes_are_fenced_by_the_lease_token(store: Store) {
    let t0 = at(2026, 2, 1, 0, 0, 0);
    let e = store.enqueue(&item("w", "m"), MAX, t0).await.unwrap();
    let c = claim(&store, "w", 1, t0).await;
    let wrong = support::record(
        &store,
        e.id,
        "not-the-token",
        &DispatchResult::Delivered {
            response: "{}".into(),
        },
        t0,
    )
    .await
    .unwrap();
    assert_eq!(wrong, Recorded::LeaseLost);
    let right = applied(
        support::record(
            &store,
            e.id,
            c[0].lease_token.as_deref().unwrap(),
            &DispatchResult::Delivered {
                response: "{\"result\":1}".into(),
            },
            t0,
        )
        .await
        .unwrap(),
    );
    assert_eq!(right.status, QueueStatus::Completed);
    assert_eq!(right.response.as_deref(), Some("{\"result\":1}"));
    // A second outcome for the same claim changes nothing.
    let again = support::record(
        &store,
        e.id,
        c[0].lease_token.as_deref().unwrap(),
        &DispatchResult::Busy {
            reason: "late".into(),
        },
        t0,
    )
    .await
    .unwrap();
    assert_eq!(again, Recorded::LeaseLost);
}

async fn expired_leases_are_rescued_and_claimable_again(store: Store) {
    let t0 = at(2026, 2, 1, 0, 0, 0);
    let e = store.enqueue(&item("w", "m"), 2, t0).await.unwrap();
    let c = claim(&store, "w", 1, t0).await; // lease until t0 + 600 s
    assert!(store
        .rescue_expired_leases(t0 + Span::seconds(599))
        .await
        .unwrap()
        .is_empty());
    let rescued = store
        .rescue_expired_leases(t0 + Span::seconds(600))
        .await
        .unwrap();
    assert_eq!(rescued.len(), 1);
    assert_eq!(
        (rescued[0].status, rescued[0].attempts),
        (QueueStatus::Queued, 1)
    );
    assert!(
        rescued[0]
            .last_error
            .as_deref()
            .unwrap()
            .contains("lease held by node-a expired"),
        "{:?}",
        rescued[0].last_error
    );
    // The vanished node's late outcome is refused.
    let late = support::record(
        &store,
        e.id,
        c[0].lease_token.as_deref().unwrap(),
        &DispatchResult::Delivered {
            response: "{}".into(),
        },
        t0,
    )
    .await
    .unwrap();
    assert_eq!(late, Recorded::LeaseLost);
    // Claimed again; a second lost lease spends the last attempt.
    let t1 = t0 + Span::seconds(601);
    assert_eq!(claim(&store, "w", 1, t1).await.len(), 1);
    let rescued = store
        .rescue_expired_leases(t1 + Span::seconds(600))
        .await
        .unwrap();
    assert_eq!(
        (rescued[0].status, rescued[0].attempts),
        (QueueStatus::Failed, 2)
    );
    assert_eq!(store.dispatched_by("node-a").await.unwrap().len(), 0);
}

async fn concurrent_claims_never_share_an_item(store: Store) {
    let t0 = at(2026, 2, 1, 0, 0, 0);
    let batch: Vec<NewQueueItem> = (0..200).map(|i| item("w", &i.to_string())).collect();
    store.enqueue_batch(&batch, MAX, t0).await.unwrap();
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let mut mine = Vec::new();
            loop {
                let got = claim(&store, "w", 7, t0).await;
                if got.is_empty() {
                    return mine;
                }
                mine.extend(got.into_iter().map(|i| i.id));
            }
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.unwrap());
    }
    let total = all.len();
    all.sort();
    all.dedup();
    assert_eq!(
        (total, all.len()),
        (200, 200),
        "every item claimed exactly once"
    );
}

async fn release_gives_back_claimed_items_without_an_attempt_in_their_place(store: Store) {
    let t0 = at(2026, 2, 1, 0, 0, 0);
    let ids: Vec<i64> = {
        let mut ids = Vec::new();
        for i in 0..3 {
            let e = store
                .enqueue(&item("w", &format!("m{i}")), MAX, t0 + Span::seconds(i))
                .await
                .unwrap();
            ids.push(e.id);
        }
        ids
    };
    let held = claim(&store, "w", 3, t0 + Span::seconds(3)).await;
    assert_eq!(held.iter().map(|i| i.id).collect::<Vec<_>>(), ids);
    // Give back the first two (a node's buffer), keep the third in flight.
    let leases: Vec<(i64, String)> = held[..2]
        .iter()
        .map(|i| (i.id, i.lease_token.clone().unwrap()))
        .collect();
    let released = support::release(&store, &leases, t0 + Span::seconds(5))
        .await
        .unwrap();
    let mut got: Vec<(i64, QueueStatus, i32)> = released
        .iter()
        .map(|i| (i.id, i.status, i.attempts))
        .collect();
    got.sort();
    assert_eq!(
        got,
        vec![
            (ids[0], QueueStatus::Queued, 0),
            (ids[1], QueueStatus::Queued, 0)
        ],
        "back to queued, no attempt counted"
    );
    assert!(released.iter().all(|i| i.lease_token.is_none()
        && i.claimed_by.is_none()
        && i.lease_expires_at.is_none()));
    assert_eq!(
        store.get_queue_item(ids[2]).await.unwrap().unwrap().status,
        QueueStatus::Dispatched,
        "an item not named stays claimed"
    );
    // Claimable again, in their original place in the order.
    let again = claim(&store, "w", 5, t0 + Span::seconds(6)).await;
    assert_eq!(
        again.iter().map(|i| i.id).collect::<Vec<_>>(),
        ids[..2].to_vec()
    );
    // The old tokens are fenced out: releasing with them does nothing.
    assert!(support::release(&store, &leases, t0 + Span::seconds(7))
        .await
        .unwrap()
        .is_empty());
    assert_eq!(
        store.get_queue_item(ids[0]).await.unwrap().unwrap().status,
        QueueStatus::Dispatched
    );
}

async fn release_never_touches_finished_or_foreign_items(store: Store) {
    let t0 = at(2026, 2, 1, 0, 0, 0);
    let a = store.enqueue(&item("w", "a"), MAX, t0).await.unwrap();
    let b = store
        .enqueue(&item("w", "b"), MAX, t0 + Span::seconds(1))
        .await
        .unwrap();
    let held = claim(&store, "w", 2, t0 + Span::seconds(2)).await;
    let token = held[0].lease_token.clone().unwrap();
    applied(
        support::record(
            &store,
            a.id,
            &token,
            &DispatchResult::Delivered {
                response: "{}".into(),
            },
            t0 + Span::seconds(3),
        )
        .await
        .unwrap(),
    );
    let released = support::release(
        &store,
        &[(a.id, token.clone()), (b.id, "someone else's token".into())],
        t0 + Span::seconds(4),
    )
    .await
    .unwrap();
    assert!(released.is_empty(), "{released:?}");
    assert_eq!(
        store.get_queue_item(a.id).await.unwrap().unwrap().status,
        QueueStatus::Completed
    );
    assert_eq!(
        store.get_queue_item(b.id).await.unwrap().unwrap().status,
        QueueStatus::Dispatched
    );
    assert!(support::release(&store, &[], t0).await.unwrap().is_empty());
}

backend_tests!(
    claims_by_priority_then_age,
    idempotency_key_names_one_item_while_it_is_kept,
    batch_enqueue_answers_in_order_with_dedupe,
    batch_without_keys_answers_ids_in_order_and_depth_after_the_batch,
    ttl_expiry_skips_and_then_expires,
    busy_requeues_without_counting_an_attempt,
    errors_back_off_and_end_failed_with_the_error_kept,
    outcomes_are_fenced_by_the_lease_token,
    expired_leases_are_rescued_and_claimable_again,
    concurrent_claims_never_share_an_item,
    release_gives_back_claimed_items_without_an_attempt_in_their_place,
    release_never_touches_finished_or_foreign_items,
);
