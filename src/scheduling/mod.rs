//! The scheduler's decisions, apart from the SchedulerActor that carries them
//! out: [`planner`] turns due rows and `now` into slot claims (with their
//! fires), missed slots and invalid rows; it decides when reconciliation is
//! due, what becomes of a run that lost its queue item, and when to wake.

pub mod planner;

pub use planner::{Plan, Planner};
