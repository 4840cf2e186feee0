//! Quality of story grouping on a labelled fixture: `tests/fixtures/stories.json` (synthetic
//! reports of one event by several publishers, hard negatives that share words with them, and
//! unrelated stories) plus every article of the real feeds in `tests/fixtures/feeds`, each a
//! story of its own and all moved into the same day, so the time window cannot separate them.
//!
//! Pairwise precision and recall (a pair is positive when both articles carry one label) at
//! the default threshold must reach 0.95 and 0.8; `--nocapture` prints them for a sweep of
//! thresholds (the figures in BENCHMARKS.md).

#![cfg(feature = "rss")]
#![allow(clippy::unwrap_used)]

use chrono::{DateTime, Utc};
use goldjobs_adapters::news::{parse_feed, FeedConfig};
use goldjobs_core::news::{article_id, StoryMatcher, DEFAULT_STORY_THRESHOLD};
use goldjobs_core::NewsArticle;
use serde::Deserialize;
use std::path::PathBuf;

#[derive(Deserialize)]
struct Fixture {
    articles: Vec<Labelled>,
}

#[derive(Deserialize)]
struct Labelled {
    story: String,
    source: String,
    title: String,
    summary: String,
    published_at: DateTime<Utc>,
}

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

/// The labelled articles, in publication order (the order a news job would meet them).
fn corpus() -> Vec<(String, NewsArticle)> {
    let raw = std::fs::read(fixtures().join("stories.json")).unwrap();
    let fixture: Fixture = serde_json::from_slice(&raw).unwrap();
    let mut out: Vec<(String, NewsArticle)> = fixture
        .articles
        .into_iter()
        .enumerate()
        .map(|(i, a)| {
            let url = format!(
                "https://{}.example/{i}",
                a.source.to_lowercase().replace(' ', "-")
            );
            (
                a.story,
                NewsArticle {
                    id: article_id(&url),
                    title: a.title,
                    summary: a.summary,
                    content: None,
                    url: url.clone(),
                    canonical_url: url,
                    source: a.source,
                    category: "gold".into(),
                    thumbnail_url: None,
                    published_at: a.published_at,
                    related_symbols: vec![],
                    created_at: a.published_at,
                    story_id: None,
                },
            )
        })
        .collect();
    let day: DateTime<Utc> = "2026-12-03T12:00:00Z".parse().unwrap();
    let mut files: Vec<_> = std::fs::read_dir(fixtures().join("feeds"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x != "md"))
        .collect();
    files.sort();
    for (n, file) in files.iter().enumerate() {
        let name = file.file_stem().unwrap().to_string_lossy().to_string();
        let feed = FeedConfig::new("markets", &name, "https://feeds.example/rss").unwrap();
        let Ok(parsed) = parse_feed(&std::fs::read(file).unwrap(), &feed, day) else {
            continue; // the deliberately broken fixture
        };
        for (i, mut a) in parsed.articles.into_iter().enumerate() {
            a.published_at = day + chrono::Duration::minutes((n * 7 + i) as i64);
            out.push((format!("real:{name}:{i}"), a));
        }
    }
    out.sort_by_key(|(_, a)| a.published_at);
    out
}

/// (precision, recall, true pairs, predicted pairs) of grouping at `threshold`.
fn score(corpus: &[(String, NewsArticle)], threshold: f32) -> (f64, f64, usize, usize) {
    let mut articles: Vec<NewsArticle> = corpus.iter().map(|(_, a)| a.clone()).collect();
    StoryMatcher::new()
        .with_threshold(threshold)
        .group_all(&mut articles);
    let (mut tp, mut fp, mut fneg) = (0usize, 0usize, 0usize);
    for i in 0..articles.len() {
        for j in i + 1..articles.len() {
            let truth = corpus[i].0 == corpus[j].0;
            let said = articles[i].story() == articles[j].story();
            match (truth, said) {
                (true, true) => tp += 1,
                (false, true) => fp += 1,
                (true, false) => fneg += 1,
                (false, false) => {}
            }
        }
    }
    let precision = if tp + fp == 0 {
        1.0
    } else {
        tp as f64 / (tp + fp) as f64
    };
    let recall = if tp + fneg == 0 {
        1.0
    } else {
        tp as f64 / (tp + fneg) as f64
    };
    (precision, recall, tp + fneg, tp + fp)
}

#[test]
fn grouping_precision_and_recall_on_the_labelled_fixture() {
    let corpus = corpus();
    let labels: std::collections::HashSet<&str> = corpus.iter().map(|(l, _)| l.as_str()).collect();
    eprintln!(
        "{} articles, {} stories ({} from the real feeds)",
        corpus.len(),
        labels.len(),
        corpus
            .iter()
            .filter(|(l, _)| l.starts_with("real:"))
            .count()
    );
    for t in [0.15, 0.2, 0.25, 0.3, 0.35, 0.4, 0.5, 0.6] {
        let (p, r, truth, said) = score(&corpus, t);
        eprintln!("threshold {t:.2}: precision {p:.3}, recall {r:.3} ({said} pairs grouped, {truth} true)");
    }
    let (p, r, _, _) = score(&corpus, DEFAULT_STORY_THRESHOLD);
    assert!(p >= 0.95, "precision {p:.3} at the default threshold");
    assert!(r >= 0.8, "recall {r:.3} at the default threshold");
}
