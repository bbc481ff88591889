//! Configuration: defaults, file and environment, and every refusal naming its key.

mod support;

use std::time::Duration;

use proptest::prelude::*;

use ringmaster::config::{Config, ConfigError};

fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[test]
fn defaults_match_the_design_table() {
    let c = Config::from_sources(None, env(&[("PATH", "/bin")])).unwrap();
    assert_eq!(c, Config::default());
    assert_eq!(c.database_url, "sqlite://ringmaster.db");
    assert_eq!(c.bind.to_string(), "127.0.0.1:8080");
    assert_eq!(c.api_token, None);
    assert_eq!(c.max_body_bytes, 1_048_576);
    assert_eq!(c.scheduler_tick, Duration::from_millis(1000));
    assert_eq!(c.scheduler_batch, 500);
    assert_eq!(c.delivery_concurrency, 64);
    assert_eq!(c.delivery_timeout, Duration::from_secs(300));
    assert_eq!(c.queue_max_attempts, 5);
    assert_eq!(c.queue_lease, Duration::from_secs(600));
    assert_eq!(c.queue_tick, Duration::from_millis(5000));
    assert_eq!(c.queue_prefetch, 1024);
    assert_eq!(c.sweep_interval, Duration::from_secs(300));
    assert_eq!(c.stuck_threshold, Duration::from_secs(600));
    assert_eq!(c.workspace_offline, Duration::from_secs(90));
    assert_eq!(
        (c.restart_max, c.restart_window),
        (5, Duration::from_secs(60))
    );
}

#[test]
fn file_values_apply_and_the_environment_wins() {
    let file = "queue_tick_ms = 250\nsweep_interval_s = 30\ndatabase_url = \"postgres://root@127.0.0.1/test\"\n";
    let c = Config::from_sources(
        Some(("ringmaster.toml", file)),
        env(&[
            ("RINGMASTER_SWEEP_INTERVAL_S", "7"),
            ("RINGMASTER_API_TOKEN", "s3cret"),
        ]),
    )
    .unwrap();
    assert_eq!(c.queue_tick, Duration::from_millis(250));
    assert_eq!(c.sweep_interval, Duration::from_secs(7));
    assert_eq!(c.database_url, "postgres://root@127.0.0.1/test");
    assert_eq!(c.api_token.as_deref(), Some("s3cret"));
}

const NUMERIC_KEYS: &[&str] = &[
    "RINGMASTER_MAX_BODY_BYTES",
    "RINGMASTER_SCHEDULER_TICK_MS",
    "RINGMASTER_SCHEDULER_BATCH",
    "RINGMASTER_DELIVERY_CONCURRENCY",
    "RINGMASTER_DELIVERY_TIMEOUT_S",
    "RINGMASTER_QUEUE_MAX_ATTEMPTS",
    "RINGMASTER_QUEUE_LEASE_S",
    "RINGMASTER_QUEUE_TICK_MS",
    "RINGMASTER_QUEUE_PREFETCH",
    "RINGMASTER_SWEEP_INTERVAL_S",
    "RINGMASTER_STUCK_THRESHOLD_S",
    "RINGMASTER_WORKSPACE_OFFLINE_S",
    "RINGMASTER_HEARTBEAT_TICK_MS",
    "RINGMASTER_RESTART_MAX",
    "RINGMASTER_RESTART_WINDOW_S",
    "RINGMASTER_SHUTDOWN_TIMEOUT_S",
    "RINGMASTER_MAX_CONNECTIONS",
    "RINGMASTER_HEADER_TIMEOUT_S",
    "RINGMASTER_BODY_TIMEOUT_S",
    "RINGMASTER_MAX_RESPONSE_BYTES",
    "RINGMASTER_RETENTION_COMPLETED_S",
    "RINGMASTER_RETENTION_FAILED_S",
    "RINGMASTER_RETENTION_RUNS_S",
    "RINGMASTER_PRUNE_INTERVAL_S",
];

#[test]
fn every_numeric_key_refuses_empty_zero_negative_and_garbage_by_name() {
    for key in NUMERIC_KEYS {
        for (bad, says) in [
            ("", "is empty"),
            ("0", "is zero"),
            ("-5", "is negative"),
            ("ten", "is not a positive whole number"),
            ("1.5", "is not a positive whole number"),
        ] {
            let err = Config::from_sources(None, env(&[(key, bad)])).unwrap_err();
            let text = err.to_string();
            assert_eq!(err.key(), Some(*key), "{key}={bad:?}: {text}");
            assert!(
                text.starts_with(&format!("{key} (from environment)")),
                "{text}"
            );
            assert!(
                text.contains(says),
                "{key}={bad:?} should say {says:?}: {text}"
            );
        }
    }
}

