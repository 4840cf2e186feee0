//! Tests of the job runtime, all on tokio's paused clock.

#![allow(clippy::unwrap_used)]

use super::*;
use crate::{Error, LeaseState, ManualClock};
use async_trait::async_trait;
use chrono::{TimeZone, Utc};
use futures::future::BoxFuture;
use futures::FutureExt;
use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::time::{sleep, Instant};

const MS: Duration = Duration::from_millis(1);

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

fn ms(m: u64) -> Duration {
    Duration::from_millis(m)
}

type Behaviour =
    Box<dyn Fn(u32, JobContext) -> BoxFuture<'static, Result<RunReport>> + Send + Sync>;

/// A job whose runs do whatever `behaviour(call_index, ctx)` does; records what it saw.
struct TestJob {
    name: String,
    schedule: Schedule,
    starts: Mutex<Vec<Instant>>,
    attempts: Mutex<Vec<u32>>,
    calls: AtomicU32,
    in_flight: AtomicUsize,
    max_in_flight: AtomicUsize,
    behaviour: Behaviour,
}

impl TestJob {
    fn new(
        name: &str,
        schedule: Schedule,
        behaviour: impl Fn(u32, JobContext) -> BoxFuture<'static, Result<RunReport>>
            + Send
            + Sync
            + 'static,
    ) -> Arc<Self> {
        Arc::new(TestJob {
            name: name.to_owned(),
            schedule,
            starts: Mutex::new(Vec::new()),
            attempts: Mutex::new(Vec::new()),
            calls: AtomicU32::new(0),
            in_flight: AtomicUsize::new(0),
            max_in_flight: AtomicUsize::new(0),
            behaviour: Box::new(behaviour),
        })
    }

    /// A job that returns `Ok` at once.
    fn noop(name: &str, schedule: Schedule) -> Arc<Self> {
        Self::new(name, schedule, |_, _| {
            async { Ok(RunReport::ok("done")) }.boxed()
        })
    }

    /// A job whose every run takes `d` (ignoring cancellation).
    fn slow(name: &str, schedule: Schedule, d: Duration) -> Arc<Self> {
        Self::new(name, schedule, move |_, _| {
            async move {
                sleep(d).await;
                Ok(RunReport::ok("slow"))
            }
            .boxed()
        })
    }

    fn starts(&self) -> Vec<Instant> {
        self.starts.lock().unwrap().clone()
    }

    fn calls(&self) -> u32 {
        self.calls.load(Ordering::SeqCst)
    }
}

#[async_trait]
impl Job for TestJob {
    fn name(&self) -> &str {
        &self.name
    }

    fn schedule(&self) -> Schedule {
        self.schedule.clone()
    }

    async fn run(&self, ctx: &JobContext) -> Result<RunReport> {
        self.starts.lock().unwrap().push(Instant::now());
        self.attempts.lock().unwrap().push(ctx.attempt);
        let n = self.calls.fetch_add(1, Ordering::SeqCst);
        let now = self.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        self.max_in_flight.fetch_max(now, Ordering::SeqCst);
        // Decrement also when the run is aborted.
        struct Guard<'a>(&'a AtomicUsize);
        impl Drop for Guard<'_> {
            fn drop(&mut self) {
                self.0.fetch_sub(1, Ordering::SeqCst);
            }
        }
        let _guard = Guard(&self.in_flight);
        (self.behaviour)(n, ctx.clone()).await
    }
}

/// An in-process lease on the tokio clock, with switches for failure.
#[derive(Default)]
struct TestLease {
    state: Mutex<TestLeaseState>,
}

#[derive(Default)]
struct TestLeaseState {
    holder: Option<String>,
    expires: Option<Instant>,
    term: u64,
    fail: bool,
    acquires: u32,
    releases: u32,
}

impl TestLease {
    fn held_by(holder: &str, for_: Duration) -> Arc<Self> {
        let l = TestLease::default();
        {
            let mut s = l.state.lock().unwrap();
            s.holder = Some(holder.to_owned());
            s.expires = Some(Instant::now() + for_);
            s.term = 1;
        }
        Arc::new(l)
    }

    fn set_fail(&self, fail: bool) {
        self.state.lock().unwrap().fail = fail;
    }

    fn acquires(&self) -> u32 {
        self.state.lock().unwrap().acquires
    }

    fn releases(&self) -> u32 {
        self.state.lock().unwrap().releases
    }
}

#[async_trait]
impl crate::Lease for TestLease {
    async fn acquire(&self, _name: &str, holder: &str, ttl: Duration) -> Result<LeaseState> {
        let mut s = self.state.lock().unwrap();
        s.acquires += 1;
        if s.fail {
            return Err(Error::unavailable("test-lease", "down", None));
        }
        let now = Instant::now();
        let free = s.expires.is_none_or(|e| e <= now) || s.holder.as_deref() == Some(holder);
        if free {
            if s.holder.as_deref() != Some(holder) {
                s.term += 1;
            }
            s.holder = Some(holder.to_owned());
            s.expires = Some(now + ttl);
        }
        Ok(LeaseState {
            is_leader: s.holder.as_deref() == Some(holder),
            holder: s.holder.clone(),
            term: s.term,
            expires_at: None,
        })
    }

