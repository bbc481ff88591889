//! Configuration: one TOML file plus `RINGMASTER_*` environment variables.
//!
//! Every interval, threshold and limit has a default. A value that is present
//! but unusable (empty, zero, negative, not a number, a key nobody knows) stops
//! start-up with an error that names the key and where it came from. Silently
//! falling back to a default is how a typo turns a 5-minute sweep into none.
//!
//! The environment wins over the file. File keys are the variable names without
//! the prefix, in lower case: `RINGMASTER_QUEUE_TICK_MS` is `queue_tick_ms`.

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use crate::model::retention::Retention;

/// Prefix of every environment variable we read.
pub const ENV_PREFIX: &str = "RINGMASTER_";

/// The embedded default: a SQLite file in the working directory.
pub const DEFAULT_DATABASE_URL: &str = "sqlite://ringmaster.db";

/// Everything ringmaster can be told. Built by [`Config::load`] or
/// [`Config::from_sources`]; `Default` gives the documented defaults.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    pub database_url: String,
    pub bind: SocketAddr,
    pub api_token: Option<String>,
    pub max_body_bytes: usize,
    pub scheduler_tick: Duration,
    pub scheduler_batch: u32,
    pub delivery_concurrency: u32,
    pub delivery_timeout: Duration,
    pub queue_max_attempts: u32,
    pub queue_lease: Duration,
    pub queue_tick: Duration,
    /// Items a node may hold claimed ahead of dispatch (its prefetch buffer).
    pub queue_prefetch: u32,
    pub sweep_interval: Duration,
    pub stuck_threshold: Duration,
    pub workspace_offline: Duration,
    pub heartbeat_tick: Duration,
    pub restart_max: u32,
    pub restart_window: Duration,
    /// How long a stop waits for deliveries under way (and open requests).
    pub shutdown_timeout: Duration,
    /// HTTP connections open at once.
    pub max_connections: u32,
    /// A request's head must arrive within this (then the connection closes).
    pub header_timeout: Duration,
    /// A request's declared body must arrive within this (then 408).
    pub body_timeout: Duration,
    /// An agent's answer longer than this is an error; nothing past it is kept.
    pub max_response_bytes: usize,
    /// Hosts or CIDRs agents may be reached at (`None`: any public address).
    pub agent_allow: Option<Vec<String>>,
    /// How long finished rows are kept.
    pub retention: Retention,
    /// How often retention runs.
    pub prune_interval: Duration,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            database_url: DEFAULT_DATABASE_URL.to_string(),
            bind: SocketAddr::from(([127, 0, 0, 1], 8080)),
            api_token: None,
            max_body_bytes: 1_048_576,
            scheduler_tick: Duration::from_millis(1000),
            scheduler_batch: 500,
            delivery_concurrency: 64,
            delivery_timeout: Duration::from_secs(300),
            queue_max_attempts: 5,
            queue_lease: Duration::from_secs(600),
            queue_tick: Duration::from_millis(5000),
            queue_prefetch: 1024,
            sweep_interval: Duration::from_secs(300),
            stuck_threshold: Duration::from_secs(600),
            workspace_offline: Duration::from_secs(90),
            heartbeat_tick: Duration::from_millis(5000),
            restart_max: 5,
            restart_window: Duration::from_secs(60),
            shutdown_timeout: Duration::from_secs(30),
            max_connections: 1024,
            header_timeout: Duration::from_secs(10),
            body_timeout: Duration::from_secs(30),
            max_response_bytes: 1 << 20,
            agent_allow: None,
            retention: Retention::default(),
            prune_interval: Duration::from_secs(60),
        }
    }
}

/// Where a raw value was read from, so an error can point at it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    Env,
    File(String),
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::Env => write!(f, "environment"),
            Source::File(path) => write!(f, "config file {path}"),
        }
    }
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum ConfigError {
    #[error("{key} (from {origin}): {value:?} {reason}")]
    Invalid {
        key: String,
        value: String,
        origin: Source,
        reason: String,
    },
    #[error("unknown key `{key}` in {origin}")]
    UnknownKey { key: String, origin: Source },
    #[error("cannot read config file {path}: {reason}")]
    Unreadable { path: String, reason: String },
    #[error("config file {path} is not valid TOML: {reason}")]
    NotToml { path: String, reason: String },
}

impl ConfigError {
    /// The configuration key to blame, as its environment variable name.
    pub fn key(&self) -> Option<&str> {
        match self {
            ConfigError::Invalid { key, .. } | ConfigError::UnknownKey { key, .. } => Some(key),
            _ => None,
        }
    }
}

/// The keys we know, as file keys (lower case, no prefix).
const KEYS: &[&str] = &[
    "database_url",
    "bind",
    "api_token",
    "max_body_bytes",
    "scheduler_tick_ms",
    "scheduler_batch",
    "delivery_concurrency",
    "delivery_timeout_s",
    "queue_max_attempts",
    "queue_lease_s",
    "queue_tick_ms",
    "queue_prefetch",
    "sweep_interval_s",
    "stuck_threshold_s",
    "workspace_offline_s",
    "heartbeat_tick_ms",
    "restart_max",
    "restart_window_s",
    "shutdown_timeout_s",
    "max_connections",
    "header_timeout_s",
    "body_timeout_s",
    "max_response_bytes",
    "agent_allow",
    "retention_completed_s",
    "retention_failed_s",
    "retention_runs_s",
    "prune_interval_s",
];

