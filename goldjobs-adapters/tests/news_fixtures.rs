//! Every real-world fixture feed (tests/fixtures/feeds, see ORIGIN.md there) parses into articles
//! or fails with a clear error; nothing panics.
#![cfg(feature = "rss")]
#![allow(clippy::unwrap_used)]

use chrono::{DateTime, TimeZone, Utc};
use goldjobs_adapters::news::{parse_feed, FeedConfig, ParsedFeed};
use goldjobs_core::news::{article_id, canonical_url};
use goldjobs_core::Error;
use std::path::PathBuf;

fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/feeds")
}

fn fixture(name: &str) -> Vec<u8> {
    let p = dir().join(name);
    std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

fn feed() -> FeedConfig {
    FeedConfig::new(
        "gold",
        "Fixture News",
        "https://feeds.example.com/path/rss.xml",
    )
    .unwrap()
}

fn at() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 29, 12, 0, 0).unwrap()
}

fn parse(name: &str) -> ParsedFeed {
    parse_feed(&fixture(name), &feed(), at()).unwrap_or_else(|e| panic!("{name}: {e}"))
}

/// (file, articles, skipped) of every fixture that is a valid feed.
const VALID: &[(&str, usize, usize)] = &[
    ("atom_example_reddit.xml", 1, 0),
    ("atom_xml_base.xml", 1, 0),
    ("jsonfeed_elastic_1.1.json", 3, 0),
    ("jsonfeed_spec_1.json", 1, 0),
    ("rss_0.91_missing_id.xml", 0, 1),
    ("rss_1.0_debian.xml", 1, 0),
    ("rss_1.0_iso8859.xml", 1, 0),
    ("rss_2.0_bbc.xml", 1, 0),
    ("rss_2.0_cloudflare.xml", 1, 0),
    ("rss_2.0_ilgiornale.xml", 1, 0),
    ("rss_2.0_nbcny.xml", 1, 0),
    ("rss_2.0_reddit.xml", 1, 0),
    ("rss_2.0_relurl_1.xml", 2, 0),
    ("rss_2.0_spiegel.xml", 1, 0),
    ("rss_2.0_wirecutter.xml", 1, 0),
];

const INVALID: &[&str] = &["rss_2.0_invalid_1.xml"];

#[test]
fn every_fixture_is_covered() {
    let mut names: Vec<String> = std::fs::read_dir(dir())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n != "ORIGIN.md")
        .collect();
    names.sort();
    let mut known: Vec<String> = VALID
        .iter()
        .map(|(n, _, _)| n.to_string())
        .chain(INVALID.iter().map(|n| n.to_string()))
        .collect();
    known.sort();
    assert_eq!(names, known);
    assert!(dir().join("ORIGIN.md").exists());
}

#[test]
fn valid_fixtures_parse_into_consistent_articles() {
    for (name, articles, skipped) in VALID {
        let p = parse(name);
        assert_eq!(p.articles.len(), *articles, "{name}");
        assert_eq!(p.skipped, *skipped, "{name}");
        for a in &p.articles {
            assert!(!a.title.is_empty(), "{name}");
            assert!(a.title.chars().count() <= 500, "{name}");
            assert!(a.summary.chars().count() <= 1000, "{name}");
            assert!(
                !a.summary.contains('<') || !a.summary.contains("</"),
                "{name}: {}",
                a.summary
            );
            assert_eq!(a.id, article_id(&a.canonical_url), "{name}");
            assert_eq!(
                canonical_url(&a.url, None).unwrap(),
                a.canonical_url,
                "{name}"
            );
            assert!(
                a.url.starts_with("http://") || a.url.starts_with("https://"),
                "{name}"
            );
            assert_eq!(a.source, "Fixture News");
            assert_eq!(a.category, "gold");
            assert!(a.published_at <= at(), "{name}");
            assert_eq!(a.created_at, at());
            if let Some(t) = &a.thumbnail_url {
                assert!(t.starts_with("http"), "{name}: {t}");
            }
        }
    }
}

