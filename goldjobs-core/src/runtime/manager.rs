//! JobManager: registers jobs, drives their schedules, reports status.

use super::leader::{keep_lease, Leadership};
use super::retry::run_with_retries;
use super::{
    public_message, Job, JobControl, JobObserver, JobRun, JobStatus, JobsStatus, MissedTickPolicy,
    RunOutcome, RunReport, RunStatus, RunTrigger, Schedule, DEFAULT_RUNS_KEPT,
};
use crate::backoff::RandomSource;
use crate::{Clock, Error, JobStore, Lease, Result};
use chrono::{DateTime, Utc};
use futures::FutureExt;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::sync::{watch, Notify};
use tokio::task::{AbortHandle, JoinHandle};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// Default time-to-live of a singleton job's lease: renewed every second, so a standby takes
/// over within about 4 s after a leader dies (at once after a leader releases it).
pub const DEFAULT_LEASE_TTL: Duration = Duration::from_secs(3);
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
///   missed because a run was still going — or, with a [store](Self::with_store), while no
///   instance ran the job — follow the job's [`MissedTickPolicy`] (skip, one catch-up, or all
///   of them up to a bound).
/// * Every run is its own task: a panic is caught and recorded as a failure; a run that exceeds
///   `Schedule::timeout` gets its [`JobContext::cancel`](super::JobContext::cancel) cancelled,
///   is given a grace period ([`with_cancel_grace`](Self::with_cancel_grace)) and is then aborted.
/// * Temporary errors are retried within the run (see [`RetryPolicy`](super::RetryPolicy)).
/// * Singleton jobs run only while this instance holds the [`Lease`] named after the job; a
///   keeper task acquires/renews it every `ttl / 3` and this instance steps down when its
///   holding ran out by the local monotonic clock without a successful renewal. Leadership is
///   checked when a run starts; a tick on a non-leader is skipped and counted. A run already
///   going is not interrupted by a loss of leadership (stale leaders are the job's business,
///   e.g. row claims); the schedule state it writes afterwards is fenced by its lease term.
/// * With a store, pause flags ([`pause`](Self::pause)) are re-read every `ttl / 3` and checked
///   when a scheduled run starts, and every executed run is recorded ([`runs`](Self::runs)).
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
    jobs: Arc<Mutex<Vec<Arc<JobEntry>>>>,
    started: AtomicBool,
    /// The task that reads the job controls from the store every lease renewal period.
    watcher: Mutex<Option<JobTasks>>,
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
    store: Option<Arc<dyn JobStore>>,
    runs_kept: u32,
    /// `true` once the watcher loaded the controls since the last start (or there is no store).
    controls_loaded: Arc<watch::Sender<bool>>,
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
    /// Paused (from the store, or set here by `pause`).
    paused: bool,
    /// The last scheduled instant a leader handled, as last read from the store or written.
    stored_last: Option<DateTime<Utc>>,
    runs: u64,
    failures: u64,
    skipped_not_leader: u64,
    skipped_paused: u64,
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
                store: None,
                runs_kept: DEFAULT_RUNS_KEPT,
                controls_loaded: Arc::new(watch::channel(false).0),
            }),
            jobs: Arc::new(Mutex::new(Vec::new())),
            started: AtomicBool::new(false),
            watcher: Mutex::new(None),
        }
    }

    /// Keep the runtime's shared state in `store` (one store for the whole fleet): pause flags
    /// ([`pause`](Self::pause)), the last scheduled instant of every singleton job (so a
    /// restart or a failover continues the schedule instead of repeating or silently skipping
    /// a run, see [`MissedTickPolicy`]) and the run history ([`runs`](Self::runs)). Without a
    /// store all of it lives in this manager only.
    pub fn with_store(mut self, store: Arc<dyn JobStore>) -> Self {
        Arc::make_mut(&mut self.env).store = Some(store);
        self
    }

    /// Runs kept per job in the store's history (default [`DEFAULT_RUNS_KEPT`], at least 1).
    pub fn with_runs_kept(mut self, keep: u32) -> Self {
        Arc::make_mut(&mut self.env).runs_kept = keep.max(1);
        self
    }

    /// Report every finished run (and skipped tick) to `observer`.
    pub fn with_observer(mut self, observer: Arc<dyn JobObserver>) -> Self {
        Arc::make_mut(&mut self.env).observer = Some(observer);
        self
    }

    /// Time-to-live of the leases of singleton jobs (default [`DEFAULT_LEASE_TTL`], 3 s, so that a
    /// standby takes over within ttl + ttl/3 = 4 s after a leader dies); they are renewed, and
    /// the job controls re-read from the store, every `ttl / 3`.
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
        self.start_watcher();
        for entry in self.entries() {
            self.start_entry(&entry);
        }
    }

    fn start_watcher(&self) {
        let mut watcher = self.watcher.lock().unwrap_or_else(|e| e.into_inner());
        if watcher.is_some() {
            return;
        }
        let Some(store) = self.env.store.clone() else {
            self.env.controls_loaded.send_replace(true);
            return;
        };
        self.env.controls_loaded.send_replace(false);
        let cancel = CancellationToken::new();
        let handle = tokio::spawn(watch_controls(
            store,
            self.jobs.clone(),
            self.env.controls_loaded.clone(),
            (self.env.lease_ttl / 3).max(Duration::from_millis(1)),
            cancel.clone(),
        ));
        *watcher = Some(JobTasks { cancel, handle });
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
        let watcher = self
            .watcher
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        if let Some(w) = watcher {
            w.cancel.cancel();
            w.handle.abort();
        }
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

    /// Pause the scheduled runs of `name` on every instance that shares this manager's store
    /// (`POST /jobs/{name}/pause`): this manager at once, the others within one lease renewal
    /// period; kept across restarts. A run in progress finishes; [`run_now`](Self::run_now)
    /// still runs a paused job. Returns the job's status.
    ///
    /// Errors: [`Error::NotFound`] for an unknown job; the store's error when it cannot be
    /// written (nothing changes then).
    pub async fn pause(&self, name: &str) -> Result<JobStatus> {
        self.set_paused(name, true).await
    }

    /// Resume the scheduled runs of `name` (`POST /jobs/{name}/resume`); see
    /// [`pause`](Self::pause). Instants that passed while it was paused are not caught up.
    pub async fn resume(&self, name: &str) -> Result<JobStatus> {
        self.set_paused(name, false).await
    }

    async fn set_paused(&self, name: &str, paused: bool) -> Result<JobStatus> {
        let entry = self
            .find(name)
            .ok_or_else(|| Error::NotFound(format!("job {name}")))?;
        if let Some(store) = &self.env.store {
            let control = store.set_paused(name, paused, self.env.clock.now()).await?;
            apply_control(&entry, &control);
        } else {
            entry.lock().paused = paused;
        }
        tracing::info!(job = %name, paused, "job {}", if paused { "paused" } else { "resumed" });
        self.job_status(name)
    }

    /// The newest `limit` runs of `name` on any instance (`GET /jobs/{name}/runs`), newest
    /// first: from the store, or, without one, this manager's last run.
    ///
    /// Errors: [`Error::NotFound`] for an unknown job; the store's error.
    pub async fn runs(&self, name: &str, limit: u32) -> Result<Vec<JobRun>> {
        let entry = self
            .find(name)
            .ok_or_else(|| Error::NotFound(format!("job {name}")))?;
        match &self.env.store {
            Some(store) => store.recent_runs(name, limit).await,
            None => {
                let st = entry.lock();
                let last = st
                    .last_run_at
                    .zip(st.last_status)
                    .map(|(started_at, status)| JobRun {
                        job: entry.name.clone(),
                        instance: self.env.instance_id.clone(),
                        started_at,
                        duration_ms: st.last_duration.map_or(0, duration_ms),
                        status,
                        error: st.last_error.clone(),
                        summary: (status == RunStatus::Ok)
                            .then(|| st.last_report.as_ref().map(|r| r.summary.clone()))
                            .flatten(),
                    });
                Ok(last.into_iter().take(usize::from(limit > 0)).collect())
            }
        }
    }

    /// The status of one job; [`Error::NotFound`] for an unknown one.
    pub fn job_status(&self, name: &str) -> Result<JobStatus> {
        self.status()
            .jobs
            .into_iter()
            .find(|j| j.name == name)
            .ok_or_else(|| Error::NotFound(format!("job {name}")))
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
                    paused: st.paused,
                    missed_policy: e.schedule.missed.as_label(),
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
                    skipped_paused: st.skipped_paused,
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
        if let Some(w) = self
            .watcher
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
        {
            w.cancel.cancel();
        }
        for entry in self.entries() {
            if let Some(tasks) = entry.lock().tasks.take() {
                tasks.cancel.cancel();
            }
        }
    }
}

