//! `FeedSource` against loopback HTTP servers (wiremock, and a raw chunked server).
#![cfg(feature = "rss")]
#![allow(clippy::unwrap_used)]

use goldjobs_adapters::news::{FeedConfig, FeedSource, FeedSourceConfig};
use goldjobs_core::news::dedupe;
use goldjobs_core::{Error, NewsSource};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use wiremock::matchers::{header, header_exists, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

fn rss(items: &[(&str, &str)]) -> Vec<u8> {
    let mut s = String::from(
        r#"<?xml version="1.0" encoding="UTF-8"?><rss version="2.0"><channel><title>Test</title><link>https://news.example/</link>"#,
    );
    for (title, link) in items {
        s.push_str(&format!(
            "<item><title>{title}</title><link>{link}</link><pubDate>Tue, 24 Nov 2026 10:00:00 GMT</pubDate><description>&lt;p&gt;About {title}&lt;/p&gt;</description></item>"
        ));
    }
    s.push_str("</channel></rss>");
    s.into_bytes()
}

fn feed(server: &MockServer, name: &str, p: &str) -> FeedConfig {
    FeedConfig::new("gold", name, &format!("{}{p}", server.uri())).unwrap()
}

fn ok_rss(items: &[(&str, &str)]) -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_raw(rss(items), "application/rss+xml")
}

#[tokio::test]
async fn duplicates_differing_in_tracking_parameters_become_one_article() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/a.xml"))
        .respond_with(ok_rss(&[(
            "Gold hits record",
            "https://news.example/gold-record?utm_source=feedA&amp;utm_medium=rss",
        )]))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/b.xml"))
        .respond_with(ok_rss(&[
            (
                "Gold hits record (syndicated)",
                "HTTPS://NEWS.EXAMPLE:443/gold-record?fbclid=xyz#comments",
            ),
            ("Yen slides", "https://news.example/yen"),
        ]))
        .mount(&server)
        .await;
    let source = FeedSource::new(
        vec![feed(&server, "A", "/a.xml"), feed(&server, "B", "/b.xml")],
        FeedSourceConfig::default(),
    )
    .unwrap();
    let batch = source.fetch().await.unwrap();
    assert!(batch.failures.is_empty(), "{:?}", batch.failures);
    assert_eq!(batch.articles.len(), 3);
    let unique = dedupe(batch.articles);
    assert_eq!(unique.len(), 2);
    // the first configured feed wins
    assert_eq!(unique[0].title, "Gold hits record");
    assert_eq!(unique[0].source, "A");
    assert_eq!(unique[0].canonical_url, "https://news.example/gold-record");
    assert_eq!(unique[0].related_symbols, ["XAUUSD"]);
    assert_eq!(unique[0].summary, "About Gold hits record");
    assert_eq!(unique[1].related_symbols, ["USDJPY"]);
}

#[tokio::test]
async fn etag_round_trip_and_304() {
    let server = MockServer::start().await;
    // conditional request with our validators → 304
    Mock::given(method("GET"))
        .and(path("/feed"))
        .and(header("If-None-Match", "\"v1\""))
        // (wiremock's `header` matcher splits values at commas, so the date is checked below)
        .and(header_exists("If-Modified-Since"))
        .respond_with(ResponseTemplate::new(304))
        .with_priority(1)
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/feed"))
        .respond_with(
            ok_rss(&[("Silver gains", "https://news.example/silver")])
                .insert_header("ETag", "\"v1\"")
                .insert_header("Last-Modified", "Tue, 24 Nov 2026 10:00:00 GMT"),
        )
        .with_priority(2)
        .expect(1)
        .mount(&server)
        .await;
    let source = FeedSource::new(
        vec![feed(&server, "Metals", "/feed")],
        FeedSourceConfig::default(),
    )
    .unwrap();

    let first = source.fetch().await.unwrap();
    assert_eq!(first.articles.len(), 1);
    assert_eq!(first.not_modified, 0);

    let second = source.fetch().await.unwrap();
    assert!(second.articles.is_empty());
    assert!(second.failures.is_empty());
    assert_eq!(second.not_modified, 1);

    let requests = server.received_requests().await.unwrap();
    assert_eq!(requests.len(), 2);
    assert!(requests[0].headers.get("if-none-match").is_none());
    assert_eq!(requests[1].headers.get("if-none-match").unwrap(), "\"v1\"");
    assert_eq!(
        requests[1].headers.get("if-modified-since").unwrap(),
        "Tue, 24 Nov 2026 10:00:00 GMT"
    );
    assert!(requests[0]
        .headers
        .get("accept")
        .unwrap()
        .to_str()
        .unwrap()
        .contains("application/rss+xml"));
    assert!(requests[0]
        .headers
        .get("user-agent")
        .unwrap()
        .to_str()
        .unwrap()
        .starts_with("goldjobs/"));
}

