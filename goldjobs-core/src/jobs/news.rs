//! `NewsFetcherJob`: fetch the due feeds, keep each feed's health, deduplicate, group into
//! stories, store new and changed articles, invalidate cached lists.

use crate::backoff::{RandomSource, ThreadRandom};
use crate::news::{dedupe, within_window, FeedHealth, FeedTransition, StoryMatcher, FEED_BACKOFF};
use crate::runtime::{Cadence, Job, JobContext, RetryPolicy, RunReport, Schedule};
use crate::{Error, NewsBatch, NewsCache, NewsRepository, NewsSource, Result};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

/// Stored articles a run compares new ones with (the newest; those within
/// [`STORY_WINDOW`](crate::news::STORY_WINDOW) of the run).
pub const STORY_CANDIDATES: u32 = 1000;

/// Settings of the [`NewsFetcherJob`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct NewsJobConfig {
    /// Period between runs (`GOLDJOBS_NEWS_INTERVAL`, default 15 minutes); or a calendar (`cron:EXPR`).
    pub cadence: Cadence,
    /// What a restart or a failover does with instants nobody ran (default `once: one catch-up run`).
    pub missed: crate::runtime::MissedTickPolicy,
    /// Whether new articles are grouped into stories with stored ones (default `true`).
    pub group_stories: bool,
}

impl Default for NewsJobConfig {
    fn default() -> Self {
        NewsJobConfig {
            cadence: Cadence::Every(Duration::from_secs(15 * 60)),
            missed: crate::runtime::MissedTickPolicy::Once,
            group_stories: true,
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

    /// Turn story grouping on or off.
    pub fn with_group_stories(mut self, on: bool) -> Self {
        self.group_stories = on;
        self
    }
}

/// Fetches news from a [`NewsSource`], stores new articles and invalidates the news-list cache.
///
/// A run, for a source that lists its feeds ([`NewsSource::feeds`]): load each feed's
/// [`FeedHealth`] → fetch only the feeds that are due (a failing feed waits out
/// [`FEED_BACKOFF`] or its `Retry-After`, and is never parked for good) → record each feed's
/// outcome, with one log line when a feed starts failing or recovers (not one per attempt) →
/// store the health. Then: deduplicate the batch by canonical URL → group new articles into
/// stories with the stored ones ([`StoryMatcher`]) → one
/// [`upsert_articles`](NewsRepository::upsert_articles) (a title edited on a known URL updates
/// the article) → when anything was written, `invalidate_lists`.
///
/// Broken feeds are problems of the run, not a failure; the run fails only when the source or
/// the repository fails as a whole, or when every fetched feed failed. Such a run is not
/// retried at once when the source lists its feeds (the feeds' own backoff decides when they
/// are asked again). A failed cache invalidation is reported as a problem (lists then age out
/// by their TTL).
pub struct NewsFetcherJob {
    source: Arc<dyn NewsSource>,
    repo: Arc<dyn NewsRepository>,
    cache: Arc<dyn NewsCache>,
    config: NewsJobConfig,
    stories: StoryMatcher,
    random: Arc<dyn RandomSource>,
}

impl std::fmt::Debug for NewsFetcherJob {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewsFetcherJob")
            .field("config", &self.config)
            .field("stories", &self.stories)
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
            stories: StoryMatcher::new(),
            random: Arc::new(ThreadRandom),
        }
    }

    /// Replace the configuration.
    pub fn with_config(mut self, config: NewsJobConfig) -> Self {
        self.config = config;
        self
    }

    /// Group stories with this matcher (e.g. another threshold).
    pub fn with_story_matcher(mut self, matcher: StoryMatcher) -> Self {
        self.stories = matcher;
        self
    }

    /// Jitter feed backoff with this source of randomness (tests: a seeded one).
    pub fn with_random(mut self, random: Arc<dyn RandomSource>) -> Self {
        self.random = random;
        self
    }

    /// The configuration.
    pub fn config(&self) -> &NewsJobConfig {
        &self.config
    }

