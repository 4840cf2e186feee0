//! Runtime overhead per tick of the JobManager, against a bare `tokio::time::interval` loop.
//!
//! Both run a no-op job every 1 ms for 1,000 ticks on a current-thread runtime with paused
//! time, so the measured wall time is the CPU cost of scheduling, spawning the run as its own
//! task, timeout, retries wrapper, bookkeeping and observer — not sleeping.
//!
//! `cargo bench --bench scheduler`

#![allow(missing_docs, clippy::unwrap_used)]

use async_trait::async_trait;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use goldjobs::runtime::{Job, JobContext, JobManager, RunOutcome, RunReport, Schedule};
use goldjobs::{Lease, LeaseState, Result, SystemClock};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

const TICKS: u32 = 1_000;
const INTERVAL: Duration = Duration::from_millis(1);

struct Noop {
    singleton: bool,
    runs: AtomicU64,
}

#[async_trait]
impl Job for Noop {
    fn name(&self) -> &str {
        "Noop"
    }
    fn schedule(&self) -> Schedule {
        Schedule::every(INTERVAL).with_singleton(self.singleton)
    }
    async fn run(&self, _ctx: &JobContext) -> Result<RunReport> {
        self.runs.fetch_add(1, Ordering::Relaxed);
        Ok(RunReport::default())
    }
}

/// Always grants the lease.
struct AlwaysLeader;

#[async_trait]
impl Lease for AlwaysLeader {
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

fn paused_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .unwrap()
}

async fn manager_ticks(singleton: bool) -> u64 {
    let observed = Arc::new(AtomicU64::new(0));
    let o = observed.clone();
    let m = JobManager::new(Arc::new(SystemClock), Arc::new(AlwaysLeader), "bench").with_observer(
        Arc::new(move |_: &str, _: &RunOutcome| {
            o.fetch_add(1, Ordering::Relaxed);
        }),
    );
    let job = Arc::new(Noop {
        singleton,
        runs: AtomicU64::new(0),
    });
    m.register(job.clone()).unwrap();
    m.start_all();
    // Ticks at 0, 1, ..., TICKS-1 ms.
    tokio::time::sleep(INTERVAL * (TICKS - 1) + Duration::from_micros(500)).await;
    m.stop_all(Duration::from_secs(1)).await;
    let runs = job.runs.load(Ordering::Relaxed);
    assert_eq!(runs, u64::from(TICKS));
    runs
}

/// Baseline: the least one can do — an interval and a spawned task per tick.
async fn bare_interval_ticks() -> u64 {
    let job = Arc::new(Noop {
        singleton: false,
        runs: AtomicU64::new(0),
    });
    let mut interval = tokio::time::interval(INTERVAL);
    let ctx = JobContext {
        cancel: Default::default(),
        clock: Arc::new(SystemClock),
        attempt: 1,
    };
    for _ in 0..TICKS {
        interval.tick().await;
        let (j, c) = (job.clone(), ctx.clone());
        tokio::spawn(async move { j.run(&c).await })
            .await
            .unwrap()
            .unwrap();
    }
    job.runs.load(Ordering::Relaxed)
}

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("scheduler_1000_ticks");
    g.throughput(Throughput::Elements(u64::from(TICKS)));
    g.sample_size(30);
    g.bench_function("bare_interval_spawn", |b| {
        let rt = paused_runtime();
        b.iter(|| rt.block_on(bare_interval_ticks()))
    });
    g.bench_function("job_manager_local", |b| {
        let rt = paused_runtime();
        b.iter(|| rt.block_on(manager_ticks(false)))
    });
    g.bench_function("job_manager_singleton", |b| {
        let rt = paused_runtime();
        b.iter(|| rt.block_on(manager_ticks(true)))
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
