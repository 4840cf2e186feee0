//! Which feeds to fetch: [`FeedConfig`] and the `GOLDJOBS_NEWS_FEEDS` syntax.

use goldjobs_core::{Error, Result};
use url::Url;

/// Longest category name (the same bound `GET /news?category=` accepts).
const MAX_CATEGORY_LEN: usize = 64;
/// Longest source name.
const MAX_SOURCE_NAME_LEN: usize = 100;

/// One feed to fetch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeedConfig {
    /// Category of its articles, e.g. `gold`, `forex`, `markets` (ASCII letters, digits, `-`, `_`;
    /// kept in lower case, so `Gold` and `gold` are one category).
    pub category: String,
    /// The publisher shown with each article, e.g. `Kitco`.
    pub source_name: String,
    /// The feed's URL (http or https).
    pub url: Url,
}

/// What is wrong with a feed entry; becomes [`Error::InvalidInput`] with the whole chain.
#[derive(Debug, thiserror::Error)]
enum FeedConfigError {
    #[error("category {0:?}: expected 1 to {MAX_CATEGORY_LEN} ASCII letters, digits, '-' or '_'")]
    Category(String),
    #[error(
        "source name {0:?}: expected 1 to {MAX_SOURCE_NAME_LEN} characters without control characters"
    )]
    SourceName(String),
    #[error("url {0:?}")]
    Url(String, #[source] url::ParseError),
    #[error("url {0:?}: expected an absolute http or https URL")]
    NotHttp(String),
    #[error("GOLDJOBS_NEWS_FEEDS entry {n} {entry:?}: expected category|source name|url")]
    Shape { n: usize, entry: String },
    #[error("GOLDJOBS_NEWS_FEEDS entry {n} {entry:?}")]
    Entry {
        n: usize,
        entry: String,
        #[source]
        why: Box<FeedConfigError>,
    },
    #[error("GOLDJOBS_NEWS_FEEDS entry {n} {entry:?}: url {url} is listed twice")]
    Twice { n: usize, entry: String, url: Url },
    #[error(
        "GOLDJOBS_NEWS_FEEDS has no entries: expected `category|source name|url` entries separated by `;`"
    )]
    Empty,
}

impl From<FeedConfigError> for Error {
    fn from(e: FeedConfigError) -> Self {
        Error::invalid_from(&e)
    }
}

impl FeedConfig {
    /// A checked feed entry.
    pub fn new(category: &str, source_name: &str, url: &str) -> Result<Self> {
        Ok(Self::checked(category, source_name, url)?)
    }

    fn checked(
        category: &str,
        source_name: &str,
        url: &str,
    ) -> std::result::Result<Self, FeedConfigError> {
        let category = category.trim();
        let source_name = source_name.trim();
        let url = url.trim();
        if category.is_empty()
            || category.len() > MAX_CATEGORY_LEN
            || !category
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return Err(FeedConfigError::Category(category.to_owned()));
        }
        if source_name.is_empty()
            || source_name.chars().count() > MAX_SOURCE_NAME_LEN
            || source_name.chars().any(char::is_control)
        {
            return Err(FeedConfigError::SourceName(source_name.to_owned()));
        }
        let parsed = Url::parse(url).map_err(|e| FeedConfigError::Url(url.to_owned(), e))?;
        if !matches!(parsed.scheme(), "http" | "https") || parsed.host_str().is_none() {
            return Err(FeedConfigError::NotHttp(url.to_owned()));
        }
        Ok(FeedConfig {
            category: category.to_ascii_lowercase(),
            source_name: source_name.to_owned(),
            url: parsed,
        })
    }

    /// Parse the `GOLDJOBS_NEWS_FEEDS` syntax: `;`-separated `category|source name|url` entries,
    /// e.g. `gold|Kitco|https://example.com/rss; forex|FXStreet|https://example.com/fx`.
    ///
    /// Whitespace around entries and fields is ignored, and so are empty entries (a trailing `;`).
    /// A `;` inside a URL must be written `%3B`. The same URL twice is an error, and so is a list
    /// without any entry. Errors name the bad entry (1-based) and say what is expected.
    pub fn parse_list(spec: &str) -> Result<Vec<FeedConfig>> {
        let mut feeds: Vec<FeedConfig> = Vec::new();
        for (i, entry) in spec.split(';').enumerate() {
            let entry = entry.trim();
            if entry.is_empty() {
                continue;
            }
            let n = i + 1;
            let mut parts = entry.splitn(3, '|');
            let (Some(category), Some(name), Some(url)) =
                (parts.next(), parts.next(), parts.next())
            else {
                return Err(FeedConfigError::Shape {
                    n,
                    entry: entry.to_owned(),
                }
                .into());
            };
            let feed =
                FeedConfig::checked(category, name, url).map_err(|why| FeedConfigError::Entry {
                    n,
                    entry: entry.to_owned(),
                    why: Box::new(why),
                })?;
            if feeds.iter().any(|f| f.url == feed.url) {
                return Err(FeedConfigError::Twice {
                    n,
                    entry: entry.to_owned(),
                    url: feed.url,
                }
                .into());
            }
            feeds.push(feed);
        }
        if feeds.is_empty() {
            return Err(FeedConfigError::Empty.into());
        }
        Ok(feeds)
    }

    /// The built-in feeds (used when `GOLDJOBS_NEWS_FEEDS` is unset): public RSS feeds of
    /// financial publishers for the categories `gold`, `forex` and `markets`.
    ///
    /// | category | source | feed |
    /// |---|---|---|
    /// | gold | Investing.com | commodities & futures news |
    /// | gold | MINING.COM | gold news |
    /// | forex | FXStreet | news |
    /// | forex | Investing.com | forex news |
    /// | markets | MarketWatch | top stories |
    /// | markets | CNBC | top news |
    pub fn defaults() -> Vec<FeedConfig> {
        DEFAULT_FEEDS
            .iter()
            .filter_map(|(c, n, u)| FeedConfig::new(c, n, u).ok())
            .collect()
    }
}

