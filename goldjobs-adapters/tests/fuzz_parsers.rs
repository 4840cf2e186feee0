//! Fuzz-style property tests of the response and feed parsers: whatever bytes a provider or a
//! feed sends, the result is a value or a clear error, never a panic, and what comes out keeps
//! its invariants (every quote asked for, every price > 0).
//!
//! - Feeds: [`parse_feed`] (public) on arbitrary bytes, on mutated real-world fixtures
//!   (truncated, bytes flipped, inserted, spliced) and on generated RSS with hostile strings.
//! - Twelve Data and Binance: their response parsers are private, so they are driven through
//!   the public clients against a loopback wiremock server answering arbitrary bytes, arbitrary
//!   JSON, JSON shaped like the documented answers with arbitrary field values, and mutated
//!   fixtures, with arbitrary HTTP statuses.
#![cfg(all(feature = "rss", feature = "twelvedata", feature = "binance"))]
#![allow(clippy::unwrap_used, clippy::expect_used)]

use chrono::{DateTime, TimeZone, Utc};
use goldjobs_adapters::market::{
    BinanceConfig, BinanceMarketData, TwelveDataConfig, TwelveDataMarketData,
};
use goldjobs_adapters::news::{parse_feed, FeedConfig};
use goldjobs_core::news::{SUMMARY_MAX_CHARS, TITLE_MAX_CHARS};
use goldjobs_core::{MarketData, QuoteBatch, Result, Symbol};
use proptest::prelude::*;
use serde_json::{json, Map, Value};
use std::time::Duration;
use wiremock::matchers::any as any_request;
use wiremock::{Mock, MockServer, ResponseTemplate};

/// Cases per property by default; `GOLDJOBS_FUZZ_CASES` raises it for a longer campaign (CI
/// runs one, bounded in time, after the test suite).
const CASES: u32 = 192;

fn cases() -> u32 {
    std::env::var("GOLDJOBS_FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(CASES)
}

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: cases(),
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

// ---------------------------------------------------------------------------------------------
// Generators.

/// Byte-level mutations of a document.
#[derive(Debug, Clone)]
enum Mutation {
    Truncate(usize),
    Flip(usize, u8),
    Insert(usize, Vec<u8>),
    Remove(usize, usize),
    Splice(usize, usize, usize),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        any::<usize>().prop_map(Mutation::Truncate),
        (any::<usize>(), any::<u8>()).prop_map(|(p, b)| Mutation::Flip(p, b)),
        (
            any::<usize>(),
            prop_oneof![
                proptest::collection::vec(any::<u8>(), 1..16),
                prop_oneof![
                    Just(b"<".to_vec()),
                    Just(b"]]>".to_vec()),
                    Just(b"<![CDATA[".to_vec()),
                    Just(b"&amp;&#xFFFFFF;&#0;&bogus;".to_vec()),
                    Just(b"\"\\u0000\\ud800\"".to_vec()),
                    Just(b"{[".to_vec()),
                    Just(b"\xff\xfe\xc3".to_vec()),
                    Just(b"1e999999".to_vec()),
                    Just(b"-0.0000000000000000000000000000001".to_vec()),
                    Just(b"99999999999999999999999999999999999".to_vec()),
                ],
            ]
        )
            .prop_map(|(p, b)| Mutation::Insert(p, b)),
        (any::<usize>(), 1usize..64).prop_map(|(p, n)| Mutation::Remove(p, n)),
        (any::<usize>(), any::<usize>(), 1usize..128)
            .prop_map(|(a, b, n)| Mutation::Splice(a, b, n)),
    ]
}

fn mutate(doc: &[u8], mutations: &[Mutation]) -> Vec<u8> {
    let mut d = doc.to_vec();
    for m in mutations {
        let len = d.len().max(1);
        match m {
            Mutation::Truncate(p) => d.truncate(p % len),
            Mutation::Flip(p, b) => {
                if !d.is_empty() {
                    let i = p % d.len();
                    d[i] ^= b | 1;
                }
            }
            Mutation::Insert(p, bytes) => {
                let i = p % (d.len() + 1);
                d.splice(i..i, bytes.iter().copied());
            }
            Mutation::Remove(p, n) => {
                if !d.is_empty() {
                    let i = p % d.len();
                    let j = (i + n).min(d.len());
                    d.drain(i..j);
                }
            }
            Mutation::Splice(a, b, n) => {
                if !d.is_empty() {
                    let from = a % d.len();
                    let to = b % (d.len() + 1);
                    let piece: Vec<u8> = d[from..(from + n).min(d.len())].to_vec();
                    d.splice(to..to, piece);
                }
            }
        }
    }
    d
}

