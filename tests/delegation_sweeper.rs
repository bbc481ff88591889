//! The DelegationSweeperActor (and the HeartbeatActor's delegation beats),
//! driven by messages with time given in them, on both backends. Includes the
//! race between a sweep and concurrent completions.

mod support;

use support::Ask;

use std::collections::BTreeSet;
use std::time::Duration;

use chrono::{DateTime, Duration as Span, Utc};
use ractor::{Actor, ActorRef, ActorStatus};
use ringmaster::actors::heartbeat::{HeartbeatActor, HeartbeatArgs};
use ringmaster::actors::sweeper::{DelegationSweeperActor, SweeperArgs};
use ringmaster::clock::ManualClock;
use ringmaster::config::Config;
use ringmaster::events::EventBus;
use ringmaster::messages::heartbeat::HeartbeatMsg;
use ringmaster::messages::sweeper::{DelegationEvent, SweepReport, SweeperError, SweeperMsg};
use ringmaster::model::delegation::{
    Created, Delegation, DelegationBeatOutcome, DelegationStatus, NewDelegation, StatusChange,
    Transition, DEADLINE_EXCEEDED,
};
use ringmaster::names::Names;
use ringmaster::names::{HEARTBEAT, PRUNER, QUEUE_DRAIN, SCHEDULER, SWEEPER};
use ringmaster::store::Store;
use ringmaster::{Ringmaster, StartOptions};
use support::{at, eventually, manual_clock};
use tokio::sync::mpsc::UnboundedReceiver;

use DelegationStatus::*;

const THRESHOLD: Span = Span::minutes(10);

fn t0() -> DateTime<Utc> {
    at(2026, 7, 1, 8, 0, 0)
}

struct Fixture {
    names: Names,
    store: Store,
    clock: ManualClock,
    sweeper: ActorRef<SweeperMsg>,
    heartbeat: ActorRef<HeartbeatMsg>,
    events: UnboundedReceiver<DelegationEvent>,
}

impl Fixture {
    /// A HeartbeatActor and a sweeper registered in a fresh namespace, with a
    /// manual clock at `t0` and timers too slow to fire during a test.
    async fn new(store: Store) -> Fixture {
        let names = Names::unique("sweep");
        let (clock, shared) = manual_clock(t0());
        let (heartbeat, _) = Actor::spawn(
            Some(names.of(HEARTBEAT)),
            HeartbeatActor,
            HeartbeatArgs {
                names: names.clone(),
                store: store.clone(),
                clock: shared.clone(),
                tick: Duration::from_secs(3600),
                offline_after: Duration::from_secs(90),
                events: Default::default(),
            },
        )
        .await
        .unwrap();
        let bus = EventBus::new();
        let events = bus.channel();
        let (sweeper, _) = Actor::spawn(
            Some(names.of(SWEEPER)),
            DelegationSweeperActor,
            SweeperArgs {
                names: names.clone(),
                store: store.clone(),
                clock: shared,
                interval: Duration::from_secs(3600),
                stuck_threshold: THRESHOLD.to_std().unwrap(),
                events: bus,
            },
        )
        .await
        .unwrap();
        Fixture {
            names,
            store,
            clock,
            sweeper,
            heartbeat,
            events,
        }
    }

    async fn sweep(&self, now: DateTime<Utc>) -> Result<SweepReport, SweeperError> {
        self.sweeper
            .ask(|reply| SweeperMsg::Sweep {
                now: Some(now),
                reply: Some(reply),
            })
            .await
    }

    async fn create(&self, new: NewDelegation) -> Result<Created, SweeperError> {
        self.sweeper
            .ask(|reply| SweeperMsg::Create { new, reply })
            .await
    }

    async fn set(&self, id: &str, to: DelegationStatus) -> Transition {
        self.sweeper
            .ask(|reply| SweeperMsg::SetStatus {
                id: id.into(),
                change: StatusChange::to(to),
                reply: Some(reply),
            })
            .await
            .unwrap()
    }

    async fn get(&self, id: &str) -> Delegation {
        self.store.get_delegation(id).await.unwrap().unwrap()
    }

    async fn beat(&self, id: &str) -> DelegationBeatOutcome {
        self.heartbeat
            .ask(|reply| HeartbeatMsg::DelegationBeat {
                delegation: id.into(),
                reply: Some(reply),
            })
            .await
            .unwrap()
    }

