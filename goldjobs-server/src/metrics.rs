//! Prometheus metrics of the server, with `prometheus-client` (an explicit registry, no global
//! state, so several servers can run in one test process).
//!
//! Also decorators that count provider requests and cache hits/misses around the real ports.

use async_trait::async_trait;
use bytes::Bytes;
use chrono::{DateTime, Utc};
use goldjobs::news::{FeedOutcome, FeedStatus};
use goldjobs::{
    FeedInfo, MarketData, NewsBatch, NewsCache, NewsSource, PricePoint, Quote, QuoteBatch,
    QuoteCache, Result, Symbol,
};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::time::Duration;

/// Label set `{job="..."}`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct JobLabel {
    /// The job's name.
    pub job: String,
}

/// Label set `{job="...",status="ok|failed|…"}` (a [`RunStatus`](goldjobs::runtime::RunStatus) label).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RunLabels {
    /// The job's name.
    pub job: String,
    /// How the run ended.
    pub status: String,
}

/// Label set `{provider="...",outcome="ok|error"}`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ProviderLabels {
    /// The provider's name, e.g. `twelvedata`.
    pub provider: String,
    /// `ok` or `error`.
    pub outcome: String,
}

/// Label set `{route="/quotes/{symbol}",status="200"}` (routes are patterns, never raw paths).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct HttpLabels {
    /// The route pattern.
    pub route: String,
    /// The status code.
    pub status: String,
}

/// Label set `{feed="Kitco",status="ok|not_modified|failed|rate_limited"}`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct FeedLabels {
    /// The feed's name (its publisher).
    pub feed: String,
    /// How the fetch ended.
    pub status: String,
}

/// Label set `{feed="Kitco"}`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct FeedLabel {
    /// The feed's name (its publisher).
    pub feed: String,
}

/// Label set `{cache="quotes|news"}`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CacheLabel {
    /// Which cache.
    pub cache: String,
}

type HistogramFamily = Family<JobLabel, Histogram, fn() -> Histogram>;

fn duration_histogram() -> Histogram {
    // 1 ms .. ~65 s
    Histogram::new(exponential_buckets(0.001, 2.0, 17))
}

