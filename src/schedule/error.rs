//! Why a schedule was refused. The HTTP layer turns these into `{"error", "field"}` and
//! the CLI prints them, so every variant carries enough context to name the culprit
//! without the caller re-reading the spec.

use thiserror::Error;

/// A schedule spec, timezone or DST policy that cannot be accepted.
#[derive(Error, Debug, Clone, PartialEq, Eq)]
pub enum SpecError {
    /// The spec text is blank.
    #[error("cron: the spec is empty")]
    Empty,

    /// A cron expression with the wrong number of whitespace-separated fields.
    #[error("expected 5 fields (or 6 with seconds), found {found}")]
    FieldCount { found: usize },

    /// One cron field is malformed; `field` is its name (`"minute"`, `"day-of-week"`, …)
    /// and `value` the field's text as written.
    #[error("{field}: {problem}")]
    Field {
        field: &'static str,
        value: String,
        problem: FieldProblem,
    },

    /// `@something` that is not one of the supported macros.
    #[error("unknown macro {name} (expected @hourly, @daily, @midnight, @weekly, @monthly, @yearly or @annually)")]
    UnknownMacro { name: String },

    /// `@reboot` has no meaning for a scheduler that fires at instants.
    #[error("@reboot is not supported: schedules fire at times, not at process start")]
    Reboot,

    /// An `every …` spec whose duration is unusable.
    #[error("{spec}: {problem}")]
    BadInterval {
        spec: String,
        problem: IntervalProblem,
    },

    /// A `daily …` spec with a time of day that is unusable.
    #[error("daily: {time:?} {problem}")]
    BadDailyTime {
        time: String,
        problem: DailyTimeProblem,
    },

    /// The timezone is not an IANA zone known to chrono-tz.
    #[error("timezone: unknown IANA zone {0:?}")]
    UnknownTimezone(String),

    /// The DST policy name is neither `vixie` nor `literal`.
    #[error("dst: unknown policy {0:?} (expected vixie or literal)")]
    UnknownDstPolicy(String),

    /// The spec is well formed but matches no date (e.g. `0 0 30 2 *`), or none within
    /// the search horizon.
    #[error("spec {spec:?} can never fire")]
    NeverFires { spec: String },

    /// Our translation produced something the `cron` crate refused. This is a bug in the
    /// translation, not in the caller's spec, but it is reported rather than panicking.
    #[error("cron: internal engine refused {expression:?}: {detail}")]
    Engine { expression: String, detail: String },
}

impl SpecError {
    /// The input field to blame: a cron field name for field errors, `"timezone"`,
    /// `"dst"`, or `"cron"` for problems with the spec as a whole.
    pub fn field(&self) -> Option<&'static str> {
        Some(match self {
            SpecError::Field { field, .. } => field,
            SpecError::UnknownTimezone(_) => "timezone",
            SpecError::UnknownDstPolicy(_) => "dst",
            SpecError::Empty
            | SpecError::FieldCount { .. }
            | SpecError::UnknownMacro { .. }
            | SpecError::Reboot
            | SpecError::BadInterval { .. }
            | SpecError::BadDailyTime { .. }
            | SpecError::NeverFires { .. }
            | SpecError::Engine { .. } => "cron",
        })
    }
}

/// What is wrong inside one cron field.
#[derive(Error, Debug, Clone, PartialEq, Eq)]
pub enum FieldProblem {
    #[error("{value} is out of range {min}-{max}")]
    OutOfRange { value: String, min: u32, max: u32 },
    #[error("range {range} is reversed")]
    Reversed { range: String },
    #[error("step 0 is not allowed in {item}")]
    StepZero { item: String },
    #[error("unknown name {name}")]
    UnknownName { name: String },
    #[error("{text:?} is not a number")]
    NotANumber { text: String },
    #[error("empty item in list {list:?}")]
    EmptyItem { list: String },
    #[error("? is only allowed in day-of-month and day-of-week")]
    QuestionMark,
}

/// What is wrong with the duration of an `every …` spec.
#[derive(Error, Debug, Clone, PartialEq, Eq)]
pub enum IntervalProblem {
    #[error("expected a duration such as 15m, 1h, 90s or 2h30m")]
    Malformed,
    #[error("unknown unit {unit:?} (use s, m, h or d)")]
    UnknownUnit { unit: char },
    #[error("interval must be positive")]
    NotPositive,
    #[error("interval must be at most {max_days}d")]
    TooLong { max_days: u32 },
}

/// What is wrong with one time of a `daily …` spec.
#[derive(Error, Debug, Clone, PartialEq, Eq)]
pub enum DailyTimeProblem {
    #[error("is not a time (expected HH:MM or HH:MM:SS, e.g. daily 03:00 or daily 07:00,13:00)")]
    Malformed,
    #[error("has {part} {value}, out of range 0-{max}")]
    OutOfRange {
        part: &'static str,
        value: u32,
        max: u32,
    },
}
