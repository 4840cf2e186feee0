//! Start lateness of the JobManager in real time.
//!
//! Runs a 10 ms job every 100 ms for DURATION (default 10 s) on a multi-thread Tokio runtime
//! with the system clock, then prints p50/p99/max lateness of each start against its scheduled
//! instant (`start + n × interval`) and the drift of the last start.
//!
//! ```text
//! cargo run --release --example lateness -- [DURATION_SECONDS] [INTERVAL_MS] [WORK_MS]
//! ```

#![allow(missing_docs)]

use async_trait::async_trait;
use goldjobs::runtime::{Job, JobContext, JobManager, RunOutcome, RunReport, RunStatus, Schedule};
use goldjobs::{Lease, LeaseState, Result, SystemClock};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::time::Instant;

struct Worker {
    interval: Duration,
    work: Duration,
    starts: Mutex<Vec<Instant>>,
}

#[async_trait]
impl Job for Worker {
    fn name(&self) -> &str {
        "LatenessProbe"
    }
    fn schedule(&self) -> Schedule {
        Schedule::every(self.interval).with_singleton(false)
    }
    async fn run(&self, _ctx: &JobContext) -> Result<RunReport> {
        let now = Instant::now();
        self.starts
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(now);
        tokio::time::sleep(self.work).await;
        Ok(RunReport::ok("worked"))
    }
}

/// Single instance: no lease needed, but the manager wants one.
struct NoLease;

#[async_trait]
impl Lease for NoLease {
    async fn acquire(&self, _name: &str, holder: &str, _ttl: Duration) -> Result<LeaseState> {
        Ok(LeaseState {
            is_leader: true,
            holder: Some(holder.to_owned()),
            term: 1,
            expires_at: None,
        })
    }
    async fn release(&self, _name: &str, _holder: &str) -> Result<()> {
        Ok(())
    }
}

fn arg(n: usize, default: f64) -> std::result::Result<f64, String> {
    match std::env::args().nth(n) {
        None => Ok(default),
        Some(s) => s
            .trim_end_matches('s')
            .parse::<f64>()
            .ok()
            .filter(|v| v.is_finite() && *v > 0.0)
            .ok_or_else(|| format!("argument {n}: expected a positive number, got {s:?}")),
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn fmt(d: Duration) -> String {
    format!("{:.3} ms", d.as_secs_f64() * 1e3)
}

#[tokio::main]
async fn main() -> std::result::Result<(), String> {
    let duration = Duration::from_secs_f64(arg(1, 10.0)?);
    let interval = Duration::from_secs_f64(arg(2, 100.0)? / 1e3);
    let work = Duration::from_secs_f64(arg(3, 10.0)? / 1e3);

    let outcomes: Arc<Mutex<Vec<RunOutcome>>> = Arc::default();
    let o = outcomes.clone();
    let manager = JobManager::new(Arc::new(SystemClock), Arc::new(NoLease), "lateness")
        .with_observer(Arc::new(move |_: &str, out: &RunOutcome| {
            o.lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(out.clone())
        }));
    let job = Arc::new(Worker {
        interval,
        work,
        starts: Mutex::new(Vec::new()),
    });
    manager.register(job.clone()).map_err(|e| e.to_string())?;

    println!(
        "job: {} of work every {} for {:.1} s (multi-thread runtime, {} worker threads)",
        fmt(work),
        fmt(interval),
        duration.as_secs_f64(),
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
    let t0 = Instant::now();
    manager.start_all();
    tokio::time::sleep(duration).await;
    let report = manager.stop_all(Duration::from_secs(5)).await;
    if !report.all_stopped() {
        return Err(format!("jobs did not stop: {:?}", report.not_stopped));
    }

    // Lateness as seen by the runtime (start of the run vs. its scheduled instant).
    let outcomes = outcomes.lock().unwrap_or_else(|e| e.into_inner()).clone();
    let ok = outcomes
        .iter()
        .filter(|o| o.status == RunStatus::Ok)
        .count();
    let mut lateness: Vec<Duration> = outcomes.iter().map(|o| o.lateness).collect();
    lateness.sort();

    // Independent check from inside the job: each start against the latest grid instant
    // t0 + n × interval at or before it (t0 taken just before start_all).
    let starts = job.starts.lock().unwrap_or_else(|e| e.into_inner()).clone();
    let step = interval.as_nanos();
    let mut job_late: Vec<Duration> = starts
        .iter()
        .map(|s| {
            let since = s.saturating_duration_since(t0).as_nanos();
            Duration::from_nanos(u64::try_from(since % step).unwrap_or(u64::MAX))
        })
        .collect();
    let drift_last = job_late.last().copied().unwrap_or_default();
    job_late.sort();

    let status = manager.status();
    let missed = status.jobs.first().map_or(0, |j| j.missed_ticks);
    println!(
        "runs: {} ({} ok), missed ticks: {}",
        outcomes.len(),
        ok,
        missed
    );
    println!(
        "lateness (runtime, start vs scheduled instant): p50 {}  p99 {}  max {}",
        fmt(percentile(&lateness, 50.0)),
        fmt(percentile(&lateness, 99.0)),
        fmt(percentile(&lateness, 100.0)),
    );
    println!(
        "lateness (in the job, vs t0 + n × interval):    p50 {}  p99 {}  max {}",
        fmt(percentile(&job_late, 50.0)),
        fmt(percentile(&job_late, 99.0)),
        fmt(percentile(&job_late, 100.0)),
    );
    let last_n = starts
        .last()
        .map_or(0, |s| s.saturating_duration_since(t0).as_nanos() / step);
    println!(
        "drift of the last start (start #{}, grid instant n = {}): {}",
        starts.len(),
        last_n,
        fmt(drift_last)
    );
    Ok(())
}
