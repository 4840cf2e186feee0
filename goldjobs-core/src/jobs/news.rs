//! `NewsFetcherJob`: fetch every feed, deduplicate, store new articles, invalidate cached lists.

use crate::news::dedupe;
use crate::runtime::{Cadence, Job, JobContext, RunReport, Schedule};
use crate::{Error, NewsCache, NewsRepository, NewsSource, Result};
use async_trait::async_trait;
use std::sync::Arc;
use std::time::Duration;

/// Settings of the [`NewsFetcherJob`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct NewsJobConfig {
    /// Period between runs (`GOLDJOBS_NEWS_INTERVAL`, default 15 minutes); or a calendar (`cron:EXPR`).
    pub cadence: Cadence,
    /// What a restart or a failover does with instants nobody ran (default `once: one catch-up run`).
    pub missed: crate::runtime::MissedTickPolicy,
}

impl Default for NewsJobConfig {
    fn default() -> Self {
        NewsJobConfig {
            cadence: Cadence::Every(Duration::from_secs(15 * 60)),
            missed: crate::runtime::MissedTickPolicy::Once,
        }
    }
}

impl NewsJobConfig {
    /// Set the interval.
    pub fn with_interval(mut self, interval: Duration) -> Self {
        self.cadence = Cadence::Every(interval);
        self
    }
    /// Run at a fixed rate or on a calendar (`Cadence::parse("cron:0 6 * * Mon-Fri", "UTC")`).
    pub fn with_cadence(mut self, cadence: impl Into<Cadence>) -> Self {
        self.cadence = cadence.into();
        self
    }

    /// Set the missed-run policy.
    pub fn with_missed(mut self, missed: crate::runtime::MissedTickPolicy) -> Self {
        self.missed = missed;
        self
    }
}

/// Fetches news from a [`NewsSource`], stores new articles and invalidates the news-list cache.
///
/// A run: fetch → deduplicate the batch by canonical URL → one `insert_articles` → when
/// anything was new, `invalidate_lists`. Broken feeds are problems of the run, not a failure; the
/// run fails only when the source or the repository fails as a whole, or when every feed failed.
/// A failed cache invalidation is reported as a problem (lists then age out by their TTL).
pub struct NewsFetcherJob {
    source: Arc<dyn NewsSource>,
    repo: Arc<dyn NewsRepository>,
    cache: Arc<dyn NewsCache>,
    config: NewsJobConfig,
}

impl std::fmt::Debug for NewsFetcherJob {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewsFetcherJob")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl NewsFetcherJob {
    /// The job's name in status, metrics and `POST /jobs/{name}/run`.
    pub const NAME: &'static str = "NewsFetcherJob";

    /// A job over these ports.
    pub fn new(
        ports: &crate::Ports,
        source: Arc<dyn NewsSource>,
        cache: Arc<dyn NewsCache>,
    ) -> Self {
        NewsFetcherJob {
            source,
            repo: ports.news.clone(),
            cache,
            config: NewsJobConfig::default(),
        }
    }

    /// Replace the configuration.
    pub fn with_config(mut self, config: NewsJobConfig) -> Self {
        self.config = config;
        self
    }

    /// The configuration.
    pub fn config(&self) -> &NewsJobConfig {
        &self.config
    }
}

#[async_trait]
impl Job for NewsFetcherJob {
    fn name(&self) -> &str {
        Self::NAME
    }

    fn schedule(&self) -> Schedule {
        self.config
            .cadence
            .schedule()
            .with_missed(self.config.missed)
            .with_singleton(true)
    }

