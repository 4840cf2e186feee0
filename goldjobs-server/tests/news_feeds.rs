//! News end to end on SQLite and PostgreSQL: the real server (in-process) fetches three feeds
//! from a loopback HTTP server — two publishers reporting the same story, one answering `429`
//! with `Retry-After` — then `GET /news` shows one entry per story with its `sources`,
//! `?group=false` every article, `GET /news/feeds` each feed's health, and `/metrics` the
//! per-feed counters and gauges; every answer is checked against the OpenAPI document.

#![allow(clippy::unwrap_used)]

mod common_multi;

use common_multi::{service_url, Schema};
use goldjobs_server::app::{self, AppOptions};
use goldjobs_server::config::Config;
use goldjobs_server::openapi::{check, response_schema};
use serde_json::Value;
use std::collections::HashMap;
use std::time::Duration;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

const TOKEN: &str = "news-test-token";

fn rss(items: &[(&str, &str, &str)]) -> String {
    let mut s = String::from(
        r#"<?xml version="1.0" encoding="UTF-8"?><rss version="2.0"><channel><title>T</title><link>https://news.example/</link>"#,
    );
    for (title, link, summary) in items {
        s.push_str(&format!(
            "<item><title>{title}</title><link>{link}</link><pubDate>Thu, 03 Dec 2026 10:00:00 GMT</pubDate><description>{summary}</description></item>"
        ));
    }
    s.push_str("</channel></rss>");
    s
}

async fn feeds_server() -> MockServer {
    let server = MockServer::start().await;
    let wire = "Spot gold rose 1.2% to a record $2,790.15 an ounce on Tuesday as traders raised bets on a Federal Reserve rate cut in December.";
    Mock::given(method("GET"))
        .and(path("/reuters.xml"))
        .respond_with(ResponseTemplate::new(200).set_body_raw(
            rss(&[
                ("Gold hits record $2,790 as Fed rate cut bets grow", "https://reuters.example/gold-record", wire),
                ("Yen slides to three-month low against the dollar", "https://reuters.example/yen", "The yen fell 0.6% to 154.20 per dollar after the Bank of Japan kept policy unchanged."),
            ]),
            "application/rss+xml",
        ))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/kitco.xml"))
        .respond_with(ResponseTemplate::new(200).set_body_raw(
            rss(&[(
                "Gold sets record near $2,790 on Fed rate cut bets",
                "https://kitco.example/news/gold-record?utm_source=rss",
                wire,
            )]),
            "application/rss+xml",
        ))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/limited.xml"))
        .respond_with(ResponseTemplate::new(429).insert_header("Retry-After", "3600"))
        .mount(&server)
        .await;
    server
}

fn conform(documented: &str, body: &Value) {
    let schema = response_schema("get", documented, 200).unwrap();
    let problems = check(schema, body);
    assert!(problems.is_empty(), "{documented}: {problems:?}\n{body}");
}

