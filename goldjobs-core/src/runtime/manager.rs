//! JobManager: registers jobs, drives their schedules, reports status.

use super::leader::{keep_lease, Leadership};
use super::retry::run_with_retries;
use super::{
    public_message, Job, JobObserver, JobStatus, JobsStatus, MissedTickPolicy, RunOutcome,
    RunReport, RunStatus, RunTrigger, Schedule,
};
use crate::backoff::RandomSource;
use crate::{Clock, Error, Lease, Result};
use chrono::{DateTime, Utc};
use futures::FutureExt;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::sync::Notify;
use tokio::task::{AbortHandle, JoinHandle};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// Default time-to-live of a singleton job's lease.
pub const DEFAULT_LEASE_TTL: Duration = Duration::from_secs(10);
/// Default time a timed-out run gets, after its cancel token fired, to wind down before it is
/// aborted.
pub const DEFAULT_CANCEL_GRACE: Duration = Duration::from_secs(1);

/// What [`JobManager::stop_all`] achieved.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct StopReport {
    /// Jobs whose schedule (and run in progress, if any) ended within the deadline.
    pub stopped: Vec<String>,
    /// Jobs that were still running at the deadline; their tasks were then aborted (which takes
    /// effect at the job's next `.await`) and their lease, if any, was left to expire.
    pub not_stopped: Vec<String>,
}

impl StopReport {
    /// Whether every job stopped within the deadline.
    pub fn all_stopped(&self) -> bool {
        self.not_stopped.is_empty()
    }
}

/// Runs registered [`Job`]s on their [`Schedule`]s.
///
/// * Fixed rate: the n-th run is scheduled at `first + n × interval` (no drift), where
///   `first = start_all() + start_delay + random [0, jitter)`; uses `tokio::time`, so tests
///   can use paused time.
/// * Never two runs of one job at once (also not via [`run_now`](Self::run_now)). Instants
///   missed because a run was still going are skipped ([`MissedTickPolicy::Skip`], default) or
///   run back to back ([`MissedTickPolicy::Burst`]).
/// * Every run is its own task: a panic is caught and recorded as a failure; a run that exceeds
///   `Schedule::timeout` gets its [`JobContext::cancel`](super::JobContext::cancel) cancelled,
///   is given a grace period ([`with_cancel_grace`](Self::with_cancel_grace)) and is then aborted.
/// * Temporary errors are retried within the run (see [`RetryPolicy`](super::RetryPolicy)).
/// * Singleton jobs run only while this instance holds the [`Lease`] named after the job; a
///   keeper task acquires/renews it every `ttl / 3` and this instance steps down when its
///   holding ran out by the local monotonic clock without a successful renewal. Leadership is
///   checked when a run starts; a tick on a non-leader is skipped and counted. A run already
///   going is not interrupted by a loss of leadership (stale leaders are the job's business,
///   e.g. row claims).
///
/// ```no_run
/// # use std::{sync::Arc, time::Duration};
/// # use goldjobs_core::{runtime::{Job, JobManager}, SystemClock, Lease};
/// # async fn demo(lease: Arc<dyn Lease>, job: Arc<dyn Job>) -> goldjobs_core::Result<()> {
/// let manager = JobManager::new(Arc::new(SystemClock), lease, "instance-1")
///     .with_lease_ttl(Duration::from_secs(15));
/// manager.register(job)?;
/// manager.start_all();
/// // ...
/// let report = manager.stop_all(Duration::from_secs(10)).await;
/// assert!(report.all_stopped());
/// # Ok(()) }
/// ```
pub struct JobManager {
    env: Arc<Env>,
    jobs: Mutex<Vec<Arc<JobEntry>>>,
    started: AtomicBool,
}

/// The parts every task of the manager needs.
#[derive(Clone)]
struct Env {
    clock: Arc<dyn Clock>,
    lease: Arc<dyn Lease>,
    instance_id: String,
    lease_ttl: Duration,
    cancel_grace: Duration,
    observer: Option<Arc<dyn JobObserver>>,
    random: Arc<dyn RandomSource>,
}

