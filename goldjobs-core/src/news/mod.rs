//! News domain rules: canonical URLs, related symbols, deduplication, stable ids, plain text, feed
//! health and backoff ([`FeedHealth`]), and the read-through list cache behind `GET /news` ([`NewsReader`]).

mod canonical;
mod health;
mod reader;
mod story;
mod tagging;
mod text;

pub use canonical::{
    canonical_url, is_tracking_param, parse_link, TRACKING_PARAMS, TRACKING_PREFIXES,
};
pub use health::{
    feeds_body, FeedDirectory, FeedHealth, FeedOutcome, FeedStatus, FeedTransition, FEED_BACKOFF,
    MAX_RETRY_AFTER,
};
pub use reader::{
    list_body, list_cache_key, stories_body, story_list_cache_key, NewsReader, MAX_LIST_LIMIT,
    MAX_STORY_SOURCES,
};
pub use story::{
    within_window, StoryMatcher, StorySignature, DEFAULT_STORY_THRESHOLD, STORY_WINDOW,
    SUMMARY_CHARS,
};
pub use tagging::related_symbols;
pub use text::{html_to_text, plain_text, MAX_INPUT_BYTES, SUMMARY_MAX_CHARS, TITLE_MAX_CHARS};
pub use url::Url;

use crate::NewsArticle;
use std::collections::HashSet;

/// The stable id of an article: 32 lower-case hex digits of the 128-bit FNV-1a hash of its
/// canonical URL (or canonical key, see [`feed_entry_key`]).
///
/// Deterministic across processes, versions and machines (no random keys), so every instance
/// derives the same id for the same article.
pub fn article_id(canonical_url: &str) -> String {
    format!("{:032x}", fnv1a_128(canonical_url.as_bytes()))
}

/// The key under which a feed's health is stored: 32 hex digits of the 128-bit FNV-1a hash of
/// its full URL (so credentials or tokens in the URL are never stored or shown).
pub fn feed_key(feed_url: &str) -> String {
    format!("{:032x}", fnv1a_128(feed_url.as_bytes()))
}

/// The canonical key of an entry that has no usable link: `urn:goldjobs:feed:<h>:<guid>`, where
/// `<h>` is 16 hex digits of the 64-bit FNV-1a hash of the feed URL, so that a GUID only counts
/// within its feed. The GUID is trimmed; `None` when it is empty.
pub fn feed_entry_key(feed_url: &str, guid: &str) -> Option<String> {
    let guid = guid.trim();
    if guid.is_empty() {
        return None;
    }
    Some(format!(
        "urn:goldjobs:feed:{:016x}:{guid}",
        fnv1a_64(feed_url.trim().as_bytes())
    ))
}

/// Articles with distinct `canonical_url`s, keeping the first of each and the order.
pub fn dedupe(articles: Vec<NewsArticle>) -> Vec<NewsArticle> {
    let mut seen: HashSet<String> = HashSet::with_capacity(articles.len());
    articles
        .into_iter()
        .filter(|a| seen.insert(a.canonical_url.clone()))
        .collect()
}

fn fnv1a_64(bytes: &[u8]) -> u64 {
    const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    bytes
        .iter()
        .fold(OFFSET, |h, b| (h ^ u64::from(*b)).wrapping_mul(PRIME))
}

fn fnv1a_128(bytes: &[u8]) -> u128 {
    const OFFSET: u128 = 0x6c62_272e_07bb_0142_62b8_2175_6295_c58d;
    const PRIME: u128 = 0x0000_0000_0100_0000_0000_0000_0000_013b;
    bytes
        .iter()
        .fold(OFFSET, |h, b| (h ^ u128::from(*b)).wrapping_mul(PRIME))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use chrono::{TimeZone, Utc};

    pub(crate) fn article(canonical: &str, title: &str) -> NewsArticle {
        let t = Utc.with_ymd_and_hms(2026, 1, 2, 3, 4, 5).unwrap();
        NewsArticle {
            id: article_id(canonical),
            title: title.into(),
            summary: String::new(),
            content: None,
            url: canonical.into(),
            canonical_url: canonical.into(),
            source: "Test".into(),
            category: "gold".into(),
            thumbnail_url: None,
            published_at: t,
            related_symbols: vec![],
            created_at: t,
            story_id: None,
        }
    }

    #[test]
    fn fnv_reference_values() {
        // published FNV-1a test vectors
        assert_eq!(fnv1a_64(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a_64(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(fnv1a_64(b"foobar"), 0x8594_4171_f739_67e8);
        assert_eq!(fnv1a_128(b""), 0x6c62_272e_07bb_0142_62b8_2175_6295_c58d);
        assert_eq!(fnv1a_128(b"a"), 0xd228_cb69_6f1a_8caf_7891_2b70_4e4a_8964);
    }

    #[test]
    fn article_ids_are_stable_and_distinct() {
        let a = article_id("https://example.com/a");
        assert_eq!(a, article_id("https://example.com/a"));
        assert_eq!(a.len(), 32);
        assert!(a
            .chars()
            .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase()));
        assert_ne!(a, article_id("https://example.com/b"));
        // pinned: must never change between versions (ids are stored)
        assert_eq!(article_id(""), "6c62272e07bb014262b821756295c58d");
    }

    #[test]
    fn feed_entry_keys_are_scoped_to_the_feed() {
        let a = feed_entry_key("https://a.example/rss", "42").unwrap();
        let b = feed_entry_key("https://b.example/rss", "42").unwrap();
        assert_ne!(a, b);
        assert!(a.starts_with("urn:goldjobs:feed:"), "{a}");
        assert!(a.ends_with(":42"), "{a}");
        assert_eq!(
            a,
            feed_entry_key(" https://a.example/rss ", " 42 ").unwrap()
        );
        assert_eq!(feed_entry_key("https://a.example/rss", "  "), None);
    }

    #[test]
    fn dedupe_keeps_the_first_and_the_order() {
        let out = dedupe(vec![
            article("https://e.com/1", "first"),
            article("https://e.com/2", "two"),
            article("https://e.com/1", "second"),
            article("https://e.com/3", "three"),
            article("https://e.com/2", "dup"),
        ]);
        let titles: Vec<&str> = out.iter().map(|a| a.title.as_str()).collect();
        assert_eq!(titles, ["first", "two", "three"]);
        assert!(dedupe(vec![]).is_empty());
    }
}
