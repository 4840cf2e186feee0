//! Read-through cache of the `GET /news` body.

use crate::{Error, NewsArticle, NewsCache, NewsRepository, Result, Story};
use bytes::Bytes;
use chrono::{DateTime, Utc};
use serde::Serialize;
use std::sync::Arc;
use std::time::Duration;

/// The largest `limit` of a news list (guide: *HTTP API*: 1–100).
pub const MAX_LIST_LIMIT: u32 = 100;

/// Most other articles listed in a story's `sources`.
pub const MAX_STORY_SOURCES: u32 = 10;

/// Longest category accepted in a list request.
const MAX_CATEGORY_LEN: usize = 64;

/// Serves the `GET /news` body from the news-list cache, filling it from the repository on a miss.
///
/// The cache is an optimisation only: when it fails (Redis down), the list is read from the
/// repository and the failure is logged, never returned. The `NewsFetcherJob` invalidates every
/// cached list when new articles arrive, so a list is at most `ttl` old only if an invalidation
/// races a fill.
#[derive(Clone)]
pub struct NewsReader {
    /// Where articles are stored.
    pub repo: Arc<dyn NewsRepository>,
    /// The news-list cache.
    pub cache: Arc<dyn NewsCache>,
    /// How long a cached list lives (`GOLDJOBS_NEWS_CACHE_TTL`, default 5 minutes).
    pub ttl: Duration,
    /// The configured categories, lower case; empty = any well-formed category is asked for.
    categories: Vec<String>,
}

impl std::fmt::Debug for NewsReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewsReader")
            .field("ttl", &self.ttl)
            .field("categories", &self.categories)
            .finish_non_exhaustive()
    }
}

impl NewsReader {
    /// Default TTL of cached lists.
    pub const DEFAULT_TTL: Duration = Duration::from_secs(5 * 60);

    /// A reader over `repo` with `cache`, caching lists for `ttl`.
    pub fn new(repo: Arc<dyn NewsRepository>, cache: Arc<dyn NewsCache>, ttl: Duration) -> Self {
        NewsReader {
            repo,
            cache,
            ttl,
            categories: Vec::new(),
        }
    }

    /// Only these categories may be asked for (matched case-insensitively, guide: *HTTP API*); any
    /// other is [`Error::InvalidInput`] and never reaches the repository or the cache, so the
    /// cache holds at most one list per configured category and limit.
    pub fn with_categories<I, S>(mut self, categories: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut list: Vec<String> = categories
            .into_iter()
            .map(|c| c.as_ref().trim().to_ascii_lowercase())
            .filter(|c| !c.is_empty())
            .collect();
        list.sort();
        list.dedup();
        self.categories = list;
        self
    }

    /// The configured categories (lower case, sorted); empty when any is accepted.
    pub fn categories(&self) -> &[String] {
        &self.categories
    }

    /// The category as stored (`None` for all), or why it cannot be asked for.
    fn category<'a>(&'a self, asked: Option<&'a str>) -> Result<Option<&'a str>> {
        let Some(asked) = asked else {
            return Ok(None);
        };
        if self.categories.is_empty() {
            return Ok(Some(asked));
        }
        match self
            .categories
            .iter()
            .find(|c| c.eq_ignore_ascii_case(asked))
        {
            Some(c) => Ok(Some(c.as_str())),
            None => {
                let shown: String = asked.chars().take(MAX_CATEGORY_LEN).collect();
                Err(Error::invalid(format!(
                    "unknown category {shown:?}: expected one of {}",
                    self.categories.join(", ")
                )))
            }
        }
    }

    /// The serialized body `{"articles":[...]}` of `GET /news?category=…&limit=…` (newest
    /// `published_at` first).
    ///
    /// `limit` must be 1–100 and `category`, when given, 1–64 characters of ASCII letters, digits,
    /// `-` and `_` and, with [`with_categories`](Self::with_categories), one of those (any letter
    /// case); anything else is [`Error::InvalidInput`]. Only repository errors fail the call.
    ///
    /// One entry per story (the default of `GET /news`); see [`list_with`](Self::list_with).
    pub async fn list(&self, category: Option<&str>, limit: u32) -> Result<Bytes> {
        self.list_with(category, limit, true).await
    }

