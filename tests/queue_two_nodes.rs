//! Two QueueDrainActors, each in its own tokio runtime, on one Postgres
//! database: 2,000 items for 20 workspaces, every item delivered exactly once.

mod support;

use std::collections::BTreeSet;
use std::time::Duration;

use ringmaster::model::a2a::a2a_message;
use ringmaster::model::queue::{NewQueueItem, QueueStatus};
use ringmaster::names::Names;
use support::{at, quiet_config, Harness};

const WORKSPACES: usize = 20;
const ITEMS: usize = 2_000;

/// Run one node until the database shows every item completed; answer the
/// item ids this node delivered.
async fn node(url: String, name: &str) -> Vec<i64> {
    let store = ringmaster::store::open(&url).await.unwrap();
    let h = Harness::start_named(
        store.clone(),
        quiet_config(),
        at(2026, 7, 1, 0, 0, 0),
        Names::unique(name),
        name,
    )
    .await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
    loop {
        let counts = store.queue_counts().await.unwrap();
        let completed = counts
            .iter()
            .find(|(s, _)| *s == QueueStatus::Completed)
            .map(|c| c.1)
            .unwrap_or(0);
        if completed as usize == ITEMS {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{name}: stalled at {counts:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let delivered = h
        .fake
        .delivered()
        .into_iter()
        .map(|(_, id, _)| id)
        .collect();
    h.ringmaster.shutdown().await;
    delivered
}

#[test]
fn two_nodes_drain_two_thousand_items_exactly_once() {
    let setup = tokio::runtime::Runtime::new().unwrap();
    let Some(url) = setup.block_on(support::fresh_postgres_database()) else {
        return;
    };
    let _dropped = support::DropDatabase(url.clone());
    let store = setup.block_on(ringmaster::store::open(&url)).unwrap();
    setup.block_on(async {
        for w in 0..WORKSPACES {
            store
                .register_workspace(
                    &format!("ws-{w}"),
                    Some("http://127.0.0.1:9/"),
                    5,
                    at(2026, 7, 1, 0, 0, 0),
                )
                .await
                .unwrap();
        }
    });

    let nodes: Vec<_> = ["node-a", "node-b"]
        .into_iter()
        .map(|name| {
            let url = url.clone();
            std::thread::spawn(move || {
                let runtime = tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(2)
                    .enable_all()
                    .build()
                    .unwrap();
                runtime.block_on(node(url, name))
            })
        })
        .collect();

    // Enqueue after both nodes are up, in batches: NOTIFY wakes both.
    std::thread::sleep(Duration::from_millis(300));
    setup.block_on(async {
        let items: Vec<NewQueueItem> = (0..ITEMS)
            .map(|i| {
                NewQueueItem::new(
                    format!("ws-{}", i % WORKSPACES),
                    a2a_message(&format!("m{i}"), "x"),
                )
                .key(format!("m{i}"))
            })
            .collect();
        for chunk in items.chunks(250) {
            store
                .enqueue_batch(chunk, 5, at(2026, 7, 1, 0, 0, 0))
                .await
                .unwrap();
        }
    });

    let per_node: Vec<Vec<i64>> = nodes
        .into_iter()
        .map(|n| n.join().expect("node thread"))
        .collect();
    let total: usize = per_node.iter().map(Vec::len).sum();
    let distinct: BTreeSet<i64> = per_node.iter().flatten().copied().collect();
    assert_eq!(
        total, ITEMS,
        "every dispatch call was for a distinct item (no duplicates)"
    );
    assert_eq!(distinct.len(), ITEMS, "every item delivered");
    assert!(
        per_node.iter().all(|n| !n.is_empty()),
        "both nodes took part: {:?}",
        per_node.iter().map(Vec::len).collect::<Vec<_>>()
    );
    setup.block_on(async {
        let counts = store.queue_counts().await.unwrap();
        assert_eq!(counts, vec![(QueueStatus::Completed, ITEMS as u64)]);
    });
}
