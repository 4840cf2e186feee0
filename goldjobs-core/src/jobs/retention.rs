//! `RetentionJob`: deletes old price ticks and finished outbox rows in bounded batches, so the
//! tables that grow with every tick and every notification stay bounded.

use crate::ports::{OutboxRepository, PriceTickRepository};
use crate::runtime::{Job, JobContext, RunReport, Schedule};
use crate::Result;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use std::sync::Arc;
use std::time::Duration;

/// Settings of the [`RetentionJob`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct RetentionConfig {
    /// Period of the job (default 10 min).
    pub interval: Duration,
    /// Ticks older than this are deleted (default 30 days; `None` keeps them). Verification
    /// reads the first tick at or after a prediction's `verify_time`, and an admin resolving a
    /// `needs_review` prediction reads it too, so keep this well above how late that happens;
    /// older instants fall back to the provider's history.
    pub tick_retention: Option<Duration>,
    /// Delivered and failed outbox rows created longer ago than this are deleted (default
    /// 7 days; `None` keeps them). Pending rows are never deleted.
    pub outbox_retention: Option<Duration>,
    /// Runs kept per job in the run history (default
    /// [`DEFAULT_RUNS_KEPT`](crate::runtime::DEFAULT_RUNS_KEPT)); older runs of every job are
    /// deleted (the runtime also trims each job's history as it records a run).
    pub runs_kept: u32,
    /// Rows deleted per statement (default 10,000).
    pub batch: u32,
    /// Statements per table and run at most (default 100); what is left waits for the next run.
    pub max_batches: u32,
}

impl Default for RetentionConfig {
    fn default() -> Self {
        RetentionConfig {
            interval: Duration::from_secs(10 * 60),
            tick_retention: Some(Duration::from_secs(30 * 24 * 3600)),
            outbox_retention: Some(Duration::from_secs(7 * 24 * 3600)),
            runs_kept: crate::runtime::DEFAULT_RUNS_KEPT,
            batch: 10_000,
            max_batches: 100,
        }
    }
}

impl RetentionConfig {
    /// Set the period.
    pub fn with_interval(mut self, interval: Duration) -> Self {
        self.interval = interval;
        self
    }

    /// Set how long ticks are kept (`None`: for ever).
    pub fn with_tick_retention(mut self, tick_retention: Option<Duration>) -> Self {
        self.tick_retention = tick_retention;
        self
    }

    /// Set how long finished outbox rows are kept (`None`: for ever).
    pub fn with_outbox_retention(mut self, outbox_retention: Option<Duration>) -> Self {
        self.outbox_retention = outbox_retention;
        self
    }

    /// Set the runs kept per job (at least 1).
    pub fn with_runs_kept(mut self, runs_kept: u32) -> Self {
        self.runs_kept = runs_kept.max(1);
        self
    }

    /// Set the rows deleted per statement.
    pub fn with_batch(mut self, batch: u32) -> Self {
        self.batch = batch;
        self
    }

    /// Set the statements per table and run.
    pub fn with_max_batches(mut self, max_batches: u32) -> Self {
        self.max_batches = max_batches;
        self
    }
}

/// Deletes ticks older than [`RetentionConfig::tick_retention`] with
/// [`PriceTickRepository::delete_ticks_before`] and finished outbox rows older than
/// [`RetentionConfig::outbox_retention`] with [`OutboxRepository::delete_finished_before`],
/// each in batches of [`RetentionConfig::batch`] rows, so no statement holds locks for long;
/// and keeps the newest [`RetentionConfig::runs_kept`] runs of every job in the run history.
/// A singleton: one instance of a fleet does it.
pub struct RetentionJob {
    ticks: Arc<dyn PriceTickRepository>,
    jobs: Arc<dyn crate::JobStore>,
    outbox: Arc<dyn OutboxRepository>,
    config: RetentionConfig,
}

impl std::fmt::Debug for RetentionJob {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RetentionJob")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl RetentionJob {
    /// The job's name in status, metrics and `POST /jobs/{name}/run`.
    pub const NAME: &'static str = "RetentionJob";

    /// A job over the ticks and the outbox of `ports`, with the default [`RetentionConfig`].
    pub fn new(ports: &crate::Ports) -> Self {
        RetentionJob {
            ticks: ports.ticks.clone(),
            jobs: ports.jobs.clone(),
            outbox: ports.outbox.clone(),
            config: RetentionConfig::default(),
        }
    }

    /// Replace the configuration.
    pub fn with_config(mut self, config: RetentionConfig) -> Self {
        self.config = config;
        self
    }

    /// The configuration.
    pub fn config(&self) -> &RetentionConfig {
        &self.config
    }
}

impl RetentionJob {
    /// Call `delete(batch)` until it deletes fewer than a batch, at most
    /// [`RetentionConfig::max_batches`] times or until cancelled; returns how many went.
    async fn in_batches<F, Fut>(&self, ctx: &JobContext, mut delete: F) -> Result<u64>
    where
        F: FnMut(u32) -> Fut,
        Fut: std::future::Future<Output = Result<u64>>,
    {
        let batch = self.config.batch.max(1);
        let mut deleted = 0u64;
        for _ in 0..self.config.max_batches {
            if ctx.cancel.is_cancelled() {
                break;
            }
            let n = delete(batch).await?;
            deleted += n;
            if n < u64::from(batch) {
                break;
            }
        }
        Ok(deleted)
    }
}

