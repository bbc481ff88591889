//! DST behaviour with exact instants. Expected values were worked out by hand from the
//! zone rules (and the transition instants are asserted against chrono-tz below), so
//! these tests pin the policy rather than echo the implementation.

use chrono::{DateTime, LocalResult, NaiveDate, TimeZone, Utc};
use chrono_tz::Tz;
use ringmaster::schedule::{DstPolicy, ScheduleSpec};

fn at(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

fn fires(spec: &str, tz: &str, dst: DstPolicy, after: &str, n: usize) -> Vec<String> {
    ScheduleSpec::parse(spec, tz, dst)
        .unwrap()
        .upcoming(at(after), n)
        .into_iter()
        .map(|t| t.format("%Y-%m-%dT%H:%M:%SZ").to_string())
        .collect()
}

use DstPolicy::{Literal, Vixie};

const NY: &str = "America/New_York";
const LH: &str = "Australia/Lord_Howe";

// ---- New York, spring forward 2026-03-08 02:00 EST -> 03:00 EDT (07:00Z) ----

#[test]
fn ny_fixed_slot_in_gap_fires_at_gap_end_under_vixie() {
    assert_eq!(
        fires("30 2 * * *", NY, Vixie, "2026-03-07T00:00:00Z", 3),
        [
            "2026-03-07T07:30:00Z",
            "2026-03-08T07:00:00Z",
            "2026-03-09T06:30:00Z"
        ]
    );
}

#[test]
fn ny_fixed_slot_in_gap_is_lost_under_literal() {
    assert_eq!(
        fires("30 2 * * *", NY, Literal, "2026-03-07T00:00:00Z", 2),
        ["2026-03-07T07:30:00Z", "2026-03-09T06:30:00Z"]
    );
}

#[test]
fn ny_gap_fire_with_after_just_before_and_at_the_gap_end() {
    let spec = ScheduleSpec::parse("30 2 * * *", NY, Vixie).unwrap();
    assert_eq!(
        spec.next_after(at("2026-03-08T06:59:59Z")),
        Some(at("2026-03-08T07:00:00Z"))
    );
    assert_eq!(
        spec.next_after(at("2026-03-08T06:59:59.999Z")),
        Some(at("2026-03-08T07:00:00Z"))
    );
    assert_eq!(
        spec.next_after(at("2026-03-08T07:00:00Z")),
        Some(at("2026-03-09T06:30:00Z"))
    );
    assert_eq!(
        spec.next_after(at("2026-03-08T07:00:00.5Z")),
        Some(at("2026-03-09T06:30:00Z"))
    );
}

#[test]
fn ny_several_gap_slots_coalesce_into_one_fire() {
    assert_eq!(
        fires("0,30 2 * * *", NY, Vixie, "2026-03-08T00:00:00Z", 2),
        ["2026-03-08T07:00:00Z", "2026-03-09T06:00:00Z"]
    );
    // A real 03:00 slot lands on the same instant as the coalesced gap fire: one fire.
    assert_eq!(
        fires("0,30 2,3 * * *", NY, Vixie, "2026-03-08T00:00:00Z", 3),
        [
            "2026-03-08T07:00:00Z",
            "2026-03-08T07:30:00Z",
            "2026-03-09T06:00:00Z"
        ]
    );
    assert_eq!(
        fires("0,30 2,3 * * *", NY, Literal, "2026-03-08T00:00:00Z", 3),
        [
            "2026-03-08T07:00:00Z",
            "2026-03-08T07:30:00Z",
            "2026-03-09T06:00:00Z"
        ]
    );
}

#[test]
fn ny_daily_form_is_fixed_time_under_vixie() {
    assert_eq!(
        fires("daily 02:15,02:45", NY, Vixie, "2026-03-08T00:00:00Z", 3),
        [
            "2026-03-08T07:00:00Z",
            "2026-03-09T06:15:00Z",
            "2026-03-09T06:45:00Z"
        ]
    );
}

#[test]
fn ny_hourly_follows_the_clock_through_spring_forward() {
    for dst in [Vixie, Literal] {
        assert_eq!(
            fires("0 * * * *", NY, dst, "2026-03-08T05:30:00Z", 3),
            [
                "2026-03-08T06:00:00Z",
                "2026-03-08T07:00:00Z",
                "2026-03-08T08:00:00Z"
            ]
        );
        assert_eq!(
            fires("*/15 * * * *", NY, dst, "2026-03-08T06:40:00Z", 3),
            [
                "2026-03-08T06:45:00Z",
                "2026-03-08T07:00:00Z",
                "2026-03-08T07:15:00Z"
            ]
        );
    }
}

#[test]
fn ny_wildcard_minute_in_a_fixed_hour_loses_gap_slots_even_under_vixie() {
    // `*/30 2` is not fixed-time (minute starts with `*`), so it follows the clock.
    assert_eq!(
        fires("*/30 2 * * *", NY, Vixie, "2026-03-08T00:00:00Z", 1),
        ["2026-03-09T06:00:00Z"]
    );
}

// ---- New York, fall back 2026-11-01 02:00 EDT -> 01:00 EST (06:00Z) ----

#[test]
fn ny_fixed_slot_in_overlap_fires_once_in_first_fold_under_vixie() {
    assert_eq!(
        fires("30 1 * * *", NY, Vixie, "2026-10-31T00:00:00Z", 3),
        [
            "2026-10-31T05:30:00Z",
            "2026-11-01T05:30:00Z",
            "2026-11-02T06:30:00Z"
        ]
    );
    // Asked from inside the second fold, the first-fold fire is history: next day.
    let spec = ScheduleSpec::parse("30 1 * * *", NY, Vixie).unwrap();
    assert_eq!(
        spec.next_after(at("2026-11-01T06:00:00Z")),
        Some(at("2026-11-02T06:30:00Z"))
    );
}

#[test]
fn ny_fixed_slot_in_overlap_fires_in_both_folds_under_literal() {
    assert_eq!(
        fires("30 1 * * *", NY, Literal, "2026-10-31T00:00:00Z", 4),
        [
            "2026-10-31T05:30:00Z",
            "2026-11-01T05:30:00Z",
            "2026-11-01T06:30:00Z",
            "2026-11-02T06:30:00Z"
        ]
    );
}

#[test]
fn ny_fixed_slot_outside_overlap_is_untouched_by_fall_back() {
    for dst in [Vixie, Literal] {
        assert_eq!(
            fires("30 2 * * *", NY, dst, "2026-10-31T00:00:00Z", 3),
            [
                "2026-10-31T06:30:00Z",
                "2026-11-01T07:30:00Z",
                "2026-11-02T07:30:00Z"
            ]
        );
    }
}

#[test]
fn ny_hourly_and_quarter_hourly_fire_in_both_folds() {
    for dst in [Vixie, Literal] {
        assert_eq!(
            fires("0 * * * *", NY, dst, "2026-11-01T04:30:00Z", 4),
            [
                "2026-11-01T05:00:00Z",
                "2026-11-01T06:00:00Z",
                "2026-11-01T07:00:00Z",
                "2026-11-01T08:00:00Z"
            ]
        );
        assert_eq!(
            fires("*/15 * * * *", NY, dst, "2026-11-01T05:40:00Z", 4),
            [
                "2026-11-01T05:45:00Z",
                "2026-11-01T06:00:00Z",
                "2026-11-01T06:15:00Z",
                "2026-11-01T06:30:00Z"
            ]
        );
    }
}

#[test]
fn ny_hourly_asked_from_inside_first_fold_gets_the_next_real_hour() {
    let spec = ScheduleSpec::parse("*/15 * * * *", NY, Vixie).unwrap();
    // 01:50 EDT: the next quarter hour is 01:00 EST, not 02:00 EST.
    assert_eq!(
        spec.next_after(at("2026-11-01T05:50:00Z")),
        Some(at("2026-11-01T06:00:00Z"))
    );
}

// ---- Australia/Lord_Howe: 30-minute shifts ----

#[test]
fn lord_howe_transitions_are_where_the_tests_assume() {
    let tz: Tz = LH.parse().unwrap();
    let local = |y, m, d, h, mi| {
        NaiveDate::from_ymd_opt(y, m, d)
            .unwrap()
            .and_hms_opt(h, mi, 0)
            .unwrap()
    };
    // Spring forward 2026-10-04 02:00 -> 02:30 (+10:30 -> +11:00).
    assert!(matches!(
        tz.from_local_datetime(&local(2026, 10, 4, 2, 15)),
        LocalResult::None
    ));
    assert_eq!(
        tz.from_local_datetime(&local(2026, 10, 4, 2, 30))
            .unwrap()
            .with_timezone(&Utc),
        at("2026-10-03T15:30:00Z")
    );
    // Fall back 2026-04-05 02:00 -> 01:30 (+11:00 -> +10:30).
    assert!(matches!(
        tz.from_local_datetime(&local(2026, 4, 5, 1, 45)),
        LocalResult::Ambiguous(..)
    ));
    assert!(matches!(
        tz.from_local_datetime(&local(2026, 4, 5, 1, 15)),
        LocalResult::Single(..)
    ));
}

#[test]
fn lord_howe_fixed_slot_in_half_hour_gap() {
    assert_eq!(
        fires("15 2 * * *", LH, Vixie, "2026-10-02T00:00:00Z", 3),
        [
            "2026-10-02T15:45:00Z",
            "2026-10-03T15:30:00Z",
            "2026-10-04T15:15:00Z"
        ]
    );
    assert_eq!(
        fires("15 2 * * *", LH, Literal, "2026-10-02T00:00:00Z", 2),
        ["2026-10-02T15:45:00Z", "2026-10-04T15:15:00Z"]
    );
}

#[test]
fn lord_howe_fixed_slot_in_half_hour_overlap() {
    assert_eq!(
        fires("45 1 * * *", LH, Vixie, "2026-04-03T00:00:00Z", 3),
        [
            "2026-04-03T14:45:00Z",
            "2026-04-04T14:45:00Z",
            "2026-04-05T15:15:00Z"
        ]
    );
    assert_eq!(
        fires("45 1 * * *", LH, Literal, "2026-04-03T00:00:00Z", 4),
        [
            "2026-04-03T14:45:00Z",
            "2026-04-04T14:45:00Z",
            "2026-04-04T15:15:00Z",
            "2026-04-05T15:15:00Z"
        ]
    );
}

#[test]
fn lord_howe_wildcard_jobs_follow_the_clock() {
    for dst in [Vixie, Literal] {
        // 01:00 LHST, [02:00 missing], 03:00 LHDT.
        assert_eq!(
            fires("0 * * * *", LH, dst, "2026-10-03T14:00:00Z", 3),
            [
                "2026-10-03T14:30:00Z",
                "2026-10-03T16:00:00Z",
                "2026-10-03T17:00:00Z"
            ]
        );
        // 01:00 LHDT, 01:30 LHDT, 01:30 LHST, 02:00 LHST.
        assert_eq!(
            fires("*/30 * * * *", LH, dst, "2026-04-04T13:45:00Z", 4),
            [
                "2026-04-04T14:00:00Z",
                "2026-04-04T14:30:00Z",
                "2026-04-04T15:00:00Z",
                "2026-04-04T15:30:00Z"
            ]
        );
    }
}

// ---- Zones without DST ----

#[test]
fn tokyo_has_no_transitions() {
    for dst in [Vixie, Literal] {
        assert_eq!(
            fires("30 2 * * *", "Asia/Tokyo", dst, "2026-03-08T00:00:00Z", 2),
            ["2026-03-08T17:30:00Z", "2026-03-09T17:30:00Z"]
        );
        assert_eq!(
            fires("0 * * * *", "Asia/Tokyo", dst, "2026-11-01T05:30:00Z", 2),
            ["2026-11-01T06:00:00Z", "2026-11-01T07:00:00Z"]
        );
    }
}

#[test]
fn utc_is_plain() {
    assert_eq!(
        fires("30 2 * * *", "UTC", Vixie, "2026-03-08T02:30:00Z", 2),
        ["2026-03-09T02:30:00Z", "2026-03-10T02:30:00Z"]
    );
    assert_eq!(
        fires("0 0 29 2 *", "UTC", Vixie, "2026-01-01T00:00:00Z", 2),
        ["2028-02-29T00:00:00Z", "2032-02-29T00:00:00Z"]
    );
}

#[test]
fn kolkata_half_hour_offset() {
    assert_eq!(
        fires(
            "0 9 * * *",
            "Asia/Kolkata",
            Vixie,
            "2026-06-01T00:00:00Z",
            2
        ),
        ["2026-06-01T03:30:00Z", "2026-06-02T03:30:00Z"]
    );
}

// ---- Europe/London, 2026-03-29 01:00 GMT -> 02:00 BST; 2026-10-25 02:00 BST -> 01:00 GMT ----

#[test]
fn london_both_transitions() {
    assert_eq!(
        fires(
            "30 1 * * *",
            "Europe/London",
            Vixie,
            "2026-03-28T00:00:00Z",
            3
        ),
        [
            "2026-03-28T01:30:00Z",
            "2026-03-29T01:00:00Z",
            "2026-03-30T00:30:00Z"
        ]
    );
    assert_eq!(
        fires(
            "30 1 * * *",
            "Europe/London",
            Literal,
            "2026-10-24T00:00:00Z",
            4
        ),
        [
            "2026-10-24T00:30:00Z",
            "2026-10-25T00:30:00Z",
            "2026-10-25T01:30:00Z",
            "2026-10-26T01:30:00Z"
        ]
    );
}

// ---- Seconds specs ----

#[test]
fn seconds_slots_in_a_gap_coalesce_under_vixie() {
    // `* 30 2` is fixed-time (the seconds field does not count): 60 gap slots, one fire.
    assert_eq!(
        fires("* 30 2 * * *", NY, Vixie, "2026-03-08T00:00:00Z", 3),
        [
            "2026-03-08T07:00:00Z",
            "2026-03-09T06:30:00Z",
            "2026-03-09T06:30:01Z"
        ]
    );
    assert_eq!(
        fires("* 30 2 * * *", NY, Literal, "2026-03-08T00:00:00Z", 1),
        ["2026-03-09T06:30:00Z"]
    );
}

#[test]
fn every_second_runs_straight_through_fall_back() {
    for dst in [Vixie, Literal] {
        assert_eq!(
            fires("* * * * * *", NY, dst, "2026-11-01T05:59:58Z", 3),
            [
                "2026-11-01T05:59:59Z",
                "2026-11-01T06:00:00Z",
                "2026-11-01T06:00:01Z"
            ]
        );
        // 7,200 consecutive seconds across the overlap, none skipped or repeated.
        let spec = ScheduleSpec::parse("* * * * * *", NY, dst).unwrap();
        let start = at("2026-11-01T05:00:00Z");
        let got = spec.upcoming(start, 7200);
        assert_eq!(got.len(), 7200);
        for (k, t) in got.iter().enumerate() {
            assert_eq!(*t, start + chrono::Duration::seconds(k as i64 + 1));
        }
    }
}