/// Strings a provider might put where a number or a date belongs.
fn hostile_string() -> impl Strategy<Value = String> {
    prop_oneof![
        "-?[0-9]{0,40}(\\.[0-9]{0,40})?",
        "[0-9]{1,3}(e|E)[+-]?[0-9]{1,6}",
        Just("NaN".to_owned()),
        Just("Infinity".to_owned()),
        Just("".to_owned()),
        Just(" 12.5 ".to_owned()),
        Just("1,234.56".to_owned()),
        Just("79228162514264337593543950336".to_owned()),
        Just("-79228162514264337593543950336.5".to_owned()),
        Just("2024-13-45 25:61:61".to_owned()),
        Just("9999-12-31 23:59:59".to_owned()),
        Just("0000-01-01".to_owned()),
        "[0-9]{4}-[0-9]{2}-[0-9]{2}( [0-9]{2}:[0-9]{2}:[0-9]{2})?",
        "\\PC{0,24}",
    ]
}

/// Arbitrary JSON values, numbers at the edges included.
fn arb_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<u64>().prop_map(|n| json!(n)),
        any::<f64>().prop_filter_map("finite", |f| serde_json::Number::from_f64(f)
            .map(Value::Number)),
        prop_oneof![Just(i64::MIN), Just(i64::MAX), Just(0), Just(-1)].prop_map(|n| json!(n)),
        hostile_string().prop_map(Value::String),
    ];
    leaf.prop_recursive(3, 24, 5, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
            proptest::collection::btree_map("[a-z_]{1,12}", inner, 0..5)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// An object with the given field names, each present or not, with an arbitrary value.
fn fields(names: &'static [&'static str]) -> impl Strategy<Value = Value> {
    proptest::collection::vec(proptest::option::of(arb_json()), names.len()).prop_map(move |vals| {
        let mut m = Map::new();
        for (name, v) in names.iter().zip(vals) {
            if let Some(v) = v {
                m.insert((*name).to_owned(), v);
            }
        }
        Value::Object(m)
    })
}

fn status() -> impl Strategy<Value = u16> {
    prop_oneof![
        6 => Just(200u16),
        1 => prop_oneof![Just(400u16), Just(401), Just(403), Just(404), Just(418), Just(429)],
        1 => prop_oneof![Just(500u16), Just(502), Just(503)],
    ]
}

// ---------------------------------------------------------------------------------------------
// Feeds.

const FEED_FIXTURES: &[&[u8]] = &[
    include_bytes!("fixtures/feeds/rss_2.0_bbc.xml"),
    include_bytes!("fixtures/feeds/rss_1.0_iso8859.xml"),
    include_bytes!("fixtures/feeds/atom_xml_base.xml"),
    include_bytes!("fixtures/feeds/jsonfeed_spec_1.json"),
    include_bytes!("fixtures/feeds/rss_2.0_relurl_1.xml"),
    include_bytes!("fixtures/feeds/rss_0.91_missing_id.xml"),
];

fn feed_config() -> FeedConfig {
    FeedConfig::new("gold", "Fuzz feed", "https://feeds.example.com/gold/rss").unwrap()
}

fn fetched_at() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 29, 12, 0, 0).unwrap()
}

/// Parse and check the invariants of what comes out.
/// Found by the fuzz campaign (`GOLDJOBS_FUZZ_CASES=1500`): feed-rs 3.0 / quick-xml 0.42 panicked
/// with "set_encoding() called after prefix buffer was drained" on this mutation of a fixture.
#[test]
fn regression_a_late_encoding_declaration_is_an_error_not_a_panic() {
    let bytes = mutate(
        FEED_FIXTURES[1],
        &[
            Mutation::Truncate(16258412049126401823),
            Mutation::Splice(9266865812223832106, 616253286063573726, 22),
        ],
    );
    check_feed(&bytes);
    assert!(parse_feed(&bytes, &feed_config(), fetched_at()).is_err());
}

fn check_feed(bytes: &[u8]) {
    let at = fetched_at();
    if let Ok(parsed) = parse_feed(bytes, &feed_config(), at) {
        for a in &parsed.articles {
            assert!(a.title.chars().count() <= TITLE_MAX_CHARS, "title too long");
            assert!(
                a.summary.chars().count() <= SUMMARY_MAX_CHARS,
                "summary too long"
            );
            assert!(
                a.published_at <= at,
                "published_at {} after the fetch",
                a.published_at
            );
            assert!(!a.url.is_empty() && !a.canonical_url.is_empty() && !a.id.is_empty());
            assert_eq!(a.category, "gold");
            assert_eq!(a.created_at, at);
        }
    }
}

