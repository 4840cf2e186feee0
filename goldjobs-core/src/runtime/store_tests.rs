//! Tests of the runtime's shared state (pause, schedule state, run history, fencing), on
//! tokio's paused clock with a wall clock that follows it.

#![allow(clippy::unwrap_used)]

use super::*;
use crate::memory::{InMemoryJobs, InMemoryLease};
use crate::{Clock, JobStore, Lease, TokioClock};
use chrono::{DateTime, TimeZone, Utc};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::time::sleep;

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

fn mins(m: u64) -> Duration {
    Duration::from_secs(60 * m)
}

/// A job that records the wall instants its runs start at.
struct Recorder {
    name: String,
    schedule: Schedule,
    clock: Arc<dyn Clock>,
    starts: Mutex<Vec<DateTime<Utc>>>,
    calls: AtomicU32,
}

impl Recorder {
    fn new(name: &str, schedule: Schedule, clock: Arc<dyn Clock>) -> Arc<Self> {
        Arc::new(Recorder {
            name: name.to_owned(),
            schedule,
            clock,
            starts: Mutex::new(Vec::new()),
            calls: AtomicU32::new(0),
        })
    }

    fn starts(&self) -> Vec<DateTime<Utc>> {
        self.starts.lock().unwrap().clone()
    }
}

#[async_trait::async_trait]
impl Job for Recorder {
    fn name(&self) -> &str {
        &self.name
    }

    fn schedule(&self) -> Schedule {
        self.schedule.clone()
    }

    async fn run(&self, _ctx: &JobContext) -> crate::Result<RunReport> {
        self.starts.lock().unwrap().push(self.clock.now());
        let n = self.calls.fetch_add(1, Ordering::SeqCst);
        Ok(RunReport::ok(format!("run {n}")))
    }
}

struct Fleet {
    clock: Arc<dyn Clock>,
    lease: Arc<dyn Lease>,
    store: Arc<InMemoryJobs>,
}

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 12, 5, 12, 0, 0).unwrap()
}

impl Fleet {
    fn new() -> Fleet {
        let clock: Arc<dyn Clock> = Arc::new(TokioClock::starting_at(t0()));
        Fleet {
            lease: Arc::new(InMemoryLease::new(clock.clone())),
            clock,
            store: Arc::new(InMemoryJobs::new()),
        }
    }

    fn manager(&self, id: &str) -> JobManager {
        JobManager::new(self.clock.clone(), self.lease.clone(), id).with_store(self.store.clone())
    }

    fn at(&self, offset: Duration) -> DateTime<Utc> {
        t0() + chrono::Duration::from_std(offset).unwrap()
    }
}

fn news_like(policy: MissedTickPolicy) -> Schedule {
    Schedule::every(mins(15)).with_missed(policy)
}

#[tokio::test(start_paused = true)]
async fn a_restart_after_a_missed_instant_runs_exactly_one_catch_up() {
    let fleet = Fleet::new();
    let job = Recorder::new(
        "News",
        news_like(MissedTickPolicy::Once),
        fleet.clock.clone(),
    );
    let a = fleet.manager("a");
    a.register(job.clone()).unwrap();
    a.start_all();
    sleep(mins(5)).await;
    assert!(a.stop_all(secs(5)).await.all_stopped());
    assert_eq!(job.starts(), vec![fleet.at(Duration::ZERO)]);

    // Every instance is down across 12:15, 12:30 and 12:45; one starts again at 12:50.
    sleep(mins(45)).await;
    let b = fleet.manager("b");
    b.register(job.clone()).unwrap();
    b.start_all();
    sleep(mins(20)).await;
    // one catch-up at once (for the missed instants), then the schedule goes on at 13:00, 13:15
    assert_eq!(
        job.starts(),
        vec![
            fleet.at(Duration::ZERO),
            fleet.at(mins(50)),
            fleet.at(mins(60)),
        ]
    );
    assert_eq!(b.job_status("News").unwrap().missed_ticks, 2);
    b.stop_all(secs(5)).await;
}