    /// Every event published so far, in order.
    fn drain(&mut self) -> Vec<DelegationEvent> {
        let mut got = Vec::new();
        while let Ok(e) = self.events.try_recv() {
            got.push(e);
        }
        got
    }

    fn stop(&self) {
        self.sweeper.stop(None);
        self.heartbeat.stop(None);
    }
}

fn new(id: &str) -> NewDelegation {
    NewDelegation {
        id: Some(id.into()),
        caller_workspace_id: Some("caller".into()),
        workspace_id: "worker".into(),
        deadline: None,
    }
}

fn event(
    id: &str,
    from: DelegationStatus,
    to: DelegationStatus,
    reason: Option<&str>,
    at: DateTime<Utc>,
) -> DelegationEvent {
    DelegationEvent {
        id: id.into(),
        from,
        to,
        reason: reason.map(String::from),
        at,
    }
}

fn sorted(mut events: Vec<DelegationEvent>) -> Vec<DelegationEvent> {
    events.sort_by(|a, b| a.id.cmp(&b.id));
    events
}

async fn the_first_sweep_runs_at_start_and_reports_liveness(store: Store) {
    // Left over from before a restart: already past its deadline.
    store
        .create_delegation(
            &(NewDelegation {
                deadline: Some(t0() - Span::minutes(1)),
                ..new("overdue")
            })
            .prepare(t0() - Span::hours(2))
            .unwrap(),
            t0() - Span::hours(2),
        )
        .await
        .unwrap();
    let mut fx = Fixture::new(store.clone()).await;
    let failed = eventually(5, "the start-up sweep fails the overdue delegation", || {
        let store = store.clone();
        async move {
            let d = store.get_delegation("overdue").await.unwrap().unwrap();
            (d.status == Failed).then_some(d)
        }
    })
    .await;
    assert_eq!(failed.error_detail.as_deref(), Some(DEADLINE_EXCEEDED));
    assert_eq!(
        fx.drain(),
        vec![event(
            "overdue",
            Queued,
            Failed,
            Some(DEADLINE_EXCEEDED),
            t0()
        )]
    );

    let report = fx
        .heartbeat
        .ask(|reply| HeartbeatMsg::Health {
            now: Some(t0()),
            reply,
        })
        .await;
    let sweeper = report
        .actors
        .iter()
        .find(|a| a.actor == SWEEPER)
        .expect("sweeper reported");
    assert_eq!(
        (sweeper.last_tick, sweeper.interval_ms, sweeper.healthy),
        (Some(t0()), Some(3_600_000), true)
    );
    assert_eq!(
        fx.names.sweeper().map(|a| a.get_id()),
        Some(fx.sweeper.get_id())
    );
    fx.stop();
}

async fn a_sweep_fails_the_late_flags_the_silent_and_publishes_each_transition(store: Store) {
    let mut fx = Fixture::new(store).await;
    fx.create(NewDelegation {
        deadline: Some(t0() + Span::minutes(30)),
        ..new("late")
    })
    .await
    .unwrap();
    fx.create(new("silent")).await.unwrap();
    fx.create(new("alive")).await.unwrap();
    for id in ["late", "silent", "alive"] {
        fx.set(id, Dispatched).await;
        fx.set(id, InProgress).await;
    }
    fx.clock.advance(Span::minutes(5));
    assert!(matches!(
        fx.beat("silent").await,
        DelegationBeatOutcome::Stamped { .. }
    ));
    fx.clock.advance(Span::minutes(30));
    fx.beat("late").await;
    fx.beat("alive").await;
    fx.drain();

    let now = t0() + Span::minutes(40);
    let report = fx.sweep(now).await.unwrap();
    assert_eq!(
        (report.at, report.failed, report.stuck, report.errors),
        (now, 1, 1, 0)
    );
    assert_eq!(
        sorted(fx.drain()),
        vec![
            event("late", InProgress, Failed, Some(DEADLINE_EXCEEDED), now),
            event(
                "silent",
                InProgress,
                Stuck,
                Some("no heartbeat for 2100s"),
                now
            ),
        ]
    );
    assert_eq!(fx.get("late").await.status, Failed);
    assert_eq!(
        fx.get("silent").await.error_detail.as_deref(),
        Some("no heartbeat for 2100s")
    );
    assert_eq!(fx.get("alive").await.status, InProgress);
    fx.stop();
}