impl std::fmt::Debug for JobManager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<String> = self.entries().iter().map(|e| e.name.clone()).collect();
        f.debug_struct("JobManager")
            .field("instance_id", &self.env.instance_id)
            .field("lease_ttl", &self.env.lease_ttl)
            .field("jobs", &names)
            .field("started", &self.started.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

struct JobEntry {
    job: Arc<dyn Job>,
    name: String,
    schedule: Schedule,
    state: Mutex<JobState>,
    /// A pending `run_now` (at most one permit is stored, so requests coalesce).
    manual: Notify,
    leadership: Arc<Leadership>,
}

#[derive(Default)]
struct JobState {
    tasks: Option<JobTasks>,
    busy: bool,
    next_instant: Option<Instant>,
    /// For a calendar job, the wall-clock instant `next_instant` stands for (exact, as the
    /// calendar names it; the status shows it rather than a conversion of the timer instant).
    next_calendar_at: Option<DateTime<Utc>>,
    current_run: Option<AbortHandle>,
    last_run_at: Option<DateTime<Utc>>,
    last_success_at: Option<DateTime<Utc>>,
    last_duration: Option<Duration>,
    last_error: Option<String>,
    last_status: Option<RunStatus>,
    last_report: Option<RunReport>,
    runs: u64,
    failures: u64,
    skipped_not_leader: u64,
    missed_ticks: u64,
}

struct JobTasks {
    cancel: CancellationToken,
    handle: JoinHandle<()>,
}

impl JobEntry {
    fn lock(&self) -> MutexGuard<'_, JobState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl JobManager {
    /// A manager without jobs. `instance_id` identifies this instance as a lease holder
    /// (e.g. hostname + pid); it is shown as `leader` in the status.
    pub fn new(
        clock: Arc<dyn Clock>,
        lease: Arc<dyn Lease>,
        instance_id: impl Into<String>,
    ) -> Self {
        JobManager {
            env: Arc::new(Env {
                clock,
                lease,
                instance_id: instance_id.into(),
                lease_ttl: DEFAULT_LEASE_TTL,
                cancel_grace: DEFAULT_CANCEL_GRACE,
                observer: None,
                random: crate::backoff::thread_random(),
            }),
            jobs: Mutex::new(Vec::new()),
            started: AtomicBool::new(false),
        }
    }

    /// Report every finished run (and skipped tick) to `observer`.
    pub fn with_observer(mut self, observer: Arc<dyn JobObserver>) -> Self {
        Arc::make_mut(&mut self.env).observer = Some(observer);
        self
    }

    /// Time-to-live of the leases of singleton jobs (default [`DEFAULT_LEASE_TTL`], 10 s, so that a standby
    /// takes over within ttl + ttl/3 ≈ 13.3 s after a leader dies);
    /// they are renewed every `ttl / 3`.
    pub fn with_lease_ttl(mut self, ttl: Duration) -> Self {
        Arc::make_mut(&mut self.env).lease_ttl = ttl.max(Duration::from_millis(3));
        self
    }

    /// How long a timed-out run may take to wind down after its cancel token fired before its
    /// task is aborted (default [`DEFAULT_CANCEL_GRACE`], 1 s).
    pub fn with_cancel_grace(mut self, grace: Duration) -> Self {
        Arc::make_mut(&mut self.env).cancel_grace = grace;
        self
    }

    /// Where start jitter and retry jitter are drawn from (default: the thread-local
    /// generator); a [`SeededRandom`](crate::backoff::SeededRandom) makes them reproducible.
    pub fn with_random_source(mut self, random: Arc<dyn RandomSource>) -> Self {
        Arc::make_mut(&mut self.env).random = random;
        self
    }

    /// This instance's id as a lease holder.
    pub fn instance_id(&self) -> &str {
        &self.env.instance_id
    }

    fn entries(&self) -> Vec<Arc<JobEntry>> {
        self.jobs.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    fn find(&self, name: &str) -> Option<Arc<JobEntry>> {
        self.entries().into_iter().find(|e| e.name == name)
    }

    /// Add a job. Its name must be unique ([`Error::Conflict`] otherwise) and its interval
    /// positive ([`Error::InvalidInput`]). If the manager is started, the job starts at once.
    pub fn register(&self, job: Arc<dyn Job>) -> Result<()> {
        let name = job.name().to_owned();
        let schedule = job.schedule();
        if name.is_empty() {
            return Err(Error::invalid("job name must not be empty"));
        }
        if schedule.interval.is_zero() {
            return Err(Error::invalid(format!(
                "job {name}: schedule interval must be positive"
            )));
        }
        let entry = Arc::new(JobEntry {
            job,
            name: name.clone(),
            schedule,
            state: Mutex::new(JobState::default()),
            manual: Notify::new(),
            leadership: Arc::new(Leadership::new()),
        });
        {
            let mut jobs = self.jobs.lock().unwrap_or_else(|e| e.into_inner());
            if jobs.iter().any(|e| e.name == name) {
                return Err(Error::Conflict(format!("job {name} is already registered")));
            }
            jobs.push(entry.clone());
        }
        if self.started.load(Ordering::SeqCst) {
            self.start_entry(&entry);
        }
        Ok(())
    }

    /// Start the schedules of all registered jobs (and of jobs registered later), each at
    /// `now + start_delay + random [0, jitter)`. Jobs already started are left alone.
    ///
    /// Must be called within a Tokio runtime.
    pub fn start_all(&self) {
        self.started.store(true, Ordering::SeqCst);
        for entry in self.entries() {
            self.start_entry(&entry);
        }
    }

    fn start_entry(&self, entry: &Arc<JobEntry>) {
        let mut st = entry.lock();
        if st.tasks.is_some() {
            return;
        }
        let s = &entry.schedule;
        let jitter = if s.jitter.is_zero() {
            Duration::ZERO
        } else {
            // [0, jitter): one nanosecond below the top.
            let max = u64::try_from(s.jitter.as_nanos()).unwrap_or(u64::MAX);
            Duration::from_nanos(self.env.random.up_to(max.saturating_sub(1)))
        };
        let first = Instant::now() + s.start_delay + jitter;
        st.next_instant = Some(first);
        entry.leadership.reset();
        let cancel = CancellationToken::new();
        let handle = tokio::spawn(drive(
            self.env.clone(),
            entry.clone(),
            first,
            cancel.clone(),
        ));
        st.tasks = Some(JobTasks { cancel, handle });
    }

    /// Stop all schedules: cancel every job (a run in progress sees its
    /// [`JobContext::cancel`](super::JobContext::cancel) fire and may finish its step), wait
    /// up to `deadline` for them to end, release the leases, and report which jobs did not
    /// stop in time (those are aborted).
    pub async fn stop_all(&self, deadline: Duration) -> StopReport {
        self.started.store(false, Ordering::SeqCst);
        let mut waiting = Vec::new();
        for entry in self.entries() {
            let tasks = entry.lock().tasks.take();
            if let Some(tasks) = tasks {
                tasks.cancel.cancel();
                waiting.push((entry, tasks.handle));
            }
        }
        let until = Instant::now() + deadline;
        let mut report = StopReport::default();
        for (entry, mut handle) in waiting {
            match tokio::time::timeout_at(until, &mut handle).await {
                Ok(_) => report.stopped.push(entry.name.clone()),
                Err(_) => {
                    tracing::warn!(job = %entry.name, "job did not stop before the deadline; aborting");
                    handle.abort();
                    let mut st = entry.lock();
                    if let Some(run) = st.current_run.take() {
                        run.abort();
                    }
                    st.busy = false;
                    drop(st);
                    report.not_stopped.push(entry.name.clone());
                }
            }
            let mut st = entry.lock();
            st.next_instant = None;
            st.next_calendar_at = None;
        }
        report
    }

    /// Ask for a run of `name` as soon as no run of it is in progress; returns at once.
    /// Several requests while a run is going result in one extra run. A singleton job still
    /// runs only on the leader (elsewhere the run is recorded as skipped).
    ///
    /// Errors: [`Error::NotFound`] for an unknown job, [`Error::Conflict`] when the job's
    /// schedule is not started.
    pub fn run_now(&self, name: &str) -> Result<()> {
        let entry = self
            .find(name)
            .ok_or_else(|| Error::NotFound(format!("job {name}")))?;
        if entry.lock().tasks.is_none() {
            return Err(Error::Conflict(format!("job {name} is not started")));
        }
        entry.manual.notify_one();
        Ok(())
    }

    /// The status of every job (`GET /jobs/status`).
    pub fn status(&self) -> JobsStatus {
        let now_i = Instant::now();
        let now_w = self.env.clock.now();
        let jobs: Vec<JobStatus> = self
            .entries()
            .iter()
            .map(|e| {
                let st = e.lock();
                let singleton = e.schedule.singleton;
                let next_run_at = st.next_instant.filter(|_| st.tasks.is_some()).map(|at| {
                    st.next_calendar_at.unwrap_or_else(|| {
                        let ahead = at.saturating_duration_since(now_i);
                        chrono::Duration::from_std(ahead)
                            .ok()
                            .and_then(|d| now_w.checked_add_signed(d))
                            .unwrap_or(DateTime::<Utc>::MAX_UTC)
                    })
                });
                JobStatus {
                    name: e.name.clone(),
                    running: st.tasks.is_some(),
                    interval_seconds: e.schedule.interval.as_secs_f64(),
                    last_run_at: st.last_run_at,
                    last_duration_ms: st
                        .last_duration
                        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX)),
                    last_error: st.last_error.clone(),
                    runs: st.runs,
                    failures: st.failures,
                    schedule: e.schedule.describe(),
                    timezone: e.schedule.calendar.as_ref().map(|c| c.zone().to_string()),
                    next_run_at,
                    next_run_local: e
                        .schedule
                        .calendar
                        .as_ref()
                        .zip(next_run_at)
                        .map(|(c, at)| at.with_timezone(&c.zone()).to_rfc3339()),
                    leader: singleton
                        .then(|| e.leadership.holder(&self.env.instance_id))
                        .flatten(),
                    busy: st.busy,
                    singleton,
                    is_leader: singleton && e.leadership.is_leader(),
                    skipped_not_leader: st.skipped_not_leader,
                    missed_ticks: st.missed_ticks,
                    last_success_at: st.last_success_at,
                    last_status: st.last_status,
                    last_report: st.last_report.clone(),
                }
            })
            .collect();
        JobsStatus {
            total_jobs: jobs.len(),
            jobs,
        }
    }
}

