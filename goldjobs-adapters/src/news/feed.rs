//! [`FeedSource`]: fetch RSS/Atom/JSON feeds over HTTP, concurrently and bounded.

use super::{parse::parse_feed_at, FeedConfig, ParsedFeed};
use async_trait::async_trait;
use futures::StreamExt;
use goldjobs_core::news::{feed_key, FeedOutcome};
use goldjobs_core::{
    BoxError, Clock, Error, FeedInfo, FeedReport, NewsBatch, NewsSource, Result, SourceFailure,
    SystemClock,
};
use reqwest::header::{
    HeaderMap, HeaderValue, ACCEPT, CONTENT_LENGTH, ETAG, IF_MODIFIED_SINCE, IF_NONE_MATCH,
    LAST_MODIFIED, RETRY_AFTER,
};
use reqwest::StatusCode;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Backend name in errors.
const BACKEND: &str = "rss";

/// What the source sends as `Accept`.
const ACCEPT_FEEDS: &str = "application/rss+xml, application/atom+xml, application/feed+json, \
     application/rdf+xml;q=0.9, application/xml;q=0.9, text/xml;q=0.9, application/json;q=0.8, */*;q=0.5";

/// Settings of a [`FeedSource`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeedSourceConfig {
    /// Feeds fetched at the same time (default 4).
    pub concurrency: usize,
    /// Time allowed for one feed, from request to the last byte of the body (default 15 s).
    pub timeout: Duration,
    /// Largest body accepted, in bytes, after decompression (default 5 MiB).
    pub max_body_bytes: u64,
    /// Most feeds whose `ETag`/`Last-Modified` are remembered (default 1,024).
    pub max_remembered: usize,
    /// `User-Agent` sent (default `goldjobs/<version> (news fetcher)`).
    pub user_agent: String,
}

impl Default for FeedSourceConfig {
    fn default() -> Self {
        FeedSourceConfig {
            concurrency: 4,
            timeout: Duration::from_secs(15),
            max_body_bytes: 5 * 1024 * 1024,
            max_remembered: 1024,
            user_agent: concat!("goldjobs/", env!("CARGO_PKG_VERSION"), " (news fetcher)")
                .to_owned(),
        }
    }
}

impl FeedSourceConfig {
    /// Set how many feeds are fetched at once (at least 1).
    pub fn with_concurrency(mut self, n: usize) -> Self {
        self.concurrency = n.max(1);
        self
    }

    /// Set the per-feed timeout.
    pub fn with_timeout(mut self, t: Duration) -> Self {
        self.timeout = t;
        self
    }

    /// Set the body size limit.
    pub fn with_max_body_bytes(mut self, n: u64) -> Self {
        self.max_body_bytes = n;
        self
    }
}

/// Cache validators a feed answered with.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Validators {
    etag: Option<HeaderValue>,
    last_modified: Option<HeaderValue>,
}

/// The news source over a list of feeds; implements [`NewsSource`].
///
/// Each [`fetch`](NewsSource::fetch) requests every feed, at most
/// [`concurrency`](FeedSourceConfig::concurrency) at a time, each within
/// [`timeout`](FeedSourceConfig::timeout). It sends `If-None-Match`/`If-Modified-Since` with the
/// validators of the feed's last good answer, so an unchanged feed costs a `304` (counted as
/// `not_modified`). Bodies over [`max_body_bytes`](FeedSourceConfig::max_body_bytes) are refused
/// from `Content-Length` or, without it, as soon as the streamed count passes the limit. A feed
/// that fails (HTTP error, timeout, oversized, not a feed) is a [`SourceFailure`] in the batch;
/// the others are still returned, in the configured order of feeds.
pub struct FeedSource {
    client: reqwest::Client,
    feeds: Vec<FeedConfig>,
    config: FeedSourceConfig,
    validators: Mutex<HashMap<String, Validators>>,
    clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for FeedSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FeedSource")
            .field("feeds", &self.feeds)
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

/// The result of one feed.
enum Outcome {
    Parsed(ParsedFeed),
    NotModified,
    Failed(Error),
}

impl FeedSource {
    /// A source over `feeds` with `config`.
    pub fn new(feeds: Vec<FeedConfig>, config: FeedSourceConfig) -> Result<Self> {
        let client = reqwest::Client::builder()
            .user_agent(config.user_agent.clone())
            .connect_timeout(config.timeout)
            .redirect(reqwest::redirect::Policy::limited(5))
            .build()
            .map_err(|e| {
                Error::backend(
                    BACKEND,
                    format!("cannot build HTTP client: {e}"),
                    Some(Box::new(e) as BoxError),
                )
            })?;
        Ok(FeedSource {
            client,
            feeds,
            config,
            validators: Mutex::new(HashMap::new()),
            clock: Arc::new(SystemClock),
        })
    }