#[test]
fn truncated_reuters_feed_fails_cleanly() {
    let e = parse_feed(&fixture("rss_2.0_invalid_1.xml"), &feed(), at()).unwrap_err();
    assert!(matches!(e, Error::Backend { .. }), "{e:?}");
    assert!(!e.is_temporary());
    let text = e.to_string();
    assert!(text.contains("Fixture News"), "{text}");
    assert!(
        text.contains("https://feeds.example.com/path/rss.xml"),
        "{text}"
    );
    assert!(
        text.contains("not a valid RSS, Atom or JSON feed"),
        "{text}"
    );
}

#[test]
fn garbage_and_truncations_never_panic() {
    for (name, _, _) in VALID {
        let bytes = fixture(name);
        // every prefix length on a coarse grid, plus a few byte flips
        let step = (bytes.len() / 40).max(1);
        for n in (0..bytes.len()).step_by(step) {
            let _ = parse_feed(&bytes[..n], &feed(), at());
        }
        let mut flipped = bytes.clone();
        for i in (0..flipped.len()).step_by(97) {
            flipped[i] ^= 0x5a;
        }
        let _ = parse_feed(&flipped, &feed(), at());
    }
    for junk in [
        &b""[..],
        b"   ",
        b"<html><body>Not found</body></html>",
        b"{}",
        b"{\"version\":1}",
        b"\xff\xfe\x00<",
    ] {
        assert!(parse_feed(junk, &feed(), at()).is_err(), "{junk:?}");
    }
}

#[test]
fn rss2_fields() {
    let p = parse("rss_2.0_wirecutter.xml");
    let a = &p.articles[0];
    assert_eq!(
        a.title,
        "How to Teach Someone a Board Game (and Even Have Fun Doing It)"
    );
    // the link keeps its campaign parameters; the canonical URL drops them
    assert!(a.url.contains("utm_source=rss"), "{}", a.url);
    assert_eq!(
        a.canonical_url,
        "https://www.nytimes.com/wirecutter/blog/how-to-teach-someone-a-board-game/"
    );
    assert_eq!(
        a.published_at,
        Utc.with_ymd_and_hms(2022, 9, 20, 11, 0, 17).unwrap()
    );
    // thumbnail from the first <img> of the HTML
    assert!(
        a.thumbnail_url.as_deref().unwrap().starts_with(
            "https://cdn.thewirecutter.com/wp-content/media/2022/09/howtoteachboardgames"
        ),
        "{:?}",
        a.thumbnail_url
    );
    assert!(a.content.is_some());
}

#[test]
fn media_thumbnails() {
    let a = &parse("rss_2.0_cloudflare.xml").articles[0];
    assert_eq!(
        a.thumbnail_url.as_deref(),
        Some("https://blog.cloudflare.com/content/images/2021/10/image6-15.png")
    );
    let a = &parse("rss_2.0_spiegel.xml").articles[0];
    assert!(a.thumbnail_url.as_deref().unwrap().contains("image.jpg"));
    // an audio enclosure is not a thumbnail
    let a = &parse("rss_2.0_bbc.xml").articles[0];
    assert_eq!(a.thumbnail_url, None);
}

#[test]
fn encodings_are_detected_from_the_bytes() {
    let a = &parse("rss_1.0_iso8859.xml").articles[0];
    assert_eq!(
        a.title,
        "Digitalministerium: Neue Glasfaserförderung mit Schnellkasse"
    );
    assert!(a.summary.contains("Förderung"), "{}", a.summary);
}

#[test]
fn unparseable_dates_fall_back_to_fetch_time() {
    // NBC writes `Sat, Dec 16 2023 02:02:33 PM`
    let a = &parse("rss_2.0_nbcny.xml").articles[0];
    assert_eq!(a.published_at, at());
    assert_eq!(
        a.summary,
        "A young man was left for dead on a Manhattan sidewalk late Friday, bleeding out from multiple stab wounds across his body, police said."
    );
}

