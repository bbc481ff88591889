//! The spec grammar we own, so that the meaning of a spec is Vixie cron's and not
//! whatever the `cron` crate happens to do: field syntax, names, `0`/`7` Sunday, the
//! "starts with `*`" rule for the either-day match, macros, and the `every` / `daily`
//! forms. Output is normalized value sets; nothing here knows about timezones.

use std::time::Duration;

use super::error::{DailyTimeProblem, FieldProblem, IntervalProblem, SpecError};

/// Longest `every …` interval accepted. Longer ones are almost certainly typos, and the
/// bound keeps instant arithmetic far from overflow.
pub(crate) const MAX_INTERVAL_DAYS: u32 = 366;

/// A set of small integers (every cron field value is < 64).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub(crate) struct ValueSet(u64);

impl ValueSet {
    fn insert(&mut self, v: u32) {
        self.0 |= 1 << v;
    }

    pub(crate) fn contains(self, v: u32) -> bool {
        v < 64 && self.0 & (1 << v) != 0
    }

    pub(crate) fn iter(self) -> impl Iterator<Item = u32> {
        (0..64).filter(move |v| self.contains(*v))
    }

    fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// Whether the set holds every value of `lo..=hi`.
    pub(crate) fn covers(self, lo: u32, hi: u32) -> bool {
        (lo..=hi).all(|v| self.contains(v))
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Field {
    Second,
    Minute,
    Hour,
    DayOfMonth,
    Month,
    DayOfWeek,
}

const MONTHS: [&str; 12] = [
    "JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC",
];
const WEEKDAYS: [&str; 7] = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"];

impl Field {
    fn name(self) -> &'static str {
        match self {
            Field::Second => "second",
            Field::Minute => "minute",
            Field::Hour => "hour",
            Field::DayOfMonth => "day-of-month",
            Field::Month => "month",
            Field::DayOfWeek => "day-of-week",
        }
    }

    /// Inclusive bounds as written; day-of-week allows 7 for Sunday like Vixie does.
    fn bounds(self) -> (u32, u32) {
        match self {
            Field::Second | Field::Minute => (0, 59),
            Field::Hour => (0, 23),
            Field::DayOfMonth => (1, 31),
            Field::Month => (1, 12),
            Field::DayOfWeek => (0, 7),
        }
    }

    fn lookup_name(self, word: &str) -> Option<u32> {
        let (names, first): (&[&str], u32) = match self {
            Field::Month => (&MONTHS, 1),
            Field::DayOfWeek => (&WEEKDAYS, 0),
            _ => return None,
        };
        names
            .iter()
            .position(|n| n.eq_ignore_ascii_case(word))
            .map(|i| i as u32 + first)
    }

    fn has_names(self) -> bool {
        matches!(self, Field::Month | Field::DayOfWeek)
    }

    fn is_day(self) -> bool {
        matches!(self, Field::DayOfMonth | Field::DayOfWeek)
    }
}

/// A cron expression reduced to value sets plus the two textual facts Vixie semantics
/// depend on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct CronFields {
    pub seconds: ValueSet,
    pub minutes: ValueSet,
    pub hours: ValueSet,
    pub days_of_month: ValueSet,
    pub months: ValueSet,
    /// 0 = Sunday … 6 = Saturday (a written 7 is folded into 0).
    pub days_of_week: ValueSet,
    /// Day-of-month text starts with `*` or is `?`: Vixie then ANDs the day fields.
    pub dom_star: bool,
    /// Day-of-week text starts with `*` or is `?`.
    pub dow_star: bool,
    /// Neither minute nor hour text starts with `*`: the job names wall-clock times, so
    /// the DST policy treats its slots as appointments rather than clock ticks.
    pub fixed_time: bool,
}

/// What a spec means before any timezone is involved.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Form {
    Cron(CronFields),
    /// `every N`: fires N after the instant asked about.
    Every(Duration),
    /// `daily HH:MM[,…]`: wall-clock (hour, minute, second) times, sorted, deduplicated.
    Daily(Vec<(u32, u32, u32)>),
}

