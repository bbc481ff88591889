//! The root supervisor, driven by messages to tiny actors defined here.

mod support;

use support::Ask;

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort, SupervisionEvent};
use ringmaster::actors::heartbeat::{HeartbeatActor, HeartbeatArgs};
use ringmaster::actors::supervisor::{ChildSpec, RestartIntensity, RootArgs, RootSupervisor};
use ringmaster::clock::SharedClock;
use ringmaster::messages::heartbeat::{HealthReport, HeartbeatMsg};
use ringmaster::messages::root::RootMsg;
use ringmaster::names::Names;
use ringmaster::names::HEARTBEAT;
use support::{at, eventually, manual_clock, TestDb};

/// A child that answers `Ping`, panics on `Panic`, fails on `Fail`, and can be
/// told to fail its next `pre_start`s.
struct Flaky {
    failing_starts: Arc<AtomicU32>,
    stops: Arc<Mutex<Vec<String>>>,
    label: String,
}

enum FlakyMsg {
    Ping(RpcReplyPort<&'static str>),
    Panic,
    Fail,
}

impl Actor for Flaky {
    type Msg = FlakyMsg;
    type State = ();
    type Arguments = ();

    async fn pre_start(&self, _: ActorRef<FlakyMsg>, _: ()) -> Result<(), ActorProcessingErr> {
        let left = self.failing_starts.load(Ordering::SeqCst);
        if left > 0 {
            self.failing_starts.store(left - 1, Ordering::SeqCst);
            return Err("pre_start refused on purpose".into());
        }
        Ok(())
    }

    async fn post_stop(&self, _: ActorRef<FlakyMsg>, _: &mut ()) -> Result<(), ActorProcessingErr> {
        self.stops.lock().unwrap().push(self.label.clone());
        Ok(())
    }

    async fn handle(
        &self,
        _: ActorRef<FlakyMsg>,
        msg: FlakyMsg,
        _: &mut (),
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            FlakyMsg::Ping(reply) => {
                let _ = reply.send("pong");
                Ok(())
            }
            FlakyMsg::Panic => panic!("boom on purpose"),
            FlakyMsg::Fail => Err("failed on purpose".into()),
        }
    }
}

struct Fixture {
    names: Names,
    failing_starts: Arc<AtomicU32>,
    stops: Arc<Mutex<Vec<String>>>,
    clock: SharedClock,
    _db: TestDb,
}

impl Fixture {
    async fn new() -> Fixture {
        let (_, clock) = manual_clock(at(2026, 5, 1, 12, 0, 0));
        Fixture {
            names: Names::unique("sup"),
            failing_starts: Arc::new(AtomicU32::new(0)),
            stops: Arc::new(Mutex::new(Vec::new())),
            clock,
            _db: TestDb::sqlite().await,
        }
    }

    fn flaky_spec(&self, role: &str) -> ChildSpec {
        let (failing, stops, label) = (
            self.failing_starts.clone(),
            self.stops.clone(),
            role.to_string(),
        );
        ChildSpec::new(role.to_string(), move || {
            (
                Flaky {
                    failing_starts: failing.clone(),
                    stops: stops.clone(),
                    label: label.clone(),
                },
                (),
            )
        })
    }

    fn heartbeat_spec(&self) -> ChildSpec {
        let (names, store, clock) = (
            self.names.clone(),
            self._db.store.clone(),
            self.clock.clone(),
        );
        ChildSpec::new(HEARTBEAT, move || {
            (
                HeartbeatActor,
                HeartbeatArgs {
                    names: names.clone(),
                    store: store.clone(),
                    clock: clock.clone(),
                    tick: Duration::from_secs(3600),
                    offline_after: Duration::from_secs(90),
                    events: Default::default(),
                },
            )
        })
    }

    fn args(&self, children: Vec<ChildSpec>, max_restarts: u32) -> RootArgs {
        RootArgs {
            names: self.names.clone(),
            children,
            intensity: RestartIntensity {
                max_restarts,
                window: Duration::from_secs(60),
            },
            clock: self.clock.clone(),
            shutdown_timeout: Duration::from_secs(5),
            on_restarts: {
                let names = self.names.clone();
                std::sync::Arc::new(move |counts| {
                    if let Some(heartbeat) = names.heartbeat() {
                        let _ = heartbeat.cast(HeartbeatMsg::Restarts(counts));
                    }
                })
            },
        }
    }