#[tokio::test(start_paused = true)]
async fn a_restart_before_the_next_instant_neither_repeats_nor_skips() {
    let fleet = Fleet::new();
    let job = Recorder::new(
        "News",
        news_like(MissedTickPolicy::Once),
        fleet.clock.clone(),
    );
    let a = fleet.manager("a");
    a.register(job.clone()).unwrap();
    a.start_all();
    sleep(mins(5)).await;
    a.stop_all(secs(5)).await;
    sleep(mins(2)).await;
    let b = fleet.manager("b");
    b.register(job.clone()).unwrap();
    b.start_all();
    sleep(mins(25)).await;
    // no second run at 12:07; the 12:15 and 12:30 instants run on time
    assert_eq!(
        job.starts(),
        vec![
            fleet.at(Duration::ZERO),
            fleet.at(mins(15)),
            fleet.at(mins(30))
        ]
    );
    b.stop_all(secs(5)).await;
}

#[tokio::test(start_paused = true)]
async fn skip_and_all_policies_after_a_restart() {
    for (policy, expected) in [
        // skip: nothing at 12:50, next at 13:00
        (MissedTickPolicy::Skip, vec![0, 60]),
        // all, at most 2: the newest two missed (12:30, 12:45) back to back at 12:50
        (MissedTickPolicy::All { max: 2 }, vec![0, 50, 50, 60]),
    ] {
        let fleet = Fleet::new();
        let job = Recorder::new("News", news_like(policy), fleet.clock.clone());
        let a = fleet.manager("a");
        a.register(job.clone()).unwrap();
        a.start_all();
        sleep(mins(5)).await;
        a.stop_all(secs(5)).await;
        sleep(mins(45)).await;
        let b = fleet.manager("b");
        b.register(job.clone()).unwrap();
        b.start_all();
        sleep(mins(15)).await;
        let got: Vec<i64> = job
            .starts()
            .iter()
            .map(|t| (*t - t0()).num_minutes())
            .collect();
        assert_eq!(got, expected, "{policy:?}");
        b.stop_all(secs(5)).await;
    }
}

#[tokio::test(start_paused = true)]
async fn a_calendar_job_catches_up_once_after_a_restart() {
    let fleet = Fleet::new();
    let cron = CronSchedule::parse("*/15 * * * *", "Europe/Zurich").unwrap();
    let schedule = Schedule::cron(cron).with_missed(MissedTickPolicy::Once);
    let job = Recorder::new("Cal", schedule, fleet.clock.clone());
    let a = fleet.manager("a");
    a.register(job.clone()).unwrap();
    a.start_all();
    sleep(mins(20)).await; // runs at 12:15
    a.stop_all(secs(5)).await;
    sleep(mins(40)).await; // 12:30 and 12:45 missed
    let b = fleet.manager("b");
    b.register(job.clone()).unwrap();
    b.start_all();
    sleep(mins(20)).await;
    assert_eq!(
        job.starts(),
        vec![fleet.at(mins(15)), fleet.at(mins(60)), fleet.at(mins(75))],
        "one catch-up at 13:00 (the restart), then 13:15"
    );
    b.stop_all(secs(5)).await;
}

#[tokio::test(start_paused = true)]
async fn graceful_handover_continues_the_grid_without_repeats() {
    let fleet = Fleet::new();
    let schedule = Schedule::every(secs(5)).with_missed(MissedTickPolicy::Skip);
    let job = Recorder::new("Prices", schedule, fleet.clock.clone());
    let a = fleet.manager("a");
    let b = fleet.manager("b");
    a.register(job.clone()).unwrap();
    a.start_all();
    sleep(Duration::from_millis(10)).await;
    b.register(job.clone()).unwrap();
    b.start_all();
    sleep(Duration::from_millis(12_500)).await; // a ran at 0, 5, 10
    assert!(a.job_status("Prices").unwrap().is_leader);
    assert!(a.stop_all(secs(5)).await.all_stopped());
    sleep(Duration::from_millis(1_500)).await;
    assert!(
        b.job_status("Prices").unwrap().is_leader,
        "the standby took over within one renewal period"
    );
    sleep(secs(10)).await;
    let got: Vec<i64> = job
        .starts()
        .iter()
        .map(|t| (*t - t0()).num_milliseconds())
        .collect();
    // b runs 15 and 20 on the same grid: nothing repeated, nothing skipped
    assert_eq!(got.len(), 5, "{got:?}");
    for (n, ms) in got.iter().enumerate() {
        assert!(
            (ms - 5_000 * n as i64).abs() < 50,
            "run {n} at {ms} ms: {got:?}"
        );
    }
    b.stop_all(secs(5)).await;
}

