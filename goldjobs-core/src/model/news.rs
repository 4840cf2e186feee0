//! News articles and what one fetch of the feeds returned.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// A news article (`news_articles`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewsArticle {
    /// Stable id (derived from the canonical URL by the news job).
    pub id: String,
    /// Headline.
    pub title: String,
    /// Short summary (plain text).
    pub summary: String,
    /// Full content when the feed carries it.
    pub content: Option<String>,
    /// The link as the feed gave it (resolved to absolute).
    pub url: String,
    /// The canonical URL used for deduplication.
    pub canonical_url: String,
    /// The publisher, e.g. `Kitco`.
    pub source: String,
    /// Category, e.g. `gold`, `forex`, `markets`.
    pub category: String,
    /// Thumbnail image URL.
    pub thumbnail_url: Option<String>,
    /// When published (fetch time when the feed does not say).
    pub published_at: DateTime<Utc>,
    /// Symbols the article talks about, e.g. `["XAUUSD"]`.
    pub related_symbols: Vec<String>,
    /// When we stored it.
    pub created_at: DateTime<Utc>,
    /// The story it belongs to: the `id` of the story's first article, `None` when it is a story
    /// of its own (the news job sets it when it groups near-duplicates from several sources).
    #[serde(default)]
    pub story_id: Option<String>,
}

impl NewsArticle {
    /// The story's id: [`story_id`](Self::story_id), or the article's own `id`.
    pub fn story(&self) -> &str {
        self.story_id.as_deref().unwrap_or(&self.id)
    }
}

/// What [`upsert_articles`](crate::NewsRepository::upsert_articles) wrote.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ArticleWrites {
    /// Articles stored for the first time.
    pub inserted: u64,
    /// Stored articles whose title, summary, content or thumbnail changed.
    pub updated: u64,
}

/// One story: its newest article (of the asked category) and the story's other articles.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Story {
    /// The article shown for the story.
    pub lead: NewsArticle,
    /// The story's other articles, newest first (bounded by the caller's `max_sources`).
    pub others: Vec<NewsArticle>,
}

/// A feed a [`NewsSource`](crate::NewsSource) fetches, as the news job tracks its health.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeedInfo {
    /// Stable key of the feed (derived from its full URL, [`crate::news::feed_key`]); the
    /// health of a feed is stored under it.
    pub key: String,
    /// The publisher shown with its articles (`Kitco`).
    pub name: String,
    /// Its category (`gold`).
    pub category: String,
    /// Its URL without credentials or query (safe to show and log).
    pub url: String,
}

/// How one feed of a batch ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeedReport {
    /// The feed's [`FeedInfo::key`].
    pub key: String,
    /// What the fetch gave.
    pub outcome: crate::news::FeedOutcome,
}

/// Articles fetched from all news sources in one run.
#[derive(Debug, Default)]
pub struct NewsBatch {
    /// Articles (not yet deduplicated).
    pub articles: Vec<NewsArticle>,
    /// Sources that failed, with why.
    pub failures: Vec<SourceFailure>,
    /// Entries skipped because they had neither a link nor an id.
    pub skipped: usize,
    /// Sources that answered "not modified".
    pub not_modified: usize,
    /// Per feed, how its fetch ended (sources that list their feeds in
    /// [`NewsSource::feeds`](crate::NewsSource::feeds) report each one here).
    pub reports: Vec<FeedReport>,
}

/// A news source that failed in one run.
#[derive(Debug)]
pub struct SourceFailure {
    /// The source's name (or URL).
    pub source: String,
    /// Why.
    pub error: crate::Error,
}