    fn flaky(&self, role: &str) -> Option<ActorRef<FlakyMsg>> {
        self.names.lookup(role)
    }

    async fn health(&self) -> HealthReport {
        let hb: ActorRef<HeartbeatMsg> = self.names.heartbeat().expect("heartbeat running");
        hb.ask(|reply| HeartbeatMsg::Health { now: None, reply })
            .await
    }

    async fn restarts_in_health(&self, role: &str) -> u32 {
        self.health()
            .await
            .actors
            .iter()
            .find(|a| a.actor == role)
            .map(|a| a.restarts)
            .unwrap_or(0)
    }
}

/// Ping the child now registered under `role`, polling until one answers.
async fn ping_until_answered(fx: &Fixture, role: &str) {
    eventually(5, "the restarted child answers Ping", || async {
        let child = fx.flaky(role)?;
        match child
            .call(FlakyMsg::Ping, Some(Duration::from_millis(200)))
            .await
        {
            Ok(ractor::rpc::CallResult::Success(answer)) => Some(answer),
            _ => None,
        }
    })
    .await;
}

#[tokio::test]
async fn a_child_that_panics_is_restarted_under_its_name_and_answers_again() {
    let fx = Fixture::new().await;
    let (root, handle) = Actor::spawn(
        None,
        RootSupervisor,
        fx.args(vec![fx.heartbeat_spec(), fx.flaky_spec("worker")], 5),
    )
    .await
    .unwrap();
    ping_until_answered(&fx, "worker").await;
    assert_eq!(fx.restarts_in_health("worker").await, 0);
    let first = fx.flaky("worker").unwrap().get_id();

    fx.flaky("worker").unwrap().cast(FlakyMsg::Panic).unwrap();

    eventually(5, "a new incarnation under the same name", || async {
        fx.flaky("worker").filter(|w| w.get_id() != first)
    })
    .await;
    ping_until_answered(&fx, "worker").await;
    eventually(5, "restart count 1 in Health", || async {
        (fx.restarts_in_health("worker").await == 1).then_some(())
    })
    .await;

    // An `Err` from a handler is a failure too.
    fx.flaky("worker").unwrap().cast(FlakyMsg::Fail).unwrap();
    eventually(5, "restart count 2 in Health", || async {
        (fx.restarts_in_health("worker").await == 2).then_some(())
    })
    .await;
    ping_until_answered(&fx, "worker").await;

    root.stop(None);
    handle.await.unwrap();
}

/// A host supervisor that forwards what it sees of its children.
struct Host {
    seen: tokio::sync::mpsc::UnboundedSender<String>,
}

impl Actor for Host {
    type Msg = ();
    type State = ();
    type Arguments = ();
    async fn pre_start(&self, _: ActorRef<()>, _: ()) -> Result<(), ActorProcessingErr> {
        Ok(())
    }
    async fn handle_supervisor_evt(
        &self,
        _: ActorRef<()>,
        event: SupervisionEvent,
        _: &mut (),
    ) -> Result<(), ActorProcessingErr> {
        let line = match event {
            SupervisionEvent::ActorFailed(_, err) => format!("failed: {err}"),
            SupervisionEvent::ActorTerminated(_, _, reason) => format!("terminated: {reason:?}"),
            _ => return Ok(()),
        };
        let _ = self.seen.send(line);
        Ok(())
    }
}

