//! Stories: articles about the same event from different sources, found by near-duplicate
//! detection on the normalized title and summary.
//!
//! Each article gets a MinHash signature (the [`txtfp`] crate: NFKC and case folding, then
//! 128 min-hashes) over its words without stop words, as single words and as pairs of
//! neighbours (so "gold falls as dollar rises" and "gold rises as dollar falls" differ). Two
//! articles belong to one story when they come from different sources, were published within
//! [`STORY_WINDOW`] of each other, and the estimated Jaccard similarity of their signatures is
//! at least the threshold ([`DEFAULT_STORY_THRESHOLD`], tuned on a labelled fixture; the
//! figures are in BENCHMARKS.md). Articles of one source are never grouped: a publisher's
//! recurring columns ("Gold price today, December 4") look alike but are different stories.

use crate::NewsArticle;
use chrono::{DateTime, Duration, Utc};
use std::borrow::Cow;
use std::collections::HashSet;
use txtfp::{Canonicalizer, Fingerprinter, MinHashFingerprinter, Tokenizer, WordTokenizer};

/// Min-hashes per signature.
const HASHES: usize = 128;

/// How far apart in publication time two articles of one story may be.
pub const STORY_WINDOW: Duration = Duration::hours(36);

/// The similarity from which two articles are one story.
pub const DEFAULT_STORY_THRESHOLD: f32 = 0.3;

/// Characters of the summary taken into the signature (a lede, not the whole text: long
/// summaries differ between publishers more than their first sentences do).
pub const SUMMARY_CHARS: usize = 400;

/// English words that say nothing about which story it is.
const STOP_WORDS: &[&str] = &[
    "a", "about", "after", "against", "ahead", "all", "also", "amid", "an", "and", "are", "as",
    "at", "be", "been", "before", "being", "but", "by", "can", "could", "did", "do", "does", "for",
    "from", "had", "has", "have", "he", "her", "his", "how", "i", "if", "in", "into", "is", "it",
    "its", "it's", "may", "more", "most", "new", "news", "not", "now", "of", "on", "one", "or",
    "our", "out", "over", "said", "says", "she", "so", "some", "than", "that", "the", "their",
    "them", "then", "there", "these", "they", "this", "those", "to", "up", "was", "we", "were",
    "what", "when", "where", "which", "while", "who", "why", "will", "with", "would", "you",
    "your",
];

/// Words of a headline or lede without stop words, each alone and with its neighbour.
#[derive(Debug, Default, Clone, Copy)]
struct StoryTokens;

impl Tokenizer for StoryTokens {
    fn tokens<'a>(&'a self, input: &'a str) -> txtfp::tokenize::TokenStream<'a> {
        let mut words: Vec<String> = Vec::new();
        WordTokenizer.for_each_token(input, &mut |w| {
            if !STOP_WORDS.contains(&w) {
                words.push(w.to_owned());
            }
        });
        let mut tokens = Vec::with_capacity(words.len() * 2);
        for pair in words.windows(2) {
            tokens.push(format!("{} {}", pair[0], pair[1]));
        }
        tokens.extend(words);
        txtfp::tokenize::TokenStream::Owned(Box::new(tokens.into_iter()))
    }

    fn name(&self) -> Cow<'static, str> {
        Cow::Borrowed("goldjobs-story-words-1-2")
    }
}

/// The signature of one article.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StorySignature(txtfp::MinHashSig<HASHES>);

/// Groups articles into stories: MinHash signatures of title and lede, compared only across different sources within [`STORY_WINDOW`].
#[derive(Debug)]
pub struct StoryMatcher {
    fingerprinter: MinHashFingerprinter<StoryTokens, HASHES>,
    threshold: f32,
    window: Duration,
}

impl Default for StoryMatcher {
    fn default() -> Self {
        Self::new()
    }
}

