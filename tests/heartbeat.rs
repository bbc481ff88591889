//! The HeartbeatActor, driven by messages with time given in them, on both backends.

mod support;

use support::Ask;

use std::time::Duration;

use chrono::Duration as Span;
use ractor::{Actor, ActorRef};
use ringmaster::actors::heartbeat::{HeartbeatActor, HeartbeatArgs};
use ringmaster::messages::heartbeat::{HealthReport, HeartbeatMsg};
use ringmaster::model::workspace::{WorkspaceBeat, WorkspaceStatus};
use ringmaster::names::Names;
use ringmaster::store::Store;
use support::{at, manual_clock};

async fn spawn(
    store: Store,
    start: chrono::DateTime<chrono::Utc>,
) -> (ActorRef<HeartbeatMsg>, ringmaster::clock::ManualClock) {
    let (clock, shared) = manual_clock(start);
    let (actor, _) = Actor::spawn(
        None,
        HeartbeatActor,
        HeartbeatArgs {
            names: Names::unique("hb"),
            store,
            clock: shared,
            tick: Duration::from_secs(3600),
            offline_after: Duration::from_secs(90),
            events: Default::default(),
        },
    )
    .await
    .unwrap();
    (actor, clock)
}

async fn beat(
    hb: &ActorRef<HeartbeatMsg>,
    id: &str,
    active: u32,
    max: Option<u32>,
) -> ringmaster::messages::heartbeat::BeatAck {
    hb.ask(|reply| HeartbeatMsg::WorkspaceBeat {
        beat: WorkspaceBeat {
            workspace: id.into(),
            active_tasks: active,
            max_concurrent: max,
        },
        reply: Some(reply),
    })
    .await
    .unwrap()
}

async fn tick(hb: &ActorRef<HeartbeatMsg>, now: chrono::DateTime<chrono::Utc>) -> Vec<String> {
    hb.ask(|reply| HeartbeatMsg::Tick {
        now: Some(now),
        reply: Some(reply),
    })
    .await
    .unwrap()
    .marked_offline
}

async fn health(hb: &ActorRef<HeartbeatMsg>, now: chrono::DateTime<chrono::Utc>) -> HealthReport {
    hb.ask(|reply| HeartbeatMsg::Health {
        now: Some(now),
        reply,
    })
    .await
}

async fn beats_update_capacity_and_answer_spare_room(store: Store) {
    let t0 = at(2026, 4, 1, 9, 0, 0);
    let (hb, _clock) = spawn(store.clone(), t0).await;
    let ack = beat(&hb, "ws-1", 1, Some(3)).await;
    assert_eq!(ack.spare_capacity, 2);
    assert_eq!(ack.workspace.last_heartbeat, Some(t0));
    let ack = beat(&hb, "ws-1", 3, None).await;
    assert_eq!(ack.spare_capacity, 0);
    let stored = store.get_workspace("ws-1").await.unwrap().unwrap();
    assert_eq!((stored.active_tasks, stored.max_concurrent), (3, 3));

    let refused = hb
        .ask(|reply| HeartbeatMsg::WorkspaceBeat {
            beat: WorkspaceBeat {
                workspace: "".into(),
                active_tasks: 0,
                max_concurrent: None,
            },
            reply: Some(reply),
        })
        .await;
    assert_eq!(refused.unwrap_err().to_string(), "id: must not be empty");
    hb.stop(None);
}

async fn a_silent_workspace_goes_offline_on_the_tick_past_its_threshold(store: Store) {
    let t0 = at(2026, 4, 1, 9, 0, 0);
    let (hb, clock) = spawn(store.clone(), t0).await;
    beat(&hb, "silent", 0, Some(2)).await;
    clock.advance(Span::seconds(60));
    beat(&hb, "alive", 0, Some(2)).await;

    // 90 s is the threshold: at t0+90 "silent" is exactly at it, still online.
    assert!(tick(&hb, t0 + Span::seconds(90)).await.is_empty());
    assert_eq!(tick(&hb, t0 + Span::seconds(91)).await, vec!["silent"]);
    let silent = store.get_workspace("silent").await.unwrap().unwrap();
    assert_eq!(silent.status, WorkspaceStatus::Offline);
    assert_eq!(
        store.get_workspace("alive").await.unwrap().unwrap().status,
        WorkspaceStatus::Online
    );

    // Its next beat brings it back with its room.
    clock.advance(Span::seconds(60));
    let ack = beat(&hb, "silent", 1, None).await;
    assert_eq!(ack.workspace.status, WorkspaceStatus::Online);
    assert_eq!(ack.spare_capacity, 1);
    hb.stop(None);
}

