//! The job runtime: the [`Job`] trait, schedules and the [`JobManager`].

use crate::{Clock, Result};
use async_trait::async_trait;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

mod calendar;
mod leader;
mod manager;
mod retry;
mod status;
mod store;
pub use calendar::{parse_zone, CronSchedule};
pub use manager::*;
pub use status::*;
pub use store::{JobControl, JobRun, DEFAULT_RUNS_KEPT, MAX_RUN_TEXT_CHARS};

/// A periodic background job.
#[async_trait]
pub trait Job: Send + Sync + 'static {
    /// Unique name, e.g. `PriceFetcherJob` (used in status, metrics and `POST /jobs/{name}/run`).
    fn name(&self) -> &str;
    /// When and how it runs.
    fn schedule(&self) -> Schedule;
    /// One run. Temporary errors are retried by the runtime within the run (see [`RetryPolicy`]).
    async fn run(&self, ctx: &JobContext) -> Result<RunReport>;
}

/// What a run gets from the runtime.
#[derive(Debug, Clone)]
pub struct JobContext {
    /// Cancelled when the manager stops or the run times out; long runs should check it.
    pub cancel: CancellationToken,
    /// The wall clock (a `ManualClock` in tests).
    pub clock: Arc<dyn Clock>,
    /// 1 for the first attempt of a run, 2 for its first retry, ...
    pub attempt: u32,
}

/// What a successful run reports, shown in the job status.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct RunReport {
    /// One line on what happened, e.g. `6 quotes, 0 failed`.
    pub summary: String,
    /// Partial problems that did not fail the run (a symbol the provider failed for,
    /// a broken feed), each one line.
    pub problems: Vec<String>,
}

impl RunReport {
    /// A report with a summary and no problems.
    pub fn ok(summary: impl Into<String>) -> Self {
        RunReport {
            summary: summary.into(),
            problems: Vec::new(),
        }
    }
}

/// What to do with scheduled instants nobody ran: those that passed while a run was still
/// going, while every instance was stopped, or during a failover (the schedule state is kept in
/// the [`JobStore`](crate::JobStore), so a restart knows what it missed).
///
/// An instant up to one lease term late (the time a takeover may take) is not missed: it runs
/// late. Older ones are missed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum MissedTickPolicy {
    /// Skip the missed instants and continue at the next one of the schedule (never burst).
    /// The default, and the prices' policy: a price from the past is worth nothing.
    #[default]
    Skip,
    /// Run one catch-up run at once for all missed instants, then continue at the next one of
    /// the schedule. The policy of news and verification.
    Once,
    /// Run the missed instants back to back, at most `max` of them (older ones are skipped),
    /// then continue.
    All {
        /// The most catch-up runs.
        max: u32,
    },
}

impl MissedTickPolicy {
    /// `skip`, `once` or `all:N`.
    pub fn as_label(&self) -> String {
        match self {
            MissedTickPolicy::Skip => "skip".to_owned(),
            MissedTickPolicy::Once => "once".to_owned(),
            MissedTickPolicy::All { max } => format!("all:{max}"),
        }
    }

    /// How many of `missed` instants to run: 0, 1 or at most `max`.
    pub fn catch_up(&self, missed: u64) -> u64 {
        match self {
            MissedTickPolicy::Skip => 0,
            MissedTickPolicy::Once => missed.min(1),
            MissedTickPolicy::All { max } => missed.min(u64::from(*max)),
        }
    }
}

impl std::str::FromStr for MissedTickPolicy {
    type Err = crate::Error;

    /// `skip`, `once`, or `all:N` (N from 1 to 10,000).
    fn from_str(s: &str) -> Result<Self> {
        match s.trim() {
            "skip" => Ok(MissedTickPolicy::Skip),
            "once" => Ok(MissedTickPolicy::Once),
            other => match other.strip_prefix("all:").map(|n| n.trim().parse::<u32>()) {
                Some(Ok(max)) if (1..=10_000).contains(&max) => Ok(MissedTickPolicy::All { max }),
                _ => Err(crate::Error::invalid(format!(
                    "{other:?} is not a missed-run policy: skip, once or all:N (N from 1 to 10000)"
                ))),
            },
        }
    }
}

/// Retries of temporary errors inside one run: exponential backoff with full jitter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in total (1 = no retry).
    pub max_attempts: u32,
    /// Backoff before the first retry (upper bound of the jittered wait).
    pub initial_backoff: Duration,
    /// Cap of the backoff.
    pub max_backoff: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 3,
            initial_backoff: Duration::from_millis(200),
            max_backoff: Duration::from_secs(5),
        }
    }
}

impl RetryPolicy {
    /// No retries.
    pub fn none() -> Self {
        RetryPolicy {
            max_attempts: 1,
            ..Default::default()
        }
    }
}

/// When a periodic job runs: at a fixed rate or at the instants of a calendar.
///
/// The configuration writes it as a duration (`5s`, `15m`) or as `cron:EXPR`
/// ([`Cadence::parse`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cadence {
    /// Every period, on a fixed-rate grid from the start.
    Every(Duration),
    /// At the instants of a cron expression in its zone.
    Calendar(CronSchedule),
}

impl From<Duration> for Cadence {
    fn from(d: Duration) -> Self {
        Cadence::Every(d)
    }
}

