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
}

/// A news source that failed in one run.
#[derive(Debug)]
pub struct SourceFailure {
    /// The source's name (or URL).
    pub source: String,
    /// Why.
    pub error: crate::Error,
}
