//! The price tick path: from quotes in hand to cached + recorded + published.
//!
//! `new`: `PriceFetcherJob::distribute` — one cache call (one Redis round trip), one tick insert
//! and one publish call, run concurrently. `seed`: the shape of the code goldjobs replaces — per
//! symbol, one cache write and then one expire, then the tick, then the publish, one after
//! another.
//!
//! In-memory ports always; real Redis for the cache when built with `--features redis` and
//! `GOLDJOBS_TEST_REDIS_URL` is set (keys under a random prefix, deleted at the end).
//!
//! ```text
//! GOLDJOBS_TEST_REDIS_URL=redis://127.0.0.1:6379 cargo bench --features redis --bench tick_path
//! ```
#![allow(missing_docs, clippy::unwrap_used)]

use chrono::Utc;
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use goldjobs::jobs::{PriceFetcherConfig, PriceFetcherJob};
use goldjobs::memory::{InMemoryQuoteCache, InMemorySymbols, InMemoryTicks, LocalBroadcaster};
use goldjobs::{
    Broadcaster, Event, MarketData, PricePoint, PriceTick, PriceTickRepository, PriceUpdate, Quote,
    QuoteBatch, QuoteCache, Symbol,
};
use rust_decimal::Decimal;
use std::sync::Arc;
use std::time::Duration;

const SIZES: [usize; 2] = [6, 500];
const TTL: Duration = Duration::from_secs(5);

fn quotes(n: usize) -> Vec<Quote> {
    (0..n)
        .map(|i| Quote {
            symbol_code: format!("SYM{i:04}"),
            price: Decimal::new(265_850 + i as i64, 2),
            change: Decimal::new(2_830, 2),
            change_percent: Decimal::new(108, 2),
            timestamp: Utc::now(),
            source: None,
        })
        .collect()
}

/// Never asked: `distribute` starts from quotes in hand.
struct NoMarket;

#[async_trait::async_trait]
impl MarketData for NoMarket {
    fn name(&self) -> &'static str {
        "none"
    }
    async fn quotes(&self, _: &[Symbol]) -> goldjobs::Result<QuoteBatch> {
        Ok(QuoteBatch::default())
    }
    async fn price_at(
        &self,
        _: &Symbol,
        _: chrono::DateTime<Utc>,
    ) -> goldjobs::Result<Option<PricePoint>> {
        Ok(None)
    }
}

struct Ports {
    cache: Arc<dyn QuoteCache>,
    ticks: Arc<dyn PriceTickRepository>,
    broadcaster: Arc<dyn Broadcaster>,
}

fn memory_ports(cache: Arc<dyn QuoteCache>) -> Ports {
    Ports {
        cache,
        // Bounded, so a long benchmark does not grow memory without end.
        ticks: Arc::new(InMemoryTicks::with_retention(1_000)),
        broadcaster: Arc::new(LocalBroadcaster::new()),
    }
}

fn job(p: &Ports) -> PriceFetcherJob {
    PriceFetcherJob::new(
        &goldjobs_core::Ports::in_memory()
            .with_symbols(Arc::new(InMemorySymbols::new()))
            .with_ticks(p.ticks.clone()),
        Arc::new(NoMarket),
        p.cache.clone(),
        p.broadcaster.clone(),
    )
    .with_config(PriceFetcherConfig::default())
}

/// The baseline: everything per symbol, one after another. `write` is one cache write and
/// then one expire (two round trips against Redis).
async fn seed_shape<F, Fut>(p: &Ports, quotes: &[Quote], seq: &mut u64, write: F)
where
    F: Fn(Quote) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    for q in quotes {
        write(q.clone()).await;
        p.ticks.insert_ticks(&[PriceTick::from(q)]).await.unwrap();
        *seq += 1;
        let event = Event::PriceUpdate(PriceUpdate {
            symbol_code: q.symbol_code.clone(),
            price: q.price,
            change: q.change,
            change_percent: q.change_percent,
            timestamp: q.timestamp,
            seq: *seq,
        });
        p.broadcaster
            .publish(&[event.to_broadcast().unwrap()])
            .await
            .unwrap();
    }
}