#[tokio::test]
async fn validators_are_not_kept_from_a_broken_answer() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/feed"))
        .and(header_exists("If-None-Match"))
        .respond_with(ResponseTemplate::new(304))
        .with_priority(1)
        .expect(0)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/feed"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_raw(
                    &b"<rss version=\"2.0\"><channel><item>"[..],
                    "application/rss+xml",
                )
                .insert_header("ETag", "\"broken\""),
        )
        .with_priority(2)
        .mount(&server)
        .await;
    let source = FeedSource::new(
        vec![feed(&server, "Broken", "/feed")],
        FeedSourceConfig::default(),
    )
    .unwrap();
    for _ in 0..2 {
        let batch = source.fetch().await.unwrap();
        assert_eq!(batch.failures.len(), 1);
        assert_eq!(batch.not_modified, 0);
    }
}

#[tokio::test]
async fn oversized_body_is_refused_by_content_length() {
    let server = MockServer::start().await;
    let big = vec![b' '; 64 * 1024];
    Mock::given(method("GET"))
        .and(path("/big"))
        .respond_with(ResponseTemplate::new(200).set_body_raw(big, "application/rss+xml"))
        .mount(&server)
        .await;
    let source = FeedSource::new(
        vec![feed(&server, "Huge", "/big")],
        FeedSourceConfig::default().with_max_body_bytes(16 * 1024),
    )
    .unwrap();
    let batch = source.fetch().await.unwrap();
    assert!(batch.articles.is_empty());
    assert_eq!(batch.failures.len(), 1);
    let f = &batch.failures[0];
    assert_eq!(f.source, "Huge");
    let text = f.error.to_string();
    assert!(text.contains("exceeds the limit of 16384 bytes"), "{text}");
    assert!(text.contains("Content-Length"), "{text}");
    assert!(!f.error.is_temporary());
}

/// A server that answers one request with an endless chunked body (no Content-Length) and
/// counts what it managed to write before the client hung up.
async fn endless_chunked_server() -> (String, Arc<AtomicU64>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let written = Arc::new(AtomicU64::new(0));
    let w = written.clone();
    tokio::spawn(async move {
        let (mut sock, _) = listener.accept().await.unwrap();
        let mut buf = vec![0u8; 8192];
        let mut seen = Vec::new();
        while !seen.windows(4).any(|x| x == b"\r\n\r\n") {
            let n = sock.read(&mut buf).await.unwrap();
            if n == 0 {
                return;
            }
            seen.extend_from_slice(&buf[..n]);
        }
        let head = "HTTP/1.1 200 OK\r\nContent-Type: application/rss+xml\r\nTransfer-Encoding: chunked\r\n\r\n";
        if sock.write_all(head.as_bytes()).await.is_err() {
            return;
        }
        let chunk = vec![b' '; 16 * 1024];
        let framed = [
            format!("{:x}\r\n", chunk.len()).into_bytes(),
            chunk,
            b"\r\n".to_vec(),
        ]
        .concat();
        // at most 64 MiB, far beyond the limit
        for _ in 0..4096 {
            if sock.write_all(&framed).await.is_err() {
                return;
            }
            w.fetch_add(16 * 1024, Ordering::SeqCst);
        }
    });
    (format!("http://{addr}/endless"), written)
}

#[tokio::test]
async fn oversized_streamed_body_is_refused_without_reading_it_whole() {
    let (url, written) = endless_chunked_server().await;
    let source = FeedSource::new(
        vec![FeedConfig::new("gold", "Endless", &url).unwrap()],
        FeedSourceConfig::default().with_max_body_bytes(256 * 1024),
    )
    .unwrap();
    let batch = source.fetch().await.unwrap();
    assert_eq!(batch.failures.len(), 1);
    let text = batch.failures[0].error.to_string();
    assert!(
        text.contains("body exceeds the limit of 262144 bytes"),
        "{text}"
    );
    // the server could not push anywhere near its 64 MiB: we hung up early
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(written.load(Ordering::SeqCst) < 32 * 1024 * 1024);
}