    async fn release(&self, _name: &str, holder: &str) -> Result<()> {
        let mut s = self.state.lock().unwrap();
        s.releases += 1;
        if s.holder.as_deref() == Some(holder) {
            s.holder = None;
            s.expires = None;
        }
        Ok(())
    }
}

type Outcomes = Arc<Mutex<Vec<(String, RunOutcome)>>>;

fn clock() -> Arc<ManualClock> {
    Arc::new(ManualClock::new(
        Utc.with_ymd_and_hms(2026, 1, 2, 3, 4, 5).unwrap(),
    ))
}

/// A manager with a free test lease and an observer collecting outcomes.
fn manager_with(lease: Arc<TestLease>) -> (JobManager, Outcomes) {
    let outcomes: Outcomes = Arc::default();
    let o = outcomes.clone();
    let m = JobManager::new(clock(), lease, "me").with_observer(Arc::new(
        move |job: &str, outcome: &RunOutcome| {
            o.lock().unwrap().push((job.to_owned(), outcome.clone()))
        },
    ));
    (m, outcomes)
}

fn manager() -> (JobManager, Outcomes) {
    manager_with(Arc::new(TestLease::default()))
}

fn local(interval: Duration) -> Schedule {
    Schedule::every(interval).with_singleton(false)
}

fn statuses(outcomes: &Outcomes) -> Vec<RunStatus> {
    outcomes
        .lock()
        .unwrap()
        .iter()
        .map(|(_, o)| o.status)
        .collect()
}

fn status_of(m: &JobManager, name: &str) -> JobStatus {
    m.status()
        .jobs
        .into_iter()
        .find(|j| j.name == name)
        .unwrap()
}

#[tokio::test(start_paused = true)]
async fn register_rejects_duplicates_and_zero_interval() {
    let (m, _) = manager();
    m.register(TestJob::noop("A", local(secs(1)))).unwrap();
    assert!(matches!(
        m.register(TestJob::noop("A", local(secs(2)))),
        Err(Error::Conflict(_))
    ));
    assert!(matches!(
        m.register(TestJob::noop("B", local(Duration::ZERO))),
        Err(Error::InvalidInput(_))
    ));
    assert_eq!(m.status().total_jobs, 1);
}

#[tokio::test(start_paused = true)]
async fn start_runs_periodically_and_stop_ends_it() {
    let (m, outcomes) = manager();
    let job = TestJob::noop("Tick", local(secs(5)));
    m.register(job.clone()).unwrap();
    assert!(!status_of(&m, "Tick").running);
    let t0 = Instant::now();
    m.start_all();
    assert!(status_of(&m, "Tick").running);
    sleep(secs(12)).await;
    assert_eq!(job.starts(), vec![t0, t0 + secs(5), t0 + secs(10)]);
    assert_eq!(statuses(&outcomes), vec![RunStatus::Ok; 3]);

    let report = m.stop_all(secs(1)).await;
    assert_eq!(report.stopped, vec!["Tick".to_owned()]);
    assert!(report.all_stopped());
    let st = status_of(&m, "Tick");
    assert!(!st.running);
    assert_eq!(st.next_run_at, None);
    sleep(secs(60)).await;
    assert_eq!(job.calls(), 3, "no runs after stop_all");

    // It can be started again.
    m.start_all();
    sleep(MS).await;
    assert_eq!(job.calls(), 4);
    m.stop_all(secs(1)).await;
}

#[tokio::test(start_paused = true)]
async fn no_drift_over_10000_ticks() {
    let (m, _) = manager();
    let job = TestJob::noop("Price", local(secs(5)));
    m.register(job.clone()).unwrap();
    let t0 = Instant::now();
    m.start_all();
    sleep(secs(5) * 9_999 + MS).await;
    let starts = job.starts();
    assert_eq!(starts.len(), 10_000);
    for (i, at) in starts.iter().enumerate() {
        assert_eq!(*at, t0 + secs(5) * i as u32, "run {i}");
    }
    assert_eq!(starts[999], t0 + secs(4_995));
    m.stop_all(secs(1)).await;
}

#[tokio::test(start_paused = true)]
async fn start_delay_is_honoured_and_jitter_bounded() {
    let (m, _) = manager();
    let a = TestJob::noop("Delayed", local(secs(10)).with_start_delay(secs(3)));
    let b = TestJob::noop(
        "Jittered",
        local(secs(10))
            .with_start_delay(secs(3))
            .with_jitter(secs(2)),
    );
    m.register(a.clone()).unwrap();
    m.register(b.clone()).unwrap();
    let t0 = Instant::now();
    m.start_all();
    sleep(secs(26)).await;
    assert_eq!(a.starts(), vec![t0 + secs(3), t0 + secs(13), t0 + secs(23)]);
    let bs = b.starts();
    assert_eq!(bs.len(), 3);
    assert!(bs[0] >= t0 + secs(3) && bs[0] < t0 + secs(5));
    // Jitter shifts the grid once; the period stays exact.
    assert_eq!(bs[1] - bs[0], secs(10));
    assert_eq!(bs[2] - bs[0], secs(20));
    m.stop_all(secs(1)).await;
}

