//! A zone's offset timeline: where, between two instants, the UTC offset changes.
//!
//! chrono-tz answers "what offset is in force at this instant" but does not list
//! transitions, and the next-fire search needs them to walk real time in stretches of
//! constant offset (the only stretches in which local time and real time move
//! together). Transitions are found by sampling and bisection, once per zone
//! and UTC year, and kept: a next-fire search then reads them instead of
//! sampling the zone every hour of its window (2 µs → well under 1 µs a call).

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

use chrono::{DateTime, Datelike, Duration, NaiveDateTime, Offset, TimeZone, Utc};
use chrono_tz::Tz;

/// Zone-years whose transitions a thread keeps (then it starts afresh).
const CACHED_YEARS: usize = 4096;

/// A change of offset: from `at` on, `offset` is in force.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Transition {
    at: DateTime<Utc>,
    offset: i64,
}

/// Each zone-year's transitions.
type TransitionCache = HashMap<(Tz, i32), Rc<[Transition]>>;

thread_local! {
    /// Per thread, so a lookup takes no lock.
    static TRANSITIONS: RefCell<TransitionCache> =
        RefCell::new(HashMap::new());
}

/// The transitions of `tz` within UTC year `year` (`(start, end]` of it),
/// computed on first use.
fn transitions_of_year(tz: Tz, year: i32) -> Rc<[Transition]> {
    if let Some(found) = TRANSITIONS.with(|t| t.borrow().get(&(tz, year)).cloned()) {
        return found;
    }
    let start = Utc.with_ymd_and_hms(year, 1, 1, 0, 0, 0).single();
    let end = Utc
        .with_ymd_and_hms(year.saturating_add(1), 1, 1, 0, 0, 0)
        .single();
    let found: Rc<[Transition]> = match (start, end) {
        (Some(start), Some(end)) => sampled(tz, start, end).into(),
        _ => Rc::from(Vec::new()),
    };
    TRANSITIONS.with(|t| {
        let mut t = t.borrow_mut();
        if t.len() >= CACHED_YEARS {
            t.clear();
        }
        t.insert((tz, year), found.clone());
    });
    found
}

/// Transitions in `(from, to]` by hourly sampling and bisection.
fn sampled(tz: Tz, from: DateTime<Utc>, to: DateTime<Utc>) -> Vec<Transition> {
    let mut out = Vec::new();
    let mut offset = offset_at(tz, from);
    let mut probe = from;
    while probe < to {
        let next = (probe + Duration::hours(SAMPLE_STEP_HOURS)).min(to);
        let next_offset = offset_at(tz, next);
        if next_offset != offset {
            out.push(Transition {
                at: first_change(tz, probe, next, offset),
                offset: next_offset,
            });
            offset = next_offset;
        }
        probe = next;
    }
    out
}

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
    for year in from.year()..=to.year() {
        for t in transitions_of_year(tz, year).iter() {
            if t.at <= from || t.at >= to || t.offset == offset {
                continue;
            }
            out.push(Segment {
                start,
                end: t.at,
                offset,
                previous,
            });
            previous = Some(offset);
            start = t.at;
            offset = t.offset;
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn at(y: i32, mo: u32, d: u32, h: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, mo, d, h, 0, 0).unwrap()
    }

    #[test]
    fn cached_segments_are_those_of_sampling_the_window_itself() {
        let zones = [
            chrono_tz::UTC,
            chrono_tz::America::New_York,
            chrono_tz::Europe::London,
            chrono_tz::Australia::Lord_Howe,
            chrono_tz::Asia::Kolkata,
            chrono_tz::America::Santiago,
        ];
        for tz in zones {
            // Windows across transitions and across a year's end.
            let mut from = at(2025, 12, 20, 5);
            while from < at(2027, 1, 10, 0) {
                let to = from + Duration::hours(48);
                let cut = segments(tz, from, to);
                let direct = sampled(tz, from, to);
                assert_eq!(cut.len(), direct.len() + 1, "{tz} {from}");
                for (seg, t) in cut.iter().skip(1).zip(&direct) {
                    assert_eq!((seg.start, seg.offset), (t.at, t.offset), "{tz} {from}");
                }
                assert_eq!(cut[0].start, from);
                assert_eq!(cut.last().map(|s| s.end), Some(to));
                from += Duration::hours(31);
            }
        }
    }

    #[test]
    fn new_york_changes_twice_a_year() {
        let ny = chrono_tz::America::New_York;
        let t = transitions_of_year(ny, 2026);
        assert_eq!(t.len(), 2);
        assert_eq!(t[0].at, at(2026, 3, 8, 7));
        assert_eq!(t[0].offset, -4 * 3600);
        assert_eq!(t[1].at, at(2026, 11, 1, 6));
        assert!(transitions_of_year(chrono_tz::UTC, 2026).is_empty());
    }
}
