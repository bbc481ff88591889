//! Time arithmetic that never panics. chrono's `+` panics on overflow; every
//! sum here is checked, and the few places where a far-future instant is the
//! right answer say so by saturating explicitly.

use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};

/// A std duration as chrono's, saturating at chrono's maximum.
pub fn span(d: Duration) -> TimeDelta {
    TimeDelta::from_std(d).unwrap_or(TimeDelta::MAX)
}

/// `t + d`, or `None` past the end of time.
pub fn add(t: DateTime<Utc>, d: Duration) -> Option<DateTime<Utc>> {
    t.checked_add_signed(TimeDelta::from_std(d).ok()?)
}

/// `t + d`, clamped to the last representable instant (for "never" horizons
/// such as a lease or a deadline far ahead).
pub fn add_saturating(t: DateTime<Utc>, d: Duration) -> DateTime<Utc> {
    add(t, d).unwrap_or(DateTime::<Utc>::MAX_UTC)
}

/// `t − d`, clamped to the first representable instant.
pub fn sub_saturating(t: DateTime<Utc>, d: Duration) -> DateTime<Utc> {
    TimeDelta::from_std(d)
        .ok()
        .and_then(|d| t.checked_sub_signed(d))
        .unwrap_or(DateTime::<Utc>::MIN_UTC)
}

/// How long from `earlier` to `later`, zero if `later` is not later.
pub fn elapsed(earlier: DateTime<Utc>, later: DateTime<Utc>) -> Duration {
    later
        .signed_duration_since(earlier)
        .to_std()
        .unwrap_or(Duration::ZERO)
}

/// Stored instants are whole milliseconds on both drivers, so an instant and
/// a key made from it read the same everywhere.
pub fn whole_ms(t: DateTime<Utc>) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(t.timestamp_millis()).unwrap_or(t)
}

/// An instant from milliseconds since the epoch; out-of-range values (only a
/// hand-written row can hold one) clamp instead of panicking.
pub fn from_millis(ms: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(ms).unwrap_or(if ms < 0 {
        DateTime::<Utc>::MIN_UTC
    } else {
        DateTime::<Utc>::MAX_UTC
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn add_is_checked_and_add_saturating_clamps() {
        let t = DateTime::<Utc>::MAX_UTC;
        assert_eq!(add(t, Duration::from_secs(1)), None);
        assert_eq!(add_saturating(t, Duration::from_secs(1)), t);
        assert_eq!(
            add_saturating(DateTime::<Utc>::UNIX_EPOCH, Duration::MAX),
            DateTime::<Utc>::MAX_UTC
        );
        assert_eq!(
            sub_saturating(DateTime::<Utc>::MIN_UTC, Duration::from_secs(5)),
            DateTime::<Utc>::MIN_UTC
        );
        let now = DateTime::<Utc>::UNIX_EPOCH;
        assert_eq!(
            add(now, Duration::from_millis(1500)),
            Some(now + TimeDelta::milliseconds(1500))
        );
    }

    #[test]
    fn elapsed_is_never_negative_and_millis_never_panic() {
        let a = DateTime::<Utc>::UNIX_EPOCH;
        let b = a + TimeDelta::seconds(3);
        assert_eq!(elapsed(a, b), Duration::from_secs(3));
        assert_eq!(elapsed(b, a), Duration::ZERO);
        assert_eq!(from_millis(i64::MAX), DateTime::<Utc>::MAX_UTC);
        assert_eq!(from_millis(i64::MIN), DateTime::<Utc>::MIN_UTC);
        assert_eq!(span(Duration::MAX), TimeDelta::MAX);
    }
}
