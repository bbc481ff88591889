//! Schedules: what a cron schedule is, what makes one valid, and when it
//! fires first. The spec engine (grammar, zones, DST) is
//! [`crate::schedule`]; this module holds the rows and the rules around them.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::limits::{DEFER_WINDOW_MAX_S, STARTING_DEADLINE_MAX_S};
use super::run::RunStatus;
use super::{text, time, Invalid};
use crate::schedule::{DstPolicy, ScheduleSpec, SpecError};

/// Default: a slot older than this when it is finally looked at is `missed`.
pub const DEFAULT_STARTING_DEADLINE: Duration = Duration::from_secs(3600);
/// Default: how long a fire may wait in the queue for a busy workspace.
pub const DEFAULT_DEFER_WINDOW: Duration = Duration::from_secs(120);

/// Why a schedule was refused. [`field`](Self::field) names the request
/// field to blame: any problem inside the spec is `cron`'s.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ScheduleRejected {
    #[error("{0}")]
    Spec(#[from] SpecError),
    #[error(transparent)]
    Field(#[from] Invalid),
}

impl ScheduleRejected {
    pub fn field(&self) -> &'static str {
        match self {
            ScheduleRejected::Spec(e) => match e.field() {
                Some("timezone") => "timezone",
                Some("dst") => "dst",
                _ => "cron",
            },
            ScheduleRejected::Field(invalid) => invalid.field,
        }
    }
}

/// What to create.
#[derive(Debug, Clone, PartialEq)]
pub struct NewSchedule {
    pub workspace: String,
    pub name: String,
    /// The spec as written (cron, macro, `every`, `daily`).
    pub spec: String,
    pub timezone: String,
    pub dst: DstPolicy,
    /// The text sent to the workspace on every fire.
    pub prompt: String,
    pub enabled: bool,
    pub starting_deadline: Duration,
    pub defer_window: Duration,
}

impl NewSchedule {
    /// An enabled UTC schedule with the default deadline and defer window.
    pub fn new(
        workspace: impl Into<String>,
        name: impl Into<String>,
        spec: impl Into<String>,
        prompt: impl Into<String>,
    ) -> Self {
        Self {
            workspace: workspace.into(),
            name: name.into(),
            spec: spec.into(),
            timezone: "UTC".to_string(),
            dst: DstPolicy::Vixie,
            prompt: prompt.into(),
            enabled: true,
            starting_deadline: DEFAULT_STARTING_DEADLINE,
            defer_window: DEFAULT_DEFER_WINDOW,
        }
    }

    pub fn timezone(mut self, tz: impl Into<String>) -> Self {
        self.timezone = tz.into();
        self
    }

    pub fn dst(mut self, dst: DstPolicy) -> Self {
        self.dst = dst;
        self
    }

    pub fn enabled(mut self, enabled: bool) -> Self {
        self.enabled = enabled;
        self
    }

    pub fn starting_deadline(mut self, d: Duration) -> Self {
        self.starting_deadline = d;
        self
    }

    pub fn defer_window(mut self, d: Duration) -> Self {
        self.defer_window = d;
        self
    }
}

/// A change to a schedule; `None` leaves a field as it is.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SchedulePatch {
    pub workspace: Option<String>,
    pub name: Option<String>,
    pub spec: Option<String>,
    pub timezone: Option<String>,
    pub dst: Option<DstPolicy>,
    pub prompt: Option<String>,
    pub enabled: Option<bool>,
    pub starting_deadline: Option<Duration>,
    pub defer_window: Option<Duration>,
}

/// One stored schedule.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Schedule {
    pub id: i64,
    pub workspace: String,
    pub name: String,
    pub spec: String,
    pub timezone: String,
    pub dst: DstPolicy,
    pub prompt: String,
    pub enabled: bool,
    /// The next slot to fire; the claim compares against it.
    pub next_run_at: Option<DateTime<Utc>>,
    /// The last slot claimed (not when it was delivered).
    pub last_run_at: Option<DateTime<Utc>>,
    pub run_count: i64,
    pub last_status: Option<RunStatus>,
    pub last_error: Option<String>,
    pub consecutive_empty_runs: i32,
    #[serde(serialize_with = "as_secs")]
    pub starting_deadline: Duration,
    #[serde(serialize_with = "as_secs")]
    pub defer_window: Duration,
    /// A row whose spec or zone does not parse (written by hand, or by an
    /// older version): out of the due set until it is updated.
    pub invalid: bool,
    pub invalid_error: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

fn as_secs<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64(d.as_secs_f64())
}