async fn run_news(database_url: &str) {
    let feeds = feeds_server().await;
    let uri = feeds.uri();
    let env: HashMap<String, String> = [
        ("GOLDJOBS_LISTEN", "127.0.0.1:0".to_owned()),
        ("DATABASE_URL", database_url.to_owned()),
        (
            "GOLDJOBS_NEWS_FEEDS",
            format!(
                "gold|Reuters|{uri}/reuters.xml;gold|Kitco|{uri}/kitco.xml?key=s3cret;markets|Limited|{uri}/limited.xml"
            ),
        ),
        ("GOLDJOBS_NEWS_INTERVAL", "1h".to_owned()),
        ("GOLDJOBS_PRICE_INTERVAL", "1h".to_owned()),
        ("GOLDJOBS_VERIFY_INTERVAL", "1h".to_owned()),
        ("GOLDJOBS_ADMIN_TOKEN", TOKEN.to_owned()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    let cfg = Config::from_sources(None, &env).unwrap();
    let app = app::start(cfg, AppOptions::default()).await.unwrap();
    let base = format!("http://{}", app.local_addr());
    let client = reqwest::Client::new();
    let get = |p: &str| {
        let url = format!("{base}{p}");
        let client = client.clone();
        async move {
            let resp = client.get(url).send().await.unwrap();
            assert_eq!(resp.status(), 200);
            resp.json::<Value>().await.unwrap()
        }
    };

    // the news job's first run (scheduled at start) has fetched the feeds
    let mut listed = Value::Null;
    for _ in 0..100 {
        listed = get("/news?group=false").await;
        if listed["articles"].as_array().is_some_and(|a| a.len() == 3) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    conform("/news", &listed);
    let all = listed["articles"].as_array().unwrap();
    assert_eq!(all.len(), 3, "every article: {listed}");
    assert!(all
        .iter()
        .all(|a| a["sources"].as_array().unwrap().is_empty()));
    let story = |url: &str| {
        all.iter()
            .find(|a| a["url"].as_str().unwrap().starts_with(url))
            .unwrap()["story_id"]
            .clone()
    };
    assert_eq!(
        story("https://reuters.example/gold-record"),
        story("https://kitco.example/news/gold-record"),
        "the two reports of the record share a story"
    );
    assert_ne!(
        story("https://reuters.example/yen"),
        story("https://reuters.example/gold-record")
    );

    let grouped = get("/news").await;
    conform("/news", &grouped);
    let entries = grouped["articles"].as_array().unwrap();
    assert_eq!(entries.len(), 2, "one entry per story: {grouped}");
    let record = entries
        .iter()
        .find(|a| a["title"].as_str().unwrap().contains("record"))
        .unwrap();
    let sources = record["sources"].as_array().unwrap();
    assert_eq!(sources.len(), 1, "{record}");
    assert_ne!(sources[0]["source"], record["source"]);
    assert!(sources[0]["title"].as_str().unwrap().contains("$2,790"));
    let gold = get("/news?category=gold").await;
    assert_eq!(gold["articles"].as_array().unwrap().len(), 2);
    let resp = client
        .get(format!("{base}/news?group=maybe"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);

    let health = get("/news/feeds").await;
    conform("/news/feeds", &health);
    let list = health["feeds"].as_array().unwrap();
    assert_eq!(list.len(), 3, "{health}");
    let by_name = |n: &str| list.iter().find(|f| f["name"] == n).unwrap().clone();
    let reuters = by_name("Reuters");
    assert_eq!(reuters["last_status"], "ok");
    assert_eq!(reuters["consecutive_failures"], 0);
    assert_eq!(reuters["articles_total"], 2);
    assert!(reuters["next_fetch_at"].is_null());
    let kitco = by_name("Kitco");
    assert_eq!(kitco["url"], format!("{uri}/kitco.xml"), "no query secrets");
    assert!(!health.to_string().contains("s3cret"));
    let limited = by_name("Limited");
    assert_eq!(limited["last_status"], "rate_limited");
    assert_eq!(limited["consecutive_failures"], 1);
    let last =
        chrono::DateTime::parse_from_rfc3339(limited["last_fetch_at"].as_str().unwrap()).unwrap();
    let next =
        chrono::DateTime::parse_from_rfc3339(limited["next_fetch_at"].as_str().unwrap()).unwrap();
    assert_eq!((next - last).num_seconds(), 3600, "Retry-After honoured");

    // a second run asks the two healthy feeds only and writes nothing new
    let resp = client
        .post(format!("{base}/jobs/NewsFetcherJob/run"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert!(resp.status().is_success(), "{}", resp.status());
    for _ in 0..100 {
        let f = get("/news/feeds").await;
        if f["feeds"][0]["articles_total"].as_u64() == Some(4) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let limited_requests = feeds
        .received_requests()
        .await
        .unwrap()
        .iter()
        .filter(|r| r.url.path() == "/limited.xml")
        .count();
    assert_eq!(
        limited_requests, 1,
        "the rate-limited feed is not asked again"
    );
    assert_eq!(
        get("/news?group=false").await["articles"]
            .as_array()
            .unwrap()
            .len(),
        3
    );

    let metrics = client
        .get(format!("{base}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains(r#"goldjobs_feed_fetch_total{feed="Limited",status="rate_limited"} 1"#),
        "{metrics}"
    );
    assert!(metrics.contains(r#"goldjobs_feed_fetch_total{feed="Reuters",status="ok"}"#));
    assert!(metrics.contains(r#"goldjobs_feed_consecutive_failures{feed="Limited"} 1"#));
    assert!(metrics.contains(r#"goldjobs_feed_consecutive_failures{feed="Kitco"} 0"#));
    app.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn feeds_health_and_stories_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("news.db").display());
    run_news(&url).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn feeds_health_and_stories_on_postgres() {
    let Some(pg) = service_url("GOLDJOBS_TEST_DATABASE_URL") else {
        return;
    };
    let schema = Schema::create(&pg).await;
    run_news(&schema.url).await;
    schema.drop_now().await;
}
