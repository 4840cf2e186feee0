//! How long after its deadline a prediction gets its verdict, with the verifier's waker and
//! without it, with a provider stream and without one.
//!
//! ```text
//! cargo run --release --example verdict_delay              # 1,000 predictions over 60 s
//! cargo run --release --example verdict_delay -- --quick   # 200 over 15 s (or VERDICT_DELAY_QUICK=1)
//! cargo run --release --example verdict_delay -- --no-baseline
//! ```
//!
//! Each scenario starts the embedded in-memory service in real time (system clock) over a
//! simulated provider (`sim`: every quote stamped when it is fetched), inserts N auto
//! predictions (one vote each, before their deadlines) whose `verify_time`s are spread
//! uniformly over the spread window starting 5 s after the start, round-robin over the six
//! default symbols, waits until every one is verified and reads back, per prediction,
//! **verdict delay** = `verified_at − verify_time` and **price delay** =
//! `price_at_verify_ts − verify_time` (how late the deciding tick is). Scenarios, one after the
//! other in one process:
//!
//! * **poll 5 s + waker**: no stream; the price job polls every 5 s, the verifier's sweep is
//!   60 s, the waker is on (the default);
//! * **stream 250 ms + waker**: as above plus an in-memory stream that sends a price for each
//!   symbol every 250 ms (each symbol on its own phase, like a provider's events);
//! * **poll 5 s, sweep only**: the old behaviour, no waker (`--no-baseline` leaves it out).
//!
//! The table gives p50/p90/p99/max in seconds, the verifier's runs (sweeps and wakes) and
//! how often the waker woke it.

#![allow(missing_docs)]

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use goldjobs::jobs::PredictionVerifierJob;
use goldjobs::memory::InMemoryMarketStream;
use goldjobs::prelude::*;
use goldjobs::service::MarketDataSource;
use goldjobs::{Prediction, PredictionStatus, StreamPrice, VerifyRule, Vote};
use rust_decimal::Decimal;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Duration;

const SYMBOLS: [(&str, i64); 6] = [
    ("XAUUSD", 265_000),
    ("XAGUSD", 3_100),
    ("EURUSD", 108),
    ("GBPUSD", 127),
    ("USDJPY", 15_100),
    ("BTCUSD", 9_500_000),
];
const CONDITIONS: &str = r#"{"A": {"condition": "price_change_percent >= 0"}, "B": {"condition": "price_change_percent < 0"}}"#;
/// From the start of a service to the first deadline: the stream is open by then.
const LEAD: Duration = Duration::from_secs(5);
const SWEEP: Duration = Duration::from_secs(60);
const PRICE_INTERVAL: Duration = Duration::from_secs(5);
const STREAM_EVERY: Duration = Duration::from_millis(250);

/// Prices of `code` in cents, one cent up per call: never a failure, never history.
fn price(code: &str, step: i64) -> Decimal {
    let base = SYMBOLS
        .iter()
        .find(|(c, _)| *c == code)
        .map_or(10_000, |(_, b)| *b);
    Decimal::new(base.checked_add(step % 100).unwrap_or(base), 2)
}

/// A provider whose quotes are stamped when they are fetched.
#[derive(Debug, Default)]
struct Sim {
    calls: AtomicI64,
}

#[async_trait]
impl MarketData for Sim {
    fn name(&self) -> &'static str {
        "sim"
    }

    async fn quotes(&self, symbols: &[Symbol]) -> Result<QuoteBatch> {
        let step = self.calls.fetch_add(1, Ordering::Relaxed);
        let mut batch = QuoteBatch::default();
        for s in symbols {
            batch.quotes.push(Quote {
                symbol_code: s.code.clone(),
                price: price(&s.code, step),
                change: Decimal::ZERO,
                change_percent: Decimal::ZERO,
                timestamp: Utc::now(),
                source: Some("sim".into()),
            });
        }
        Ok(batch)
    }

    async fn price_at(&self, _: &Symbol, _: DateTime<Utc>) -> Result<Option<PricePoint>> {
        Ok(None)
    }
}

#[derive(Debug, Clone, Copy)]
enum Scenario {
    Poll,
    Stream,
    SweepOnly,
}

impl Scenario {
    fn label(self) -> &'static str {
        match self {
            Scenario::Poll => "poll 5 s + waker",
            Scenario::Stream => "stream 250 ms + waker",
            Scenario::SweepOnly => "poll 5 s, sweep only (before)",
        }
    }
}