    /// Like [`list`](Self::list); with `group` one entry per story, led by its newest article,
    /// whose `sources` are the story's other articles (at most [`MAX_STORY_SOURCES`]); without,
    /// every article on its own (`sources` empty; articles of one story share `story_id`).
    pub async fn list_with(
        &self,
        category: Option<&str>,
        limit: u32,
        group: bool,
    ) -> Result<Bytes> {
        validate(category, limit)?;
        let category = self.category(category)?;
        let key = if group {
            story_list_cache_key(category, limit)
        } else {
            list_cache_key(category, limit)
        };
        // The generation seen by the lookup goes back with the write: if new articles
        // invalidated the lists while we read the repository, our (maybe stale) list is not
        // cached.
        let generation = match self.cache.get_list_at(&key).await {
            Ok((Some(body), _)) => return Ok(body),
            Ok((None, generation)) => Some(generation),
            Err(e) => {
                tracing::warn!(error = %e, key = %key, "news cache read failed; reading the repository");
                None
            }
        };
        let body = if group {
            let stories = self
                .repo
                .latest_stories(category, limit, MAX_STORY_SOURCES)
                .await?;
            stories_body(&stories)?
        } else {
            list_body(&self.repo.latest_articles(category, limit).await?)?
        };
        if let Some(generation) = generation {
            if let Err(e) = self
                .cache
                .put_list_at(&key, generation, body.clone(), self.ttl)
                .await
            {
                tracing::warn!(error = %e, key = %key, "news cache write failed");
            }
        }
        Ok(body)
    }
}

fn validate(category: Option<&str>, limit: u32) -> Result<()> {
    if !(1..=MAX_LIST_LIMIT).contains(&limit) {
        return Err(Error::invalid(format!(
            "limit {limit}: expected 1 to {MAX_LIST_LIMIT}"
        )));
    }
    if let Some(c) = category {
        let ok = !c.is_empty()
            && c.len() <= MAX_CATEGORY_LEN
            && c.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if !ok {
            let shown: String = c.chars().take(MAX_CATEGORY_LEN).collect();
            return Err(Error::invalid(format!(
                "category {shown:?}: expected 1 to {MAX_CATEGORY_LEN} letters, digits, '-' or '_'"
            )));
        }
    }
    Ok(())
}

/// The cache key of a list: `list:all:{limit}` or `list:cat:{category}:{limit}` (the cache adds
/// its own prefix and version).
pub fn list_cache_key(category: Option<&str>, limit: u32) -> String {
    match category {
        None => format!("list:all:{limit}"),
        Some(c) => format!("list:cat:{c}:{limit}"),
    }
}

/// The cache key of a list of stories: `stories:all:{limit}` or `stories:cat:{category}:{limit}`.
pub fn story_list_cache_key(category: Option<&str>, limit: u32) -> String {
    match category {
        None => format!("stories:all:{limit}"),
        Some(c) => format!("stories:cat:{c}:{limit}"),
    }
}

#[derive(Serialize)]
struct ListBody<'a> {
    articles: Vec<ArticleView<'a>>,
}

#[derive(Serialize)]
struct ArticleView<'a> {
    id: &'a str,
    title: &'a str,
    summary: &'a str,
    url: &'a str,
    source: &'a str,
    category: &'a str,
    thumbnail_url: Option<&'a str>,
    published_at: DateTime<Utc>,
    related_symbols: &'a [String],
    story_id: &'a str,
    sources: Vec<SourceView<'a>>,
}

#[derive(Serialize)]
struct SourceView<'a> {
    source: &'a str,
    url: &'a str,
    title: &'a str,
}

fn view<'a>(a: &'a NewsArticle, others: &'a [NewsArticle]) -> ArticleView<'a> {
    ArticleView {
        id: &a.id,
        title: &a.title,
        summary: &a.summary,
        url: &a.url,
        source: &a.source,
        category: &a.category,
        thumbnail_url: a.thumbnail_url.as_deref(),
        published_at: a.published_at,
        related_symbols: &a.related_symbols,
        story_id: a.story(),
        sources: others
            .iter()
            .map(|o| SourceView {
                source: &o.source,
                url: &o.url,
                title: &o.title,
            })
            .collect(),
    }
}

/// The JSON body of the grouped `GET /news`: one article per story, with its `sources`.
pub fn stories_body(stories: &[Story]) -> Result<Bytes> {
    let body = ListBody {
        articles: stories.iter().map(|s| view(&s.lead, &s.others)).collect(),
    };
    serde_json::to_vec(&body)
        .map(Bytes::from)
        .map_err(|e| Error::invalid(format!("news list not serializable: {e}")))
}

