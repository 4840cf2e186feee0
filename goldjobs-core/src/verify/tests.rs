//! Tests of the verifier job: every branch of the guide's *Verification rules* on the in-memory
//! repository, manual resolution, a race of two verifiers, and (feature `mocks`) port interactions.

#![allow(clippy::unwrap_used)]

use crate::jobs::{PredictionVerifierJob, VerifierConfig};
use crate::memory::InMemoryPredictions;
use crate::model::*;
use crate::ports::*;
use crate::runtime::{Job, JobContext};
use crate::verify::{ManualResolver, MAX_REASON_CHARS};
use crate::{Error, ManualClock, Result};
use async_trait::async_trait;
use chrono::{DateTime, Duration as ChronoDuration, Utc};
use rust_decimal::Decimal;
use std::collections::HashMap;
use std::str::FromStr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

pub(super) fn d(s: &str) -> Decimal {
    Decimal::from_str(s).unwrap()
}

pub(super) fn t0() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-03-01T12:00:00Z")
        .unwrap()
        .with_timezone(&Utc)
}

pub(super) fn secs(n: i64) -> ChronoDuration {
    ChronoDuration::seconds(n)
}

pub(super) const AB: &str =
    r#"{"A": "price_change_percent >= 0", "B": "price_change_percent < 0"}"#;

/// Ticks in memory (a small stand-in for the memory engineer's adapter).
#[derive(Default)]
pub(super) struct Ticks {
    ticks: Mutex<Vec<PriceTick>>,
    pub(super) first_calls: AtomicUsize,
}

impl Ticks {
    pub(super) fn add(&self, symbol: &str, price: &str, ts: DateTime<Utc>) {
        self.ticks.lock().unwrap().push(PriceTick {
            symbol_code: symbol.into(),
            price: d(price),
            ts,
            source: None,
        });
    }
}

#[async_trait]
impl PriceTickRepository for Ticks {
    async fn insert_ticks(&self, ticks: &[PriceTick]) -> Result<()> {
        self.ticks.lock().unwrap().extend_from_slice(ticks);
        Ok(())
    }
    async fn first_ticks_at_or_after(
        &self,
        queries: &[TickQuery],
    ) -> Result<Vec<Option<PriceTick>>> {
        self.first_calls.fetch_add(1, Ordering::SeqCst);
        let ticks = self.ticks.lock().unwrap();
        Ok(queries
            .iter()
            .map(|q| {
                ticks
                    .iter()
                    .filter(|t| t.symbol_code == q.symbol_code && t.ts >= q.at && q.admits(t))
                    .min_by_key(|t| t.ts)
                    .cloned()
            })
            .collect())
    }
    async fn latest_tick(&self, symbol_code: &str) -> Result<Option<PriceTick>> {
        let ticks = self.ticks.lock().unwrap();
        Ok(ticks
            .iter()
            .filter(|t| t.symbol_code == symbol_code)
            .max_by_key(|t| t.ts)
            .cloned())
    }
    async fn delete_ticks_before(&self, before: DateTime<Utc>, limit: u32) -> Result<u64> {
        let mut ticks = self.ticks.lock().unwrap();
        let n = ticks.len();
        let mut left = limit as usize;
        ticks.retain(|t| {
            if t.ts < before && left > 0 {
                left -= 1;
                false
            } else {
                true
            }
        });
        Ok((n - ticks.len()) as u64)
    }
    async fn candles(&self, query: &CandleQuery) -> Result<Vec<Candle>> {
        let mut ticks: Vec<(DateTime<Utc>, Decimal)> = self
            .ticks
            .lock()
            .unwrap()
            .iter()
            .filter(|t| t.symbol_code == query.symbol_code && t.ts >= query.from && t.ts < query.to)
            .map(|t| (t.ts, t.price))
            .collect();
        ticks.sort_by_key(|t| t.0);
        Ok(candles_from_ticks(query.interval, ticks))
    }
}

pub(super) struct Symbols(pub(super) Vec<Symbol>);

#[async_trait]
impl SymbolRepository for Symbols {
    async fn active_symbols(&self) -> Result<Vec<Symbol>> {
        Ok(self.0.clone())
    }
    async fn upsert_symbols(&self, _symbols: &[Symbol]) -> Result<()> {
        Ok(())
    }
}

/// What the fake provider answers to `price_at`.
#[derive(Debug, Clone)]
pub(super) enum History {
    Price(&'static str),
    /// This price, stamped this many seconds after the instant asked.
    PriceAt(&'static str, i64),
    Nothing,
    Temporary,
    Permanent,
}

pub(super) struct Market {
    answer: Mutex<History>,
    pub(super) calls: AtomicUsize,
    /// Whether it claims to be the demo feed.
    pub(super) demo: bool,
}

impl Market {
    pub(super) fn new(answer: History) -> Self {
        Market {
            answer: Mutex::new(answer),
            calls: AtomicUsize::new(0),
            demo: false,
        }
    }
}

#[async_trait]
impl MarketData for Market {
    fn name(&self) -> &'static str {
        "fake"
    }
    fn is_demo(&self) -> bool {
        self.demo
    }
    async fn quotes(&self, _symbols: &[Symbol]) -> Result<QuoteBatch> {
        Ok(QuoteBatch::default())
    }
    async fn price_at(&self, _symbol: &Symbol, at: DateTime<Utc>) -> Result<Option<PricePoint>> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        match self.answer.lock().unwrap().clone() {
            History::Price(p) => Ok(Some(PricePoint {
                price: d(p),
                ts: at,
                source: None,
            })),
            History::PriceAt(p, after) => Ok(Some(PricePoint {
                price: d(p),
                ts: at + secs(after),
                source: None,
            })),
            History::Nothing => Ok(None),
            History::Temporary => Err(Error::unavailable("fake", "503", None)),
            History::Permanent => Err(Error::backend("fake", "symbol not supported", None)),
        }
    }
}

pub(super) fn prediction(
    id: &str,
    vt: DateTime<Utc>,
    create: &str,
    conditions: &str,
) -> Prediction {
    Prediction::new_active(
        id,
        "XAUUSD",
        format!("question {id}"),
        d(create),
        vt,
        VerifyRule::Auto,
        Some(conditions.to_owned()),
        vt - secs(86_400),
    )
}

pub(super) fn vote(p: &str, user: &str, option: &str) -> Vote {
    Vote {
        prediction_id: p.into(),
        user_id: user.into(),
        selected_option: option.into(),
        is_correct: None,
        created_at: t0() - secs(3600),
    }
}

pub(super) struct World {
    pub(super) repo: Arc<InMemoryPredictions>,
    pub(super) ticks: Arc<Ticks>,
    pub(super) market: Arc<Market>,
    pub(super) clock: ManualClock,
    pub(super) symbols: Vec<Symbol>,
}

impl World {
    pub(super) fn new(history: History) -> Self {
        World {
            repo: Arc::new(InMemoryPredictions::new()),
            ticks: Arc::default(),
            market: Arc::new(Market::new(history)),
            clock: ManualClock::new(t0()),
            symbols: Symbol::defaults(),
        }
    }

    pub(super) fn ports(&self) -> Ports {
        Ports::in_memory()
            .with_predictions(self.repo.clone())
            .with_ticks(self.ticks.clone())
            .with_symbols(Arc::new(Symbols(self.symbols.clone())))
    }