    async fn run(&self, ctx: &JobContext) -> Result<RunReport> {
        let batch = tokio::select! {
            biased;
            _ = ctx.cancel.cancelled() => return Err(Error::Cancelled),
            b = self.source.fetch() => b?,
        };
        let problems: Vec<String> = batch
            .failures
            .iter()
            .map(|f| format!("{}: {}", f.source, f.error))
            .collect();
        let fetched = batch.articles.len();
        if fetched == 0 && batch.not_modified == 0 && !batch.failures.is_empty() {
            // nothing came through at all: a failed run, temporary if any feed may recover
            let temporary = batch.failures.iter().any(|f| f.error.is_temporary());
            let message = format!(
                "all {} news feeds failed; first: {}",
                batch.failures.len(),
                problems.first().map(String::as_str).unwrap_or_default()
            );
            return Err(if temporary {
                Error::unavailable("news", message, None)
            } else {
                Error::backend("news", message, None)
            });
        }

        let unique = dedupe(batch.articles);
        let in_batch_duplicates = fetched - unique.len();
        let new = if unique.is_empty() {
            0
        } else {
            self.repo.insert_articles(&unique).await?
        };
        let mut problems = problems;
        if new > 0 {
            if let Err(e) = self.cache.invalidate_lists().await {
                tracing::warn!(error = %e, "news list cache invalidation failed");
                problems.push(format!("news cache invalidation failed: {e}"));
            }
        }
        let new_usize = usize::try_from(new).unwrap_or(usize::MAX);
        let duplicates = fetched.saturating_sub(new_usize);
        let summary = format!(
            "fetched {fetched}, new {new}, duplicates {duplicates} ({in_batch_duplicates} within the batch), \
             skipped {}, not modified {}, failed feeds {}",
            batch.skipped,
            batch.not_modified,
            batch.failures.len()
        );
        tracing::info!(
            fetched,
            new,
            duplicates,
            skipped = batch.skipped,
            not_modified = batch.not_modified,
            failed = batch.failures.len(),
            "news run"
        );
        Ok(RunReport { summary, problems })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::news::article_id;
    use crate::{
        MockNewsCache, MockNewsRepository, MockNewsSource, NewsArticle, NewsBatch, SourceFailure,
        SystemClock,
    };
    use chrono::{TimeZone, Utc};
    use tokio_util::sync::CancellationToken;

    fn ctx() -> JobContext {
        JobContext {
            cancel: CancellationToken::new(),
            clock: Arc::new(SystemClock),
            attempt: 1,
        }
    }

    fn art(canonical: &str, title: &str) -> NewsArticle {
        let t = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
        NewsArticle {
            id: article_id(canonical),
            title: title.into(),
            summary: String::new(),
            content: None,
            url: canonical.into(),
            canonical_url: canonical.into(),
            source: "S".into(),
            category: "gold".into(),
            thumbnail_url: None,
            published_at: t,
            related_symbols: vec![],
            created_at: t,
        }
    }

    fn job(
        source: MockNewsSource,
        repo: MockNewsRepository,
        cache: MockNewsCache,
    ) -> NewsFetcherJob {
        let ports = crate::Ports::in_memory().with_news(Arc::new(repo));
        NewsFetcherJob::new(&ports, Arc::new(source), Arc::new(cache))
    }

    #[test]
    fn name_and_schedule() {
        let j = job(
            MockNewsSource::new(),
            MockNewsRepository::new(),
            MockNewsCache::new(),
        );
        assert_eq!(j.name(), "NewsFetcherJob");
        let s = j.schedule();
        assert_eq!(s.interval, Duration::from_secs(900));
        assert!(s.singleton);
    }

    #[tokio::test]
    async fn dedupes_inserts_once_and_invalidates() {
        let mut source = MockNewsSource::new();
        source.expect_fetch().times(1).returning(|| {
            Ok(NewsBatch {
                articles: vec![
                    art("https://e.com/1", "a"),
                    art("https://e.com/2", "b"),
                    art("https://e.com/1", "a again"),
                ],
                failures: vec![SourceFailure {
                    source: "Broken".into(),
                    error: Error::backend("rss", "not a feed", None),
                }],
                skipped: 2,
                not_modified: 1,
            })
        });
        let mut repo = MockNewsRepository::new();
        repo.expect_insert_articles()
            .withf(|a| a.iter().map(|x| x.title.as_str()).collect::<Vec<_>>() == ["a", "b"])
            .times(1)
            .returning(|_| Ok(1));
        let mut cache = MockNewsCache::new();
        cache
            .expect_invalidate_lists()
            .times(1)
            .returning(|| Ok(()));
        let report = job(source, repo, cache).run(&ctx()).await.unwrap();
        assert_eq!(
            report.summary,
            "fetched 3, new 1, duplicates 2 (1 within the batch), skipped 2, not modified 1, failed feeds 1"
        );
        assert_eq!(report.problems, ["Broken: rss error: not a feed"]);
    }

    #[tokio::test]
    async fn nothing_new_does_not_invalidate() {
        let mut source = MockNewsSource::new();
        source.expect_fetch().returning(|| {
            Ok(NewsBatch {
                articles: vec![art("https://e.com/1", "a")],
                ..Default::default()
            })
        });
        let mut repo = MockNewsRepository::new();
        repo.expect_insert_articles().times(1).returning(|_| Ok(0));
        let mut cache = MockNewsCache::new();
        cache.expect_invalidate_lists().never();
        let report = job(source, repo, cache).run(&ctx()).await.unwrap();
        assert!(
            report.summary.starts_with("fetched 1, new 0, duplicates 1"),
            "{}",
            report.summary
        );
        assert!(report.problems.is_empty());
    }

    #[tokio::test]
    async fn empty_batch_skips_the_repository() {
        let mut source = MockNewsSource::new();
        source.expect_fetch().returning(|| {
            Ok(NewsBatch {
                not_modified: 3,
                ..Default::default()
            })
        });
        let mut repo = MockNewsRepository::new();
        repo.expect_insert_articles().never();
        let mut cache = MockNewsCache::new();
        cache.expect_invalidate_lists().never();
        let report = job(source, repo, cache).run(&ctx()).await.unwrap();
        assert!(
            report.summary.contains("not modified 3"),
            "{}",
            report.summary
        );
    }

    #[tokio::test]
    async fn cache_failure_is_a_problem_not_a_failure() {
        let mut source = MockNewsSource::new();
        source.expect_fetch().returning(|| {
            Ok(NewsBatch {
                articles: vec![art("https://e.com/1", "a")],
                ..Default::default()
            })
        });
        let mut repo = MockNewsRepository::new();
        repo.expect_insert_articles().returning(|_| Ok(1));
        let mut cache = MockNewsCache::new();
        cache
            .expect_invalidate_lists()
            .times(1)
            .returning(|| Err(Error::unavailable("redis", "down", None)));
        let report = job(source, repo, cache).run(&ctx()).await.unwrap();
        assert_eq!(report.problems.len(), 1);
        assert!(
            report.problems[0].contains("redis unavailable"),
            "{:?}",
            report.problems
        );
    }

    #[tokio::test]
    async fn every_feed_failing_fails_the_run() {
        let mut source = MockNewsSource::new();
        source.expect_fetch().returning(|| {
            Ok(NewsBatch {
                failures: vec![
                    SourceFailure {
                        source: "A".into(),
                        error: Error::Timeout(Duration::from_secs(15)),
                    },
                    SourceFailure {
                        source: "B".into(),
                        error: Error::backend("rss", "bad", None),
                    },
                ],
                ..Default::default()
            })
        });
        let mut repo = MockNewsRepository::new();
        repo.expect_insert_articles().never();
        let e = job(source, repo, MockNewsCache::new())
            .run(&ctx())
            .await
            .unwrap_err();
        assert!(e.is_temporary());
        assert!(e.to_string().contains("all 2 news feeds failed"), "{e}");
    }

    #[tokio::test]
    async fn source_and_repository_errors_fail_the_run() {
        let mut source = MockNewsSource::new();
        source
            .expect_fetch()
            .returning(|| Err(Error::unavailable("rss", "no network", None)));
        let e = job(source, MockNewsRepository::new(), MockNewsCache::new())
            .run(&ctx())
            .await
            .unwrap_err();
        assert!(e.is_temporary());

        let mut source = MockNewsSource::new();
        source.expect_fetch().returning(|| {
            Ok(NewsBatch {
                articles: vec![art("https://e.com/1", "a")],
                ..Default::default()
            })
        });
        let mut repo = MockNewsRepository::new();
        repo.expect_insert_articles()
            .returning(|_| Err(Error::unavailable("postgres", "down", None)));
        let mut cache = MockNewsCache::new();
        cache.expect_invalidate_lists().never();
        let e = job(source, repo, cache).run(&ctx()).await.unwrap_err();
        assert!(e.to_string().contains("postgres"), "{e}");
    }

    #[tokio::test]
    async fn cancellation_stops_the_run() {
        let mut source = MockNewsSource::new();
        source.expect_fetch().returning(|| Ok(NewsBatch::default()));
        let c = ctx();
        c.cancel.cancel();
        let e = job(source, MockNewsRepository::new(), MockNewsCache::new())
            .run(&c)
            .await
            .unwrap_err();
        assert!(matches!(e, Error::Cancelled));
    }
}