/// Every metric the server exports.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    job_runs: Family<RunLabels, Counter>,
    job_failures: Family<JobLabel, Counter>,
    job_duration: HistogramFamily,
    job_lateness: HistogramFamily,
    job_is_leader: Family<JobLabel, Gauge>,
    job_paused: Family<JobLabel, Gauge>,
    job_last_success: Family<JobLabel, Gauge<f64, AtomicU64>>,
    /// Open WebSocket connections.
    pub ws_connections: Gauge,
    /// Messages written to WebSocket clients.
    pub ws_messages_sent: Counter,
    /// Price updates a client never got because a newer value of the symbol replaced them
    /// while it was behind (conflation).
    pub ws_messages_dropped: Counter,
    /// Clients disconnected for being too slow (close code 1013).
    pub ws_slow_disconnects: Counter,
    provider_requests: Family<ProviderLabels, Counter>,
    cache_hits: Family<CacheLabel, Counter>,
    cache_misses: Family<CacheLabel, Counter>,
    http_requests: Family<HttpLabels, Counter>,
    feed_fetches: Family<FeedLabels, Counter>,
    feed_failures: Family<FeedLabel, Gauge>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// A fresh registry with every metric registered under the prefix `goldjobs`.
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("goldjobs");
        let job_runs = Family::<RunLabels, Counter>::default();
        let job_lateness: HistogramFamily =
            Family::new_with_constructor(duration_histogram as fn() -> Histogram);
        let job_is_leader = Family::<JobLabel, Gauge>::default();
        let job_paused = Family::<JobLabel, Gauge>::default();
        let job_failures = Family::<JobLabel, Counter>::default();
        let job_duration: HistogramFamily =
            Family::new_with_constructor(duration_histogram as fn() -> Histogram);
        let job_last_success = Family::<JobLabel, Gauge<f64, AtomicU64>>::default();
        let ws_connections = Gauge::default();
        let ws_messages_sent = Counter::default();
        let ws_messages_dropped = Counter::default();
        let ws_slow_disconnects = Counter::default();
        let provider_requests = Family::<ProviderLabels, Counter>::default();
        let cache_hits = Family::<CacheLabel, Counter>::default();
        let cache_misses = Family::<CacheLabel, Counter>::default();
        let http_requests = Family::<HttpLabels, Counter>::default();
        let feed_fetches = Family::<FeedLabels, Counter>::default();
        let feed_failures = Family::<FeedLabel, Gauge>::default();

        registry.register(
            "job_runs",
            "Job runs finished (and ticks skipped), by how they ended",
            job_runs.clone(),
        );
        registry.register(
            "job_lateness_seconds",
            "How late scheduled runs started against their instant",
            job_lateness.clone(),
        );
        registry.register(
            "job_is_leader",
            "1 while this instance holds the job's lease (singleton jobs)",
            job_is_leader.clone(),
        );
        registry.register(
            "job_paused",
            "1 while the job is paused",
            job_paused.clone(),
        );
        registry.register("job_failures", "Job runs that failed", job_failures.clone());
        registry.register(
            "job_duration_seconds",
            "Duration of job runs",
            job_duration.clone(),
        );
        registry.register(
            "job_last_success_timestamp_seconds",
            "Unix time of the last successful run",
            job_last_success.clone(),
        );
        registry.register(
            "ws_connections",
            "Open WebSocket connections",
            ws_connections.clone(),
        );
        registry.register(
            "ws_messages_sent",
            "Messages written to WebSocket clients",
            ws_messages_sent.clone(),
        );
        registry.register(
            "ws_messages_dropped",
            "Price updates replaced by a newer value before a client that was behind got them (conflation)",
            ws_messages_dropped.clone(),
        );
        registry.register(
            "ws_slow_disconnects",
            "Clients disconnected for being too slow",
            ws_slow_disconnects.clone(),
        );
        registry.register(
            "provider_requests",
            "Requests to market data providers",
            provider_requests.clone(),
        );
        registry.register("cache_hits", "Cache hits", cache_hits.clone());
        registry.register("cache_misses", "Cache misses", cache_misses.clone());
        registry.register(
            "http_requests",
            "HTTP requests by route and status",
            http_requests.clone(),
        );
        registry.register(
            "feed_fetch",
            "News feed fetches by feed and how they ended",
            feed_fetches.clone(),
        );
        registry.register(
            "feed_consecutive_failures",
            "Failures in a row of each news feed (0 = healthy)",
            feed_failures.clone(),
        );

        Metrics {
            registry,
            job_runs,
            job_failures,
            job_duration,
            job_lateness,
            job_is_leader,
            job_paused,
            job_last_success,
            ws_connections,
            ws_messages_sent,
            ws_messages_dropped,
            ws_slow_disconnects,
            provider_requests,
            cache_hits,
            cache_misses,
            http_requests,
            feed_fetches,
            feed_failures,
        }
    }

    /// Record one fetch of a feed.
    pub fn feed_fetched(&self, feed: &str, status: goldjobs::news::FeedStatus) {
        self.feed_fetches
            .get_or_create(&FeedLabels {
                feed: feed.to_owned(),
                status: status.as_str().to_owned(),
            })
            .inc();
    }

    /// Set the `feed_consecutive_failures` gauges from the feeds' stored health (at each
    /// scrape; feeds sharing a name show the largest count).
    pub fn observe_feeds(&self, feeds: &[goldjobs::news::FeedHealth]) {
        self.feed_failures.clear();
        for f in feeds {
            let gauge = self.feed_failures.get_or_create(&FeedLabel {
                feed: f.name.clone(),
            });
            let n = i64::from(f.consecutive_failures);
            if n > gauge.get() {
                gauge.set(n);
            }
        }
    }

    /// Record an answered HTTP request.
    pub fn http_request(&self, route: &str, status: u16) {
        self.http_requests
            .get_or_create(&HttpLabels {
                route: route.to_owned(),
                status: status.to_string(),
            })
            .inc();
    }

    /// Record a finished job run (or a skipped tick, which counts in `job_runs_total` only).
    pub fn job_finished(
        &self,
        job: &str,
        outcome: &goldjobs::runtime::RunOutcome,
        at: DateTime<Utc>,
    ) {
        self.job_runs
            .get_or_create(&RunLabels {
                job: job.to_owned(),
                status: outcome.status.as_str().to_owned(),
            })
            .inc();
        if outcome.status.is_skip() {
            return;
        }
        let label = JobLabel {
            job: job.to_owned(),
        };
        let (ok, failed, duration) = (
            outcome.status == goldjobs::runtime::RunStatus::Ok,
            outcome.status.is_failure(),
            outcome.duration,
        );
        if outcome.trigger == goldjobs::runtime::RunTrigger::Scheduled {
            self.job_lateness
                .get_or_create(&label)
                .observe(outcome.lateness.as_secs_f64());
        }
        self.job_duration
            .get_or_create(&label)
            .observe(duration.as_secs_f64());
        if ok {
            self.job_last_success
                .get_or_create(&label)
                .set(at.timestamp_millis() as f64 / 1000.0);
        }
        if failed {
            self.job_failures.get_or_create(&label).inc();
        }
    }

    /// Set the `job_is_leader` and `job_paused` gauges from the jobs' status (at each scrape).
    pub fn observe_jobs(&self, status: &goldjobs::runtime::JobsStatus) {
        for job in &status.jobs {
            let label = JobLabel {
                job: job.name.clone(),
            };
            self.job_is_leader
                .get_or_create(&label)
                .set(i64::from(job.is_leader));
            self.job_paused
                .get_or_create(&label)
                .set(i64::from(job.paused));
        }
    }

    /// Record a provider request.
    pub fn provider_request(&self, provider: &str, ok: bool) {
        self.provider_requests
            .get_or_create(&ProviderLabels {
                provider: provider.to_owned(),
                outcome: if ok { "ok" } else { "error" }.to_owned(),
            })
            .inc();
    }

    /// Record cache hits and misses.
    pub fn cache_lookup(&self, cache: &str, hits: u64, misses: u64) {
        let label = CacheLabel {
            cache: cache.to_owned(),
        };
        if hits > 0 {
            self.cache_hits.get_or_create(&label).inc_by(hits);
        }
        if misses > 0 {
            self.cache_misses.get_or_create(&label).inc_by(misses);
        }
    }

    /// The Prometheus text exposition.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        if prometheus_client::encoding::text::encode(&mut out, &self.registry).is_err() {
            tracing::warn!("metrics encoding failed");
        }
        out
    }
}

