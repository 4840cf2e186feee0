//! News storage on PostgreSQL: the goldjobs way (dedupe the batch, then ONE set-based
//! `NewsRepository::insert_articles`) against the seed's row-at-a-time shape (per article one
//! `SELECT EXISTS(… WHERE url = $1)` and one `INSERT` when absent), same process, same data.
//!
//! ```text
//! cargo run --release -p goldjobs-adapters --example news_dedup_bench --features postgres,sqlite \
//!   -- [--database-url postgres://postgres@127.0.0.1:5432/test] [--articles 10000] [--runs 3]
//! ```
//!
//! The URL is `--database-url`, else `GOLDJOBS_TEST_DATABASE_URL`, else
//! `postgres://postgres@127.0.0.1:5432/test`. Everything runs in a fresh schema
//! (`news_bench_<random>`), dropped at the end.
//!
//! Data: `--articles` (10,000) articles with distinct canonical URLs; before every run the table is
//! emptied and the first half of them is stored (so half of the batch is already known). Each run
//! must end with every article stored exactly once: the stored row count and a digest of the
//! stored canonical URLs are compared across all runs.
//!
//! Two baselines are timed, both of the seed's shape (2 round trips per new article, 1 per known
//! one, each statement its own transaction):
//! - `row-at-a-time (url)`: the seed's query as it was, `WHERE url = $1` — in the goldjobs schema
//!   `url` has no index, so every probe also scans the table;
//! - `row-at-a-time (canonical)`: the same loop probing the indexed `canonical_url`, which
//!   isolates the cost of the round trips and commits. The speedup goal (≥ 20×) is checked against
//!   this fairer baseline.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use chrono::{DateTime, Duration as ChronoDuration, TimeZone, Utc};
use goldjobs_adapters::sql::PgStore;
use goldjobs_core::news::{article_id, dedupe};
use goldjobs_core::{NewsArticle, NewsRepository};
use sqlx::postgres::PgPoolOptions;
use sqlx::{Executor, PgPool, Row};
use std::time::{Duration, Instant};

struct Args {
    url: String,
    articles: usize,
    runs: usize,
}

fn usage() -> ! {
    eprintln!("usage: news_dedup_bench [--database-url URL] [--articles N] [--runs N]");
    std::process::exit(2)
}

fn parse_args() -> Args {
    let mut args = Args {
        url: std::env::var("GOLDJOBS_TEST_DATABASE_URL")
            .ok()
            .filter(|u| !u.trim().is_empty())
            .unwrap_or_else(|| "postgres://postgres@127.0.0.1:5432/test".to_owned()),
        articles: 10_000,
        runs: 3,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it.next().unwrap_or_else(|| usage());
        match flag.as_str() {
            "--database-url" => args.url = value,
            "--articles" => args.articles = value.parse().unwrap_or_else(|_| usage()),
            "--runs" => args.runs = value.parse().unwrap_or_else(|_| usage()),
            _ => usage(),
        }
    }
    if args.articles < 2 || args.runs == 0 {
        usage();
    }
    args
}

/// Feed-like articles: distinct canonical URLs, realistic field sizes.
fn articles(n: usize) -> Vec<NewsArticle> {
    let t0: DateTime<Utc> = Utc.with_ymd_and_hms(2026, 11, 1, 0, 0, 0).unwrap();
    let categories = ["gold", "silver", "forex", "markets"];
    let symbols = ["XAUUSD", "XAGUSD", "EURUSD", "GBPUSD", "USDJPY", "BTCUSD"];
    (0..n)
        .map(|i| {
            let canonical_url = format!("https://news.example.com/markets/2026/11/story-{i:06}");
            NewsArticle {
                id: article_id(&canonical_url),
                title: format!("Gold steadies as traders weigh rate outlook, story {i}"),
                summary: "Spot gold held near record levels on Thursday as investors weighed the \
                          outlook for interest rates and central-bank demand, while the dollar \
                          edged lower against a basket of currencies."
                    .to_owned(),
                content: (i % 4 == 0).then(|| "Full text of the article. ".repeat(20)),
                url: format!("{canonical_url}?utm_source=rss"),
                canonical_url,
                source: "Example Wire".to_owned(),
                category: categories[i % categories.len()].to_owned(),
                thumbnail_url: (i % 2 == 0)
                    .then(|| format!("https://img.example.com/thumbs/{i:06}.jpg")),
                published_at: t0 + ChronoDuration::seconds(i as i64 * 37),
                related_symbols: vec![symbols[i % symbols.len()].to_owned()],
                created_at: t0 + ChronoDuration::days(30),
                story_id: None,
            }
        })
        .collect()
}

/// Empty the table and store the first half of `all` (one set-based call, not timed).
async fn reset(store: &PgStore, all: &[NewsArticle]) {
    store
        .pool()
        .execute("TRUNCATE news_articles")
        .await
        .unwrap();
    let half = &all[..all.len() / 2];
    let stored = store.insert_articles(half).await.unwrap();
    assert_eq!(stored as usize, half.len());
}

/// Row count and an md5 digest of the sorted canonical URLs.
async fn fingerprint(pool: &PgPool) -> (i64, String) {
    let row = sqlx::query(
        "SELECT count(*) AS n, \
         md5(coalesce(string_agg(canonical_url || '|' || id, ',' ORDER BY canonical_url), '')) AS d \
         FROM news_articles",
    )
    .fetch_one(pool)
    .await
    .unwrap();
    (row.get("n"), row.get("d"))
}

