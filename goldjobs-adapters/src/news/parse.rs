//! Feed bytes → [`NewsArticle`]s, with feed-rs. Pure: no I/O, no clock.

use super::FeedConfig;
use chrono::{DateTime, Utc};
use feed_rs::model::{Entry, Feed, Text};
use goldjobs_core::news::{
    article_id, canonical_url, feed_entry_key, html_to_text, parse_link, plain_text,
    related_symbols, SUMMARY_MAX_CHARS, TITLE_MAX_CHARS,
};
use goldjobs_core::{Error, NewsArticle, Result};
use url::Url;

/// Backend name in errors.
const BACKEND: &str = "rss";

/// Title given to an entry that has neither a title nor any text.
const UNTITLED: &str = "(untitled)";

/// What [`parse_feed`] made of a feed document.
#[derive(Debug, Default)]
pub struct ParsedFeed {
    /// Articles, in the feed's order (not deduplicated).
    pub articles: Vec<NewsArticle>,
    /// Entries skipped because they had neither a usable link nor a GUID.
    pub skipped: usize,
}

/// Parse a feed document (RSS 0.9x/1.0/2.0, Atom or JSON Feed, any encoding feed-rs detects from
/// the bytes) of `feed`, fetched at `fetched_at`, into articles.
///
/// Relative links resolve against `xml:base` and the feed's URL. Each entry becomes an article:
/// - `url`: its link (`alternate` or unspecified relation first), or, without one, its GUID when
///   that is an http(s) URL; `canonical_url` and `id` derive from it
///   ([`canonical_url`], [`article_id`]);
/// - an entry with only a (non-URL) GUID gets the canonical key
///   `urn:goldjobs:feed:<hash of feed URL>:<guid>` ([`feed_entry_key`]) and, as `url`, the
///   feed's home page (or the feed URL); an entry with neither is skipped and counted;
/// - `title` and `summary` are plain text (tags stripped, entities decoded, bounded to 500 and
///   1,000 characters); the summary falls back to the content; `content` is the content as given;
/// - `thumbnail_url`: `media:thumbnail`, else an image `media:content` or enclosure, else an image
///   link;
/// - `published_at`: published, else updated, else `fetched_at`; never later than `fetched_at`
///   (a feed's clock or time zone mistake must not pin an article to the top of the list);
/// - `related_symbols` from title and summary; `created_at = fetched_at`.
///
/// A document that is not a feed (malformed, truncated, unknown format) is an
/// [`Error::Backend`] naming the feed.
pub fn parse_feed(
    bytes: &[u8],
    feed: &FeedConfig,
    fetched_at: DateTime<Utc>,
) -> Result<ParsedFeed> {
    parse_feed_at(bytes, feed, &feed.url, fetched_at)
}

/// [`parse_feed`] with an explicit base URL (the URL the document finally came from, after
/// redirects).
pub(crate) fn parse_feed_at(
    bytes: &[u8],
    feed: &FeedConfig,
    base: &Url,
    fetched_at: DateTime<Utc>,
) -> Result<ParsedFeed> {
    let parser = feed_rs::parser::Builder::new()
        .base_uri(Some(base.as_str()))
        // keep missing ids empty: feed-rs would otherwise invent random UUIDs
        .id_generator(|_, _, _| String::new())
        .build();
    // The XML stack under feed-rs panics on some malformed documents (found by the fuzz
    // campaign: an encoding declaration after the prefix was read); a hostile feed must fail
    // on its own, not take the news run down, so a panic becomes that feed's error.
    let parsed = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| parser.parse(bytes)))
        .map_err(|_| {
            Error::backend(
                BACKEND,
                format!(
                    "feed {:?} ({}): not a valid RSS, Atom or JSON feed (the parser gave up on it)",
                    feed.source_name, feed.url
                ),
                None,
            )
        })?;
    let parsed: Feed = parsed.map_err(|e| {
        Error::backend(
            BACKEND,
            format!(
                "feed {:?} ({}): not a valid RSS, Atom or JSON feed: {e}",
                feed.source_name, feed.url
            ),
            Some(Box::new(e) as goldjobs_core::BoxError),
        )
    })?;

    let home = parsed
        .links
        .iter()
        .filter(|l| is_page_link(l.rel.as_deref()))
        .find_map(|l| parse_link(&l.href, Some(base)).ok())
        .map_or_else(|| feed.url.to_string(), String::from);

    let mut out = ParsedFeed::default();
    for entry in &parsed.entries {
        match entry_to_article(entry, feed, base, &home, fetched_at) {
            Some(a) => out.articles.push(a),
            None => out.skipped += 1,
        }
    }
    Ok(out)
}