impl Drop for JobManager {
    /// Cancels every started job without waiting (call [`JobManager::stop_all`] for an orderly
    /// stop); runs in progress see their cancel token fire, leases are released by the jobs'
    /// tasks as they end.
    fn drop(&mut self) {
        for entry in self.entries() {
            if let Some(tasks) = entry.lock().tasks.take() {
                tasks.cancel.cancel();
            }
        }
    }
}

/// The task of one started job: lease keeper (singletons), schedule loop, lease release.
async fn drive(env: Arc<Env>, entry: Arc<JobEntry>, first: Instant, cancel: CancellationToken) {
    let keeper = if entry.schedule.singleton {
        let handle = tokio::spawn(keep_lease(
            env.lease.clone(),
            entry.name.clone(),
            env.instance_id.clone(),
            env.lease_ttl,
            entry.leadership.clone(),
            cancel.clone(),
        ));
        // Don't skip the first tick just because the first acquire is still on its way.
        tokio::select! {
            _ = cancel.cancelled() => {}
            _ = entry.leadership.first_attempt_done() => {}
        }
        Some(handle)
    } else {
        None
    };

    schedule_loop(&env, &entry, first, &cancel).await;

    if let Some(keeper) = keeper {
        // The keeper ends on `cancel`; wait so that no acquire races the release.
        let _ = keeper.await;
        let release =
            AssertUnwindSafe(env.lease.release(&entry.name, &env.instance_id)).catch_unwind();
        match tokio::time::timeout(env.lease_ttl / 3, release).await {
            Ok(Ok(Ok(()))) => {}
            Ok(Ok(Err(e))) => {
                tracing::warn!(job = %entry.name, error = %e, "lease release failed")
            }
            Ok(Err(_panic)) => tracing::error!(job = %entry.name, "lease release panicked"),
            Err(_) => tracing::warn!(job = %entry.name, "lease release timed out"),
        }
        entry.leadership.clear();
    }
}

