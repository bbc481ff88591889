//! The QueueDrainActor, driven by messages on both backends: capacity,
//! misbehaving dispatchers, restarts, outcomes, and immediate delivery.

mod support;

use support::Ask;

use std::time::Duration;

use chrono::Duration as Span;
use ractor::ActorRef;
use ringmaster::dispatch::Behavior;
use ringmaster::messages::queue::{
    DrainTickReport, InFlightReport, QueueMsg, QueueOutcome, SendOutcome,
};
use ringmaster::model::a2a::a2a_message;
use ringmaster::model::queue::{Enqueued, NewQueueItem, QueueStatus};
use ringmaster::store::Store;
use support::{at, eventually, quiet_config, Harness};

fn t0() -> chrono::DateTime<chrono::Utc> {
    at(2026, 6, 1, 8, 0, 0)
}

fn queue(h: &Harness) -> ActorRef<QueueMsg> {
    h.ringmaster.queue().unwrap()
}

async fn enqueue(h: &Harness, item: NewQueueItem) -> Enqueued {
    queue(h)
        .ask(|reply| QueueMsg::Enqueue {
            item,
            reply: Some(reply),
        })
        .await
        .unwrap()
}

async fn status_of(store: &Store, id: i64) -> QueueStatus {
    store.get_queue_item(id).await.unwrap().unwrap().status
}

async fn wait_status(
    store: &Store,
    id: i64,
    want: QueueStatus,
) -> ringmaster::model::queue::QueueItem {
    eventually(10, &format!("item {id} becomes {want}"), || async {
        let item = store.get_queue_item(id).await.unwrap().unwrap();
        (item.status == want).then_some(item)
    })
    .await
}

