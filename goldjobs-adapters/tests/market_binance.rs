//! Binance client against a loopback server speaking the documented shapes
//! (fixtures in `tests/fixtures/binance`, see its README).
#![cfg(feature = "binance")]
#![allow(clippy::unwrap_used)]

use chrono::{TimeZone, Utc};
use goldjobs_adapters::market::{BinanceConfig, BinanceMarketData};
use goldjobs_core::{Error, MarketData, Symbol};
use rust_decimal::Decimal;
use std::str::FromStr;
use std::time::Duration;
use wiremock::matchers::{method, path, query_param};
use wiremock::{Mock, MockServer, ResponseTemplate};

const TICKER: &str = include_str!("fixtures/binance/ticker_24hr_batch.json");
const KLINES: &str = include_str!("fixtures/binance/klines_1m.json");
const ERROR_429: &str = include_str!("fixtures/binance/error_429.json");
const INVALID_SYMBOL: &str = include_str!("fixtures/binance/error_invalid_symbol.json");

fn json(status: u16, body: &str) -> ResponseTemplate {
    ResponseTemplate::new(status).set_body_raw(body.as_bytes().to_vec(), "application/json")
}

fn client(server: &MockServer) -> BinanceMarketData {
    BinanceMarketData::new(
        BinanceConfig::default()
            .with_base_url(server.uri())
            .with_timeout(Duration::from_secs(5)),
    )
    .unwrap()
}

fn symbols() -> Vec<Symbol> {
    vec![
        Symbol::new("XAUUSD", "Gold", "XAU/USD"),
        Symbol::new("BTCUSD", "Bitcoin", "BTC/USD"),
        Symbol::new("ETHUSD", "Ether", "ETH/USD"),
    ]
}

