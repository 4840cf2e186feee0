//! The Twelve Data credit budget keeps credits for history (guide: *How the price at verify time is
//! chosen*), end to end: the real `TwelveDataMarketData` against a loopback Twelve Data, the real
//! `PriceFetcherJob` every 5 s and the real `PredictionVerifierJob` every 60 s over the in-memory
//! backend, at the contract's default budget (8 credits a minute) with its 6 default symbols, on
//! paused tokio time.
//!
//! After a downtime the first tick of a prediction is later than `verify_time + max_lag`, so the
//! verifier must ask `price_at`. Without the history reserve the price job would take every
//! credit the instant it frees and the verifier would be rate limited run after run; with it the
//! prediction is verified within two verifier runs, whatever the phase of the verifier's runs
//! against the price job's.
#![cfg(feature = "twelvedata")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

use chrono::{DateTime, Duration as ChronoDuration, NaiveDateTime, TimeZone, Utc};
use goldjobs_adapters::market::{TwelveDataConfig, TwelveDataMarketData};
use goldjobs_core::jobs::{PredictionVerifierJob, VerifierConfig};
use goldjobs_core::jobs::{PriceFetcherConfig, PriceFetcherJob};
use goldjobs_core::memory::{
    InMemoryPredictions, InMemoryQuoteCache, InMemorySymbols, InMemoryTicks, LocalBroadcaster,
};
use goldjobs_core::runtime::{Job, JobContext};
use goldjobs_core::{
    Clock, ManualClock, MarketData, Prediction, PredictionRepository, PredictionStatus,
    PriceSource, VerifyRule,
};
use rust_decimal::Decimal;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use wiremock::matchers::path;
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

/// Credits the loopback provider saw: (instant on the test's clock, credits).
type Ledger = Arc<Mutex<Vec<(DateTime<Utc>, u32)>>>;

fn query(req: &Request, key: &str) -> Option<String> {
    req.url
        .query_pairs()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.into_owned())
}

fn json(v: serde_json::Value) -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_raw(v.to_string().into_bytes(), "application/json")
}

/// `/quote`: the keyed batch form for the symbols asked, priced now (`last_quote_at`).
struct Quotes {
    clock: ManualClock,
    ledger: Ledger,
}

impl Respond for Quotes {
    fn respond(&self, req: &Request) -> ResponseTemplate {
        let now = self.clock.now();
        let asked = query(req, "symbol").unwrap_or_default();
        let mut body = serde_json::Map::new();
        for ps in asked.split(',') {
            body.insert(
                ps.to_owned(),
                serde_json::json!({"symbol": ps, "close": "2699.00000", "change": "1.0",
                    "percent_change": "0.04", "last_quote_at": now.timestamp()}),
            );
        }
        self.ledger
            .lock()
            .unwrap()
            .push((now, asked.split(',').count() as u32));
        json(serde_json::Value::Object(body))
    }
}

/// `/time_series` (1min, UTC): one candle per minute from `start_date` to `end_date`, ascending,
/// each opening at 2650.
struct TimeSeries {
    clock: ManualClock,
    ledger: Ledger,
}

impl Respond for TimeSeries {
    fn respond(&self, req: &Request) -> ResponseTemplate {
        self.ledger.lock().unwrap().push((self.clock.now(), 1));
        assert_eq!(query(req, "timezone").as_deref(), Some("UTC"));
        assert_eq!(query(req, "interval").as_deref(), Some("1min"));
        let parse = |k: &str| {
            NaiveDateTime::parse_from_str(&query(req, k).unwrap(), "%Y-%m-%d %H:%M:%S")
                .unwrap()
                .and_utc()
        };
        let (start, end) = (parse("start_date"), parse("end_date"));
        let mut t = Utc
            .timestamp_opt(start.timestamp().div_euclid(60) * 60, 0)
            .unwrap();
        let mut values = Vec::new();
        while t <= end {
            if t >= start {
                values.push(serde_json::json!({
                    "datetime": t.format("%Y-%m-%d %H:%M:%S").to_string(),
                    "open": "2650.00000", "high": "2651.00000", "low": "2649.00000",
                    "close": "2650.50000"}));
            }
            t += ChronoDuration::minutes(1);
        }
        json(
            serde_json::json!({"meta": {"symbol": query(req, "symbol"), "interval": "1min"},
            "values": values, "status": "ok"}),
        )
    }
}

