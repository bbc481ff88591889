//! A schedule's fires and how each one ended. A won slot becomes a run record
//! (`dispatched`, or `missed` past its starting deadline) and a queue item
//! keyed `cron:{schedule}:{slot}`; the item's end becomes the run's status by
//! [`judge`], which also carries the stale rule: the third empty answer in a
//! row makes the schedule `stale`, and a non-empty answer resets the count.

use std::fmt;

use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;

use super::a2a::response_text;
use super::queue::{QueueItem, QueueStatus};

/// This many empty successes in a row make a schedule `stale`.
pub const STALE_AFTER: i32 = 3;
/// The runtime's sentinel for "the agent produced nothing".
pub const NO_RESPONSE_SENTINEL: &str = "(no response generated)";
/// At most this many characters of a response are kept on the run record.
const SUMMARY_CHARS: usize = 500;

/// How a run ended (or that it has not yet).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RunStatus {
    /// Handed to the queue; the outcome is not in yet.
    Dispatched,
    Ok,
    Error,
    /// Expired in the queue: the workspace stayed busy past the defer window.
    Skipped,
    /// The third (or later) empty response in a row.
    Stale,
    /// The slot was older than the starting deadline when it was claimed.
    Missed,
}

impl RunStatus {
    pub const ALL: [RunStatus; 6] = [
        RunStatus::Dispatched,
        RunStatus::Ok,
        RunStatus::Error,
        RunStatus::Skipped,
        RunStatus::Stale,
        RunStatus::Missed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Dispatched => "dispatched",
            RunStatus::Ok => "ok",
            RunStatus::Error => "error",
            RunStatus::Skipped => "skipped",
            RunStatus::Stale => "stale",
            RunStatus::Missed => "missed",
        }
    }

    pub fn from_name(text: &str) -> Option<Self> {
        RunStatus::ALL.into_iter().find(|s| s.as_str() == text)
    }
}

impl fmt::Display for RunStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `cron:{schedule_id}:{slot}`: the queue's idempotency key and the A2A messageId.
pub fn cron_key(schedule_id: i64, slot: DateTime<Utc>) -> String {
    format!(
        "cron:{schedule_id}:{}",
        slot.to_rfc3339_opts(SecondsFormat::AutoSi, true)
    )
}

/// The key of a fire outside the timetable, asked for at `now`.
pub fn manual_key(schedule_id: i64, now: DateTime<Utc>) -> String {
    format!(
        "cron:{schedule_id}:manual:{}",
        now.to_rfc3339_opts(SecondsFormat::AutoSi, true)
    )
}

/// Whether a queue item is a schedule's fire.
pub fn is_cron_key(key: Option<&str>) -> bool {
    key.is_some_and(|k| k.starts_with("cron:"))
}

/// One fire (or missed slot) of a schedule.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ScheduleRun {
    pub id: i64,
    pub schedule_id: i64,
    pub workspace: String,
    pub slot: DateTime<Utc>,
    /// Fired by `RunNow`, not by the timetable.
    pub manual: bool,
    /// The queue item's idempotency key and the A2A messageId.
    pub key: String,
    pub status: RunStatus,
    pub started_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
    pub error: Option<String>,
    pub response_summary: Option<String>,
}

/// One slot to claim: move `next_run_at` from `slot` to `next` if it still
/// holds `slot`, and record the run.
#[derive(Debug, Clone, PartialEq)]
pub struct SlotClaim {
    pub schedule_id: i64,
    pub workspace: String,
    pub slot: DateTime<Utc>,
    pub next: DateTime<Utc>,
    pub key: String,
    /// `Some(reason)`: the slot is past its starting deadline; record it
    /// `missed` instead of `dispatched`.
    pub missed: Option<String>,
}

/// A fire outside the timetable (`RunNow`).
#[derive(Debug, Clone, PartialEq)]
pub struct ManualRun {
    pub schedule_id: i64,
    pub workspace: String,
    pub slot: DateTime<Utc>,
    pub key: String,
}

/// How a dispatched run ended, read from its queue item.
#[derive(Debug, Clone, PartialEq)]
pub enum RunOutcome {
    /// Delivered. `empty`: no text, or only the no-response sentinel.
    Completed {
        summary: String,
        empty: bool,
    },
    Failed {
        error: String,
    },
    /// Expired in the queue before it could be delivered.
    Expired {
        reason: String,
    },
}

impl RunOutcome {
    /// The outcome a final queue item stands for; `None` while it is active.
    pub fn from_item(item: &QueueItem) -> Option<RunOutcome> {
        match item.status {
            QueueStatus::Queued | QueueStatus::Dispatched => None,
            QueueStatus::Completed => {
                let text = response_text(item.response.as_deref().unwrap_or_default());
                let trimmed = text.trim();
                Some(RunOutcome::Completed {
                    empty: trimmed.is_empty() || trimmed == NO_RESPONSE_SENTINEL,
                    summary: summarize(trimmed),
                })
            }
            QueueStatus::Failed => Some(RunOutcome::Failed {
                error: item
                    .last_error
                    .clone()
                    .unwrap_or_else(|| "delivery failed without an error message".to_string()),
            }),
            QueueStatus::Cancelled => Some(RunOutcome::Expired {
                reason: "cancelled by an operator before it went out".to_string(),
            }),
            QueueStatus::Expired => {
                let mut reason = format!(
                    "not delivered within the defer window: workspace {} had no room",
                    item.workspace
                );
                if let Some(last) = &item.last_error {
                    reason.push_str(&format!(" (last answer: {last})"));
                }
                Some(RunOutcome::Expired { reason })
            }
        }
    }
}

