//! Shared test support: a fresh database per test on each backend, and the
//! macro that runs one test body against every driver (River's model).
//!
//! Postgres tests use `RINGMASTER_TEST_POSTGRES_URL`. When it is set they run
//! and fail loudly if the server cannot be reached; when it is unset they say
//! they were skipped (and `.ci/run` always sets it).
#![allow(dead_code)]

pub mod agent;
pub mod api;
pub mod cluster;
pub mod hostile;
pub mod process;
pub mod webdriver;

use std::sync::Arc;

use chrono::{DateTime, TimeZone, Utc};
use ringmaster::clock::{ManualClock, SharedClock};
use ringmaster::store::{self, Store};

pub const POSTGRES_URL_VAR: &str = "RINGMASTER_TEST_POSTGRES_URL";

/// The longest any test waits for an actor's answer: a missing answer fails
/// the test instead of hanging it.
pub const TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// `ask`: send a message built around a reply port and wait at most
/// [`TIMEOUT`] for the answer, failing the test if none comes.
pub trait Ask<M: ractor::Message> {
    fn ask<T: Send + 'static>(
        &self,
        message: impl FnOnce(ractor::RpcReplyPort<T>) -> M,
    ) -> impl std::future::Future<Output = T>;
}

impl<M: ractor::Message> Ask<M> for ractor::ActorRef<M> {
    async fn ask<T: Send + 'static>(
        &self,
        message: impl FnOnce(ractor::RpcReplyPort<T>) -> M,
    ) -> T {
        match self.call(message, Some(TIMEOUT)).await {
            Ok(ractor::rpc::CallResult::Success(answer)) => answer,
            Ok(ractor::rpc::CallResult::Timeout) => panic!("no answer within {TIMEOUT:?}"),
            Ok(ractor::rpc::CallResult::SenderError) => {
                panic!("the actor stopped before answering")
            }
            Err(err) => panic!("the actor is not running: {err}"),
        }
    }
}

/// A database made for one test; the temp dir keeps a SQLite file alive.
pub struct TestDb {
    pub store: Store,
    pub url: String,
    _dir: Option<tempfile::TempDir>,
}

impl TestDb {
    pub async fn sqlite() -> TestDb {
        let dir = tempfile::tempdir().expect("temp dir");
        let url = format!("sqlite://{}", dir.path().join("test.db").display());
        let store = store::open(&url).await.expect("open sqlite");
        TestDb {
            store,
            url,
            _dir: Some(dir),
        }
    }

    /// A fresh Postgres database, or `None` (with a note) when the variable is unset.
    pub async fn postgres() -> Option<TestDb> {
        let url = fresh_postgres_database().await?;
        let store = store::open(&url)
            .await
            .unwrap_or_else(|e| panic!("{POSTGRES_URL_VAR} is set but the store cannot open: {e}"));
        Some(TestDb {
            store,
            url,
            _dir: None,
        })
    }
}

impl Drop for TestDb {
    /// A Postgres database made for the test is dropped with it, passed or
    /// failed (FORCE: connections still open are ended first).
    fn drop(&mut self) {
        if self._dir.is_none() {
            drop_postgres_database(&self.url);
        }
    }
}

/// Drops the database it names when it goes out of scope.
pub struct DropDatabase(pub String);

impl Drop for DropDatabase {
    fn drop(&mut self) {
        drop_postgres_database(&self.0);
    }
}