    /// Fetch what is due; `Ok(None)` when every feed is backing off (with the report to give).
    async fn fetch_due(
        &self,
        now: DateTime<Utc>,
    ) -> Result<std::result::Result<(NewsBatch, usize), RunReport>> {
        let feeds = self.source.feeds();
        if feeds.is_empty() {
            return Ok(Ok((self.source.fetch().await?, 0)));
        }
        let mut stored: HashMap<String, FeedHealth> =
            self.repo.feed_states().await?.into_iter().collect();
        let mut states: Vec<(String, FeedHealth)> = feeds
            .iter()
            .map(|f| {
                let mut h = stored
                    .remove(&f.key)
                    .unwrap_or_else(|| FeedHealth::new(&f.name, &f.category, &f.url));
                h.name.clone_from(&f.name);
                h.category.clone_from(&f.category);
                h.url.clone_from(&f.url);
                (f.key.clone(), h)
            })
            .collect();
        let due: Vec<String> = states
            .iter()
            .filter(|(_, h)| h.is_due(now))
            .map(|(k, _)| k.clone())
            .collect();
        let waiting = states.len() - due.len();
        if due.is_empty() {
            let next = states.iter().filter_map(|(_, h)| h.next_fetch_at).min();
            return Ok(Err(RunReport::ok(format!(
                "no feed due: {waiting} backing off, the next at {}",
                next.map(|t| t.to_rfc3339()).unwrap_or_default()
            ))));
        }
        let batch = self.source.fetch_feeds(&due).await?;
        let mut touched = Vec::new();
        for report in &batch.reports {
            let Some((key, health)) = states.iter_mut().find(|(k, _)| *k == report.key) else {
                continue;
            };
            let failures_before = health.consecutive_failures;
            match health.record(&report.outcome, now, &FEED_BACKOFF, self.random.as_ref()) {
                Some(FeedTransition::Failing) => tracing::warn!(
                    feed = %health.name,
                    url = %health.url,
                    error = health.last_error.as_deref().unwrap_or_default(),
                    next_fetch_at = ?health.next_fetch_at,
                    "news feed failing; backing off"
                ),
                Some(FeedTransition::Recovered) => tracing::info!(
                    feed = %health.name,
                    url = %health.url,
                    failures = failures_before,
                    "news feed recovered"
                ),
                None => {}
            }
            touched.push((key.clone(), health.clone()));
        }
        if !touched.is_empty() {
            self.repo.save_feed_states(&touched).await?;
        }
        Ok(Ok((batch, waiting)))
    }
}

#[async_trait]
impl Job for NewsFetcherJob {
    fn name(&self) -> &str {
        Self::NAME
    }

    fn schedule(&self) -> Schedule {
        let schedule = self
            .config
            .cadence
            .schedule()
            .with_missed(self.config.missed)
            .with_singleton(true);
        if self.source.feeds().is_empty() {
            schedule
        } else {
            // each feed backs off on its own: an immediate retry would ask the same feeds again
            schedule.with_retry(RetryPolicy::none())
        }
    }

    async fn run(&self, ctx: &JobContext) -> Result<RunReport> {
        let now = ctx.clock.now();
        let fetched = tokio::select! {
            biased;
            _ = ctx.cancel.cancelled() => return Err(Error::Cancelled),
            b = self.fetch_due(now) => b?,
        };
        let (batch, waiting) = match fetched {
            Ok(b) => b,
            Err(idle) => return Ok(idle),
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

        let mut unique = dedupe(batch.articles);
        let in_batch_duplicates = fetched - unique.len();
        let mut joined = 0;
        let writes = if unique.is_empty() {
            crate::ArticleWrites::default()
        } else {
            if self.config.group_stories {
                let recent = within_window(
                    self.repo.latest_articles(None, STORY_CANDIDATES).await?,
                    now,
                );
                joined = self.stories.assign(&recent, &mut unique);
            }
            self.repo.upsert_articles(&unique).await?
        };
        let mut problems = problems;
        if writes.inserted > 0 || writes.updated > 0 {
            if let Err(e) = self.cache.invalidate_lists().await {
                tracing::warn!(error = %e, "news list cache invalidation failed");
                problems.push(format!("news cache invalidation failed: {e}"));
            }
        }
        let new = writes.inserted;
        let new_usize = usize::try_from(new).unwrap_or(usize::MAX);
        let duplicates = fetched.saturating_sub(new_usize);
        let mut summary = format!(
            "fetched {fetched}, new {new}, duplicates {duplicates} ({in_batch_duplicates} within the batch), \
             updated {}, joined stories {joined}, skipped {}, not modified {}, failed feeds {}",
            writes.updated,
            batch.skipped,
            batch.not_modified,
            batch.failures.len()
        );
        if waiting > 0 {
            summary.push_str(&format!(", backing off {waiting}"));
        }
        tracing::info!(
            fetched,
            new,
            updated = writes.updated,
            joined,
            duplicates,
            skipped = batch.skipped,
            not_modified = batch.not_modified,
            failed = batch.failures.len(),
            backing_off = waiting,
            "news run"
        );
        Ok(RunReport { summary, problems })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::backoff::SeededRandom;
    use crate::memory::{InMemoryNews, InMemoryNewsCache};
    use crate::news::{article_id, feed_key, FeedOutcome, FeedStatus};
    use crate::{
        FeedInfo, FeedReport, ManualClock, MockNewsCache, MockNewsRepository, MockNewsSource,
        NewsArticle, NewsBatch, SourceFailure, SystemClock,
    };
    use chrono::TimeZone;
    use std::sync::Mutex;
    use tokio_util::sync::CancellationToken;

    fn ctx() -> JobContext {
        JobContext {
            cancel: CancellationToken::new(),
            clock: Arc::new(SystemClock),
            attempt: 1,
        }
    }

    fn t0() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 12, 5, 0, 0, 0).unwrap()
    }

