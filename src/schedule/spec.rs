//! `ScheduleSpec`: a parsed spec bound to a timezone and DST policy, and the next-fire
//! search that combines the wall-clock matcher with the DST policy.
//!
//! The fires of a wall-clock spec form a *set* of instants (each matching local slot
//! resolved by the policy). Treating it as a set is what makes gap slots coalesce and
//! makes the sequence strictly increasing; `next_after` is the minimum of that set above
//! the instant asked about. Because local time runs backwards in a fall-back overlap,
//! the search starts a little before "now in local time" and stops once no later slot
//! could resolve to anything earlier than the best fire found.

use std::str::FromStr;

use chrono::{DateTime, Duration, NaiveDate, NaiveDateTime, Utc};
use chrono_tz::Tz;

use super::dst::{self, DstPolicy};
use super::error::SpecError;
use super::grammar::{self, Form};
use super::matcher::Matcher;

/// How far ahead `next_after` looks for a wall-clock fire, and how far from
/// [`REFERENCE`] `parse` looks to decide a spec never fires. 30 years covers the 28-year
/// weekday/leap cycle, so `0 0 29 2 *` (every 4 years, 8 across 2100) is accepted.
const HORIZON_DAYS: i64 = 30 * 366;

/// Offsets are sampled over this window after the instant asked about; fires further out
/// than this cannot be confused by a transition near "now" (see `next_wall_clock`).
const SAMPLE_HOURS: i64 = 48;

/// Looser than any real UTC offset (-12h..+14h); used where no sample applies.
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
    /// within the horizon (30 years) or the matcher's calendar (up to 2100) runs out.
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
        let tz = self.timezone;
        // Offsets in force from just before `after` to SAMPLE_HOURS later. Any fire f
        // within that window has its local slot at or after `after + min_offset` (a
        // gap fire's slot is after the pre-gap clock reading), and any fire further out
        // has its slot later than local "now", so `lower` bounds every candidate slot.
        let (mut min_off, mut max_off) = (i64::MAX, i64::MIN);
        for h in -1..=SAMPLE_HOURS {
            let off = dst::offset_at(tz, after + Duration::hours(h));
            min_off = min_off.min(off);
            max_off = max_off.max(off);
        }
        let sampled_until = after + Duration::hours(SAMPLE_HOURS - 1);
        let lower = after.naive_utc() + Duration::seconds(min_off);
        let give_up = after.naive_utc() + Duration::days(HORIZON_DAYS);

        let mut best: Option<DateTime<Utc>> = None;
        let mut cursor = lower - Duration::seconds(1);
        while let Some(slot) = matcher.next_match(cursor) {
            if let Some(b) = best {
                // A slot resolves to instants no earlier than `slot - offset`; once that
                // is past `best` for every offset that could apply, nothing can beat it.
                let slack = if b <= sampled_until {
                    max_off
                } else {
                    MAX_ABS_OFFSET_SECS
                };
                if slot > b.naive_utc() + Duration::seconds(slack) {
                    break;
                }
            }
            if slot > give_up {
                break;
            }
            if let Some(fire) = dst::resolve(tz, slot, self.dst, fixed_time).first_after(after) {
                best = Some(best.map_or(fire, |b| b.min(fire)));
            }
            cursor = slot;
        }
        best
    }
}