fn xml_text() -> impl Strategy<Value = String> {
    prop_oneof![
        "\\PC{0,40}",
        Just("<b>bold</b> &amp; &lt;tag&gt; &#x1F4B0; &#999999999; &unknown;".to_owned()),
        Just("<![CDATA[<script>alert(1)</script>]]>".to_owned()),
        Just("x".repeat(5000)),
        Just("金价 上涨 XAU/USD 黄金".to_owned()),
        Just("javascript:alert(1)".to_owned()),
        Just("//evil.example/x".to_owned()),
        Just("http://[::1]:99999/".to_owned()),
        hostile_string(),
    ]
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn feed_parser_survives_arbitrary_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
        check_feed(&bytes);
    }

    #[test]
    fn feed_fixtures_parse_unmutated(which in 0..FEED_FIXTURES.len()) {
        let parsed = parse_feed(FEED_FIXTURES[which], &feed_config(), fetched_at()).unwrap();
        prop_assert!(parsed.articles.len() + parsed.skipped > 0);
    }

    #[test]
    fn feed_parser_survives_mutated_fixtures(
        which in 0..FEED_FIXTURES.len(),
        mutations in proptest::collection::vec(mutation(), 1..6),
    ) {
        check_feed(&mutate(FEED_FIXTURES[which], &mutations));
    }

    #[test]
    fn feed_parser_survives_hostile_rss_fields(
        items in proptest::collection::vec(
            (xml_text(), xml_text(), xml_text(), xml_text(), xml_text()), 0..6),
        escape in any::<bool>(),
    ) {
        let esc = |s: &str| if escape {
            s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
        } else {
            s.to_owned()
        };
        let mut doc = String::from(
            "<?xml version=\"1.0\"?><rss version=\"2.0\" xmlns:media=\"http://search.yahoo.com/mrss/\"><channel><title>t</title><link>https://example.com/</link>",
        );
        for (title, link, guid, date, desc) in &items {
            doc.push_str(&format!(
                "<item><title>{}</title><link>{}</link><guid>{}</guid><pubDate>{}</pubDate>\
                 <description>{}</description><media:thumbnail url=\"{}\"/></item>",
                esc(title), esc(link), esc(guid), esc(date), esc(desc), esc(link).replace('"', "&quot;")
            ));
        }
        doc.push_str("</channel></rss>");
        check_feed(doc.as_bytes());
    }
}

// ---------------------------------------------------------------------------------------------
// Market data over a loopback server.

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

fn symbols() -> Vec<Symbol> {
    vec![
        Symbol::new("XAUUSD", "Gold", "XAU/USD"),
        Symbol::new("XAGUSD", "Silver", "XAG/USD"),
        Symbol::new("BTCUSD", "Bitcoin", "BTC/USD"),
    ]
}

/// Answer every request with `body` and `status`, then run `call`.
async fn answer_with<T>(
    server: &MockServer,
    status: u16,
    body: Vec<u8>,
    call: impl std::future::Future<Output = T>,
) -> T {
    server.reset().await;
    Mock::given(any_request())
        .respond_with(ResponseTemplate::new(status).set_body_raw(body, "application/json"))
        .mount(server)
        .await;
    call.await
}

/// The invariants of a quote batch for `asked`.
fn check_batch(asked: &[Symbol], result: &Result<QuoteBatch>) {
    if let Ok(batch) = result {
        for q in &batch.quotes {
            assert!(
                asked.iter().any(|s| s.code == q.symbol_code),
                "a quote for {} which was not asked",
                q.symbol_code
            );
            assert!(
                q.price > rust_decimal::Decimal::ZERO,
                "a quote with price {}",
                q.price
            );
        }
        for f in &batch.failures {
            assert!(asked.iter().any(|s| s.code == f.symbol_code));
        }
        assert!(
            batch.quotes.len() + batch.failures.len() <= asked.len(),
            "{batch:?}"
        );
    }
}

struct TwelveHarness {
    rt: tokio::runtime::Runtime,
    server: MockServer,
    client: TwelveDataMarketData,
}

