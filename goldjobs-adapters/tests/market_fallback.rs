//! The fallback composite: the second provider is asked only for what the first could not price.
#![cfg(all(feature = "twelvedata", feature = "binance", feature = "demo"))]
#![allow(clippy::unwrap_used)]

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use goldjobs_adapters::market::{
    BinanceConfig, BinanceMarketData, DemoMarketData, FallbackMarketData, TwelveDataConfig,
    TwelveDataMarketData,
};
use goldjobs_core::{Error, MarketData, PricePoint, QuoteBatch, Result, Symbol};
use std::sync::{Arc, Mutex};
use wiremock::matchers::{path, query_param};
use wiremock::{Mock, MockServer, ResponseTemplate};

const TICKER: &str = include_str!("fixtures/binance/ticker_24hr_batch.json");

fn json(status: u16, body: &str) -> ResponseTemplate {
    ResponseTemplate::new(status).set_body_raw(body.as_bytes().to_vec(), "application/json")
}

/// Records what it was asked and fails the whole call.
#[derive(Default)]
struct Broken {
    asked: Mutex<Vec<Vec<String>>>,
}

#[async_trait]
impl MarketData for Broken {
    fn name(&self) -> &'static str {
        "broken"
    }
    async fn quotes(&self, symbols: &[Symbol]) -> Result<QuoteBatch> {
        self.asked
            .lock()
            .unwrap()
            .push(symbols.iter().map(|s| s.code.clone()).collect());
        Err(Error::unavailable("broken", "down", None))
    }
    async fn price_at(&self, _: &Symbol, _: DateTime<Utc>) -> Result<Option<PricePoint>> {
        Err(Error::unavailable("broken", "down", None))
    }
}

