//! Properties over random specs × zones × instants near DST transitions.
//!
//! The oracle here is written independently of the module: it evaluates the Vixie
//! matching rules on generated field *values* (not on our parser's output) and walks
//! real time minute by minute, so a disagreement is a bug in one of the two, not an
//! echo of the implementation.

use std::collections::BTreeMap;

use chrono::{DateTime, Datelike, Duration, LocalResult, NaiveDateTime, TimeZone, Timelike, Utc};
use chrono_tz::Tz;
use proptest::prelude::*;
use ringmaster::schedule::{DstPolicy, ScheduleSpec};

/// Zones with their 2026 transition instants (checked against chrono-tz in
/// `anchors_are_transitions`); zones without DST get an ordinary instant. Tests start
/// shortly before these so the oracle window spans the transition.
const ZONES: [(&str, &[&str]); 6] = [
    (
        "America/New_York",
        &["2026-03-08T07:00:00Z", "2026-11-01T06:00:00Z"],
    ),
    (
        "Europe/London",
        &["2026-03-29T01:00:00Z", "2026-10-25T01:00:00Z"],
    ),
    (
        "Australia/Lord_Howe",
        &["2026-10-03T15:30:00Z", "2026-04-04T15:00:00Z"],
    ),
    (
        "Pacific/Chatham",
        &["2026-09-26T14:00:00Z", "2026-04-04T14:00:00Z"],
    ),
    ("Asia/Kolkata", &["2026-06-15T12:00:00Z"]),
    ("UTC", &["2026-06-15T12:00:00Z"]),
];

/// How far past `after` the oracle compares fires.
const WINDOW_HOURS: i64 = 100;

/// One generated field: its text and the values it means (day-of-week 7 folded to 0).
#[derive(Clone, Debug)]
struct Field {
    text: String,
    values: Vec<u32>,
}

fn item(lo: u32, hi: u32) -> impl Strategy<Value = Field> {
    prop_oneof![
        (lo..=hi).prop_map(|v| Field {
            text: v.to_string(),
            values: vec![v]
        }),
        (lo..=hi, lo..=hi).prop_map(|(a, b)| {
            let (a, b) = (a.min(b), a.max(b));
            Field {
                text: format!("{a}-{b}"),
                values: (a..=b).collect(),
            }
        }),
        (lo..=hi, lo..=hi, 1..=hi.max(2)).prop_map(|(a, b, s)| {
            let (a, b) = (a.min(b), a.max(b));
            Field {
                text: format!("{a}-{b}/{s}"),
                values: (a..=b).step_by(s as usize).collect(),
            }
        }),
    ]
}

fn list(lo: u32, hi: u32) -> impl Strategy<Value = Field> {
    prop::collection::vec(item(lo, hi), 1..=3).prop_map(|items| Field {
        text: items
            .iter()
            .map(|i| i.text.clone())
            .collect::<Vec<_>>()
            .join(","),
        values: items.into_iter().flat_map(|i| i.values).collect(),
    })
}

fn star(lo: u32, hi: u32) -> impl Strategy<Value = Field> {
    prop_oneof![
        Just(Field {
            text: "*".into(),
            values: (lo..=hi).collect()
        }),
        (1..=hi.max(2)).prop_map(move |s| Field {
            text: format!("*/{s}"),
            values: (lo..=hi).step_by(s as usize).collect(),
        }),
    ]
}

fn field(lo: u32, hi: u32) -> impl Strategy<Value = Field> {
    prop_oneof![1 => star(lo, hi), 3 => list(lo, hi)]
}

/// Hours are drawn mostly from 0-4 local, where transitions happen.
fn hour() -> impl Strategy<Value = Field> {
    prop_oneof![2 => star(0, 23), 3 => list(0, 4), 1 => list(0, 23)]
}

