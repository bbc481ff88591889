//! The bridge to the `cron` crate, used strictly as a wall-clock calendar matcher.
//!
//! The crate is not Vixie (Sunday is 1, day fields are ANDed, a seconds field is
//! mandatory) and misbehaves across DST in real zones, so we hand it only explicit
//! value lists (weekdays as names, so no numbering can slip) and run it in UTC over
//! *naive local* times: UTC has no transitions, so its iteration is a clean walk over
//! the local calendar. Turning those local matches into instants is `dst.rs`'s job.

use std::str::FromStr;

use chrono::{NaiveDateTime, TimeZone, Utc};

use super::error::SpecError;
use super::grammar::{CronFields, ValueSet};

const WEEKDAY_NAMES: [&str; 7] = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"];

/// Local-calendar matcher: the union of one or more `cron` schedules.
#[derive(Clone, Debug)]
pub(crate) struct Matcher {
    schedules: Vec<cron::Schedule>,
}

impl Matcher {
    pub(crate) fn from_fields(f: &CronFields) -> Result<Matcher, SpecError> {
        let list = |set: ValueSet, lo: u32, hi: u32| -> String {
            if set.covers(lo, hi) {
                "*".to_string()
            } else {
                join(set.iter().map(|v| v.to_string()))
            }
        };
        let time = format!(
            "{} {} {}",
            list(f.seconds, 0, 59),
            list(f.minutes, 0, 59),
            list(f.hours, 0, 23)
        );
        let months = list(f.months, 1, 12);
        let dom = list(f.days_of_month, 1, 31);
        let dow = if f.days_of_week.covers(0, 6) {
            "*".to_string()
        } else {
            join(
                f.days_of_week
                    .iter()
                    .map(|d| WEEKDAY_NAMES[d as usize].to_string()),
            )
        };
        let expressions = if f.dom_star || f.dow_star {
            // Vixie ANDs the day fields when either one's text starts with `*`, which is
            // also what the crate does.
            vec![format!("{time} {dom} {months} {dow}")]
        } else {
            // Both restricted: a day matches if either matches, so take the union of a
            // day-of-month schedule and a day-of-week schedule.
            vec![
                format!("{time} {dom} {months} *"),
                format!("{time} * {months} {dow}"),
            ]
        };
        Matcher::from_expressions(expressions)
    }

    /// One schedule per wall-clock time of a `daily` spec.
    pub(crate) fn daily(times: &[(u32, u32, u32)]) -> Result<Matcher, SpecError> {
        Matcher::from_expressions(
            times
                .iter()
                .map(|(h, m, s)| format!("{s} {m} {h} * * *"))
                .collect(),
        )
    }

    fn from_expressions(expressions: Vec<String>) -> Result<Matcher, SpecError> {
        let schedules = expressions
            .into_iter()
            .map(|e| {
                cron::Schedule::from_str(&e).map_err(|err| SpecError::Engine {
                    detail: err.to_string(),
                    expression: e,
                })
            })
            .collect::<Result<_, _>>()?;
        Ok(Matcher { schedules })
    }

    /// The first local date-time (whole seconds) strictly after `after` that matches.
    /// `None` once the crate's calendar (years up to 2100) is exhausted.
    pub(crate) fn next_match(&self, after: NaiveDateTime) -> Option<NaiveDateTime> {
        let after = Utc.from_utc_datetime(&after);
        self.schedules
            .iter()
            .filter_map(|s| s.after(&after).next())
            .map(|dt| dt.naive_utc())
            .min()
    }
}

fn join(items: impl Iterator<Item = String>) -> String {
    items.collect::<Vec<_>>().join(",")
}

/// A [`Matcher`] that remembers its last answer. `next_match(from) == next`
/// means nothing matches in `(from, next)`, so any later question in
/// `[from, next)` has the same answer without asking the crate again: each
/// ask builds a fresh iterator, most of a next-fire search's cost, and the
/// search asks about the same stretch more than once (the window's first
/// slot, then the first fire in its segments).
pub(crate) struct RememberingMatcher<'a> {
    matcher: &'a Matcher,
    last: Option<(NaiveDateTime, NaiveDateTime)>,
}

impl<'a> RememberingMatcher<'a> {
    pub(crate) fn new(matcher: &'a Matcher) -> Self {
        Self {
            matcher,
            last: None,
        }
    }

    /// As [`Matcher::next_match`].
    pub(crate) fn next_match(&mut self, after: NaiveDateTime) -> Option<NaiveDateTime> {
        if let Some((from, next)) = self.last {
            if from <= after && after < next {
                return Some(next);
            }
        }
        let found = self.matcher.next_match(after)?;
        self.last = Some((after, found));
        Some(found)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schedule::grammar::{self, Form};

    fn matcher(text: &str) -> Matcher {
        match grammar::parse_form(text).unwrap() {
            Form::Cron(fields) => Matcher::from_fields(&fields).unwrap(),
            Form::Daily(times) => Matcher::daily(&times).unwrap(),
            Form::Every(_) => unreachable!("not a calendar spec"),
        }
    }

    #[test]
    fn remembering_answers_what_the_matcher_answers_in_any_order() {
        let start = chrono::NaiveDate::from_ymd_opt(2026, 3, 1)
            .unwrap()
            .and_hms_opt(0, 0, 0)
            .unwrap();
        for text in [
            "*/15 * * * *",
            "0 9 * * MON-FRI",
            "30 2 1,15 * MON",
            "daily 07:00,13:00",
        ] {
            let plain = matcher(text);
            let mut remembering = RememberingMatcher::new(&plain);
            // Forward, repeated, on the boundary and backward questions.
            let mut at = start;
            for step in [
                0,
                0,
                1,
                59,
                -3600,
                899,
                900,
                1,
                86_400,
                -1,
                7 * 86_400,
                -86_400,
            ] {
                at += chrono::Duration::seconds(step);
                assert_eq!(
                    remembering.next_match(at),
                    plain.next_match(at),
                    "{text} after {at}"
                );
                if let Some(next) = plain.next_match(at) {
                    assert_eq!(
                        remembering.next_match(next),
                        plain.next_match(next),
                        "{text} at {next}"
                    );
                    assert_eq!(remembering.next_match(at), Some(next), "{text} asked again");
                }
            }
        }
    }
}