async fn health_says_who_ticked_within_twice_their_interval(store: Store) {
    let t0 = at(2026, 4, 1, 9, 0, 0);
    let (hb, _clock) = spawn(store, t0).await;
    let mut restarts = std::collections::BTreeMap::new();
    restarts.insert("scheduler".to_string(), 2u32);
    hb.cast(HeartbeatMsg::Restarts(restarts)).unwrap();
    hb.cast(HeartbeatMsg::Alive {
        actor: "scheduler".into(),
        at: t0,
        every: Duration::from_secs(1),
    })
    .unwrap();
    tick(&hb, t0).await;

    let report = health(&hb, t0 + Span::seconds(2)).await;
    assert!(report.healthy, "{report:?}");
    let scheduler = report
        .actors
        .iter()
        .find(|a| a.actor == "scheduler")
        .unwrap();
    assert_eq!(
        (
            scheduler.restarts,
            scheduler.last_tick,
            scheduler.interval_ms
        ),
        (2, Some(t0), Some(1000))
    );

    // 2.001 s after a 1 s interval: the scheduler is late, the whole is unhealthy.
    let report = health(&hb, t0 + Span::milliseconds(2001)).await;
    assert!(!report.healthy);
    let scheduler = report
        .actors
        .iter()
        .find(|a| a.actor == "scheduler")
        .unwrap();
    assert!(!scheduler.healthy);
    assert!(
        report
            .actors
            .iter()
            .find(|a| a.actor == "heartbeat")
            .unwrap()
            .healthy
    );

    // A late, older report never moves the last tick backwards.
    hb.cast(HeartbeatMsg::Alive {
        actor: "scheduler".into(),
        at: t0 + Span::seconds(5),
        every: Duration::from_secs(1),
    })
    .unwrap();
    hb.cast(HeartbeatMsg::Alive {
        actor: "scheduler".into(),
        at: t0,
        every: Duration::from_secs(1),
    })
    .unwrap();
    let report = health(&hb, t0 + Span::seconds(6)).await;
    assert!(report.healthy, "{report:?}");
    hb.stop(None);
}

/// A request whose asker stopped waiting (it was answered 503 "try again")
/// is dropped undone, while one still awaited is carried out.
async fn a_registration_nobody_awaits_any_more_is_not_carried_out(store: Store) {
    use ringmaster::model::workspace::Registration;
    let t0 = at(2026, 4, 1, 9, 0, 0);
    let (hb, _clock) = spawn(store.clone(), t0).await;
    let (gone, receiver) = ractor::concurrency::oneshot();
    drop(receiver);
    hb.cast(HeartbeatMsg::Register {
        registration: Registration::new("ghost", None, 5).unwrap(),
        reply: gone.into(),
    })
    .unwrap();
    let kept = hb
        .ask(|reply| HeartbeatMsg::Register {
            registration: Registration::new("kept", None, 5).unwrap(),
            reply,
        })
        .await
        .unwrap();
    assert_eq!(kept.id, "kept");
    assert!(store.get_workspace("ghost").await.unwrap().is_none());
    assert!(store.get_workspace("kept").await.unwrap().is_some());
    hb.stop(None);
}

backend_tests!(
    a_registration_nobody_awaits_any_more_is_not_carried_out,
    beats_update_capacity_and_answer_spare_room,
    a_silent_workspace_goes_offline_on_the_tick_past_its_threshold,
    health_says_who_ticked_within_twice_their_interval,
    every_actor_is_healthy_as_soon_as_start_returns,
);

/// A host that asks right after `start` finds a healthy node: every actor
/// reports from its pre_start, which the root awaits (a report from
/// post_start or the first round raced the host's question).
async fn every_actor_is_healthy_as_soon_as_start_returns(store: Store) {
    let h = support::Harness::start(store, support::quiet_config(), at(2026, 9, 1, 12, 0, 0)).await;
    let report = tokio::time::timeout(Duration::from_secs(10), h.ringmaster.health())
        .await
        .expect("answers")
        .unwrap();
    assert_eq!(report.actors.len(), 5, "{report:?}");
    assert!(report.healthy, "{report:?}");
    h.ringmaster.shutdown().await;
}
