//! What the runtime reports: run outcomes (to a [`JobObserver`]) and the job status
//! (`GET /jobs/status`).

use super::RunReport;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize, Serializer};
use std::time::Duration;

/// How one run (all its attempts) ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum RunStatus {
    /// The job returned `Ok`.
    Ok,
    /// The job returned an error (permanent, or temporary after the last attempt).
    Failed,
    /// The tick was skipped because this instance does not hold the job's lease.
    SkippedNotLeader,
    /// The tick was skipped because the job is paused ([`JobManager::pause`](super::JobManager::pause)).
    SkippedPaused,
    /// The run did not finish within `Schedule::timeout`; its cancel token was cancelled.
    Timeout,
    /// The run panicked; the panic was caught and the schedule continues.
    Panicked,
    /// The run was cancelled by [`JobManager::stop_all`](super::JobManager::stop_all) and
    /// returned [`Error::Cancelled`](crate::Error::Cancelled).
    Cancelled,
}

impl RunStatus {
    /// A short lowercase label (`ok`, `failed`, `skipped_not_leader`, `skipped_paused`,
    /// `timeout`, `panicked`, `cancelled`), e.g. for a metrics label; [`FromStr`](std::str::FromStr)
    /// reads it back.
    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Ok => "ok",
            RunStatus::Failed => "failed",
            RunStatus::SkippedNotLeader => "skipped_not_leader",
            RunStatus::SkippedPaused => "skipped_paused",
            RunStatus::Timeout => "timeout",
            RunStatus::Panicked => "panicked",
            RunStatus::Cancelled => "cancelled",
        }
    }

    /// Whether the tick was skipped rather than run (`skipped_not_leader`, `skipped_paused`).
    pub fn is_skip(self) -> bool {
        matches!(self, RunStatus::SkippedNotLeader | RunStatus::SkippedPaused)
    }

    /// Whether this outcome counts as a failure (`failed`, `timeout`, `panicked`).
    pub fn is_failure(self) -> bool {
        matches!(
            self,
            RunStatus::Failed | RunStatus::Timeout | RunStatus::Panicked
        )
    }
}

impl std::fmt::Display for RunStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What started a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunTrigger {
    /// An instant of the job's schedule.
    Scheduled,
    /// [`JobManager::run_now`](super::JobManager::run_now).
    Manual,
}

/// The outcome of one run, handed to [`JobObserver::on_run_finished`].
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct RunOutcome {
    /// How it ended.
    pub status: RunStatus,
    /// What started it.
    pub trigger: RunTrigger,
    /// Time of the run from its start to its end (all attempts and backoffs), on the
    /// monotonic (tokio) clock; zero for a skipped tick.
    pub duration: Duration,
    /// Attempts made (1 = no retry; 0 for a skipped tick).
    pub attempts: u32,
    /// How late the run started against its scheduled instant (zero for manual runs).
    pub lateness: Duration,
    /// The error (with its sources) or panic message, for everything but `ok` and skips: for
    /// logs and observers, not for anonymous readers.
    pub error: Option<String>,
    /// The same as one line fit for `/jobs/status` ([`public_message`]): no source chain, no
    /// URL, query or backend internals.
    pub public_error: Option<String>,
    /// The job's report when it returned `Ok`.
    pub report: Option<RunReport>,
}

impl RunOutcome {
    /// An outcome without error or report (for observers' own tests; the runtime fills in the
    /// rest of a real one).
    pub fn new(
        status: RunStatus,
        trigger: RunTrigger,
        duration: Duration,
        lateness: Duration,
    ) -> Self {
        RunOutcome {
            status,
            trigger,
            duration,
            attempts: u32::from(!status.is_skip()),
            lateness,
            error: None,
            public_error: None,
            report: None,
        }
    }
}

/// Receives every finished run (and skipped tick), e.g. to export Prometheus metrics.
///
/// Called on the runtime's task right after the run; keep it quick and non-blocking.
/// A panic inside the observer is caught and logged.
pub trait JobObserver: Send + Sync + 'static {
    /// One run of `job` finished (or its tick was skipped).
    fn on_run_finished(&self, job: &str, outcome: &RunOutcome);
}

impl<F> JobObserver for F
where
    F: Fn(&str, &RunOutcome) + Send + Sync + 'static,
{
    fn on_run_finished(&self, job: &str, outcome: &RunOutcome) {
        self(job, outcome)
    }
}

/// The body of `GET /jobs/status`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobsStatus {
    /// One entry per registered job, in registration order.
    pub jobs: Vec<JobStatus>,
    /// `jobs.len()`.
    pub total_jobs: usize,
}