struct Figures {
    verdict: Vec<f64>,
    price: Vec<f64>,
    verifier_runs: u64,
    wakes: u64,
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = (p / 100.0 * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn summary(values: &mut [f64]) -> String {
    values.sort_by(f64::total_cmp);
    format!(
        "{:.2} / {:.2} / {:.2} / {:.2}",
        percentile(values, 50.0),
        percentile(values, 90.0),
        percentile(values, 99.0),
        percentile(values, 100.0)
    )
}

fn seconds(d: chrono::Duration) -> f64 {
    d.num_microseconds().map_or(f64::NAN, |us| us as f64 / 1e6)
}

async fn run(
    scenario: Scenario,
    n: usize,
    spread: Duration,
) -> std::result::Result<Figures, Box<dyn std::error::Error>> {
    let mut config = ServiceConfig::default()
        .with_market_data([MarketDataSource::custom(Sim::default())])
        .with_price_interval(PRICE_INTERVAL)
        .with_verify_interval(SWEEP)
        .with_log_notifications(false);
    if matches!(scenario, Scenario::SweepOnly) {
        config = config.with_verify_wake(None);
    }
    let mut builder = Service::builder(config);
    let stream = InMemoryMarketStream::new("sim-stream");
    if matches!(scenario, Scenario::Stream) {
        builder = builder.market_stream(Arc::new(stream.clone()));
    }
    let service = builder.start().await?;
    let start = Utc::now();

    // The provider's stream: every symbol every 250 ms, each on its own phase.
    let mut feeders = Vec::new();
    if matches!(scenario, Scenario::Stream) {
        for (i, (code, _)) in SYMBOLS.iter().enumerate() {
            let stream = stream.clone();
            let phase = STREAM_EVERY.mul_f64(i as f64 / SYMBOLS.len() as f64);
            feeders.push(tokio::spawn(async move {
                tokio::time::sleep(phase).await;
                let mut every = tokio::time::interval(STREAM_EVERY);
                for step in 0i64.. {
                    every.tick().await;
                    stream.send(StreamPrice {
                        symbol_code: (*code).to_owned(),
                        price: price(code, step),
                        timestamp: Utc::now(),
                        reference: None,
                    });
                }
            }));
        }
    }

    // N predictions, deadlines uniform over [start + LEAD, start + LEAD + spread), one vote
    // each, all written before the first deadline.
    let first = start + chrono::Duration::from_std(LEAD)?;
    let spread_us = i64::try_from(spread.as_micros())?;
    let ports = service.ports().clone();
    let mut ids = Vec::with_capacity(n);
    for i in 0..n {
        let offset = spread_us * i64::try_from(i)? / i64::try_from(n)?;
        let verify_time = first + chrono::Duration::microseconds(offset);
        let (code, _) = SYMBOLS[i % SYMBOLS.len()];
        let id = format!("delay-{i:04}");
        let p = Prediction::new_active(
            &id,
            code,
            "Up by the deadline?",
            price(code, 0),
            verify_time,
            VerifyRule::Auto,
            Some(CONDITIONS.to_owned()),
            start,
        );
        ports.predictions.insert_prediction(&p).await?;
        ports
            .predictions
            .insert_votes(&[Vote {
                prediction_id: id.clone(),
                user_id: format!("user-{}", i % 50),
                selected_option: "A".into(),
                is_correct: None,
                created_at: start,
            }])
            .await?;
        ids.push(id);
    }
    if Utc::now() >= first {
        return Err("writing the predictions took longer than the lead".into());
    }

    // Wait until every one is decided (the sweep alone needs up to one period after the last).
    let give_up = tokio::time::Instant::now() + LEAD + spread + SWEEP * 2;
    let decided: Vec<Prediction> = loop {
        let mut all = Vec::with_capacity(n);
        for id in &ids {
            if let Some(p) = ports.predictions.get_prediction(id).await? {
                if p.status != PredictionStatus::Active {
                    all.push(p);
                }
            }
        }
        if all.len() == n {
            break all;
        }
        if tokio::time::Instant::now() > give_up {
            return Err(format!("{}: only {} of {n} verified", scenario.label(), all.len()).into());
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    for f in feeders {
        f.abort();
    }
    let verifier_runs = service.jobs().job_status(PredictionVerifierJob::NAME)?.runs;
    let wakes = service.verify_waker().map_or(0, |w| w.wakes());
    service.shutdown(Duration::from_secs(10)).await;

    let mut figures = Figures {
        verdict: Vec::with_capacity(n),
        price: Vec::with_capacity(n),
        verifier_runs,
        wakes,
    };
    for p in &decided {
        if p.status != PredictionStatus::Ended {
            return Err(format!("{} ended as {:?}: {:?}", p.id, p.status, p.review_reason).into());
        }
        let (Some(verified_at), Some(priced_at)) = (p.verified_at, p.price_at_verify_ts) else {
            return Err(format!("{} has no verified_at or price_at_verify_ts", p.id).into());
        };
        figures.verdict.push(seconds(verified_at - p.verify_time));
        figures.price.push(seconds(priced_at - p.verify_time));
    }
    Ok(figures)
}

#[tokio::main(flavor = "multi_thread")]
async fn main() -> std::result::Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .init();
    let args: Vec<String> = std::env::args().skip(1).collect();
    let quick = args.iter().any(|a| a == "--quick")
        || std::env::var("VERDICT_DELAY_QUICK").is_ok_and(|v| v == "1");
    let baseline = !args.iter().any(|a| a == "--no-baseline");
    let (n, spread) = if quick {
        (200, Duration::from_secs(15))
    } else {
        (1_000, Duration::from_secs(60))
    };
    let mut scenarios = vec![Scenario::Poll, Scenario::Stream];
    if baseline {
        scenarios.push(Scenario::SweepOnly);
    }
    eprintln!(
        "{n} predictions, deadlines over {} s, price job every {} s, sweep every {} s",
        spread.as_secs(),
        PRICE_INTERVAL.as_secs(),
        SWEEP.as_secs()
    );
    let mut rows = Vec::new();
    for scenario in scenarios {
        eprintln!("running: {}", scenario.label());
        let mut f = run(scenario, n, spread).await?;
        rows.push(format!(
            "| {} | {} | {} | {} | {} |",
            scenario.label(),
            summary(&mut f.verdict),
            summary(&mut f.price),
            f.verifier_runs,
            f.wakes
        ));
    }
    println!(
        "| scenario | verdict delay s (p50 / p90 / p99 / max) | price delay s (p50 / p90 / p99 / max) | verifier runs | wakes |"
    );
    println!("|---|---|---|---|---|");
    for row in rows {
        println!("{row}");
    }
    Ok(())
}