impl TwelveHarness {
    fn new() -> Self {
        let rt = runtime();
        let server = rt.block_on(MockServer::start());
        let client = TwelveDataMarketData::new(
            TwelveDataConfig::new("fuzz-key")
                .with_base_url(server.uri())
                .with_credits_per_minute(1_000_000)
                .with_timeout(Duration::from_secs(5)),
        )
        .unwrap();
        TwelveHarness { rt, server, client }
    }

    fn quotes(&self, n: usize, status: u16, body: Vec<u8>) -> usize {
        let asked = &symbols()[..n.clamp(1, 3)];
        let result = self.rt.block_on(answer_with(
            &self.server,
            status,
            body,
            self.client.quotes(asked),
        ));
        check_batch(asked, &result);
        result.map_or(0, |b| b.quotes.len())
    }

    fn price_at(&self, status: u16, body: Vec<u8>) {
        let sym = &symbols()[0];
        let _ = self.rt.block_on(answer_with(
            &self.server,
            status,
            body,
            self.client.price_at(sym, fetched_at()),
        ));
    }
}

const TD_QUOTE_FIELDS: &[&str] = &[
    "symbol",
    "name",
    "exchange",
    "datetime",
    "timestamp",
    "last_quote_at",
    "open",
    "high",
    "low",
    "close",
    "price",
    "volume",
    "previous_close",
    "change",
    "percent_change",
    "is_market_open",
    "code",
    "message",
    "status",
];

const TD_FIXTURES: &[&[u8]] = &[
    include_bytes!("fixtures/twelvedata/quote_batch.json"),
    include_bytes!("fixtures/twelvedata/quote_batch_partial_error.json"),
    include_bytes!("fixtures/twelvedata/quote_single.json"),
    include_bytes!("fixtures/twelvedata/time_series_1min.json"),
    include_bytes!("fixtures/twelvedata/error_429.json"),
];

fn td_keyed_body() -> impl Strategy<Value = Value> {
    proptest::collection::vec(
        (
            prop_oneof![
                Just("XAU/USD".to_owned()),
                Just("XAG/USD".to_owned()),
                Just("BTC/USD".to_owned()),
                "[A-Z/]{0,8}"
            ],
            prop_oneof![4 => fields(TD_QUOTE_FIELDS), 1 => arb_json()],
        ),
        0..5,
    )
    .prop_map(|entries| Value::Object(entries.into_iter().collect()))
}

fn td_time_series_body() -> impl Strategy<Value = Value> {
    (
        fields(&["symbol", "interval", "currency_base", "type"]),
        proptest::collection::vec(
            fields(&["datetime", "open", "high", "low", "close", "volume"]),
            0..4,
        ),
        fields(&["status", "code", "message"]),
    )
        .prop_map(|(meta, values, extra)| {
            let mut m = extra.as_object().cloned().unwrap_or_default();
            m.insert("meta".into(), meta);
            m.insert("values".into(), Value::Array(values));
            Value::Object(m)
        })
}

/// Run `check` on [`cases`] inputs of `strategy` (a plain test keeps one harness for all cases).
fn run<S: Strategy>(strategy: S, check: impl Fn(S::Value))
where
    S::Value: std::fmt::Debug,
{
    let mut runner = proptest::test_runner::TestRunner::new(config());
    runner
        .run(&strategy, |v| {
            check(v);
            Ok(())
        })
        .unwrap();
}

#[test]
fn twelvedata_survives_arbitrary_bodies() {
    let h = TwelveHarness::new();
    let body = prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..512),
        arb_json().prop_map(|v| v.to_string().into_bytes()),
    ];
    run((1usize..4, status(), body), |(n, status, body)| {
        h.quotes(n, status, body);
    });
}

#[test]
fn twelvedata_survives_documented_shapes_with_arbitrary_values() {
    let h = TwelveHarness::new();
    let body = prop_oneof![td_keyed_body(), fields(TD_QUOTE_FIELDS)];
    run((1usize..4, status(), body), |(n, status, body)| {
        h.quotes(n, status, body.to_string().into_bytes());
    });
}

#[test]
fn twelvedata_survives_mutated_fixtures() {
    let h = TwelveHarness::new();
    // The harness is wired: the unmutated batch fixture gives quotes.
    assert!(h.quotes(3, 200, TD_FIXTURES[0].to_vec()) >= 1);
    let input = (
        1usize..4,
        0..TD_FIXTURES.len(),
        proptest::collection::vec(mutation(), 1..5),
    );
    run(input, |(n, which, mutations)| {
        h.quotes(n, 200, mutate(TD_FIXTURES[which], &mutations));
    });
}