fn entry_to_article(
    entry: &Entry,
    feed: &FeedConfig,
    feed_base: &Url,
    home: &str,
    fetched_at: DateTime<Utc>,
) -> Option<NewsArticle> {
    let entry_base = entry
        .base
        .as_deref()
        .and_then(|b| feed_base.join(b).ok())
        .unwrap_or_else(|| feed_base.clone());
    let base = Some(&entry_base);
    let guid = entry.id.trim();

    // the article's link: a page link, else a GUID that is a URL
    let link = entry
        .links
        .iter()
        .filter(|l| is_page_link(l.rel.as_deref()))
        .chain(entry.links.iter().filter(|l| l.rel.is_some()))
        .filter(|l| !is_non_page_link(l.rel.as_deref()))
        .find_map(|l| parse_link(&l.href, base).ok())
        .or_else(|| {
            (guid.starts_with("http://") || guid.starts_with("https://"))
                .then(|| parse_link(guid, None).ok())
                .flatten()
        });

    let (url, canonical) = match link {
        Some(l) => {
            let canonical = canonical_url(l.as_str(), None).ok()?;
            (String::from(l), canonical)
        }
        None => (home.to_owned(), feed_entry_key(feed.url.as_str(), guid)?),
    };

    let title = entry
        .title
        .as_ref()
        .map(|t| text_of(t, TITLE_MAX_CHARS))
        .unwrap_or_default();
    let summary = entry
        .summary
        .as_ref()
        .map(|t| text_of(t, SUMMARY_MAX_CHARS))
        .filter(|s| !s.is_empty())
        .or_else(|| {
            entry
                .content
                .as_ref()
                .and_then(|c| c.body.as_deref())
                .map(|b| html_to_text(b, SUMMARY_MAX_CHARS))
        })
        .unwrap_or_default();
    let title = if title.is_empty() {
        if summary.is_empty() {
            UNTITLED.to_owned()
        } else {
            plain_text(&summary, 120)
        }
    } else {
        title
    };
    let content = entry
        .content
        .as_ref()
        .and_then(|c| c.body.clone())
        .filter(|b| !b.trim().is_empty());
    let published_at = entry
        .published
        .or(entry.updated)
        .unwrap_or(fetched_at)
        .min(fetched_at);
    let related = related_symbols(&format!("{title}\n{summary}"));

    Some(NewsArticle {
        id: article_id(&canonical),
        title,
        summary,
        content,
        url,
        canonical_url: canonical,
        source: feed.source_name.clone(),
        category: feed.category.clone(),
        thumbnail_url: thumbnail(entry, &entry_base),
        published_at,
        related_symbols: related,
        created_at: fetched_at,
        story_id: None,
    })
}

/// Plain text of a feed text construct.
///
/// Always read as HTML, also when feed-rs says `text/plain`: RSS descriptions are by convention
/// entity-escaped HTML (`&lt;q&gt;`) whatever they declare, and reading real plain text as HTML
/// only costs its tag-like runs (`a < b` is kept).
fn text_of(t: &Text, max: usize) -> String {
    html_to_text(&t.content, max)
}

/// A link to the article's page: no relation or `alternate`.
fn is_page_link(rel: Option<&str>) -> bool {
    rel.is_none_or(|r| r.eq_ignore_ascii_case("alternate"))
}

/// Links that are never the article's page.
fn is_non_page_link(rel: Option<&str>) -> bool {
    rel.is_some_and(|r| {
        [
            "enclosure",
            "self",
            "replies",
            "edit",
            "via",
            "related",
            "license",
            "hub",
        ]
        .iter()
        .any(|x| r.eq_ignore_ascii_case(x))
    })
}

fn is_image(mime: Option<&str>, url: &str) -> bool {
    match mime {
        Some(m) => m.to_ascii_lowercase().starts_with("image/"),
        None => {
            let path = url.split(['?', '#']).next().unwrap_or_default();
            let lower = path.to_ascii_lowercase();
            [".jpg", ".jpeg", ".png", ".gif", ".webp", ".avif"]
                .iter()
                .any(|ext| lower.ends_with(ext))
        }
    }
}

/// The entry's thumbnail: `media:thumbnail`, else an image `media:content`/enclosure, else an
/// image link. Only http(s) URLs.
fn thumbnail(entry: &Entry, base: &Url) -> Option<String> {
    let ok = |u: &str| parse_link(u, Some(base)).ok().map(String::from);
    entry
        .media
        .iter()
        .flat_map(|m| m.thumbnails.iter())
        .find_map(|t| ok(&t.image.uri))
        .or_else(|| {
            entry
                .media
                .iter()
                .flat_map(|m| m.content.iter())
                .filter_map(|c| {
                    let url = c.url.as_ref()?;
                    let mime = c.content_type.as_ref().map(|m| m.to_string());
                    is_image(mime.as_deref(), url.as_str()).then(|| url.as_str())
                })
                .find_map(ok)
        })
        .or_else(|| {
            entry
                .links
                .iter()
                .filter(|l| {
                    l.media_type
                        .as_deref()
                        .is_some_and(|m| m.to_ascii_lowercase().starts_with("image/"))
                })
                .find_map(|l| ok(&l.href))
        })
        .or_else(|| {
            // the first `<img src>` of the summary or content HTML
            entry
                .summary
                .iter()
                .map(|t| t.content.as_str())
                .chain(entry.content.iter().filter_map(|c| c.body.as_deref()))
                .filter_map(first_img_src)
                .find_map(|u| ok(&u))
        })
}

/// The `src` of the first `<img>` tag in an HTML fragment (entities `&amp;` decoded).
fn first_img_src(html: &str) -> Option<String> {
    let lower = html.to_ascii_lowercase();
    let mut from = 0;
    while let Some(i) = lower[from..].find("<img") {
        let start = from + i + 4;
        let end = lower[start..].find('>').map_or(lower.len(), |e| start + e);
        let tag = &html[start..end];
        let tag_lower = &lower[start..end];
        let mut search = 0;
        while let Some(j) = tag_lower[search..].find("src") {
            let at = search + j;
            let before_ok = at == 0
                || tag_lower[..at]
                    .chars()
                    .next_back()
                    .is_some_and(char::is_whitespace);
            let rest = tag[at + 3..].trim_start();
            if before_ok {
                if let Some(value) = rest.strip_prefix('=') {
                    let value = value.trim_start();
                    let v = match value.chars().next() {
                        Some(q @ ('"' | '\'')) => value[1..].split(q).next(),
                        Some(_) => value.split(|c: char| c.is_whitespace() || c == '>').next(),
                        None => None,
                    };
                    if let Some(v) = v.map(str::trim).filter(|v| !v.is_empty()) {
                        return Some(v.replace("&amp;", "&"));
                    }
                }
            }
            search = at + 3;
        }
        from = end;
    }
    None
}