/// Drop the database `url` names, from its server's admin connection.
pub fn drop_postgres_database(url: &str) {
    let Ok(admin) = std::env::var(POSTGRES_URL_VAR) else {
        return;
    };
    let base = url.split('?').next().unwrap_or(url);
    let Some((_, name)) = base.rsplit_once('/') else {
        return;
    };
    let _ = std::process::Command::new("psql")
        .args([
            admin.as_str(),
            "-qc",
            &format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"),
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status();
}

/// Creates an empty database on the test server and answers its URL.
pub async fn fresh_postgres_database() -> Option<String> {
    use sqlx::Connection;
    let admin = match std::env::var(POSTGRES_URL_VAR) {
        Ok(url) if !url.trim().is_empty() => url,
        _ => {
            eprintln!("skipped: {POSTGRES_URL_VAR} is not set, so the Postgres half of this test did not run");
            return None;
        }
    };
    let name = format!("ringmaster_test_{}", uuid::Uuid::new_v4().simple());
    let mut conn = sqlx::PgConnection::connect(&admin)
        .await
        .unwrap_or_else(|e| {
            panic!("{POSTGRES_URL_VAR}={admin} is set but the server is unreachable: {e}")
        });
    sqlx::query(&format!("CREATE DATABASE \"{name}\""))
        .execute(&mut conn)
        .await
        .unwrap_or_else(|e| panic!("cannot create test database {name}: {e}"));
    let _ = conn.close().await;
    let (base, query) = match admin.split_once('?') {
        Some((b, q)) => (b, format!("?{q}")),
        None => (admin.as_str(), String::new()),
    };
    let (server, _db) = base.rsplit_once('/').expect("postgres URL has a path");
    Some(format!("{server}/{name}{query}"))
}

/// Record an outcome of item `id` as the holder of lease `token`: the
/// model decides what it does (backoff 4 s · 2^(attempt−1)), the store's
/// fenced write carries it out.
pub async fn record(
    store: &Store,
    id: i64,
    token: &str,
    result: &ringmaster::model::outcome::DispatchResult,
    now: DateTime<Utc>,
) -> Result<ringmaster::store::Recorded, ringmaster::store::StoreError> {
    let mut item = store.get_queue_item(id).await?.expect("the item exists");
    item.lease_token = Some(token.to_string());
    let backoff = ringmaster::model::outcome::Backoff {
        base: std::time::Duration::from_secs(4),
        max: std::time::Duration::from_secs(3600),
    };
    store.record_dispatch(&item, result, now, backoff).await
}

/// Claim up to `limit` ready items of `workspace` at `now` and record
/// `result` for each, as deliveries that came back; their ids.
pub async fn finish(
    store: &Store,
    workspace: &str,
    limit: u32,
    result: &ringmaster::model::outcome::DispatchResult,
    now: DateTime<Utc>,
) -> Vec<i64> {
    let claimed = store
        .claim(ringmaster::store::Claim {
            workspace,
            limit,
            now,
            lease_until: now + chrono::Duration::minutes(10),
            node: "n",
        })
        .await
        .unwrap();
    for item in &claimed {
        let token = item.lease_token.as_deref().unwrap();
        record(store, item.id, token, result, now).await.unwrap();
    }
    claimed.iter().map(|i| i.id).collect()
}

/// Give back items `(id, lease token)` as their holder.
pub async fn release(
    store: &Store,
    leases: &[(i64, String)],
    now: DateTime<Utc>,
) -> Result<Vec<ringmaster::model::queue::QueueItem>, ringmaster::store::StoreError> {
    let mut items = Vec::new();
    for (id, token) in leases {
        if let Some(mut item) = store.get_queue_item(*id).await? {
            item.lease_token = Some(token.clone());
            items.push(item);
        }
    }
    store.release(&items, now).await
}

/// A fixed, readable instant for tests.
pub fn at(y: i32, mo: u32, d: u32, h: u32, mi: u32, s: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(y, mo, d, h, mi, s).unwrap()
}

pub fn manual_clock(start: DateTime<Utc>) -> (ManualClock, SharedClock) {
    let clock = ManualClock::new(start);
    (clock.clone(), Arc::new(clock))
}

/// Poll `check` until it answers `Some`, for at most `secs` seconds. Tests poll
/// actor state this way instead of sleeping for a fixed time.
pub async fn eventually<T, F, Fut>(secs: u64, what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(secs);
    loop {
        if let Some(v) = check().await {
            return v;
        }
        if tokio::time::Instant::now() > deadline {
            panic!("timed out after {secs}s waiting for: {what}");
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
}

/// Runs each named `async fn(Store)` against SQLite and against Postgres.
#[macro_export]
macro_rules! backend_tests {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let db = $crate::support::TestDb::sqlite().await;
                    super::$name(db.store.clone()).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let Some(db) = $crate::support::TestDb::postgres().await else { return };
                    super::$name(db.store.clone()).await;
                    // Bounded: a test that leaves its actors running (the
                    // LISTEN connection among them) would hold the close
                    // forever; the database is dropped WITH (FORCE) anyway.
                    let _ = tokio::time::timeout(
                        std::time::Duration::from_secs(5),
                        db.store.close(),
                    )
                    .await;
                }
            )*
        }
    };
}

