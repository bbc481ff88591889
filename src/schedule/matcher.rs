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
