//! The PrunerActor, driven by `Prune { now }` messages, on both backends:
//! it removes what is past retention, reports it, publishes it for the
//! metrics, and leaves everything younger.

mod support;

use std::time::Duration;

use chrono::Duration as Span;
use ractor::Actor;
use ringmaster::actors::pruner::{PrunerActor, PrunerArgs};
use ringmaster::events::EventBus;
use ringmaster::messages::pruner::{PruneReport, PrunerMsg};
use ringmaster::model::outcome::DispatchResult;
use ringmaster::model::queue::{NewQueueItem, QueueStatus};
use ringmaster::model::retention::Retention;
use ringmaster::names::Names;
use ringmaster::store::Store;
use support::{at, finish, manual_clock, Ask};

async fn prunes_what_is_past_retention_and_publishes_it(store: Store) {
    let t0 = at(2026, 6, 1, 0, 0, 0);
    for (key, when) in [("old", t0), ("new", t0 + Span::hours(23))] {
        store
            .enqueue(&NewQueueItem::new("w", "{}").key(key), 5, when)
            .await
            .unwrap();
        let ok = DispatchResult::Delivered {
            response: "{}".into(),
        };
        assert_eq!(finish(&store, "w", 1, &ok, when).await.len(), 1);
    }
    let (_clock, shared) = manual_clock(t0);
    let events = EventBus::<PruneReport>::new();
    let mut heard = events.channel();
    let (pruner, _) = Actor::spawn(
        None,
        PrunerActor,
        PrunerArgs {
            names: Names::unique("pruner"),
            store: store.clone(),
            clock: shared,
            retention: Retention {
                completed: Duration::from_secs(86_400),
                ..Retention::default()
            },
            interval: Duration::from_secs(3600),
            events,
        },
    )
    .await
    .unwrap();
    let report = pruner
        .ask(|reply| PrunerMsg::Prune {
            now: Some(t0 + Span::hours(25)),
            reply: Some(reply),
        })
        .await
        .unwrap();
    assert_eq!(report.pruned.queue_completed, 1, "{report:?}");
    assert_eq!(report.pruned.total(), 1);
    assert!(!report.pruned.cut_short);
    let published = tokio::time::timeout(Duration::from_secs(5), heard.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(published, report);
    let left = store.queue_counts().await.unwrap();
    assert_eq!(left, vec![(QueueStatus::Completed, 1)]);
    // Nothing more is due: a second prune removes nothing.
    let again = pruner
        .ask(|reply| PrunerMsg::Prune {
            now: Some(t0 + Span::hours(25)),
            reply: Some(reply),
        })
        .await
        .unwrap();
    assert_eq!(again.pruned.total(), 0);
    pruner.stop(None);
}

backend_tests!(prunes_what_is_past_retention_and_publishes_it);