#[test]
fn twelvedata_history_survives_arbitrary_bodies() {
    let h = TwelveHarness::new();
    let body = prop_oneof![
        td_time_series_body().prop_map(|v| v.to_string().into_bytes()),
        proptest::collection::vec(any::<u8>(), 0..256),
        (
            0..TD_FIXTURES.len(),
            proptest::collection::vec(mutation(), 1..4)
        )
            .prop_map(|(w, m)| mutate(TD_FIXTURES[w], &m)),
    ];
    run((status(), body), |(status, body)| h.price_at(status, body));
}

struct BinanceHarness {
    rt: tokio::runtime::Runtime,
    server: MockServer,
    client: BinanceMarketData,
}

impl BinanceHarness {
    fn new() -> Self {
        let rt = runtime();
        let server = rt.block_on(MockServer::start());
        let client = BinanceMarketData::new(
            BinanceConfig::default()
                .with_base_url(server.uri())
                .with_timeout(Duration::from_secs(5)),
        )
        .unwrap();
        BinanceHarness { rt, server, client }
    }

    fn quotes(&self, status: u16, body: Vec<u8>) -> usize {
        let asked = symbols();
        let result = self.rt.block_on(answer_with(
            &self.server,
            status,
            body,
            self.client.quotes(&asked),
        ));
        check_batch(&asked, &result);
        result.map_or(0, |b| b.quotes.len())
    }

    fn price_at(&self, status: u16, body: Vec<u8>) {
        let sym = &symbols()[2];
        let _ = self.rt.block_on(answer_with(
            &self.server,
            status,
            body,
            self.client.price_at(sym, fetched_at()),
        ));
    }
}

const BINANCE_TICKER_FIELDS: &[&str] = &[
    "symbol",
    "priceChange",
    "priceChangePercent",
    "weightedAvgPrice",
    "prevClosePrice",
    "lastPrice",
    "openPrice",
    "highPrice",
    "lowPrice",
    "volume",
    "openTime",
    "closeTime",
    "code",
    "msg",
];

const BINANCE_FIXTURES: &[&[u8]] = &[
    include_bytes!("fixtures/binance/ticker_24hr_batch.json"),
    include_bytes!("fixtures/binance/klines_1m.json"),
    include_bytes!("fixtures/binance/error_429.json"),
    include_bytes!("fixtures/binance/error_invalid_symbol.json"),
];

fn binance_ticker_body() -> impl Strategy<Value = Value> {
    proptest::collection::vec(
        (
            prop_oneof![Just("PAXGUSDT"), Just("BTCUSDT"), Just("ETHUSDT"), Just("")],
            fields(BINANCE_TICKER_FIELDS),
        )
            .prop_map(|(sym, mut obj)| {
                if let Value::Object(m) = &mut obj {
                    m.entry("symbol").or_insert(json!(sym));
                }
                obj
            }),
        0..5,
    )
    .prop_map(Value::Array)
}

fn binance_klines_body() -> impl Strategy<Value = Value> {
    proptest::collection::vec(
        proptest::collection::vec(arb_json(), 0..13).prop_map(Value::Array),
        0..4,
    )
    .prop_map(Value::Array)
}

#[test]
fn binance_survives_arbitrary_bodies() {
    let h = BinanceHarness::new();
    // The harness is wired: the unmutated ticker fixture gives quotes.
    assert!(h.quotes(200, BINANCE_FIXTURES[0].to_vec()) >= 1);
    let body = prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..512),
        arb_json().prop_map(|v| v.to_string().into_bytes()),
        binance_ticker_body().prop_map(|v| v.to_string().into_bytes()),
        (
            0..BINANCE_FIXTURES.len(),
            proptest::collection::vec(mutation(), 1..5)
        )
            .prop_map(|(w, m)| mutate(BINANCE_FIXTURES[w], &m)),
    ];
    run((status(), body), |(status, body)| {
        h.quotes(status, body);
    });
}

#[test]
fn binance_history_survives_arbitrary_bodies() {
    let h = BinanceHarness::new();
    let body = prop_oneof![
        binance_klines_body().prop_map(|v| v.to_string().into_bytes()),
        proptest::collection::vec(any::<u8>(), 0..256),
        (
            0..BINANCE_FIXTURES.len(),
            proptest::collection::vec(mutation(), 1..4)
        )
            .prop_map(|(w, m)| mutate(BINANCE_FIXTURES[w], &m)),
    ];
    run((status(), body), |(status, body)| h.price_at(status, body));
}