/// The status of one job, as serialized in `GET /jobs/status`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobStatus {
    /// The job's name.
    pub name: String,
    /// Whether its schedule is started.
    pub running: bool,
    /// Whether its scheduled runs are paused (on every instance; `POST /jobs/{name}/pause`).
    pub paused: bool,
    /// What a restart or failover does with instants nobody ran: `skip`, `once` or `all:N`.
    pub missed_policy: String,
    /// The schedule's period in seconds (an integer in JSON when whole, e.g. `5`, else `0.5`).
    #[serde(serialize_with = "serialize_seconds")]
    pub interval_seconds: f64,
    /// The schedule as written: `every 5s`, or `cron:EXPR` (with its zone when not UTC).
    pub schedule: String,
    /// The zone a calendar schedule is evaluated in (`Europe/Zurich`); `null` for a fixed rate.
    pub timezone: Option<String>,
    /// Start of the last executed run (skipped ticks excluded).
    pub last_run_at: Option<DateTime<Utc>>,
    /// Duration of the last executed run in milliseconds.
    pub last_duration_ms: Option<u64>,
    /// Error of the last executed run; `null` when it succeeded.
    pub last_error: Option<String>,
    /// Executed runs (skipped ticks excluded).
    pub runs: u64,
    /// Runs that failed, timed out or panicked.
    pub failures: u64,
    /// The next scheduled instant; `null` when not started.
    pub next_run_at: Option<DateTime<Utc>>,
    /// `next_run_at` in the calendar's zone (RFC 3339 with the zone's offset then); `null` for
    /// a fixed rate or when not started.
    pub next_run_local: Option<String>,
    /// Id of the instance holding the job's lease, if known; `null` for non-singleton jobs.
    pub leader: Option<String>,
    /// Whether a run is in progress now.
    pub busy: bool,
    /// Whether the job runs on the lease holder only.
    pub singleton: bool,
    /// Whether this instance holds the job's lease (always `false` for non-singleton jobs,
    /// which need none).
    pub is_leader: bool,
    /// Ticks skipped because this instance was not the leader.
    pub skipped_not_leader: u64,
    /// Ticks skipped because the job was paused.
    #[serde(default)]
    pub skipped_paused: u64,
    /// Scheduled instants nobody ran and the missed-run policy skipped (a run still going, every
    /// instance stopped, a failover).
    pub missed_ticks: u64,
    /// Start of the last successful run.
    pub last_success_at: Option<DateTime<Utc>>,
    /// How the last run ended (including skips).
    pub last_status: Option<RunStatus>,
    /// Report of the last successful run.
    pub last_report: Option<RunReport>,
}

fn serialize_seconds<S: Serializer>(v: &f64, s: S) -> Result<S::Ok, S::Error> {
    if v.is_finite() && v.fract() == 0.0 && *v >= 0.0 && *v < 9.0e15 {
        // Whole seconds: print `5`, not `5.0` (the contract's example).
        s.serialize_u64(*v as u64)
    } else {
        s.serialize_f64(*v)
    }
}

/// The longest [`public_message`], in characters.
pub const PUBLIC_MESSAGE_MAX_CHARS: usize = 200;

/// A one-line message of `e` fit for anonymous readers (`last_error` in `/jobs/status`): the
/// error's own message without its source chain (which may hold backend internals), with every
/// URL-like word (`scheme://…`, `host/path?query`) replaced by `<url>`, control characters as
/// spaces, cut to [`PUBLIC_MESSAGE_MAX_CHARS`]. The full chain belongs in the log.
pub fn public_message(e: &crate::Error) -> String {
    scrub(&e.to_string())
}

/// One line of `text` without URL-like words, bounded (see [`public_message`]).
pub fn scrub(text: &str) -> String {
    let mut out = String::new();
    let mut chars = 0usize;
    for word in text.split(|c: char| c.is_whitespace() || c.is_control()) {
        if word.is_empty() {
            continue;
        }
        let urlish = word.contains("://")
            || word.contains('?')
            || word.starts_with("www.")
            || (word.contains('/') && word.contains('.') && !word.starts_with('/'));
        let word = if urlish { "<url>" } else { word };
        let needed = word.chars().count() + usize::from(chars > 0);
        if chars + needed > PUBLIC_MESSAGE_MAX_CHARS {
            out.push('…');
            break;
        }
        if chars > 0 {
            out.push(' ');
        }
        out.push_str(word);
        chars += needed;
    }
    out
}