impl StoryMatcher {
    /// A matcher with [`DEFAULT_STORY_THRESHOLD`] and [`STORY_WINDOW`].
    pub fn new() -> Self {
        StoryMatcher {
            fingerprinter: MinHashFingerprinter::new(Canonicalizer::default(), StoryTokens),
            threshold: DEFAULT_STORY_THRESHOLD,
            window: STORY_WINDOW,
        }
    }

    /// Use this similarity threshold (clamped to 0..=1).
    pub fn with_threshold(mut self, threshold: f32) -> Self {
        self.threshold = if threshold.is_nan() {
            DEFAULT_STORY_THRESHOLD
        } else {
            threshold.clamp(0.0, 1.0)
        };
        self
    }

    /// The similarity threshold.
    pub fn threshold(&self) -> f32 {
        self.threshold
    }

    /// The signature of an article's title and the start of its summary; `None` when they
    /// have no word that is not a stop word.
    pub fn signature(&self, article: &NewsArticle) -> Option<StorySignature> {
        let lede: String = article.summary.chars().take(SUMMARY_CHARS).collect();
        let text = format!("{}\n{}", article.title, lede);
        self.fingerprinter
            .fingerprint(&text)
            .ok()
            .map(StorySignature)
    }

    /// The estimated Jaccard similarity of two signatures (0 to 1).
    pub fn similarity(a: &StorySignature, b: &StorySignature) -> f32 {
        txtfp::jaccard(&a.0, &b.0)
    }

    /// Whether two articles (with their signatures) are one story.
    fn same_story(
        &self,
        a: &NewsArticle,
        sa: &StorySignature,
        b: &NewsArticle,
        sb: &StorySignature,
    ) -> Option<f32> {
        if a.source == b.source || a.canonical_url == b.canonical_url {
            return None;
        }
        let apart = (a.published_at - b.published_at).abs();
        if apart > self.window {
            return None;
        }
        let s = Self::similarity(sa, sb);
        (s >= self.threshold).then_some(s)
    }

    /// Set the `story_id` of each article of `batch` that is not stored yet: the story of the
    /// most similar article among `recent` (stored ones) and the batch's earlier articles, or
    /// `None` (a story of its own). Articles whose canonical URL is among `recent` keep theirs
    /// (the store keeps a stored article's story). Returns how many joined a story.
    pub fn assign(&self, recent: &[NewsArticle], batch: &mut [NewsArticle]) -> usize {
        let known: HashSet<&str> = recent.iter().map(|a| a.canonical_url.as_str()).collect();
        let mut pool: Vec<(NewsArticle, StorySignature)> = recent
            .iter()
            .filter_map(|a| self.signature(a).map(|s| (a.clone(), s)))
            .collect();
        let mut joined = 0;
        for article in batch.iter_mut() {
            if known.contains(article.canonical_url.as_str()) {
                continue;
            }
            let Some(sig) = self.signature(article) else {
                continue;
            };
            let best = pool
                .iter()
                .filter_map(|(other, other_sig)| {
                    self.same_story(article, &sig, other, other_sig)
                        .map(|s| (s, other))
                })
                .max_by(|x, y| x.0.total_cmp(&y.0));
            article.story_id = best.map(|(_, other)| other.story().to_owned());
            if article.story_id.is_some() {
                joined += 1;
            }
            pool.push((article.clone(), sig));
        }
        joined
    }

    /// Group `articles` among themselves (as if stored one by one in this order): each gets
    /// the story id it would get from [`assign`](Self::assign). For tests and figures.
    pub fn group_all(&self, articles: &mut [NewsArticle]) -> usize {
        self.assign(&[], articles)
    }
}