/// The JSON body of `GET /news` for these articles, in the given order (guide: *HTTP API*).
pub fn list_body(articles: &[NewsArticle]) -> Result<Bytes> {
    let body = ListBody {
        articles: articles.iter().map(|a| view(a, &[])).collect(),
    };
    serde_json::to_vec(&body)
        .map(Bytes::from)
        .map_err(|e| Error::invalid(format!("news list not serializable: {e}")))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::{MockNewsCache, MockNewsRepository};
    use chrono::TimeZone;

    fn sample() -> NewsArticle {
        let t = Utc.with_ymd_and_hms(2026, 11, 29, 20, 0, 0).unwrap();
        NewsArticle {
            id: "abc".into(),
            title: "Gold rallies".into(),
            summary: "Spot gold rose".into(),
            content: Some("<p>full</p>".into()),
            url: "https://example.com/a?utm_source=x".into(),
            canonical_url: "https://example.com/a".into(),
            source: "Kitco".into(),
            category: "gold".into(),
            thumbnail_url: None,
            published_at: t,
            related_symbols: vec!["XAUUSD".into()],
            created_at: t,
            story_id: None,
        }
    }

    #[test]
    fn body_shape_is_the_contract() {
        let body = list_body(&[sample()]).unwrap();
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"articles":[{
                "id":"abc","title":"Gold rallies","summary":"Spot gold rose",
                "url":"https://example.com/a?utm_source=x","source":"Kitco","category":"gold",
                "thumbnail_url":null,"published_at":"2026-11-29T20:00:00Z",
                "related_symbols":["XAUUSD"],"story_id":"abc","sources":[]
            }]})
        );
        assert_eq!(&list_body(&[]).unwrap()[..], br#"{"articles":[]}"#);
        let mut other = sample();
        other.id = "def".into();
        other.source = "Reuters".into();
        other.url = "https://reuters.example/b".into();
        other.title = "Gold rallies on Fed bets".into();
        other.story_id = Some("abc".into());
        let body = stories_body(&[Story {
            lead: other.clone(),
            others: vec![sample()],
        }])
        .unwrap();
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(v["articles"][0]["story_id"], "abc");
        assert_eq!(
            v["articles"][0]["sources"],
            serde_json::json!([{"source":"Kitco","url":"https://example.com/a?utm_source=x","title":"Gold rallies"}])
        );
    }

    #[tokio::test]
    async fn cache_hit_skips_the_repository() {
        let mut cache = MockNewsCache::new();
        cache
            .expect_get_list_at()
            .withf(|k| k == "list:cat:gold:20")
            .times(1)
            .returning(|_| Ok((Some(Bytes::from_static(b"cached")), 3)));
        let mut repo = MockNewsRepository::new();
        repo.expect_latest_articles().never();
        let r = NewsReader::new(Arc::new(repo), Arc::new(cache), NewsReader::DEFAULT_TTL);
        assert_eq!(
            &r.list_with(Some("gold"), 20, false).await.unwrap()[..],
            b"cached"
        );
    }

    #[tokio::test]
    async fn miss_reads_the_repository_and_fills_the_cache() {
        let mut cache = MockNewsCache::new();
        cache
            .expect_get_list_at()
            .times(1)
            .returning(|_| Ok((None, 4)));
        cache
            .expect_put_list_at()
            .withf(|k, generation, v, ttl| {
                k == "list:all:5"
                    && *generation == 4
                    && v.starts_with(b"{\"articles\":[")
                    && *ttl == Duration::from_secs(7)
            })
            .times(1)
            .returning(|_, _, _, _| Ok(()));
        let mut repo = MockNewsRepository::new();
        repo.expect_latest_articles()
            .withf(|c, l| c.is_none() && *l == 5)
            .times(1)
            .returning(|_, _| Ok(vec![sample()]));
        let r = NewsReader::new(Arc::new(repo), Arc::new(cache), Duration::from_secs(7));
        let body = r.list_with(None, 5, false).await.unwrap();
        assert_eq!(body, list_body(&[sample()]).unwrap());
    }

    #[tokio::test]
    async fn cache_failures_fall_back_to_the_repository() {
        let mut cache = MockNewsCache::new();
        cache
            .expect_get_list_at()
            .returning(|_| Err(Error::unavailable("redis", "down", None)));
        // Without a generation nothing is written back.
        cache.expect_put_list_at().never();
        let mut repo = MockNewsRepository::new();
        repo.expect_latest_articles()
            .times(1)
            .returning(|_, _| Ok(vec![sample()]));
        let r = NewsReader::new(Arc::new(repo), Arc::new(cache), NewsReader::DEFAULT_TTL);
        assert_eq!(
            r.list_with(Some("gold"), 20, false).await.unwrap(),
            list_body(&[sample()]).unwrap()
        );
    }

    #[tokio::test]
    async fn repository_errors_are_returned() {
        let mut cache = MockNewsCache::new();
        cache.expect_get_list_at().returning(|_| Ok((None, 0)));
        cache.expect_put_list_at().never();
        let mut repo = MockNewsRepository::new();
        repo.expect_latest_articles()
            .returning(|_, _| Err(Error::unavailable("postgres", "down", None)));
        let r = NewsReader::new(Arc::new(repo), Arc::new(cache), NewsReader::DEFAULT_TTL);
        assert!(r
            .list_with(None, 20, false)
            .await
            .unwrap_err()
            .is_temporary());
    }

    #[tokio::test]
    async fn bad_requests_are_invalid_input() {
        let mut cache = MockNewsCache::new();
        cache.expect_get_list_at().never();
        let mut repo = MockNewsRepository::new();
        repo.expect_latest_articles().never();
        let r = NewsReader::new(Arc::new(repo), Arc::new(cache), NewsReader::DEFAULT_TTL);
        for (cat, limit) in [
            (None, 0),
            (None, 101),
            (Some(""), 20),
            (Some("gold:all"), 20),
            (Some("go ld"), 20),
            (Some("金"), 20),
        ] {
            let e = r.list_with(cat, limit, false).await.unwrap_err();
            assert!(matches!(e, Error::InvalidInput(_)), "{cat:?} {limit}: {e}");
        }
        let long = "a".repeat(65);
        assert!(r.list_with(Some(&long), 20, false).await.is_err());
    }

    #[tokio::test]
    async fn configured_categories_match_in_any_case_and_others_are_refused_uncached() {
        let mut cache = MockNewsCache::new();
        // Only the configured spelling ever becomes a cache key.
        cache
            .expect_get_list_at()
            .withf(|k| k == "list:cat:gold:20")
            .times(2)
            .returning(|_| Ok((None, 1)));
        cache
            .expect_put_list_at()
            .withf(|k, _, _, _| k == "list:cat:gold:20")
            .times(2)
            .returning(|_, _, _, _| Ok(()));
        let mut repo = MockNewsRepository::new();
        repo.expect_latest_articles()
            .withf(|c, _| *c == Some("gold"))
            .times(2)
            .returning(|_, _| Ok(vec![sample()]));
        let r = NewsReader::new(Arc::new(repo), Arc::new(cache), NewsReader::DEFAULT_TTL)
            .with_categories(["Gold", "forex", "gold", " markets "]);
        assert_eq!(r.categories(), ["forex", "gold", "markets"]);
        r.list_with(Some("Gold"), 20, false).await.unwrap();
        r.list_with(Some("GOLD"), 20, false).await.unwrap();
        for unknown in ["silver", "gol", "anything-at-all"] {
            let e = r.list_with(Some(unknown), 20, false).await.unwrap_err();
            assert!(matches!(e, Error::InvalidInput(_)), "{e}");
            assert!(e.to_string().contains("forex, gold, markets"), "{e}");
        }
    }

    #[tokio::test]
    async fn served_from_cache_then_fresh_after_a_job_run_with_new_articles() {
        use crate::jobs::NewsFetcherJob;
        use crate::memory::{InMemoryNews, InMemoryNewsCache};
        use crate::runtime::{Job, JobContext};
        use crate::{MockNewsSource, NewsBatch, SystemClock};

        let mut a = sample();
        a.title = "first".into();
        let mut b = sample();
        b.title = "second".into();
        b.canonical_url = "https://example.com/b".into();
        b.id = "b".into();
        b.published_at += chrono::Duration::hours(1);
        let batches = std::sync::Mutex::new(vec![vec![b], vec![a]]);
        let mut source = MockNewsSource::new();
        source.expect_feeds().returning(Vec::new);
        source.expect_fetch().times(2).returning(move || {
            let articles = batches.lock().unwrap().pop().unwrap_or_default();
            Ok(NewsBatch {
                articles,
                ..Default::default()
            })
        });
        let repo = Arc::new(InMemoryNews::new());
        let cache = Arc::new(InMemoryNewsCache::new());
        let ports = crate::Ports::in_memory().with_news(repo.clone());
        let job = NewsFetcherJob::new(&ports, Arc::new(source), cache.clone());
        let reader = NewsReader::new(repo.clone(), cache.clone(), NewsReader::DEFAULT_TTL);
        let ctx = JobContext {
            cancel: tokio_util::sync::CancellationToken::new(),
            clock: Arc::new(SystemClock),
            attempt: 1,
        };
        let titles = |body: &Bytes| -> Vec<String> {
            let v: serde_json::Value = serde_json::from_slice(body).unwrap();
            v["articles"]
                .as_array()
                .unwrap()
                .iter()
                .map(|x| x["title"].as_str().unwrap().to_owned())
                .collect()
        };

        job.run(&ctx).await.unwrap();
        let body = reader.list(None, 20).await.unwrap();
        assert_eq!(titles(&body), ["first"]);
        // cached: a write behind the cache's back is not seen
        let mut hidden = sample();
        hidden.canonical_url = "https://example.com/hidden".into();
        hidden.id = "hidden".into();
        hidden.title = "hidden".into();
        hidden.published_at -= chrono::Duration::hours(1);
        repo.insert_articles(&[hidden]).await.unwrap();
        assert_eq!(reader.list(None, 20).await.unwrap(), body);
        // a run with a new article invalidates: the next read is fresh
        job.run(&ctx).await.unwrap();
        assert_eq!(
            titles(&reader.list(None, 20).await.unwrap()),
            ["second", "first", "hidden"]
        );
    }
}
