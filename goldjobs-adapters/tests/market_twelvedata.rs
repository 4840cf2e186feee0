//! Twelve Data client against a loopback server speaking the documented shapes
//! (fixtures in `tests/fixtures/twelvedata`, see its README).
#![cfg(feature = "twelvedata")]
#![allow(clippy::unwrap_used)]

use chrono::{TimeZone, Utc};
use goldjobs_adapters::market::{TwelveDataConfig, TwelveDataMarketData};
use goldjobs_core::{Error, MarketData, Symbol};
use rust_decimal::Decimal;
use std::str::FromStr;
use std::time::Duration;
use wiremock::matchers::{header, method, path, query_param};
use wiremock::{Mock, MockServer, ResponseTemplate};

const KEY: &str = "td-test-key-0123456789";

const QUOTE_SINGLE: &str = include_str!("fixtures/twelvedata/quote_single.json");
const QUOTE_BATCH: &str = include_str!("fixtures/twelvedata/quote_batch.json");
const QUOTE_BATCH_PARTIAL: &str =
    include_str!("fixtures/twelvedata/quote_batch_partial_error.json");
const PRICE_SINGLE: &str = include_str!("fixtures/twelvedata/price_single.json");
const PRICE_BATCH: &str = include_str!("fixtures/twelvedata/price_batch.json");
const PRICE_BATCH_PARTIAL: &str =
    include_str!("fixtures/twelvedata/price_batch_partial_error.json");
const ERROR_401: &str = include_str!("fixtures/twelvedata/error_401.json");
const ERROR_429: &str = include_str!("fixtures/twelvedata/error_429.json");
const TIME_SERIES: &str = include_str!("fixtures/twelvedata/time_series_1min.json");

fn dec(s: &str) -> Decimal {
    Decimal::from_str(s).unwrap()
}

fn json(body: &str) -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_raw(body.as_bytes().to_vec(), "application/json")
}

fn client(server: &MockServer) -> TwelveDataMarketData {
    client_with(server, |c| c)
}

fn client_with(
    server: &MockServer,
    f: impl FnOnce(TwelveDataConfig) -> TwelveDataConfig,
) -> TwelveDataMarketData {
    let config = TwelveDataConfig::new(KEY)
        .with_base_url(server.uri())
        .with_credits_per_minute(800)
        .with_timeout(Duration::from_secs(5));
    TwelveDataMarketData::new(f(config)).unwrap()
}

fn gold_silver() -> Vec<Symbol> {
    vec![
        Symbol::new("XAUUSD", "Gold", "XAU/USD"),
        Symbol::new("XAGUSD", "Silver", "XAG/USD"),
    ]
}

#[tokio::test]
async fn batch_success_one_request_with_all_symbols() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/quote"))
        .and(query_param("symbol", "XAU/USD,XAG/USD"))
        .and(header("authorization", format!("apikey {KEY}").as_str()))
        .respond_with(json(QUOTE_BATCH))
        .expect(1)
        .mount(&server)
        .await;
    let batch = client(&server).quotes(&gold_silver()).await.unwrap();
    assert!(batch.failures.is_empty(), "{:?}", batch.failures);
    assert_eq!(batch.quotes.len(), 2);
    let gold = &batch.quotes[0];
    assert_eq!(gold.symbol_code, "XAUUSD");
    assert_eq!(gold.price, dec("2658.50000"));
    assert_eq!(gold.price.to_string(), "2658.50000");
    assert_eq!(gold.change, dec("28.30000"));
    assert_eq!(gold.change_percent, dec("1.07596"));
    // last_quote_at (the freshest instant) wins over the day candle's timestamp.
    assert_eq!(gold.timestamp, Utc.timestamp_opt(1_795_998_240, 0).unwrap());
    let silver = &batch.quotes[1];
    assert_eq!(silver.symbol_code, "XAGUSD");
    assert_eq!(silver.price, dec("31.24500"));
    assert_eq!(silver.change_percent, dec("0.85539"));
}