#[tokio::test(start_paused = true)]
async fn missed_ticks_are_skipped_never_burst() {
    let (m, _) = manager();
    let job = TestJob::slow("Slow", local(secs(1)).with_timeout(None), ms(2_500));
    m.register(job.clone()).unwrap();
    let t0 = Instant::now();
    m.start_all();
    sleep(ms(9_500)).await;
    // 0..2.5 runs; instants 1 and 2 are skipped; next run at 3 (on the grid), and so on.
    assert_eq!(
        job.starts(),
        vec![t0, t0 + secs(3), t0 + secs(6), t0 + secs(9)]
    );
    assert_eq!(status_of(&m, "Slow").missed_ticks, 6);
    assert_eq!(job.max_in_flight.load(Ordering::SeqCst), 1);
    m.stop_all(secs(5)).await;
}

#[tokio::test(start_paused = true)]
async fn burst_policy_catches_up_back_to_back() {
    let (m, _) = manager();
    let schedule = local(secs(1))
        .with_timeout(None)
        .with_missed(MissedTickPolicy::All { max: 100 });
    let job = TestJob::new("Burst", schedule, |n, _| {
        async move {
            if n == 0 {
                sleep(ms(2_500)).await;
            }
            Ok(RunReport::ok("x"))
        }
        .boxed()
    });
    m.register(job.clone()).unwrap();
    let t0 = Instant::now();
    m.start_all();
    sleep(ms(4_500)).await;
    let at = t0 + ms(2_500);
    assert_eq!(job.starts(), vec![t0, at, at, t0 + secs(3), t0 + secs(4)]);
    assert_eq!(status_of(&m, "Burst").missed_ticks, 0);
    m.stop_all(secs(1)).await;
}

#[tokio::test(start_paused = true)]
async fn runs_never_overlap_even_with_run_now() {
    let (m, _) = manager();
    let job = TestJob::slow("Busy", local(secs(1)).with_timeout(None), secs(3));
    m.register(job.clone()).unwrap();
    m.start_all();
    for _ in 0..20 {
        sleep(ms(250)).await;
        m.run_now("Busy").unwrap();
        m.run_now("Busy").unwrap();
        assert!(job.in_flight.load(Ordering::SeqCst) <= 1);
    }
    assert_eq!(job.max_in_flight.load(Ordering::SeqCst), 1);
    // Back to back: 5 s of calls → runs at 0, 3 (run_now pending) → 2 starts, maybe a third.
    let starts = job.starts();
    for w in starts.windows(2) {
        assert!(w[1] - w[0] >= secs(3), "overlap: {starts:?}");
    }
    m.stop_all(secs(5)).await;
}

#[tokio::test(start_paused = true)]
async fn timeout_cancels_the_run_and_records_it() {
    let (m, outcomes) = manager();
    let saw_cancel = Arc::new(AtomicU32::new(0));
    let seen = saw_cancel.clone();
    let schedule = local(secs(10)).with_timeout(Some(secs(2)));
    let job = TestJob::new("Hang", schedule, move |_, ctx| {
        let seen = seen.clone();
        async move {
            tokio::select! {
                _ = ctx.cancel.cancelled() => {
                    seen.fetch_add(1, Ordering::SeqCst);
                    Err(Error::Cancelled)
                }
                _ = sleep(secs(3600)) => Ok(RunReport::ok("never")),
            }
        }
        .boxed()
    });
    m.register(job.clone()).unwrap();
    let t0 = Instant::now();
    m.start_all();
    sleep(secs(3)).await;
    assert_eq!(saw_cancel.load(Ordering::SeqCst), 1);
    let o = outcomes.lock().unwrap()[0].1.clone();
    assert_eq!(o.status, RunStatus::Timeout);
    assert_eq!(o.duration, secs(2));
    assert!(o.error.unwrap().contains("timed out"));
    let st = status_of(&m, "Hang");
    assert_eq!((st.runs, st.failures), (1, 1));
    assert!(!st.busy);
    // The schedule goes on.
    sleep(secs(10)).await;
    assert_eq!(job.starts(), vec![t0, t0 + secs(10)]);
    m.stop_all(secs(1)).await;
}