async fn schedule_loop(env: &Env, entry: &JobEntry, first: Instant, cancel: &CancellationToken) {
    if let Some(calendar) = &entry.schedule.calendar {
        return calendar_loop(env, entry, calendar, cancel).await;
    }
    let interval = entry.schedule.interval;
    let mut next = first;
    loop {
        entry.lock().next_instant = Some(next);
        let trigger = tokio::select! {
            biased;
            _ = cancel.cancelled() => break,
            _ = tokio::time::sleep_until(next) => RunTrigger::Scheduled,
            _ = entry.manual.notified() => RunTrigger::Manual,
        };
        let scheduled_at = match trigger {
            RunTrigger::Scheduled => {
                // While this run goes, show the instant after it as the next one.
                entry.lock().next_instant = Some(next + interval);
                Some(next)
            }
            RunTrigger::Manual => None,
        };
        execute(env, entry, trigger, scheduled_at, cancel).await;
        if trigger == RunTrigger::Scheduled {
            next += interval;
        }
        let now = Instant::now();
        if next < now && entry.schedule.missed == MissedTickPolicy::Skip {
            let behind = (now - next).as_nanos();
            let step = interval.as_nanos();
            let skipped = behind.div_ceil(step);
            next += nanos_to_duration(skipped.saturating_mul(step));
            let skipped = u64::try_from(skipped).unwrap_or(u64::MAX);
            entry.lock().missed_ticks += skipped;
            tracing::debug!(job = %entry.name, skipped, "skipped missed ticks");
        }
    }
}