/// Keeps tokio's paused clock from auto-advancing while the loopback server answers (a running
/// `spawn_blocking` task inhibits it, see `tokio::time::pause`); time moves only by `advance`.
struct NoAutoAdvance(Option<std::sync::mpsc::Sender<()>>);

impl NoAutoAdvance {
    fn new() -> Self {
        let (tx, rx) = std::sync::mpsc::channel::<()>();
        tokio::task::spawn_blocking(move || {
            let _ = rx.recv();
        });
        NoAutoAdvance(Some(tx))
    }
}

impl Drop for NoAutoAdvance {
    fn drop(&mut self) {
        // Dropping the sender ends the blocking task.
        self.0.take();
    }
}

const AB: &str = r#"{"A": {"condition": "price_change_percent >= 0"},
    "B": {"condition": "price_change_percent < 0"}}"#;

/// One world: a restart after a downtime at `start`, two predictions due during the downtime.
struct World {
    clock: ManualClock,
    ledger: Ledger,
    predictions: Arc<InMemoryPredictions>,
    price_job: PriceFetcherJob,
    verifier: PredictionVerifierJob,
    _server: MockServer,
}

fn start() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 2, 9, 0, 0).unwrap()
}

/// Due during the downtime, not on a minute boundary: the first candle starts 40 s later.
fn gold_vt() -> DateTime<Utc> {
    start() - ChronoDuration::minutes(30) + ChronoDuration::seconds(20)
}

fn silver_vt() -> DateTime<Utc> {
    start() - ChronoDuration::minutes(45)
}

impl World {
    async fn new(history_reserve: Option<u32>) -> World {
        let clock = ManualClock::new(start());
        let ledger: Ledger = Arc::default();
        let server = MockServer::start().await;
        Mock::given(path("/quote"))
            .respond_with(Quotes {
                clock: clock.clone(),
                ledger: ledger.clone(),
            })
            .mount(&server)
            .await;
        Mock::given(path("/time_series"))
            .respond_with(TimeSeries {
                clock: clock.clone(),
                ledger: ledger.clone(),
            })
            .mount(&server)
            .await;
        // The contract's default plan; the client's default reserve unless told otherwise.
        let mut config = TwelveDataConfig::new("budget-test-key")
            .with_base_url(server.uri())
            .with_credits_per_minute(8);
        if let Some(r) = history_reserve {
            config = config.with_history_reserve(r);
        }
        let market: Arc<dyn MarketData> = Arc::new(TwelveDataMarketData::new(config).unwrap());
        let symbols = Arc::new(InMemorySymbols::with_defaults());
        let ticks = Arc::new(InMemoryTicks::new());
        let predictions = Arc::new(InMemoryPredictions::new());
        for (id, code, vt) in [
            ("gold", "XAUUSD", gold_vt()),
            ("silver", "XAGUSD", silver_vt()),
        ] {
            predictions
                .insert_prediction(&Prediction::new_active(
                    id,
                    code,
                    format!("{code} up?"),
                    Decimal::new(2600, 0),
                    vt,
                    VerifyRule::Auto,
                    Some(AB.to_owned()),
                    vt - ChronoDuration::days(1),
                ))
                .await
                .unwrap();
        }
        let price_job = PriceFetcherJob::new(
            &goldjobs_core::Ports::in_memory()
                .with_symbols(symbols.clone())
                .with_ticks(ticks.clone()),
            market.clone(),
            Arc::new(InMemoryQuoteCache::new()),
            Arc::new(LocalBroadcaster::new()),
        )
        .with_config(PriceFetcherConfig::default());
        let verifier = PredictionVerifierJob::new(
            &goldjobs_core::Ports::in_memory()
                .with_predictions(predictions.clone())
                .with_ticks(ticks)
                .with_symbols(symbols),
            market,
        )
        .with_config(VerifierConfig::default());
        World {
            clock,
            ledger,
            predictions,
            price_job,
            verifier,
            _server: server,
        }
    }