pub(crate) fn parse_form(text: &str) -> Result<Form, SpecError> {
    let text = text.trim();
    if text.is_empty() {
        return Err(SpecError::Empty);
    }
    if let Some(name) = text.strip_prefix('@') {
        return parse_cron(expand_macro(name, text)?).map(Form::Cron);
    }
    let mut words = text.split_whitespace();
    let head = words.next().unwrap_or_default();
    if head.eq_ignore_ascii_case("every") {
        let rest: Vec<&str> = words.collect();
        return parse_every(&rest.concat(), text).map(Form::Every);
    }
    if head.eq_ignore_ascii_case("daily") {
        let rest: Vec<&str> = words.collect();
        return parse_daily(&rest.concat()).map(Form::Daily);
    }
    parse_cron(text).map(Form::Cron)
}

fn expand_macro(name: &str, text: &str) -> Result<&'static str, SpecError> {
    Ok(match name.to_ascii_lowercase().as_str() {
        "hourly" => "0 * * * *",
        "daily" | "midnight" => "0 0 * * *",
        "weekly" => "0 0 * * 0",
        "monthly" => "0 0 1 * *",
        "yearly" | "annually" => "0 0 1 1 *",
        "reboot" => return Err(SpecError::Reboot),
        _ => {
            return Err(SpecError::UnknownMacro {
                name: text.to_string(),
            })
        }
    })
}

fn parse_cron(text: &str) -> Result<CronFields, SpecError> {
    let parts: Vec<&str> = text.split_whitespace().collect();
    let (sec, rest) = match parts.len() {
        5 => ("0", &parts[..]),
        6 => (parts[0], &parts[1..]),
        found => return Err(SpecError::FieldCount { found }),
    };
    let [min, hour, dom, mon, dow] = [rest[0], rest[1], rest[2], rest[3], rest[4]];
    let star = |t: &str| t.starts_with('*') || t == "?";
    Ok(CronFields {
        seconds: parse_field(Field::Second, sec)?,
        minutes: parse_field(Field::Minute, min)?,
        hours: parse_field(Field::Hour, hour)?,
        days_of_month: parse_field(Field::DayOfMonth, dom)?,
        months: parse_field(Field::Month, mon)?,
        days_of_week: parse_field(Field::DayOfWeek, dow)?,
        dom_star: star(dom),
        dow_star: star(dow),
        fixed_time: !min.starts_with('*') && !hour.starts_with('*'),
    })
}

fn parse_field(field: Field, text: &str) -> Result<ValueSet, SpecError> {
    let fail = |problem| SpecError::Field {
        field: field.name(),
        value: text.to_string(),
        problem,
    };
    let (min, max) = field.bounds();
    let mut set = ValueSet::default();
    for item in text.split(',') {
        if item.is_empty() {
            return Err(fail(FieldProblem::EmptyItem {
                list: text.to_string(),
            }));
        }
        let (range, step) = match item.split_once('/') {
            Some((range, step)) => {
                let step = parse_number(step).ok_or_else(|| {
                    fail(FieldProblem::NotANumber {
                        text: step.to_string(),
                    })
                })?;
                if step == 0 {
                    return Err(fail(FieldProblem::StepZero {
                        item: item.to_string(),
                    }));
                }
                (range, Some(step))
            }
            None => (item, None),
        };
        let (lo, hi) = if range == "*" || range == "?" {
            if range == "?" && !field.is_day() {
                return Err(fail(FieldProblem::QuestionMark));
            }
            (min, max)
        } else if let Some((a, b)) = range.split_once('-') {
            let (a, b) = (
                parse_value(field, a).map_err(fail)?,
                parse_value(field, b).map_err(fail)?,
            );
            if a > b {
                return Err(fail(FieldProblem::Reversed {
                    range: range.to_string(),
                }));
            }
            (a, b)
        } else {
            let a = parse_value(field, range).map_err(fail)?;
            // Vixie reads `a/n` as `a-max/n`.
            (a, if step.is_some() { max } else { a })
        };
        let step = step.unwrap_or(1).min(64) as usize;
        for v in (lo..=hi).step_by(step) {
            set.insert(if field == Field::DayOfWeek { v % 7 } else { v });
        }
    }
    debug_assert!(!set.is_empty());
    Ok(set)
}

/// Digits only; `None` for anything else. Overflow saturates so the range check reports
/// it as out of range rather than as "not a number".
fn parse_number(text: &str) -> Option<u32> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some(text.parse().unwrap_or(u32::MAX))
}