/// The first characters of a response, cut at a char boundary.
pub fn summarize(text: &str) -> String {
    match text.char_indices().nth(SUMMARY_CHARS) {
        Some((end, _)) => format!("{}…", &text[..end]),
        None => text.to_string(),
    }
}

/// A run's record and its schedule's summary after an outcome: [`judge`]'s
/// decision, which the store writes as it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    pub run_status: RunStatus,
    pub run_error: Option<String>,
    pub response_summary: Option<String>,
    pub consecutive_empty_runs: i32,
    pub last_status: RunStatus,
    pub last_error: Option<String>,
}

/// What `outcome` makes of a run whose schedule had `empty_before` empty
/// answers in a row.
pub fn judge(outcome: &RunOutcome, empty_before: i32) -> Verdict {
    match outcome {
        RunOutcome::Completed { summary, empty } => {
            let count = if *empty {
                empty_before.saturating_add(1)
            } else {
                0
            };
            let stale = *empty && count >= STALE_AFTER;
            let error = stale.then(|| format!("empty response {count} times in a row"));
            let status = if stale {
                RunStatus::Stale
            } else {
                RunStatus::Ok
            };
            Verdict {
                run_status: status,
                run_error: error.clone(),
                response_summary: Some(summary.clone()),
                consecutive_empty_runs: count,
                last_status: status,
                last_error: error,
            }
        }
        RunOutcome::Failed { error } => Verdict {
            run_status: RunStatus::Error,
            run_error: Some(error.clone()),
            response_summary: None,
            consecutive_empty_runs: empty_before,
            last_status: RunStatus::Error,
            last_error: Some(error.clone()),
        },
        RunOutcome::Expired { reason } => Verdict {
            run_status: RunStatus::Skipped,
            run_error: Some(reason.clone()),
            response_summary: None,
            consecutive_empty_runs: empty_before,
            last_status: RunStatus::Skipped,
            last_error: Some(reason.clone()),
        },
    }
}

/// A run whose outcome was written now, with what it did to its schedule.
#[derive(Debug, Clone, PartialEq)]
pub struct FinishedRun {
    pub run: ScheduleRun,
    pub schedule_name: String,
    pub consecutive_empty_runs: i32,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::queue::fixture::item;

    fn completed(empty: bool) -> RunOutcome {
        RunOutcome::Completed {
            summary: if empty { String::new() } else { "hi".into() },
            empty,
        }
    }

    #[test]
    fn the_third_empty_answer_in_a_row_is_stale_and_an_answer_resets() {
        assert_eq!(judge(&completed(true), 0).run_status, RunStatus::Ok);
        assert_eq!(judge(&completed(true), 1).consecutive_empty_runs, 2);
        let third = judge(&completed(true), 2);
        assert_eq!(third.run_status, RunStatus::Stale);
        assert_eq!(third.last_status, RunStatus::Stale);
        assert_eq!(
            third.last_error.as_deref(),
            Some("empty response 3 times in a row")
        );
        let reset = judge(&completed(false), 7);
        assert_eq!(
            (
                reset.run_status,
                reset.consecutive_empty_runs,
                reset.last_error
            ),
            (RunStatus::Ok, 0, None)
        );
    }

    #[test]
    fn failures_and_expiries_keep_the_empty_count() {
        let failed = judge(
            &RunOutcome::Failed {
                error: "HTTP 500".into(),
            },
            2,
        );
        assert_eq!(
            (failed.run_status, failed.consecutive_empty_runs),
            (RunStatus::Error, 2)
        );
        let skipped = judge(
            &RunOutcome::Expired {
                reason: "busy".into(),
            },
            1,
        );
        assert_eq!(skipped.last_status, RunStatus::Skipped);
        assert_eq!(skipped.run_error.as_deref(), Some("busy"));
    }

    #[test]
    fn a_final_item_names_its_outcome_and_an_active_one_none() {
        let mut it = item(0, 5);
        assert_eq!(RunOutcome::from_item(&it), None);
        it.status = QueueStatus::Completed;
        it.response = Some(format!(
            r#"{{"result":{{"parts":[{{"text":"{NO_RESPONSE_SENTINEL}"}}]}}}}"#
        ));
        assert!(matches!(
            RunOutcome::from_item(&it),
            Some(RunOutcome::Completed { empty: true, .. })
        ));
        it.status = QueueStatus::Expired;
        it.last_error = Some("HTTP 503".into());
        let Some(RunOutcome::Expired { reason }) = RunOutcome::from_item(&it) else {
            panic!("expired");
        };
        assert!(reason.contains("HTTP 503"), "{reason}");
    }

    #[test]
    fn keys_and_summaries() {
        let slot: DateTime<Utc> = "2026-03-08T07:00:00Z".parse().unwrap();
        assert_eq!(cron_key(7, slot), "cron:7:2026-03-08T07:00:00Z");
        assert!(is_cron_key(Some(&manual_key(7, slot))));
        assert!(!is_cron_key(Some("m-1")));
        assert!(!is_cron_key(None));
        let long = "é".repeat(600);
        let s = summarize(&long);
        assert_eq!(s.chars().count(), 501);
        assert!(s.ends_with('…'));
    }
}