#[tokio::test(start_paused = true)]
async fn timeout_aborts_a_run_that_ignores_cancellation() {
    let (m, outcomes) = manager();
    let schedule = local(secs(10)).with_timeout(Some(secs(2)));
    let job = TestJob::slow("Deaf", schedule, secs(3600));
    m.register(job.clone()).unwrap();
    m.start_all();
    sleep(secs(4)).await;
    let o = outcomes.lock().unwrap()[0].1.clone();
    assert_eq!(o.status, RunStatus::Timeout);
    // 2 s timeout + 1 s grace, then aborted.
    assert_eq!(o.duration, secs(3));
    assert_eq!(job.in_flight.load(Ordering::SeqCst), 0, "aborted");
    sleep(secs(7)).await;
    assert_eq!(job.calls(), 2);
    m.stop_all(secs(5)).await;
}

fn retrying(max_attempts: u32) -> Schedule {
    local(secs(60)).with_timeout(None).with_retry(RetryPolicy {
        max_attempts,
        initial_backoff: ms(100),
        max_backoff: secs(1),
    })
}

#[tokio::test(start_paused = true)]
async fn temporary_errors_are_retried_with_backoff() {
    let (m, outcomes) = manager();
    let job = TestJob::new("Flaky", retrying(4), |n, _| {
        async move {
            if n < 2 {
                Err(Error::unavailable("prov", "503", None))
            } else {
                Ok(RunReport::ok("third time"))
            }
        }
        .boxed()
    });
    m.register(job.clone()).unwrap();
    m.start_all();
    sleep(secs(5)).await;
    assert_eq!(*job.attempts.lock().unwrap(), vec![1, 2, 3]);
    let starts = job.starts();
    assert!(starts[1] - starts[0] <= ms(100));
    assert!(starts[2] - starts[1] <= ms(200));
    let o = outcomes.lock().unwrap()[0].1.clone();
    assert_eq!((o.status, o.attempts), (RunStatus::Ok, 3));
    let st = status_of(&m, "Flaky");
    assert_eq!((st.runs, st.failures), (1, 0));
    assert_eq!(st.last_report, Some(RunReport::ok("third time")));
    m.stop_all(secs(1)).await;
}

#[tokio::test(start_paused = true)]
async fn attempts_are_bounded_and_permanent_errors_not_retried() {
    let (m, outcomes) = manager();
    let temp = TestJob::new("AlwaysDown", retrying(3), |_, _| {
        async {
            Err(Error::unavailable(
                "prov",
                "down",
                Some("socket closed".into()),
            ))
        }
        .boxed()
    });
    let perm = TestJob::new("BadKey", retrying(5), |_, _| {
        async { Err(Error::backend("prov", "invalid api key", None)) }.boxed()
    });
    m.register(temp.clone()).unwrap();
    m.register(perm.clone()).unwrap();
    m.start_all();
    sleep(secs(10)).await;
    assert_eq!(temp.calls(), 3);
    assert_eq!(perm.calls(), 1);
    let all = outcomes.lock().unwrap().clone();
    let t = &all.iter().find(|(n, _)| n == "AlwaysDown").unwrap().1;
    assert_eq!((t.status, t.attempts), (RunStatus::Failed, 3));
    assert_eq!(
        t.error.as_deref(),
        Some("prov unavailable: down: socket closed")
    );
    let p = &all.iter().find(|(n, _)| n == "BadKey").unwrap().1;
    assert_eq!((p.status, p.attempts), (RunStatus::Failed, 1));
    let st = status_of(&m, "BadKey");
    assert_eq!((st.runs, st.failures), (1, 1));
    assert_eq!(
        st.last_error.as_deref(),
        Some("prov error: invalid api key")
    );
    m.stop_all(secs(1)).await;
}

#[tokio::test(start_paused = true)]
async fn retry_after_is_honoured_when_longer() {
    let (m, _) = manager();
    let job = TestJob::new("Limited", retrying(2), |n, _| {
        async move {
            if n == 0 {
                Err(Error::RateLimited {
                    backend: "prov",
                    message: "slow down".into(),
                    retry_after: Some(secs(7)),
                })
            } else {
                Ok(RunReport::ok("ok"))
            }
        }
        .boxed()
    });
    m.register(job.clone()).unwrap();
    m.start_all();
    sleep(secs(10)).await;
    let starts = job.starts();
    assert_eq!(starts.len(), 2);
    assert_eq!(starts[1] - starts[0], secs(7));
    m.stop_all(secs(1)).await;
}

#[tokio::test(start_paused = true)]
async fn panics_are_isolated_and_recorded() {
    let (m, outcomes) = manager();
    let job = TestJob::new("Panicky", local(secs(1)), |n, _| {
        async move {
            if n == 0 {
                panic!("boom at run {n}");
            }
            Ok(RunReport::ok("fine"))
        }
        .boxed()
    });
    m.register(job.clone()).unwrap();
    m.start_all();
    sleep(ms(500)).await;
    let st = status_of(&m, "Panicky");
    assert_eq!((st.runs, st.failures), (1, 1));
    assert_eq!(st.last_status, Some(RunStatus::Panicked));
    // The panic message goes to the log and the observer, not to anonymous status readers.
    assert_eq!(st.last_error.as_deref(), Some("panicked (see the log)"));
    sleep(secs(1)).await;
    let st = status_of(&m, "Panicky");
    assert_eq!((st.runs, st.failures), (2, 1));
    assert_eq!(st.last_error, None);
    assert_eq!(
        statuses(&outcomes),
        vec![RunStatus::Panicked, RunStatus::Ok]
    );
    m.stop_all(secs(1)).await;
}