#[test]
fn text_keys_refuse_empty_and_bad_addresses() {
    let err = Config::from_sources(None, env(&[("RINGMASTER_DATABASE_URL", "  ")])).unwrap_err();
    assert_eq!(
        err.to_string(),
        "RINGMASTER_DATABASE_URL (from environment): \"  \" is empty"
    );
    let err = Config::from_sources(None, env(&[("RINGMASTER_API_TOKEN", "")])).unwrap_err();
    assert_eq!(err.key(), Some("RINGMASTER_API_TOKEN"));
    let err = Config::from_sources(None, env(&[("RINGMASTER_BIND", "localhost")])).unwrap_err();
    assert_eq!(
        err.to_string(),
        "RINGMASTER_BIND (from environment): \"localhost\" is not a socket address like 127.0.0.1:8080"
    );
}

#[test]
fn file_errors_name_the_key_and_the_file() {
    let err = Config::from_sources(Some(("rm.toml", "queue_tick_ms = 0")), env(&[])).unwrap_err();
    assert_eq!(err.to_string(), "RINGMASTER_QUEUE_TICK_MS (from config file rm.toml): \"0\" is zero; it must be a positive whole number");
    let err = Config::from_sources(Some(("rm.toml", "queue_tik_ms = 5")), env(&[])).unwrap_err();
    assert_eq!(
        err.to_string(),
        "unknown key `queue_tik_ms` in config file rm.toml"
    );
    let err = Config::from_sources(Some(("rm.toml", "queue_tick_ms = ")), env(&[])).unwrap_err();
    assert!(matches!(err, ConfigError::NotToml { .. }), "{err}");
}

#[test]
fn an_unknown_ringmaster_variable_is_a_typo_and_refused() {
    let err = Config::from_sources(None, env(&[("RINGMASTER_SWEEP_INTERVAL", "5")])).unwrap_err();
    assert_eq!(
        err.to_string(),
        "unknown key `RINGMASTER_SWEEP_INTERVAL` in environment"
    );
    // The test harness's own variable is not ours to judge.
    Config::from_sources(
        None,
        env(&[("RINGMASTER_TEST_POSTGRES_URL", "postgres://x")]),
    )
    .unwrap();
}

/// The limit a key states when given the largest u64.
fn limit_of(key: &str) -> u64 {
    let err = Config::from_sources(None, env(&[(key, &u64::MAX.to_string())])).unwrap_err();
    let text = err.to_string();
    let limit = text
        .rsplit("above the limit of ")
        .next()
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or_else(|| panic!("{key} states no limit: {text}"));
    assert!(limit > 0, "{text}");
    limit
}

proptest! {
    /// Any text at all in any numeric key: taken, or refused naming the key;
    /// never a panic.
    #[test]
    fn any_value_of_any_numeric_key_is_taken_or_refused_by_name(
        key in proptest::sample::select(NUMERIC_KEYS),
        value in prop_oneof![
            any::<u64>().prop_map(|n| n.to_string()),
            any::<i64>().prop_map(|n| n.to_string()),
            any::<f64>().prop_map(|n| n.to_string()),
            "[0-9]{15,40}",
            "\\PC{0,12}",
            " *[0-9]{1,6} *",
        ],
    ) {
        match Config::from_sources(None, env(&[(key, &value)])) {
            Ok(_) => {}
            Err(err) => prop_assert_eq!(err.key(), Some(key), "{}", err),
        }
    }
}

/// Every numeric key states its limit, and a node configured with every key
/// at its limit starts, answers and stops: no `interval * 2` overflows, no
/// buffer sized by a number it cannot hold.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_with_every_key_at_its_limit_starts_answers_and_stops() {
    let limits: Vec<(&str, String)> = NUMERIC_KEYS
        .iter()
        .map(|key| (*key, limit_of(key).to_string()))
        .collect();
    let pairs: Vec<(&str, &str)> = limits.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let config = Config::from_sources(None, env(&pairs)).unwrap();
    let db = support::TestDb::sqlite().await;
    let h =
        support::Harness::start(db.store.clone(), config, support::at(2026, 9, 1, 12, 0, 0)).await;
    let report = tokio::time::timeout(Duration::from_secs(10), h.ringmaster.health())
        .await
        .expect("answers")
        .unwrap();
    assert_eq!(report.actors.len(), 5, "{report:?}");
    h.beat("w", 0, 10).await;
    tokio::time::timeout(Duration::from_secs(20), h.ringmaster.shutdown())
        .await
        .expect("stops");
}