/// The schedule loop of a calendar job: runs at the instants of `calendar` by the manager's
/// wall clock, waiting on the Tokio timer.
async fn calendar_loop(
    env: &Env,
    entry: &JobEntry,
    calendar: &super::CronSchedule,
    cancel: &CancellationToken,
) {
    // Instants before the start are not missed runs.
    let mut last = env.clock.now();
    loop {
        let now = env.clock.now();
        let Some(mut at) = calendar.next_after(last) else {
            tracing::warn!(job = %entry.name, "calendar has no next instant; schedule ends");
            {
                let mut st = entry.lock();
                st.next_instant = None;
                st.next_calendar_at = None;
            }
            cancel.cancelled().await;
            break;
        };
        if at < now && entry.schedule.missed == MissedTickPolicy::Skip {
            // A run (or a pause of the process) outlasted instants: skip to the next one.
            let mut skipped = 0u64;
            while at < now && skipped < 100_000 {
                skipped += 1;
                match calendar.next_after(at) {
                    Some(next) => at = next,
                    None => break,
                }
            }
            entry.lock().missed_ticks += skipped;
            tracing::debug!(job = %entry.name, skipped, "skipped missed calendar instants");
        }
        let wait = (at - now).to_std().unwrap_or(Duration::ZERO);
        let deadline = Instant::now() + wait;
        {
            let mut st = entry.lock();
            st.next_instant = Some(deadline);
            st.next_calendar_at = Some(at);
        }
        let trigger = tokio::select! {
            biased;
            _ = cancel.cancelled() => break,
            _ = tokio::time::sleep_until(deadline) => RunTrigger::Scheduled,
            _ = entry.manual.notified() => RunTrigger::Manual,
        };
        match trigger {
            RunTrigger::Scheduled => {
                if let Some(after) = calendar.next_after(at) {
                    let ahead = (after - at).to_std().unwrap_or(Duration::ZERO);
                    let mut st = entry.lock();
                    st.next_instant = Some(deadline + ahead);
                    st.next_calendar_at = Some(after);
                }
                execute(env, entry, trigger, Some(deadline), cancel).await;
                last = at;
            }
            RunTrigger::Manual => execute(env, entry, trigger, None, cancel).await,
        }
    }
}

fn nanos_to_duration(nanos: u128) -> Duration {
    let secs = u64::try_from(nanos / 1_000_000_000).unwrap_or(u64::MAX);
    // The remainder is < 10^9 and fits.
    let sub = u32::try_from(nanos % 1_000_000_000).unwrap_or(0);
    Duration::new(secs, sub)
}

