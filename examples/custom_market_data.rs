//! A market data provider of your own: the price job fetches from it, the verifier asks it for
//! history when no tick covers a prediction's verify time.
//!
//! Run with `cargo run --example custom_market_data`.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use goldjobs::jobs::PriceFetcherJob;
use goldjobs::prelude::*;
use goldjobs::service::MarketDataSource;
use goldjobs::SymbolFailure;
use rust_decimal::Decimal;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

/// The embedding service's own feed: metals only, each call one cent higher.
#[derive(Debug, Default)]
struct HouseFeed {
    calls: AtomicI64,
}

impl HouseFeed {
    fn base(code: &str) -> Option<Decimal> {
        match code {
            "XAUUSD" => Some(Decimal::new(265_000, 2)),
            "XAGUSD" => Some(Decimal::new(3_100, 2)),
            _ => None,
        }
    }
}

#[async_trait]
impl MarketData for HouseFeed {
    fn name(&self) -> &'static str {
        "house-feed"
    }

    async fn quotes(&self, symbols: &[Symbol]) -> Result<QuoteBatch> {
        let change = Decimal::new(self.calls.fetch_add(1, Ordering::Relaxed), 2);
        let mut batch = QuoteBatch::default();
        for s in symbols {
            let Some(base) = Self::base(&s.code) else {
                // Symbols this feed does not know are reported, not dropped silently.
                batch.failures.push(SymbolFailure {
                    symbol_code: s.code.clone(),
                    error: Error::NotFound(format!("{} is not in the house feed", s.code)),
                });
                continue;
            };
            let percent = change
                .checked_div(base)
                .and_then(|r| r.checked_mul(Decimal::ONE_HUNDRED))
                .unwrap_or_default()
                .round_dp(2);
            batch.quotes.push(Quote {
                symbol_code: s.code.clone(),
                price: base.checked_add(change).unwrap_or(base),
                change,
                change_percent: percent,
                timestamp: Utc::now(),
                source: None,
            });
        }
        Ok(batch)
    }

    async fn price_at(&self, symbol: &Symbol, at: DateTime<Utc>) -> Result<Option<PricePoint>> {
        // A real feed would read its candle history; this one only knows its base prices.
        Ok(Self::base(&symbol.code).map(|price| PricePoint {
            price,
            ts: at,
            source: Some(self.name().to_owned()),
        }))
    }
}

#[tokio::main]
async fn main() -> std::result::Result<(), Box<dyn std::error::Error>> {
    let config = ServiceConfig::default()
        .with_market_data([MarketDataSource::custom(HouseFeed::default())])
        .with_price_interval(Duration::from_millis(300));
    let service = Service::builder(config).start().await?;
    let mut events = service.subscribe();
    for _ in 0..4 {
        let event = tokio::time::timeout(Duration::from_secs(10), events.recv()).await??;
        println!("{}", String::from_utf8_lossy(&event.payload));
    }
    let price = service
        .jobs()
        .status()
        .jobs
        .into_iter()
        .find(|j| j.name == PriceFetcherJob::NAME);
    if let Some(report) = price.and_then(|j| j.last_report) {
        println!("last price run: {} {:?}", report.summary, report.problems);
    }
    service.shutdown(Duration::from_secs(5)).await;
    Ok(())
}
