//! The demo feed: a seeded random walk from realistic price levels. **Not real prices.**
//!
//! Each `quotes` call moves every asked symbol by a few basis points (a random whole number of
//! basis points, the arithmetic itself in `Decimal`), rounded to the symbol's precision, with a
//! slight pull back towards the starting level so that a long-running demo stays realistic.
//! `change` and `change_percent` are against the level at the start of the UTC day (or at the
//! symbol's first quote on the day the feed started).

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};
use goldjobs_core::{
    Clock, MarketData, PricePoint, Quote, QuoteBatch, Result, Symbol, SystemClock,
};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use rust_decimal::{Decimal, RoundingStrategy};
use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex};

/// Largest step of one quote, in basis points.
const MAX_STEP_BPS: i64 = 4;

/// Starting level and precision (decimal places) of a symbol code.
fn start_level(code: &str) -> (Decimal, u32) {
    let (mantissa, scale) = match code {
        "XAUUSD" => (265_000, 2),
        "XAGUSD" => (31_000, 3),
        "EURUSD" => (108_000, 5),
        "GBPUSD" => (127_000, 5),
        "USDJPY" => (151_000, 3),
        "BTCUSD" => (9_700_000, 2),
        _ => (10_000, 2),
    };
    (Decimal::new(mantissa, scale), scale)
}

#[derive(Debug)]
struct Walk {
    base: Decimal,
    scale: u32,
    open: Decimal,
    current: Decimal,
    day: NaiveDate,
}

#[derive(Debug)]
struct State {
    rng: SmallRng,
    walks: HashMap<String, Walk>,
}

/// A market data feed for demos and development: a seeded random walk, logged as demo data.
pub struct DemoMarketData {
    seed: u64,
    clock: Arc<dyn Clock>,
    state: Mutex<State>,
}

impl fmt::Debug for DemoMarketData {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DemoMarketData")
            .field("seed", &self.seed)
            .finish_non_exhaustive()
    }
}

impl DemoMarketData {
    /// A walk with this seed on the system clock. Logs once that this is demo data.
    pub fn new(seed: u64) -> Self {
        Self::with_clock(seed, Arc::new(SystemClock))
    }

    /// A walk with this seed on the given clock (timestamps, day boundaries).
    pub fn with_clock(seed: u64, clock: Arc<dyn Clock>) -> Self {
        tracing::warn!(
            seed,
            "market data: DEMO DATA — a seeded random walk, not real prices"
        );
        DemoMarketData {
            seed,
            clock,
            state: Mutex::new(State {
                rng: SmallRng::seed_from_u64(seed),
                walks: HashMap::new(),
            }),
        }
    }

