//! `ScheduleSpec`: a parsed spec bound to a timezone and DST policy, and the next-fire
//! search that combines the wall-clock matcher with the DST policy.
//!
//! The search walks *real* time forward from the instant asked about, in stretches of
//! constant UTC offset. Within a stretch local time moves with real time, so the first
//! matching local slot is the next fire; the DST rules then add a fire at the start of
//! a stretch that follows a gap, or drop slots repeated after a fall-back. Walking real
//! time (rather than local time, which jumps and repeats) is what makes every answer
//! strictly later than the question and the sequence strictly increasing, and makes
//! gap slots coalesce into one fire.

use std::str::FromStr;

use chrono::{DateTime, Datelike, Duration, LocalResult, NaiveDate, NaiveDateTime, TimeZone, Utc};
use chrono_tz::Tz;

use super::dst::{DstPolicy, Rules};
use super::error::SpecError;
use super::grammar::{self, Form};
use super::matcher::{Matcher, RememberingMatcher};
use super::timeline::{self, Segment};

/// How far ahead `next_after` looks for a wall-clock fire, and how far from
/// `reference()` `parse` looks to decide a spec never fires. 30 years covers the 28-year
/// weekday/leap cycle, so `0 0 29 2 *` (every 4 years, 8 across 2100) is accepted.
const HORIZON_DAYS: i64 = 30 * 366;

/// The `cron` crate's calendar ends with 2100; earlier than 1900 no one schedules.
const FIRST_YEAR: i32 = 1900;
const LAST_YEAR: i32 = 2100;

/// The search walks real time in windows of this length, each cut at its transitions.
const WINDOW_HOURS: i64 = 48;

/// Looser than any real UTC offset (-12h..+14h): no fire comes earlier than its local
/// slot read at this offset.
const MAX_ABS_OFFSET_SECS: i64 = 26 * 3600;

/// A fixed start for the parse-time "can it ever fire" check, so parsing never reads
/// the wall clock.
fn reference() -> NaiveDateTime {
    NaiveDate::from_ymd_opt(2000, 1, 1)
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .unwrap_or_default()
}

#[derive(Clone, Debug)]
enum Kind {
    Interval(Duration),
    WallClock { matcher: Matcher, fixed_time: bool },
}

/// A validated schedule: spec text, IANA timezone and DST policy.
#[derive(Clone, Debug)]
pub struct ScheduleSpec {
    text: String,
    timezone: Tz,
    dst: DstPolicy,
    kind: Kind,
}

impl ScheduleSpec {
    /// Parse and validate `text` in `timezone` (an IANA name such as `"Europe/London"`
    /// or `"UTC"`). Refuses malformed specs, unknown zones, and specs that match no date
    /// within the horizon.
    pub fn parse(text: &str, timezone: &str, dst: DstPolicy) -> Result<ScheduleSpec, SpecError> {
        let form = grammar::parse_form(text)?;
        let tz =
            Tz::from_str(timezone).map_err(|_| SpecError::UnknownTimezone(timezone.to_string()))?;
        let kind = match form {
            Form::Every(interval) => Kind::Interval(Duration::from_std(interval).map_err(
                |_| SpecError::NeverFires {
                    spec: text.trim().to_string(),
                },
            )?),
            Form::Daily(times) => Kind::WallClock {
                matcher: Matcher::daily(&times)?,
                fixed_time: true,
            },
            Form::Cron(fields) => Kind::WallClock {
                matcher: Matcher::from_fields(&fields)?,
                fixed_time: fields.fixed_time,
            },
        };
        if let Kind::WallClock { matcher, .. } = &kind {
            let start = reference();
            let fires = matcher
                .next_match(start - Duration::seconds(1))
                .is_some_and(|n| n < start + Duration::days(HORIZON_DAYS));
            if !fires {
                return Err(SpecError::NeverFires {
                    spec: text.trim().to_string(),
                });
            }
        }
        Ok(ScheduleSpec {
            text: text.trim().to_string(),
            timezone: tz,
            dst,
            kind,
        })
    }

    /// The first fire strictly later than `after`. `None` only when nothing fires
    /// within the horizon (30 years), the matcher's calendar (up to 2100) runs out, or
    /// `after` lies outside 1900–2100 (wall-clock specs) or the result would overflow
    /// (`every`).
    pub fn next_after(&self, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
        match &self.kind {
            Kind::Interval(every) => after.checked_add_signed(*every),
            Kind::WallClock {
                matcher,
                fixed_time,
            } => self.next_wall_clock(matcher, *fixed_time, after),
        }
    }

    /// The next `n` fires strictly after `after`, in increasing order (fewer if the
    /// horizon runs out).
    pub fn upcoming(&self, after: DateTime<Utc>, n: usize) -> Vec<DateTime<Utc>> {
        let mut out = Vec::with_capacity(n);
        let mut cursor = after;
        while out.len() < n {
            match self.next_after(cursor) {
                Some(next) => {
                    out.push(next);
                    cursor = next;
                }
                None => break,
            }
        }
        out
    }