async fn a_delegation_that_never_beat_is_stuck_one_threshold_after_creation(store: Store) {
    let mut fx = Fixture::new(store).await;
    fx.create(new("mute")).await.unwrap();
    let created = t0();

    let at_threshold = fx.sweep(created + THRESHOLD).await.unwrap();
    assert_eq!((at_threshold.failed, at_threshold.stuck), (0, 0));
    let past = created + THRESHOLD + Span::seconds(1);
    let report = fx.sweep(past).await.unwrap();
    assert_eq!((report.failed, report.stuck), (0, 1));
    assert_eq!(
        fx.drain(),
        vec![event(
            "mute",
            Queued,
            Stuck,
            Some("no heartbeat for 601s (never beat)"),
            past
        )]
    );
    fx.stop();
}

async fn the_deadline_wins_over_stuck(store: Store) {
    let mut fx = Fixture::new(store).await;
    // Silent for an hour and past a 30-minute deadline: both rules match.
    fx.create(NewDelegation {
        deadline: Some(t0() + Span::minutes(30)),
        ..new("both")
    })
    .await
    .unwrap();
    let now = t0() + Span::hours(1);
    let report = fx.sweep(now).await.unwrap();
    assert_eq!((report.failed, report.stuck), (1, 0));
    assert_eq!(
        fx.drain(),
        vec![event("both", Queued, Failed, Some(DEADLINE_EXCEEDED), now)]
    );
    fx.stop();
}

async fn a_second_sweep_changes_nothing(store: Store) {
    let mut fx = Fixture::new(store).await;
    fx.create(NewDelegation {
        deadline: Some(t0() + Span::minutes(30)),
        ..new("late")
    })
    .await
    .unwrap();
    fx.create(new("silent")).await.unwrap();
    let now = t0() + Span::hours(1);
    let first = fx.sweep(now).await.unwrap();
    assert_eq!((first.failed, first.stuck), (1, 1));
    let snapshot = (fx.get("late").await, fx.get("silent").await);
    fx.drain();
    for later in [now, now + Span::hours(1), now + Span::days(2)] {
        let again = fx.sweep(later).await.unwrap();
        assert_eq!((again.failed, again.stuck, again.errors), (0, 0, 0));
    }
    assert!(fx.drain().is_empty());
    assert_eq!((fx.get("late").await, fx.get("silent").await), snapshot);
    fx.stop();
}

async fn delegation_beats_keep_work_alive_and_finished_work_refuses_them(store: Store) {
    let mut fx = Fixture::new(store).await;
    fx.create(new("busy")).await.unwrap();
    fx.set("busy", InProgress).await;
    // Beating every 9 minutes for an hour: never stuck.
    for _ in 0..7 {
        let now = fx.clock.advance(Span::minutes(9));
        let DelegationBeatOutcome::Stamped { delegation } = fx.beat("busy").await else {
            panic!("an in-flight delegation must take the beat");
        };
        assert_eq!(delegation.last_heartbeat, Some(now));
        assert_eq!(fx.sweep(now).await.unwrap().stuck, 0);
    }
    assert!(matches!(
        fx.set("busy", Completed).await,
        Transition::Applied {
            from: InProgress,
            ..
        }
    ));
    // A late beat from the agent that just finished: an answer, not an error.
    assert_eq!(
        fx.beat("busy").await,
        DelegationBeatOutcome::Refused {
            status: Completed,
            reason: "delegation is completed; only an in-flight delegation takes heartbeats".into()
        }
    );
    let err = fx
        .heartbeat
        .ask(|reply| HeartbeatMsg::DelegationBeat {
            delegation: "ghost".into(),
            reply: Some(reply),
        })
        .await
        .unwrap_err();
    assert_eq!(err.to_string(), "delegation \"ghost\" not found");
    assert_eq!(fx.heartbeat.get_status(), ActorStatus::Running);
    fx.drain();
    fx.stop();
}

