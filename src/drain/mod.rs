//! The delivery side of the queue: everything the QueueDrainActor decides
//! and does, in small pieces. The actor (`actors/queue_drain.rs`) is the
//! mailbox; this module is what it runs.
//!
//! - [`core`]: the pure decision core (room, prefetch, claims, give-backs),
//!   with `pump.rs` for the room and claim arithmetic and `callers.rs` for
//!   the `Send` callers waiting on their items.
//! - [`claims`]: a claim, run in a task, reported back as `Claimed`.
//! - [`delivery`]: one dispatcher call in a task, panics and hangs caught.
//! - [`completer`]: outcomes written in batches through a bounded channel.
//! - [`giveback`]: claimed items that will not go out from here, settled.
//! - [`sweep`]: the tick's database work (expire, rescue, give back).
//! - [`listen`]: the notification channel's wakes, turned into messages.
//! - [`ports`]: the waiting `Send` callers' reply ports and their deadlines.
//! - [`recent`]: the items lately started here, for late `Send` callers.

pub mod callers;
pub mod claims;
pub mod completer;
pub mod core;
pub mod delivery;
mod effect;
pub mod giveback;
pub mod listen;
pub mod ports;
mod pump;
pub mod recent;
pub mod sweep;

pub use self::core::{CoreConfig, DrainCore};
pub use self::effect::Effect;
