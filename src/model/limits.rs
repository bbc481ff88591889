//! The documented bound of every number that reaches ringmaster from outside:
//! request fields and query parameters, heartbeats, schedule settings. A value
//! outside its bound is refused where it enters (HTTP 400 naming the field and
//! the limit), so nothing inside can overflow on it: every instant computed
//! from these bounds stays far inside chrono's range.
//!
//! | what | bound |
//! |---|---|
//! | workspace and delegation ids | 1–128 characters of `A–Z a–z 0–9 . _ : @ -` |
//! | schedule names, callers | 1–200 characters, no control characters |
//! | prompts, results, error details | at most 1 MiB, no NUL |
//! | `max_concurrent` | 1–10,000 |
//! | `active_tasks` | 0–1,000,000 |
//! | `ttl_s` | 1–2,592,000 (30 days) |
//! | `priority` | −1,000–1,000 (`critical` 100, `task` 50, `info` 10) |
//! | `defer_window_s` | 1–604,800 (7 days) |
//! | `starting_deadline_s` | 1–2,592,000 (30 days) |
//! | delegation `deadline` | after now, at most 366 days ahead |
//! | `limit` on lists | 1–1,000 (default 100) |

use std::fmt::Display;

use super::Invalid;

pub const ID_MAX_CHARS: usize = 128;
pub const NAME_MAX_CHARS: usize = 200;
/// Prompts, delegation results and error details (bytes).
pub const TEXT_MAX_BYTES: usize = 1 << 20;
pub const MAX_CONCURRENT_MAX: u32 = 10_000;
pub const ACTIVE_TASKS_MAX: u32 = 1_000_000;
pub const TTL_MAX_S: u64 = 30 * 86_400;
pub const PRIORITY_MIN: i32 = -1_000;
pub const PRIORITY_MAX: i32 = 1_000;
pub const DEFER_WINDOW_MAX_S: u64 = 7 * 86_400;
pub const STARTING_DEADLINE_MAX_S: u64 = 30 * 86_400;
pub const DEADLINE_MAX_AHEAD_S: i64 = 366 * 86_400;
pub const LIST_LIMIT_MAX: u32 = 1_000;
pub const LIST_LIMIT_DEFAULT: u32 = 100;

/// `value` if it lies in `min..=max`, else the error naming `field` and the bounds.
pub fn within<T: PartialOrd + Display + Copy>(
    field: &'static str,
    value: T,
    min: T,
    max: T,
) -> Result<T, Invalid> {
    if value < min || value > max {
        return Err(Invalid::new(
            field,
            format!("{value} is outside the allowed range {min} to {max}"),
        ));
    }
    Ok(value)
}

/// A list's `limit`: absent means the default; otherwise 1 to [`LIST_LIMIT_MAX`].
pub fn list_limit(limit: Option<u32>) -> Result<u32, Invalid> {
    match limit {
        None => Ok(LIST_LIMIT_DEFAULT),
        Some(n) => within("limit", n, 1, LIST_LIMIT_MAX),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn within_accepts_the_bounds_themselves_and_names_the_field_outside() {
        assert_eq!(within("ttl_s", 1u64, 1, TTL_MAX_S), Ok(1));
        assert_eq!(within("ttl_s", TTL_MAX_S, 1, TTL_MAX_S), Ok(TTL_MAX_S));
        let err = within("ttl_s", 10_000_000_000_000u64, 1, TTL_MAX_S).unwrap_err();
        assert_eq!(err.field, "ttl_s");
        assert!(err.problem.contains("2592000"), "{err}");
        assert!(within("priority", -1001, PRIORITY_MIN, PRIORITY_MAX).is_err());
    }

    #[test]
    fn list_limit_defaults_and_refuses_zero_and_huge() {
        assert_eq!(list_limit(None), Ok(LIST_LIMIT_DEFAULT));
        assert_eq!(list_limit(Some(1000)), Ok(1000));
        assert_eq!(list_limit(Some(0)).unwrap_err().field, "limit");
        assert!(list_limit(Some(1001)).is_err());
    }
}