#[tokio::test]
async fn auth_header_sent_and_key_never_in_url() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(json(QUOTE_BATCH))
        .mount(&server)
        .await;
    let td = client(&server);
    td.quotes(&gold_silver()).await.unwrap();
    td.price_at(&gold_silver()[0], Utc::now()).await.unwrap();
    let requests = server.received_requests().await.unwrap();
    assert_eq!(requests.len(), 2);
    for r in &requests {
        assert_eq!(
            r.headers.get("authorization").unwrap().to_str().unwrap(),
            format!("apikey {KEY}")
        );
        assert!(!r.url.as_str().contains(KEY), "key leaked into {}", r.url);
        assert!(!r.url.as_str().to_lowercase().contains("apikey"));
    }
}

#[tokio::test]
async fn single_symbol_answer_is_the_object_itself() {
    let server = MockServer::start().await;
    Mock::given(path("/quote"))
        .and(query_param("symbol", "XAU/USD"))
        .respond_with(json(QUOTE_SINGLE))
        .expect(1)
        .mount(&server)
        .await;
    let batch = client(&server).quotes(&gold_silver()[..1]).await.unwrap();
    assert_eq!(batch.quotes.len(), 1);
    assert_eq!(batch.quotes[0].price, dec("2658.50000"));
    assert_eq!(batch.quotes[0].change, dec("28.30000"));
}

#[tokio::test]
async fn price_shapes_are_understood_with_zero_change() {
    // The /price shapes (only `price`): change unknown → 0.
    let server = MockServer::start().await;
    Mock::given(query_param("symbol", "XAU/USD"))
        .respond_with(json(PRICE_SINGLE))
        .mount(&server)
        .await;
    Mock::given(query_param("symbol", "XAU/USD,XAG/USD"))
        .respond_with(json(PRICE_BATCH))
        .mount(&server)
        .await;
    let td = client(&server);
    let one = td.quotes(&gold_silver()[..1]).await.unwrap();
    assert_eq!(one.quotes[0].price, dec("2658.50000"));
    assert_eq!(one.quotes[0].change, Decimal::ZERO);
    assert_eq!(one.quotes[0].change_percent, Decimal::ZERO);
    let two = td.quotes(&gold_silver()).await.unwrap();
    assert_eq!(two.quotes[1].price, dec("31.24500"));
}

#[tokio::test]
async fn batch_with_one_symbol_in_error() {
    let server = MockServer::start().await;
    Mock::given(path("/quote"))
        .and(query_param("symbol", "XAU/USD,XAG/USDX"))
        .respond_with(json(QUOTE_BATCH_PARTIAL))
        .expect(1)
        .mount(&server)
        .await;
    let symbols = vec![
        Symbol::new("XAUUSD", "Gold", "XAU/USD"),
        Symbol::new("XAGUSD", "Silver", "XAG/USDX"),
    ];
    let batch = client(&server).quotes(&symbols).await.unwrap();
    assert_eq!(batch.quotes.len(), 1);
    assert_eq!(batch.quotes[0].symbol_code, "XAUUSD");
    assert_eq!(batch.failures.len(), 1);
    let f = &batch.failures[0];
    assert_eq!(f.symbol_code, "XAGUSD");
    assert!(matches!(&f.error, Error::Backend { message, .. } if message.contains("not found")));
    assert!(!f.error.is_temporary());
}

#[tokio::test]
async fn price_batch_with_one_symbol_in_error() {
    let server = MockServer::start().await;
    Mock::given(path("/quote"))
        .respond_with(json(PRICE_BATCH_PARTIAL))
        .mount(&server)
        .await;
    let symbols = vec![
        Symbol::new("XAUUSD", "Gold", "XAU/USD"),
        Symbol::new("XAGUSD", "Silver", "XAG/USD"),
    ];
    // The answer keys the error entry as XAG/USDX, not XAG/USD: that symbol is missing.
    let batch = client(&server).quotes(&symbols).await.unwrap();
    assert_eq!(batch.quotes.len(), 1);
    assert_eq!(batch.failures[0].symbol_code, "XAGUSD");
}

#[tokio::test]
async fn error_in_http_200_body_is_permanent_and_keeps_the_message() {
    let server = MockServer::start().await;
    Mock::given(path("/quote"))
        .respond_with(json(ERROR_401))
        .mount(&server)
        .await;
    let err = client(&server).quotes(&gold_silver()).await.unwrap_err();
    assert!(!err.is_temporary());
    match err {
        Error::Backend { message, .. } => {
            assert!(message.contains("401"), "{message}");
            assert!(
                message.contains("apikey** parameter is incorrect"),
                "{message}"
            );
            assert!(!message.contains(KEY));
        }
        other => panic!("expected Backend, got {other:?}"),
    }
}