/// One run: leadership check, the job (with retries) in its own task, timeout, bookkeeping.
async fn execute(
    env: &Env,
    entry: &JobEntry,
    trigger: RunTrigger,
    scheduled_at: Option<Instant>,
    job_cancel: &CancellationToken,
) {
    let started = Instant::now();
    let lateness = scheduled_at.map_or(Duration::ZERO, |at| started.saturating_duration_since(at));
    if entry.schedule.singleton && !entry.leadership.is_leader() {
        let outcome = RunOutcome {
            status: RunStatus::SkippedNotLeader,
            trigger,
            duration: Duration::ZERO,
            attempts: 0,
            lateness,
            error: None,
            public_error: None,
            report: None,
        };
        tracing::debug!(job = %entry.name, "not leader, tick skipped");
        finish(env, entry, None, outcome);
        return;
    }

    let started_wall = env.clock.now();
    let run_cancel = job_cancel.child_token();
    let attempts = Arc::new(AtomicU32::new(0));
    let mut handle = tokio::spawn(run_with_retries(
        entry.job.clone(),
        env.clock.clone(),
        entry.schedule.retry,
        run_cancel.clone(),
        attempts.clone(),
        env.random.clone(),
    ));
    {
        let mut st = entry.lock();
        st.busy = true;
        st.current_run = Some(handle.abort_handle());
    }

    let joined = match entry.schedule.timeout {
        None => Some((&mut handle).await),
        Some(limit) => tokio::time::timeout(limit, &mut handle).await.ok(),
    };
    // (status, the error with its chain for the log, the one line for status readers, report)
    let (status, error, public_error, report) = match joined {
        Some(Ok(Ok(report))) => (RunStatus::Ok, None, None, Some(report)),
        Some(Ok(Err(e))) if matches!(e, Error::Cancelled) || job_cancel.is_cancelled() => {
            // Stopped by stop_all (or the job gave up on its own cancel token).
            (
                RunStatus::Cancelled,
                Some(error_chain(&e)),
                Some(public_message(&e)),
                None,
            )
        }
        Some(Ok(Err(e))) => (
            RunStatus::Failed,
            Some(error_chain(&e)),
            Some(public_message(&e)),
            None,
        ),
        Some(Err(join_err)) => {
            if join_err.is_panic() {
                let msg = panic_message(join_err.into_panic());
                (
                    RunStatus::Panicked,
                    Some(format!("panicked: {msg}")),
                    Some("panicked (see the log)".to_owned()),
                    None,
                )
            } else {
                let aborted = Some("aborted".to_owned());
                (RunStatus::Cancelled, aborted.clone(), aborted, None)
            }
        }
        None => {
            // Timed out: signal, give it a grace period, then abort and wait until it is gone
            // so that the next run never overlaps this one.
            run_cancel.cancel();
            if tokio::time::timeout(env.cancel_grace, &mut handle)
                .await
                .is_err()
            {
                handle.abort();
                let _ = (&mut handle).await;
            }
            let limit = entry.schedule.timeout.unwrap_or_default();
            let timed_out = Some(format!("timed out after {limit:?}"));
            (RunStatus::Timeout, timed_out.clone(), timed_out, None)
        }
    };
    let outcome = RunOutcome {
        status,
        trigger,
        duration: started.elapsed(),
        attempts: attempts.load(Ordering::Relaxed),
        lateness,
        error,
        public_error,
        report,
    };
    match status {
        RunStatus::Ok => tracing::debug!(job = %entry.name, attempts = outcome.attempts, "run ok"),
        _ => tracing::warn!(
            job = %entry.name,
            status = %status,
            attempts = outcome.attempts,
            error = outcome.error.as_deref().unwrap_or(""),
            "run did not succeed"
        ),
    }
    finish(env, entry, Some(started_wall), outcome);
}

/// Record an outcome in the job's state and tell the observer.
fn finish(env: &Env, entry: &JobEntry, started_wall: Option<DateTime<Utc>>, outcome: RunOutcome) {
    {
        let mut st = entry.lock();
        st.busy = false;
        st.current_run = None;
        st.last_status = Some(outcome.status);
        if outcome.status == RunStatus::SkippedNotLeader {
            st.skipped_not_leader += 1;
        } else {
            st.runs += 1;
            st.last_run_at = started_wall;
            st.last_duration = Some(outcome.duration);
            st.last_error = outcome.public_error.clone();
            if outcome.status.is_failure() {
                st.failures += 1;
            }
            if outcome.status == RunStatus::Ok {
                st.last_success_at = started_wall;
                st.last_report = outcome.report.clone();
            }
        }
    }
    if let Some(observer) = &env.observer {
        let call = std::panic::AssertUnwindSafe(|| observer.on_run_finished(&entry.name, &outcome));
        if std::panic::catch_unwind(call).is_err() {
            tracing::error!(job = %entry.name, "job observer panicked");
        }
    }
}

fn error_chain(e: &Error) -> String {
    let mut msg = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        msg.push_str(": ");
        msg.push_str(&s.to_string());
        source = s.source();
    }
    msg
}

fn panic_message(payload: Box<dyn std::any::Any + Send>) -> String {
    if let Some(s) = payload.downcast_ref::<&'static str>() {
        (*s).to_owned()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "non-string panic payload".to_owned()
    }
}