#[tokio::test]
async fn ticker_batch_maps_usd_to_usdt_and_fails_non_crypto() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/api/v3/ticker/24hr"))
        .and(query_param("symbols", r#"["BTCUSDT","ETHUSDT"]"#))
        .respond_with(json(200, TICKER))
        .expect(1)
        .mount(&server)
        .await;
    let batch = client(&server).quotes(&symbols()).await.unwrap();
    assert_eq!(batch.quotes.len(), 2);
    let btc = &batch.quotes[0];
    assert_eq!(btc.symbol_code, "BTCUSD");
    assert_eq!(btc.price, Decimal::from_str("97000.12000000").unwrap());
    assert_eq!(btc.change, Decimal::from_str("1523.45").unwrap());
    assert_eq!(btc.change_percent, Decimal::from_str("1.596").unwrap());
    assert_eq!(
        btc.timestamp,
        Utc.timestamp_millis_opt(1_795_998_240_000).unwrap()
    );
    assert_eq!(batch.quotes[1].symbol_code, "ETHUSD");
    assert_eq!(batch.failures.len(), 1);
    assert_eq!(batch.failures[0].symbol_code, "XAUUSD");
    assert!(!batch.failures[0].error.is_temporary());
}

#[tokio::test]
async fn only_non_crypto_makes_no_request() {
    let server = MockServer::start().await;
    let batch = client(&server).quotes(&symbols()[..1]).await.unwrap();
    assert!(batch.quotes.is_empty());
    assert_eq!(batch.failures.len(), 1);
    assert!(server.received_requests().await.unwrap().is_empty());
}

#[tokio::test]
async fn http_429_and_418_honour_retry_after() {
    for status in [429u16, 418] {
        let server = MockServer::start().await;
        Mock::given(path("/api/v3/ticker/24hr"))
            .respond_with(json(status, ERROR_429).insert_header("Retry-After", "42"))
            .mount(&server)
            .await;
        let err = client(&server).quotes(&symbols()).await.unwrap_err();
        assert!(err.is_temporary(), "{status}");
        assert_eq!(err.retry_after(), Some(Duration::from_secs(42)), "{status}");
        assert!(
            matches!(&err, Error::RateLimited { message, .. } if message.contains("request weight"))
        );
    }
}

#[tokio::test]
async fn invalid_symbol_is_permanent_and_5xx_temporary() {
    let server = MockServer::start().await;
    Mock::given(path("/api/v3/ticker/24hr"))
        .respond_with(json(400, INVALID_SYMBOL))
        .mount(&server)
        .await;
    // Every market unknown: each fails on its own, permanently; the call itself succeeds.
    let batch = client(&server).quotes(&symbols()).await.unwrap();
    assert!(batch.quotes.is_empty());
    assert_eq!(batch.failures.len(), 3);
    for f in &batch.failures {
        assert!(!f.error.is_temporary(), "{}", f.error);
    }
    assert!(batch.failures.iter().any(|f| matches!(&f.error,
        Error::Backend { message, .. } if message.contains("Invalid symbol"))));

    let server = MockServer::start().await;
    Mock::given(path("/api/v3/ticker/24hr"))
        .respond_with(ResponseTemplate::new(503))
        .mount(&server)
        .await;
    let err = client(&server).quotes(&symbols()).await.unwrap_err();
    assert!(matches!(err, Error::Unavailable { .. }));
}

#[tokio::test]
async fn truncated_ticker_is_a_backend_error() {
    let server = MockServer::start().await;
    Mock::given(path("/api/v3/ticker/24hr"))
        .respond_with(json(200, &TICKER[..TICKER.len() / 2]))
        .mount(&server)
        .await;
    let err = client(&server).quotes(&symbols()).await.unwrap_err();
    assert!(matches!(err, Error::Backend { .. }));
}

#[tokio::test]
async fn wrong_types_fail_that_symbol_only() {
    let server = MockServer::start().await;
    Mock::given(path("/api/v3/ticker/24hr"))
        .respond_with(json(
            200,
            r#"[{"symbol":"BTCUSDT","lastPrice":{"x":1}},{"symbol":"ETHUSDT","lastPrice":"3588.01"}]"#,
        ))
        .mount(&server)
        .await;
    let batch = client(&server).quotes(&symbols()).await.unwrap();
    assert_eq!(batch.quotes.len(), 1);
    assert_eq!(batch.quotes[0].symbol_code, "ETHUSD");
    let btc = batch
        .failures
        .iter()
        .find(|f| f.symbol_code == "BTCUSD")
        .unwrap();
    assert!(matches!(&btc.error, Error::Backend { message, .. } if message.contains("lastPrice")));

    let server = MockServer::start().await;
    Mock::given(path("/api/v3/ticker/24hr"))
        .respond_with(json(200, r#""not a list""#))
        .mount(&server)
        .await;
    let err = client(&server).quotes(&symbols()).await.unwrap_err();
    assert!(matches!(err, Error::Backend { .. }));
}

/// The fixture kline's open time: 2026-11-27 14:00:00 UTC.
fn kline_start() -> chrono::DateTime<Utc> {
    Utc.timestamp_millis_opt(1_795_788_000_000).unwrap()
}

/// A klines answer with these `(open time, open)` rows, in this order.
fn klines(rows: &[(chrono::DateTime<Utc>, &str)]) -> String {
    let rows: Vec<serde_json::Value> = rows
        .iter()
        .map(|(t, open)| {
            let ms = t.timestamp_millis();
            serde_json::json!([
                ms,
                open,
                open,
                open,
                "1.00000000",
                "1.0",
                ms + 59_999,
                "1.0",
                1,
                "0.5",
                "0.5",
                "0"
            ])
        })
        .collect();
    serde_json::Value::Array(rows).to_string()
}

async fn history_answer(
    body: &str,
    at: chrono::DateTime<Utc>,
) -> goldjobs_core::Result<Option<goldjobs_core::PricePoint>> {
    let server = MockServer::start().await;
    Mock::given(path("/api/v3/klines"))
        .respond_with(json(200, body))
        .expect(1)
        .mount(&server)
        .await;
    client(&server).price_at(&symbols()[1], at).await
}

#[tokio::test]
async fn klines_give_the_open_of_the_kline_starting_exactly_at() {
    let server = MockServer::start().await;
    let at = kline_start();
    Mock::given(path("/api/v3/klines"))
        .and(query_param("symbol", "BTCUSDT"))
        .and(query_param("interval", "1m"))
        .and(query_param(
            "startTime",
            at.timestamp_millis().to_string().as_str(),
        ))
        .and(query_param(
            "endTime",
            (at.timestamp_millis() + 60_000).to_string().as_str(),
        ))
        .and(query_param("limit", "2"))
        .respond_with(json(200, KLINES))
        .expect(1)
        .mount(&server)
        .await;
    let md = client(&server);
    let p = md.price_at(&symbols()[1], at).await.unwrap().unwrap();
    // The kline's open, not its close (97000.12000000, a minute later).
    assert_eq!(p.price, Decimal::from_str("96990.00000000").unwrap());
    assert_eq!(p.ts, at);
    assert_eq!(p.source.as_deref(), Some("binance"));
    // Not a crypto symbol: no history, no request.
    assert_eq!(md.price_at(&symbols()[0], at).await.unwrap(), None);
}

#[tokio::test]
async fn klines_take_a_kline_starting_30_s_after() {
    let at = kline_start() - chrono::Duration::seconds(30);
    let p = history_answer(KLINES, at).await.unwrap().unwrap();
    assert_eq!(p.ts, at + chrono::Duration::seconds(30));
    // The kline that contains `at` is skipped for the next one, whatever the order.
    let body = klines(&[
        (kline_start(), "96990.00"),
        (kline_start() - chrono::Duration::minutes(1), "96000.00"),
    ]);
    let p = history_answer(&body, at).await.unwrap().unwrap();
    assert_eq!(p.price, Decimal::from_str("96990.00").unwrap());
    assert_eq!(p.ts, kline_start());
}

#[tokio::test]
async fn klines_never_take_a_kline_starting_before_at() {
    let at = kline_start() + chrono::Duration::seconds(30);
    assert_eq!(history_answer(KLINES, at).await.unwrap(), None);
    // One millisecond is enough to be before.
    let at = kline_start() + chrono::Duration::milliseconds(1);
    assert_eq!(history_answer(KLINES, at).await.unwrap(), None);
}

#[tokio::test]
async fn klines_first_starting_61_s_after_is_none() {
    let at = kline_start() - chrono::Duration::seconds(61);
    assert_eq!(history_answer(KLINES, at).await.unwrap(), None);
    let at = kline_start() - chrono::Duration::seconds(60);
    let p = history_answer(KLINES, at).await.unwrap().unwrap();
    assert_eq!(p.ts, kline_start());
}

#[tokio::test]
async fn malformed_klines_are_backend_errors_not_panics() {
    let at = kline_start();
    for (body, says) in [
        (r#"{"rows":[]}"#.to_owned(), "expected an array"),
        (r#"[{"openTime":1795788000000}]"#.to_owned(), "not an array"),
        (
            r#"[["1795788000000","96990.0"]]"#.to_owned(),
            "no open time",
        ),
        (r#"[[]]"#.to_owned(), "no open time"),
        (r#"[[1795788000000]]"#.to_owned(), "no open price"),
        (r#"[[1795788000000, 96990.0]]"#.to_owned(), "no open price"),
        (
            r#"[[1795788000000, "1e400"]]"#.to_owned(),
            "is not a decimal number",
        ),
        (r#"[[9223372036854775807, "1"]]"#.to_owned(), "out of range"),
    ] {
        let err = history_answer(&body, at).await.unwrap_err();
        assert!(
            matches!(&err, Error::Backend { message, .. } if message.contains(says)),
            "{body}: {err:?}"
        );
    }
    for open in ["0", "-0", "-96990"] {
        let err = history_answer(&klines(&[(at, open)]), at)
            .await
            .unwrap_err();
        assert!(
            matches!(&err, Error::InvalidInput(m) if m.contains("not positive")),
            "{open}: {err:?}"
        );
    }
    let err = history_answer(&KLINES[..KLINES.len() / 2], at)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Backend { .. }), "{err:?}");
}

#[tokio::test]
async fn empty_klines_are_none() {
    let server = MockServer::start().await;
    Mock::given(path("/api/v3/klines"))
        .respond_with(json(200, "[]"))
        .mount(&server)
        .await;
    let p = client(&server)
        .price_at(&symbols()[1], Utc::now())
        .await
        .unwrap();
    assert_eq!(p, None);
}

/// Hostile numbers fail their own symbol only, with a clear error and without a panic.
#[tokio::test]
async fn hostile_numbers_fail_only_their_symbol() {
    let server = MockServer::start().await;
    let ticker = |market: &str, price: &str, change: &str, percent: &str| {
        format!(
            r#"{{"symbol":"{market}","priceChange":"{change}","priceChangePercent":"{percent}",
                "lastPrice":"{price}","closeTime":1795998240000}}"#
        )
    };
    let body = format!(
        "[{}]",
        [
            ticker("BTCUSDT", "97000.12000000", "1523.45", "1.596"),
            ticker("ETHUSDT", "1e400", "1", "1"),
            ticker("SOLUSDT", "-0", "1", "1"),
            ticker("DOGEUSDT", "79228162514264337593543950336", "1", "1"),
            ticker("ADAUSDT", "0.00000000", "0", "0"),
            ticker("DOTUSDT", "5.1", "1", "1e400"),
            ticker(
                "XRPUSDT",
                "79228162514264337593543950335",
                "-79228162514264337593543950335",
                "0.0000000000000000000000000001"
            ),
        ]
        .join(",")
    );
    Mock::given(path("/api/v3/ticker/24hr"))
        .respond_with(json(200, &body))
        .expect(1)
        .mount(&server)
        .await;
    let symbols: Vec<Symbol> = ["BTC", "ETH", "SOL", "DOGE", "ADA", "DOT", "XRP"]
        .iter()
        .map(|b| {
            let code = format!("{b}USD");
            Symbol::new(&code, b, &format!("{b}/USD"))
        })
        .collect();
    let batch = client(&server).quotes(&symbols).await.unwrap();
    let priced: Vec<&str> = batch
        .quotes
        .iter()
        .map(|q| q.symbol_code.as_str())
        .collect();
    // Extreme but representable values are quotes (no arithmetic is done on them).
    assert_eq!(priced, ["BTCUSD", "XRPUSD"], "{:?}", batch.failures);
    assert_eq!(batch.quotes[1].price, Decimal::MAX);
    let failed = |code: &str| {
        let f = batch
            .failures
            .iter()
            .find(|f| f.symbol_code == code)
            .unwrap_or_else(|| panic!("{code} not among the failures {:?}", batch.failures));
        assert!(!f.error.is_temporary());
        let line = f.error.to_string();
        assert!(line.contains(code) && !line.contains('\n'), "{line}");
        line
    };
    assert!(failed("ETHUSD").contains("\"1e400\" is not a decimal number"));
    assert!(failed("SOLUSD").contains("is not positive"));
    assert!(failed("DOGEUSD").contains("is not a decimal number"));
    assert!(failed("ADAUSD").contains("is not positive"));
    assert!(failed("DOTUSD").contains("priceChangePercent"));
    assert_eq!(batch.failures.len(), 5);
}

/// One unknown market (-1121) among good ones fails only that symbol: the batch is asked again
/// market by market, and the unknown market is left out of the next batches.
#[tokio::test]
async fn one_unknown_market_fails_only_that_symbol() {
    let server = MockServer::start().await;
    Mock::given(path("/api/v3/ticker/24hr"))
        .and(query_param("symbols", r#"["BTCUSDT","NOPEUSDT"]"#))
        .respond_with(json(400, INVALID_SYMBOL))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(path("/api/v3/ticker/24hr"))
        .and(query_param("symbol", "NOPEUSDT"))
        .respond_with(json(400, INVALID_SYMBOL))
        .expect(1)
        .mount(&server)
        .await;
    let btc: serde_json::Value = serde_json::from_str(TICKER).unwrap();
    let btc = btc.as_array().unwrap()[0].to_string();
    Mock::given(path("/api/v3/ticker/24hr"))
        .and(query_param("symbol", "BTCUSDT"))
        .respond_with(json(200, &btc))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(path("/api/v3/ticker/24hr"))
        .and(query_param("symbols", r#"["BTCUSDT"]"#))
        .respond_with(json(200, &format!("[{btc}]")))
        .expect(1)
        .mount(&server)
        .await;
    let c = client(&server);
    let asked = vec![
        Symbol::new("BTCUSD", "Bitcoin", "BTC/USD"),
        Symbol::new("NOPEUSD", "Nope", "NOPE/USD"),
    ];
    let batch = c.quotes(&asked).await.unwrap();
    assert_eq!(batch.quotes.len(), 1);
    assert_eq!(batch.quotes[0].symbol_code, "BTCUSD");
    assert_eq!(batch.failures.len(), 1);
    assert_eq!(batch.failures[0].symbol_code, "NOPEUSD");
    assert!(!batch.failures[0].error.is_temporary());
    // Next time the unknown market is not asked at all.
    let batch = c.quotes(&asked).await.unwrap();
    assert_eq!(batch.quotes.len(), 1);
    assert_eq!(batch.failures[0].symbol_code, "NOPEUSD");
}

/// After a 429 the circuit stays open across calls until Retry-After has passed: no request
/// reaches Binance in that time (ignored limits escalate to IP bans).
#[tokio::test]
async fn after_a_429_nothing_is_sent_until_retry_after() {
    for status in [429u16, 418] {
        let server = MockServer::start().await;
        Mock::given(path("/api/v3/ticker/24hr"))
            .respond_with(json(status, ERROR_429).insert_header("Retry-After", "120"))
            .expect(1)
            .mount(&server)
            .await;
        Mock::given(path("/api/v3/klines"))
            .respond_with(json(200, KLINES))
            .expect(0)
            .mount(&server)
            .await;
        let c = client(&server);
        assert!(c.quotes(&symbols()).await.unwrap_err().is_temporary());
        for _ in 0..3 {
            let e = c.quotes(&symbols()).await.unwrap_err();
            let wait = e.retry_after().unwrap();
            assert!(
                wait <= Duration::from_secs(120) && wait > Duration::from_secs(100),
                "{wait:?}"
            );
        }
        let at = Utc.with_ymd_and_hms(2026, 11, 29, 12, 0, 0).unwrap();
        let e = c.price_at(&symbols()[1], at).await.unwrap_err();
        assert!(e.is_temporary(), "history is held back too: {e}");
        // wiremock checks the expectations (one request in all) when the server drops.
    }
}