#[tokio::test(start_paused = true)]
async fn stop_all_reports_jobs_that_ignore_cancellation() {
    let (m, outcomes) = manager();
    let deaf = TestJob::slow("Deaf", local(secs(60)).with_timeout(None), secs(3600));
    let polite = TestJob::new("Polite", local(secs(60)).with_timeout(None), |_, ctx| {
        async move {
            ctx.cancel.cancelled().await;
            Err(Error::Cancelled)
        }
        .boxed()
    });
    m.register(deaf.clone()).unwrap();
    m.register(polite.clone()).unwrap();
    m.start_all();
    sleep(MS).await;
    assert!(status_of(&m, "Deaf").busy);
    let t = Instant::now();
    let report = m.stop_all(secs(2)).await;
    assert_eq!(Instant::now() - t, secs(2));
    assert_eq!(report.stopped, vec!["Polite".to_owned()]);
    assert_eq!(report.not_stopped, vec!["Deaf".to_owned()]);
    assert!(!report.all_stopped());
    sleep(MS).await;
    assert_eq!(deaf.in_flight.load(Ordering::SeqCst), 0, "aborted");
    let o = outcomes.lock().unwrap().clone();
    assert_eq!(o.len(), 1);
    assert_eq!(
        (o[0].0.as_str(), o[0].1.status),
        ("Polite", RunStatus::Cancelled)
    );
    assert_eq!(status_of(&m, "Polite").failures, 0);
}

#[tokio::test(start_paused = true)]
async fn run_now_triggers_a_run_and_rejects_unknown_names() {
    let (m, outcomes) = manager();
    let job = TestJob::noop("News", local(secs(900)));
    m.register(job.clone()).unwrap();
    assert!(matches!(m.run_now("Nope"), Err(Error::NotFound(_))));
    assert!(matches!(m.run_now("News"), Err(Error::Conflict(_))));
    let t0 = Instant::now();
    m.start_all();
    sleep(secs(10)).await;
    m.run_now("News").unwrap();
    sleep(MS).await;
    assert_eq!(job.starts(), vec![t0, t0 + secs(10)]);
    let triggers: Vec<RunTrigger> = outcomes
        .lock()
        .unwrap()
        .iter()
        .map(|(_, o)| o.trigger)
        .collect();
    assert_eq!(triggers, vec![RunTrigger::Scheduled, RunTrigger::Manual]);
    // The manual run does not move the grid.
    sleep(secs(890)).await;
    assert_eq!(job.starts()[2], t0 + secs(900));
    m.stop_all(secs(1)).await;
}

#[tokio::test(start_paused = true)]
async fn run_now_during_a_run_waits_and_coalesces() {
    let (m, _) = manager();
    let job = TestJob::slow("Verify", local(secs(60)).with_timeout(None), secs(5));
    m.register(job.clone()).unwrap();
    let t0 = Instant::now();
    m.start_all();
    sleep(secs(1)).await;
    for _ in 0..5 {
        m.run_now("Verify").unwrap();
    }
    sleep(secs(20)).await;
    // One extra run, right after the first one ended.
    assert_eq!(job.starts(), vec![t0, t0 + secs(5)]);
    m.stop_all(secs(10)).await;
}