/// Reads the job controls from `store` every `period` until `cancel`, applying them to the
/// registered jobs; marks `loaded` after the first read (successful or not).
async fn watch_controls(
    store: Arc<dyn JobStore>,
    jobs: Arc<Mutex<Vec<Arc<JobEntry>>>>,
    loaded: Arc<watch::Sender<bool>>,
    period: Duration,
    cancel: CancellationToken,
) {
    let mut failing = false;
    loop {
        let started = Instant::now();
        let read = tokio::select! {
            biased;
            _ = cancel.cancelled() => break,
            r = tokio::time::timeout(
                period.max(Duration::from_millis(100)),
                AssertUnwindSafe(store.job_controls()).catch_unwind(),
            ) => r,
        };
        match read {
            Ok(Ok(Ok(controls))) => {
                if failing {
                    tracing::info!("job controls readable again");
                    failing = false;
                }
                let entries = jobs.lock().unwrap_or_else(|e| e.into_inner()).clone();
                for entry in &entries {
                    match controls.iter().find(|c| c.job == entry.name) {
                        Some(control) => apply_control(entry, control),
                        None => entry.lock().paused = false,
                    }
                }
            }
            other => {
                if !failing {
                    let why = match other {
                        Ok(Ok(Err(e))) => e.to_string(),
                        Ok(Err(_)) => "panicked".to_owned(),
                        _ => "timed out".to_owned(),
                    };
                    tracing::warn!(error = %why, "reading the job controls failed; keeping the last known");
                    failing = true;
                }
            }
        }
        loaded.send_replace(true);
        tokio::select! {
            biased;
            _ = cancel.cancelled() => break,
            _ = tokio::time::sleep_until(started + period) => {}
        }
    }
}

