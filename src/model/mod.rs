//! The domain: ringmaster's types and every rule about them, once, in plain
//! Rust. No database, no runtime: a rule here is a function of its inputs,
//! unit-tested beside itself, and the store, the actors and the HTTP handlers
//! call it instead of writing it again.
//!
//! - [`limits`]: the documented bound of every number that comes from outside.
//! - [`time`]: time arithmetic that cannot overflow or panic.
//! - [`text`]: ids, names and free text: charsets, lengths, no NUL.
//! - [`workspace`]: the registry's rows, registrations, beats, spare capacity.
//! - [`queue`]: queue items, their states and their validation;
//!   [`outcome`]: what an outcome does to one (retry, backoff, dead, lost lease).
//! - [`delegation`]: the ledger's state machine and the sweep's two rules.
//! - [`schedule`] and [`run`]: schedules, their validation, the first fire,
//!   and how a fire's outcome becomes a run record (the stale rule).
//! - [`operator`]: an operator's retry and cancel of items, removing a workspace.
//! - [`page`]: list pages: capped limits and keyset cursors.
//! - [`retention`]: how long finished rows are kept and how much a prune takes.
//! - [`a2a`]: the A2A message a fire sends and how a response's text is read.
//!
//! ```
//! use ringmaster::model::outcome::{Backoff, DispatchResult};
//! use ringmaster::model::queue::{fixture, QueueStatus};
//!
//! let now = chrono::Utc::now();
//! let error = DispatchResult::Error { message: "HTTP 500".into() };
//! // A claimed item on its fifth attempt of five: this failure is its last.
//! let item = fixture::item(4, 5);
//! assert_eq!(item.settle(&error, now, Backoff::default()).status, QueueStatus::Failed);
//! ```

pub mod a2a;
pub mod delegation;
pub mod depth;
pub mod error;
pub mod limits;
pub mod operator;
pub mod outcome;
pub mod page;
pub mod queue;
pub mod retention;
pub mod run;
pub mod schedule;
pub mod text;
pub mod time;
pub mod workspace;

pub use error::Invalid;
