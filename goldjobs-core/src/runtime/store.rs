//! What the runtime keeps in a [`JobStore`](crate::JobStore): each job's pause flag and last
//! scheduled instant ([`JobControl`]) and its run history ([`JobRun`]).

use super::RunStatus;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// Runs kept per job by default (the contract asks for at least 100).
pub const DEFAULT_RUNS_KEPT: u32 = 200;

/// The longest `error` or `summary` of a stored [`JobRun`], in characters.
pub const MAX_RUN_TEXT_CHARS: usize = 500;

/// One executed run of a job, as `GET /jobs/{name}/runs` lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobRun {
    /// The job's name (the URL names it; not repeated in the JSON).
    #[serde(skip)]
    pub job: String,
    /// The instance that ran it.
    pub instance: String,
    /// When it started.
    pub started_at: DateTime<Utc>,
    /// How long it took, all attempts together.
    pub duration_ms: u64,
    /// How it ended.
    pub status: RunStatus,
    /// The one-line public error ([`public_message`](super::public_message)); `null` when it
    /// succeeded.
    pub error: Option<String>,
    /// The report's summary when it succeeded.
    pub summary: Option<String>,
}

impl JobRun {
    /// The same run with `error` and `summary` cut to [`MAX_RUN_TEXT_CHARS`] (what a store
    /// keeps).
    pub fn clipped(mut self) -> Self {
        self.error = self.error.map(|t| clip(&t));
        self.summary = self.summary.map(|t| clip(&t));
        self
    }
}

fn clip(text: &str) -> String {
    match text.char_indices().nth(MAX_RUN_TEXT_CHARS) {
        Some((at, _)) => format!("{}…", &text[..at]),
        None => text.to_owned(),
    }
}

/// The persisted control state of one job, shared by every instance.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobControl {
    /// The job's name.
    pub job: String,
    /// Whether its scheduled runs are paused (on every instance).
    pub paused: bool,
    /// When `paused` last changed.
    pub changed_at: Option<DateTime<Utc>>,
    /// The last scheduled instant a leader handled (ran, or skipped while paused): the next
    /// leader — after a restart or a failover — continues the schedule from here.
    pub last_scheduled_at: Option<DateTime<Utc>>,
    /// The lease term of the leader that wrote `last_scheduled_at` (the fencing token: a write
    /// with a smaller term is refused).
    pub term: u64,
}

impl JobControl {
    /// The state of a job nobody has written anything for.
    pub fn new(job: impl Into<String>) -> Self {
        JobControl {
            job: job.into(),
            paused: false,
            changed_at: None,
            last_scheduled_at: None,
            term: 0,
        }
    }
}

impl std::str::FromStr for RunStatus {
    type Err = crate::Error;

    fn from_str(s: &str) -> crate::Result<Self> {
        Ok(match s {
            "ok" => RunStatus::Ok,
            "failed" => RunStatus::Failed,
            "skipped_not_leader" => RunStatus::SkippedNotLeader,
            "skipped_paused" => RunStatus::SkippedPaused,
            "timeout" => RunStatus::Timeout,
            "panicked" => RunStatus::Panicked,
            "cancelled" => RunStatus::Cancelled,
            other => {
                return Err(crate::Error::invalid(format!(
                    "unknown run status {other:?}"
                )))
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_round_trip_through_their_labels() {
        for s in [
            RunStatus::Ok,
            RunStatus::Failed,
            RunStatus::SkippedNotLeader,
            RunStatus::SkippedPaused,
            RunStatus::Timeout,
            RunStatus::Panicked,
            RunStatus::Cancelled,
        ] {
            assert_eq!(s.as_str().parse::<RunStatus>().ok(), Some(s));
        }
        assert!("bogus".parse::<RunStatus>().is_err());
    }

    #[test]
    fn long_texts_are_clipped_on_a_char_boundary() {
        let run = JobRun {
            job: "J".into(),
            instance: "i".into(),
            started_at: DateTime::<Utc>::UNIX_EPOCH,
            duration_ms: 1,
            status: RunStatus::Failed,
            error: Some("金".repeat(MAX_RUN_TEXT_CHARS + 10)),
            summary: Some("short".into()),
        }
        .clipped();
        let error = run.error.unwrap_or_default();
        assert_eq!(error.chars().count(), MAX_RUN_TEXT_CHARS + 1);
        assert!(error.ends_with('…'));
        assert_eq!(run.summary.as_deref(), Some("short"));
    }
}