fn day_of_week() -> impl Strategy<Value = Field> {
    const NAMES: [&str; 7] = ["sun", "MON", "Tue", "wed", "THU", "fri", "SAT"];
    prop_oneof![
        5 => Just(Field { text: "*".into(), values: (0..=6).collect() }),
        1 => Just(Field { text: "?".into(), values: (0..=6).collect() }),
        2 => list(0, 7),
        1 => (0usize..7).prop_map(|d| Field { text: NAMES[d].into(), values: vec![d as u32] }),
    ]
    .prop_map(|mut f| {
        for v in &mut f.values {
            *v %= 7;
        }
        f
    })
}

fn day_of_month() -> impl Strategy<Value = Field> {
    prop_oneof![
        5 => Just(Field { text: "*".into(), values: (1..=31).collect() }),
        1 => Just(Field { text: "?".into(), values: (1..=31).collect() }),
        1 => star(1, 31),
        2 => list(1, 28),
    ]
}

#[derive(Clone, Debug)]
struct Spec {
    /// `Some` for the 6-field form.
    second: Option<Field>,
    minute: Field,
    hour: Field,
    dom: Field,
    dow: Field,
}

impl Spec {
    fn text(&self) -> String {
        let five = format!(
            "{} {} {} * {}",
            self.minute.text, self.hour.text, self.dom.text, self.dow.text
        );
        match &self.second {
            Some(second) => format!("{} {five}", second.text),
            None => five,
        }
    }

    /// The oracle's time step: a second for the 6-field form, else a minute.
    fn step(&self) -> Duration {
        if self.second.is_some() {
            Duration::seconds(1)
        } else {
            Duration::minutes(1)
        }
    }

    fn fixed_time(&self) -> bool {
        !self.minute.text.starts_with('*') && !self.hour.text.starts_with('*')
    }

    /// Vixie matching of one local time.
    fn matches(&self, local: NaiveDateTime) -> bool {
        let starred = |f: &Field| f.text.starts_with('*') || f.text == "?";
        let dom = self.dom.values.contains(&local.day());
        let dow = self
            .dow
            .values
            .contains(&local.weekday().num_days_from_sunday());
        let day = if starred(&self.dom) || starred(&self.dow) {
            dom && dow
        } else {
            dom || dow
        };
        day && self.minute.values.contains(&local.minute())
            && self.hour.values.contains(&local.hour())
            && match &self.second {
                Some(second) => second.values.contains(&local.second()),
                None => local.second() == 0,
            }
    }
}

fn spec() -> impl Strategy<Value = Spec> {
    (field(0, 59), hour(), day_of_month(), day_of_week()).prop_map(|(minute, hour, dom, dow)| {
        Spec {
            second: None,
            minute,
            hour,
            dom,
            dow,
        }
    })
}

/// 6-field specs; hours cluster where transitions happen.
fn spec_with_seconds() -> impl Strategy<Value = Spec> {
    (field(0, 59), spec()).prop_map(|(second, spec)| Spec {
        second: Some(second),
        ..spec
    })
}

/// Like `zone_and_after`, but from 5 hours before an anchor to 1 hour after.
fn zone_and_after_close() -> impl Strategy<Value = (usize, DateTime<Utc>)> {
    (0..ZONES.len(), 0usize..2, -5 * 3600i64..3600, 0u32..1000).prop_map(
        |(zone, anchor, secs, ms)| {
            let anchors = ZONES[zone].1;
            let anchor = at(anchors[anchor % anchors.len()]);
            (
                zone,
                anchor + Duration::seconds(secs) + Duration::milliseconds(i64::from(ms)),
            )
        },
    )
}

/// A zone index and an instant from 45 hours before one of its anchors to 5 hours after.
fn zone_and_after() -> impl Strategy<Value = (usize, DateTime<Utc>)> {
    (
        0..ZONES.len(),
        0usize..2,
        -45 * 3600i64..5 * 3600,
        0u32..1000,
    )
        .prop_map(|(zone, anchor, secs, ms)| {
            let anchors = ZONES[zone].1;
            let anchor = at(anchors[anchor % anchors.len()]);
            (
                zone,
                anchor + Duration::seconds(secs) + Duration::milliseconds(i64::from(ms)),
            )
        })
}