/// Raw text values by file key, each with where it came from.
struct RawValues(BTreeMap<&'static str, (String, Source)>);

impl RawValues {
    fn get(&self, key: &'static str) -> Option<&(String, Source)> {
        self.0.get(key)
    }

    fn invalid(key: &str, value: &str, source: &Source, reason: impl Into<String>) -> ConfigError {
        ConfigError::Invalid {
            key: env_name(key),
            value: value.to_string(),
            origin: source.clone(),
            reason: reason.into(),
        }
    }

    fn text(&self, key: &'static str, default: String) -> Result<String, ConfigError> {
        match self.get(key) {
            None => Ok(default),
            Some((v, src)) if v.trim().is_empty() => Err(Self::invalid(key, v, src, "is empty")),
            Some((v, _)) => Ok(v.trim().to_string()),
        }
    }

    /// A whole number from 1 to `max` (the key's documented bound).
    fn bounded(&self, key: &'static str, default: u64, max: u64) -> Result<u64, ConfigError> {
        let Some((v, src)) = self.get(key) else {
            return Ok(default);
        };
        let t = v.trim();
        if t.is_empty() {
            return Err(Self::invalid(key, v, src, "is empty"));
        }
        if t.starts_with('-') {
            return Err(Self::invalid(
                key,
                v,
                src,
                "is negative; it must be a positive whole number",
            ));
        }
        match t.parse::<u64>() {
            Ok(0) => Err(Self::invalid(
                key,
                v,
                src,
                "is zero; it must be a positive whole number",
            )),
            Ok(n) if n > max => Err(Self::invalid(
                key,
                v,
                src,
                format!("is above the limit of {max}"),
            )),
            Ok(n) => Ok(n),
            Err(_) if t.chars().all(|c| c.is_ascii_digit()) => Err(Self::invalid(
                key,
                v,
                src,
                format!("is above the limit of {max}"),
            )),
            Err(_) => Err(Self::invalid(key, v, src, "is not a positive whole number")),
        }
    }

    fn count(&self, key: &'static str, default: u32, max: u32) -> Result<u32, ConfigError> {
        let n = self.bounded(key, u64::from(default), u64::from(max))?;
        Ok(u32::try_from(n).unwrap_or(max))
    }

    fn millis(
        &self,
        key: &'static str,
        default: Duration,
        max: Duration,
    ) -> Result<Duration, ConfigError> {
        Ok(Duration::from_millis(self.bounded(
            key,
            u64::try_from(default.as_millis()).unwrap_or(u64::MAX),
            u64::try_from(max.as_millis()).unwrap_or(u64::MAX),
        )?))
    }

    fn secs(
        &self,
        key: &'static str,
        default: Duration,
        max: Duration,
    ) -> Result<Duration, ConfigError> {
        Ok(Duration::from_secs(self.bounded(
            key,
            default.as_secs(),
            max.as_secs(),
        )?))
    }
}

const HOUR: Duration = Duration::from_secs(3600);
const DAY: Duration = Duration::from_secs(86_400);
const YEAR: Duration = Duration::from_secs(365 * 86_400);

/// `queue_tick_ms` → `RINGMASTER_QUEUE_TICK_MS`.
pub fn env_name(file_key: &str) -> String {
    format!("{ENV_PREFIX}{}", file_key.to_ascii_uppercase())
}

impl Config {
    /// Read the optional file at `path` and the process environment.
    pub fn load(path: Option<&Path>) -> Result<Config, ConfigError> {
        let file = match path {
            None => None,
            Some(p) => {
                let text = std::fs::read_to_string(p).map_err(|e| ConfigError::Unreadable {
                    path: p.display().to_string(),
                    reason: e.to_string(),
                })?;
                Some((p.display().to_string(), text))
            }
        };
        Config::from_sources(
            file.as_ref().map(|(p, t)| (p.as_str(), t.as_str())),
            std::env::vars(),
        )
    }

    /// Build from a file's text (with its path, for messages) and a set of
    /// environment variables. Variables without our prefix are ignored; a
    /// `RINGMASTER_*` variable we do not know is an error, because it is a typo.
    pub fn from_sources(
        file: Option<(&str, &str)>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Config, ConfigError> {
        let mut raw = BTreeMap::new();
        if let Some((path, text)) = file {
            let table: toml::Table =
                text.parse()
                    .map_err(|e: toml::de::Error| ConfigError::NotToml {
                        path: path.to_string(),
                        reason: e.message().to_string(),
                    })?;
            for (key, value) in table {
                let source = Source::File(path.to_string());
                let Some(known) = KEYS.iter().find(|k| **k == key) else {
                    return Err(ConfigError::UnknownKey {
                        key,
                        origin: source,
                    });
                };
                let text = match value {
                    toml::Value::String(s) => s,
                    toml::Value::Integer(i) => i.to_string(),
                    other => other.to_string(),
                };
                raw.insert(*known, (text, source));
            }
        }
        for (name, value) in env {
            let Some(rest) = name.strip_prefix(ENV_PREFIX) else {
                continue;
            };
            // Variables read by other parts of the tool chain, not by the service.
            if rest.starts_with("TEST_") || rest == "CONFIG" {
                continue;
            }
            let lower = rest.to_ascii_lowercase();
            let Some(known) = KEYS.iter().find(|k| **k == lower) else {
                return Err(ConfigError::UnknownKey {
                    key: name,
                    origin: Source::Env,
                });
            };
            raw.insert(*known, (value, Source::Env));
        }
        let raw = RawValues(raw);
        let d = Config::default();

        let bind_text = raw.text("bind", d.bind.to_string())?;
        let bind = bind_text.parse::<SocketAddr>().map_err(|_| {
            let (v, src) = raw
                .get("bind")
                .expect("only a present value can fail to parse");
            RawValues::invalid(
                "bind",
                v,
                src,
                "is not a socket address like 127.0.0.1:8080",
            )
        })?;
        let api_token = match raw.get("api_token") {
            None => None,
            Some(_) => Some(raw.text("api_token", String::new())?),
        };
        let max_body = raw.bounded("max_body_bytes", d.max_body_bytes as u64, 64 << 20)?;
        let max_response =
            raw.bounded("max_response_bytes", d.max_response_bytes as u64, 64 << 20)?;
        let agent_allow = match raw.get("agent_allow") {
            None => None,
            Some((v, src)) => {
                let list: Vec<String> = v
                    .split(',')
                    .map(|e| e.trim().to_string())
                    .filter(|e| !e.is_empty())
                    .collect();
                if list.is_empty() {
                    return Err(RawValues::invalid("agent_allow", v, src, "is empty"));
                }
                if let Some(bad) = list
                    .iter()
                    .find(|e| crate::dispatch::egress::Allowed::entry(e).is_err())
                {
                    return Err(RawValues::invalid(
                        "agent_allow",
                        v,
                        src,
                        format!(
                            "names {bad:?}, which is neither a host name, an IP address nor a CIDR"
                        ),
                    ));
                }
                Some(list)
            }
        };

        Ok(Config {
            database_url: raw.text("database_url", d.database_url)?,
            bind,
            api_token,
            max_body_bytes: usize::try_from(max_body).unwrap_or(usize::MAX),
            scheduler_tick: raw.millis("scheduler_tick_ms", d.scheduler_tick, HOUR)?,
            scheduler_batch: raw.count("scheduler_batch", d.scheduler_batch, 100_000)?,
            delivery_concurrency: raw.count(
                "delivery_concurrency",
                d.delivery_concurrency,
                100_000,
            )?,
            delivery_timeout: raw.secs("delivery_timeout_s", d.delivery_timeout, DAY)?,
            queue_max_attempts: raw.count("queue_max_attempts", d.queue_max_attempts, 1_000)?,
            queue_lease: raw.secs("queue_lease_s", d.queue_lease, 7 * DAY)?,
            queue_tick: raw.millis("queue_tick_ms", d.queue_tick, HOUR)?,
            queue_prefetch: raw.count("queue_prefetch", d.queue_prefetch, 1_000_000)?,
            sweep_interval: raw.secs("sweep_interval_s", d.sweep_interval, 7 * DAY)?,
            stuck_threshold: raw.secs("stuck_threshold_s", d.stuck_threshold, 30 * DAY)?,
            workspace_offline: raw.secs("workspace_offline_s", d.workspace_offline, 30 * DAY)?,
            heartbeat_tick: raw.millis("heartbeat_tick_ms", d.heartbeat_tick, HOUR)?,
            restart_max: raw.count("restart_max", d.restart_max, 10_000)?,
            restart_window: raw.secs("restart_window_s", d.restart_window, DAY)?,
            shutdown_timeout: raw.secs("shutdown_timeout_s", d.shutdown_timeout, HOUR)?,
            max_connections: raw.count("max_connections", d.max_connections, 100_000)?,
            header_timeout: raw.secs("header_timeout_s", d.header_timeout, HOUR)?,
            body_timeout: raw.secs("body_timeout_s", d.body_timeout, HOUR)?,
            max_response_bytes: usize::try_from(max_response).unwrap_or(usize::MAX),
            agent_allow,
            retention: Retention {
                completed: raw.secs("retention_completed_s", d.retention.completed, 10 * YEAR)?,
                failed: raw.secs("retention_failed_s", d.retention.failed, 10 * YEAR)?,
                runs: raw.secs("retention_runs_s", d.retention.runs, 10 * YEAR)?,
            },
            prune_interval: raw.secs("prune_interval_s", d.prune_interval, DAY)?,
        })
    }
}