    pub(super) fn job(&self, config: VerifierConfig) -> PredictionVerifierJob {
        PredictionVerifierJob::new(&self.ports(), self.market.clone()).with_config(config)
    }

    pub(super) fn resolver(&self) -> ManualResolver {
        ManualResolver::new(&self.ports(), self.market.clone())
    }

    pub(super) fn ctx(&self) -> JobContext {
        JobContext {
            cancel: CancellationToken::new(),
            clock: Arc::new(self.clock.clone()),
            attempt: 1,
        }
    }

    pub(super) async fn insert(&self, p: Prediction) {
        self.repo.insert_prediction(&p).await.unwrap();
    }

    pub(super) async fn get(&self, id: &str) -> Prediction {
        self.repo.get_prediction(id).await.unwrap().unwrap()
    }

    pub(super) async fn run(&self) -> crate::runtime::RunReport {
        self.job(VerifierConfig::default())
            .run(&self.ctx())
            .await
            .unwrap()
    }
}

impl World {
    /// A first tick of XAUUSD far later than `verify_time + max lag` (the price job was down),
    /// so the verifier must ask the provider's history (§6.2).
    pub(super) async fn insert_late_tick(&self) {
        self.ticks
            .insert_ticks(&[PriceTick {
                symbol_code: "XAUUSD".into(),
                price: d("2699"),
                ts: t0() + secs(3000),
                source: None,
            }])
            .await
            .unwrap();
    }
}

// ---------------------------------------------------------------- §6 branches, table style