    fn art(canonical: &str, title: &str) -> NewsArticle {
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
            published_at: t0(),
            related_symbols: vec![],
            created_at: t0(),
            story_id: None,
        }
    }

    /// A mock source without separate feeds (the job calls `fetch` every run).
    fn legacy(mut source: MockNewsSource) -> MockNewsSource {
        source.expect_feeds().returning(Vec::new);
        source
    }

    fn job_with(
        source: impl NewsSource + 'static,
        repo: Arc<dyn NewsRepository>,
        cache: Arc<dyn NewsCache>,
    ) -> NewsFetcherJob {
        let ports = crate::Ports::in_memory().with_news(repo);
        NewsFetcherJob::new(&ports, Arc::new(source), cache)
            .with_random(Arc::new(SeededRandom::new(3)))
    }

    fn job(source: MockNewsSource, cache: MockNewsCache) -> (NewsFetcherJob, Arc<InMemoryNews>) {
        let repo = Arc::new(InMemoryNews::new());
        (
            job_with(legacy(source), repo.clone(), Arc::new(cache)),
            repo,
        )
    }

    #[test]
    fn name_and_schedule() {
        let (j, _) = job(MockNewsSource::new(), MockNewsCache::new());
        assert_eq!(j.name(), "NewsFetcherJob");
        let s = j.schedule();
        assert_eq!(s.interval, Duration::from_secs(900));
        assert!(s.singleton);
        assert_eq!(s.retry, RetryPolicy::default(), "a source without feeds");
        let feeds = Feeds::new(&["A"]);
        let j = job_with(
            feeds,
            Arc::new(InMemoryNews::new()),
            Arc::new(InMemoryNewsCache::new()),
        );
        assert_eq!(
            j.schedule().retry,
            RetryPolicy::none(),
            "feeds back off themselves"
        );
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
                ..Default::default()
            })
        });
        let mut cache = MockNewsCache::new();
        cache
            .expect_invalidate_lists()
            .times(1)
            .returning(|| Ok(()));
        let (j, repo) = job(source, cache);
        repo.insert_articles(&[art("https://e.com/2", "b")])
            .await
            .unwrap();
        let report = j.run(&ctx()).await.unwrap();
        assert_eq!(
            report.summary,
            "fetched 3, new 1, duplicates 2 (1 within the batch), updated 0, joined stories 0, \
             skipped 2, not modified 1, failed feeds 1"
        );
        assert_eq!(report.problems, ["Broken: rss error: not a feed"]);
        assert_eq!(repo.len(), 2);
    }

    #[tokio::test]
    async fn nothing_new_does_not_invalidate_but_an_edited_title_does() {
        let mut source = MockNewsSource::new();
        let title = Arc::new(Mutex::new("a"));
        let t = title.clone();
        source.expect_fetch().returning(move || {
            Ok(NewsBatch {
                articles: vec![art("https://e.com/1", *t.lock().unwrap())],
                ..Default::default()
            })
        });
        let mut cache = MockNewsCache::new();
        cache
            .expect_invalidate_lists()
            .times(2)
            .returning(|| Ok(()));
        let (j, repo) = job(source, cache);
        j.run(&ctx()).await.unwrap(); // new: invalidates
        let report = j.run(&ctx()).await.unwrap(); // the same: nothing written
        assert!(
            report.summary.starts_with("fetched 1, new 0, duplicates 1"),
            "{}",
            report.summary
        );
        assert!(report.problems.is_empty());
        *title.lock().unwrap() = "a, corrected";
        let report = j.run(&ctx()).await.unwrap(); // edited: updates, invalidates
        assert!(report.summary.contains("updated 1"), "{}", report.summary);
        let stored = repo.latest_articles(None, 10).await.unwrap();
        assert_eq!(stored.len(), 1, "no second article");
        assert_eq!(stored[0].title, "a, corrected");
        assert_eq!(stored[0].id, article_id("https://e.com/1"));
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
        repo.expect_upsert_articles().never();
        repo.expect_latest_articles().never();
        let mut cache = MockNewsCache::new();
        cache.expect_invalidate_lists().never();
        let j = job_with(legacy(source), Arc::new(repo), Arc::new(cache));
        let report = j.run(&ctx()).await.unwrap();
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
        let mut cache = MockNewsCache::new();
        cache
            .expect_invalidate_lists()
            .times(1)
            .returning(|| Err(Error::unavailable("redis", "down", None)));
        let (j, _) = job(source, cache);
        let report = j.run(&ctx()).await.unwrap();
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
        let (j, _) = job(source, MockNewsCache::new());
        let e = j.run(&ctx()).await.unwrap_err();
        assert!(e.is_temporary());
        assert!(e.to_string().contains("all 2 news feeds failed"), "{e}");
    }

    #[tokio::test]
    async fn source_and_repository_errors_fail_the_run() {
        let mut source = MockNewsSource::new();
        source
            .expect_fetch()
            .returning(|| Err(Error::unavailable("rss", "no network", None)));
        let (j, _) = job(source, MockNewsCache::new());
        assert!(j.run(&ctx()).await.unwrap_err().is_temporary());

        let mut source = MockNewsSource::new();
        source.expect_fetch().returning(|| {
            Ok(NewsBatch {
                articles: vec![art("https://e.com/1", "a")],
                ..Default::default()
            })
        });
        let mut repo = MockNewsRepository::new();
        repo.expect_latest_articles().returning(|_, _| Ok(vec![]));
        repo.expect_upsert_articles()
            .returning(|_| Err(Error::unavailable("postgres", "down", None)));
        let mut cache = MockNewsCache::new();
        cache.expect_invalidate_lists().never();
        let j = job_with(legacy(source), Arc::new(repo), Arc::new(cache));
        let e = j.run(&ctx()).await.unwrap_err();
        assert!(e.to_string().contains("postgres"), "{e}");
    }

    #[tokio::test]
    async fn cancellation_stops_the_run() {
        let mut source = MockNewsSource::new();
        source.expect_fetch().returning(|| Ok(NewsBatch::default()));
        let c = ctx();
        c.cancel.cancel();
        let (j, _) = job(source, MockNewsCache::new());
        assert!(matches!(j.run(&c).await.unwrap_err(), Error::Cancelled));
    }

    /// A source of named feeds; each answers what `answers` says (default: one article).
    struct Feeds {
        feeds: Vec<FeedInfo>,
        answers: Mutex<HashMap<String, FeedOutcome>>,
        asked: Mutex<HashMap<String, u32>>,
        n: Mutex<u32>,
    }

    impl Feeds {
        fn new(names: &[&str]) -> Self {
            Feeds {
                feeds: names
                    .iter()
                    .map(|n| FeedInfo {
                        key: feed_key(&format!("https://{n}.example/rss?token=secret")),
                        name: (*n).to_owned(),
                        category: "gold".into(),
                        url: format!("https://{n}.example/rss"),
                    })
                    .collect(),
                answers: Mutex::default(),
                asked: Mutex::default(),
                n: Mutex::new(0),
            }
        }

        fn answer(&self, name: &str, outcome: FeedOutcome) {
            self.answers.lock().unwrap().insert(name.into(), outcome);
        }

        fn asked(&self, name: &str) -> u32 {
            self.asked.lock().unwrap().get(name).copied().unwrap_or(0)
        }
    }

    #[async_trait]
    impl NewsSource for Feeds {
        async fn fetch(&self) -> Result<NewsBatch> {
            let keys: Vec<String> = self.feeds.iter().map(|f| f.key.clone()).collect();
            self.fetch_feeds(&keys).await
        }

        fn feeds(&self) -> Vec<FeedInfo> {
            self.feeds.clone()
        }

        async fn fetch_feeds(&self, keys: &[String]) -> Result<NewsBatch> {
            let mut batch = NewsBatch::default();
            for feed in self.feeds.iter().filter(|f| keys.contains(&f.key)) {
                *self
                    .asked
                    .lock()
                    .unwrap()
                    .entry(feed.name.clone())
                    .or_default() += 1;
                let outcome = self
                    .answers
                    .lock()
                    .unwrap()
                    .get(&feed.name)
                    .cloned()
                    .unwrap_or(FeedOutcome::Fetched { articles: 1 });
                match &outcome {
                    FeedOutcome::Fetched { .. } => {
                        let mut n = self.n.lock().unwrap();
                        *n += 1;
                        let mut a = art(&format!("https://{}.example/{n}", feed.name), "t");
                        a.title = format!("{} story number {n}", feed.name);
                        a.source.clone_from(&feed.name);
                        batch.articles.push(a);
                    }
                    FeedOutcome::NotModified => batch.not_modified += 1,
                    FeedOutcome::Failed { error, .. } => batch.failures.push(SourceFailure {
                        source: feed.name.clone(),
                        error: Error::unavailable("rss", error.clone(), None),
                    }),
                }
                batch.reports.push(FeedReport {
                    key: feed.key.clone(),
                    outcome,
                });
            }
            Ok(batch)
        }
    }

    fn down() -> FeedOutcome {
        FeedOutcome::Failed {
            error: "connection refused".into(),
            rate_limited: false,
            retry_after: None,
        }
    }

    fn ctx_at(clock: &Arc<ManualClock>) -> JobContext {
        JobContext {
            cancel: CancellationToken::new(),
            clock: clock.clone(),
            attempt: 1,
        }
    }

    #[tokio::test]
    async fn a_feed_down_for_a_day_is_asked_about_log2_times_and_comes_back() {
        let feeds = Arc::new(Feeds::new(&["Kitco", "Reuters"]));
        feeds.answer("Kitco", down());
        let repo = Arc::new(InMemoryNews::new());
        let ports = crate::Ports::in_memory().with_news(repo.clone());
        let j = NewsFetcherJob::new(&ports, feeds.clone(), Arc::new(InMemoryNewsCache::new()))
            .with_random(Arc::new(SeededRandom::new(11)));
        let clock = Arc::new(ManualClock::new(t0()));
        // every 15 minutes for a day
        for _ in 0..96 {
            j.run(&ctx_at(&clock)).await.unwrap();
            clock.advance(chrono::Duration::minutes(15));
        }
        assert_eq!(feeds.asked("Reuters"), 96);
        let kitco = feeds.asked("Kitco");
        assert!(
            (5..=10).contains(&kitco),
            "the down feed was asked {kitco} times, not 96"
        );
        let states: HashMap<String, FeedHealth> = repo
            .feed_states()
            .await
            .unwrap()
            .into_iter()
            .map(|(_, h)| (h.name.clone(), h))
            .collect();
        let k = &states["Kitco"];
        assert_eq!(k.consecutive_failures, kitco);
        assert_eq!(k.last_status, Some(FeedStatus::Failed));
        assert_eq!(
            k.url, "https://Kitco.example/rss",
            "no token in what is stored"
        );
        assert!(k.next_fetch_at.is_some(), "never parked");
        assert_eq!(states["Reuters"].articles_total, 96);

        // back: at its next fetch it answers, and it is on the normal schedule again
        feeds.answer("Kitco", FeedOutcome::Fetched { articles: 1 });
        clock.set(k.next_fetch_at.unwrap());
        j.run(&ctx_at(&clock)).await.unwrap();
        for _ in 0..4 {
            clock.advance(chrono::Duration::minutes(15));
            j.run(&ctx_at(&clock)).await.unwrap();
        }
        assert_eq!(feeds.asked("Kitco"), kitco + 5);
        let k = repo
            .feed_states()
            .await
            .unwrap()
            .into_iter()
            .find(|(_, h)| h.name == "Kitco")
            .unwrap()
            .1;
        assert!(k.is_healthy() && k.last_error.is_none());
    }

    #[tokio::test]
    async fn retry_after_is_honoured_and_all_feeds_backing_off_is_an_idle_run() {
        let feeds = Arc::new(Feeds::new(&["Kitco"]));
        feeds.answer(
            "Kitco",
            FeedOutcome::Failed {
                error: "HTTP 429 Too Many Requests".into(),
                rate_limited: true,
                retry_after: Some(Duration::from_secs(2 * 3600)),
            },
        );
        let repo = Arc::new(InMemoryNews::new());
        let ports = crate::Ports::in_memory().with_news(repo.clone());
        let j = NewsFetcherJob::new(&ports, feeds.clone(), Arc::new(InMemoryNewsCache::new()))
            .with_random(Arc::new(SeededRandom::new(1)));
        let clock = Arc::new(ManualClock::new(t0()));
        let e = j.run(&ctx_at(&clock)).await.unwrap_err();
        assert!(e.to_string().contains("all 1 news feeds failed"), "{e}");
        for _ in 0..7 {
            clock.advance(chrono::Duration::minutes(15));
            let r = j.run(&ctx_at(&clock)).await.unwrap();
            assert!(
                r.summary.starts_with("no feed due: 1 backing off"),
                "{}",
                r.summary
            );
        }
        assert_eq!(feeds.asked("Kitco"), 1, "not asked before its Retry-After");
        let (_, h) = repo.feed_states().await.unwrap().remove(0);
        assert_eq!(h.last_status, Some(FeedStatus::RateLimited));
        assert_eq!(h.next_fetch_at, Some(t0() + chrono::Duration::hours(2)));
        clock.set(t0() + chrono::Duration::hours(2));
        feeds.answer("Kitco", FeedOutcome::NotModified);
        j.run(&ctx_at(&clock)).await.unwrap();
        assert_eq!(feeds.asked("Kitco"), 2);
    }

    #[tokio::test]
    async fn stories_are_grouped_across_runs_and_sources() {
        let mut source = MockNewsSource::new();
        let run = Arc::new(Mutex::new(0));
        let r = run.clone();
        source.expect_fetch().returning(move || {
            let mut n = r.lock().unwrap();
            *n += 1;
            let (url, src, title) = if *n == 1 {
                (
                    "https://reuters.example/1",
                    "Reuters",
                    "Gold hits record $2,790 as Fed rate cut bets grow",
                )
            } else {
                (
                    "https://kitco.example/9",
                    "Kitco",
                    "Gold sets record near $2,790 on Fed rate cut bets",
                )
            };
            let mut a = art(url, title);
            a.source = src.into();
            a.summary = "Spot gold rose 1.2% to a record $2,790.15 an ounce on Tuesday.".into();
            Ok(NewsBatch {
                articles: vec![a],
                ..Default::default()
            })
        });
        let repo = Arc::new(InMemoryNews::new());
        let j = job_with(
            legacy(source),
            repo.clone(),
            Arc::new(InMemoryNewsCache::new()),
        );
        // The articles are of `t0`: run at `t0` (a wall clock would leave the story window).
        let clock = Arc::new(ManualClock::new(t0()));
        j.run(&ctx_at(&clock)).await.unwrap();
        let report = j.run(&ctx_at(&clock)).await.unwrap();
        assert!(
            report.summary.contains("joined stories 1"),
            "{}",
            report.summary
        );
        let stories = repo.latest_stories(None, 10, 5).await.unwrap();
        assert_eq!(stories.len(), 1, "{stories:#?}");
        assert_eq!(stories[0].others.len(), 1);
        assert_eq!(
            stories[0].lead.story(),
            article_id("https://reuters.example/1")
        );
    }
}