#[tokio::test(start_paused = true)]
async fn status_has_the_contract_fields() {
    let clock = clock();
    let lease = Arc::new(TestLease::default());
    let m = JobManager::new(clock.clone(), lease, "inst-1");
    let job = TestJob::new("PriceFetcherJob", Schedule::every(secs(5)), |n, _| {
        async move {
            sleep(ms(40)).await;
            if n >= 1 {
                return Err(Error::unavailable("prov", "down", None));
            }
            Ok(RunReport {
                summary: "6 quotes, 0 failed".into(),
                problems: vec![],
            })
        }
        .boxed()
    });
    let half = TestJob::noop("Half", local(ms(500)));
    m.register(job).unwrap();
    m.register(half).unwrap();
    let t0 = clock.now();
    m.start_all();
    sleep(secs(1)).await;
    clock.advance(chrono::Duration::seconds(1));

    let st = status_of(&m, "PriceFetcherJob");
    assert!(st.running && !st.busy && st.singleton && st.is_leader);
    assert_eq!(st.interval_seconds, 5.0);
    assert_eq!(st.last_run_at, Some(t0));
    assert_eq!(st.last_success_at, Some(t0));
    assert_eq!(st.last_duration_ms, Some(40));
    assert_eq!((st.runs, st.failures), (1, 0));
    assert_eq!(st.last_error, None);
    assert_eq!(st.leader.as_deref(), Some("inst-1"));
    // Next instant is 4 s away on the tokio clock, from the wall clock's "now".
    assert_eq!(st.next_run_at, Some(t0 + chrono::Duration::seconds(5)));
    assert_eq!(
        st.last_report.as_ref().unwrap().summary,
        "6 quotes, 0 failed"
    );

    let json = serde_json::to_value(m.status()).unwrap();
    assert_eq!(json["total_jobs"], 2);
    let j = &json["jobs"][0];
    for key in [
        "name",
        "running",
        "interval_seconds",
        "last_run_at",
        "last_duration_ms",
        "last_error",
        "runs",
        "failures",
        "next_run_at",
        "leader",
    ] {
        assert!(j.get(key).is_some(), "missing {key}");
    }
    assert_eq!(j["name"], "PriceFetcherJob");
    assert_eq!(j["running"], true);
    assert_eq!(j["interval_seconds"].to_string(), "5");
    assert_eq!(j["last_run_at"], "2026-01-02T03:04:05Z");
    assert_eq!(j["last_error"], serde_json::Value::Null);
    assert_eq!(j["leader"], "inst-1");
    assert_eq!(json["jobs"][1]["interval_seconds"].to_string(), "0.5");
    assert_eq!(json["jobs"][1]["leader"], serde_json::Value::Null);

    // Second run fails (no retries left: default 3 attempts of a temporary error).
    sleep(secs(5)).await;
    let st = status_of(&m, "PriceFetcherJob");
    assert_eq!(st.runs, 2);
    assert_eq!(st.failures, 1);
    assert_eq!(st.last_error.as_deref(), Some("prov unavailable: down"));
    assert_eq!(st.last_success_at, Some(t0));
    m.stop_all(secs(1)).await;
}

#[tokio::test(start_paused = true)]
async fn a_non_leader_skips_its_ticks() {
    let lease = TestLease::held_by("other-instance", secs(3600));
    let (m, outcomes) = manager_with(lease.clone());
    let job = TestJob::noop("PredictionVerifierJob", Schedule::every(secs(60)));
    let local_job = TestJob::noop("Local", local(secs(60)));
    m.register(job.clone()).unwrap();
    m.register(local_job.clone()).unwrap();
    m.start_all();
    sleep(secs(150)).await;
    assert_eq!(job.calls(), 0);
    assert_eq!(local_job.calls(), 3);
    let st = status_of(&m, "PredictionVerifierJob");
    assert_eq!(st.skipped_not_leader, 3);
    assert_eq!(st.runs, 0);
    assert!(!st.is_leader);
    assert_eq!(st.leader.as_deref(), Some("other-instance"));
    assert_eq!(st.last_status, Some(RunStatus::SkippedNotLeader));
    let skipped = outcomes
        .lock()
        .unwrap()
        .iter()
        .filter(|(n, o)| n == "PredictionVerifierJob" && o.status == RunStatus::SkippedNotLeader)
        .count();
    assert_eq!(skipped, 3);
    m.stop_all(secs(1)).await;
}

#[tokio::test(start_paused = true)]
async fn lease_is_renewed_independently_of_the_interval_and_released_on_stop() {
    let lease = Arc::new(TestLease::default());
    let (m, _) = manager_with(lease.clone());
    let m = m.with_lease_ttl(secs(15));
    let job = TestJob::noop("NewsFetcherJob", Schedule::every(secs(900)));
    m.register(job.clone()).unwrap();
    m.start_all();
    sleep(secs(60) + MS).await;
    // Acquired at 0, renewed every 5 s.
    assert_eq!(lease.acquires(), 13);
    assert!(status_of(&m, "NewsFetcherJob").is_leader);
    assert_eq!(job.calls(), 1);
    let report = m.stop_all(secs(1)).await;
    assert!(report.all_stopped());
    assert_eq!(lease.releases(), 1);
    assert_eq!(lease.state.lock().unwrap().holder, None);
    let st = status_of(&m, "NewsFetcherJob");
    assert!(!st.is_leader);
    assert_eq!(st.leader, None);
}

#[tokio::test(start_paused = true)]
async fn leader_steps_down_when_renewal_fails_and_recovers() {
    let lease = Arc::new(TestLease::default());
    let (m, _) = manager_with(lease.clone());
    let m = m.with_lease_ttl(secs(3));
    let job = TestJob::noop("Verifier", Schedule::every(secs(1)));
    m.register(job.clone()).unwrap();
    m.start_all();
    sleep(ms(500)).await;
    assert!(status_of(&m, "Verifier").is_leader);
    lease.set_fail(true);
    // Renewals at 1 s and 2 s fail; the holding acquired at 0 runs out at 3 s.
    sleep(secs(2)).await; // t = 2.5
    assert!(status_of(&m, "Verifier").is_leader);
    sleep(secs(1)).await; // t = 3.5
    let st = status_of(&m, "Verifier");
    assert!(!st.is_leader);
    assert_eq!(st.leader, None);
    sleep(secs(2)).await; // t = 5.5
    let st = status_of(&m, "Verifier");
    assert_eq!(st.runs, 3, "ticks 0, 1, 2 ran");
    assert_eq!(st.skipped_not_leader, 3, "ticks 3, 4, 5 skipped");
    // Renewal works again at 6 s; tick 6 runs (the keeper's first attempt at an instant
    // and the tick race, so allow either), tick 7 surely does.
    lease.set_fail(false);
    sleep(secs(2)).await; // t = 7.5
    let st = status_of(&m, "Verifier");
    assert!(st.is_leader);
    assert!(st.runs >= 4);
    m.stop_all(secs(1)).await;
}