    /// Use this clock for fetch times (tests).
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// The configured feeds.
    pub fn feeds(&self) -> &[FeedConfig] {
        &self.feeds
    }

    fn validators_for(&self, url: &str) -> Validators {
        self.validators
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(url)
            .cloned()
            .unwrap_or_default()
    }

    fn remember(&self, url: &str, v: Validators) {
        let mut map = self.validators.lock().unwrap_or_else(|e| e.into_inner());
        if v.etag.is_none() && v.last_modified.is_none() {
            map.remove(url);
            return;
        }
        if !map.contains_key(url) && map.len() >= self.config.max_remembered {
            // bounded: forget an arbitrary feed (it just costs one full fetch)
            if let Some(k) = map.keys().next().cloned() {
                map.remove(&k);
            }
        }
        map.insert(url.to_owned(), v);
    }

    async fn fetch_nth(&self, i: usize) -> (usize, Outcome) {
        let outcome = match self.feeds.get(i) {
            Some(feed) => self.fetch_one(feed).await,
            None => Outcome::Failed(Error::invalid(format!("no feed number {i}"))),
        };
        (i, outcome)
    }

    async fn fetch_one(&self, feed: &FeedConfig) -> Outcome {
        let timeout = self.config.timeout;
        match tokio::time::timeout(timeout, self.fetch_one_inner(feed)).await {
            Ok(Ok(Some(parsed))) => Outcome::Parsed(parsed),
            Ok(Ok(None)) => Outcome::NotModified,
            Ok(Err(e)) => Outcome::Failed(e),
            Err(_) => Outcome::Failed(Error::unavailable(
                BACKEND,
                format!(
                    "feed {:?} ({}): timed out after {timeout:?}",
                    feed.source_name, feed.url
                ),
                None,
            )),
        }
    }

    /// `Ok(None)` = not modified.
    async fn fetch_one_inner(&self, feed: &FeedConfig) -> Result<Option<ParsedFeed>> {
        let what = || format!("feed {:?} ({})", feed.source_name, feed.url);
        let key = feed.url.as_str();
        let known = self.validators_for(key);
        let mut headers = HeaderMap::new();
        headers.insert(ACCEPT, HeaderValue::from_static(ACCEPT_FEEDS));
        if let Some(etag) = &known.etag {
            headers.insert(IF_NONE_MATCH, etag.clone());
        }
        if let Some(lm) = &known.last_modified {
            headers.insert(IF_MODIFIED_SINCE, lm.clone());
        }
        let resp = self
            .client
            .get(feed.url.clone())
            .headers(headers)
            .send()
            .await
            .map_err(|e| request_error(&what(), e))?;

        let status = resp.status();
        if status == StatusCode::NOT_MODIFIED {
            return Ok(None);
        }
        if !status.is_success() {
            return Err(status_error(&what(), status, resp.headers()));
        }
        let fresh = Validators {
            etag: resp.headers().get(ETAG).cloned(),
            last_modified: resp.headers().get(LAST_MODIFIED).cloned(),
        };
        let limit = self.config.max_body_bytes;
        let declared = resp
            .headers()
            .get(CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok());
        if let Some(n) = declared.filter(|n| *n > limit) {
            return Err(Error::backend(
                BACKEND,
                format!(
                    "{}: body of {n} bytes (Content-Length) exceeds the limit of {limit} bytes",
                    what()
                ),
                None,
            ));
        }
        let base = resp.url().clone();
        let capacity = usize::try_from(declared.unwrap_or(64 * 1024).min(limit)).unwrap_or(0);
        let mut body: Vec<u8> = Vec::with_capacity(capacity);
        let mut stream = resp.bytes_stream();
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|e| request_error(&what(), e))?;
            if body.len() as u64 + chunk.len() as u64 > limit {
                return Err(Error::backend(
                    BACKEND,
                    format!(
                        "{}: body exceeds the limit of {limit} bytes; refused after {} bytes",
                        what(),
                        body.len() as u64 + chunk.len() as u64
                    ),
                    None,
                ));
            }
            body.extend_from_slice(&chunk);
        }
        let fetched_at = self.clock.now();
        // parsing is CPU work on up to `max_body_bytes`: keep it off the async workers
        let feed_owned = feed.clone();
        let parsed = tokio::task::spawn_blocking(move || {
            parse_feed_at(&body, &feed_owned, &base, fetched_at)
        })
        .await
        .map_err(|e| {
            Error::backend(
                BACKEND,
                format!("{}: parser task failed: {e}", what()),
                None,
            )
        })??;
        // remember validators only for a good answer, so a broken body is fetched in full again
        self.remember(key, fresh);
        Ok(Some(parsed))
    }
}

