//! ringmaster keeps the background work of an agent platform alive: a root
//! supervisor (on `ractor`) owns long-lived actors — heartbeats and capacity,
//! and in later milestones cron schedules, a durable delivery queue and a
//! delegation sweeper — that restart when they fail and talk by typed messages.
//! State lives in SQLite (embedded default) or PostgreSQL (several nodes).
//!
//! See `ARCHITECTURE.md` for the actors, their messages and who owns which table.

#[path = "../actors/mod.rs"]
pub mod actors;
pub mod clock;
pub mod config;
pub mod demo;
pub mod dispatch;
pub mod events;
pub mod http;
pub mod metrics;
pub mod schedule;
pub mod service;
pub mod store;

pub use service::{Ringmaster, ServiceError, StartOptions};