fn bench_memory(c: &mut Criterion, rt: &tokio::runtime::Runtime) {
    let mut g = c.benchmark_group("tick_path/memory");
    for n in SIZES {
        let qs = quotes(n);
        let ports = memory_ports(Arc::new(InMemoryQuoteCache::new()));
        let j = job(&ports);
        g.bench_with_input(BenchmarkId::new("new", n), &qs, |b, qs| {
            b.iter(|| rt.block_on(j.distribute(qs)))
        });
        let mut seq = 0;
        g.bench_with_input(BenchmarkId::new("seed", n), &qs, |b, qs| {
            b.iter(|| {
                rt.block_on(seed_shape(&ports, qs, &mut seq, |q| {
                    let cache = ports.cache.clone();
                    async move { cache.put_quotes(&[q], TTL).await.unwrap() }
                }))
            })
        });
    }
    g.finish();
}

#[cfg(feature = "redis")]
fn bench_redis(c: &mut Criterion, rt: &tokio::runtime::Runtime) {
    use goldjobs::adapters::redis::{connect, RedisQuoteCache};
    let Ok(url) = std::env::var("GOLDJOBS_TEST_REDIS_URL") else {
        eprintln!("tick_path/redis: skipped, GOLDJOBS_TEST_REDIS_URL is unset");
        return;
    };
    let conn = rt.block_on(connect(&url)).unwrap();
    let prefix = format!("goldjobs-bench:{}:", std::process::id());
    let cache = Arc::new(RedisQuoteCache::new(conn.clone(), prefix.clone()));
    let mut g = c.benchmark_group("tick_path/redis");
    for n in SIZES {
        let qs = quotes(n);
        let ports = memory_ports(cache.clone());
        let j = job(&ports);
        g.bench_with_input(BenchmarkId::new("new", n), &qs, |b, qs| {
            b.iter(|| rt.block_on(j.distribute(qs)))
        });
        let mut seq = 0;
        g.bench_with_input(BenchmarkId::new("seed", n), &qs, |b, qs| {
            b.iter(|| {
                rt.block_on(seed_shape(&ports, qs, &mut seq, |q| {
                    let mut conn = conn.clone();
                    let key = cache.key(&q.symbol_code);
                    async move {
                        let _: () = redis::cmd("HSET")
                            .arg(&key)
                            .arg("symbol_code")
                            .arg(&q.symbol_code)
                            .arg("price")
                            .arg(q.price.to_string())
                            .arg("change")
                            .arg(q.change.to_string())
                            .arg("change_percent")
                            .arg(q.change_percent.to_string())
                            .arg("timestamp")
                            .arg(q.timestamp.to_rfc3339())
                            .query_async(&mut conn)
                            .await
                            .unwrap();
                        let _: () = redis::cmd("EXPIRE")
                            .arg(&key)
                            .arg(5)
                            .query_async(&mut conn)
                            .await
                            .unwrap();
                    }
                }))
            })
        });
    }
    g.finish();
    // Delete our keys (by name; never KEYS/SCAN over other people's data).
    let keys: Vec<String> = quotes(500)
        .iter()
        .map(|q| cache.key(&q.symbol_code))
        .collect();
    let mut conn = conn;
    let _: () = rt
        .block_on(redis::cmd("DEL").arg(&keys).query_async(&mut conn))
        .unwrap();
}

#[cfg(not(feature = "redis"))]
fn bench_redis(_: &mut Criterion, _: &tokio::runtime::Runtime) {
    eprintln!("tick_path/redis: skipped, build with --features redis");
}

fn tick_path(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    bench_memory(c, &rt);
    bench_redis(c, &rt);
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .sample_size(20)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    targets = tick_path
}
criterion_main!(benches);
