//! The spec grammar: every accepted form fires where Vixie cron would, and every
//! refusal says which field is wrong, in words the API and CLI can show as is.

use chrono::{DateTime, Duration, Utc};
use ringmaster::schedule::{DstPolicy, ScheduleSpec, SpecError};

fn at(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

fn utc(spec: &str, after: &str, n: usize) -> Vec<String> {
    ScheduleSpec::parse(spec, "UTC", DstPolicy::Vixie)
        .unwrap_or_else(|e| panic!("{spec:?} refused: {e}"))
        .upcoming(at(after), n)
        .into_iter()
        .map(|t| t.format("%Y-%m-%dT%H:%M:%SZ").to_string())
        .collect()
}

fn refusal(spec: &str) -> SpecError {
    match ScheduleSpec::parse(spec, "UTC", DstPolicy::Vixie) {
        Ok(_) => panic!("{spec:?} was accepted"),
        Err(e) => e,
    }
}

fn refused(spec: &str) -> String {
    refusal(spec).to_string()
}

// 2026-06-28 is a Sunday.
const SUNDAY: &str = "2026-06-28T00:00:00Z";

// ---------- accepted forms ----------

#[test]
fn plain_five_fields() {
    assert_eq!(
        utc("30 2 * * *", "2026-01-01T00:00:00Z", 2),
        ["2026-01-01T02:30:00Z", "2026-01-02T02:30:00Z"]
    );
}

#[test]
fn ranges_steps_and_lists() {
    assert_eq!(
        utc("1-30/10 0 * * *", "2026-01-01T00:00:00Z", 4),
        [
            "2026-01-01T00:01:00Z",
            "2026-01-01T00:11:00Z",
            "2026-01-01T00:21:00Z",
            "2026-01-02T00:01:00Z"
        ]
    );
    // `a/n` means `a-max/n`.
    assert_eq!(
        utc("5/20 0 * * *", "2026-01-01T00:00:00Z", 4),
        [
            "2026-01-01T00:05:00Z",
            "2026-01-01T00:25:00Z",
            "2026-01-01T00:45:00Z",
            "2026-01-02T00:05:00Z"
        ]
    );
    assert_eq!(
        utc("1,5,10-12 0 * * *", "2026-01-01T00:00:00Z", 6),
        [
            "2026-01-01T00:01:00Z",
            "2026-01-01T00:05:00Z",
            "2026-01-01T00:10:00Z",
            "2026-01-01T00:11:00Z",
            "2026-01-01T00:12:00Z",
            "2026-01-02T00:01:00Z"
        ]
    );
    assert_eq!(
        utc("*/15 * * * *", "2026-01-01T00:00:00Z", 3),
        [
            "2026-01-01T00:15:00Z",
            "2026-01-01T00:30:00Z",
            "2026-01-01T00:45:00Z"
        ]
    );
    // A step larger than the range is allowed and yields just the start.
    assert_eq!(
        utc("*/90 3 * * *", "2026-01-01T00:00:00Z", 2),
        ["2026-01-01T03:00:00Z", "2026-01-02T03:00:00Z"]
    );
}

#[test]
fn names_in_any_case() {
    let expected = ["2026-03-01T00:00:00Z", "2027-03-01T00:00:00Z"];
    for spec in ["0 0 1 MAR *", "0 0 1 mar *", "0 0 1 Mar *", "0 0 1 3 *"] {
        assert_eq!(utc(spec, "2026-01-01T00:00:00Z", 2), expected, "{spec}");
    }
    for spec in ["0 9 * * MON-FRI", "0 9 * * mon-fri", "0 9 * * 1-5"] {
        assert_eq!(
            utc(spec, SUNDAY, 6),
            [
                "2026-06-29T09:00:00Z",
                "2026-06-30T09:00:00Z",
                "2026-07-01T09:00:00Z",
                "2026-07-02T09:00:00Z",
                "2026-07-03T09:00:00Z",
                "2026-07-06T09:00:00Z"
            ],
            "{spec}"
        );
    }
    assert_eq!(
        utc("0 0 1 jan-feb,DEC *", "2026-01-01T00:00:00Z", 4),
        [
            "2026-02-01T00:00:00Z",
            "2026-12-01T00:00:00Z",
            "2027-01-01T00:00:00Z",
            "2027-02-01T00:00:00Z"
        ]
    );
}

#[test]
fn sunday_is_both_zero_and_seven() {
    let expected = ["2026-07-05T12:00:00Z", "2026-07-12T12:00:00Z"];
    for spec in ["0 12 * * 0", "0 12 * * 7", "0 12 * * SUN", "0 12 * * sun"] {
        assert_eq!(utc(spec, "2026-06-28T12:00:00Z", 2), expected, "{spec}");
    }
    // 5-7 is Friday, Saturday, Sunday.
    assert_eq!(
        utc("0 12 * * 5-7", SUNDAY, 4),
        [
            "2026-06-28T12:00:00Z",
            "2026-07-03T12:00:00Z",
            "2026-07-04T12:00:00Z",
            "2026-07-05T12:00:00Z"
        ]
    );
}

#[test]
fn question_mark_in_day_fields_means_any() {
    assert_eq!(utc("0 0 ? * MON", SUNDAY, 2), utc("0 0 * * MON", SUNDAY, 2));
    assert_eq!(
        utc("0 0 1 * ?", SUNDAY, 2),
        ["2026-07-01T00:00:00Z", "2026-08-01T00:00:00Z"]
    );
}

#[test]
fn either_day_rule_when_both_day_fields_are_restricted() {
    // The 1st of the month OR any Monday.
    assert_eq!(
        utc("0 0 1 * MON", SUNDAY, 4),
        [
            "2026-06-29T00:00:00Z",
            "2026-07-01T00:00:00Z",
            "2026-07-06T00:00:00Z",
            "2026-07-13T00:00:00Z"
        ]
    );
    assert_eq!(
        utc("0 0 13 * 5", "2026-02-01T00:00:00Z", 3),
        [
            "2026-02-06T00:00:00Z",
            "2026-02-13T00:00:00Z",
            "2026-02-20T00:00:00Z"
        ]
    );
}

#[test]
fn a_day_field_starting_with_star_makes_the_days_and() {
    // Vixie quirk: `*/2` starts with `*`, so the day fields are ANDed: odd days that
    // are Mondays.
    assert_eq!(
        utc("0 0 */2 * MON", SUNDAY, 3),
        [
            "2026-06-29T00:00:00Z",
            "2026-07-13T00:00:00Z",
            "2026-07-27T00:00:00Z"
        ]
    );
    // Restricted day-of-month with `*` day-of-week: just the day of month.
    assert_eq!(
        utc("0 0 1 * *", SUNDAY, 2),
        ["2026-07-01T00:00:00Z", "2026-08-01T00:00:00Z"]
    );
}

#[test]
fn macros() {
    let after = "2026-06-28T10:30:00Z";
    assert_eq!(
        utc("@hourly", after, 2),
        ["2026-06-28T11:00:00Z", "2026-06-28T12:00:00Z"]
    );
    for m in ["@daily", "@midnight", "@DAILY"] {
        assert_eq!(
            utc(m, after, 2),
            ["2026-06-29T00:00:00Z", "2026-06-30T00:00:00Z"],
            "{m}"
        );
    }
    assert_eq!(
        utc("@weekly", after, 2),
        ["2026-07-05T00:00:00Z", "2026-07-12T00:00:00Z"]
    );
    assert_eq!(
        utc("@monthly", after, 2),
        ["2026-07-01T00:00:00Z", "2026-08-01T00:00:00Z"]
    );
    for m in ["@yearly", "@annually"] {
        assert_eq!(
            utc(m, after, 2),
            ["2027-01-01T00:00:00Z", "2028-01-01T00:00:00Z"],
            "{m}"
        );
    }
}

#[test]
fn six_fields_put_seconds_first() {
    assert_eq!(
        utc("30 * * * * *", "2026-01-01T00:00:00Z", 3),
        [
            "2026-01-01T00:00:30Z",
            "2026-01-01T00:01:30Z",
            "2026-01-01T00:02:30Z"
        ]
    );
    assert_eq!(
        utc("*/20 0 12 * * *", "2026-01-01T00:00:00Z", 4),
        [
            "2026-01-01T12:00:00Z",
            "2026-01-01T12:00:20Z",
            "2026-01-01T12:00:40Z",
            "2026-01-02T12:00:00Z"
        ]
    );
}

#[test]
fn every_fires_the_interval_after_the_instant_asked_about() {
    let cases = [
        ("every 15m", Duration::minutes(15)),
        ("every 1h", Duration::hours(1)),
        ("every 90s", Duration::seconds(90)),
        ("every 2h30m", Duration::minutes(150)),
        ("EVERY 1d", Duration::days(1)),
    ];
    let after = at("2026-03-08T06:59:59.250Z");
    for (text, step) in cases {
        // Timezone and DST are irrelevant to intervals.
        let spec = ScheduleSpec::parse(text, "America/New_York", DstPolicy::Vixie).unwrap();
        assert!(!spec.is_fixed_time(), "{text}");
        assert_eq!(spec.next_after(after), Some(after + step), "{text}");
        assert_eq!(
            spec.upcoming(after, 3),
            [after + step, after + step * 2, after + step * 3],
            "{text}"
        );
    }
}

#[test]
fn daily_wall_clock_times() {
    assert_eq!(
        utc("daily 03:00", "2026-01-01T03:00:00Z", 2),
        ["2026-01-02T03:00:00Z", "2026-01-03T03:00:00Z"]
    );
    let expected = [
        "2026-01-01T07:00:00Z",
        "2026-01-01T13:00:00Z",
        "2026-01-02T07:00:00Z",
    ];
    assert_eq!(
        utc("daily 07:00,13:00", "2026-01-01T00:00:00Z", 3),
        expected
    );
    assert_eq!(
        utc("daily 13:00,07:00", "2026-01-01T00:00:00Z", 3),
        expected
    );
    assert_eq!(
        utc("daily 07:00, 13:00", "2026-01-01T00:00:00Z", 3),
        expected
    );
    assert_eq!(
        utc("daily 07:00:30", "2026-01-01T00:00:00Z", 1),
        ["2026-01-01T07:00:30Z"]
    );
}

#[test]
fn leap_day_spec_is_accepted_and_fires_every_four_years() {
    assert_eq!(
        utc("0 0 29 2 *", "2026-01-01T00:00:00Z", 3),
        [
            "2028-02-29T00:00:00Z",
            "2032-02-29T00:00:00Z",
            "2036-02-29T00:00:00Z"
        ]
    );
}

#[test]
fn fixed_time_classification() {
    let fixed = |s: &str| {
        ScheduleSpec::parse(s, "UTC", DstPolicy::Vixie)
            .unwrap()
            .is_fixed_time()
    };
    assert!(fixed("30 2 * * *"));
    assert!(fixed("0,30 1-3 * * *"));
    assert!(fixed("0 0-23/2 * * *")); // textual rule: does not start with `*`
    assert!(fixed("* 30 2 * * *")); // seconds do not count
    assert!(fixed("@daily"));
    assert!(fixed("daily 03:00"));
    assert!(!fixed("0 * * * *"));
    assert!(!fixed("*/15 2 * * *"));
    assert!(!fixed("0 */2 * * *"));
    assert!(!fixed("@hourly"));
    assert!(!fixed("every 1h"));
}

#[test]
fn accessors_report_what_was_parsed() {
    let spec = ScheduleSpec::parse("  0 9 * * MON  ", "Europe/London", DstPolicy::Literal).unwrap();
    assert_eq!(spec.text(), "0 9 * * MON");
    assert_eq!(spec.timezone(), chrono_tz::Europe::London);
    assert_eq!(spec.dst(), DstPolicy::Literal);
}

#[test]
fn next_after_is_strictly_later() {
    let spec = ScheduleSpec::parse("0 0 * * *", "UTC", DstPolicy::Vixie).unwrap();
    assert_eq!(
        spec.next_after(at("2026-01-01T00:00:00Z")),
        Some(at("2026-01-02T00:00:00Z"))
    );
    assert_eq!(
        spec.next_after(at("2025-12-31T23:59:59.999Z")),
        Some(at("2026-01-01T00:00:00Z"))
    );
}

// ---------- DstPolicy ----------

#[test]
fn dst_policy_text_forms() {
    assert_eq!(DstPolicy::default(), DstPolicy::Vixie);
    assert_eq!("vixie".parse::<DstPolicy>(), Ok(DstPolicy::Vixie));
    assert_eq!("LITERAL".parse::<DstPolicy>(), Ok(DstPolicy::Literal));
    assert_eq!("Vixie".parse::<DstPolicy>(), Ok(DstPolicy::Vixie));
    let err = "sometimes".parse::<DstPolicy>().unwrap_err();
    assert_eq!(
        err.to_string(),
        "dst: unknown policy \"sometimes\" (expected vixie or literal)"
    );
    assert_eq!(err.field(), Some("dst"));
    assert_eq!(DstPolicy::Vixie.to_string(), "vixie");
    assert_eq!(DstPolicy::Literal.to_string(), "literal");
    assert_eq!(
        serde_json::to_string(&DstPolicy::Literal).unwrap(),
        "\"literal\""
    );
    assert_eq!(
        serde_json::from_str::<DstPolicy>("\"vixie\"").unwrap(),
        DstPolicy::Vixie
    );
}

// ---------- refusals ----------

#[test]
fn out_of_range_values_name_the_field() {
    let cases = [
        ("0 0 32 * *", "day-of-month: 32 is out of range 1-31"),
        ("0 0 0 * *", "day-of-month: 0 is out of range 1-31"),
        ("60 * * * *", "minute: 60 is out of range 0-59"),
        ("0 24 * * *", "hour: 24 is out of range 0-23"),
        ("0 0 * 13 *", "month: 13 is out of range 1-12"),
        ("0 0 * 0 *", "month: 0 is out of range 1-12"),
        ("0 0 * * 8", "day-of-week: 8 is out of range 0-7"),
        ("60 0 0 * * *", "second: 60 is out of range 0-59"),
        ("0 1-24 * * *", "hour: 24 is out of range 0-23"),
        (
            "99999999999 * * * *",
            "minute: 99999999999 is out of range 0-59",
        ),
    ];
    for (spec, message) in cases {
        assert_eq!(refused(spec), message, "{spec}");
    }
    assert_eq!(refusal("0 0 32 * *").field(), Some("day-of-month"));
    assert_eq!(refusal("0 24 * * *").field(), Some("hour"));
}

#[test]
fn reversed_ranges_step_zero_and_unknown_names() {
    let cases = [
        ("0 5-2 * * *", "hour: range 5-2 is reversed"),
        ("0 0 * * FRI-MON", "day-of-week: range FRI-MON is reversed"),
        ("*/0 * * * *", "minute: step 0 is not allowed in */0"),
        ("0 1-10/0 * * *", "hour: step 0 is not allowed in 1-10/0"),
        ("0 0 1 FOO *", "month: unknown name FOO"),
        ("0 0 * * FUNDAY", "day-of-week: unknown name FUNDAY"),
        ("0 0 * * MONDAY", "day-of-week: unknown name MONDAY"),
        ("0 0 1 MON *", "month: unknown name MON"),
    ];
    for (spec, message) in cases {
        assert_eq!(refused(spec), message, "{spec}");
    }
    assert_eq!(refusal("0 0 1 FOO *").field(), Some("month"));
}

#[test]
fn garbage_in_a_field() {
    let cases = [
        ("abc * * * *", "minute: \"abc\" is not a number"),
        ("*/x * * * *", "minute: \"x\" is not a number"),
        ("0 JAN * * *", "hour: \"JAN\" is not a number"),
        ("0 0 1x * *", "day-of-month: \"1x\" is not a number"),
        ("0 0 * * -1", "day-of-week: \"\" is not a number"),
        ("1,,2 * * * *", "minute: empty item in list \"1,,2\""),
        (
            "0 ? * * *",
            "hour: ? is only allowed in day-of-month and day-of-week",
        ),
    ];
    for (spec, message) in cases {
        assert_eq!(refused(spec), message, "{spec}");
    }
}

#[test]
fn wrong_field_count_and_empty() {
    assert_eq!(
        refused("* * *"),
        "expected 5 fields (or 6 with seconds), found 3"
    );
    assert_eq!(
        refused("0 0 0 1 1 * 2030"),
        "expected 5 fields (or 6 with seconds), found 7"
    );
    assert_eq!(refusal("* * *").field(), Some("cron"));
    assert_eq!(refusal("   "), SpecError::Empty);
    assert_eq!(refused(""), "cron: the spec is empty");
}

#[test]
fn specs_that_can_never_fire() {
    for spec in [
        "0 0 30 2 *",
        "0 0 31 4 *",
        "0 0 31 2,4,6,9,11 *",
        "0 0 30,31 FEB *",
    ] {
        assert_eq!(refused(spec), format!("spec {spec:?} can never fire"));
        assert_eq!(refusal(spec).field(), Some("cron"));
    }
    // The either-day rule rescues a dead day of month.
    assert!(ScheduleSpec::parse("0 0 30 2 MON", "UTC", DstPolicy::Vixie).is_ok());
}

#[test]
fn unknown_timezone() {
    let err = ScheduleSpec::parse("0 0 * * *", "Mars/Base", DstPolicy::Vixie).unwrap_err();
    assert_eq!(err.to_string(), "timezone: unknown IANA zone \"Mars/Base\"");
    assert_eq!(err.field(), Some("timezone"));
    assert_eq!(err, SpecError::UnknownTimezone("Mars/Base".into()));
}

#[test]
fn macro_refusals() {
    assert_eq!(
        refused("@reboot"),
        "@reboot is not supported: schedules fire at times, not at process start"
    );
    assert_eq!(
        refused("@fortnightly"),
        "unknown macro @fortnightly (expected @hourly, @daily, @midnight, @weekly, @monthly, @yearly or @annually)"
    );
    assert_eq!(refusal("@reboot").field(), Some("cron"));
}

#[test]
fn interval_refusals() {
    let cases = [
        ("every 0m", "every 0m: interval must be positive"),
        ("every 0h0m", "every 0h0m: interval must be positive"),
        (
            "every 15",
            "every 15: expected a duration such as 15m, 1h, 90s or 2h30m",
        ),
        (
            "every",
            "every: expected a duration such as 15m, 1h, 90s or 2h30m",
        ),
        (
            "every m",
            "every m: expected a duration such as 15m, 1h, 90s or 2h30m",
        ),
        ("every 5x", "every 5x: unknown unit 'x' (use s, m, h or d)"),
        ("every 400d", "every 400d: interval must be at most 366d"),
    ];
    for (spec, message) in cases {
        assert_eq!(refused(spec), message, "{spec}");
        assert_eq!(refusal(spec).field(), Some("cron"));
    }
}

#[test]
fn daily_refusals() {
    assert_eq!(
        refused("daily 25:00"),
        "daily: \"25:00\" has hour 25, out of range 0-23"
    );
    assert_eq!(
        refused("daily 07:60"),
        "daily: \"07:60\" has minute 60, out of range 0-59"
    );
    assert_eq!(
        refused("daily 3am"),
        "daily: \"3am\" is not a time (expected HH:MM or HH:MM:SS, e.g. daily 03:00 or daily 07:00,13:00)"
    );
    assert_eq!(
        refused("daily 07:00,"),
        "daily: \"\" is not a time (expected HH:MM or HH:MM:SS, e.g. daily 03:00 or daily 07:00,13:00)"
    );
}

#[test]
fn extreme_instants_give_none_instead_of_panicking() {
    for text in ["0 0 * * *", "every 1h", "daily 03:00"] {
        let spec = ScheduleSpec::parse(text, "Pacific/Chatham", DstPolicy::Vixie).unwrap();
        assert_eq!(spec.next_after(DateTime::<Utc>::MAX_UTC), None, "{text}");
        assert!(
            spec.upcoming(DateTime::<Utc>::MAX_UTC, 3).is_empty(),
            "{text}"
        );
    }
    let spec = ScheduleSpec::parse("0 0 * * *", "UTC", DstPolicy::Vixie).unwrap();
    assert_eq!(spec.next_after(DateTime::<Utc>::MIN_UTC), None);
    // The matcher's calendar ends with 2100.
    assert_eq!(
        spec.upcoming(at("2100-12-30T12:00:00Z"), 3),
        [at("2100-12-31T00:00:00Z")]
    );
}