async fn an_enqueue_for_a_workspace_with_room_is_delivered_at_once(store: Store) {
    let h = Harness::start(store, quiet_config(), t0()).await;
    let mut outcomes = h.ringmaster.queue_events().channel();
    h.register("w", 1, t0()).await;
    h.fake.set("w", Behavior::Reply("hello back".into()));
    let e = enqueue(
        &h,
        NewQueueItem::new("w", a2a_message("k1", "hi")).key("k1"),
    )
    .await;
    let done = wait_status(h.store(), e.id, QueueStatus::Completed).await;
    assert!(done.response.unwrap().contains("hello back"));
    let QueueOutcome { item, .. } = tokio::time::timeout(Duration::from_secs(5), outcomes.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!((item.id, item.status), (e.id, QueueStatus::Completed));
    assert_eq!(
        h.fake.delivered(),
        vec![("w".to_string(), e.id, Some("k1".to_string()))]
    );
    h.ringmaster.shutdown().await;
}

async fn never_more_in_flight_than_the_workspace_has_room_for(store: Store) {
    let h = Harness::start(store, quiet_config(), t0()).await;
    h.register("w", 2, t0()).await;
    h.fake.set(
        "w",
        Behavior::Slow(Duration::from_millis(30), "done".into()),
    );
    let items: Vec<NewQueueItem> = (0..12)
        .map(|i| NewQueueItem::new("w", a2a_message(&format!("m{i}"), "x")))
        .collect();
    queue(&h)
        .ask(|reply| QueueMsg::EnqueueBatch {
            items,
            reply: Some(reply),
        })
        .await
        .unwrap();
    eventually(10, "all 12 delivered", || async {
        (h.fake.delivered().len() == 12).then_some(())
    })
    .await;
    assert_eq!(
        h.fake.max_in_flight("w"),
        2,
        "max_concurrent 2 means at most 2 at once"
    );
    eventually(
        10,
        "in-flight count back to zero once every outcome is in",
        || async {
            let in_flight = queue(&h)
                .call(QueueMsg::InFlight, Some(support::TIMEOUT))
                .await
                .ok()?
                .success_or(())
                .ok()?;
            (in_flight.total == 0 && in_flight.by_workspace.is_empty()).then_some(())
        },
    )
    .await;
    h.ringmaster.shutdown().await;
}

async fn reported_active_tasks_reduce_the_room(store: Store) {
    let h = Harness::start(store, quiet_config(), t0()).await;
    h.register("w", 3, t0()).await;
    h.beat("w", 3, 3).await; // full
    let e = enqueue(&h, NewQueueItem::new("w", a2a_message("a", "x"))).await;
    h.queue_tick(t0()).await;
    assert_eq!(
        status_of(h.store(), e.id).await,
        QueueStatus::Queued,
        "no room, no delivery"
    );
    assert_eq!(h.fake.calls(), 0);
    // A beat with room wakes the drain at once (no tick needed).
    h.beat("w", 2, 3).await;
    wait_status(h.store(), e.id, QueueStatus::Completed).await;
    h.ringmaster.shutdown().await;
}

async fn a_busy_answer_requeues_without_an_attempt_until_room_is_reported(store: Store) {
    let h = Harness::start(store, quiet_config(), t0()).await;
    // The start-up tick over first: a tick ends every busy parking by design,
    // and one still sweeping when the busy answer came back retried the item
    // at once (seen once in a loaded full run on Postgres).
    tick_report(&h, t0()).await;
    h.register("w", 1, t0()).await;
    h.fake.set("w", Behavior::Busy);
    let e = enqueue(&h, NewQueueItem::new("w", a2a_message("a", "x"))).await;
    let item = eventually(10, "busy answer recorded", || async {
        let item = h.store().get_queue_item(e.id).await.unwrap().unwrap();
        (item.last_error.is_some() && item.status == QueueStatus::Queued).then_some(item)
    })
    .await;
    assert_eq!(item.attempts, 0);
    assert_eq!(h.fake.calls(), 1, "a busy workspace is not hammered");
    h.fake.set("w", Behavior::Reply("finally".into()));
    h.beat("w", 0, 1).await;
    let done = wait_status(h.store(), e.id, QueueStatus::Completed).await;
    assert_eq!(done.attempts, 0);
    h.ringmaster.shutdown().await;
}

async fn a_panicking_dispatcher_is_an_error_and_the_actor_keeps_serving(store: Store) {
    let h = Harness::start(store, quiet_config(), t0()).await;
    h.register("bad", 1, t0()).await;
    h.register("good", 1, t0()).await;
    h.fake.set("bad", Behavior::Panic);
    let bad = enqueue(&h, NewQueueItem::new("bad", a2a_message("a", "x"))).await;
    let item = eventually(10, "panic recorded as an error", || async {
        let item = h.store().get_queue_item(bad.id).await.unwrap().unwrap();
        (item.attempts == 1).then_some(item)
    })
    .await;
    assert_eq!(item.status, QueueStatus::Queued, "retried later, not lost");
    assert_eq!(
        item.last_error.as_deref(),
        Some("dispatcher panicked: fake dispatcher told to panic for bad")
    );
    let good = enqueue(&h, NewQueueItem::new("good", a2a_message("b", "x"))).await;
    wait_status(h.store(), good.id, QueueStatus::Completed).await;
    let children = h.ringmaster.children().await.unwrap();
    assert!(
        children.iter().all(|c| c.restarts == 0),
        "a dispatcher panic is not an actor crash: {children:?}"
    );
    h.ringmaster.shutdown().await;
}

async fn a_hanging_dispatcher_times_out_and_garbage_is_a_clear_error(store: Store) {
    let h = Harness::start(store, quiet_config(), t0()).await;
    h.register("hang", 1, t0()).await;
    h.register("junk", 1, t0()).await;
    h.fake.set("hang", Behavior::Hang);
    h.fake.set("junk", Behavior::Garbage);
    let hang = enqueue(&h, NewQueueItem::new("hang", a2a_message("a", "x"))).await;
    let junk = enqueue(&h, NewQueueItem::new("junk", a2a_message("b", "x"))).await;
    let hung = eventually(10, "timeout recorded", || async {
        let item = h.store().get_queue_item(hang.id).await.unwrap().unwrap();
        (item.attempts == 1).then_some(item)
    })
    .await;
    assert_eq!(
        hung.last_error.as_deref(),
        Some("delivery timed out after 1s")
    );
    let junked = eventually(10, "garbage recorded", || async {
        let item = h.store().get_queue_item(junk.id).await.unwrap().unwrap();
        (item.attempts == 1).then_some(item)
    })
    .await;
    assert_eq!(
        junked.last_error.as_deref(),
        Some("workspace answered HTTP 200 with a body that is not JSON: <<definitely not json")
    );
    h.ringmaster.shutdown().await;
}

async fn errors_back_off_then_fail_with_an_outcome_event(store: Store) {
    let config = ringmaster::config::Config {
        queue_max_attempts: 2,
        ..quiet_config()
    };
    let h = Harness::start(store, config, t0()).await;
    let mut outcomes = h.ringmaster.queue_events().channel();
    h.register("w", 1, t0()).await;
    h.fake.set("w", Behavior::Error("upstream exploded".into()));
    let e = enqueue(&h, NewQueueItem::new("w", a2a_message("a", "x"))).await;
    let first = eventually(10, "first failure", || async {
        let item = h.store().get_queue_item(e.id).await.unwrap().unwrap();
        (item.attempts == 1).then_some(item)
    })
    .await;
    assert_eq!(
        first.available_at,
        t0() + Span::seconds(2),
        "2 s backoff after the first failure"
    );
    h.queue_tick(t0() + Span::seconds(1)).await;
    assert_eq!(h.fake.calls(), 1, "not retried before its backoff");
    h.clock.set(t0() + Span::seconds(2));
    h.queue_tick(t0() + Span::seconds(2)).await;
    let failed = wait_status(h.store(), e.id, QueueStatus::Failed).await;
    assert_eq!(
        failed.last_error.as_deref(),
        Some("workspace answered HTTP 500: upstream exploded")
    );
    let event = tokio::time::timeout(Duration::from_secs(5), outcomes.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (event.item.id, event.item.status),
        (e.id, QueueStatus::Failed)
    );
    h.ringmaster.shutdown().await;
}

async fn ttl_expiry_on_tick_publishes_expired(store: Store) {
    let h = Harness::start(store, quiet_config(), t0()).await;
    let mut outcomes = h.ringmaster.queue_events().channel();
    h.register("w", 1, t0()).await;
    h.beat("w", 1, 1).await; // no room
    let e = enqueue(
        &h,
        NewQueueItem::new("w", a2a_message("a", "x")).ttl(Duration::from_secs(120)),
    )
    .await;
    h.queue_tick(t0() + Span::seconds(119)).await;
    assert_eq!(status_of(h.store(), e.id).await, QueueStatus::Queued);
    h.queue_tick(t0() + Span::seconds(120)).await;
    assert_eq!(status_of(h.store(), e.id).await, QueueStatus::Expired);
    let event = tokio::time::timeout(Duration::from_secs(5), outcomes.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (event.item.id, event.item.status),
        (e.id, QueueStatus::Expired)
    );
    assert_eq!(h.fake.calls(), 0);
    h.ringmaster.shutdown().await;
}

async fn items_survive_the_actor_dying_and_are_delivered_by_its_replacement(store: Store) {
    let h = Harness::start(store, quiet_config(), t0()).await;
    h.register("w", 1, t0()).await;
    h.beat("w", 1, 1).await; // no room yet
    let ids: Vec<i64> = {
        let mut ids = Vec::new();
        for i in 0..3 {
            ids.push(
                enqueue(
                    &h,
                    NewQueueItem::new("w", a2a_message(&format!("m{i}"), "x")),
                )
                .await
                .id,
            );
        }
        ids
    };
    let old = queue(&h);
    old.kill();
    let replacement = eventually(10, "queue drain restarted", || async {
        h.ringmaster
            .queue()
            .ok()
            .filter(|q| q.get_id() != old.get_id())
    })
    .await;
    let children = h.ringmaster.children().await.unwrap();
    assert_eq!(
        children
            .iter()
            .find(|c| c.role == "queue-drain")
            .unwrap()
            .restarts,
        1
    );
    for id in &ids {
        assert_eq!(
            status_of(h.store(), *id).await,
            QueueStatus::Queued,
            "still there after the crash"
        );
    }
    drop(replacement);
    h.beat("w", 0, 1).await;
    for id in ids {
        wait_status(h.store(), id, QueueStatus::Completed).await;
    }
    h.ringmaster.shutdown().await;
}

async fn lease_rescue_brings_back_what_a_vanished_node_claimed(store: Store) {
    let h = Harness::start(store.clone(), quiet_config(), t0()).await;
    h.register("w", 1, t0()).await;
    h.beat("w", 1, 1).await; // keep this node from delivering
    let e = enqueue(&h, NewQueueItem::new("w", a2a_message("a", "x"))).await;
    // Another node claims it and vanishes.
    let claimed = store
        .claim(ringmaster::store::Claim {
            workspace: "w",
            limit: 1,
            now: t0(),
            lease_until: t0() + Span::seconds(600),
            node: "vanished-node",
        })
        .await
        .unwrap();
    assert_eq!(claimed.len(), 1);
    h.beat("w", 0, 1).await;
    h.queue_tick(t0() + Span::seconds(599)).await;
    assert_eq!(
        status_of(&store, e.id).await,
        QueueStatus::Dispatched,
        "lease still held"
    );
    h.clock.set(t0() + Span::seconds(600));
    h.queue_tick(t0() + Span::seconds(600)).await;
    let done = wait_status(&store, e.id, QueueStatus::Completed).await;
    assert_eq!(done.attempts, 1, "the lost attempt is counted");
    h.ringmaster.shutdown().await;
}

async fn send_answers_the_response_when_delivered_at_once_or_queued(store: Store) {
    let h = Harness::start(store, quiet_config(), t0()).await;
    h.register("w", 1, t0()).await;
    h.fake.set("w", Behavior::Reply("at once".into()));
    let item = NewQueueItem::new("w", a2a_message("s1", "x")).key("s1");
    let first = match h.ringmaster.send(item.clone()).await.unwrap() {
        SendOutcome::Delivered { response, queue_id } => {
            assert!(response.contains("at once"), "{response}");
            queue_id
        }
        other => panic!("expected delivered, got {other:?}"),
    };
    // The same messageId again (a client retrying a request whose answer it
    // never saw): the same item and its recorded response, no second delivery.
    match h.ringmaster.send(item).await.unwrap() {
        SendOutcome::Delivered { queue_id, response } => {
            assert_eq!(queue_id, first);
            assert!(response.contains("at once"), "{response}");
        }
        other => panic!("expected the recorded delivery, got {other:?}"),
    }
    assert_eq!(h.fake.calls(), 1, "delivered once");
    h.beat("w", 1, 1).await;
    let item = NewQueueItem::new("w", a2a_message("s2", "x"));
    let out = h.ringmaster.send(item).await.unwrap();
    // The depth is an estimate, high by at most what was delivered since
    // the last count (s1 may still count).
    assert!(
        matches!(
            out,
            SendOutcome::Queued {
                queue_depth: 1..=2,
                ..
            }
        ),
        "{out:?}"
    );
    let bad = NewQueueItem::new("w", "{not json");
    let err = h.ringmaster.send(bad).await.unwrap_err();
    assert!(
        err.to_string().starts_with("body: is not valid JSON"),
        "{err}"
    );
    let unknown = NewQueueItem::new("nobody", a2a_message("s3", "x"));
    let err = h.ringmaster.send(unknown).await.unwrap_err();
    assert!(err.to_string().contains("not registered"), "{err}");
    h.ringmaster.shutdown().await;
}

/// One global delivery slot: the first item holds it (behind a closed gate)
/// and whatever else is claimed waits in the prefetch buffer.
fn one_slot() -> ringmaster::config::Config {
    ringmaster::config::Config {
        delivery_concurrency: 1,
        ..quiet_config()
    }
}

async fn in_flight(h: &Harness) -> InFlightReport {
    queue(h).ask(QueueMsg::InFlight).await
}

async fn tick_report(h: &Harness, now: chrono::DateTime<chrono::Utc>) -> DrainTickReport {
    h.queue_tick(now).await
}

/// Wait until the actor holds `running` deliveries and `buffered` prefetched items.
async fn wait_held(h: &Harness, running: u32, buffered: u32) {
    eventually(
        10,
        &format!("{running} in flight, {buffered} buffered"),
        || async {
            let r = in_flight(h).await;
            (r.total == running && r.buffered == buffered).then_some(())
        },
    )
    .await;
}

async fn token_of(store: &Store, id: i64) -> Option<String> {
    store.get_queue_item(id).await.unwrap().unwrap().lease_token
}

async fn enqueue_n(h: &Harness, ws: &str, n: usize) -> Vec<i64> {
    let mut ids = Vec::new();
    for i in 0..n {
        ids.push(
            enqueue(
                h,
                NewQueueItem::new(ws, a2a_message(&format!("{ws}-{i}"), "x")),
            )
            .await
            .id,
        );
    }
    ids
}

async fn with_prefetch_never_more_in_flight_than_the_room_anywhere(store: Store) {
    let config = ringmaster::config::Config {
        delivery_concurrency: 3,
        queue_prefetch: 8,
        ..quiet_config()
    };
    let h = Harness::start(store, config, t0()).await;
    h.register("a", 2, t0()).await;
    h.register("b", 1, t0()).await;
    h.register("c", 5, t0()).await;
    h.beat("c", 3, 5).await; // room 2: the agent says 3 of its 5 are busy
    for ws in ["a", "b", "c"] {
        h.fake
            .set(ws, Behavior::Slow(Duration::from_millis(3), "done".into()));
    }
    let items: Vec<NewQueueItem> = (0..90)
        .map(|i| NewQueueItem::new(["a", "b", "c"][i % 3], a2a_message(&format!("m{i}"), "x")))
        .collect();
    queue(&h)
        .ask(|reply| QueueMsg::EnqueueBatch {
            items,
            reply: Some(reply),
        })
        .await
        .unwrap();
    eventually(20, "all 90 delivered", || async {
        (h.fake.delivered().len() == 90).then_some(())
    })
    .await;
    assert!(
        h.fake.max_in_flight("a") <= 2,
        "a: {}",
        h.fake.max_in_flight("a")
    );
    assert!(
        h.fake.max_in_flight("b") <= 1,
        "b: {}",
        h.fake.max_in_flight("b")
    );
    assert!(
        h.fake.max_in_flight("c") <= 2,
        "c has room 2 (active_tasks 3 of 5): {}",
        h.fake.max_in_flight("c")
    );
    assert!(
        h.fake.max_total_in_flight() <= 3,
        "global limit 3: {}",
        h.fake.max_total_in_flight()
    );
    let mut ids: Vec<i64> = h.fake.delivered().into_iter().map(|d| d.1).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 90, "each item delivered once");
    wait_held(&h, 0, 0).await;
    h.ringmaster.shutdown().await;
}

