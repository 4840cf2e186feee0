//! Verification throughput: `PredictionVerifierJob` verifying 10,000 due predictions with
//! 1,000,000 votes (100 per prediction, 50,000 users) on the in-memory repository.
//!
//! ```text
//! CARGO_TARGET_DIR=/work/target cargo bench --bench verify
//! ```
//!
//! Each sample builds a fresh world (not timed, `iter_batched` with one input per iteration)
//! and times one job run: claims in batches, one batched tick lookup per batch, decisions,
//! one `record_verifications` per batch (votes, stats, 1,010,000 outbox rows).
//! As a baseline in the same process, the same work with `batch_size = 1` (one round trip per
//! prediction, the row-at-a-time shape) is measured too.

#![allow(missing_docs, clippy::unwrap_used)]

use async_trait::async_trait;
use chrono::{DateTime, Duration as ChronoDuration, Utc};
use criterion::{criterion_group, criterion_main, BatchSize, Criterion};
use goldjobs::jobs::{PredictionVerifierJob, VerifierConfig};
use goldjobs::memory::InMemoryPredictions;
use goldjobs::runtime::{Job, JobContext};
use goldjobs::{
    ManualClock, MarketData, Prediction, PredictionRepository, PricePoint, PriceTick,
    PriceTickRepository, QuoteBatch, Symbol, SymbolRepository, TickQuery, VerifyRule, Vote,
};
use rust_decimal::Decimal;
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

const PREDICTIONS: usize = 10_000;
const VOTES_PER_PREDICTION: usize = 100;
const USERS: usize = 50_000;

/// Ticks indexed by symbol and instant, so each lookup is a range query.
#[derive(Default)]
struct IndexedTicks(Mutex<HashMap<String, BTreeMap<DateTime<Utc>, Decimal>>>);

#[async_trait]
impl PriceTickRepository for IndexedTicks {
    async fn insert_ticks(&self, ticks: &[PriceTick]) -> goldjobs::Result<()> {
        let mut m = self.0.lock().unwrap();
        for t in ticks {
            m.entry(t.symbol_code.clone())
                .or_default()
                .insert(t.ts, t.price);
        }
        Ok(())
    }
    async fn first_ticks_at_or_after(
        &self,
        queries: &[TickQuery],
    ) -> goldjobs::Result<Vec<Option<PriceTick>>> {
        let m = self.0.lock().unwrap();
        Ok(queries
            .iter()
            .map(|q| {
                m.get(&q.symbol_code)
                    .and_then(|s| s.range(q.at..).next())
                    .map(|(ts, price)| PriceTick {
                        symbol_code: q.symbol_code.clone(),
                        price: *price,
                        ts: *ts,
                        source: None,
                    })
            })
            .collect())
    }
    async fn latest_tick(&self, _symbol_code: &str) -> goldjobs::Result<Option<PriceTick>> {
        Ok(None)
    }
    async fn delete_ticks_before(&self, _b: DateTime<Utc>, _l: u32) -> goldjobs::Result<u64> {
        Ok(0)
    }
    async fn candles(&self, q: &goldjobs::CandleQuery) -> goldjobs::Result<Vec<goldjobs::Candle>> {
        let map = self.0.lock().unwrap();
        let ticks = map
            .get(&q.symbol_code)
            .map(|s| {
                s.range(q.from..q.to)
                    .map(|(t, p)| (*t, *p))
                    .collect::<Vec<_>>()
            })
            .unwrap_or_default();
        Ok(goldjobs::candles_from_ticks(q.interval, ticks))
    }
}

struct Symbols;

#[async_trait]
impl SymbolRepository for Symbols {
    async fn active_symbols(&self) -> goldjobs::Result<Vec<Symbol>> {
        Ok(Symbol::defaults())
    }
    async fn upsert_symbols(&self, _s: &[Symbol]) -> goldjobs::Result<()> {
        Ok(())
    }
}

struct NoHistory;