impl From<CronSchedule> for Cadence {
    fn from(c: CronSchedule) -> Self {
        Cadence::Calendar(c)
    }
}

impl Cadence {
    /// `cron:EXPR` (evaluated in the IANA zone `zone`) or a humantime duration (`500ms`, `5s`,
    /// `15m`, `1h`); a zero duration is refused. Errors are [`Error::InvalidInput`](crate::Error::InvalidInput).
    pub fn parse(text: &str, zone: &str) -> Result<Cadence> {
        let text = text.trim();
        if let Some(expr) = text.strip_prefix("cron:") {
            return CronSchedule::parse(expr, zone).map(Cadence::Calendar);
        }
        match humantime::parse_duration(text) {
            Ok(d) if !d.is_zero() => Ok(Cadence::Every(d)),
            Ok(_) => Err(crate::Error::invalid("a period must be longer than zero")),
            Err(e) => Err(crate::Error::invalid(format!(
                "{text:?} is neither a duration (500ms, 5s, 15m) nor cron:EXPR: {e}"
            ))),
        }
    }

    /// The schedule: [`Schedule::every`] or [`Schedule::cron`].
    pub fn schedule(&self) -> Schedule {
        match self {
            Cadence::Every(d) => Schedule::every(*d),
            Cadence::Calendar(c) => Schedule::cron(c.clone()),
        }
    }
}

impl std::fmt::Display for Cadence {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Cadence::Every(d) => write!(f, "{}", humantime::format_duration(*d)),
            Cadence::Calendar(c) => write!(f, "cron:{}", c.expression()),
        }
    }
}

/// When a job runs — a fixed rate or a calendar — and its run options.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Schedule {
    /// The period; runs start at `start + n × interval` (no drift). For a calendar schedule,
    /// the nominal period shown in the status (the gap between its next two instants).
    pub interval: Duration,
    /// A calendar: when set, runs start at the instants of the cron expression in its zone
    /// (DST-correct, see [`CronSchedule`]) instead of on the fixed-rate grid; `start_delay`
    /// and `jitter` are not used.
    pub calendar: Option<CronSchedule>,
    /// Wait before the first run.
    pub start_delay: Duration,
    /// Random extra delay in `[0, jitter)` added once to the start, so instances don't hit a
    /// provider in lockstep.
    pub jitter: Duration,
    /// Per-run timeout (all attempts together); `None` = no timeout.
    pub timeout: Option<Duration>,
    /// Retries of temporary errors within a run.
    pub retry: RetryPolicy,
    /// What happens to missed ticks.
    pub missed: MissedTickPolicy,
    /// Whether only the lease holder runs it (singleton across instances).
    pub singleton: bool,
}

impl Schedule {
    /// Every `interval`, starting at once, timeout = interval, default retries, skip missed
    /// ticks, singleton.
    pub fn every(interval: Duration) -> Self {
        Schedule {
            interval,
            calendar: None,
            start_delay: Duration::ZERO,
            jitter: Duration::ZERO,
            timeout: Some(interval.max(Duration::from_secs(1))),
            retry: RetryPolicy::default(),
            missed: MissedTickPolicy::Skip,
            singleton: true,
        }
    }

    /// At the instants of `calendar`, timeout = its nominal period (at least 1 s), default
    /// retries, skip missed instants, singleton.
    pub fn cron(calendar: CronSchedule) -> Self {
        let now = chrono::Utc::now();
        let interval = calendar
            .next_after(now)
            .and_then(|a| calendar.next_after(a).map(|b| (b - a).to_std().ok()))
            .flatten()
            .filter(|d| !d.is_zero())
            .unwrap_or(Duration::from_secs(60));
        Schedule {
            calendar: Some(calendar),
            ..Schedule::every(interval)
        }
    }

    /// How the schedule is written: `every 5s` or `cron:EXPR` (with its zone when not UTC).
    pub fn describe(&self) -> String {
        match &self.calendar {
            Some(c) if c.zone() == chrono_tz::Tz::UTC => format!("cron:{}", c.expression()),
            Some(c) => format!("cron:{} ({})", c.expression(), c.zone()),
            None => format!("every {}", humantime::format_duration(self.interval)),
        }
    }

    /// Set the start delay.
    pub fn with_start_delay(mut self, d: Duration) -> Self {
        self.start_delay = d;
        self
    }

    /// Set the start jitter.
    pub fn with_jitter(mut self, d: Duration) -> Self {
        self.jitter = d;
        self
    }

    /// Set the per-run timeout.
    pub fn with_timeout(mut self, t: Option<Duration>) -> Self {
        self.timeout = t;
        self
    }

    /// Set the retry policy.
    pub fn with_retry(mut self, r: RetryPolicy) -> Self {
        self.retry = r;
        self
    }

    /// Set the missed-tick policy.
    pub fn with_missed(mut self, m: MissedTickPolicy) -> Self {
        self.missed = m;
        self
    }

    /// Run on every instance (`false`) or on the lease holder only (`true`).
    pub fn with_singleton(mut self, s: bool) -> Self {
        self.singleton = s;
        self
    }
}

#[cfg(test)]
mod store_tests;
#[cfg(test)]
mod tests;