async fn buffered_items_go_back_when_the_workspace_answers_busy(store: Store) {
    let h = Harness::start(store, one_slot(), t0()).await;
    h.register("w", 5, t0()).await;
    h.beat("w", 5, 5).await; // no room while we enqueue
    let ids = enqueue_n(&h, "w", 4).await;
    h.fake.set("w", Behavior::Busy);
    h.fake.close_gate("w");
    h.beat("w", 0, 5).await;
    // One slot: one delivery waits at the gate, the other three are buffered.
    wait_held(&h, 1, 3).await;
    for id in &ids {
        assert_eq!(status_of(h.store(), *id).await, QueueStatus::Dispatched);
    }
    h.fake.open_gate("w");
    eventually(10, "all four back in the queue, none held", || async {
        let r = in_flight(&h).await;
        let mut queued = 0;
        for id in &ids {
            let item = h.store().get_queue_item(*id).await.unwrap().unwrap();
            if item.status == QueueStatus::Queued && item.lease_token.is_none() {
                queued += 1;
            }
        }
        (queued == 4 && r.total == 0 && r.buffered == 0).then_some(())
    })
    .await;
    for id in &ids {
        let item = h.store().get_queue_item(*id).await.unwrap().unwrap();
        assert_eq!(item.attempts, 0, "neither busy nor a give-back counts");
    }
    assert_eq!(h.fake.calls(), 1, "the buffer did not hammer a busy agent");
    h.fake.set("w", Behavior::Reply("ok".into()));
    h.beat("w", 0, 5).await;
    for id in &ids {
        wait_status(h.store(), *id, QueueStatus::Completed).await;
    }
    assert_eq!(h.fake.delivered().len(), 4);
    h.ringmaster.shutdown().await;
}