#[tokio::test]
async fn second_provider_is_asked_only_for_the_failed_symbols() {
    let td_server = MockServer::start().await;
    Mock::given(path("/quote"))
        .and(query_param("symbol", "XAU/USD,BTC/USD"))
        .respond_with(json(
            200,
            r#"{"XAU/USD":{"close":"2658.50000","change":"1","percent_change":"0.1"},
                "BTC/USD":{"code":404,"message":"**symbol** not found","status":"error"}}"#,
        ))
        .expect(1)
        .mount(&td_server)
        .await;
    let bn_server = MockServer::start().await;
    Mock::given(path("/api/v3/ticker/24hr"))
        .and(query_param("symbols", r#"["BTCUSDT"]"#))
        .respond_with(json(200, TICKER))
        .expect(1)
        .mount(&bn_server)
        .await;
    let td = TwelveDataMarketData::new(TwelveDataConfig::new("k").with_base_url(td_server.uri()))
        .unwrap();
    let bn =
        BinanceMarketData::new(BinanceConfig::default().with_base_url(bn_server.uri())).unwrap();
    let fb = FallbackMarketData::new(vec![Arc::new(td), Arc::new(bn)]).unwrap();
    let symbols = vec![
        Symbol::new("XAUUSD", "Gold", "XAU/USD"),
        Symbol::new("BTCUSD", "Bitcoin", "BTC/USD"),
    ];
    let batch = fb.quotes(&symbols).await.unwrap();
    assert!(batch.failures.is_empty(), "{:?}", batch.failures);
    let codes: Vec<&str> = batch
        .quotes
        .iter()
        .map(|q| q.symbol_code.as_str())
        .collect();
    assert_eq!(codes, ["XAUUSD", "BTCUSD"]);
    assert_eq!(batch.quotes[1].price.to_string(), "97000.12000000");
    assert_eq!(fb.name(), "twelvedata");
    assert!(!fb.is_demo());
}

#[tokio::test]
async fn whole_call_failure_moves_everything_on_and_last_error_stays() {
    let broken = Arc::new(Broken::default());
    let bn_server = MockServer::start().await;
    Mock::given(path("/api/v3/ticker/24hr"))
        .respond_with(json(200, TICKER))
        .expect(1)
        .mount(&bn_server)
        .await;
    let bn =
        BinanceMarketData::new(BinanceConfig::default().with_base_url(bn_server.uri())).unwrap();
    let fb = FallbackMarketData::new(vec![broken.clone(), Arc::new(bn)]).unwrap();
    let symbols = vec![
        Symbol::new("XAUUSD", "Gold", "XAU/USD"),
        Symbol::new("BTCUSD", "Bitcoin", "BTC/USD"),
    ];
    let batch = fb.quotes(&symbols).await.unwrap();
    assert_eq!(broken.asked.lock().unwrap().len(), 1);
    assert_eq!(batch.quotes.len(), 1);
    assert_eq!(batch.quotes[0].symbol_code, "BTCUSD");
    // XAU: the last provider tried (Binance) cannot serve it → its permanent error.
    assert_eq!(batch.failures.len(), 1);
    assert_eq!(batch.failures[0].symbol_code, "XAUUSD");
    assert!(matches!(
        &batch.failures[0].error,
        Error::Backend {
            backend: "binance",
            ..
        }
    ));
}

#[tokio::test]
async fn all_providers_failing_is_an_error_and_demo_never_joins_a_chain() {
    let fb = FallbackMarketData::new(vec![
        Arc::new(Broken::default()) as Arc<dyn MarketData>,
        Arc::new(Broken::default()),
    ])
    .unwrap();
    let symbols = Symbol::defaults();
    assert!(fb.quotes(&symbols).await.unwrap_err().is_temporary());
    assert!(fb.price_at(&symbols[0], Utc::now()).await.is_err());

    // Made-up prices never rescue a real provider (guide: *Configuration reference*): the mix is
    // refused.
    for providers in [
        vec![
            Arc::new(Broken::default()) as Arc<dyn MarketData>,
            Arc::new(DemoMarketData::new(3)),
        ],
        vec![
            Arc::new(DemoMarketData::new(3)) as Arc<dyn MarketData>,
            Arc::new(Broken::default()),
        ],
    ] {
        let err = FallbackMarketData::new(providers).unwrap_err();
        assert!(matches!(&err, Error::InvalidInput(m) if m.contains("demo is allowed only alone")));
    }
    // Demo alone is fine, and has no history.
    let fb = FallbackMarketData::new(vec![Arc::new(DemoMarketData::new(3)) as Arc<dyn MarketData>])
        .unwrap();
    assert_eq!(fb.quotes(&symbols).await.unwrap().quotes.len(), 6);
    assert!(fb.is_demo());
    assert_eq!(fb.price_at(&symbols[0], Utc::now()).await.unwrap(), None);
    assert!(FallbackMarketData::new(vec![]).is_err());
}

/// Answers `price_at` with `price`, stamped `after` seconds after the instant asked.
struct Stamped {
    price: &'static str,
    after: i64,
}

#[async_trait]
impl MarketData for Stamped {
    fn name(&self) -> &'static str {
        "stamped"
    }
    async fn quotes(&self, _: &[Symbol]) -> Result<QuoteBatch> {
        Ok(QuoteBatch::default())
    }
    async fn price_at(&self, _: &Symbol, at: DateTime<Utc>) -> Result<Option<PricePoint>> {
        Ok(Some(PricePoint {
            price: self.price.parse().unwrap(),
            ts: at + chrono::Duration::seconds(self.after),
            source: Some("stamped".into()),
        }))
    }
}

#[tokio::test]
async fn a_misdated_or_bad_history_point_hands_over_to_the_next_provider() {
    let at = Utc::now() - chrono::Duration::hours(1);
    let symbol = &Symbol::defaults()[0];
    let stamped = |price, after| Arc::new(Stamped { price, after }) as Arc<dyn MarketData>;
    let fb = FallbackMarketData::new(vec![
        stamped("2650", -30),
        stamped("2650", 61),
        stamped("0", 0),
        stamped("2651", 30),
    ])
    .unwrap();
    let p = fb.price_at(symbol, at).await.unwrap().unwrap();
    assert_eq!(p.price.to_string(), "2651");
    assert_eq!(p.ts, at + chrono::Duration::seconds(30));
    // Nobody with a good one: the last refusal, as an error (not "no price").
    let fb = FallbackMarketData::new(vec![stamped("2650", -30), stamped("0", 0)]).unwrap();
    let err = fb.price_at(symbol, at).await.unwrap_err();
    assert!(
        matches!(&err, Error::InvalidInput(m) if m.contains("not positive")),
        "{err:?}"
    );
}