/// A whole ringmaster for actor tests: manual clock, fake dispatcher, unique
/// names, timers slow enough that only the test's own messages move time.
pub struct Harness {
    pub ringmaster: ringmaster::Ringmaster,
    pub clock: ManualClock,
    pub fake: ringmaster::dispatch::FakeDispatcher,
}

pub fn quiet_config() -> ringmaster::config::Config {
    let hour = std::time::Duration::from_secs(3600);
    ringmaster::config::Config {
        heartbeat_tick: hour,
        queue_tick: hour,
        scheduler_tick: hour,
        sweep_interval: hour,
        workspace_offline: hour,
        delivery_timeout: std::time::Duration::from_secs(1),
        shutdown_timeout: std::time::Duration::from_secs(2),
        ..ringmaster::config::Config::default()
    }
}

impl Harness {
    pub async fn start(
        store: Store,
        config: ringmaster::config::Config,
        start: DateTime<Utc>,
    ) -> Harness {
        Self::start_named(
            store,
            config,
            start,
            ringmaster::names::Names::unique("it"),
            "node-test",
        )
        .await
    }

    pub async fn start_named(
        store: Store,
        config: ringmaster::config::Config,
        start: DateTime<Utc>,
        names: ringmaster::names::Names,
        node: &str,
    ) -> Harness {
        let (clock, shared) = manual_clock(start);
        let fake = ringmaster::dispatch::FakeDispatcher::new();
        let options = ringmaster::StartOptions {
            clock: shared,
            names,
            dispatcher: Arc::new(fake.clone()),
            node: node.to_string(),
            ..ringmaster::StartOptions::new(config, store)
        };
        let ringmaster = ringmaster::Ringmaster::start_with(options)
            .await
            .expect("ringmaster starts");
        Harness {
            ringmaster,
            clock,
            fake,
        }
    }

    pub fn store(&self) -> &Store {
        self.ringmaster.store()
    }

    /// Register `ws` (with an unused URL) and room for `max`, as of `at`.
    pub async fn register(&self, ws: &str, max: u32, at: DateTime<Utc>) {
        self.store()
            .register_workspace(ws, Some("http://127.0.0.1:9/unused"), max, at)
            .await
            .unwrap();
    }

    /// A workspace beat through the HeartbeatActor (which wakes the drain).
    pub async fn beat(&self, ws: &str, active: u32, max: u32) {
        use ringmaster::messages::heartbeat::HeartbeatMsg;
        let beat = ringmaster::model::workspace::WorkspaceBeat::new(ws, active, Some(max))
            .expect("a valid beat");
        self.ringmaster
            .heartbeat()
            .unwrap()
            .ask(|reply| HeartbeatMsg::WorkspaceBeat {
                beat,
                reply: Some(reply),
            })
            .await
            .unwrap();
    }

    /// The QueueDrainActor's safety-net tick at `now`, awaited: its report.
    pub async fn queue_tick(
        &self,
        now: DateTime<Utc>,
    ) -> ringmaster::messages::queue::DrainTickReport {
        use ringmaster::messages::queue::QueueMsg;
        self.ringmaster
            .queue()
            .unwrap()
            .ask(|reply| QueueMsg::Tick {
                now: Some(now),
                reply: Some(reply),
            })
            .await
            .unwrap()
    }

    /// Move the clock to `now` and tick the scheduler there: its report.
    pub async fn scheduler_tick(
        &self,
        now: DateTime<Utc>,
    ) -> ringmaster::messages::scheduler::SchedulerTickReport {
        use ringmaster::messages::scheduler::SchedulerMsg;
        self.clock.set(now);
        self.ringmaster
            .scheduler()
            .unwrap()
            .ask(|reply| SchedulerMsg::Tick {
                now: Some(now),
                reply: Some(reply),
            })
            .await
            .unwrap()
    }
}