async fn a_buffered_item_whose_ttl_passes_goes_back_and_expires(store: Store) {
    let h = Harness::start(store, one_slot(), t0()).await;
    let mut outcomes = h.ringmaster.queue_events().channel();
    h.register("w", 5, t0()).await;
    h.fake.close_gate("w");
    let first = enqueue(&h, NewQueueItem::new("w", a2a_message("a", "x"))).await;
    wait_held(&h, 1, 0).await;
    let short = enqueue(
        &h,
        NewQueueItem::new("w", a2a_message("b", "x")).ttl(Duration::from_secs(20)),
    )
    .await;
    wait_held(&h, 1, 1).await;
    assert_eq!(
        status_of(h.store(), short.id).await,
        QueueStatus::Dispatched
    );
    h.clock.set(t0() + Span::seconds(19));
    let report = tick_report(&h, t0() + Span::seconds(19)).await;
    assert_eq!((report.released, report.expired), (0, 0));
    h.clock.set(t0() + Span::seconds(20));
    let report = tick_report(&h, t0() + Span::seconds(20)).await;
    assert_eq!((report.released, report.expired), (1, 1));
    let gone = h.store().get_queue_item(short.id).await.unwrap().unwrap();
    assert_eq!((gone.status, gone.attempts), (QueueStatus::Expired, 0));
    let event = tokio::time::timeout(Duration::from_secs(5), outcomes.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (event.item.id, event.item.status),
        (short.id, QueueStatus::Expired)
    );
    assert_eq!(in_flight(&h).await.buffered, 0);
    h.fake.open_gate("w");
    wait_status(h.store(), first.id, QueueStatus::Completed).await;
    assert_eq!(
        h.fake
            .delivered()
            .into_iter()
            .map(|d| d.1)
            .collect::<Vec<_>>(),
        vec![first.id],
        "the expired item never went out"
    );
    h.ringmaster.shutdown().await;
}