#[tokio::test]
async fn broken_feeds_are_reported_while_others_are_returned() {
    let server = MockServer::start().await;
    Mock::given(path("/good"))
        .respond_with(ok_rss(&[("Bitcoin rallies", "https://news.example/btc")]))
        .mount(&server)
        .await;
    Mock::given(path("/down"))
        .respond_with(ResponseTemplate::new(503))
        .mount(&server)
        .await;
    Mock::given(path("/gone"))
        .respond_with(ResponseTemplate::new(404))
        .mount(&server)
        .await;
    Mock::given(path("/slow-down"))
        .respond_with(ResponseTemplate::new(429).insert_header("Retry-After", "120"))
        .mount(&server)
        .await;
    Mock::given(path("/html"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_raw(&b"<html><body>Login</body></html>"[..], "text/html"),
        )
        .mount(&server)
        .await;
    let source = FeedSource::new(
        vec![
            feed(&server, "Down", "/down"),
            feed(&server, "Good", "/good"),
            feed(&server, "Gone", "/gone"),
            feed(&server, "Busy", "/slow-down"),
            feed(&server, "Html", "/html"),
        ],
        FeedSourceConfig::default().with_concurrency(2),
    )
    .unwrap();
    let batch = source.fetch().await.unwrap();
    assert_eq!(batch.articles.len(), 1);
    assert_eq!(batch.articles[0].source, "Good");
    assert_eq!(batch.articles[0].related_symbols, ["BTCUSD"]);
    let names: Vec<&str> = batch.failures.iter().map(|f| f.source.as_str()).collect();
    assert_eq!(names, ["Down", "Gone", "Busy", "Html"]);
    let e = |i: usize| &batch.failures[i].error;
    assert!(
        e(0).is_temporary() && e(0).to_string().contains("HTTP 503"),
        "{}",
        e(0)
    );
    assert!(
        !e(1).is_temporary() && e(1).to_string().contains("HTTP 404"),
        "{}",
        e(1)
    );
    assert!(
        matches!(e(2), Error::RateLimited { retry_after: Some(d), .. } if *d == Duration::from_secs(120)),
        "{:?}",
        e(2)
    );
    assert!(
        e(3).to_string()
            .contains("not a valid RSS, Atom or JSON feed"),
        "{}",
        e(3)
    );
    for f in &batch.failures {
        let text = f.error.to_string();
        assert!(text.contains(&format!("{:?}", f.source)), "{text}");
        assert!(text.contains(&server.uri()), "{text}");
    }
}

#[tokio::test]
async fn a_slow_feed_times_out_and_the_others_are_returned() {
    let server = MockServer::start().await;
    Mock::given(path("/slow"))
        .respond_with(
            ok_rss(&[("late", "https://news.example/late")]).set_delay(Duration::from_secs(30)),
        )
        .mount(&server)
        .await;
    Mock::given(path("/fast"))
        .respond_with(ok_rss(&[("Euro steady", "https://news.example/eur")]))
        .mount(&server)
        .await;
    let source = FeedSource::new(
        vec![
            feed(&server, "Slow", "/slow"),
            feed(&server, "Fast", "/fast"),
        ],
        FeedSourceConfig::default().with_timeout(Duration::from_secs(2)),
    )
    .unwrap();
    let batch = source.fetch().await.unwrap();
    assert_eq!(batch.articles.len(), 1);
    assert_eq!(batch.articles[0].related_symbols, ["EURUSD"]);
    assert_eq!(batch.failures.len(), 1);
    let f = &batch.failures[0];
    assert_eq!(f.source, "Slow");
    assert!(f.error.is_temporary());
    assert!(
        f.error.to_string().contains("timed out after 2s"),
        "{}",
        f.error
    );
}

#[tokio::test]
async fn unreachable_feed_is_a_temporary_failure() {
    // a port nobody listens on
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let source = FeedSource::new(
        vec![FeedConfig::new("gold", "Nowhere", &format!("http://{addr}/rss")).unwrap()],
        FeedSourceConfig::default(),
    )
    .unwrap();
    let batch = source.fetch().await.unwrap();
    assert_eq!(batch.failures.len(), 1);
    assert!(
        batch.failures[0].error.is_temporary(),
        "{}",
        batch.failures[0].error
    );
}

#[tokio::test]
async fn no_feeds_is_an_empty_batch() {
    let source = FeedSource::new(vec![], FeedSourceConfig::default()).unwrap();
    let batch = source.fetch().await.unwrap();
    assert!(batch.articles.is_empty() && batch.failures.is_empty());
}

/// A server that holds every request for a while and records the most requests in flight.
async fn counting_server(hold: Duration) -> (String, Arc<AtomicU64>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let active = Arc::new(AtomicU64::new(0));
    let max = Arc::new(AtomicU64::new(0));
    let max_out = max.clone();
    tokio::spawn(async move {
        loop {
            let Ok((mut sock, _)) = listener.accept().await else {
                return;
            };
            let active = active.clone();
            let max = max.clone();
            tokio::spawn(async move {
                let mut buf = vec![0u8; 8192];
                let mut seen = Vec::new();
                while !seen.windows(4).any(|x| x == b"\r\n\r\n") {
                    match sock.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => seen.extend_from_slice(&buf[..n]),
                    }
                }
                let now = active.fetch_add(1, Ordering::SeqCst) + 1;
                max.fetch_max(now, Ordering::SeqCst);
                tokio::time::sleep(hold).await;
                active.fetch_sub(1, Ordering::SeqCst);
                let body = rss(&[("Gold", "https://news.example/g")]);
                let head = format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: application/rss+xml\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                    body.len()
                );
                let _ = sock.write_all(head.as_bytes()).await;
                let _ = sock.write_all(&body).await;
                let _ = sock.shutdown().await;
            });
        }
    });
    (format!("http://{addr}"), max_out)
}