#[tokio::test(start_paused = true)]
async fn an_observer_panic_does_not_stop_the_schedule() {
    let m = JobManager::new(clock(), Arc::new(TestLease::default()), "me")
        .with_observer(Arc::new(|_: &str, _: &RunOutcome| panic!("observer bug")));
    let job = TestJob::noop("Obs", local(secs(1)));
    m.register(job.clone()).unwrap();
    m.start_all();
    sleep(ms(2_500)).await;
    assert_eq!(job.calls(), 3);
    m.stop_all(secs(1)).await;
}

#[tokio::test(start_paused = true)]
async fn jobs_registered_after_start_all_start_at_once() {
    let (m, _) = manager();
    m.start_all();
    let job = TestJob::noop("Late", local(secs(1)));
    m.register(job.clone()).unwrap();
    sleep(ms(1_500)).await;
    assert_eq!(job.calls(), 2);
    m.stop_all(secs(1)).await;
}

#[tokio::test(start_paused = true)]
async fn dropping_the_manager_stops_its_jobs() {
    let lease = Arc::new(TestLease::default());
    let (m, _) = manager_with(lease.clone());
    let job = TestJob::noop("Dropped", Schedule::every(secs(1)));
    m.register(job.clone()).unwrap();
    m.start_all();
    sleep(ms(1_500)).await;
    assert_eq!(job.calls(), 2);
    drop(m);
    sleep(secs(10)).await;
    assert_eq!(job.calls(), 2);
    assert_eq!(lease.releases(), 1);
}

/// A lease whose calls panic.
struct PanickingLease;

#[async_trait]
impl crate::Lease for PanickingLease {
    async fn acquire(&self, _name: &str, _holder: &str, _ttl: Duration) -> Result<LeaseState> {
        panic!("lease bug")
    }

    async fn release(&self, _name: &str, _holder: &str) -> Result<()> {
        panic!("lease bug")
    }
}

#[tokio::test(start_paused = true)]
async fn a_panicking_lease_means_not_leader_not_a_hang() {
    let m = JobManager::new(clock(), Arc::new(PanickingLease), "me");
    let job = TestJob::noop("Single", Schedule::every(secs(1)));
    let local_job = TestJob::noop("Local", local(secs(1)));
    m.register(job.clone()).unwrap();
    m.register(local_job.clone()).unwrap();
    m.start_all();
    sleep(ms(2_500)).await;
    assert_eq!(job.calls(), 0);
    assert_eq!(local_job.calls(), 3);
    assert_eq!(status_of(&m, "Single").skipped_not_leader, 3);
    assert!(m.stop_all(secs(1)).await.all_stopped());
}

#[test]
fn manager_is_shareable_and_stop_all_is_send() {
    fn send_sync<T: Send + Sync>() {}
    fn send<T: Send>(_: &T) {}
    send_sync::<JobManager>();
    send_sync::<JobsStatus>();
    let m = JobManager::new(clock(), Arc::new(TestLease::default()), "me");
    send(&m.stop_all(secs(1)));
}

#[tokio::test(start_paused = true)]
async fn next_run_at_points_ahead_while_a_run_is_going() {
    let c = clock();
    let m = JobManager::new(c.clone(), Arc::new(TestLease::default()), "me");
    let job = TestJob::slow("Busy", local(secs(10)).with_timeout(None), secs(3));
    m.register(job).unwrap();
    m.start_all();
    sleep(secs(1)).await;
    let st = status_of(&m, "Busy");
    assert!(st.busy);
    // Tokio clock at 1 s, wall clock not moved: next instant 10 s is 9 s ahead.
    assert_eq!(st.next_run_at, Some(c.now() + chrono::Duration::seconds(9)));
    m.stop_all(secs(5)).await;
}