async fn items_held_too_long_in_the_buffer_go_back_on_tick(store: Store) {
    let h = Harness::start(store, one_slot(), t0()).await;
    h.register("w", 5, t0()).await;
    h.fake.close_gate("w");
    let ids = enqueue_n(&h, "w", 2).await;
    wait_held(&h, 1, 1).await;
    let held = token_of(h.store(), ids[1]).await.unwrap();
    // The bound is a quarter of the lease (600 s), at most 30 s.
    let report = tick_report(&h, t0() + Span::seconds(29)).await;
    assert_eq!(report.released, 0);
    assert_eq!(
        token_of(h.store(), ids[1]).await.as_deref(),
        Some(held.as_str())
    );
    let report = tick_report(&h, t0() + Span::seconds(30)).await;
    assert_eq!(report.released, 1, "given back well inside its 600 s lease");
    // With one node it is claimed again at once, under a fresh lease.
    let again = eventually(10, "claimed again under a new lease", || async {
        let item = h.store().get_queue_item(ids[1]).await.unwrap().unwrap();
        (item.status == QueueStatus::Dispatched
            && item.lease_token.as_deref().is_some_and(|t| t != held))
        .then_some(item)
    })
    .await;
    assert_eq!(again.attempts, 0);
    h.fake.open_gate("w");
    for id in &ids {
        wait_status(h.store(), *id, QueueStatus::Completed).await;
    }
    let mut delivered: Vec<i64> = h.fake.delivered().into_iter().map(|d| d.1).collect();
    delivered.sort();
    assert_eq!(delivered, ids, "each delivered exactly once");
    h.ringmaster.shutdown().await;
}