fn parse_value(field: Field, text: &str) -> Result<u32, FieldProblem> {
    let (min, max) = field.bounds();
    let value = match parse_number(text) {
        Some(v) => v,
        None => {
            if let Some(v) = field.lookup_name(text) {
                return Ok(v);
            }
            let wordlike = !text.is_empty() && text.bytes().all(|b| b.is_ascii_alphabetic());
            return Err(if field.has_names() && wordlike {
                FieldProblem::UnknownName {
                    name: text.to_string(),
                }
            } else {
                FieldProblem::NotANumber {
                    text: text.to_string(),
                }
            });
        }
    };
    if value < min || value > max {
        return Err(FieldProblem::OutOfRange {
            value: text.to_string(),
            min,
            max,
        });
    }
    Ok(value)
}

fn parse_every(duration: &str, spec: &str) -> Result<Duration, SpecError> {
    let fail = |problem| SpecError::BadInterval {
        spec: spec.to_string(),
        problem,
    };
    if duration.is_empty() {
        return Err(fail(IntervalProblem::Malformed));
    }
    let mut total: u64 = 0;
    let mut digits = String::new();
    for c in duration.chars() {
        if c.is_ascii_digit() {
            digits.push(c);
            continue;
        }
        let unit: u64 = match c.to_ascii_lowercase() {
            's' => 1,
            'm' => 60,
            'h' => 3600,
            'd' => 86_400,
            _ if c.is_alphabetic() => return Err(fail(IntervalProblem::UnknownUnit { unit: c })),
            _ => return Err(fail(IntervalProblem::Malformed)),
        };
        let amount: u64 = digits
            .parse()
            .map_err(|_| fail(IntervalProblem::Malformed))?;
        digits.clear();
        total = amount
            .checked_mul(unit)
            .and_then(|s| total.checked_add(s))
            .unwrap_or(u64::MAX);
    }
    if !digits.is_empty() {
        // A trailing bare number has no unit; refusing beats guessing seconds vs minutes.
        return Err(fail(IntervalProblem::Malformed));
    }
    if total == 0 {
        return Err(fail(IntervalProblem::NotPositive));
    }
    if total > u64::from(MAX_INTERVAL_DAYS) * 86_400 {
        return Err(fail(IntervalProblem::TooLong {
            max_days: MAX_INTERVAL_DAYS,
        }));
    }
    Ok(Duration::from_secs(total))
}

fn parse_daily(times: &str) -> Result<Vec<(u32, u32, u32)>, SpecError> {
    let mut out = Vec::new();
    for time in times.split(',') {
        let fail = |problem| SpecError::BadDailyTime {
            time: time.to_string(),
            problem,
        };
        let parts: Vec<&str> = time.split(':').collect();
        if !(2..=3).contains(&parts.len()) || parts.iter().any(|p| p.len() != 2) {
            return Err(fail(DailyTimeProblem::Malformed));
        }
        let mut hms = [0u32; 3];
        for (i, (part, name, max)) in [("hour", 23), ("minute", 59), ("second", 59)]
            .iter()
            .zip(&parts)
            .map(|(&(name, max), part)| (part, name, max))
            .enumerate()
        {
            let value = parse_number(part).ok_or_else(|| fail(DailyTimeProblem::Malformed))?;
            if value > max {
                return Err(fail(DailyTimeProblem::OutOfRange {
                    part: name,
                    value,
                    max,
                }));
            }
            hms[i] = value;
        }
        out.push((hms[0], hms[1], hms[2]));
    }
    out.sort_unstable();
    out.dedup();
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn days(text: &str) -> Vec<u32> {
        parse_field(Field::DayOfWeek, text)
            .unwrap()
            .iter()
            .collect()
    }

    #[test]
    fn day_of_week_folds_seven_into_sunday() {
        assert_eq!(days("5-7"), vec![0, 5, 6]);
        assert_eq!(days("7"), vec![0]);
        assert_eq!(days("*/2"), vec![0, 2, 4, 6]);
        assert_eq!(days("1/2"), vec![0, 1, 3, 5]);
        assert_eq!(days("mon-Fri"), vec![1, 2, 3, 4, 5]);
    }
}
