//! ringmaster keeps the background work of an agent platform alive: a root
//! supervisor (on `ractor`) owns four long-lived actors — a scheduler for
//! cron schedules, a drain for the durable delivery queue, a heartbeat
//! actor for capacity and liveness, and a sweeper for stuck delegations —
//! that restart when they fail and talk by typed messages. State lives in
//! SQLite (the embedded default) or PostgreSQL (several nodes).
//!
//! The layers, lowest first (no module imports one above it):
//! - [`model`]: domain types and every rule, in plain Rust; [`schedule`]: the
//!   cron spec engine; [`clock`], [`tasks`].
//! - [`store`]: the driver interface, written once over two SQL dialects.
//! - [`messages`], [`names`], [`events`]: what actors say and how they find
//!   each other; [`dispatch`]: how an item reaches an agent.
//! - [`drain`], [`scheduling`], [`liveness`]: the actors' decision cores.
//! - [`actors`]: the thin actor shells and the root supervisor.
//! - [`service`], [`metrics`], [`feed`], [`http`], [`demo`]: the assembled
//!   service and its faces (the feed: the console's live events).
//!
//! See `ARCHITECTURE.md` for the actors, their messages and who owns which table.

#[path = "../actors/mod.rs"]
pub mod actors;
pub mod children;
pub mod clock;
pub mod config;
pub mod demo;
pub mod dispatch;
pub mod drain;
pub mod events;
pub mod feed;
pub mod http;
pub mod ingest;
pub mod known;
pub mod liveness;
pub mod messages;
pub mod metrics;
pub mod model;
pub mod names;
pub mod schedule;
pub mod scheduling;
pub mod service;
pub mod store;
pub mod tasks;

pub use service::{Ringmaster, ServiceError, StartOptions};