#[tokio::test(start_paused = true)]
async fn pause_is_persisted_seen_by_others_and_resumable() {
    let fleet = Fleet::new();
    let schedule = Schedule::every(secs(5)).with_singleton(false);
    let job_a = Recorder::new("Local", schedule.clone(), fleet.clock.clone());
    let job_b = Recorder::new("Local", schedule, fleet.clock.clone());
    let a = fleet.manager("a");
    let b = fleet.manager("b");
    a.register(job_a.clone()).unwrap();
    b.register(job_b.clone()).unwrap();
    a.start_all();
    b.start_all();
    sleep(Duration::from_millis(100)).await;
    let status = a.pause("Local").await.unwrap();
    assert!(
        status.paused,
        "the answering instance applies it before it answers"
    );
    sleep(Duration::from_millis(1_100)).await;
    assert!(
        b.job_status("Local").unwrap().paused,
        "seen within one renewal period"
    );
    sleep(secs(20)).await;
    assert_eq!(job_a.starts().len(), 1, "no scheduled run while paused");
    assert_eq!(job_b.starts().len(), 1);
    assert!(b.job_status("Local").unwrap().skipped_paused >= 4);
    // a manual run still runs
    a.run_now("Local").unwrap();
    sleep(Duration::from_millis(10)).await;
    assert_eq!(job_a.starts().len(), 2);
    // kept across a restart
    b.stop_all(secs(1)).await;
    let c = fleet.manager("c");
    let job_c = Recorder::new(
        "Local",
        Schedule::every(secs(5)).with_singleton(false),
        fleet.clock.clone(),
    );
    c.register(job_c.clone()).unwrap();
    c.start_all();
    sleep(secs(6)).await;
    assert!(
        job_c.starts().is_empty(),
        "a paused job stays paused after a restart"
    );
    assert!(c.resume("Local").await.unwrap().paused.eq(&false));
    sleep(secs(6)).await;
    assert!(!job_c.starts().is_empty(), "resumed");
    assert!(matches!(
        c.pause("Nope").await,
        Err(crate::Error::NotFound(_))
    ));
    a.stop_all(secs(1)).await;
    c.stop_all(secs(1)).await;
}

#[tokio::test(start_paused = true)]
async fn runs_are_recorded_with_instance_status_and_summary_and_bounded() {
    let fleet = Fleet::new();
    let job = Recorder::new(
        "Local",
        Schedule::every(secs(1)).with_singleton(false),
        fleet.clock.clone(),
    );
    let a = fleet.manager("a").with_runs_kept(3);
    a.register(job.clone()).unwrap();
    a.start_all();
    sleep(Duration::from_millis(4_500)).await;
    let runs = a.runs("Local", 50).await.unwrap();
    assert_eq!(runs.len(), 3, "bounded: {runs:?}");
    assert_eq!(runs[0].instance, "a");
    assert_eq!(runs[0].status, RunStatus::Ok);
    assert_eq!(runs[0].summary.as_deref(), Some("run 4"));
    assert_eq!(runs[0].started_at, fleet.at(secs(4)));
    assert!(runs[0].started_at > runs[1].started_at, "newest first");
    assert!(matches!(
        a.runs("Nope", 5).await,
        Err(crate::Error::NotFound(_))
    ));
    a.stop_all(secs(1)).await;
}

#[tokio::test(start_paused = true)]
async fn a_stale_leader_is_refused_and_steps_down() {
    let fleet = Fleet::new();
    // A newer leader (term 7) already handled 12:00:00.
    assert!(fleet
        .store
        .set_last_scheduled("Prices", t0(), 7)
        .await
        .unwrap());
    let job = Recorder::new("Prices", Schedule::every(secs(5)), fleet.clock.clone());
    let a = fleet.manager("a");
    a.register(job.clone()).unwrap();
    a.start_all();
    sleep(Duration::from_millis(5_100)).await;
    // a (term 1) ran 12:00:05, but its write of the schedule state was refused
    assert_eq!(job.starts().len(), 1);
    let control = fleet.store.job_controls().await.unwrap();
    assert_eq!(
        control[0].last_scheduled_at,
        Some(t0()),
        "the stale write changed nothing"
    );
    assert_eq!(control[0].term, 7);
    assert!(
        !a.job_status("Prices").unwrap().is_leader,
        "and it stepped down"
    );
    a.stop_all(secs(1)).await;
}