async fn status_messages_publish_transitions_and_answer_refusals(store: Store) {
    let mut fx = Fixture::new(store).await;
    let created = fx.create(new("d")).await.unwrap();
    assert!(created.created);
    assert!(
        !fx.create(new("d")).await.unwrap().created,
        "idempotent on the id"
    );

    fx.clock.advance(Span::minutes(1));
    let now = fx.clock.advance(Span::minutes(1));
    assert!(matches!(
        fx.set("d", Dispatched).await,
        Transition::Applied { from: Queued, .. }
    ));
    assert!(matches!(
        fx.set("d", Dispatched).await,
        Transition::Unchanged { .. }
    ));
    let completed = fx
        .sweeper
        .ask(|reply| SweeperMsg::SetStatus {
            id: "d".into(),
            change: StatusChange {
                to: Completed,
                error_detail: None,
                result: Some("done".into()),
            },
            reply: Some(reply),
        })
        .await
        .unwrap();
    assert!(matches!(
        completed,
        Transition::Applied {
            from: Dispatched,
            ..
        }
    ));
    assert_eq!(
        fx.set("d", Failed).await,
        Transition::Refused {
            from: Completed,
            to: Failed,
            reason: "completed is terminal; a finished delegation never moves again".into()
        }
    );
    assert_eq!(
        fx.drain(),
        vec![
            event("d", Queued, Dispatched, None, now),
            event("d", Dispatched, Completed, None, now),
        ]
    );
    let listed = fx.store.list_delegations(Completed, 10).await.unwrap();
    assert_eq!(
        listed.iter().map(|d| d.id.as_str()).collect::<Vec<_>>(),
        vec!["d"]
    );
    assert_eq!(listed[0].result.as_deref(), Some("done"));

    // Bad requests are refused with the field to blame.
    let err = fx
        .create(NewDelegation {
            workspace_id: " ".into(),
            ..new("x")
        })
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "workspace_id: ' ' is not allowed; use ASCII letters, digits and \"._:@-\" only"
    );
    let err = fx
        .create(NewDelegation {
            deadline: Some(now),
            ..new("x")
        })
        .await
        .unwrap_err();
    assert!(
        matches!(&err, SweeperError::Invalid(i) if i.field == "deadline"),
        "{err}"
    );
    fx.stop();
}

async fn a_database_error_is_answered_not_a_crash(store: Store) {
    let fx = Fixture::new(store.clone()).await;
    // Let the start-up sweep finish before the pool goes away.
    fx.sweep(t0()).await.unwrap();
    store.close().await;
    let err = fx.sweep(t0() + Span::hours(1)).await.unwrap_err();
    let SweeperError::Sweep { report, .. } = &err else {
        panic!("expected a sweep error, got {err}");
    };
    assert_eq!((report.failed, report.stuck, report.errors), (0, 0, 2));
    assert!(err.to_string().contains("had 2 error(s)"), "{err}");
    // Still alive, still answering.
    assert_eq!(fx.sweeper.get_status(), ActorStatus::Running);
    let answer = fx
        .sweeper
        .ask(|reply| SweeperMsg::SetStatus {
            id: "d".into(),
            change: StatusChange::to(Completed),
            reply: Some(reply),
        })
        .await;
    assert!(matches!(answer, Err(SweeperError::Store(_))), "{answer:?}");
    fx.stop();
}

