//! Two SchedulerActors (two whole ringmaster nodes) on one Postgres database,
//! ticked at the same instants: 1,000 schedules × 60 simulated minutes, and
//! every slot is fired exactly once between them.
//!
//! The workspaces are never registered, so fires wait in the queue instead of
//! being delivered: what is counted is the claim, not the delivery (the queue
//! has its own two-node test). The witnesses are independent of the nodes'
//! own reports: `run_count` (incremented by each winning compare-and-set) and
//! the rows in `schedule_runs` and `queue_items`.

mod support;

use std::collections::BTreeMap;

use chrono::{DateTime, Duration as Span, Utc};
use ringmaster::model::queue::QueueStatus;
use ringmaster::model::schedule::NewSchedule;
use ringmaster::names::Names;
use support::{at, quiet_config, Harness};

const SCHEDULES: usize = 1_000;
const MINUTES: i64 = 60;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_fire_each_of_sixty_thousand_slots_exactly_once() {
    let Some(url) = support::fresh_postgres_database().await else {
        return;
    };
    let _dropped = support::DropDatabase(url.clone());
    let t0 = at(2026, 7, 1, 0, 0, 30);
    let store = ringmaster::store::open(&url).await.unwrap();
    for i in 0..SCHEDULES {
        store
            .create_schedule(
                &NewSchedule::new(
                    format!("ws-{}", i % 10),
                    format!("s{i}"),
                    "* * * * *",
                    "tick",
                ),
                t0,
            )
            .await
            .unwrap();
    }
    let mut nodes = Vec::new();
    for name in ["node-a", "node-b"] {
        let own = ringmaster::store::open(&url).await.unwrap();
        nodes.push(Harness::start_named(own, quiet_config(), t0, Names::unique(name), name).await);
    }

    // A tick at the start instant waits out each node's start-up (its first
    // tick runs in post_start and reads the clock then).
    for node in &nodes {
        assert!(node.scheduler_tick(t0).await.fired.is_empty());
    }
    let mut fired: BTreeMap<(i64, DateTime<Utc>), usize> = BTreeMap::new();
    let mut per_node = [0usize; 2];
    let started = std::time::Instant::now();
    for minute in 1..=MINUTES {
        let now = t0 - Span::seconds(30) + Span::minutes(minute);
        let (a, b) = tokio::join!(nodes[0].scheduler_tick(now), nodes[1].scheduler_tick(now));
        for (n, report) in [a, b].into_iter().enumerate() {
            per_node[n] += report.fired.len();
            assert!(report.missed.is_empty() && report.invalid.is_empty());
            for f in report.fired {
                *fired.entry((f.schedule_id, f.slot)).or_default() += 1;
            }
        }
        // Enqueues are messages to each node's queue actor; real minutes would
        // give them ample time, simulated ones must wait for them.
        let so_far = per_node.iter().sum::<usize>() as u64;
        support::eventually(30, "this minute's fires are queued", || async {
            let counts = store.queue_counts().await.unwrap();
            (counts.iter().map(|c| c.1).sum::<u64>() >= so_far).then_some(())
        })
        .await;
    }
    eprintln!(
        "60 minutes on two nodes: {:?}, fired per node {per_node:?}",
        started.elapsed()
    );

    // The nodes' own reports: every slot reported by exactly one node.
    let expected = SCHEDULES * MINUTES as usize;
    assert_eq!(fired.len(), expected, "every (schedule, slot) fired");
    assert!(fired.values().all(|n| *n == 1), "no slot fired twice");
    assert_eq!(per_node.iter().sum::<usize>(), expected);
    assert!(
        per_node.iter().all(|n| *n > 0),
        "both nodes took part: {per_node:?}"
    );

    // Independent witnesses in the database.
    let schedules = store.list_schedules(None).await.unwrap();
    assert!(
        schedules.iter().all(|s| s.run_count == MINUTES),
        "each compare-and-set won exactly once per slot"
    );
    let pool = sqlx::PgPool::connect(&url).await.unwrap();
    let (runs, distinct, slots): (i64, i64, i64) = sqlx::query_as(
        "SELECT COUNT(*), COUNT(DISTINCT (schedule_id, slot)), COUNT(DISTINCT slot)
         FROM schedule_runs WHERE status = 'dispatched'",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(
        (runs as usize, distinct as usize, slots),
        (expected, expected, MINUTES)
    );
    let counts = store.queue_counts().await.unwrap();
    assert_eq!(counts, vec![(QueueStatus::Queued, expected as u64)]);
    for node in nodes {
        node.ringmaster.shutdown().await;
    }
}