fn cutoff(now: DateTime<Utc>, keep: Duration) -> DateTime<Utc> {
    chrono::Duration::from_std(keep)
        .ok()
        .and_then(|d| now.checked_sub_signed(d))
        .unwrap_or(DateTime::<Utc>::MIN_UTC)
}

#[async_trait]
impl Job for RetentionJob {
    fn name(&self) -> &str {
        Self::NAME
    }

    fn schedule(&self) -> Schedule {
        Schedule::every(self.config.interval).with_singleton(true)
    }

    async fn run(&self, ctx: &JobContext) -> Result<RunReport> {
        let now = ctx.clock.now();
        let mut problems = Vec::new();
        let mut ticks = 0u64;
        if let Some(keep) = self.config.tick_retention {
            let before = cutoff(now, keep);
            ticks = self
                .in_batches(ctx, |n| self.ticks.delete_ticks_before(before, n))
                .await?;
        }
        let mut rows = 0u64;
        if let Some(keep) = self.config.outbox_retention {
            let before = cutoff(now, keep);
            rows = self
                .in_batches(ctx, |n| self.outbox.delete_finished_before(before, n))
                .await?;
        }
        let runs = self.jobs.prune_runs(self.config.runs_kept.max(1)).await?;
        if ctx.cancel.is_cancelled() {
            problems.push("stopped early: the job was cancelled".to_owned());
        }
        Ok(RunReport {
            summary: format!(
                "{ticks} ticks, {rows} finished outbox rows and {runs} old job runs deleted"
            ),
            problems,
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::ports::{MockOutboxRepository, MockPriceTickRepository};
    use crate::ManualClock;
    use mockall::predicate::eq;

    fn ports(ticks: MockPriceTickRepository, outbox: MockOutboxRepository) -> crate::Ports {
        crate::Ports::in_memory()
            .with_ticks(Arc::new(ticks))
            .with_outbox(Arc::new(outbox))
    }
    use tokio_util::sync::CancellationToken;

    fn t0() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-03-31T00:00:00Z")
            .unwrap()
            .with_timezone(&Utc)
    }

    fn ctx() -> JobContext {
        JobContext {
            cancel: CancellationToken::new(),
            clock: Arc::new(ManualClock::new(t0())),
            attempt: 1,
        }
    }

    /// Batches until one comes back short, at the cutoffs of the configured ages.
    #[tokio::test]
    async fn deletes_in_batches_until_a_short_one() {
        let mut ticks = MockPriceTickRepository::new();
        let tick_cutoff = t0() - chrono::Duration::days(30);
        let mut answers = vec![100u64, 100, 7].into_iter();
        ticks
            .expect_delete_ticks_before()
            .with(eq(tick_cutoff), eq(100))
            .times(3)
            .returning(move |_, _| Ok(answers.next().unwrap_or(0)));
        let mut outbox = MockOutboxRepository::new();
        let outbox_cutoff = t0() - chrono::Duration::days(7);
        outbox
            .expect_delete_finished_before()
            .with(eq(outbox_cutoff), eq(100))
            .times(1)
            .returning(|_, _| Ok(3));
        let job = RetentionJob::new(&ports(ticks, outbox)).with_config(RetentionConfig {
            batch: 100,
            ..RetentionConfig::default()
        });
        let report = job.run(&ctx()).await.unwrap();
        assert_eq!(
            report.summary,
            "207 ticks, 3 finished outbox rows and 0 old job runs deleted"
        );
        assert!(report.problems.is_empty());
    }

    /// `max_batches` bounds a run; `None` leaves a table alone.
    #[tokio::test]
    async fn a_run_is_bounded_and_none_keeps_everything() {
        let mut ticks = MockPriceTickRepository::new();
        ticks
            .expect_delete_ticks_before()
            .times(2)
            .returning(|_, limit| Ok(u64::from(limit)));
        let mut outbox = MockOutboxRepository::new();
        outbox.expect_delete_finished_before().never();
        let job = RetentionJob::new(&ports(ticks, outbox)).with_config(RetentionConfig {
            batch: 10,
            max_batches: 2,
            outbox_retention: None,
            ..RetentionConfig::default()
        });
        let report = job.run(&ctx()).await.unwrap();
        assert_eq!(
            report.summary,
            "20 ticks, 0 finished outbox rows and 0 old job runs deleted"
        );
        assert_eq!(job.name(), RetentionJob::NAME);
        assert!(job.schedule().singleton);
    }

    #[tokio::test]
    async fn old_job_runs_are_pruned_to_the_kept_number() {
        use crate::runtime::{JobRun, RunStatus};
        use crate::JobStore;
        let store = Arc::new(crate::memory::InMemoryJobs::new());
        for n in 0..5 {
            let run = JobRun {
                job: "PriceFetcherJob".into(),
                instance: "a".into(),
                started_at: t0() + chrono::Duration::seconds(n),
                duration_ms: 1,
                status: RunStatus::Ok,
                error: None,
                summary: None,
            };
            store.record_run(&run, 100).await.unwrap();
        }
        let ports = crate::Ports::in_memory().with_jobs(store.clone());
        let job =
            RetentionJob::new(&ports).with_config(RetentionConfig::default().with_runs_kept(2));
        let report = job.run(&ctx()).await.unwrap();
        assert!(
            report.summary.ends_with("and 3 old job runs deleted"),
            "{report:?}"
        );
        assert_eq!(
            store
                .recent_runs("PriceFetcherJob", 10)
                .await
                .unwrap()
                .len(),
            2
        );
    }
}