#[tokio::test(start_paused = true)]
async fn stop_during_a_retry_backoff_is_a_cancellation_not_a_failure() {
    let (m, outcomes) = manager();
    let schedule = local(secs(60)).with_timeout(None).with_retry(RetryPolicy {
        max_attempts: 5,
        initial_backoff: secs(30),
        max_backoff: secs(30),
    });
    let job = TestJob::new("Backoff", schedule, |_, _| {
        async {
            Err(Error::RateLimited {
                backend: "prov",
                message: "wait".into(),
                retry_after: Some(secs(40)),
            })
        }
        .boxed()
    });
    m.register(job.clone()).unwrap();
    m.start_all();
    sleep(secs(1)).await;
    let t = Instant::now();
    assert!(m.stop_all(secs(5)).await.all_stopped());
    assert_eq!(Instant::now(), t, "the backoff wait ends at once on cancel");
    assert_eq!(job.calls(), 1);
    assert_eq!(statuses(&outcomes), vec![RunStatus::Cancelled]);
    let st = status_of(&m, "Backoff");
    assert_eq!((st.runs, st.failures), (1, 0));
}

#[tokio::test(start_paused = true)]
async fn lease_calls_carry_job_name_holder_and_ttl() {
    use mockall::predicate::eq;
    let mut lease = crate::MockLease::new();
    lease
        .expect_acquire()
        .with(eq("PredictionVerifierJob"), eq("inst-7"), eq(secs(9)))
        .times(4) // at 0, 3, 6, 9 s
        .returning(|_, holder, _| {
            Ok(LeaseState {
                is_leader: true,
                holder: Some(holder.to_owned()),
                term: 1,
                expires_at: None,
            })
        });
    lease
        .expect_release()
        .with(eq("PredictionVerifierJob"), eq("inst-7"))
        .times(1)
        .returning(|_, _| Ok(()));
    let m = JobManager::new(clock(), Arc::new(lease), "inst-7").with_lease_ttl(secs(9));
    let job = TestJob::noop("PredictionVerifierJob", Schedule::every(secs(60)));
    m.register(job.clone()).unwrap();
    m.start_all();
    sleep(ms(9_500)).await;
    assert_eq!(job.calls(), 1);
    assert!(m.stop_all(secs(1)).await.all_stopped());
}

#[test]
fn public_messages_are_one_line_without_urls_or_sources() {
    let e = Error::unavailable(
        "feeds",
        "https://user:pw@feeds.example/rss?key=secret answered 503\nretry later",
        Some("tcp connect error: 10.0.0.7:443 refused".into()),
    );
    let line = crate::runtime::public_message(&e);
    assert_eq!(line, "feeds unavailable: <url> answered 503 retry later");
    let long = Error::invalid("x ".repeat(500));
    let line = crate::runtime::public_message(&long);
    assert!(line.chars().count() <= crate::runtime::PUBLIC_MESSAGE_MAX_CHARS + 1);
    assert!(line.ends_with('…'));
    assert_eq!(
        crate::runtime::scrub("GET kitco.com/rss/gold.xml failed; see /var/log"),
        "GET <url> failed; see /var/log"
    );
}

/// A calendar job on paused time with a wall clock that follows the Tokio timer: it runs at
/// the calendar's instants in its zone, and the status shows the schedule as written and the
/// next instant in UTC and in the zone.
#[tokio::test(start_paused = true)]
async fn calendar_job_runs_at_its_instants_and_status_shows_them() {
    // 2026-03-29 00:59:00 UTC = 01:59 CET, one minute before Zurich springs forward
    let start = Utc.with_ymd_and_hms(2026, 3, 29, 0, 59, 0).unwrap();
    let wall = Arc::new(crate::TokioClock::starting_at(start));
    let cron = CronSchedule::parse("30 2,3 * * *", "Europe/Zurich").unwrap();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let record = seen.clone();
    let clock_for_job = wall.clone();
    let job = TestJob::new(
        "CalendarJob",
        Schedule::cron(cron).with_singleton(false),
        move |_, _| {
            record.lock().unwrap().push(clock_for_job.now());
            async { Ok(RunReport::ok("ok")) }.boxed()
        },
    );
    let m = JobManager::new(wall.clone(), Arc::new(TestLease::default()), "me");
    m.register(job.clone()).unwrap();
    m.start_all();
    sleep(ms(10)).await;
    let st = status_of(&m, "CalendarJob");
    assert_eq!(st.schedule, "cron:30 2,3 * * * (Europe/Zurich)");
    assert_eq!(st.timezone.as_deref(), Some("Europe/Zurich"));
    // 02:30 does not exist today: the first valid instant, 03:00 CEST = 01:00 UTC
    assert_eq!(
        st.next_run_at,
        Some(Utc.with_ymd_and_hms(2026, 3, 29, 1, 0, 0).unwrap())
    );
    assert_eq!(
        st.next_run_local.as_deref(),
        Some("2026-03-29T03:00:00+02:00")
    );
    sleep(secs(3 * 3600)).await;
    assert_eq!(
        *seen.lock().unwrap(),
        [
            Utc.with_ymd_and_hms(2026, 3, 29, 1, 0, 0).unwrap(), // 03:00 CEST (02:30 skipped)
            Utc.with_ymd_and_hms(2026, 3, 29, 1, 30, 0).unwrap(), // 03:30 CEST
        ]
    );
    m.stop_all(secs(1)).await;
}