impl Schedule {
    /// The stored spec, parsed again (a row may have been written by hand).
    pub fn parsed(&self) -> Result<ScheduleSpec, SpecError> {
        ScheduleSpec::parse(&self.spec, &self.timezone, self.dst)
    }

    /// The defer window as the row holds it, bounded: a row written by an
    /// older version (or by hand) may hold any number, and nothing computed
    /// from it may overflow.
    pub fn defer_window_bounded(&self) -> Duration {
        self.defer_window
            .min(Duration::from_secs(DEFER_WINDOW_MAX_S))
    }

    /// The starting deadline, bounded like the defer window.
    pub fn starting_deadline_bounded(&self) -> Duration {
        self.starting_deadline
            .min(Duration::from_secs(STARTING_DEADLINE_MAX_S))
    }
}

/// A validated create or update, ready to write.
#[derive(Debug, Clone, PartialEq)]
pub struct PreparedSchedule {
    pub workspace: String,
    pub name: String,
    pub spec: String,
    pub timezone: String,
    pub dst: DstPolicy,
    pub prompt: String,
    pub enabled: bool,
    pub starting_deadline_ms: i64,
    pub defer_window_ms: i64,
    pub next_run_at: Option<DateTime<Utc>>,
}

/// A duration setting in whole seconds: 1 to `max_s`.
fn seconds(field: &'static str, d: Duration, max_s: u64) -> Result<i64, Invalid> {
    if d < Duration::from_secs(1) {
        return Err(Invalid::new(field, "must be at least 1 second"));
    }
    if d > Duration::from_secs(max_s) {
        return Err(Invalid::new(
            field,
            format!("{} is above the limit of {max_s} seconds", d.as_secs()),
        ));
    }
    // Bounded above, so the milliseconds always fit.
    Ok(i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// The first fire strictly after `after`, or the error that says it has none.
pub fn first_fire(spec: &ScheduleSpec, after: DateTime<Utc>) -> Result<DateTime<Utc>, SpecError> {
    spec.next_after(after)
        .map(time::whole_ms)
        .ok_or_else(|| SpecError::NeverFires {
            spec: spec.text().to_string(),
        })
}

struct Fields<'a> {
    workspace: &'a str,
    name: &'a str,
    prompt: &'a str,
    starting_deadline: Duration,
    defer_window: Duration,
}

fn check(f: &Fields<'_>) -> Result<(i64, i64), Invalid> {
    text::id("workspace_id", f.workspace)?;
    text::name("name", f.name)?;
    text::required("prompt", f.prompt)?;
    Ok((
        seconds(
            "starting_deadline_s",
            f.starting_deadline,
            STARTING_DEADLINE_MAX_S,
        )?,
        seconds("defer_window_s", f.defer_window, DEFER_WINDOW_MAX_S)?,
    ))
}

impl PreparedSchedule {
    /// Validate a new schedule and compute its first fire after `now`.
    pub fn create(new: &NewSchedule, now: DateTime<Utc>) -> Result<Self, ScheduleRejected> {
        let spec = ScheduleSpec::parse(&new.spec, &new.timezone, new.dst)?;
        let (starting_deadline_ms, defer_window_ms) = check(&Fields {
            workspace: &new.workspace,
            name: &new.name,
            prompt: &new.prompt,
            starting_deadline: new.starting_deadline,
            defer_window: new.defer_window,
        })?;
        Ok(Self {
            workspace: new.workspace.clone(),
            name: new.name.clone(),
            spec: spec.text().to_string(),
            timezone: new.timezone.clone(),
            dst: new.dst,
            prompt: new.prompt.clone(),
            enabled: new.enabled,
            starting_deadline_ms,
            defer_window_ms,
            next_run_at: Some(first_fire(&spec, now)?),
        })
    }

    /// Validate `patch` applied to `current`. The next fire is recomputed from
    /// `now` when the timetable changed, when the schedule is re-enabled (old
    /// slots are not fired late), or when it had none; otherwise it is kept.
    pub fn update(
        current: &Schedule,
        patch: &SchedulePatch,
        now: DateTime<Utc>,
    ) -> Result<Self, ScheduleRejected> {
        let text = patch.spec.as_deref().unwrap_or(&current.spec);
        let timezone = patch.timezone.as_deref().unwrap_or(&current.timezone);
        let dst = patch.dst.unwrap_or(current.dst);
        let enabled = patch.enabled.unwrap_or(current.enabled);
        let spec = ScheduleSpec::parse(text, timezone, dst)?;
        let workspace = patch.workspace.as_deref().unwrap_or(&current.workspace);
        let name = patch.name.as_deref().unwrap_or(&current.name);
        let prompt = patch.prompt.as_deref().unwrap_or(&current.prompt);
        let (starting_deadline_ms, defer_window_ms) = check(&Fields {
            workspace,
            name,
            prompt,
            starting_deadline: patch.starting_deadline.unwrap_or(current.starting_deadline),
            defer_window: patch.defer_window.unwrap_or(current.defer_window),
        })?;
        let timetable_changed = spec.text() != current.spec
            || timezone != current.timezone
            || dst != current.dst
            || (enabled && !current.enabled)
            || current.invalid
            || current.next_run_at.is_none();
        let next_run_at = if timetable_changed {
            Some(first_fire(&spec, now)?)
        } else {
            current.next_run_at
        };
        Ok(Self {
            workspace: workspace.to_string(),
            name: name.to_string(),
            spec: spec.text().to_string(),
            timezone: timezone.to_string(),
            dst,
            prompt: prompt.to_string(),
            enabled,
            starting_deadline_ms,
            defer_window_ms,
            next_run_at,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeDelta;

    fn now() -> DateTime<Utc> {
        "2026-06-01T08:00:00Z".parse().unwrap()
    }

    #[test]
    fn create_validates_and_sets_the_first_fire_after_now() {
        let p = PreparedSchedule::create(&NewSchedule::new("w", "n", "*/15 * * * *", "go"), now())
            .unwrap();
        assert_eq!(p.next_run_at, Some(now() + TimeDelta::minutes(15)));
        assert_eq!(p.defer_window_ms, 120_000);
        let never = NewSchedule::new("w", "n", "0 0 30 2 *", "go");
        assert_eq!(
            PreparedSchedule::create(&never, now()).unwrap_err().field(),
            "cron"
        );
        let zone = NewSchedule::new("w", "n", "* * * * *", "go").timezone("Mars/Base");
        assert_eq!(
            PreparedSchedule::create(&zone, now()).unwrap_err().field(),
            "timezone"
        );
    }

    #[test]
    fn durations_and_texts_are_bounded() {
        let huge = NewSchedule::new("w", "n", "* * * * *", "go")
            .defer_window(Duration::from_secs(10_000_000_000_000));
        assert_eq!(
            PreparedSchedule::create(&huge, now()).unwrap_err().field(),
            "defer_window_s"
        );
        let zero = NewSchedule::new("w", "n", "* * * * *", "go").starting_deadline(Duration::ZERO);
        assert_eq!(
            PreparedSchedule::create(&zero, now()).unwrap_err().field(),
            "starting_deadline_s"
        );
        for (new, field) in [
            (NewSchedule::new("", "n", "* * * * *", "go"), "workspace_id"),
            (NewSchedule::new("w", " ", "* * * * *", "go"), "name"),
            (NewSchedule::new("w", "n", "* * * * *", "a\0b"), "prompt"),
        ] {
            assert_eq!(
                PreparedSchedule::create(&new, now()).unwrap_err().field(),
                field
            );
        }
    }

    #[test]
    fn update_keeps_the_next_run_unless_the_timetable_changed() {
        let p = PreparedSchedule::create(&NewSchedule::new("w", "n", "0 * * * *", "go"), now())
            .unwrap();
        let current = Schedule {
            id: 1,
            workspace: p.workspace,
            name: p.name,
            spec: p.spec,
            timezone: p.timezone,
            dst: p.dst,
            prompt: p.prompt,
            enabled: true,
            next_run_at: p.next_run_at,
            last_run_at: None,
            run_count: 0,
            last_status: None,
            last_error: None,
            consecutive_empty_runs: 0,
            starting_deadline: DEFAULT_STARTING_DEADLINE,
            defer_window: DEFAULT_DEFER_WINDOW,
            invalid: false,
            invalid_error: None,
            created_at: now(),
            updated_at: now(),
        };
        let later = now() + TimeDelta::minutes(90);
        let renamed = SchedulePatch {
            name: Some("m".into()),
            ..Default::default()
        };
        assert_eq!(
            PreparedSchedule::update(&current, &renamed, later)
                .unwrap()
                .next_run_at,
            current.next_run_at
        );
        let retimed = SchedulePatch {
            spec: Some("30 * * * *".into()),
            ..Default::default()
        };
        assert_eq!(
            PreparedSchedule::update(&current, &retimed, later)
                .unwrap()
                .next_run_at,
            Some("2026-06-01T10:30:00Z".parse().unwrap())
        );
        let mut huge = current.clone();
        huge.defer_window = Duration::from_secs(10_000_000_000_000);
        assert_eq!(
            huge.defer_window_bounded(),
            Duration::from_secs(DEFER_WINDOW_MAX_S)
        );
    }
}
