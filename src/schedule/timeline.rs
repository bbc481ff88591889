//! A zone's offset timeline: where, between two instants, the UTC offset changes.
//!
//! chrono-tz answers "what offset is in force at this instant" but does not list
//! transitions, and the next-fire search needs them to walk real time in stretches of
//! constant offset (the only stretches in which local time and real time move
//! together). Transitions are found by sampling and bisection.

use chrono::{DateTime, Duration, NaiveDateTime, Offset, TimeZone, Utc};
use chrono_tz::Tz;

/// Sampling step. Two transitions closer than this would be missed; real zones keep
/// them months apart.
const SAMPLE_STEP_HOURS: i64 = 1;

/// UTC offset in seconds in force at `instant`.
pub(crate) fn offset_at(tz: Tz, instant: DateTime<Utc>) -> i64 {
    i64::from(
        tz.offset_from_utc_datetime(&instant.naive_utc())
            .fix()
            .local_minus_utc(),
    )
}

/// The local wall-clock reading of `instant`.
pub(crate) fn local_of(instant: DateTime<Utc>, offset: i64) -> NaiveDateTime {
    instant.naive_utc() + Duration::seconds(offset)
}

/// A stretch of real time `[start, end)` with one offset. `previous` is the offset just
/// before `start` when `start` is a transition (None for the stretch that begins where
/// the caller asked).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Segment {
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    pub offset: i64,
    pub previous: Option<i64>,
}

/// `[from, to)` cut at every transition.
pub(crate) fn segments(tz: Tz, from: DateTime<Utc>, to: DateTime<Utc>) -> Vec<Segment> {
    let mut out = Vec::new();
    let mut start = from;
    let mut offset = offset_at(tz, from);
    let mut previous = None;
    let mut probe = from;
    while probe < to {
        let next = (probe + Duration::hours(SAMPLE_STEP_HOURS)).min(to);
        let next_offset = offset_at(tz, next);
        if next_offset != offset {
            let change = first_change(tz, probe, next, offset);
            out.push(Segment {
                start,
                end: change,
                offset,
                previous,
            });
            previous = Some(offset);
            start = change;
            offset = next_offset;
        }
        probe = next;
    }
    out.push(Segment {
        start,
        end: to,
        offset,
        previous,
    });
    out
}

/// The first instant in `(lo, hi]` whose offset is not `offset`, assuming one change.
/// Transitions fall on whole seconds, so the bisection runs on whole seconds.
pub(crate) fn first_change(
    tz: Tz,
    lo: DateTime<Utc>,
    hi: DateTime<Utc>,
    offset: i64,
) -> DateTime<Utc> {
    let (mut lo, mut hi) = (lo.timestamp(), hi.timestamp() + 1);
    let at = |ts: i64| DateTime::<Utc>::from_timestamp(ts, 0).unwrap_or(DateTime::<Utc>::MAX_UTC);
    while hi - lo > 1 {
        let mid = lo + (hi - lo) / 2;
        if offset_at(tz, at(mid)) == offset {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    at(hi)
}