/// Articles published since `now − STORY_WINDOW` among `latest` (newest first), the ones a new
/// article may join.
pub fn within_window(latest: Vec<NewsArticle>, now: DateTime<Utc>) -> Vec<NewsArticle> {
    let since = now - STORY_WINDOW;
    latest
        .into_iter()
        .filter(|a| a.published_at >= since)
        .collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn art(id: &str, source: &str, title: &str, summary: &str, hour: u32) -> NewsArticle {
        let t = Utc.with_ymd_and_hms(2026, 12, 3, hour, 0, 0).unwrap();
        NewsArticle {
            id: id.into(),
            title: title.into(),
            summary: summary.into(),
            content: None,
            url: format!("https://{source}.example/{id}"),
            canonical_url: format!("https://{source}.example/{id}"),
            source: source.into(),
            category: "gold".into(),
            thumbnail_url: None,
            published_at: t,
            related_symbols: vec![],
            created_at: t,
            story_id: None,
        }
    }

    #[test]
    fn one_story_from_several_sources_and_different_stories_apart() {
        let m = StoryMatcher::new();
        let mut batch = vec![
            art("r1", "reuters", "Gold hits record $2,790 as Fed rate cut bets grow",
                "Spot gold rose 1.2% to a record $2,790.15 an ounce on Tuesday as traders raised bets on a Federal Reserve rate cut in December.", 10),
            art("k1", "kitco", "Gold sets record near $2,790 on Fed rate cut bets",
                "Spot gold climbed 1.2% to a record $2,790.15 an ounce on Tuesday as bets on a December Federal Reserve rate cut grew.", 11),
            art("m1", "marketwatch", "Gold falls as dollar firms after jobs data",
                "Gold futures slipped 0.8% on Tuesday as the dollar firmed after stronger than expected US payrolls.", 12),
            art("r2", "reuters", "Gold hits record $2,790 as Fed rate cut bets grow",
                "Spot gold rose 1.2% to a record $2,790.15 an ounce on Tuesday.", 13),
        ];
        let joined = m.group_all(&mut batch);
        assert_eq!(
            batch[1].story_id.as_deref(),
            Some("r1"),
            "kitco joins reuters"
        );
        assert_eq!(batch[2].story_id, None, "a different event");
        // same source: never grouped with its own article, but with kitco's (whose story is r1)
        assert_eq!(batch[3].story_id.as_deref(), Some("r1"));
        assert_eq!(joined, 2);
    }

    #[test]
    fn stored_articles_keep_their_story_and_the_window_bounds_it() {
        let m = StoryMatcher::new();
        let mut stored = art(
            "r1",
            "reuters",
            "Gold hits record $2,790 as Fed rate cut bets grow",
            "Spot gold rose 1.2% to a record $2,790.15 an ounce.",
            0,
        );
        stored.story_id = Some("s0".into());
        let mut late = art(
            "k1",
            "kitco",
            "Gold hits record $2,790 as Fed rate cut bets grow",
            "Spot gold rose 1.2% to a record $2,790.15 an ounce.",
            0,
        );
        late.published_at = stored.published_at + Duration::hours(40);
        let mut again = stored.clone();
        again.story_id = None;
        let mut batch = vec![again, late];
        assert_eq!(m.assign(std::slice::from_ref(&stored), &mut batch), 0);
        assert_eq!(batch[0].story_id, None, "left to the store, which keeps s0");
        assert_eq!(batch[1].story_id, None, "outside the window");
        let mut near = batch[1].clone();
        near.published_at = stored.published_at + Duration::hours(2);
        let mut batch = vec![near];
        assert_eq!(m.assign(std::slice::from_ref(&stored), &mut batch), 1);
        assert_eq!(
            batch[0].story_id.as_deref(),
            Some("s0"),
            "joins the stored story"
        );
    }

    #[test]
    fn word_order_and_empty_text() {
        let m = StoryMatcher::new();
        let a = m
            .signature(&art("a", "x", "Gold falls as dollar rises", "", 0))
            .unwrap();
        let b = m
            .signature(&art("b", "y", "Gold rises as dollar falls", "", 0))
            .unwrap();
        let s = StoryMatcher::similarity(&a, &b);
        assert!(s < 0.6, "neighbours tell the order apart: {s}");
        assert!(m.signature(&art("c", "x", "the of and", "", 0)).is_none());
        assert!(m.signature(&art("d", "x", "", "", 0)).is_none());
    }
}