#[async_trait]
impl MarketData for NoHistory {
    fn name(&self) -> &'static str {
        "none"
    }
    async fn quotes(&self, _s: &[Symbol]) -> goldjobs::Result<QuoteBatch> {
        Ok(QuoteBatch::default())
    }
    async fn price_at(
        &self,
        _s: &Symbol,
        _at: DateTime<Utc>,
    ) -> goldjobs::Result<Option<PricePoint>> {
        Ok(None)
    }
}

struct World {
    repo: Arc<InMemoryPredictions>,
    ticks: Arc<IndexedTicks>,
    now: DateTime<Utc>,
}

fn t0() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-03-01T00:00:00Z")
        .unwrap()
        .with_timezone(&Utc)
}

async fn build() -> World {
    let repo = Arc::new(InMemoryPredictions::new());
    let ticks = Arc::new(IndexedTicks::default());
    // The platform's shape (guide: *The condition object*).
    let conditions = r#"{"A": {"condition": "price_change_percent >= 1.0"}, "B": {"condition": "price_change_percent > 0 AND price_change_percent < 1.0"}, "C": {"condition": "price_change_percent >= -0.5 AND price_change_percent <= 0"}, "D": {"condition": "price_change_percent < -0.5"}}"#;
    let options = ["A", "B", "C", "D"];
    let mut tick_batch = Vec::with_capacity(PREDICTIONS);
    for i in 0..PREDICTIONS {
        let id = format!("pred-{i:05}");
        let vt = t0() + ChronoDuration::seconds(i as i64);
        repo.insert_prediction(&Prediction::new_active(
            &id,
            "XAUUSD",
            format!("Gold after {i} seconds?"),
            Decimal::new(265_000, 2),
            vt,
            VerifyRule::Auto,
            Some(conditions.to_owned()),
            vt - ChronoDuration::days(1),
        ))
        .await
        .unwrap();
        // Prices wander between −2 % and +2 % of 2650.
        let step = (i as i64 * 7919) % 401 - 200; // −200..=200
        tick_batch.push(PriceTick {
            symbol_code: "XAUUSD".into(),
            price: Decimal::new(265_000 + step * 26, 2),
            ts: vt,
            source: None,
        });
        let votes: Vec<Vote> = (0..VOTES_PER_PREDICTION)
            .map(|v| Vote {
                prediction_id: id.clone(),
                user_id: format!("user-{}", (i * VOTES_PER_PREDICTION + v) % USERS),
                selected_option: options[(i + v) % 4].to_owned(),
                is_correct: None,
                created_at: vt - ChronoDuration::hours(1),
            })
            .collect();
        repo.insert_votes(&votes).await.unwrap();
    }
    ticks.insert_ticks(&tick_batch).await.unwrap();
    World {
        repo,
        ticks,
        now: t0() + ChronoDuration::seconds(PREDICTIONS as i64 + 1),
    }
}

fn bench_verify(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let mut group = c.benchmark_group("verify_10k_predictions_1m_votes");
    group.sample_size(10);
    group.warm_up_time(Duration::from_millis(1));
    group.measurement_time(Duration::from_secs(1));
    for batch in [500u32, 1] {
        group.bench_function(format!("batch_size_{batch}"), |b| {
            b.iter_batched(
                || rt.block_on(build()),
                |w| {
                    let job = PredictionVerifierJob::new(
                        &goldjobs_core::Ports::in_memory()
                            .with_predictions(w.repo.clone())
                            .with_ticks(w.ticks.clone())
                            .with_symbols(Arc::new(Symbols)),
                        Arc::new(NoHistory),
                    )
                    .with_config(VerifierConfig::default().with_batch_size(batch));
                    let ctx = JobContext {
                        cancel: Default::default(),
                        clock: Arc::new(ManualClock::new(w.now)),
                        attempt: 1,
                    };
                    let report = rt.block_on(job.run(&ctx)).unwrap();
                    assert!(
                        report.summary.starts_with("10000 claimed, 10000 verified"),
                        "{report:?}"
                    );
                    w // dropped outside the timing
                },
                BatchSize::PerIteration,
            )
        });
    }
    group.finish();
}

criterion_group!(benches, bench_verify);
criterion_main!(benches);