async fn buffered_items_go_back_when_the_actor_stops(store: Store) {
    let h = Harness::start(store, one_slot(), t0()).await;
    h.register("w", 5, t0()).await;
    h.fake.close_gate("w");
    let ids = enqueue_n(&h, "w", 3).await;
    wait_held(&h, 1, 2).await;
    let before: Vec<Option<String>> = {
        let mut t = Vec::new();
        for id in &ids {
            t.push(token_of(h.store(), *id).await);
        }
        t
    };
    let old = queue(&h);
    old.stop_and_wait(Some("test stop".into()), None)
        .await
        .unwrap();
    // post_stop gave the buffer back; the replacement may claim it again,
    // but never under the old leases and without counting an attempt.
    for (id, token) in ids[1..].iter().zip(&before[1..]) {
        let item = h.store().get_queue_item(*id).await.unwrap().unwrap();
        assert_ne!(
            &item.lease_token, token,
            "item {id} still under the old lease"
        );
        assert_eq!(item.attempts, 0);
    }
    assert_eq!(
        token_of(h.store(), ids[0]).await,
        before[0],
        "the delivery in flight keeps its lease"
    );
    eventually(10, "queue drain restarted", || async {
        h.ringmaster
            .queue()
            .ok()
            .filter(|q| q.get_id() != old.get_id())
    })
    .await;
    h.fake.open_gate("w");
    h.queue_tick(t0()).await;
    for id in &ids {
        wait_status(h.store(), *id, QueueStatus::Completed).await;
    }
    let mut delivered: Vec<i64> = h.fake.delivered().into_iter().map(|d| d.1).collect();
    delivered.sort();
    assert_eq!(delivered, ids, "each delivered exactly once");
    wait_held(&h, 0, 0).await;
    h.ringmaster.shutdown().await;
}

