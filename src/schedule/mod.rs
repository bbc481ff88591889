//! Schedule specs: the grammar (Vixie cron, macros, `every`, `daily`), the timezone, and
//! the DST policy, and the answer to "when does this fire next?".
//!
//! The scheduler, the HTTP layer and the CLI all go through [`ScheduleSpec`], so a spec
//! means the same thing everywhere. Callers pass instants in; nothing here reads the
//! clock.
//!
//! ```
//! use chrono::{DateTime, Utc};
//! use ringmaster::schedule::{DstPolicy, ScheduleSpec};
//!
//! let spec = ScheduleSpec::parse("30 2 * * *", "America/New_York", DstPolicy::Vixie)?;
//! let after: DateTime<Utc> = "2026-03-08T00:00:00Z".parse().unwrap();
//! // 02:30 does not exist in New York that day; Vixie fires at 03:00 EDT instead.
//! let next = spec.next_after(after).unwrap();
//! assert_eq!(next.to_rfc3339(), "2026-03-08T07:00:00+00:00");
//! // The following day is back to 02:30 EDT.
//! assert_eq!(
//!     spec.next_after(next).unwrap().to_rfc3339(),
//!     "2026-03-09T06:30:00+00:00"
//! );
//! # Ok::<(), ringmaster::schedule::SpecError>(())
//! ```

mod dst;
mod error;
mod grammar;
mod matcher;
mod spec;
mod timeline;

pub use dst::DstPolicy;
pub use error::{DailyTimeProblem, FieldProblem, IntervalProblem, SpecError};
pub use spec::ScheduleSpec;