fn request_error(what: &str, e: reqwest::Error) -> Error {
    let kind = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "cannot connect"
    } else if e.is_redirect() {
        "too many redirects"
    } else if e.is_body() || e.is_decode() {
        "body could not be read"
    } else {
        "request failed"
    };
    let message = format!("{what}: {kind}: {e}");
    if e.is_redirect() || e.is_builder() {
        Error::backend(BACKEND, message, Some(Box::new(e) as BoxError))
    } else {
        Error::unavailable(BACKEND, message, Some(Box::new(e) as BoxError))
    }
}

fn status_error(what: &str, status: StatusCode, headers: &HeaderMap) -> Error {
    let message = format!("{what}: HTTP {status}");
    if status == StatusCode::TOO_MANY_REQUESTS
        || (status == StatusCode::SERVICE_UNAVAILABLE && headers.contains_key(RETRY_AFTER))
    {
        let retry_after = crate::headers::retry_after(headers);
        Error::RateLimited {
            backend: BACKEND,
            message,
            retry_after,
        }
    } else if status.is_server_error() || status == StatusCode::REQUEST_TIMEOUT {
        Error::unavailable(BACKEND, message, None)
    } else {
        Error::backend(BACKEND, message, None)
    }
}

/// A feed's URL without user info, query or fragment (which may carry tokens).
pub fn display_url(url: &url::Url) -> String {
    let mut shown = url.clone();
    // cannot fail for http(s) URLs, the only ones a FeedConfig holds
    let _ = shown.set_username("");
    let _ = shown.set_password(None);
    shown.set_query(None);
    shown.set_fragment(None);
    shown.to_string()
}

/// The [`FeedInfo`] of a configured feed.
pub fn feed_info(feed: &FeedConfig) -> FeedInfo {
    FeedInfo {
        key: feed_key(feed.url.as_str()),
        name: feed.source_name.clone(),
        category: feed.category.clone(),
        url: display_url(&feed.url),
    }
}

/// The health outcome of one fetch.
fn health_outcome(outcome: &Outcome) -> FeedOutcome {
    match outcome {
        Outcome::Parsed(p) => FeedOutcome::Fetched {
            articles: p.articles.len() as u64,
        },
        Outcome::NotModified => FeedOutcome::NotModified,
        Outcome::Failed(e) => {
            let (rate_limited, retry_after) = match e {
                Error::RateLimited { retry_after, .. } => (true, *retry_after),
                _ => (false, None),
            };
            FeedOutcome::Failed {
                error: e.to_string(),
                rate_limited,
                retry_after,
            }
        }
    }
}

impl FeedSource {
    /// Fetch the feeds at these positions, reporting in the configured order.
    async fn fetch_indices(&self, indices: Vec<usize>) -> NewsBatch {
        let mut results: Vec<(usize, Outcome)> = futures::stream::iter(indices)
            .map(|i| self.fetch_nth(i))
            .buffer_unordered(self.config.concurrency.max(1))
            .collect()
            .await;
        // report in the configured order, so "keep the first" in dedupe is deterministic
        results.sort_by_key(|(i, _)| *i);
        let mut batch = NewsBatch::default();
        for (i, outcome) in results {
            let Some(feed) = self.feeds.get(i) else {
                continue;
            };
            batch.reports.push(FeedReport {
                key: feed_key(feed.url.as_str()),
                outcome: health_outcome(&outcome),
            });
            match outcome {
                Outcome::Parsed(p) => {
                    tracing::debug!(feed = %feed.source_name, url = %display_url(&feed.url), articles = p.articles.len(), skipped = p.skipped, "feed fetched");
                    batch.articles.extend(p.articles);
                    batch.skipped += p.skipped;
                }
                Outcome::NotModified => {
                    tracing::debug!(feed = %feed.source_name, url = %display_url(&feed.url), "feed not modified");
                    batch.not_modified += 1;
                }
                Outcome::Failed(error) => {
                    // the news job logs a feed's change between healthy and failing once
                    tracing::debug!(feed = %feed.source_name, error = %error, "feed failed");
                    batch.failures.push(SourceFailure {
                        source: feed.source_name.clone(),
                        error,
                    });
                }
            }
        }
        batch
    }
}

#[async_trait]
impl NewsSource for FeedSource {
    async fn fetch(&self) -> Result<NewsBatch> {
        Ok(self.fetch_indices((0..self.feeds.len()).collect()).await)
    }

    fn feeds(&self) -> Vec<FeedInfo> {
        self.feeds.iter().map(feed_info).collect()
    }

    async fn fetch_feeds(&self, keys: &[String]) -> Result<NewsBatch> {
        let wanted: std::collections::HashSet<&str> = keys.iter().map(String::as_str).collect();
        let indices = self
            .feeds
            .iter()
            .enumerate()
            .filter(|(_, f)| wanted.contains(feed_key(f.url.as_str()).as_str()))
            .map(|(i, _)| i)
            .collect();
        Ok(self.fetch_indices(indices).await)
    }
}
