//! The DST policy: how one matching *local* date-time becomes zero, one or two real
//! instants. This is the only place that decides what a spring-forward gap or a
//! fall-back overlap means for a job, so the semantics in the design's "DST policy"
//! paragraph live here and nowhere else.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, LocalResult, NaiveDateTime, Offset, TimeZone, Utc};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

use super::error::SpecError;

/// What a schedule does with local times that a DST transition skips or repeats.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DstPolicy {
    /// Vixie cron: a fixed-time slot in a spring-forward gap fires once at the first
    /// instant after the gap (several gap slots coalesce into that fire); a fixed-time
    /// slot in a fall-back overlap fires once, in the first fold. Jobs whose minute or
    /// hour is a wildcard follow the clock like `Literal`.
    #[default]
    Vixie,
    /// Temporal / Kubernetes: gap slots are lost, overlap slots fire in both folds.
    Literal,
}

impl FromStr for DstPolicy {
    type Err = SpecError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "vixie" => Ok(DstPolicy::Vixie),
            "literal" => Ok(DstPolicy::Literal),
            _ => Err(SpecError::UnknownDstPolicy(s.to_string())),
        }
    }
}

impl fmt::Display for DstPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            DstPolicy::Vixie => "vixie",
            DstPolicy::Literal => "literal",
        })
    }
}

/// The instants one local slot stands for, earliest first.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Resolved {
    Lost,
    Once(DateTime<Utc>),
    Twice(DateTime<Utc>, DateTime<Utc>),
}

impl Resolved {
    /// The earliest of these instants strictly later than `after`.
    pub(crate) fn first_after(self, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
        match self {
            Resolved::Lost => None,
            Resolved::Once(a) => (a > after).then_some(a),
            Resolved::Twice(a, b) => [a, b].into_iter().find(|i| *i > after),
        }
    }
}

/// Map a matching local slot to instants under `policy`. `fixed_time` says whether the
/// job names wall-clock appointments (see `ScheduleSpec::is_fixed_time`).
pub(crate) fn resolve(
    tz: Tz,
    local: NaiveDateTime,
    policy: DstPolicy,
    fixed_time: bool,
) -> Resolved {
    let appointments = policy == DstPolicy::Vixie && fixed_time;
    match tz.from_local_datetime(&local) {
        LocalResult::Single(dt) => Resolved::Once(dt.with_timezone(&Utc)),
        LocalResult::Ambiguous(x, y) => {
            let (a, b) = (x.with_timezone(&Utc), y.with_timezone(&Utc));
            let (a, b) = (a.min(b), a.max(b));
            if appointments {
                Resolved::Once(a)
            } else {
                Resolved::Twice(a, b)
            }
        }
        LocalResult::None if appointments => {
            gap_end(tz, local).map_or(Resolved::Lost, Resolved::Once)
        }
        LocalResult::None => Resolved::Lost,
    }
}

/// The local wall-clock reading of an instant, as a naive date-time.
pub(crate) fn local_of(tz: Tz, instant: DateTime<Utc>) -> NaiveDateTime {
    instant.with_timezone(&tz).naive_local()
}

/// UTC offset in seconds in force at `instant`.
pub(crate) fn offset_at(tz: Tz, instant: DateTime<Utc>) -> i64 {
    i64::from(
        tz.offset_from_utc_datetime(&instant.naive_utc())
            .fix()
            .local_minus_utc(),
    )
}

/// The first instant after the spring-forward gap that swallows `local`: the transition
/// instant itself, found by bisection on "the clock already reads later than `local`".
///
/// Real offsets lie within -12h..+14h, so the transition is within (local - 14h,
/// local + 12h] read as UTC; the bracket below has an hour of slack either side.
fn gap_end(tz: Tz, local: NaiveDateTime) -> Option<DateTime<Utc>> {
    let as_utc = local.and_utc().timestamp();
    let (mut lo, mut hi) = (as_utc - 15 * 3600, as_utc + 13 * 3600);
    let past = |ts: i64| -> Option<bool> {
        let instant = DateTime::<Utc>::from_timestamp(ts, 0)?;
        Some(local_of(tz, instant) > local)
    };
    if past(lo)? || !past(hi)? {
        return None;
    }
    while hi - lo > 1 {
        let mid = lo + (hi - lo) / 2;
        if past(mid)? {
            hi = mid;
        } else {
            lo = mid;
        }
    }
    DateTime::<Utc>::from_timestamp(hi, 0)
}