/// Many rounds of: delegations past their deadline, completed concurrently
/// with a sweep. Whichever write lands first wins; a completed one is never
/// flipped to failed or stuck, and a failed one refuses the completion.
async fn a_sweep_racing_completions_never_overwrites_them(store: Store) {
    const ROUNDS: usize = 150;
    const PER_ROUND: usize = 8;
    let mut fx = Fixture::new(store.clone()).await;
    let (mut completed_first, mut swept_first) = (0, 0);
    for round in 0..ROUNDS {
        let created = t0() + Span::hours(round as i64);
        let ids: Vec<String> = (0..PER_ROUND).map(|k| format!("r{round}-{k}")).collect();
        for id in &ids {
            store
                .create_delegation(
                    &(NewDelegation {
                        deadline: Some(created + Span::minutes(1)),
                        ..new(id)
                    })
                    .prepare(created)
                    .unwrap(),
                    created,
                )
                .await
                .unwrap();
            store
                .set_delegation_status(id, &StatusChange::to(InProgress), created)
                .await
                .unwrap();
        }
        let now = created + Span::minutes(2);

        // The completions go straight to the store, as another node would.
        let completions = ids.iter().cloned().map(|id| {
            let store = store.clone();
            tokio::spawn(async move {
                let outcome = store
                    .set_delegation_status(&id, &StatusChange::to(Completed), now)
                    .await
                    .unwrap();
                (id, outcome)
            })
        });
        let (report, outcomes) =
            tokio::join!(fx.sweep(now), futures::future::join_all(completions));
        let report = report.unwrap();

        let mut refused = BTreeSet::new();
        for joined in outcomes {
            let (id, outcome) = joined.unwrap();
            let stored = store.get_delegation(&id).await.unwrap().unwrap();
            match outcome {
                Transition::Applied {
                    from: InProgress, ..
                } => {
                    completed_first += 1;
                    assert_eq!(
                        stored.status, Completed,
                        "{id}: a completed one was overwritten"
                    );
                }
                Transition::Refused {
                    from: Failed,
                    to: Completed,
                    ..
                } => {
                    swept_first += 1;
                    assert_eq!(stored.status, Failed, "{id}");
                    assert_eq!(stored.error_detail.as_deref(), Some(DEADLINE_EXCEEDED));
                    refused.insert(id);
                }
                other => panic!("{id}: unexpected outcome {other:?}"),
            }
        }
        assert_eq!(report.stuck, 0, "round {round}");
        assert_eq!(report.failed as usize, refused.len(), "round {round}");
        let failed_events: BTreeSet<String> = fx
            .drain()
            .into_iter()
            .map(|e| {
                assert_eq!((e.from, e.to), (InProgress, Failed), "{e:?}");
                e.id
            })
            .collect();
        assert_eq!(
            failed_events, refused,
            "round {round}: one event per swept row, none for completed ones"
        );
    }
    eprintln!(
        "race: {completed_first} completions won, {swept_first} sweeps won, over {ROUNDS} rounds of {PER_ROUND}"
    );
    fx.stop();
}

/// The service starts the sweeper after the heartbeat, and a subscription
/// made once survives the sweeper's restart.
async fn the_service_runs_the_sweeper_and_its_events_survive_a_restart(store: Store) {
    let (_clock, shared) = manual_clock(t0());
    let names = Names::unique("svc");
    let ringmaster = Ringmaster::start_with(StartOptions {
        clock: shared,
        names: names.clone(),
        ..StartOptions::new(Config::default(), store.clone())
    })
    .await
    .unwrap();
    let mut events = ringmaster.delegation_events().channel();
    let roles: Vec<String> = ringmaster
        .children()
        .await
        .unwrap()
        .into_iter()
        .map(|c| c.role)
        .collect();
    assert_eq!(
        roles,
        vec![HEARTBEAT, QUEUE_DRAIN, SCHEDULER, SWEEPER, PRUNER]
    );

    let first = ringmaster.sweeper().unwrap();
    first.stop(Some("restart on purpose".into()));
    let second = eventually(5, "the root restarts the sweeper", || {
        let names = names.clone();
        let old = first.get_id();
        async move { names.sweeper().filter(|s| s.get_id() != old) }
    })
    .await;

    store
        .create_delegation(
            &(NewDelegation {
                deadline: Some(t0() + Span::minutes(1)),
                ..new("after-restart")
            })
            .prepare(t0())
            .unwrap(),
            t0(),
        )
        .await
        .unwrap();
    let now = t0() + Span::minutes(5);
    let report = second
        .ask(|reply| SweeperMsg::Sweep {
            now: Some(now),
            reply: Some(reply),
        })
        .await
        .unwrap();
    assert_eq!(report.failed, 1);
    let got = events.recv().await.unwrap();
    assert_eq!(
        got,
        event(
            "after-restart",
            Queued,
            Failed,
            Some(DEADLINE_EXCEEDED),
            now
        )
    );
    ringmaster.shutdown().await;
}

backend_tests!(
    the_first_sweep_runs_at_start_and_reports_liveness,
    a_sweep_fails_the_late_flags_the_silent_and_publishes_each_transition,
    a_delegation_that_never_beat_is_stuck_one_threshold_after_creation,
    the_deadline_wins_over_stuck,
    a_second_sweep_changes_nothing,
    delegation_beats_keep_work_alive_and_finished_work_refuses_them,
    status_messages_publish_transitions_and_answer_refusals,
    a_database_error_is_answered_not_a_crash,
    a_sweep_racing_completions_never_overwrites_them,
    the_service_runs_the_sweeper_and_its_events_survive_a_restart,
);