/// Take the stored control state of a job into its entry (the schedule state only forward).
fn apply_control(entry: &JobEntry, control: &JobControl) {
    let mut st = entry.lock();
    st.paused = control.paused;
    if let Some(at) = control.last_scheduled_at {
        if st.stored_last.is_none_or(|last| last < at) {
            st.stored_last = Some(at);
        }
    }
}

/// Whether the job's schedule state is shared through the store (singletons with a store).
fn fleet(env: &Env, entry: &JobEntry) -> bool {
    entry.schedule.singleton && env.store.is_some()
}

/// The tokio instant of the wall-clock instant `at` (by the manager's clock now).
fn instant_of(env: &Env, at: DateTime<Utc>) -> Instant {
    let now_i = Instant::now();
    let ahead = at - env.clock.now();
    match ahead.to_std() {
        Ok(d) => now_i + d,
        Err(_) => (-ahead)
            .to_std()
            .ok()
            .and_then(|back| now_i.checked_sub(back))
            .unwrap_or(now_i),
    }
}

/// The wall-clock instant of the tokio instant `at`.
fn wall_of(env: &Env, at: Instant) -> DateTime<Utc> {
    let now_i = Instant::now();
    let now_w = env.clock.now();
    let shift = |d: Duration| chrono::Duration::from_std(d).unwrap_or(chrono::Duration::MAX);
    if at >= now_i {
        now_w.checked_add_signed(shift(at - now_i)).unwrap_or(now_w)
    } else {
        now_w.checked_sub_signed(shift(now_i - at)).unwrap_or(now_w)
    }
}

/// How late an instant may run before it counts as missed: one takeover (lease ttl + one
/// renewal period).
fn grace(env: &Env) -> chrono::Duration {
    chrono::Duration::from_std(env.lease_ttl + env.lease_ttl / 3).unwrap_or(chrono::Duration::MAX)
}