async fn a_killed_actor_loses_its_buffer_safely_and_counts_recover(store: Store) {
    let h = Harness::start(store, one_slot(), t0()).await;
    h.register("w", 5, t0()).await;
    h.fake.close_gate("w");
    let ids = enqueue_n(&h, "w", 3).await;
    wait_held(&h, 1, 2).await;
    let before = [
        token_of(h.store(), ids[1]).await,
        token_of(h.store(), ids[2]).await,
    ];
    let old = queue(&h);
    old.kill(); // no post_stop: the dropped buffer gives the items back
    eventually(10, "queue drain restarted", || async {
        h.ringmaster
            .queue()
            .ok()
            .filter(|q| q.get_id() != old.get_id())
    })
    .await;
    // Given back (and perhaps claimed again by the replacement), never
    // under the old leases, no attempt counted.
    eventually(10, "buffered items out of the old leases", || async {
        let mut back = true;
        for (id, token) in ids[1..].iter().zip(&before) {
            let item = h.store().get_queue_item(*id).await.unwrap().unwrap();
            back &= item.lease_token != *token && item.attempts == 0;
        }
        back.then_some(())
    })
    .await;
    h.fake.open_gate("w");
    wait_status(h.store(), ids[0], QueueStatus::Completed).await;
    // The tick frees slots counted at restart for leases no longer held and
    // drains what came back.
    h.queue_tick(t0()).await;
    for id in &ids {
        wait_status(h.store(), *id, QueueStatus::Completed).await;
    }
    let mut delivered: Vec<i64> = h.fake.delivered().into_iter().map(|d| d.1).collect();
    delivered.sort();
    assert_eq!(delivered, ids, "each delivered exactly once");
    wait_held(&h, 0, 0).await;
    h.ringmaster.shutdown().await;
}