/// A [`MarketData`] that counts requests per provider and outcome.
pub struct MeteredMarketData {
    inner: Arc<dyn MarketData>,
    metrics: Arc<Metrics>,
}

impl MeteredMarketData {
    /// Wrap a provider.
    pub fn new(inner: Arc<dyn MarketData>, metrics: Arc<Metrics>) -> Self {
        MeteredMarketData { inner, metrics }
    }
}

#[async_trait]
impl MarketData for MeteredMarketData {
    fn name(&self) -> &'static str {
        self.inner.name()
    }

    fn is_demo(&self) -> bool {
        self.inner.is_demo()
    }

    async fn quotes(&self, symbols: &[Symbol]) -> Result<QuoteBatch> {
        let r = self.inner.quotes(symbols).await;
        self.metrics.provider_request(self.inner.name(), r.is_ok());
        r
    }

    async fn price_at(&self, symbol: &Symbol, at: DateTime<Utc>) -> Result<Option<PricePoint>> {
        let r = self.inner.price_at(symbol, at).await;
        self.metrics.provider_request(self.inner.name(), r.is_ok());
        r
    }
}

/// A [`QuoteCache`] that counts hits and misses (cache `quotes`).
pub struct MeteredQuoteCache {
    inner: Arc<dyn QuoteCache>,
    metrics: Arc<Metrics>,
}

impl MeteredQuoteCache {
    /// Wrap a cache.
    pub fn new(inner: Arc<dyn QuoteCache>, metrics: Arc<Metrics>) -> Self {
        MeteredQuoteCache { inner, metrics }
    }
}

#[async_trait]
impl QuoteCache for MeteredQuoteCache {
    async fn put_quotes(&self, quotes: &[Quote], ttl: Duration) -> Result<()> {
        self.inner.put_quotes(quotes, ttl).await
    }

    async fn get_quotes(&self, codes: &[String]) -> Result<Vec<Quote>> {
        let r = self.inner.get_quotes(codes).await?;
        let hits = r.len() as u64;
        self.metrics
            .cache_lookup("quotes", hits, (codes.len() as u64).saturating_sub(hits));
        Ok(r)
    }
}

/// A [`NewsCache`] that counts hits and misses (cache `news`).
pub struct MeteredNewsCache {
    inner: Arc<dyn NewsCache>,
    metrics: Arc<Metrics>,
}

impl MeteredNewsCache {
    /// Wrap a cache.
    pub fn new(inner: Arc<dyn NewsCache>, metrics: Arc<Metrics>) -> Self {
        MeteredNewsCache { inner, metrics }
    }
}

#[async_trait]
impl NewsCache for MeteredNewsCache {
    async fn get_list(&self, key: &str) -> Result<Option<Bytes>> {
        let r = self.inner.get_list(key).await?;
        let hit = r.is_some();
        self.metrics
            .cache_lookup("news", u64::from(hit), u64::from(!hit));
        Ok(r)
    }

    async fn put_list(&self, key: &str, value: Bytes, ttl: Duration) -> Result<()> {
        self.inner.put_list(key, value, ttl).await
    }

