//! Cost of story grouping per article (`goldjobs::news::StoryMatcher`), against the baseline of
//! the news job before stories: deduplication by canonical URL only.
//!
//! ```text
//! cargo bench --bench stories -- --warm-up-time 1 --measurement-time 3
//! ```
//!
//! `signature` is one article's MinHash (title + lede); `assign/100_new_vs_1000_stored` is what
//! a news run does when 100 new articles arrive and 1,000 stored ones lie within the window
//! (every stored one is signed again each run, so this is the whole cost of a run);
//! `dedupe/100` is the canonical-URL deduplication every run already did.
#![allow(missing_docs, clippy::unwrap_used)]

use std::hint::black_box;

use chrono::{Duration, TimeZone, Utc};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use goldjobs::news::{dedupe, StoryMatcher};
use goldjobs::NewsArticle;

const WORDS: &[&str] = &[
    "gold",
    "silver",
    "dollar",
    "fed",
    "rate",
    "cut",
    "record",
    "ounce",
    "yields",
    "treasury",
    "inflation",
    "euro",
    "yen",
    "ecb",
    "payrolls",
    "futures",
    "bullion",
    "demand",
    "china",
    "central",
    "bank",
    "prices",
    "rally",
    "slump",
    "traders",
    "week",
    "high",
    "low",
    "data",
];

fn article(n: usize) -> NewsArticle {
    let word = |k: usize| WORDS[(n * 7 + k * 13) % WORDS.len()];
    let title = (0..9).map(word).collect::<Vec<_>>().join(" ");
    let summary = (0..40).map(|k| word(k + 9)).collect::<Vec<_>>().join(" ");
    let url = format!("https://source{}.example/{n}", n % 5);
    let t = Utc.with_ymd_and_hms(2026, 12, 3, 0, 0, 0).unwrap() + Duration::seconds(n as i64);
    NewsArticle {
        id: format!("{n}"),
        title,
        summary,
        content: None,
        url: url.clone(),
        canonical_url: url,
        source: format!("Source {}", n % 5),
        category: "gold".into(),
        thumbnail_url: None,
        published_at: t,
        related_symbols: vec![],
        created_at: t,
        story_id: None,
    }
}

fn stories(c: &mut Criterion) {
    let m = StoryMatcher::new();
    let one = article(1);
    let mut g = c.benchmark_group("stories");
    g.throughput(Throughput::Elements(1));
    g.bench_function("signature", |b| b.iter(|| m.signature(black_box(&one))));
    let stored: Vec<NewsArticle> = (0..1000).map(article).collect();
    let new: Vec<NewsArticle> = (1000..1100).map(article).collect();
    g.throughput(Throughput::Elements(100));
    g.bench_function("assign/100_new_vs_1000_stored", |b| {
        b.iter(|| {
            let mut batch = new.clone();
            m.assign(black_box(&stored), &mut batch)
        })
    });
    g.bench_function("dedupe/100", |b| b.iter(|| dedupe(black_box(new.clone()))));
    g.finish();
}

criterion_group!(benches, stories);
criterion_main!(benches);