    fn ctx(&self) -> JobContext {
        JobContext {
            cancel: CancellationToken::new(),
            clock: Arc::new(self.clock.clone()),
            attempt: 1,
        }
    }

    async fn advance(&self, secs: u64) {
        tokio::time::advance(Duration::from_secs(secs)).await;
        self.clock.advance(ChronoDuration::seconds(secs as i64));
    }

    async fn status(&self, id: &str) -> Prediction {
        self.predictions.get_prediction(id).await.unwrap().unwrap()
    }

    /// Run the price job every 5 s from the restart and the verifier every 60 s from `phase`
    /// seconds after it (the price job first when both are due), until both predictions are
    /// verified or `max_runs` verifier runs are done; returns the verifier runs it took.
    async fn run(&self, phase: u64, max_runs: u32) -> Option<u32> {
        let mut runs = 0;
        for t in (0..).step_by(5) {
            // Rate limited runs are expected (the budget is smaller than 6 symbols every 5 s).
            let _ = self.price_job.run(&self.ctx()).await;
            if t >= phase && (t - phase).is_multiple_of(60) {
                runs += 1;
                self.verifier.run(&self.ctx()).await.unwrap();
                if self.status("gold").await.status == PredictionStatus::Ended
                    && self.status("silver").await.status == PredictionStatus::Ended
                {
                    return Some(runs);
                }
                if runs == max_runs {
                    return None;
                }
            }
            self.advance(5).await;
        }
        None
    }

    /// The provider never saw more than 8 credits in any 60-second window.
    fn assert_budget_kept(&self) {
        let ledger = self.ledger.lock().unwrap();
        for (i, (t, _)) in ledger.iter().enumerate() {
            let in_window: u32 = ledger[i..]
                .iter()
                .take_while(|(u, _)| *u - *t < ChronoDuration::seconds(60))
                .map(|(_, n)| n)
                .sum();
            assert!(in_window <= 8, "{in_window} credits in the window from {t}");
        }
    }
}

#[tokio::test(start_paused = true)]
async fn history_needed_after_a_downtime_is_verified_within_two_verifier_runs() {
    let _inhibit = NoAutoAdvance::new();
    for phase in (0..60).step_by(5) {
        let w = World::new(None).await;
        let runs = w.run(phase, 2).await;
        let gold = w.status("gold").await;
        assert_eq!(
            runs.map(|r| r <= 2),
            Some(true),
            "phase {phase}: {gold:?}, {:?}",
            w.status("silver").await
        );
        // Decided by the provider's history, by the rule of §6.2: the open of the first candle
        // starting at or after verify_time, stamped with its start.
        assert_eq!(gold.price_source, Some(PriceSource::ProviderHistory));
        assert_eq!(gold.price_provider.as_deref(), Some("twelvedata"));
        assert_eq!(gold.price_at_verify, Some(Decimal::new(265_000_000, 5)));
        assert_eq!(
            gold.price_at_verify_ts,
            Some(gold_vt() + ChronoDuration::seconds(40))
        );
        assert_eq!(gold.correct_option.as_deref(), Some("A"));
        let silver = w.status("silver").await;
        assert_eq!(silver.price_at_verify_ts, Some(silver_vt()));
        assert_eq!(silver.price_source, Some(PriceSource::ProviderHistory));
        // The price job went on: every symbol has a tick, all in the budget.
        assert!(w.ledger.lock().unwrap().iter().any(|(_, n)| *n == 6));
        w.assert_budget_kept();
    }
}

/// The same world without a reserve: the price job takes each credit as it frees, and a
/// verifier whose runs do not fall right after the price job's first call never gets one.
#[tokio::test(start_paused = true)]
async fn without_the_reserve_the_verifier_starves() {
    let _inhibit = NoAutoAdvance::new();
    let w = World::new(Some(0)).await;
    assert_eq!(w.run(10, 5).await, None);
    assert_eq!(w.status("gold").await.status, PredictionStatus::Active);
    assert_eq!(w.status("silver").await.status, PredictionStatus::Active);
    w.assert_budget_kept();
}