/// The schedule state as the store has it now (a fresh read, so a new leader does not repeat
/// the instant its predecessor handled just before); on a read error, the last one known.
async fn fresh_last(env: &Env, entry: &JobEntry) -> Option<DateTime<Utc>> {
    if let Some(store) = &env.store {
        let read = tokio::time::timeout(
            (env.lease_ttl / 3).max(Duration::from_millis(100)),
            AssertUnwindSafe(store.job_controls()).catch_unwind(),
        )
        .await;
        match read {
            Ok(Ok(Ok(controls))) => {
                if let Some(c) = controls.iter().find(|c| c.job == entry.name) {
                    apply_control(entry, c);
                }
            }
            _ => {
                tracing::warn!(job = %entry.name, "reading the schedule state failed; using the last known")
            }
        }
    }
    entry.lock().stored_last
}

/// Where a fixed-rate schedule continues after `last` was the last instant handled, at `now`:
/// the next instant to fire (possibly in the past: it fires at once) and how many instants the
/// policy skipped. See [`MissedTickPolicy`].
fn resume_fixed(
    last: DateTime<Utc>,
    now: DateTime<Utc>,
    interval: Duration,
    grace: chrono::Duration,
    policy: MissedTickPolicy,
) -> (DateTime<Utc>, u64) {
    let step = chrono::Duration::from_std(interval).unwrap_or(chrono::Duration::MAX);
    let step_ns = i128::from(step.num_nanoseconds().unwrap_or(i64::MAX)).max(1);
    let behind_ns = i128::from((now - last).num_nanoseconds().unwrap_or(i64::MAX));
    if behind_ns < step_ns {
        return (last.checked_add_signed(step).unwrap_or(now), 0);
    }
    // instants last + j·step for j = 1..=due are due
    let due = u64::try_from(behind_ns / step_ns).unwrap_or(u64::MAX);
    let at = |j: u64| {
        let ns = i128::from(j).saturating_mul(step_ns);
        i64::try_from(ns)
            .ok()
            .and_then(|ns| last.checked_add_signed(chrono::Duration::nanoseconds(ns)))
            .unwrap_or(now)
    };
    let newest = at(due);
    let late = newest >= now - grace;
    let run = match policy {
        MissedTickPolicy::Skip => u64::from(late),
        other => other.catch_up(due),
    };
    let skipped = due - run;
    (at(skipped + 1), skipped)
}

/// The same for a calendar: the instants after `last` up to `now` are due.
fn resume_calendar(
    calendar: &super::CronSchedule,
    last: DateTime<Utc>,
    now: DateTime<Utc>,
    grace: chrono::Duration,
    policy: MissedTickPolicy,
) -> (Option<DateTime<Utc>>, u64) {
    let keep = match policy {
        MissedTickPolicy::All { max } => usize::try_from(max).unwrap_or(usize::MAX).max(1),
        _ => 1,
    };
    let mut due = std::collections::VecDeque::new();
    let mut count = 0u64;
    let mut next = calendar.next_after(last);
    while let Some(at) = next {
        if at > now || count >= 1_000_000 {
            break;
        }
        count += 1;
        due.push_back(at);
        if due.len() > keep {
            due.pop_front();
        }
        next = calendar.next_after(at);
    }
    let Some(&newest) = due.back() else {
        return (next, 0);
    };
    let late = newest >= now - grace;
    let run = match policy {
        MissedTickPolicy::Skip => u64::from(late),
        other => other.catch_up(count),
    };
    let first = usize::try_from(run)
        .ok()
        .and_then(|r| due.len().checked_sub(r));
    match first.and_then(|i| due.get(i)) {
        Some(&at) if run > 0 => (Some(at), count - run),
        _ => (next, count),
    }
}