backend_tests!(
    a_batch_is_written_whole_or_not_at_all_with_estimated_depths,
    workspaces_starved_of_claim_budget_are_drained_when_a_claim_returns_empty,
    an_enqueue_for_a_workspace_with_room_is_delivered_at_once,
    never_more_in_flight_than_the_workspace_has_room_for,
    reported_active_tasks_reduce_the_room,
    a_busy_answer_requeues_without_an_attempt_until_room_is_reported,
    a_panicking_dispatcher_is_an_error_and_the_actor_keeps_serving,
    a_hanging_dispatcher_times_out_and_garbage_is_a_clear_error,
    errors_back_off_then_fail_with_an_outcome_event,
    ttl_expiry_on_tick_publishes_expired,
    items_survive_the_actor_dying_and_are_delivered_by_its_replacement,
    lease_rescue_brings_back_what_a_vanished_node_claimed,
    send_answers_the_response_when_delivered_at_once_or_queued,
    with_prefetch_never_more_in_flight_than_the_room_anywhere,
    buffered_items_go_back_when_the_workspace_answers_busy,
    a_buffered_item_whose_ttl_passes_goes_back_and_expires,
    items_held_too_long_in_the_buffer_go_back_on_tick,
    buffered_items_go_back_when_the_actor_stops,
    a_killed_actor_loses_its_buffer_safely_and_counts_recover,
);

async fn batch(h: &Harness, items: Vec<NewQueueItem>) -> Result<Vec<Enqueued>, String> {
    queue(h)
        .call(
            |reply| QueueMsg::EnqueueBatch {
                items,
                reply: Some(reply),
            },
            Some(support::TIMEOUT),
        )
        .await
        .map_err(|e| e.to_string())?
        .success_or("no answer")
        .map_err(|e| e.to_string())?
        .map_err(|e| e.to_string())
}

/// A batch goes through the ingest's writer as one transaction: answered in
/// input order with depths from the node's estimate (no count of the
/// queue per batch), and a batch with one bad item writes none of them.
async fn a_batch_is_written_whole_or_not_at_all_with_estimated_depths(store: Store) {
    let h = Harness::start(store.clone(), quiet_config(), t0()).await;
    // No such workspace registered: nothing is delivered, all stay queued.
    let items = |keys: &[&str]| -> Vec<NewQueueItem> {
        keys.iter()
            .map(|k| NewQueueItem::new("idle", a2a_message(k, "x")))
            .collect()
    };
    let first = batch(&h, items(&["a", "b", "c"])).await.unwrap();
    assert_eq!(first.len(), 3);
    assert!(first.windows(2).all(|w| w[0].id < w[1].id), "{first:?}");
    assert!(
        first.iter().all(|e| e.depth == 3 && !e.deduplicated),
        "{first:?}"
    );
    let second = batch(&h, items(&["d", "e"])).await.unwrap();
    assert!(second.iter().all(|e| e.depth == 5), "{second:?}");
    let mut bad = items(&["f", "g"]);
    bad.push(NewQueueItem::new("bad\0id", a2a_message("h", "x")));
    let refused = batch(&h, bad).await.unwrap_err();
    assert!(refused.contains("workspace"), "{refused}");
    assert_eq!(
        store.queue_depth("idle").await.unwrap(),
        5,
        "nothing of the bad batch"
    );
    h.ringmaster.shutdown().await;
}

/// A claim that holds the whole node budget and comes back empty must hand
/// the budget on at once: the workspaces that waited for it are drained
/// without any tick (ticks here are an hour apart).
async fn workspaces_starved_of_claim_budget_are_drained_when_a_claim_returns_empty(store: Store) {
    let config = ringmaster::config::Config {
        delivery_concurrency: 1,
        queue_prefetch: 1,
        ..quiet_config()
    };
    let h = Harness::start(store, config, t0()).await;
    h.register("idle", 10, t0()).await;
    for w in 0..5 {
        h.register(&format!("busy-{w}"), 10, t0()).await;
    }
    // A wake for a workspace with nothing to claim takes the budget…
    queue(&h)
        .cast(QueueMsg::Wake {
            workspace: "idle".into(),
        })
        .unwrap();
    // …while work arrives for the others.
    let items: Vec<NewQueueItem> = (0..5)
        .map(|w| NewQueueItem::new(format!("busy-{w}"), a2a_message(&format!("s{w}"), "x")))
        .collect();
    let enqueued = queue(&h)
        .ask(|reply| QueueMsg::EnqueueBatch {
            items,
            reply: Some(reply),
        })
        .await
        .unwrap();
    for e in enqueued {
        wait_status(h.store(), e.id, QueueStatus::Completed).await;
    }
    h.ringmaster.shutdown().await;
}
