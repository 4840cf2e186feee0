//! End to end without external services: a loopback feed → `FeedSource` → `NewsFetcherJob` →
//! in-memory repository and news-list cache → `NewsReader` (the `GET /news` body).
#![cfg(feature = "rss")]
#![allow(clippy::unwrap_used)]

use goldjobs_adapters::news::{FeedConfig, FeedSource, FeedSourceConfig};
use goldjobs_core::jobs::{NewsFetcherJob, NewsJobConfig};
use goldjobs_core::memory::{InMemoryNews, InMemoryNewsCache};
use goldjobs_core::news::NewsReader;
use goldjobs_core::runtime::{Job, JobContext};
use goldjobs_core::{NewsCache, NewsRepository, SystemClock};
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use wiremock::matchers::path;
use wiremock::{Mock, MockServer, ResponseTemplate};

fn rss(items: &[(&str, &str, &str)]) -> Vec<u8> {
    let mut s = String::from(r#"<rss version="2.0"><channel><title>T</title>"#);
    for (title, link, date) in items {
        s.push_str(&format!(
            "<item><title>{title}</title><link>{link}</link><pubDate>{date}</pubDate></item>"
        ));
    }
    s.push_str("</channel></rss>");
    s.into_bytes()
}

fn ctx() -> JobContext {
    JobContext {
        cancel: CancellationToken::new(),
        clock: Arc::new(SystemClock),
        attempt: 1,
    }
}

fn titles(body: &[u8]) -> Vec<String> {
    let v: serde_json::Value = serde_json::from_slice(body).unwrap();
    v["articles"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["title"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn list_is_served_from_cache_until_a_run_brings_new_articles() {
    let server = MockServer::start().await;
    let first = Mock::given(path("/gold.xml"))
        .respond_with(ResponseTemplate::new(200).set_body_raw(
            rss(&[(
                "Gold steady",
                "https://news.example/gold-steady?utm_source=rss",
                "Mon, 23 Nov 2026 09:00:00 GMT",
            )]),
            "application/rss+xml",
        ))
        .up_to_n_times(1)
        .mount_as_scoped(&server)
        .await;

    let source = Arc::new(
        FeedSource::new(
            vec![
                FeedConfig::new("gold", "Loopback", &format!("{}/gold.xml", server.uri())).unwrap(),
            ],
            FeedSourceConfig::default(),
        )
        .unwrap(),
    );
    let repo = Arc::new(InMemoryNews::new());
    let cache = Arc::new(InMemoryNewsCache::new());
    let job = NewsFetcherJob::new(
        &goldjobs_core::Ports::in_memory().with_news(repo.clone()),
        source,
        cache.clone(),
    )
    .with_config(NewsJobConfig::default());
    let reader = NewsReader::new(repo.clone(), cache.clone(), Duration::from_secs(300));

    let report = job.run(&ctx()).await.unwrap();
    assert!(
        report.summary.starts_with("fetched 1, new 1"),
        "{}",
        report.summary
    );

    let body = reader.list(Some("gold"), 20).await.unwrap();
    assert_eq!(titles(&body), ["Gold steady"]);
    let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
    let a = &v["articles"][0];
    assert_eq!(a["url"], "https://news.example/gold-steady?utm_source=rss");
    assert_eq!(a["source"], "Loopback");
    assert_eq!(a["category"], "gold");
    assert_eq!(a["published_at"], "2026-11-23T09:00:00Z");
    assert_eq!(a["related_symbols"], serde_json::json!(["XAUUSD"]));
    assert!(a["thumbnail_url"].is_null());
    assert_eq!(a["id"].as_str().unwrap().len(), 32);

    // the list is cached: an article stored behind the cache's back is not seen
    let mut sneaky: goldjobs_core::NewsArticle = serde_json::from_value(serde_json::json!({
        "id": "x", "title": "Behind the cache", "summary": "", "content": null,
        "url": "https://news.example/x", "canonical_url": "https://news.example/x",
        "source": "S", "category": "gold", "thumbnail_url": null,
        "published_at": "2026-11-24T00:00:00Z", "related_symbols": [],
        "created_at": "2026-11-24T00:00:00Z"
    }))
    .unwrap();
    assert_eq!(repo.insert_articles(&[sneaky.clone()]).await.unwrap(), 1);
    assert_eq!(reader.list(Some("gold"), 20).await.unwrap(), body);
    assert!(cache
        .get_list("stories:cat:gold:20")
        .await
        .unwrap()
        .is_some());

    // the feed now also has a newer article; the run stores it and invalidates the lists
    drop(first);
    Mock::given(path("/gold.xml"))
        .respond_with(ResponseTemplate::new(200).set_body_raw(
            rss(&[
                (
                    "Gold jumps",
                    "https://news.example/gold-jumps",
                    "Wed, 25 Nov 2026 09:00:00 GMT",
                ),
                (
                    "Gold steady",
                    "https://news.example/gold-steady?utm_medium=feed",
                    "Mon, 23 Nov 2026 09:00:00 GMT",
                ),
            ]),
            "application/rss+xml",
        ))
        .mount(&server)
        .await;
    let report = job.run(&ctx()).await.unwrap();
    assert!(
        report.summary.starts_with("fetched 2, new 1, duplicates 1"),
        "{}",
        report.summary
    );
    let fresh = reader.list(Some("gold"), 20).await.unwrap();
    assert_eq!(
        titles(&fresh),
        ["Gold jumps", "Behind the cache", "Gold steady"]
    );

    // a run with nothing new leaves the cache alone
    sneaky.canonical_url = "https://news.example/y".into();
    sneaky.id = "y".into();
    sneaky.title = "Also behind the cache".into();
    repo.insert_articles(&[sneaky]).await.unwrap();
    let report = job.run(&ctx()).await.unwrap();
    assert!(
        report.summary.starts_with("fetched 2, new 0"),
        "{}",
        report.summary
    );
    assert_eq!(reader.list(Some("gold"), 20).await.unwrap(), fresh);
    // other keys are cached separately
    assert_eq!(
        titles(&reader.list(Some("gold"), 3).await.unwrap()),
        ["Gold jumps", "Also behind the cache", "Behind the cache"]
    );
    assert_eq!(
        titles(&reader.list(Some("forex"), 20).await.unwrap()),
        Vec::<String>::new()
    );
}