/// One scenario: a prediction due at t0, optionally a tick, a provider answer, a run at `now`.
struct Case {
    name: &'static str,
    create: &'static str,
    conditions: &'static str,
    tick: Option<(&'static str, i64)>,
    history: History,
    now_after_vt: i64,
    expect: Expect,
}

#[derive(Debug)]
enum Expect {
    Ended {
        option: &'static str,
        price: &'static str,
        percent: &'static str,
        source: PriceSource,
        ts_after_vt: i64,
    },
    Review(&'static str),
    Active,
}

#[tokio::test]
async fn every_branch_of_section_6() {
    use Expect::*;
    let lag = 300; // default max lag, seconds
    let cases = vec![
        Case {
            name: "tick found",
            create: "2650",
            conditions: AB,
            tick: Some(("2680.00", 2)),
            history: History::Permanent,
            now_after_vt: 60,
            expect: Ended {
                option: "A",
                price: "2680.00",
                percent: "1.13",
                source: PriceSource::Tick,
                ts_after_vt: 2,
            },
        },
        Case {
            name: "tick exactly at verify_time + max lag still counts",
            create: "2650",
            conditions: AB,
            tick: Some(("2600", lag)),
            history: History::Permanent,
            now_after_vt: lag + 10,
            expect: Ended {
                option: "B",
                price: "2600",
                percent: "-1.89",
                source: PriceSource::Tick,
                ts_after_vt: lag,
            },
        },
        Case {
            name: "no tick yet stays active",
            create: "2650",
            conditions: AB,
            tick: None,
            history: History::Price("1"),
            now_after_vt: 60,
            expect: Active,
        },
        Case {
            // §6.2: only a first tick later than the lag sends us to the provider; with no tick
            // at all the prediction waits, because a tick priced inside the lag window may
            // still be stored late.
            name: "no tick long after the lag still stays active",
            create: "2650",
            conditions: AB,
            tick: None,
            history: History::Price("2640.00"),
            now_after_vt: lag * 10,
            expect: Active,
        },
        Case {
            name: "tick too late: provider history",
            create: "2650",
            conditions: AB,
            tick: Some(("9999", lag + 1)),
            history: History::Price("2650.00"),
            now_after_vt: 3600,
            expect: Ended {
                option: "A",
                price: "2650.00",
                percent: "0.00",
                source: PriceSource::ProviderHistory,
                ts_after_vt: 0,
            },
        },
        Case {
            name: "history: a candle starting 30 s after verify_time is the first price",
            create: "2650",
            conditions: AB,
            tick: Some(("9999", lag + 1)),
            history: History::PriceAt("2600.00", 30),
            now_after_vt: 3600,
            expect: Ended {
                option: "B",
                price: "2600.00",
                percent: "-1.89",
                source: PriceSource::ProviderHistory,
                ts_after_vt: 30,
            },
        },
        Case {
            name: "history: a price from before verify_time never decides",
            create: "2650",
            conditions: AB,
            tick: Some(("9999", lag + 1)),
            history: History::PriceAt("2650.00", -1),
            now_after_vt: 3600,
            expect: Review("cannot decide"),
        },
        Case {
            name: "history: a price more than a minute after verify_time never decides",
            create: "2650",
            conditions: AB,
            tick: Some(("9999", lag + 1)),
            history: History::PriceAt("2650.00", 61),
            now_after_vt: 3600,
            expect: Review("at most one minute later"),
        },
        Case {
            name: "history: a price of zero never decides",
            create: "2650",
            conditions: AB,
            tick: Some(("9999", lag + 1)),
            history: History::PriceAt("0", 0),
            now_after_vt: 3600,
            expect: Review("must be > 0"),
        },
        Case {
            name: "history has none",
            create: "2650",
            conditions: AB,
            tick: Some(("9999", lag + 1)),
            history: History::Nothing,
            now_after_vt: 3600,
            expect: Review("has no price at that time"),
        },
        Case {
            name: "history temporary error stays active",
            create: "2650",
            conditions: AB,
            tick: Some(("2699", lag + 60)),
            history: History::Temporary,
            now_after_vt: 3600,
            expect: Active,
        },
        Case {
            name: "history permanent error",
            create: "2650",
            conditions: AB,
            tick: Some(("2699", lag + 60)),
            history: History::Permanent,
            now_after_vt: 3600,
            expect: Review("symbol not supported"),
        },
        Case {
            name: "price_at_create zero",
            create: "0",
            conditions: AB,
            tick: Some(("2680", 1)),
            history: History::Permanent,
            now_after_vt: 60,
            expect: Review("price_at_create is 0"),
        },
        Case {
            name: "price_at_create negative",
            create: "-5",
            conditions: AB,
            tick: Some(("2680", 1)),
            history: History::Permanent,
            now_after_vt: 60,
            expect: Review("must be > 0"),
        },
        Case {
            name: "JSON key order decides (B first)",
            create: "2650",
            conditions: r#"{"B": "price_change_percent > 0", "A": "price_change_percent > 1"}"#,
            tick: Some(("2680.00", 1)),
            history: History::Permanent,
            now_after_vt: 60,
            expect: Ended {
                option: "B",
                price: "2680.00",
                percent: "1.13",
                source: PriceSource::Tick,
                ts_after_vt: 1,
            },
        },
        Case {
            name: "JSON key order decides (A first)",
            create: "2650",
            conditions: r#"{"A": "price_change_percent > 1", "B": "price_change_percent > 0"}"#,
            tick: Some(("2680.00", 1)),
            history: History::Permanent,
            now_after_vt: 60,
            expect: Ended {
                option: "A",
                price: "2680.00",
                percent: "1.13",
                source: PriceSource::Tick,
                ts_after_vt: 1,
            },
        },
        Case {
            name: "rounded percent half to even is what conditions see",
            create: "1000",
            conditions: r#"{"X": "price_change_percent = 1.13", "Y": "price_change_percent = 1.12"}"#,
            tick: Some(("1011.25", 1)),
            history: History::Permanent,
            now_after_vt: 60,
            expect: Ended {
                option: "Y",
                price: "1011.25",
                percent: "1.12",
                source: PriceSource::Tick,
                ts_after_vt: 1,
            },
        },
        Case {
            name: "no condition true",
            create: "2650",
            conditions: r#"{"A": "price_change_percent >= 5", "B": "price_change_percent <= -5"}"#,
            tick: Some(("2680.00", 1)),
            history: History::Permanent,
            now_after_vt: 60,
            expect: Review("no condition matched price_change_percent = 1.13"),
        },
        Case {
            name: "unparsable condition",
            create: "2650",
            conditions: r#"{"A": "price_change_percent >= 1", "B": "price_change_percent <<< 1"}"#,
            tick: Some(("2680.00", 1)),
            history: History::Permanent,
            now_after_vt: 60,
            expect: Review("option \"B\""),
        },
        Case {
            name: "conditions not JSON",
            create: "2650",
            conditions: "A: up",
            tick: Some(("2680.00", 1)),
            history: History::Permanent,
            now_after_vt: 60,
            expect: Review("auto_verify_conditions"),
        },
    ];
    for case in cases {
        let w = World::new(case.history.clone());
        let vt = t0();
        w.insert(prediction("p", vt, case.create, case.conditions))
            .await;
        w.repo
            .insert_votes(&[vote("p", "alice", "A"), vote("p", "bob", "B")])
            .await
            .unwrap();
        if let Some((price, after)) = case.tick {
            w.ticks.add("XAUUSD", price, vt + secs(after));
        }
        // Another symbol's tick never counts.
        w.ticks.add("XAGUSD", "31.00", vt);
        w.clock.set(vt + secs(case.now_after_vt));
        let report = w.run().await;
        let p = w.get("p").await;
        let name = case.name;
        match case.expect {
            Ended {
                option,
                price,
                percent,
                source,
                ts_after_vt,
            } => {
                assert_eq!(p.status, PredictionStatus::Ended, "{name}: {report:?}");
                assert_eq!(p.correct_option.as_deref(), Some(option), "{name}");
                assert_eq!(p.price_at_verify, Some(d(price)), "{name}");
                assert_eq!(
                    p.price_change_percent.map(|x| x.to_string()),
                    Some(percent.to_owned()),
                    "{name}"
                );
                assert_eq!(p.price_source, Some(source), "{name}");
                assert_eq!(p.price_at_verify_ts, Some(vt + secs(ts_after_vt)), "{name}");
                assert_eq!(p.verified_at, Some(w.clock_now()), "{name}");
                let votes = w.repo.votes_for("p").await.unwrap();
                assert!(votes.iter().all(|v| v.is_correct.is_some()), "{name}");
                assert_eq!(
                    w.repo.outbox_rows().await.unwrap().len(),
                    3,
                    "{name}: broadcast + 2 notices"
                );
            }
            Review(reason) => {
                assert_eq!(p.status, PredictionStatus::NeedsReview, "{name}");
                let got = p.review_reason.clone().unwrap_or_default();
                assert!(got.contains(reason), "{name}: reason {got:?}");
                assert!(p.correct_option.is_none(), "{name}");
                assert!(w.repo.outbox_rows().await.unwrap().is_empty(), "{name}");
                assert!(w.repo.all_user_stats().is_empty(), "{name}");
                assert!(report.problems.iter().any(|x| x.contains(reason)), "{name}");
            }
            Active => {
                assert_eq!(p.status, PredictionStatus::Active, "{name}");
                assert!(report.summary.contains("1 waiting"), "{name}: {report:?}");
                // The claim was given back: the next run can take it at once.
                let again = w
                    .repo
                    .claim_due(w.clock_now(), 10, Duration::from_secs(60))
                    .await
                    .unwrap();
                assert_eq!(again.len(), 1, "{name}: claim released");
            }
        }
    }
}

impl World {
    fn clock_now(&self) -> DateTime<Utc> {
        use crate::Clock;
        self.clock.now()
    }
}

#[tokio::test]
async fn unknown_symbol_needs_review_when_history_is_needed() {
    let mut w = World::new(History::Price("1"));
    w.symbols.retain(|s| s.code != "XAUUSD");
    w.insert(prediction("p", t0(), "2650", AB)).await;
    w.insert_late_tick().await;
    w.clock.set(t0() + secs(3600));
    w.run().await;
    let p = w.get("p").await;
    assert_eq!(p.status, PredictionStatus::NeedsReview);
    assert!(p
        .review_reason
        .unwrap()
        .contains("symbol XAUUSD is unknown"));
    assert_eq!(w.market.calls.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn a_temporary_provider_error_is_not_repeated_within_a_run() {
    let w = World::new(History::Temporary);
    for i in 0..5 {
        w.insert(prediction(&format!("p{i}"), t0() + secs(i), "2650", AB))
            .await;
    }
    w.insert_late_tick().await;
    w.clock.set(t0() + secs(3600));
    let report = w.run().await;
    assert!(report.summary.contains("5 waiting"), "{report:?}");
    assert_eq!(
        w.market.calls.load(Ordering::SeqCst),
        1,
        "asked once, then waits"
    );
    // The next run asks again.
    w.run().await;
    assert_eq!(w.market.calls.load(Ordering::SeqCst), 2);
}

struct BrokenSymbols;

#[async_trait]
impl SymbolRepository for BrokenSymbols {
    async fn active_symbols(&self) -> Result<Vec<Symbol>> {
        Err(Error::backend(
            "postgres",
            "relation \"symbols\" does not exist",
            None,
        ))
    }
    async fn upsert_symbols(&self, _symbols: &[Symbol]) -> Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn a_symbol_store_error_fails_the_run_and_leaves_predictions_active() {
    let w = World::new(History::Price("2700"));
    w.insert(prediction("p", t0(), "2650", AB)).await;
    w.insert_late_tick().await;
    w.clock.set(t0() + secs(3600));
    let job = PredictionVerifierJob::new(
        &w.ports().with_symbols(Arc::new(BrokenSymbols)),
        w.market.clone(),
    );
    assert!(job.run(&w.ctx()).await.is_err());
    assert_eq!(w.get("p").await.status, PredictionStatus::Active);
    // Its claim was given back.
    let again = w
        .repo
        .claim_due(w.clock_now(), 10, Duration::from_secs(60))
        .await
        .unwrap();
    assert_eq!(again.len(), 1);
}

#[tokio::test]
async fn manual_predictions_stay_active() {
    let w = World::new(History::Price("2700"));
    let mut p = prediction("m", t0(), "2650", AB);
    p.verify_rule = VerifyRule::Manual;
    w.insert(p).await;
    w.ticks.add("XAUUSD", "2700", t0());
    w.clock.set(t0() + secs(86_400));
    let report = w.run().await;
    assert!(report.summary.starts_with("0 claimed"), "{report:?}");
    assert_eq!(w.get("m").await.status, PredictionStatus::Active);
}

#[tokio::test]
async fn future_predictions_are_not_touched() {
    let w = World::new(History::Price("2700"));
    w.insert(prediction("f", t0() + secs(60), "2650", AB)).await;
    w.ticks.add("XAUUSD", "2700", t0() + secs(61));
    let report = w.run().await;
    assert!(report.summary.starts_with("0 claimed"));
    w.clock.set(t0() + secs(61));
    w.run().await;
    assert_eq!(w.get("f").await.status, PredictionStatus::Ended);
}

#[tokio::test]
async fn batches_loop_until_short_and_query_ticks_once_per_batch() {
    let w = World::new(History::Permanent);
    for i in 0..7 {
        w.insert(prediction(&format!("p{i}"), t0() + secs(i), "2650", AB))
            .await;
    }
    w.ticks.add("XAUUSD", "2700", t0() + secs(10));
    w.clock.set(t0() + secs(60));
    let report = w
        .job(VerifierConfig::default().with_batch_size(3))
        .run(&w.ctx())
        .await
        .unwrap();
    assert_eq!(
        report.summary,
        "7 claimed, 7 verified, 0 needs_review, 0 waiting, 0 skipped"
    );
    assert_eq!(w.ticks.first_calls.load(Ordering::SeqCst), 3, "3 + 3 + 1");
}

#[tokio::test]
async fn waiting_predictions_do_not_loop_a_run() {
    // Claims that expire at once hand the same waiting predictions back; the run ends instead
    // of spinning (the rest waits for the next run).
    let w = World::new(History::Permanent);
    for i in 0..4 {
        w.insert(prediction(&format!("p{i}"), t0(), "2650", AB))
            .await;
    }
    w.clock.set(t0() + secs(10));
    let config = VerifierConfig::default()
        .with_batch_size(2)
        .with_claim_for(Duration::ZERO);
    let report = w.job(config).run(&w.ctx()).await.unwrap();
    assert_eq!(
        report.summary,
        "2 claimed, 0 verified, 0 needs_review, 2 waiting, 0 skipped"
    );
}

#[tokio::test]
async fn a_cancelled_run_records_nothing_more() {
    let w = World::new(History::Permanent);
    w.insert(prediction("p", t0(), "2650", AB)).await;
    w.ticks.add("XAUUSD", "2700", t0());
    let ctx = w.ctx();
    ctx.cancel.cancel();
    let report = w.job(VerifierConfig::default()).run(&ctx).await.unwrap();
    assert!(report.summary.starts_with("0 claimed"));
    assert_eq!(w.get("p").await.status, PredictionStatus::Active);
}

#[tokio::test]
async fn one_users_predictions_apply_in_verify_time_order() {
    // alice: p0 right, p1 right, p2 wrong, p3 right  → streak 1, max 2.
    let w = World::new(History::Permanent);
    let prices = ["2700", "2700", "2600", "2700"];
    for (i, price) in prices.iter().enumerate() {
        let id = format!("p{i}");
        let vt = t0() + secs(i as i64 * 10);
        w.insert(prediction(&id, vt, "2650", AB)).await;
        w.ticks.add("XAUUSD", price, vt);
        w.repo
            .insert_votes(&[vote(&id, "alice", "A")])
            .await
            .unwrap();
    }
    // Ticks of p2's price must be the first at/after p2's verify time only: add them in order.
    w.clock.set(t0() + secs(100));
    w.run().await;
    let s = &w.repo.user_stats(&["alice".into()]).await.unwrap()[0];
    assert_eq!(
        (
            s.total_participations,
            s.correct_count,
            s.current_streak,
            s.max_streak
        ),
        (4, 3, 1, 2)
    );
    assert_eq!(s.accuracy_rate.to_string(), "75.00");
}

#[tokio::test]
async fn job_name_and_schedule() {
    let w = World::new(History::Permanent);
    let job = w.job(VerifierConfig::default());
    assert_eq!(job.name(), "PredictionVerifierJob");
    let s = job.schedule();
    assert_eq!(s.interval, Duration::from_secs(60));
    assert!(s.singleton);
    assert_eq!(job.config().batch_size, 500);
    assert_eq!(job.config().max_lag, Duration::from_secs(300));
}

// ---------------------------------------------------------------- manual resolution

#[tokio::test]
async fn resolve_manual_prediction_with_first_tick_after_verify_time() {
    let w = World::new(History::Permanent);
    let mut p = prediction(
        "m",
        t0(),
        "2650",
        r#"{"Up": "price_change_percent > 0", "Down": "price_change_percent <= 0"}"#,
    );
    p.verify_rule = VerifyRule::Manual;
    w.insert(p).await;
    w.repo
        .insert_votes(&[vote("m", "alice", "Up"), vote("m", "bob", "Down")])
        .await
        .unwrap();
    w.ticks.add("XAUUSD", "2600", t0() - secs(5));
    w.ticks.add("XAUUSD", "2680.00", t0() + secs(3));
    w.ticks.add("XAUUSD", "2700", t0() + secs(9));
    let now = t0() + secs(3600);
    let got = w.resolver().resolve("m", " Up ", now).await.unwrap();
    assert_eq!(got.status, PredictionStatus::Ended);
    assert_eq!(got.correct_option.as_deref(), Some("Up"));
    assert_eq!(got.price_source, Some(PriceSource::Manual));
    assert_eq!(got.price_at_verify, Some(d("2680.00")));
    assert_eq!(got.price_at_verify_ts, Some(t0() + secs(3)));
    assert_eq!(got.price_change_percent, Some(d("1.13")));
    assert_eq!(got.verified_at, Some(now));
    let stats = w.repo.all_user_stats();
    assert_eq!(stats.len(), 2);
    assert_eq!(stats[0].correct_count, 1); // alice
    assert_eq!(stats[1].correct_count, 0); // bob
    assert_eq!(w.repo.outbox_rows().await.unwrap().len(), 3);
    // Twice: conflict.
    assert!(matches!(
        w.resolver().resolve("m", "Up", now).await,
        Err(Error::Conflict(_))
    ));
}

#[tokio::test]
async fn resolve_needs_review_prediction_uses_latest_tick_or_history() {
    let w = World::new(History::Price("2660.00"));
    // Unparsable conditions put it in review; the option must still be one of the keys.
    w.insert(prediction(
        "r",
        t0(),
        "2650",
        r#"{"A": "x >>> 1", "B": "price_change_percent < 0"}"#,
    ))
    .await;
    w.ticks.add("XAUUSD", "2640", t0() - secs(30));
    w.clock.set(t0() + secs(10));
    w.run().await;
    assert_eq!(w.get("r").await.status, PredictionStatus::NeedsReview);
    assert!(matches!(
        w.resolver().resolve("r", "C", t0()).await,
        Err(Error::InvalidInput(_))
    ));
    // No tick at/after verify_time: the latest tick.
    let got = w
        .resolver()
        .resolve("r", "B", t0() + secs(60))
        .await
        .unwrap();
    assert_eq!(got.price_at_verify, Some(d("2640")));
    assert_eq!(got.price_at_verify_ts, Some(t0() - secs(30)));
    assert_eq!(got.price_change_percent, Some(d("-0.38")));
    assert_eq!(got.correct_option.as_deref(), Some("B"));

    // No tick at all: provider history.
    let w = World::new(History::Price("2660.00"));
    let mut m = prediction("m", t0(), "2650", AB);
    m.verify_rule = VerifyRule::Manual;
    w.insert(m).await;
    let got = w.resolver().resolve("m", "A", t0()).await.unwrap();
    assert_eq!(got.price_at_verify, Some(d("2660.00")));
    assert_eq!(got.price_at_verify_ts, Some(t0()));
}

#[tokio::test]
async fn resolve_rejects_bad_requests() {
    let w = World::new(History::Nothing);
    w.insert(prediction("auto", t0(), "2650", AB)).await;
    let mut m = prediction("m", t0(), "2650", AB);
    m.verify_rule = VerifyRule::Manual;
    m.auto_verify_conditions = None;
    w.insert(m).await;
    let mut zero = prediction("zero", t0(), "0", AB);
    zero.verify_rule = VerifyRule::Manual;
    w.insert(zero).await;
    let r = w.resolver();
    assert!(matches!(
        r.resolve("nope", "A", t0()).await,
        Err(Error::NotFound(_))
    ));
    assert!(matches!(
        r.resolve("auto", "A", t0()).await,
        Err(Error::Conflict(_))
    ));
    assert!(matches!(
        r.resolve("m", "  ", t0()).await,
        Err(Error::InvalidInput(_))
    ));
    // No conditions: any non-empty option; but no price anywhere → unavailable.
    let err = r.resolve("m", "Yes", t0()).await.unwrap_err();
    assert!(err.is_temporary(), "{err}");
    assert_eq!(w.get("m").await.status, PredictionStatus::Active);
    w.ticks.add("XAUUSD", "2700", t0());
    // price_at_create <= 0: resolvable, the change stays undefined (NULL), never made up.
    let z = r.resolve("zero", "A", t0()).await.unwrap();
    assert_eq!(z.status, PredictionStatus::Ended);
    assert_eq!(z.price_at_verify, Some(d("2700")));
    assert_eq!(z.price_change_percent, None);
    let ok = r.resolve("m", "Yes", t0()).await.unwrap();
    assert_eq!(ok.correct_option.as_deref(), Some("Yes"));
}

#[tokio::test]
async fn resolve_on_an_ended_prediction_corrects_it() {
    let w = World::new(History::Nothing);
    let mut m = prediction("m", t0(), "2650", AB);
    m.verify_rule = VerifyRule::Manual;
    w.insert(m).await;
    w.repo
        .insert_votes(&[vote("m", "u1", "A"), vote("m", "u2", "B")])
        .await
        .unwrap();
    w.ticks.add("XAUUSD", "2680", t0());
    let r = w.resolver();
    let first = r.resolve("m", "A", t0()).await.unwrap();
    assert_eq!(first.price_change_percent, Some(d("1.13")));
    // The same answer again changes nothing: a conflict, as before corrections existed.
    assert!(matches!(
        r.resolve("m", "A", t0()).await,
        Err(Error::Conflict(_))
    ));
    // An option the prediction does not have, or a bad price: refused.
    assert!(matches!(
        r.resolve("m", "Z", t0()).await,
        Err(Error::InvalidInput(_))
    ));
    for bad in ["0", "-1"] {
        assert!(matches!(
            r.resolve_with_price("m", "B", Some(d(bad)), t0()).await,
            Err(Error::InvalidInput(_))
        ));
    }
    let later = t0() + chrono::Duration::seconds(60);
    let c = r
        .resolve_with_price("m", "B", Some(d("2620.00")), later)
        .await
        .unwrap();
    assert_eq!(c.status, PredictionStatus::Ended);
    assert_eq!(c.correct_option.as_deref(), Some("B"));
    assert_eq!(c.price_at_verify, Some(d("2620.00")));
    assert_eq!(c.price_change_percent, Some(d("-1.13")));
    assert_eq!(c.price_source, Some(PriceSource::Manual));
    assert_eq!(
        c.price_at_verify_ts,
        Some(t0()),
        "the price stands for verify_time"
    );
    let stats = w
        .repo
        .user_stats(&["u1".into(), "u2".into()])
        .await
        .unwrap();
    assert_eq!(
        stats
            .iter()
            .map(|s| (s.correct_count, s.current_streak, s.updated_at))
            .collect::<Vec<_>>(),
        vec![(0, 0, later), (1, 1, later)]
    );
    let corrected: Vec<PredictionCorrected> = w
        .repo
        .outbox_rows()
        .await
        .unwrap()
        .into_iter()
        .filter_map(|r| match r.payload {
            OutboxPayload::PredictionCorrected(e) => Some(e),
            _ => None,
        })
        .collect();
    assert_eq!(corrected.len(), 1);
    assert_eq!(corrected[0].previous_option, "A");
    assert_eq!(corrected[0].correct_option, "B");
}

#[tokio::test]
async fn void_needs_a_bounded_reason_and_is_final() {
    let w = World::new(History::Nothing);
    w.insert(prediction("a", t0(), "2650", AB)).await;
    w.repo.insert_votes(&[vote("a", "u1", "A")]).await.unwrap();
    let r = w.resolver();
    for bad in ["", "   ", "a\u{7}b"] {
        assert!(
            matches!(r.void("a", bad, t0()).await, Err(Error::InvalidInput(_))),
            "{bad:?}"
        );
    }
    let long = "x".repeat(MAX_REASON_CHARS + 1);
    assert!(matches!(
        r.void("a", &long, t0()).await,
        Err(Error::InvalidInput(_))
    ));
    assert!(matches!(
        r.void("nope", "x", t0()).await,
        Err(Error::NotFound(_))
    ));
    let v = r.void("a", "  market closed  ", t0()).await.unwrap();
    assert_eq!(v.status, PredictionStatus::Void);
    assert_eq!(v.review_reason.as_deref(), Some("market closed"), "trimmed");
    assert!(matches!(
        r.void("a", "again", t0()).await,
        Err(Error::Conflict(_))
    ));
    assert!(matches!(
        r.resolve("a", "A", t0()).await,
        Err(Error::Conflict(_))
    ));
    // An active auto prediction that is voided is never verified.
    w.ticks.add("XAUUSD", "2680", t0());
    w.clock.advance(chrono::Duration::seconds(5));
    let report = w.run().await;
    assert!(
        report.summary.starts_with("0 claimed"),
        "{}",
        report.summary
    );
    assert!(w.repo.user_stats(&["u1".into()]).await.unwrap().is_empty());
}

#[tokio::test]
async fn job_resolve_manually_delegates() {
    let w = World::new(History::Nothing);
    let mut m = prediction("m", t0(), "2650", AB);
    m.verify_rule = VerifyRule::Manual;
    w.insert(m).await;
    w.ticks.add("XAUUSD", "2650", t0());
    let job = w.job(VerifierConfig::default());
    let p = job.resolve_manually("m", "A", t0()).await.unwrap();
    assert_eq!(p.status, PredictionStatus::Ended);
}

// ---------------------------------------------------------------- race

/// Per user: participations, correct ones, and `(verify_time, right)` of each vote.
type Expected = HashMap<String, (i64, i64, Vec<(DateTime<Utc>, bool)>)>;

/// Expected (total, correct) per user recomputed from the votes and the final predictions.
async fn recompute(repo: &InMemoryPredictions) -> Expected {
    let mut out: Expected = HashMap::new();
    for p in repo.all_predictions() {
        let correct = p.correct_option.clone().unwrap();
        for v in repo.votes_for(&p.id).await.unwrap() {
            let right = v.selected_option == correct;
            assert_eq!(
                v.is_correct,
                Some(right),
                "vote of {} on {}",
                v.user_id,
                p.id
            );
            let e = out.entry(v.user_id.clone()).or_default();
            e.0 += 1;
            e.1 += i64::from(right);
            e.2.push((p.verify_time, right));
        }
    }
    out
}

async fn race_world(n: usize, users: usize, seed: u64) -> World {
    use rand::{Rng, SeedableRng};
    let mut rng = rand::rngs::SmallRng::seed_from_u64(seed);
    let w = World::new(History::Permanent);
    for i in 0..n {
        let id = format!("p{i:04}");
        let vt = t0() + secs(rng.gen_range(0..600));
        w.insert(prediction(&id, vt, "2650", AB)).await;
        let price = if rng.gen_bool(0.5) { "2700" } else { "2600" };
        // A tick per prediction, on its own symbol-free instant: exactly at verify_time.
        w.ticks.add("XAUUSD", price, vt);
        let mut votes = Vec::new();
        for u in 0..users {
            if rng.gen_bool(0.3) {
                let option = if rng.gen_bool(0.5) { "A" } else { "B" };
                votes.push(vote(&id, &format!("u{u}"), option));
            }
        }
        w.repo.insert_votes(&votes).await.unwrap();
    }
    w.clock.set(t0() + secs(700));
    w
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_verifiers_racing_verify_each_prediction_once() {
    for round in 0..20u64 {
        let w = race_world(150, 20, round).await;
        // Round-robin small batches and, every other round, claims that expire at once, so the
        // two verifiers really do claim the same predictions (a stale leader).
        let claim_for = if round % 2 == 0 {
            Duration::ZERO
        } else {
            Duration::from_secs(60)
        };
        let config = VerifierConfig::default()
            .with_batch_size(7)
            .with_claim_for(claim_for);
        let a = Arc::new(w.job(config.clone()));
        let b = Arc::new(w.job(config));
        let (ca, cb) = (w.ctx(), w.ctx());
        let ha = tokio::spawn(async move { a.run(&ca).await });
        let hb = tokio::spawn(async move { b.run(&cb).await });
        let (ra, rb) = (ha.await.unwrap().unwrap(), hb.await.unwrap().unwrap());

        let all = w.repo.all_predictions();
        assert!(
            all.iter().all(|p| p.status == PredictionStatus::Ended),
            "round {round}: {ra:?} {rb:?}"
        );
        // Exactly one broadcast per prediction and one notice per vote.
        let rows = w.repo.outbox_rows().await.unwrap();
        let mut broadcasts: HashMap<String, usize> = HashMap::new();
        let mut notices = 0usize;
        for r in &rows {
            match &r.payload {
                OutboxPayload::PredictionVerified(e) => {
                    *broadcasts.entry(e.prediction_id.clone()).or_default() += 1
                }
                OutboxPayload::Notify(_) => notices += 1,
                OutboxPayload::NotifyVoters(_) => {
                    panic!("the in-memory store writes one row per voter")
                }
                other => panic!("no corrections or voids here: {other:?}"),
            }
        }
        assert_eq!(broadcasts.len(), 150, "round {round}");
        assert!(broadcasts.values().all(|&c| c == 1), "round {round}");
        let expected = recompute(&w.repo).await;
        let votes: i64 = expected.values().map(|e| e.0).sum();
        assert_eq!(notices as i64, votes, "round {round}");
        let stats = w.repo.all_user_stats();
        assert_eq!(stats.len(), expected.len());
        for s in stats {
            let (total, correct, _) = &expected[&s.user_id];
            assert_eq!(
                s.total_participations, *total,
                "round {round} {}",
                s.user_id
            );
            assert_eq!(s.correct_count, *correct, "round {round} {}", s.user_id);
            assert_eq!(s.accuracy_rate, super::accuracy_rate(*correct, *total));
            assert!(s.current_streak <= s.max_streak && s.max_streak <= s.correct_count);
        }
    }
}

#[tokio::test]
async fn one_verifier_gives_streaks_in_verify_time_order() {
    let w = race_world(300, 15, 99).await;
    w.job(VerifierConfig::default().with_batch_size(16))
        .run(&w.ctx())
        .await
        .unwrap();
    let expected = recompute(&w.repo).await;
    for s in w.repo.all_user_stats() {
        let mut seq = expected[&s.user_id].2.clone();
        seq.sort_by_key(|(vt, _)| *vt);
        // Ties of verify_time are broken by id in the job; votes were created in id order and
        // recompute lists predictions by id, so a stable sort by time keeps that order.
        let mut fresh = UserStats::empty(&s.user_id, t0());
        for (_, right) in seq {
            super::apply_result(&mut fresh, right, t0());
        }
        assert_eq!(
            (
                s.total_participations,
                s.correct_count,
                s.current_streak,
                s.max_streak,
                s.accuracy_rate
            ),
            (
                fresh.total_participations,
                fresh.correct_count,
                fresh.current_streak,
                fresh.max_streak,
                fresh.accuracy_rate
            ),
            "{}",
            s.user_id
        );
    }
}

// ---------------------------------------------------------------- port interactions (mockall)

mod mocked {
    use super::*;

    struct Mocks {
        repo: MockPredictionRepository,
        ticks: MockPriceTickRepository,
        market: MockMarketData,
        symbols: MockSymbolRepository,
    }

    impl Mocks {
        fn new() -> Self {
            let mut market = MockMarketData::new();
            market.expect_name().return_const("mock");
            market.expect_is_demo().return_const(false);
            Mocks {
                repo: MockPredictionRepository::new(),
                ticks: MockPriceTickRepository::new(),
                market,
                symbols: MockSymbolRepository::new(),
            }
        }

        fn job(self, batch: u32) -> PredictionVerifierJob {
            let ports = Ports::in_memory()
                .with_predictions(Arc::new(self.repo))
                .with_ticks(Arc::new(self.ticks))
                .with_symbols(Arc::new(self.symbols));
            PredictionVerifierJob::new(&ports, Arc::new(self.market))
                .with_config(VerifierConfig::default().with_batch_size(batch))
        }
    }

    fn ctx_at(now: DateTime<Utc>) -> JobContext {
        JobContext {
            cancel: CancellationToken::new(),
            clock: Arc::new(ManualClock::new(now)),
            attempt: 1,
        }
    }

    fn tick(price: &str, ts: DateTime<Utc>) -> PriceTick {
        PriceTick {
            symbol_code: "XAUUSD".into(),
            price: d(price),
            ts,
            source: None,
        }
    }

    #[tokio::test]
    async fn one_tick_query_and_one_record_call_sorted_by_verify_time() {
        let mut m = Mocks::new();
        let late = prediction("late", t0() + secs(10), "2650", AB);
        let early = prediction("early", t0(), "2650", AB);
        let claimed = vec![late.clone(), early.clone()];
        m.repo
            .expect_claim_due()
            .times(1)
            .withf(|_, limit, claim_for| *limit == 3 && *claim_for == Duration::from_secs(60))
            .returning(move |_, _, _| Ok(claimed.clone()));
        m.ticks
            .expect_first_ticks_at_or_after()
            .times(1)
            .withf(|q| q.len() == 2 && q[0].at == t0() + secs(10) && q[1].at == t0())
            .returning(|_| {
                Ok(vec![
                    Some(tick("2600", t0() + secs(11))),
                    Some(tick("2700", t0() + secs(1))),
                ])
            });
        m.repo
            .expect_record_verifications()
            .times(1)
            .withf(|r| {
                r.len() == 2
                    && r[0].prediction_id == "early"
                    && r[1].prediction_id == "late"
                    && r.iter().all(|x| !x.manual && x.verified_at == t0() + secs(60))
                    && matches!(&r[0].outcome, VerificationOutcome::Verified(v) if v.correct_option == "A")
                    && matches!(&r[1].outcome, VerificationOutcome::Verified(v) if v.correct_option == "B")
            })
            .returning(|r| {
                Ok(RecordSummary {
                    verified: r.iter().map(|x| x.prediction_id.clone()).collect(),
                    ..RecordSummary::default()
                })
            });
        m.repo.expect_release_claims().times(0);
        m.market.expect_price_at().times(0);
        m.symbols.expect_active_symbols().times(0);
        let report = m.job(3).run(&ctx_at(t0() + secs(60))).await.unwrap();
        assert_eq!(
            report.summary,
            "2 claimed, 2 verified, 0 needs_review, 0 waiting, 0 skipped"
        );
    }

    #[tokio::test]
    async fn predictions_without_tick_are_released_once_at_the_end() {
        let mut m = Mocks::new();
        let p = prediction("p", t0(), "2650", AB);
        m.repo
            .expect_claim_due()
            .times(1)
            .returning(move |_, _, _| Ok(vec![p.clone()]));
        m.ticks
            .expect_first_ticks_at_or_after()
            .times(1)
            .returning(|_| Ok(vec![None]));
        m.repo.expect_record_verifications().times(0);
        m.repo
            .expect_release_claims()
            .times(1)
            .withf(|ids| ids == ["p".to_owned()])
            .returning(|_| Ok(()));
        m.market.expect_price_at().times(0);
        let report = m.job(10).run(&ctx_at(t0() + secs(30))).await.unwrap();
        assert!(report.summary.contains("1 waiting"));
    }

    #[tokio::test]
    async fn a_tick_store_error_gives_claims_back_and_fails_the_run() {
        let mut m = Mocks::new();
        let p = prediction("p", t0(), "2650", AB);
        m.repo
            .expect_claim_due()
            .times(1)
            .returning(move |_, _, _| Ok(vec![p.clone()]));
        m.ticks
            .expect_first_ticks_at_or_after()
            .times(1)
            .returning(|_| Err(Error::unavailable("postgres", "connection reset", None)));
        m.repo
            .expect_release_claims()
            .times(1)
            .withf(|ids| ids == ["p".to_owned()])
            .returning(|_| Ok(()));
        m.repo.expect_record_verifications().times(0);
        let err = m.job(10).run(&ctx_at(t0() + secs(30))).await.unwrap_err();
        assert!(err.is_temporary());
    }

    #[tokio::test]
    async fn a_short_tick_answer_is_a_backend_error() {
        let mut m = Mocks::new();
        let ps = vec![
            prediction("a", t0(), "2650", AB),
            prediction("b", t0(), "2650", AB),
        ];
        m.repo
            .expect_claim_due()
            .times(1)
            .returning(move |_, _, _| Ok(ps.clone()));
        m.ticks
            .expect_first_ticks_at_or_after()
            .times(1)
            .returning(|_| Ok(vec![None]));
        m.repo
            .expect_release_claims()
            .times(1)
            .withf(|ids| ids.len() == 2)
            .returning(|_| Ok(()));
        let err = m.job(10).run(&ctx_at(t0() + secs(30))).await.unwrap_err();
        assert!(matches!(err, Error::Backend { .. }));
    }

    #[tokio::test]
    async fn a_record_error_fails_the_run_and_releases() {
        let mut m = Mocks::new();
        let p = prediction("p", t0(), "2650", AB);
        m.repo
            .expect_claim_due()
            .times(1)
            .returning(move |_, _, _| Ok(vec![p.clone()]));
        m.ticks
            .expect_first_ticks_at_or_after()
            .times(1)
            .returning(|_| Ok(vec![Some(tick("2700", t0()))]));
        m.repo
            .expect_record_verifications()
            .times(1)
            .returning(|_| {
                Err(Error::unavailable(
                    "postgres",
                    "serialization failure",
                    None,
                ))
            });
        m.repo
            .expect_release_claims()
            .times(1)
            .returning(|_| Ok(()));
        assert!(m.job(10).run(&ctx_at(t0() + secs(30))).await.is_err());
    }

    #[tokio::test]
    async fn provider_history_asked_once_per_symbol_and_instant() {
        let mut m = Mocks::new();
        let ps = vec![
            prediction("a", t0(), "2650", AB),
            prediction("b", t0(), "2600", AB),
        ];
        m.repo
            .expect_claim_due()
            .times(1)
            .returning(move |_, _, _| Ok(ps.clone()));
        // The first ticks came long after the max lag: ask the provider's history.
        m.ticks
            .expect_first_ticks_at_or_after()
            .times(1)
            .returning(|q| Ok(vec![Some(tick("2699", t0() + secs(3000))); q.len()]));
        m.symbols
            .expect_active_symbols()
            .times(1)
            .returning(|| Ok(Symbol::defaults()));
        m.market
            .expect_price_at()
            .times(1)
            .withf(|s, at| s.provider_symbol == "XAU/USD" && *at == t0())
            .returning(|_, at| {
                Ok(Some(PricePoint {
                    price: d("2625"),
                    ts: at + secs(1),
                    source: None,
                }))
            });
        m.repo
            .expect_record_verifications()
            .times(1)
            .withf(|r| {
                r.len() == 2
                    && r.iter().all(|x| {
                        matches!(&x.outcome, VerificationOutcome::Verified(v)
                            if v.price_source == PriceSource::ProviderHistory
                                && v.price_at_verify_ts == t0() + secs(1))
                    })
            })
            .returning(|r| {
                Ok(RecordSummary {
                    verified: r.iter().map(|x| x.prediction_id.clone()).collect(),
                    ..RecordSummary::default()
                })
            });
        let report = m.job(10).run(&ctx_at(t0() + secs(3600))).await.unwrap();
        assert!(report.summary.contains("2 verified"), "{report:?}");
    }

    #[tokio::test]
    async fn resolve_asks_first_tick_then_latest_then_history() {
        let mut m = Mocks::new();
        let mut p = prediction("m", t0(), "2650", AB);
        p.verify_rule = VerifyRule::Manual;
        let stored = p.clone();
        let mut seq = mockall::Sequence::new();
        m.repo
            .expect_get_prediction()
            .times(1)
            .in_sequence(&mut seq)
            .returning(move |_| Ok(Some(stored.clone())));
        m.ticks
            .expect_first_ticks_at_or_after()
            .times(1)
            .in_sequence(&mut seq)
            .returning(|_| Ok(vec![None]));
        m.ticks
            .expect_latest_tick()
            .times(1)
            .in_sequence(&mut seq)
            .returning(|_| Ok(None));
        m.symbols
            .expect_active_symbols()
            .times(1)
            .in_sequence(&mut seq)
            .returning(|| Ok(Symbol::defaults()));
        m.market
            .expect_price_at()
            .times(1)
            .in_sequence(&mut seq)
            .returning(|_, at| {
                Ok(Some(PricePoint {
                    price: d("2650"),
                    ts: at,
                    source: None,
                }))
            });
        m.repo
            .expect_record_verifications()
            .times(1)
            .in_sequence(&mut seq)
            .withf(|r| {
                r.len() == 1
                    && r[0].manual
                    && matches!(&r[0].outcome, VerificationOutcome::Verified(v)
                        if v.price_source == PriceSource::Manual && v.correct_option == "B")
            })
            .returning(|_| {
                Ok(RecordSummary {
                    verified: vec!["m".into()],
                    ..RecordSummary::default()
                })
            });
        let mut ended = p.clone();
        ended.status = PredictionStatus::Ended;
        m.repo
            .expect_get_prediction()
            .times(1)
            .in_sequence(&mut seq)
            .returning(move |_| Ok(Some(ended.clone())));
        let job = m.job(10);
        let got = job.resolve_manually("m", "B", t0()).await.unwrap();
        assert_eq!(got.status, PredictionStatus::Ended);
    }
}

#[tokio::test]
async fn a_blank_option_name_sends_only_that_prediction_to_review() {
    let w = World::new(History::Nothing);
    w.insert(prediction("bad", t0(), "2650", r#"{"": "1 = 1"}"#))
        .await;
    w.insert(prediction("good", t0(), "2650", AB)).await;
    w.ticks
        .insert_ticks(&[PriceTick {
            symbol_code: "XAUUSD".into(),
            price: d("2680.00"),
            ts: t0() + secs(1),
            source: None,
        }])
        .await
        .unwrap();
    w.clock.set(t0() + secs(60));
    w.run().await;
    let bad = w.get("bad").await;
    assert_eq!(bad.status, PredictionStatus::NeedsReview);
    assert!(bad.review_reason.unwrap().contains("must not be blank"));
    assert_eq!(w.get("good").await.status, PredictionStatus::Ended);
}

// ---------------------------------------------------------------------------------------------
// The platform's condition shape and honest prices (guide: *How the price at verify time is
// chosen*; *The condition object*)
// ---------------------------------------------------------------------------------------------

/// The platform writes options as `{"condition": "…"}` objects.
const PLATFORM: &str = r#"{"A": {"condition": "price_change_percent >= 1.0"}, "B": {"condition": "price_change_percent > 0 AND price_change_percent < 1.0"}, "C": {"condition": "price_change_percent <= 0", "label": "flat or down"}}"#;

fn tick_from(source: Option<&str>, price: &str, ts: DateTime<Utc>) -> PriceTick {
    PriceTick::new("XAUUSD", d(price), ts, source)
}

#[tokio::test]
async fn the_platforms_conditions_are_verified_not_sent_to_review() {
    let w = World::new(History::Nothing);
    w.insert(prediction("p", t0(), "2650.00", PLATFORM)).await;
    w.repo
        .insert_votes(&[vote("p", "u1", "A"), vote("p", "u2", "C")])
        .await
        .unwrap();
    w.ticks
        .insert_ticks(&[tick_from(Some("twelvedata"), "2680.00", t0() + secs(2))])
        .await
        .unwrap();
    w.clock.set(t0() + secs(10));
    w.run().await;
    let p = w.get("p").await;
    assert_eq!(p.status, PredictionStatus::Ended, "{:?}", p.review_reason);
    assert_eq!(p.correct_option.as_deref(), Some("A"));
    assert_eq!(p.price_change_percent, Some(d("1.13")));
    assert_eq!(p.price_provider.as_deref(), Some("twelvedata"));
    assert_eq!(p.price_source, Some(PriceSource::Tick));
    let votes = w.repo.votes_for("p").await.unwrap();
    let marks: Vec<(&str, Option<bool>)> = votes
        .iter()
        .map(|v| (v.user_id.as_str(), v.is_correct))
        .collect();
    assert_eq!(marks, [("u1", Some(true)), ("u2", Some(false))]);
}

#[tokio::test]
async fn a_demo_tick_never_decides_on_a_real_instance() {
    let w = World::new(History::Nothing);
    w.insert(prediction("p", t0(), "2650.00", PLATFORM)).await;
    // A made-up price first (left from a demo run), the real one later.
    w.ticks
        .insert_ticks(&[
            tick_from(Some(DEMO_SOURCE), "2600.00", t0()),
            tick_from(Some("binance"), "2655.00", t0() + secs(4)),
        ])
        .await
        .unwrap();
    w.clock.set(t0() + secs(10));
    w.run().await;
    let p = w.get("p").await;
    assert_eq!(p.status, PredictionStatus::Ended);
    assert_eq!(
        p.price_at_verify,
        Some(d("2655.00")),
        "the real tick decides"
    );
    assert_eq!(p.price_at_verify_ts, Some(t0() + secs(4)));
    assert_eq!(p.price_provider.as_deref(), Some("binance"));
    assert_eq!(p.correct_option.as_deref(), Some("B"));
}

#[tokio::test]
async fn only_demo_ticks_leave_a_real_prediction_waiting() {
    let w = World::new(History::Nothing);
    w.insert(prediction("p", t0(), "2650.00", PLATFORM)).await;
    w.ticks
        .insert_ticks(&[tick_from(Some(DEMO_SOURCE), "2700.00", t0() + secs(1))])
        .await
        .unwrap();
    w.clock.set(t0() + secs(10));
    w.run().await;
    assert_eq!(w.get("p").await.status, PredictionStatus::Active);
}

#[tokio::test]
async fn a_demo_only_instance_decides_on_demo_ticks_and_says_so() {
    let mut w = World::new(History::Nothing);
    w.market = Arc::new(Market {
        demo: true,
        ..Market::new(History::Nothing)
    });
    w.insert(prediction("p", t0(), "2650.00", PLATFORM)).await;
    w.ticks
        .insert_ticks(&[tick_from(Some(DEMO_SOURCE), "2600.00", t0() + secs(1))])
        .await
        .unwrap();
    w.clock.set(t0() + secs(10));
    w.run().await;
    let p = w.get("p").await;
    assert_eq!(p.status, PredictionStatus::Ended);
    assert_eq!(p.correct_option.as_deref(), Some("C"));
    assert_eq!(p.price_provider.as_deref(), Some(DEMO_SOURCE));
}

#[tokio::test]
async fn a_history_price_records_its_provider() {
    let w = World::new(History::Price("2680.00"));
    w.insert(prediction("p", t0(), "2650.00", PLATFORM)).await;
    w.insert_late_tick().await;
    w.clock.set(t0() + secs(4000));
    w.run().await;
    let p = w.get("p").await;
    assert_eq!(p.status, PredictionStatus::Ended, "{:?}", p.review_reason);
    assert_eq!(p.price_source, Some(PriceSource::ProviderHistory));
    // The fake provider does not stamp its points: the verifier names it.
    assert_eq!(p.price_provider.as_deref(), Some("fake"));
}