    /// Always true: these are not real prices (for `/health` and the dashboard).
    pub fn is_demo(&self) -> bool {
        true
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Walk {
    fn new(code: &str, today: NaiveDate) -> Self {
        let (base, scale) = start_level(code);
        Walk {
            base,
            scale,
            open: base,
            current: base,
            day: today,
        }
    }

    fn roll_day(&mut self, today: NaiveDate) {
        if today != self.day {
            self.day = today;
            self.open = self.current;
        }
    }

    fn step(&mut self, rng: &mut SmallRng) {
        // Pull back towards the base level when more than 5 % away.
        let hi = self.base * Decimal::new(105, 2);
        let lo = self.base * Decimal::new(95, 2);
        let (min, max) = if self.current > hi {
            (-MAX_STEP_BPS - 2, MAX_STEP_BPS - 2)
        } else if self.current < lo {
            (-MAX_STEP_BPS + 2, MAX_STEP_BPS + 2)
        } else {
            (-MAX_STEP_BPS, MAX_STEP_BPS)
        };
        let bps = rng.gen_range(min..=max);
        let factor = Decimal::ONE + Decimal::new(bps, 4);
        let tick = Decimal::new(1, self.scale);
        let next = (self.current * factor)
            .round_dp_with_strategy(self.scale, RoundingStrategy::MidpointAwayFromZero);
        self.current = next.max(tick);
    }

    fn quote(&self, code: &str, at: DateTime<Utc>) -> Quote {
        let change = self.current - self.open;
        let mut change_percent = if self.open.is_zero() {
            Decimal::ZERO
        } else {
            (change / self.open * Decimal::ONE_HUNDRED)
                .round_dp_with_strategy(2, RoundingStrategy::MidpointNearestEven)
        };
        // Always two places ("0.00", not "0" or "-0.00"), like the provider's percentages.
        if change_percent.is_zero() {
            change_percent = Decimal::ZERO;
        }
        change_percent.rescale(2);
        Quote {
            symbol_code: code.to_owned(),
            price: self.current,
            change,
            change_percent,
            timestamp: at,
            source: Some(goldjobs_core::DEMO_SOURCE.to_owned()),
        }
    }
}

#[async_trait]
impl MarketData for DemoMarketData {
    fn name(&self) -> &'static str {
        "demo"
    }

    fn is_demo(&self) -> bool {
        true
    }

    async fn quotes(&self, symbols: &[Symbol]) -> Result<QuoteBatch> {
        let now = self.clock.now();
        let today = now.date_naive();
        let mut state = self.lock();
        let State { rng, walks } = &mut *state;
        let mut batch = QuoteBatch::default();
        for s in symbols {
            let walk = walks
                .entry(s.code.clone())
                .or_insert_with(|| Walk::new(&s.code, today));
            walk.roll_day(today);
            walk.step(rng);
            batch.quotes.push(walk.quote(&s.code, now));
        }
        Ok(batch)
    }

    /// The demo feed has no history: a made-up price never stands in for a real one after
    /// downtime (guide: *How the price at verify time is chosen*), so a prediction that needs
    /// history goes to review.
    async fn price_at(&self, _symbol: &Symbol, _at: DateTime<Utc>) -> Result<Option<PricePoint>> {
        Ok(None)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use goldjobs_core::ManualClock;
    use std::str::FromStr;

    fn clock() -> ManualClock {
        ManualClock::new(Utc.with_ymd_and_hms(2026, 11, 27, 23, 59, 0).unwrap())
    }

    #[tokio::test]
    async fn same_seed_same_walk_and_realistic_levels() {
        let syms = Symbol::defaults();
        let a = DemoMarketData::with_clock(7, Arc::new(clock()));
        let b = DemoMarketData::with_clock(7, Arc::new(clock()));
        for _ in 0..50 {
            let qa = a.quotes(&syms).await.unwrap();
            let qb = b.quotes(&syms).await.unwrap();
            assert_eq!(qa.quotes, qb.quotes);
            assert!(qa.failures.is_empty());
        }
        let q = a.quotes(&syms).await.unwrap().quotes;
        let gold = &q[0];
        assert_eq!(gold.symbol_code, "XAUUSD");
        assert!(gold.price > Decimal::from(2500) && gold.price < Decimal::from(2800));
        assert!(gold.price.scale() <= 2);
        let eur = &q[2];
        assert!(eur.price > Decimal::from_str("1.0").unwrap());
        assert!(eur.price.scale() <= 5);
        assert_eq!(q[5].symbol_code, "BTCUSD");
        assert!(q[5].price > Decimal::from(90_000));
        // Change is against the day's open (the start level on the first day).
        assert_eq!(gold.change, gold.price - Decimal::from(2650));
        assert!(a.is_demo());
        assert_eq!(a.name(), "demo");
    }

    #[tokio::test]
    async fn steps_are_small_and_day_rolls_over() {
        let c = clock();
        let demo = DemoMarketData::with_clock(1, Arc::new(c.clone()));
        let syms = vec![Symbol::new("ABCXYZ", "unknown", "ABC/XYZ")];
        let mut prev = Decimal::from(100);
        for _ in 0..200 {
            let q = demo.quotes(&syms).await.unwrap().quotes.remove(0);
            let step = ((q.price - prev) / prev).abs();
            assert!(step <= Decimal::new(7, 4), "step {step}");
            prev = q.price;
        }
        c.advance(chrono::Duration::minutes(2));
        let q = demo.quotes(&syms).await.unwrap().quotes.remove(0);
        // New day: the open is the last level of yesterday, so the change is one step.
        assert!(q.change.abs() <= prev * Decimal::new(7, 4));
        // The demo feed never answers a history request (guide: *How the price at verify time is
        // chosen*).
        assert_eq!(demo.price_at(&syms[0], Utc::now()).await.unwrap(), None);
    }
}