    async fn invalidate_lists(&self) -> Result<()> {
        self.inner.invalidate_lists().await
    }

    async fn get_list_at(&self, key: &str) -> Result<(Option<Bytes>, u64)> {
        let r = self.inner.get_list_at(key).await?;
        let hit = r.0.is_some();
        self.metrics
            .cache_lookup("news", u64::from(hit), u64::from(!hit));
        Ok(r)
    }

    async fn put_list_at(
        &self,
        key: &str,
        generation: u64,
        value: Bytes,
        ttl: Duration,
    ) -> Result<()> {
        self.inner.put_list_at(key, generation, value, ttl).await
    }
}

/// A [`NewsSource`] that counts each feed's fetches by how they ended
/// (`goldjobs_feed_fetch_total{feed,status}`).
pub struct MeteredNewsSource {
    inner: Arc<dyn NewsSource>,
    metrics: Arc<Metrics>,
}

impl MeteredNewsSource {
    /// Wrap a source.
    pub fn new(inner: Arc<dyn NewsSource>, metrics: Arc<Metrics>) -> Self {
        MeteredNewsSource { inner, metrics }
    }

    fn count(&self, batch: &NewsBatch) {
        if batch.reports.is_empty() {
            return;
        }
        let names: std::collections::HashMap<String, String> = self
            .inner
            .feeds()
            .into_iter()
            .map(|f| (f.key, f.name))
            .collect();
        for r in &batch.reports {
            let status = match &r.outcome {
                FeedOutcome::Fetched { .. } => FeedStatus::Ok,
                FeedOutcome::NotModified => FeedStatus::NotModified,
                FeedOutcome::Failed {
                    rate_limited: true, ..
                } => FeedStatus::RateLimited,
                FeedOutcome::Failed { .. } => FeedStatus::Failed,
            };
            let name = names.get(&r.key).map(String::as_str).unwrap_or("unknown");
            self.metrics.feed_fetched(name, status);
        }
    }
}

#[async_trait]
impl NewsSource for MeteredNewsSource {
    async fn fetch(&self) -> Result<NewsBatch> {
        let batch = self.inner.fetch().await?;
        self.count(&batch);
        Ok(batch)
    }

    fn feeds(&self) -> Vec<FeedInfo> {
        self.inner.feeds()
    }

    async fn fetch_feeds(&self, keys: &[String]) -> Result<NewsBatch> {
        let batch = self.inner.fetch_feeds(keys).await?;
        self.count(&batch);
        Ok(batch)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn exposition_has_the_metrics() {
        let m = Metrics::new();
        use goldjobs::runtime::{RunOutcome, RunStatus, RunTrigger};
        let run = |status, ms| {
            RunOutcome::new(
                status,
                RunTrigger::Scheduled,
                Duration::from_millis(ms),
                Duration::from_millis(ms / 2),
            )
        };
        m.job_finished("PriceFetcherJob", &run(RunStatus::Ok, 12), Utc::now());
        m.job_finished("PriceFetcherJob", &run(RunStatus::Failed, 3), Utc::now());
        m.job_finished(
            "PriceFetcherJob",
            &run(RunStatus::SkippedPaused, 0),
            Utc::now(),
        );
        m.provider_request("demo", true);
        m.cache_lookup("quotes", 5, 1);
        m.ws_connections.inc();
        let text = m.encode();
        assert!(
            text.contains("goldjobs_job_runs_total{job=\"PriceFetcherJob\",status=\"ok\"} 1"),
            "{text}"
        );
        assert!(text.contains(
            "goldjobs_job_runs_total{job=\"PriceFetcherJob\",status=\"skipped_paused\"} 1"
        ));
        assert!(text.contains("goldjobs_job_lateness_seconds_count{job=\"PriceFetcherJob\"} 2"));
        assert!(text.contains("goldjobs_job_failures_total{job=\"PriceFetcherJob\"} 1"));
        assert!(text.contains("goldjobs_job_duration_seconds_count{job=\"PriceFetcherJob\"} 2"));
        assert!(
            text.contains("goldjobs_provider_requests_total{provider=\"demo\",outcome=\"ok\"} 1")
        );
        assert!(text.contains("goldjobs_cache_hits_total{cache=\"quotes\"} 5"));
        assert!(text.contains("goldjobs_cache_misses_total{cache=\"quotes\"} 1"));
        assert!(text.contains("goldjobs_ws_connections 1"));
        assert!(
            text.contains("goldjobs_job_last_success_timestamp_seconds{job=\"PriceFetcherJob\"}")
        );
    }
}