    /// Whether the job names wall-clock times: neither its minute nor its hour text
    /// starts with `*` (`daily …` counts as fixed-time, `every …` does not). Decides how
    /// the Vixie policy treats DST gaps and overlaps.
    pub fn is_fixed_time(&self) -> bool {
        matches!(
            self.kind,
            Kind::WallClock {
                fixed_time: true,
                ..
            }
        )
    }

    /// The spec as given (surrounding whitespace trimmed).
    pub fn text(&self) -> &str {
        &self.text
    }

    pub fn timezone(&self) -> Tz {
        self.timezone
    }

    pub fn dst(&self) -> DstPolicy {
        self.dst
    }

    fn next_wall_clock(
        &self,
        matcher: &Matcher,
        fixed_time: bool,
        after: DateTime<Utc>,
    ) -> Option<DateTime<Utc>> {
        if !(FIRST_YEAR..=LAST_YEAR).contains(&after.year()) {
            // Outside the matcher's calendar; also keeps the arithmetic below far from
            // chrono's limits.
            return None;
        }
        let tz = self.timezone;
        let rules = Rules::new(self.dst, fixed_time);
        let mut matcher = RememberingMatcher::new(matcher);
        let give_up = after + Duration::days(HORIZON_DAYS);
        // Invariant: nothing fires in (after, start].
        let mut start = after;
        while start <= give_up {
            let end = start + Duration::hours(WINDOW_HOURS);
            let segments = timeline::segments(tz, start, end);
            // Every fire after `start` has its slot at or after `lower` (a gap fire's
            // slots lie after the pre-gap reading), and no fire comes earlier than its
            // slot read at the largest offset. So when the first matching slot is far
            // off, jump straight to it instead of walking empty windows.
            let min_offset = segments
                .iter()
                .flat_map(|s| [Some(s.offset), s.previous])
                .flatten()
                .min()
                .unwrap_or_default();
            let lower = timeline::local_of(start, min_offset);
            let first_slot = matcher.next_match(lower - Duration::seconds(1))?;
            let earliest = first_slot.and_utc() - Duration::seconds(MAX_ABS_OFFSET_SECS);
            if earliest > end {
                start = earliest;
                continue;
            }
            if let Some(fire) = first_fire_in(tz, &mut matcher, rules, &segments) {
                return Some(fire);
            }
            // Windows overlap by an hour so a fire exactly on a window edge is inside
            // the next one.
            start += Duration::hours(WINDOW_HOURS - 1);
        }
        None
    }
}

/// The earliest fire in the segments' real time, excluding their very first instant.
///
/// Within one segment local time moves with real time, so the first matching slot is
/// the first fire there, except for what the DST rules add (a gap fire at a segment's
/// start) or remove (slots repeated in a second fold).
fn first_fire_in(
    tz: Tz,
    matcher: &mut RememberingMatcher<'_>,
    rules: Rules,
    segments: &[Segment],
) -> Option<DateTime<Utc>> {
    let second = Duration::seconds(1);
    for (k, seg) in segments.iter().enumerate() {
        let offset = seg.offset;
        if let Some(previous) = seg.previous {
            if rules.fires_at_gap_end() && offset > previous {
                let gap_from = timeline::local_of(seg.start, previous);
                let gap_to = timeline::local_of(seg.start, offset);
                if matcher
                    .next_match(gap_from - second)
                    .is_some_and(|n| n < gap_to)
                {
                    return Some(seg.start);
                }
            }
        }
        let local_end = timeline::local_of(seg.end, offset);
        let local_start = timeline::local_of(seg.start, offset);
        // The first segment starts at the instant asked about, which is excluded.
        let mut cursor = if k == 0 {
            local_start
        } else {
            local_start - second
        };
        while let Some(slot) = matcher.next_match(cursor) {
            if slot >= local_end {
                break;
            }
            let instant = slot.and_utc() - Duration::seconds(offset);
            if !rules.fires_in_second_fold() {
                if let LocalResult::Ambiguous(a, b) = tz.from_local_datetime(&slot) {
                    let first_fold = a.with_timezone(&Utc).min(b.with_timezone(&Utc));
                    if first_fold < instant {
                        // Already fired in the first fold: skip the whole repeated
                        // stretch, which ends at the transition read at the old offset.
                        let old_offset = timeline::offset_at(tz, first_fold);
                        let transition =
                            timeline::first_change(tz, first_fold, instant, old_offset);
                        cursor = slot.max(timeline::local_of(transition, old_offset) - second);
                        continue;
                    }
                }
            }
            return Some(instant);
        }
    }
    None
}