#[tokio::test]
async fn at_most_the_configured_number_of_feeds_at_once() {
    let (base, max) = counting_server(Duration::from_millis(150)).await;
    let feeds: Vec<FeedConfig> = (0..8)
        .map(|i| FeedConfig::new("gold", &format!("F{i}"), &format!("{base}/f{i}")).unwrap())
        .collect();
    let source = FeedSource::new(feeds, FeedSourceConfig::default().with_concurrency(3)).unwrap();
    let batch = source.fetch().await.unwrap();
    assert!(batch.failures.is_empty(), "{:?}", batch.failures);
    assert_eq!(batch.articles.len(), 8);
    // configured order is kept whatever order the answers came in
    let sources: Vec<&str> = batch.articles.iter().map(|a| a.source.as_str()).collect();
    assert_eq!(sources, ["F0", "F1", "F2", "F3", "F4", "F5", "F6", "F7"]);
    let most = max.load(Ordering::SeqCst);
    assert!((2..=3).contains(&most), "most in flight: {most}");
}

/// Each feed is listed with a stable key and a URL without secrets; `fetch_feeds` asks only
/// the named feeds and reports each one's outcome, with a 429's or 503's `Retry-After`.
#[tokio::test]
async fn feeds_are_listed_fetched_by_key_and_reported() {
    use goldjobs_core::news::{feed_key, FeedOutcome};
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/ok.xml"))
        .respond_with(ok_rss(&[("Gold steady", "https://news.example/steady")]))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/limited.xml"))
        .respond_with(ResponseTemplate::new(429).insert_header("Retry-After", "7200"))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/busy.xml"))
        .respond_with(ResponseTemplate::new(503).insert_header("Retry-After", "60"))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/never.xml"))
        .respond_with(ok_rss(&[]))
        .expect(0)
        .mount(&server)
        .await;
    let with_token = FeedConfig::new(
        "gold",
        "Ok",
        &format!(
            "{}/ok.xml?token=s3cret",
            server.uri().replace("http://", "http://user:pw@")
        ),
    )
    .unwrap();
    let source = FeedSource::new(
        vec![
            with_token.clone(),
            feed(&server, "Limited", "/limited.xml"),
            feed(&server, "Busy", "/busy.xml"),
            feed(&server, "Never", "/never.xml"),
        ],
        FeedSourceConfig::default(),
    )
    .unwrap();
    let feeds = NewsSource::feeds(&source);
    assert_eq!(feeds.len(), 4);
    assert_eq!(feeds[0].key, feed_key(with_token.url.as_str()));
    assert_eq!(
        feeds[0].url,
        format!("{}/ok.xml", server.uri()),
        "no user info or query"
    );
    assert!(!feeds[0].url.contains("s3cret") && !feeds[0].key.contains("s3cret"));
    assert_eq!(
        (feeds[1].name.as_str(), feeds[1].category.as_str()),
        ("Limited", "gold")
    );

    let keys: Vec<String> = feeds[..3].iter().map(|f| f.key.clone()).collect();
    let batch = source.fetch_feeds(&keys).await.unwrap();
    assert_eq!(batch.reports.len(), 3, "one report per fetched feed");
    assert_eq!(
        batch.reports[0].outcome,
        FeedOutcome::Fetched { articles: 1 }
    );
    match &batch.reports[1].outcome {
        FeedOutcome::Failed {
            rate_limited,
            retry_after,
            error,
        } => {
            assert!(*rate_limited, "{error}");
            assert_eq!(*retry_after, Some(Duration::from_secs(7200)));
        }
        other => panic!("429 reported as {other:?}"),
    }
    match &batch.reports[2].outcome {
        FeedOutcome::Failed {
            rate_limited,
            retry_after,
            ..
        } => assert_eq!(
            (*rate_limited, *retry_after),
            (true, Some(Duration::from_secs(60)))
        ),
        other => panic!("503 reported as {other:?}"),
    }
    assert_eq!(batch.articles.len(), 1);
    assert_eq!(batch.failures.len(), 2);
    let nothing = source.fetch_feeds(&["unknown".to_owned()]).await.unwrap();
    assert!(nothing.reports.is_empty() && nothing.articles.is_empty());
}