#[tokio::test]
async fn http_401_403_404_are_permanent() {
    for status in [401u16, 403, 404] {
        let server = MockServer::start().await;
        Mock::given(path("/quote"))
            .respond_with(
                ResponseTemplate::new(status)
                    .set_body_raw(ERROR_401.as_bytes().to_vec(), "application/json"),
            )
            .mount(&server)
            .await;
        let err = client(&server).quotes(&gold_silver()).await.unwrap_err();
        assert!(
            matches!(&err, Error::Backend { message, .. } if message.contains("apikey")),
            "{status}: {err:?}"
        );
    }
}

#[tokio::test]
async fn http_429_is_rate_limited_with_retry_after() {
    let server = MockServer::start().await;
    Mock::given(path("/quote"))
        .respond_with(
            ResponseTemplate::new(429)
                .insert_header("retry-after", "17")
                .set_body_raw(ERROR_429.as_bytes().to_vec(), "application/json"),
        )
        .mount(&server)
        .await;
    let err = client(&server).quotes(&gold_silver()).await.unwrap_err();
    assert!(err.is_temporary());
    assert_eq!(err.retry_after(), Some(Duration::from_secs(17)));
    assert!(
        matches!(&err, Error::RateLimited { message, .. } if message.contains("run out of API credits"))
    );
}

#[tokio::test]
async fn code_429_in_http_200_body_is_rate_limited() {
    let server = MockServer::start().await;
    Mock::given(path("/quote"))
        .respond_with(json(ERROR_429))
        .mount(&server)
        .await;
    let err = client(&server).quotes(&gold_silver()).await.unwrap_err();
    assert!(matches!(err, Error::RateLimited { .. }), "{err:?}");
}

#[tokio::test]
async fn http_500_is_temporary() {
    let server = MockServer::start().await;
    Mock::given(path("/quote"))
        .respond_with(ResponseTemplate::new(500).set_body_string("<html>oops</html>"))
        .mount(&server)
        .await;
    let err = client(&server).quotes(&gold_silver()).await.unwrap_err();
    assert!(matches!(err, Error::Unavailable { .. }), "{err:?}");
    assert!(err.is_temporary());
}

#[tokio::test]
async fn slow_answer_times_out_as_temporary() {
    let server = MockServer::start().await;
    Mock::given(path("/quote"))
        .respond_with(json(QUOTE_BATCH).set_delay(Duration::from_secs(3)))
        .mount(&server)
        .await;
    let td = client_with(&server, |c| c.with_timeout(Duration::from_millis(200)));
    let err = td.quotes(&gold_silver()).await.unwrap_err();
    assert!(matches!(err, Error::Timeout(_)), "{err:?}");
    assert!(err.is_temporary());
}

#[tokio::test]
async fn truncated_json_is_a_backend_error() {
    let server = MockServer::start().await;
    let truncated = &QUOTE_BATCH[..QUOTE_BATCH.len() / 2];
    Mock::given(path("/quote"))
        .respond_with(json(truncated))
        .mount(&server)
        .await;
    let err = client(&server).quotes(&gold_silver()).await.unwrap_err();
    assert!(
        matches!(&err, Error::Backend { message, .. } if message.contains("malformed JSON")),
        "{err:?}"
    );
}

