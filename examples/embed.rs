//! How another Rust service embeds goldjobs.
//!
//! It brings its own market data source (here: a fixed-rate quote generator standing in for the
//! service's own price feed) and one extra custom job, registers them with a `JobManager` on the
//! in-memory adapters, runs for a few ticks, prints the status and stops gracefully.
//!
//! Run with `cargo run --example embed`.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use goldjobs::jobs::{PriceFetcherConfig, PriceFetcherJob};
use goldjobs::memory::InMemoryBackend;
use goldjobs::runtime::JobManager;
use goldjobs::{
    Job, JobContext, MarketData, PricePoint, Quote, QuoteBatch, Result, RunReport, Schedule,
    Symbol, SymbolFailure, SystemClock,
};
use rust_decimal::Decimal;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// The embedding service's own price source: every call moves each price up by one cent.
#[derive(Debug, Default)]
struct HouseFeed {
    calls: AtomicU64,
}

#[async_trait]
impl MarketData for HouseFeed {
    fn name(&self) -> &'static str {
        "house-feed"
    }

    async fn quotes(&self, symbols: &[Symbol]) -> Result<QuoteBatch> {
        let n = self.calls.fetch_add(1, Ordering::Relaxed);
        let mut batch = QuoteBatch::default();
        for s in symbols {
            let base = match s.code.as_str() {
                "XAUUSD" => Decimal::new(265000, 2),
                "XAGUSD" => Decimal::new(3100, 2),
                _ => {
                    // This feed only knows metals; the job reports the others as failed.
                    batch.failures.push(SymbolFailure {
                        symbol_code: s.code.clone(),
                        error: goldjobs::Error::NotFound(format!("{} not in house feed", s.code)),
                    });
                    continue;
                }
            };
            let change = Decimal::new(n as i64, 2);
            batch.quotes.push(Quote {
                symbol_code: s.code.clone(),
                price: base + change,
                change,
                change_percent: (change / base * Decimal::ONE_HUNDRED).round_dp(2),
                timestamp: Utc::now(),
                source: None,
            });
        }
        Ok(batch)
    }

    async fn price_at(&self, _symbol: &Symbol, _at: DateTime<Utc>) -> Result<Option<PricePoint>> {
        Ok(None)
    }
}

/// The embedding service's own periodic job.
#[derive(Debug, Default)]
struct HeartbeatJob {
    beats: AtomicU64,
}

#[async_trait]
impl Job for HeartbeatJob {
    fn name(&self) -> &str {
        "HeartbeatJob"
    }

    fn schedule(&self) -> Schedule {
        // Runs on every instance, not only on the leader.
        Schedule::every(Duration::from_millis(250)).with_singleton(false)
    }

    async fn run(&self, _ctx: &JobContext) -> Result<RunReport> {
        let n = self.beats.fetch_add(1, Ordering::Relaxed) + 1;
        Ok(RunReport::ok(format!("beat {n}")))
    }
}

#[tokio::main]
async fn main() -> Result<()> {
    let backend = InMemoryBackend::new();
    let mut updates = backend.hub.subscribe();

    let prices = PriceFetcherJob::new(
        backend.symbols.clone(),
        Arc::new(HouseFeed::default()),
        backend.quote_cache.clone(),
        backend.ticks.clone(),
        backend.broadcaster.clone(),
        PriceFetcherConfig {
            interval: Duration::from_millis(200),
            quote_ttl: Duration::from_secs(5),
        },
    );

    let manager = JobManager::new(
        Arc::new(SystemClock),
        backend.lease.clone(),
        "embed-example",
    );
    manager.register(Arc::new(prices))?;
    manager.register(Arc::new(HeartbeatJob::default()))?;
    manager.start_all();

    // Watch a few price updates go by, as a WebSocket hub would.
    let mut seen = 0;
    while seen < 6 {
        match tokio::time::timeout(Duration::from_secs(5), updates.recv()).await {
            Ok(Ok(msg)) => {
                seen += 1;
                println!("update: {}", String::from_utf8_lossy(&msg.payload));
            }
            Ok(Err(e)) => println!("subscriber: {e}"),
            Err(_) => break,
        }
    }

    let status = manager.status();
    println!(
        "{}",
        serde_json::to_string_pretty(&status).unwrap_or_else(|e| format!("status: {e}"))
    );

    let report = manager.stop_all(Duration::from_secs(5)).await;
    println!(
        "stopped; jobs that did not stop in time: {:?}",
        report.not_stopped
    );
    Ok(())
}