/// (a) goldjobs: dedupe within the batch, then ONE `insert_articles` call.
async fn set_based(store: &PgStore, batch: &[NewsArticle]) -> u64 {
    let batch = dedupe(batch.to_vec());
    store.insert_articles(&batch).await.unwrap()
}

/// (b) the seed's shape: per article one existence probe, one INSERT when absent.
async fn row_at_a_time(pool: &PgPool, batch: &[NewsArticle], probe_column: &str) -> u64 {
    let probe = format!("SELECT EXISTS(SELECT 1 FROM news_articles WHERE {probe_column} = $1)");
    let mut inserted = 0;
    for a in batch {
        let key = if probe_column == "url" {
            &a.url
        } else {
            &a.canonical_url
        };
        let exists: bool = sqlx::query_scalar(&probe)
            .bind(key)
            .fetch_one(pool)
            .await
            .unwrap();
        if exists {
            continue;
        }
        sqlx::query(
            "INSERT INTO news_articles (id, title, summary, content, url, canonical_url, source, \
             category, thumbnail_url, published_at, related_symbols, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
        )
        .bind(&a.id)
        .bind(&a.title)
        .bind(&a.summary)
        .bind(&a.content)
        .bind(&a.url)
        .bind(&a.canonical_url)
        .bind(&a.source)
        .bind(&a.category)
        .bind(&a.thumbnail_url)
        .bind(a.published_at)
        .bind(&a.related_symbols)
        .bind(a.created_at)
        .execute(pool)
        .await
        .unwrap();
        inserted += 1;
    }
    inserted
}

fn line(method: &str, n: usize, inserted: u64, took: Duration) -> f64 {
    let rate = n as f64 / took.as_secs_f64();
    println!(
        "{method:<26} {n:>9} {inserted:>9} {:>10.3} {rate:>13.0}",
        took.as_secs_f64()
    );
    rate
}

#[tokio::main]
async fn main() {
    let args = parse_args();
    let admin = PgPoolOptions::new()
        .max_connections(1)
        .connect(&args.url)
        .await
        .unwrap_or_else(|e| panic!("cannot connect to PostgreSQL: {e}"));
    let schema = format!("news_bench_{:016x}", rand::random::<u64>());
    admin
        .execute(format!("CREATE SCHEMA {schema}").as_str())
        .await
        .unwrap();
    let path = schema.clone();
    let pool = PgPoolOptions::new()
        .max_connections(2)
        .after_connect(move |conn, _| {
            let sql = format!("SET search_path TO {path}");
            Box::pin(async move {
                conn.execute(sql.as_str()).await?;
                Ok(())
            })
        })
        .connect(&args.url)
        .await
        .unwrap();
    let store = PgStore::new(pool.clone());
    store.migrate().await.unwrap();

    let all = articles(args.articles);
    let n = all.len();
    let new = (n - n / 2) as u64;
    let version: String = sqlx::query_scalar("SHOW server_version")
        .fetch_one(&pool)
        .await
        .unwrap();
    println!(
        "PostgreSQL {version}, schema {schema}: {n} articles per run, {} already stored, {new} new",
        n / 2
    );
    println!(
        "{:<26} {:>9} {:>9} {:>10} {:>13}",
        "method", "articles", "inserted", "seconds", "articles/s"
    );

    // (a) set-based, `runs` times; the median counts.
    let mut fast = Vec::with_capacity(args.runs);
    let mut expected = None;
    for _ in 0..args.runs {
        reset(&store, &all).await;
        let started = Instant::now();
        let inserted = set_based(&store, &all).await;
        let took = started.elapsed();
        assert_eq!(inserted, new, "set-based inserted the wrong number");
        line("set-based (goldjobs)", n, inserted, took);
        fast.push(took);
        let fp = fingerprint(&pool).await;
        assert_eq!(*expected.get_or_insert(fp.clone()), fp);
    }
    fast.sort();
    let fast = fast[fast.len() / 2];

    // (b) the seed's loop, once per probe column.
    let mut slow = Vec::new();
    for (label, column) in [
        ("row-at-a-time (canonical)", "canonical_url"),
        ("row-at-a-time (url)", "url"),
    ] {
        reset(&store, &all).await;
        let started = Instant::now();
        let inserted = row_at_a_time(&pool, &all, column).await;
        let took = started.elapsed();
        assert_eq!(inserted, new, "{label} inserted the wrong number");
        line(label, n, inserted, took);
        slow.push((label, took));
        let fp = fingerprint(&pool).await;
        assert_eq!(
            expected.as_ref(),
            Some(&fp),
            "{label} stored different rows than set-based"
        );
    }

    let (rows, digest) = expected.unwrap_or_default();
    println!("every run ended with {rows} stored rows (digest {digest})");
    println!(
        "set-based median {:.3} s = {:.0} articles/s",
        fast.as_secs_f64(),
        n as f64 / fast.as_secs_f64()
    );
    for (label, took) in &slow {
        println!(
            "speedup vs {label}: {:.1}x",
            took.as_secs_f64() / fast.as_secs_f64()
        );
    }

    pool.close().await;
    admin
        .execute(format!("DROP SCHEMA {schema} CASCADE").as_str())
        .await
        .unwrap();
}