fn at(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

fn policy() -> impl Strategy<Value = DstPolicy> {
    prop_oneof![Just(DstPolicy::Vixie), Just(DstPolicy::Literal)]
}

fn local_of(tz: Tz, t: DateTime<Utc>) -> NaiveDateTime {
    t.with_timezone(&tz).naive_local()
}

/// Fires in (after, after + WINDOW_HOURS] by walking every real minute.
fn oracle(
    spec: &Spec,
    tz: Tz,
    dst: DstPolicy,
    after: DateTime<Utc>,
    hours: i64,
) -> Vec<DateTime<Utc>> {
    let appointments = dst == DstPolicy::Vixie && spec.fixed_time();
    let step = spec.step();
    let whole = after.timestamp().div_euclid(step.num_seconds()) * step.num_seconds();
    let mut i = DateTime::<Utc>::from_timestamp(whole, 0).unwrap();
    let end = after + Duration::hours(hours);
    let mut out = Vec::new();
    while i <= end {
        i += step;
        if i <= after || i > end {
            continue;
        }
        let local = local_of(tz, i);
        let mut fire = spec.matches(local);
        if fire && appointments {
            // Only the first fold of a repeated local time.
            if let LocalResult::Ambiguous(a, b) = tz.from_local_datetime(&local) {
                fire = i == a.with_timezone(&Utc).min(b.with_timezone(&Utc));
            }
        }
        if appointments && !fire {
            // The clock jumped over some slots just before `i`: any matching slot
            // among them fires now.
            let mut skipped = local_of(tz, i - step) + step;
            while skipped < local {
                fire |= spec.matches(skipped);
                skipped += step;
            }
        }
        if fire {
            out.push(i);
        }
    }
    out
}

fn fires_within(spec: &ScheduleSpec, after: DateTime<Utc>, hours: i64) -> Vec<DateTime<Utc>> {
    let end = after + Duration::hours(hours);
    let mut out = Vec::new();
    let mut cursor = after;
    while let Some(next) = spec.next_after(cursor) {
        if next > end {
            break;
        }
        out.push(next);
        cursor = next;
    }
    out
}

#[test]
fn anchors_are_transitions() {
    use chrono::Offset;
    for (zone, anchors) in ZONES {
        let tz: Tz = zone.parse().unwrap();
        let offset = |t: DateTime<Utc>| tz.offset_from_utc_datetime(&t.naive_utc()).fix();
        for anchor in anchors.iter().map(|a| at(a)) {
            let changes = offset(anchor - Duration::seconds(1)) != offset(anchor);
            assert_eq!(
                changes,
                !matches!(zone, "UTC" | "Asia/Kolkata"),
                "{zone} {anchor}"
            );
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    /// The module agrees with the minute-walking oracle, which also makes the sequence
    /// strictly increasing and strictly later than the instant asked about.
    #[test]
    fn agrees_with_the_oracle(
        spec in spec(), (zone, after) in zone_and_after(), dst in policy()
    ) {
        let tz: Tz = ZONES[zone].0.parse().unwrap();
        let parsed = match ScheduleSpec::parse(&spec.text(), ZONES[zone].0, dst) {
            Ok(p) => p,
            Err(e) => return Err(TestCaseError::fail(format!("{} refused: {e}", spec.text()))),
        };
        prop_assert_eq!(parsed.is_fixed_time(), spec.fixed_time());
        let got = fires_within(&parsed, after, WINDOW_HOURS);
        prop_assert_eq!(&got, &oracle(&spec, tz, dst, after, WINDOW_HOURS), "spec {:?} tz {} {}", spec.text(), tz, dst);

        let mut previous = after;
        for &fire in &got {
            prop_assert!(fire > previous);
            previous = fire;
        }
    }

    /// Every fire is a real, whole-minute instant whose local reading matches the spec,
    /// except a Vixie fixed-time gap fire, which sits exactly at the end of a gap.
    /// Under Vixie a fixed-time job fires at most once per local (date, slot).
    #[test]
    fn fires_are_real_local_slots(
        spec in spec(), (zone, after) in zone_and_after(), dst in policy()
    ) {
        let tz: Tz = ZONES[zone].0.parse().unwrap();
        let parsed = ScheduleSpec::parse(&spec.text(), ZONES[zone].0, dst).unwrap();
        let appointments = dst == DstPolicy::Vixie && spec.fixed_time();
        let mut per_slot: BTreeMap<NaiveDateTime, usize> = BTreeMap::new();
        for fire in parsed.upcoming(after, 40) {
            prop_assert_eq!(fire.timestamp() % 60, 0);
            prop_assert_eq!(fire.timestamp_subsec_nanos(), 0);
            let local = local_of(tz, fire);
            let before = local_of(tz, fire - Duration::seconds(1));
            let at_gap_end = before + Duration::seconds(1) < local;
            if spec.matches(local) {
                *per_slot.entry(local).or_default() += 1;
            } else {
                prop_assert!(appointments && at_gap_end,
                    "{} in {}: {} (local {}) matches nothing", spec.text(), tz, fire, local);
            }
            if appointments && at_gap_end {
                let mut slot = before + Duration::seconds(1);
                while slot < local {
                    if spec.matches(slot) {
                        *per_slot.entry(slot).or_default() += 1;
                    }
                    slot += Duration::minutes(1);
                }
            }
        }
        if appointments {
            for (slot, count) in per_slot {
                prop_assert_eq!(count, 1, "{} in {} fired {} times for {}", spec.text(), tz, count, slot);
            }
        }
    }

    /// Asking from anywhere between two consecutive fires gives the later one.
    #[test]
    fn next_after_is_consistent_between_fires(
        spec in spec(), (zone, after) in zone_and_after(), dst in policy(),
        fraction in 0.0f64..1.0
    ) {
        let parsed = ScheduleSpec::parse(&spec.text(), ZONES[zone].0, dst).unwrap();
        let fires = parsed.upcoming(after, 6);
        for pair in fires.windows(2) {
            let gap_ms = (pair[1] - pair[0]).num_milliseconds();
            let probe = pair[0] + Duration::milliseconds((gap_ms as f64 * fraction) as i64);
            let probe = probe.min(pair[1] - Duration::milliseconds(1));
            prop_assert_eq!(parsed.next_after(probe), Some(pair[1]));
        }
    }

    /// `every N` is plain arithmetic on instants, in any zone.
    #[test]
    fn every_is_arithmetic(
        minutes in 1i64..600, (zone, after) in zone_and_after(), dst in policy()
    ) {
        let parsed = ScheduleSpec::parse(&format!("every {minutes}m"), ZONES[zone].0, dst).unwrap();
        let step = Duration::minutes(minutes);
        prop_assert_eq!(parsed.upcoming(after, 3), vec![after + step, after + step * 2, after + step * 3]);
    }
}

proptest! {
    // Each case walks 21,600 seconds; fewer cases keep the suite quick.
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    /// The 6-field form against a second-by-second oracle over six hours.
    #[test]
    fn seconds_specs_agree_with_the_oracle(
        spec in spec_with_seconds(), (zone, after) in zone_and_after_close(), dst in policy()
    ) {
        let tz: Tz = ZONES[zone].0.parse().unwrap();
        let parsed = ScheduleSpec::parse(&spec.text(), ZONES[zone].0, dst).unwrap();
        prop_assert_eq!(parsed.is_fixed_time(), spec.fixed_time());
        prop_assert_eq!(
            fires_within(&parsed, after, 6),
            oracle(&spec, tz, dst, after, 6),
            "spec {:?} tz {} {}", spec.text(), tz, dst
        );
    }
}