#[test]
fn entries_without_link_or_id_are_skipped() {
    let p = parse("rss_0.91_missing_id.xml");
    assert!(p.articles.is_empty());
    assert_eq!(p.skipped, 1);
}

#[test]
fn atom_and_json_feed() {
    let a = &parse("atom_xml_base.xml").articles[0];
    assert_eq!(a.url, "https://numi.st/post/2022/travel-uke");
    // the relative image resolves against the content's xml:base
    assert_eq!(
        a.thumbnail_url.as_deref(),
        Some("https://numi.st/post/2022/travel-uke/IMG_1232.jpeg")
    );
    let a = &parse("jsonfeed_spec_1.json").articles[0];
    assert_eq!(
        a.url,
        "https://jsonfeed.org/2017/05/17/announcing_json_feed"
    );
    assert_eq!(a.title, "Announcing JSON Feed");
}

#[test]
fn guid_only_entries_get_a_feed_scoped_key() {
    let xml = br#"<?xml version="1.0"?><rss version="2.0"><channel><title>T</title>
        <link>https://site.example/</link>
        <item><title>Gold rises</title><guid isPermaLink="false">abc-1</guid></item>
        <item><title>Silver too</title><guid>https://site.example/silver?utm_medium=rss</guid></item>
        <item><title>relative</title><link>/news/eur?b=2&amp;a=1#x</link></item>
        <item><title>no id</title><description>nothing</description></item>
        </channel></rss>"#;
    let p = parse_feed(xml, &feed(), at()).unwrap();
    assert_eq!(p.skipped, 1);
    assert_eq!(p.articles.len(), 3);
    let a = &p.articles[0];
    assert!(
        a.canonical_url.starts_with("urn:goldjobs:feed:"),
        "{}",
        a.canonical_url
    );
    assert!(a.canonical_url.ends_with(":abc-1"), "{}", a.canonical_url);
    assert_eq!(a.url, "https://site.example/");
    assert_eq!(a.related_symbols, ["XAUUSD"]);
    let b = &p.articles[1];
    assert_eq!(b.canonical_url, "https://site.example/silver");
    assert_eq!(b.related_symbols, ["XAGUSD"]);
    let c = &p.articles[2];
    assert_eq!(c.url, "https://feeds.example.com/news/eur?b=2&a=1#x");
    assert_eq!(
        c.canonical_url,
        "https://feeds.example.com/news/eur?a=1&b=2"
    );
    // the same GUID in another feed is another article
    let other = FeedConfig::new("gold", "Other", "https://other.example/rss").unwrap();
    let q = parse_feed(xml, &other, at()).unwrap();
    assert_ne!(q.articles[0].canonical_url, a.canonical_url);
}

#[test]
fn future_dates_are_clamped_to_fetch_time() {
    let xml = br#"<rss version="2.0"><channel><title>T</title>
        <item><title>From the future</title><link>https://e.example/a</link>
        <pubDate>Fri, 01 Jan 2100 00:00:00 GMT</pubDate></item></channel></rss>"#;
    let p = parse_feed(xml, &feed(), at()).unwrap();
    assert_eq!(p.articles[0].published_at, at());
}

#[test]
fn parse_throughput_of_the_fixtures() {
    // a cheap figure for the report; not an assertion on time
    let files: Vec<Vec<u8>> = VALID.iter().map(|(n, _, _)| fixture(n)).collect();
    let bytes: usize = files.iter().map(Vec::len).sum();
    let rounds = 20;
    let start = std::time::Instant::now();
    let mut articles = 0;
    for _ in 0..rounds {
        for f in &files {
            articles += parse_feed(f, &feed(), at())
                .map(|p| p.articles.len())
                .unwrap_or(0);
        }
    }
    let secs = start.elapsed().as_secs_f64();
    println!(
        "parsed {} documents ({} bytes, {articles} articles) in {secs:.3}s: {:.1} MB/s, {:.0} docs/s",
        rounds * files.len(),
        rounds * bytes,
        (rounds * bytes) as f64 / secs / 1e6,
        (rounds * files.len()) as f64 / secs
    );
}