#[tokio::test]
async fn failures_past_the_intensity_fail_the_root_and_the_host_sees_it() {
    let fx = Fixture::new().await;
    let (tx, mut seen) = tokio::sync::mpsc::unbounded_channel();
    let (host, host_handle) = Actor::spawn(None, Host { seen: tx }, ()).await.unwrap();
    let (root, _handle) = Actor::spawn_linked(
        None,
        RootSupervisor,
        fx.args(vec![fx.flaky_spec("worker")], 2),
        host.get_cell(),
    )
    .await
    .unwrap();

    // Two restarts are allowed within the window…
    for n in 1..=2 {
        ping_until_answered(&fx, "worker").await;
        fx.flaky("worker").unwrap().cast(FlakyMsg::Panic).unwrap();
        eventually(5, "restart", || async {
            let children = root
                .call(RootMsg::Children, Some(support::TIMEOUT))
                .await
                .ok()?
                .success_or(())
                .ok()?;
            (children[0].restarts == n && children[0].running).then_some(())
        })
        .await;
    }
    assert!(
        seen.try_recv().is_err(),
        "the host saw nothing while within the intensity"
    );

    // …the third is one too many.
    ping_until_answered(&fx, "worker").await;
    fx.flaky("worker").unwrap().cast(FlakyMsg::Panic).unwrap();
    let line = tokio::time::timeout(Duration::from_secs(5), seen.recv())
        .await
        .expect("host told in time")
        .expect("host channel open");
    assert!(line.starts_with("failed: "), "{line}");
    assert!(line.contains("restart intensity exceeded"), "{line}");
    assert!(line.contains("worker"), "{line}");
    eventually(5, "the root's children are stopped too", || async {
        fx.flaky("worker").is_none().then_some(())
    })
    .await;

    host.stop(None);
    host_handle.await.unwrap();
}

#[tokio::test]
async fn a_replacement_whose_pre_start_fails_is_counted_and_retried() {
    let fx = Fixture::new().await;
    let (root, handle) = Actor::spawn(
        None,
        RootSupervisor,
        fx.args(vec![fx.heartbeat_spec(), fx.flaky_spec("worker")], 5),
    )
    .await
    .unwrap();
    ping_until_answered(&fx, "worker").await;

    // The next two replacements refuse to start; the third comes up.
    fx.failing_starts.store(2, Ordering::SeqCst);
    fx.flaky("worker").unwrap().cast(FlakyMsg::Panic).unwrap();

    ping_until_answered(&fx, "worker").await;
    assert_eq!(
        fx.failing_starts.load(Ordering::SeqCst),
        0,
        "both refusals were retried"
    );
    eventually(
        5,
        "three restarts counted (one panic, two refused starts)",
        || async { (fx.restarts_in_health("worker").await == 3).then_some(()) },
    )
    .await;
    let children = root.ask(RootMsg::Children).await;
    assert_eq!(children[1].restarts, 3);
    assert!(children[1].running);
    assert_eq!(
        root.get_status(),
        ractor::ActorStatus::Running,
        "the root is still up"
    );

    root.stop(None);
    handle.await.unwrap();
}

#[tokio::test]
async fn a_replacement_that_never_starts_ends_in_escalation_not_a_spin() {
    let fx = Fixture::new().await;
    let (root, handle) = Actor::spawn(
        None,
        RootSupervisor,
        fx.args(vec![fx.flaky_spec("worker")], 3),
    )
    .await
    .unwrap();
    ping_until_answered(&fx, "worker").await;
    fx.failing_starts.store(u32::MAX, Ordering::SeqCst);
    fx.flaky("worker").unwrap().cast(FlakyMsg::Panic).unwrap();
    tokio::time::timeout(Duration::from_secs(10), handle)
        .await
        .expect("the root gave up within the intensity's retries")
        .unwrap();
    assert_eq!(root.get_status(), ractor::ActorStatus::Stopped);
}

#[tokio::test]
async fn graceful_shutdown_stops_children_in_reverse_start_order() {
    let fx = Fixture::new().await;
    let specs = vec![
        fx.flaky_spec("first"),
        fx.flaky_spec("second"),
        fx.flaky_spec("third"),
    ];
    let (root, handle) = Actor::spawn(None, RootSupervisor, fx.args(specs, 5))
        .await
        .unwrap();
    ping_until_answered(&fx, "third").await;
    root.stop(Some("shutdown".into()));
    handle.await.unwrap();
    assert_eq!(*fx.stops.lock().unwrap(), vec!["third", "second", "first"]);
    assert!(fx.flaky("first").is_none());
}

#[tokio::test]
async fn a_child_that_cannot_start_at_boot_fails_the_root_start() {
    let fx = Fixture::new().await;
    fx.failing_starts.store(1, Ordering::SeqCst);
    let err = Actor::spawn(
        None,
        RootSupervisor,
        fx.args(vec![fx.flaky_spec("first"), fx.flaky_spec("second")], 5),
    )
    .await
    .expect_err("start refused");
    assert!(err.to_string().contains("first"), "{err}");
}