/// The built-in feed list (checked by a test to parse).
const DEFAULT_FEEDS: &[(&str, &str, &str)] = &[
    (
        "gold",
        "Investing.com",
        "https://www.investing.com/rss/news_11.rss",
    ),
    (
        "gold",
        "MINING.COM",
        "https://www.mining.com/commodity/gold/feed/",
    ),
    ("forex", "FXStreet", "https://www.fxstreet.com/rss/news"),
    (
        "forex",
        "Investing.com",
        "https://www.investing.com/rss/news_1.rss",
    ),
    (
        "markets",
        "MarketWatch",
        "https://feeds.content.dowjones.io/public/rss/mw_topstories",
    ),
    (
        "markets",
        "CNBC",
        "https://search.cnbc.com/rs/search/combinedcms/view.xml?partnerId=wrss01&id=100003114",
    ),
];

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_cover_the_categories() {
        let d = FeedConfig::defaults();
        assert_eq!(d.len(), DEFAULT_FEEDS.len());
        for c in ["gold", "forex", "markets"] {
            assert!(d.iter().any(|f| f.category == c), "{c}");
        }
        assert!(d.iter().all(|f| f.url.scheme() == "https"));
    }

    #[test]
    fn parses_the_env_syntax() {
        let feeds = FeedConfig::parse_list(
            " gold | Kitco News |https://www.kitco.com/rss ;forex|FXStreet|https://www.fxstreet.com/rss/news;",
        )
        .unwrap();
        assert_eq!(feeds.len(), 2);
        assert_eq!(feeds[0].category, "gold");
        assert_eq!(feeds[0].source_name, "Kitco News");
        assert_eq!(feeds[0].url.as_str(), "https://www.kitco.com/rss");
        assert_eq!(feeds[1].source_name, "FXStreet");
    }

    #[test]
    fn bad_entries_are_named() {
        let cases: &[(&str, &str)] = &[
            ("", "has no entries"),
            (" ; ; ", "has no entries"),
            ("gold|Kitco", "entry 1 \"gold|Kitco\": expected category|source name|url"),
            ("gold|A|https://a.example/;gold|Kitco", "entry 2 \"gold|Kitco\""),
            ("gold|Kitco|not a url", "entry 1"),
            ("gold|Kitco|ftp://a.example/", "expected an absolute http or https URL"),
            ("gold|Kitco|/rss", "entry 1"),
            ("go ld|Kitco|https://a.example/", "category \"go ld\""),
            ("|Kitco|https://a.example/", "category \"\""),
            ("gold||https://a.example/", "source name \"\""),
            (
                "gold|A|https://a.example/rss;forex|B|https://a.example/rss",
                "entry 2 \"forex|B|https://a.example/rss\": url https://a.example/rss is listed twice",
            ),
        ];
        for (spec, want) in cases {
            let e = FeedConfig::parse_list(spec).unwrap_err();
            assert!(matches!(e, Error::InvalidInput(_)), "{spec}");
            let text = e.to_string();
            assert!(text.contains(want), "{spec:?}: {text}");
        }
    }
}