#[tokio::test]
async fn wrong_types_are_backend_errors_not_panics() {
    let server = MockServer::start().await;
    Mock::given(query_param("symbol", "XAU/USD,XAG/USD"))
        .respond_with(json(r#"{"XAU/USD": {"close": true}, "XAG/USD": ["31.2"]}"#))
        .mount(&server)
        .await;
    Mock::given(query_param("symbol", "XAU/USD"))
        .respond_with(json(r#"[1, 2, 3]"#))
        .mount(&server)
        .await;
    let td = client(&server);
    let batch = td.quotes(&gold_silver()).await.unwrap();
    assert!(batch.quotes.is_empty());
    assert_eq!(batch.failures.len(), 2);
    for f in &batch.failures {
        assert!(matches!(f.error, Error::Backend { .. }), "{:?}", f.error);
    }
    let err = td.quotes(&gold_silver()[..1]).await.unwrap_err();
    assert!(matches!(err, Error::Backend { .. }), "{err:?}");
}

#[tokio::test]
async fn credit_budget_is_never_exceeded() {
    let server = MockServer::start().await;
    let all = r#"{"XAU/USD":{"close":"1"},"XAG/USD":{"close":"2"},"EUR/USD":{"close":"3"},
        "GBP/USD":{"close":"4"},"USD/JPY":{"close":"5"},"BTC/USD":{"close":"6"}}"#;
    Mock::given(path("/quote"))
        .respond_with(json(all))
        .mount(&server)
        .await;
    // No history reserve: the quotes may take the whole plan (see the next test for the reserve).
    let td = client_with(&server, |c| {
        c.with_credits_per_minute(8).with_history_reserve(0)
    });
    let symbols = Symbol::defaults();

    // 1st call: all 6 fit.
    let b1 = td.quotes(&symbols).await.unwrap();
    assert_eq!(b1.quotes.len(), 6);
    // 2nd call: only 2 credits left → 2 symbols asked, 4 rate limited (with a wait).
    let b2 = td.quotes(&symbols).await.unwrap();
    assert_eq!(b2.quotes.len(), 2);
    assert_eq!(b2.failures.len(), 4);
    for f in &b2.failures {
        assert!(matches!(
            f.error,
            Error::RateLimited {
                retry_after: Some(_),
                ..
            }
        ));
    }
    // 3rd call: nothing left → no request at all.
    let err = td.quotes(&symbols).await.unwrap_err();
    assert!(
        matches!(err, Error::RateLimited { retry_after: Some(d), .. } if d <= Duration::from_secs(60))
    );
    assert_eq!(td.credits_available(), 0);
    let err = td.price_at(&symbols[0], Utc::now()).await.unwrap_err();
    assert!(matches!(err, Error::RateLimited { .. }));

    let requests = server.received_requests().await.unwrap();
    assert_eq!(requests.len(), 2);
    let credits: usize = requests
        .iter()
        .map(|r| {
            let symbols = r
                .url
                .query_pairs()
                .find(|(k, _)| k == "symbol")
                .map(|(_, v)| v.into_owned())
                .unwrap();
            symbols.split(',').count()
        })
        .sum();
    assert_eq!(credits, 8, "exactly the budget, never more");
}

/// A `/time_series` answer with these `(datetime, open)` candles, in this order.
fn candles(values: &[(&str, &str)]) -> String {
    let values: Vec<serde_json::Value> = values
        .iter()
        .map(|(dt, open)| {
            serde_json::json!({"datetime": dt, "open": open, "high": open, "low": open,
                "close": "1.00000"})
        })
        .collect();
    serde_json::json!({"meta": {"symbol": "XAU/USD", "interval": "1min"}, "values": values,
        "status": "ok"})
    .to_string()
}

async fn history_answer(
    body: &str,
    at: chrono::DateTime<Utc>,
) -> goldjobs_core::Result<Option<goldjobs_core::PricePoint>> {
    let server = MockServer::start().await;
    Mock::given(path("/time_series"))
        .respond_with(json(body))
        .expect(1)
        .mount(&server)
        .await;
    client(&server).price_at(&gold_silver()[0], at).await
}

#[tokio::test]
async fn history_is_the_open_of_the_candle_starting_exactly_at() {
    let server = MockServer::start().await;
    // The whole range around [at, at + 1 min], in UTC, ascending, every candle of it.
    Mock::given(path("/time_series"))
        .and(query_param("symbol", "XAU/USD"))
        .and(query_param("interval", "1min"))
        .and(query_param("start_date", "2026-11-27 13:59:00"))
        .and(query_param("end_date", "2026-11-27 14:02:00"))
        .and(query_param("order", "asc"))
        .and(query_param("outputsize", "5"))
        .and(query_param("timezone", "UTC"))
        .and(header("authorization", format!("apikey {KEY}").as_str()))
        .respond_with(json(TIME_SERIES))
        .expect(1)
        .mount(&server)
        .await;
    let at = Utc.with_ymd_and_hms(2026, 11, 27, 14, 0, 0).unwrap();
    let p = client(&server)
        .price_at(&gold_silver()[0], at)
        .await
        .unwrap()
        .unwrap();
    // The fixture's candle: open 2657.90000 (its close, 2658.50000, is a minute later).
    assert_eq!(p.price, dec("2657.90000"));
    assert_eq!(p.ts, at);
    assert_eq!(p.source.as_deref(), Some("twelvedata"));
}

#[tokio::test]
async fn history_takes_a_candle_starting_30_s_after() {
    let at = Utc.with_ymd_and_hms(2026, 11, 27, 13, 59, 30).unwrap();
    // Any order: the earliest candle starting at or after `at` wins, not the first listed.
    let body = candles(&[
        ("2026-11-27 14:01:00", "2659.00000"),
        ("2026-11-27 14:00:00", "2657.90000"),
        ("2026-11-27 13:59:00", "2655.00000"),
    ]);
    let p = history_answer(&body, at).await.unwrap().unwrap();
    assert_eq!(p.price, dec("2657.90000"));
    assert_eq!(p.ts, at + chrono::Duration::seconds(30));
    // The fixture's own shape too.
    let p = history_answer(TIME_SERIES, at).await.unwrap().unwrap();
    assert_eq!(p.ts, Utc.with_ymd_and_hms(2026, 11, 27, 14, 0, 0).unwrap());
}

#[tokio::test]
async fn history_never_takes_a_candle_starting_before_at() {
    // Only the candle that contains `at` (starts 30 s before it): no price.
    let at = Utc.with_ymd_and_hms(2026, 11, 27, 14, 0, 30).unwrap();
    assert_eq!(history_answer(TIME_SERIES, at).await.unwrap(), None);
    let body = candles(&[
        ("2026-11-27 13:59:00", "2655.00000"),
        ("2026-11-27 14:00:00", "2657.90000"),
    ]);
    assert_eq!(history_answer(&body, at).await.unwrap(), None);
}

#[tokio::test]
async fn history_of_a_first_candle_61_s_after_is_none() {
    let at = Utc.with_ymd_and_hms(2026, 11, 27, 13, 58, 59).unwrap();
    assert_eq!(history_answer(TIME_SERIES, at).await.unwrap(), None);
    // 60 s after still counts.
    let at = Utc.with_ymd_and_hms(2026, 11, 27, 13, 59, 0).unwrap();
    let p = history_answer(TIME_SERIES, at).await.unwrap().unwrap();
    assert_eq!(p.ts, at + chrono::Duration::seconds(60));
}

#[tokio::test]
async fn malformed_history_is_a_backend_error_not_a_panic() {
    let at = Utc.with_ymd_and_hms(2026, 11, 27, 14, 0, 0).unwrap();
    for (body, says) in [
        (
            candles(&[("2026-11-27", "2657.9")]),
            "is not YYYY-MM-DD HH:MM:SS",
        ),
        (
            candles(&[("2026-11-27T14:00:00Z", "2657.9")]),
            "is not YYYY-MM-DD HH:MM:SS",
        ),
        (
            candles(&[("yesterday", "2657.9")]),
            "is not YYYY-MM-DD HH:MM:SS",
        ),
        (
            candles(&[("2026-11-27 14:00:00", "1e400")]),
            "is not a decimal number",
        ),
        (
            candles(&[("2026-11-27 14:00:00", "abc")]),
            "is not a decimal number",
        ),
        (
            r#"{"values":[{"datetime":"2026-11-27 14:00:00","close":"1"}]}"#.to_owned(),
            "has no open",
        ),
        (r#"{"values":[{"open":"1"}]}"#.to_owned(), "no datetime"),
        (
            r#"{"values":[{"datetime":1795788000,"open":"1"}]}"#.to_owned(),
            "datetime is a number",
        ),
        (
            r#"{"values":{"datetime":"2026-11-27 14:00:00"}}"#.to_owned(),
            "expected an array",
        ),
        (r#"[1,2,3]"#.to_owned(), "expected an object"),
    ] {
        let err = history_answer(&body, at).await.unwrap_err();
        assert!(
            matches!(&err, Error::Backend { message, .. } if message.contains(says)),
            "{body}: {err:?}"
        );
        assert!(!err.is_temporary());
    }
    for open in ["0", "-0", "-2657.9"] {
        let err = history_answer(&candles(&[("2026-11-27 14:00:00", open)]), at)
            .await
            .unwrap_err();
        assert!(
            matches!(&err, Error::InvalidInput(m) if m.contains("not positive")),
            "{open}: {err:?}"
        );
    }
    // Truncated JSON.
    let err = history_answer(&TIME_SERIES[..TIME_SERIES.len() / 2], at)
        .await
        .unwrap_err();
    assert!(
        matches!(&err, Error::Backend { message, .. } if message.contains("malformed JSON")),
        "{err:?}"
    );
}

#[tokio::test]
async fn quotes_leave_the_history_reserve_to_price_at() {
    let server = MockServer::start().await;
    let all = r#"{"XAU/USD":{"close":"1"},"XAG/USD":{"close":"2"},"EUR/USD":{"close":"3"},
        "GBP/USD":{"close":"4"},"USD/JPY":{"close":"5"},"BTC/USD":{"close":"6"}}"#;
    Mock::given(path("/quote"))
        .respond_with(json(all))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(path("/time_series"))
        .respond_with(json(TIME_SERIES))
        .expect(2)
        .mount(&server)
        .await;
    // The contract's default plan, the default reserve of 2.
    let td = client_with(&server, |c| c.with_credits_per_minute(8));
    let symbols = Symbol::defaults();
    assert_eq!(td.quotes(&symbols).await.unwrap().quotes.len(), 6);
    // The next quotes call finds only the reserve free: no request, rate limited.
    let err = td.quotes(&symbols).await.unwrap_err();
    assert!(
        matches!(&err, Error::RateLimited { retry_after: Some(_), message, .. }
            if message.contains("kept for history")),
        "{err:?}"
    );
    assert_eq!(td.credits_available(), 2);
    // History gets both reserved credits …
    let at = Utc.with_ymd_and_hms(2026, 11, 27, 14, 0, 0).unwrap();
    for s in &symbols[..2] {
        assert!(td.price_at(s, at).await.unwrap().is_some());
    }
    // … and never more than the plan.
    let err = td.price_at(&symbols[2], at).await.unwrap_err();
    assert!(matches!(err, Error::RateLimited { .. }), "{err:?}");
    assert_eq!(server.received_requests().await.unwrap().len(), 3);
}

#[tokio::test]
async fn time_series_without_data_is_none() {
    let server = MockServer::start().await;
    Mock::given(path("/time_series"))
        .and(query_param("symbol", "XAU/USD"))
        .respond_with(json(
            r#"{"code":400,"message":"No data is available on the specified dates. Try setting different start/end dates.","status":"error","meta":{"symbol":"XAU/USD","interval":"1min","exchange":""}}"#,
        ))
        .mount(&server)
        .await;
    Mock::given(path("/time_series"))
        .and(query_param("symbol", "XAG/USD"))
        .respond_with(json(
            r#"{"meta":{"symbol":"XAG/USD"},"values":[],"status":"ok"}"#,
        ))
        .mount(&server)
        .await;
    let td = client(&server);
    let at = Utc.with_ymd_and_hms(2026, 11, 27, 14, 0, 30).unwrap();
    assert_eq!(td.price_at(&gold_silver()[0], at).await.unwrap(), None);
    assert_eq!(td.price_at(&gold_silver()[1], at).await.unwrap(), None);
}

#[tokio::test]
async fn time_series_auth_error_is_an_error() {
    let server = MockServer::start().await;
    Mock::given(path("/time_series"))
        .respond_with(json(ERROR_401))
        .mount(&server)
        .await;
    let err = client(&server)
        .price_at(&gold_silver()[0], Utc::now())
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Backend { .. }));
}

#[tokio::test]
async fn provider_429_fills_the_window_so_the_next_call_waits() {
    for status in [429u16, 200] {
        let server = MockServer::start().await;
        Mock::given(path("/quote"))
            .respond_with(
                ResponseTemplate::new(status)
                    .set_body_raw(ERROR_429.as_bytes().to_vec(), "application/json"),
            )
            .expect(1)
            .mount(&server)
            .await;
        let td = client_with(&server, |c| c.with_credits_per_minute(8));
        let err = td.quotes(&gold_silver()).await.unwrap_err();
        assert!(
            matches!(
                err,
                Error::RateLimited {
                    retry_after: Some(_),
                    ..
                }
            ),
            "{err:?}"
        );
        assert_eq!(td.credits_available(), 0);
        // No second request: the client waits for its window.
        let err = td.quotes(&gold_silver()).await.unwrap_err();
        assert!(matches!(err, Error::RateLimited { .. }));
        assert_eq!(server.received_requests().await.unwrap().len(), 1);
    }
}

#[tokio::test]
async fn a_comma_in_a_provider_symbol_is_refused_without_spending() {
    let server = MockServer::start().await;
    Mock::given(path("/quote"))
        .and(query_param("symbol", "XAU/USD"))
        .respond_with(json(QUOTE_SINGLE))
        .expect(1)
        .mount(&server)
        .await;
    let td = client_with(&server, |c| c.with_credits_per_minute(8));
    let symbols = vec![
        Symbol::new("XAUUSD", "Gold", "XAU/USD"),
        Symbol::new("EVIL", "Evil", "A/B,C/D"),
    ];
    let batch = td.quotes(&symbols).await.unwrap();
    assert_eq!(batch.quotes.len(), 1);
    assert_eq!(batch.failures[0].symbol_code, "EVIL");
    assert_eq!(td.credits_available(), 7);
}

/// Hostile numbers fail their own symbol only, with a clear error and without a panic.
#[tokio::test]
async fn hostile_numbers_fail_only_their_symbol() {
    let server = MockServer::start().await;
    let body = r#"{
        "XAU/USD": {"close": "2658.50000", "previous_close": "2630.20000"},
        "XAG/USD": {"close": "1e400", "previous_close": "31.0"},
        "EUR/USD": {"close": "-0", "previous_close": "1.08"},
        "GBP/USD": {"close": "79228162514264337593543950335",
                    "previous_close": "0.0000000000000000000000000001"},
        "USD/JPY": {"close": -0},
        "BTC/USD": {"close": "97000.12", "previous_close": "-0", "change": null},
        "ETH/USD": {"close": "-3588.01"},
        "SOL/USD": {"close": "79228162514264337593543950336"},
        "DOT/USD": {"close": "5", "previous_close": "1e-28", "percent_change": "1e400"}
    }"#;
    Mock::given(path("/quote"))
        .respond_with(json(body))
        .expect(1)
        .mount(&server)
        .await;
    let symbols: Vec<Symbol> = [
        ("XAUUSD", "XAU/USD"),
        ("XAGUSD", "XAG/USD"),
        ("EURUSD", "EUR/USD"),
        ("GBPUSD", "GBP/USD"),
        ("USDJPY", "USD/JPY"),
        ("BTCUSD", "BTC/USD"),
        ("ETHUSD", "ETH/USD"),
        ("SOLUSD", "SOL/USD"),
        ("DOTUSD", "DOT/USD"),
    ]
    .iter()
    .map(|(c, p)| Symbol::new(c, c, p))
    .collect();
    let batch = client(&server).quotes(&symbols).await.unwrap();
    let priced: Vec<&str> = batch
        .quotes
        .iter()
        .map(|q| q.symbol_code.as_str())
        .collect();
    assert_eq!(priced, ["XAUUSD", "BTCUSD"], "{:?}", batch.failures);
    let gold = &batch.quotes[0];
    assert_eq!(gold.change, dec("28.30000"));
    assert_eq!(gold.change_percent, dec("1.07596"));
    // A previous close of -0 is no reference: change unknown → 0.
    assert_eq!(batch.quotes[1].change, Decimal::ZERO);
    assert_eq!(batch.quotes[1].change_percent, Decimal::ZERO);

    let failed = |code: &str| {
        let f = batch
            .failures
            .iter()
            .find(|f| f.symbol_code == code)
            .unwrap_or_else(|| panic!("{code} not among the failures {:?}", batch.failures));
        assert!(!f.error.is_temporary(), "{code}: {:?}", f.error);
        let line = f.error.to_string();
        assert!(line.contains(code), "{code}: {line}");
        assert!(!line.contains('\n'), "{line}");
        line
    };
    assert!(failed("XAGUSD").contains("\"1e400\" is not a decimal number"));
    assert!(failed("EURUSD").contains("is not positive"));
    assert!(failed("GBPUSD").contains("out of range"));
    assert!(failed("USDJPY").contains("is not positive"));
    assert!(failed("ETHUSD").contains("is not positive"));
    assert!(failed("SOLUSD").contains("is not a decimal number"));
    assert!(failed("DOTUSD").contains("percent_change"));
    assert_eq!(batch.failures.len(), 7);
}