/// The task of one started job: lease keeper (singletons), schedule loop, lease release.
async fn drive(env: Arc<Env>, entry: Arc<JobEntry>, first: Instant, cancel: CancellationToken) {
    // Pause flags and schedule state first: a paused job must not run once at the start.
    let mut loaded = env.controls_loaded.subscribe();
    tokio::select! {
        _ = cancel.cancelled() => {}
        _ = loaded.wait_for(|l| *l) => {}
    }
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

/// What woke a schedule loop.
enum Wake {
    Run(RunTrigger),
    Elected,
}

async fn schedule_loop(env: &Env, entry: &JobEntry, first: Instant, cancel: &CancellationToken) {
    if let Some(calendar) = &entry.schedule.calendar {
        return calendar_loop(env, entry, calendar, cancel).await;
    }
    let interval = entry.schedule.interval;
    let fleet = fleet(env, entry);
    let mut elections = entry.leadership.elections();
    elections.borrow_and_update();
    let mut next = first;
    if fleet {
        // Continue the fleet's schedule where the last leader left it.
        if let Some(last) = fresh_last(env, entry).await {
            next = replan_fixed(env, entry, last);
        }
    }
    loop {
        entry.lock().next_instant = Some(next);
        let wake = tokio::select! {
            biased;
            _ = cancel.cancelled() => break,
            _ = tokio::time::sleep_until(next) => Wake::Run(RunTrigger::Scheduled),
            _ = entry.manual.notified() => Wake::Run(RunTrigger::Manual),
            Ok(()) = elections.changed(), if fleet => Wake::Elected,
        };
        let trigger = match wake {
            Wake::Elected => {
                // A new leader: the instants since the last one handled are due.
                if let Some(last) = fresh_last(env, entry).await {
                    next = replan_fixed(env, entry, last);
                }
                continue;
            }
            Wake::Run(trigger) => trigger,
        };
        let scheduled = match trigger {
            RunTrigger::Scheduled => {
                // While this run goes, show the instant after it as the next one.
                entry.lock().next_instant = Some(next + interval);
                Some((next, wall_of(env, next)))
            }
            RunTrigger::Manual => None,
        };
        execute(env, entry, trigger, scheduled, cancel).await;
        if let Some((_, at)) = scheduled {
            next += interval;
            let stored = entry.lock().stored_last;
            if let Some(last) = stored.filter(|last| fleet && *last > at) {
                // The leader is ahead of this instance's grid: follow it.
                next = instant_of(env, last) + interval;
            }
        }
        let now = Instant::now();
        if next < now {
            // Instants passed while the run went on: the policy runs some, skips the rest.
            let behind = (now - next).as_nanos();
            let step = interval.as_nanos().max(1);
            let overdue = u64::try_from(behind.div_ceil(step)).unwrap_or(u64::MAX);
            let skipped = overdue - entry.schedule.missed.catch_up(overdue);
            if skipped > 0 {
                next += nanos_to_duration(u128::from(skipped).saturating_mul(step));
                entry.lock().missed_ticks += skipped;
                tracing::debug!(job = %entry.name, skipped, "skipped missed ticks");
            }
        }
    }
}

/// The next deadline of a fixed-rate job after the fleet handled `last`, counting what the
/// policy skips.
fn replan_fixed(env: &Env, entry: &JobEntry, last: DateTime<Utc>) -> Instant {
    let (at, skipped) = resume_fixed(
        last,
        env.clock.now(),
        entry.schedule.interval,
        grace(env),
        entry.schedule.missed,
    );
    if skipped > 0 {
        entry.lock().missed_ticks += skipped;
        tracing::info!(job = %entry.name, skipped, policy = %entry.schedule.missed.as_label(), "instants missed while no instance ran the job");
    }
    instant_of(env, at)
}

/// The schedule loop of a calendar job: runs at the instants of `calendar` by the manager's
/// wall clock, waiting on the Tokio timer.
async fn calendar_loop(
    env: &Env,
    entry: &JobEntry,
    calendar: &super::CronSchedule,
    cancel: &CancellationToken,
) {
    let fleet = fleet(env, entry);
    let mut elections = entry.leadership.elections();
    elections.borrow_and_update();
    // Instants before the start are not missed runs, unless the fleet's schedule state says
    // they were due.
    let mut last = env.clock.now();
    let mut pending: Option<DateTime<Utc>> = None;
    if fleet {
        if let Some(stored) = fresh_last(env, entry).await {
            pending = replan_calendar(env, entry, calendar, stored);
            last = stored;
        }
    }
    loop {
        let now = env.clock.now();
        let Some(mut at) = pending.take().or_else(|| calendar.next_after(last)) else {
            tracing::warn!(job = %entry.name, "calendar has no next instant; schedule ends");
            {
                let mut st = entry.lock();
                st.next_instant = None;
                st.next_calendar_at = None;
            }
            cancel.cancelled().await;
            break;
        };
        if at < now {
            // A run (or a pause of the process) outlasted instants: the policy runs some.
            let mut overdue = vec![at];
            let mut after = calendar.next_after(at);
            while let Some(next) = after.filter(|n| *n < now && overdue.len() < 100_000) {
                overdue.push(next);
                after = calendar.next_after(next);
            }
            let count = overdue.len() as u64;
            let skipped = count - entry.schedule.missed.catch_up(count);
            if skipped > 0 {
                at = match overdue.get(usize::try_from(skipped).unwrap_or(usize::MAX)) {
                    Some(first_run) => *first_run,
                    None => match after {
                        Some(a) => a,
                        None => continue,
                    },
                };
                entry.lock().missed_ticks += skipped;
                tracing::debug!(job = %entry.name, skipped, "skipped missed calendar instants");
            }
        }
        let wait = (at - now).to_std().unwrap_or(Duration::ZERO);
        let deadline = Instant::now() + wait;
        {
            let mut st = entry.lock();
            st.next_instant = Some(deadline);
            st.next_calendar_at = Some(at);
        }
        let wake = tokio::select! {
            biased;
            _ = cancel.cancelled() => break,
            _ = tokio::time::sleep_until(deadline) => Wake::Run(RunTrigger::Scheduled),
            _ = entry.manual.notified() => Wake::Run(RunTrigger::Manual),
            Ok(()) = elections.changed(), if fleet => Wake::Elected,
        };
        match wake {
            Wake::Elected => {
                if let Some(stored) = fresh_last(env, entry).await {
                    pending = replan_calendar(env, entry, calendar, stored);
                    last = last.max(stored);
                }
            }
            Wake::Run(RunTrigger::Scheduled) => {
                if let Some(after) = calendar.next_after(at) {
                    let ahead = (after - at).to_std().unwrap_or(Duration::ZERO);
                    let mut st = entry.lock();
                    st.next_instant = Some(deadline + ahead);
                    st.next_calendar_at = Some(after);
                }
                execute(
                    env,
                    entry,
                    RunTrigger::Scheduled,
                    Some((deadline, at)),
                    cancel,
                )
                .await;
                last = at;
                let stored = entry.lock().stored_last;
                if let Some(stored) = stored.filter(|s| fleet && *s > last) {
                    last = stored;
                }
            }
            Wake::Run(RunTrigger::Manual) => {
                execute(env, entry, RunTrigger::Manual, None, cancel).await;
                // The instant we waited for is still ahead.
                pending = Some(at);
            }
        }
    }
}

/// The next instant of a calendar job after the fleet handled `stored` (`None`: the next one
/// after `stored`), counting what the policy skips.
fn replan_calendar(
    env: &Env,
    entry: &JobEntry,
    calendar: &super::CronSchedule,
    stored: DateTime<Utc>,
) -> Option<DateTime<Utc>> {
    let (at, skipped) = resume_calendar(
        calendar,
        stored,
        env.clock.now(),
        grace(env),
        entry.schedule.missed,
    );
    if skipped > 0 {
        entry.lock().missed_ticks += skipped;
        tracing::info!(job = %entry.name, skipped, policy = %entry.schedule.missed.as_label(), "calendar instants missed while no instance ran the job");
    }
    at
}

fn nanos_to_duration(nanos: u128) -> Duration {
    let secs = u64::try_from(nanos / 1_000_000_000).unwrap_or(u64::MAX);
    // The remainder is < 10^9 and fits.
    let sub = u32::try_from(nanos % 1_000_000_000).unwrap_or(0);
    Duration::new(secs, sub)
}

fn duration_ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// One run: leadership and pause checks, the job (with retries) in its own task, timeout,
/// bookkeeping, the schedule state and the run history in the store. `scheduled` is the
/// instant the run stands for (tokio and wall clock); `None` for a manual run.
async fn execute(
    env: &Env,
    entry: &JobEntry,
    trigger: RunTrigger,
    scheduled: Option<(Instant, DateTime<Utc>)>,
    job_cancel: &CancellationToken,
) {
    let started = Instant::now();
    let lateness = scheduled.map_or(Duration::ZERO, |(at, _)| {
        started.saturating_duration_since(at)
    });
    let skip = |status: RunStatus| RunOutcome {
        status,
        trigger,
        duration: Duration::ZERO,
        attempts: 0,
        lateness,
        error: None,
        public_error: None,
        report: None,
    };
    let term = entry.leadership.term();
    if entry.schedule.singleton && term.is_none() {
        tracing::debug!(job = %entry.name, "not leader, tick skipped");
        finish(env, entry, None, skip(RunStatus::SkippedNotLeader));
        return;
    }
    if trigger == RunTrigger::Scheduled && entry.lock().paused {
        tracing::debug!(job = %entry.name, "paused, tick skipped");
        finish(env, entry, None, skip(RunStatus::SkippedPaused));
        if let (Some((_, at)), Some(term)) = (scheduled, term) {
            persist_instant(env, entry, at, term).await;
        }
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
    let run = JobRun {
        job: entry.name.clone(),
        instance: env.instance_id.clone(),
        started_at: started_wall,
        duration_ms: duration_ms(outcome.duration),
        status,
        error: outcome.public_error.clone(),
        summary: outcome.report.as_ref().map(|r| r.summary.clone()),
    };
    finish(env, entry, Some(started_wall), outcome);
    // A cancelled run (a stop, a handover) did not happen: the next leader runs its instant.
    if status != RunStatus::Cancelled {
        if let (Some((_, at)), Some(term)) = (scheduled, term) {
            persist_instant(env, entry, at, term).await;
        }
    }
    if let Some(store) = &env.store {
        let write = AssertUnwindSafe(store.record_run(&run, env.runs_kept)).catch_unwind();
        match tokio::time::timeout(env.lease_ttl.max(Duration::from_secs(1)), write).await {
            Ok(Ok(Ok(()))) => {}
            Ok(Ok(Err(e))) => {
                tracing::warn!(job = %entry.name, error = %e, "recording the run failed")
            }
            Ok(Err(_)) => tracing::error!(job = %entry.name, "recording the run panicked"),
            Err(_) => tracing::warn!(job = %entry.name, "recording the run timed out"),
        }
    }
}

/// Store that the leader of `term` handled the scheduled instant `at` (fenced: a newer
/// leader's term refuses it, and this instance steps down).
async fn persist_instant(env: &Env, entry: &JobEntry, at: DateTime<Utc>, term: u64) {
    if !fleet(env, entry) {
        return;
    }
    let Some(store) = &env.store else { return };
    let write = AssertUnwindSafe(store.set_last_scheduled(&entry.name, at, term)).catch_unwind();
    match tokio::time::timeout(env.lease_ttl.max(Duration::from_secs(1)), write).await {
        Ok(Ok(Ok(true))) => {
            let mut st = entry.lock();
            if st.stored_last.is_none_or(|last| last < at) {
                st.stored_last = Some(at);
            }
        }
        Ok(Ok(Ok(false))) => {
            tracing::warn!(job = %entry.name, term, "a leader with a newer lease term wrote the schedule state; stepping down");
            entry.leadership.step_down();
        }
        Ok(Ok(Err(e))) => {
            tracing::warn!(job = %entry.name, error = %e, "storing the schedule state failed")
        }
        Ok(Err(_)) => tracing::error!(job = %entry.name, "storing the schedule state panicked"),
        Err(_) => tracing::warn!(job = %entry.name, "storing the schedule state timed out"),
    }
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
        } else if outcome.status == RunStatus::SkippedPaused {
            st.skipped_paused += 1;
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
