//! PriceFetcherJob: every few seconds, the quotes of all active symbols — cached, recorded as
//! ticks and published to clients.

use crate::market::validate_quote;
use crate::runtime::{Cadence, Job, JobContext, RunReport, Schedule};
use crate::{
    Broadcast, Broadcaster, Error, Event, MarketData, PriceTick, PriceTickRepository, PriceUpdate,
    Quote, QuoteCache, Result, Symbol, SymbolFailure, SymbolRepository,
};
use async_trait::async_trait;
use std::collections::{HashMap, HashSet};
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

/// Configuration of [`PriceFetcherJob`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct PriceFetcherConfig {
    /// Period (`GOLDJOBS_PRICE_INTERVAL`), default 5 s; or a calendar (`cron:EXPR`).
    pub cadence: Cadence,
    /// What a restart or a failover does with instants nobody ran (default `skip: a price from the past is worth nothing`).
    pub missed: crate::runtime::MissedTickPolicy,
    /// TTL of the cached quotes (`GOLDJOBS_QUOTE_TTL`), default 5 s.
    pub quote_ttl: Duration,
}

impl Default for PriceFetcherConfig {
    fn default() -> Self {
        PriceFetcherConfig {
            cadence: Cadence::Every(Duration::from_secs(5)),
            missed: crate::runtime::MissedTickPolicy::Skip,
            quote_ttl: Duration::from_secs(5),
        }
    }
}

impl PriceFetcherConfig {
    /// Set the period.
    pub fn with_interval(mut self, interval: Duration) -> Self {
        self.cadence = Cadence::Every(interval);
        self
    }
    /// Run at a fixed rate or on a calendar (`Cadence::parse("cron:0 6 * * Mon-Fri", "UTC")`).
    pub fn with_cadence(mut self, cadence: impl Into<Cadence>) -> Self {
        self.cadence = cadence.into();
        self
    }

    /// Set the missed-run policy.
    pub fn with_missed(mut self, missed: crate::runtime::MissedTickPolicy) -> Self {
        self.missed = missed;
        self
    }

    /// Set the quote TTL.
    pub fn with_quote_ttl(mut self, ttl: Duration) -> Self {
        self.quote_ttl = ttl;
        self
    }
}

/// Tells the [`PriceFetcherJob`] the highest `seq` of a symbol already published elsewhere
/// (see [`PriceFetcherJob::with_seq_floor`]).
pub type SeqFloor = Arc<dyn Fn(&str) -> u64 + Send + Sync>;

/// Fetches the quotes of every active symbol in one provider call per run, then — concurrently —
/// writes them to the quote cache (one call), records them as price ticks (one call) and
/// publishes one `price_update` per symbol (one call).
///
/// * Each symbol has a sequence number that grows by one per published update (`seq`).
/// * Every quote must pass [`crate::validate_quote`] at the run's
///   clock (price > 0, timestamp at most one day old and one minute ahead), whichever provider
///   sent it; one that does not is that symbol's failure and is never cached, recorded or
///   published.
/// * A symbol the provider failed for keeps its last good quote (see [`Self::last_quotes`]) and
///   is listed in the run's problems.
/// * A failing cache, tick insert or publish is listed in the problems too; the other outputs
///   still happen and the job goes on.
/// * The provider call failing as a whole (or every symbol failing) fails the run; temporary
///   errors are retried by the runtime.
pub struct PriceFetcherJob {
    symbols: Arc<dyn SymbolRepository>,
    market: Arc<dyn MarketData>,
    cache: Arc<dyn QuoteCache>,
    ticks: Arc<dyn PriceTickRepository>,
    broadcaster: Arc<dyn Broadcaster>,
    config: PriceFetcherConfig,
    seqs: RwLock<HashMap<String, AtomicU64>>,
    seq_floor: Option<SeqFloor>,
    last: Mutex<HashMap<String, Quote>>,
    /// One run at a time (a manual `POST /jobs/…/run` may overlap a scheduled one).
    run_lock: tokio::sync::Mutex<()>,
    /// One distribution at a time (a run's and the stream's), so that updates of a symbol are
    /// published in `seq` order and last quotes never go back in time.
    publish_lock: tokio::sync::Mutex<()>,
    /// Which symbols a live stream prices now (those are not polled).
    coverage: Arc<StreamCoverage>,
}

/// Which symbols a live price stream ([`PriceStreamer`](crate::jobs::PriceStreamer)) covers:
/// the instant of each symbol's last streamed price. A symbol is covered while its last
/// streamed price is younger than the price job's period; the job polls every other symbol.
#[derive(Debug, Default)]
pub struct StreamCoverage {
    last: Mutex<HashMap<String, chrono::DateTime<chrono::Utc>>>,
}

impl StreamCoverage {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, chrono::DateTime<chrono::Utc>>> {
        self.last.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// `code` got a streamed price at `at` (the clock's time of receipt).
    pub fn mark(&self, code: &str, at: chrono::DateTime<chrono::Utc>) {
        let mut last = self.lock();
        match last.get_mut(code) {
            Some(t) => *t = (*t).max(at),
            None => {
                last.insert(code.to_owned(), at);
            }
        }
    }

    /// Whether a streamed price received at `at` still covers its symbol at `now`.
    fn fresh(
        at: chrono::DateTime<chrono::Utc>,
        now: chrono::DateTime<chrono::Utc>,
        window: Duration,
    ) -> bool {
        let window = chrono::Duration::from_std(window).unwrap_or(chrono::Duration::MAX);
        now.signed_duration_since(at) < window
    }

    /// Whether `code` had a streamed price within `window` before `now`.
    pub fn covers(&self, code: &str, now: chrono::DateTime<chrono::Utc>, window: Duration) -> bool {
        self.lock()
            .get(code)
            .is_some_and(|t| Self::fresh(*t, now, window))
    }

    /// The covered codes at `now`, sorted.
    pub fn covered(&self, now: chrono::DateTime<chrono::Utc>, window: Duration) -> Vec<String> {
        let mut codes: Vec<String> = self
            .lock()
            .iter()
            .filter(|(_, t)| Self::fresh(**t, now, window))
            .map(|(c, _)| c.clone())
            .collect();
        codes.sort();
        codes
    }

    /// Hand every symbol back to polling (the stream closed).
    pub fn clear(&self) {
        self.lock().clear();
    }
}

impl fmt::Debug for PriceFetcherJob {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PriceFetcherJob")
            .field("market", &self.market.name())
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl PriceFetcherJob {
    /// The job's name in status, metrics and `POST /jobs/{name}/run`.
    pub const NAME: &'static str = "PriceFetcherJob";

    /// A job over the symbols and ticks of `ports` that asks `market` for quotes, caches them
    /// in `cache` and publishes them through `broadcaster`, with the default
    /// [`PriceFetcherConfig`].
    pub fn new(
        ports: &crate::Ports,
        market: Arc<dyn MarketData>,
        cache: Arc<dyn QuoteCache>,
        broadcaster: Arc<dyn Broadcaster>,
    ) -> Self {
        PriceFetcherJob {
            symbols: ports.symbols.clone(),
            market,
            cache,
            ticks: ports.ticks.clone(),
            broadcaster,
            config: PriceFetcherConfig::default(),
            seqs: RwLock::new(HashMap::new()),
            seq_floor: None,
            last: Mutex::new(HashMap::new()),
            run_lock: tokio::sync::Mutex::new(()),
            publish_lock: tokio::sync::Mutex::new(()),
            coverage: Arc::default(),
        }
    }

    /// Replace the configuration.
    pub fn with_config(mut self, config: PriceFetcherConfig) -> Self {
        self.config = config;
        self
    }

    /// Continue each symbol's `seq` after the highest one already seen elsewhere.
    ///
    /// With several instances, the leader that takes over after a failover starts with empty
    /// counters; `floor(code)` tells it the last `seq` its hub relayed from the previous leader,
    /// so clients keep seeing `seq` grow instead of starting again at 1.
    pub fn with_seq_floor(mut self, floor: SeqFloor) -> Self {
        self.seq_floor = Some(floor);
        self
    }

    /// The configuration.
    pub fn config(&self) -> &PriceFetcherConfig {
        &self.config
    }

    /// Which symbols a live stream covers (shared with [`PriceStreamer`](crate::jobs::PriceStreamer)).
    pub fn stream_coverage(&self) -> Arc<StreamCoverage> {
        self.coverage.clone()
    }

    /// How long a streamed price keeps its symbol off polling: the job's period (5 s for a
    /// calendar schedule).
    pub fn coverage_window(&self) -> Duration {
        match &self.config.cadence {
            Cadence::Every(d) => *d,
            _ => Duration::from_secs(5),
        }
    }

    /// A streamed price as a quote: the change against the event's reference, else against the
    /// previous close of the symbol's last quote (0 when neither is known); `source` = the
    /// stream's provider. Every computation is checked: one out of range gives a change of 0.
    pub fn quote_from_stream(&self, price: &crate::StreamPrice, source: &str) -> Quote {
        use rust_decimal::Decimal;
        let reference = price.reference.filter(|r| *r > Decimal::ZERO).or_else(|| {
            self.last_quote(&price.symbol_code)
                .and_then(|q| q.price.checked_sub(q.change))
                .filter(|r| *r > Decimal::ZERO)
        });
        let (change, change_percent) = reference
            .and_then(|r| {
                let change = price.price.checked_sub(r)?;
                let percent = change
                    .checked_mul(Decimal::ONE_HUNDRED)?
                    .checked_div(r)?
                    .round_dp(5);
                Some((change, percent))
            })
            .unwrap_or((Decimal::ZERO, Decimal::ZERO));
        Quote {
            symbol_code: price.symbol_code.clone(),
            price: price.price,
            change,
            change_percent,
            timestamp: price.timestamp,
            source: Some(source.to_owned()),
        }
    }

    /// Record and publish streamed quotes (checked with [`crate::validate_quote`] by the
    /// caller): ticks, last values and one `price_update` per quote, without the cache write,
    /// which the job's run makes on its own rhythm. Returns the problems.
    pub async fn record_streamed(&self, quotes: &[Quote]) -> Vec<String> {
        self.distribute_quotes(quotes, false).await
    }

    /// The last good quote of every symbol fetched so far, ordered by code (for reads while the
    /// cache is down, and for WebSocket snapshots).
    pub fn last_quotes(&self) -> Vec<Quote> {
        let last = self.last.lock().unwrap_or_else(|e| e.into_inner());
        let mut quotes: Vec<Quote> = last.values().cloned().collect();
        quotes.sort_by(|a, b| a.symbol_code.cmp(&b.symbol_code));
        quotes
    }

    /// The last good quote of one symbol.
    pub fn last_quote(&self, code: &str) -> Option<Quote> {
        let last = self.last.lock().unwrap_or_else(|e| e.into_inner());
        last.get(code).cloned()
    }

    /// The sequence number of the last published update of `code` (0 = none yet).
    pub fn seq(&self, code: &str) -> u64 {
        let seqs = self.seqs.read().unwrap_or_else(|e| e.into_inner());
        seqs.get(code).map_or(0, |s| s.load(Ordering::SeqCst))
    }

    /// The next sequence number of `code`: one past the larger of its last `seq` and the
    /// floor (1 for its first update when there is no floor).
    fn next_seq(&self, code: &str) -> u64 {
        let floor = self.seq_floor.as_ref().map_or(0, |f| f(code));
        let bump = |s: &AtomicU64| {
            s.fetch_max(floor, Ordering::SeqCst);
            s.fetch_add(1, Ordering::SeqCst) + 1
        };
        {
            let seqs = self.seqs.read().unwrap_or_else(|e| e.into_inner());
            if let Some(s) = seqs.get(code) {
                return bump(s);
            }
        }
        let mut seqs = self.seqs.write().unwrap_or_else(|e| e.into_inner());
        bump(
            seqs.entry(code.to_owned())
                .or_insert_with(|| AtomicU64::new(0)),
        )
    }

    /// Cache, record and publish quotes already in hand (the second half of a run); returns
    /// the problems. Exposed for benchmarks and for callers that bring their own quotes; waits
    /// for a run in progress. The quotes are taken as they are: a caller with quotes from
    /// outside checks them with [`crate::validate_quote`] first, as a
    /// run does.
    pub async fn distribute(&self, quotes: &[Quote]) -> Vec<String> {
        let _one_at_a_time = self.run_lock.lock().await;
        self.distribute_quotes(quotes, true).await
    }

    /// Write the cache snapshot of `codes`: each one's last quote, in one write; the problem,
    /// if the write failed.
    async fn cache_last<'a>(&self, codes: impl Iterator<Item = &'a str>) -> Option<String> {
        let snapshot: Vec<Quote> = codes.filter_map(|c| self.last_quote(c)).collect();
        let written = self
            .cache
            .put_quotes(&snapshot, self.config.quote_ttl)
            .await;
        written.err().map(cache_failed)
    }

    /// Cache (when `cache`), record and publish; a quote older than the symbol's last one is
    /// left out (a poll answering after a newer streamed price), so prices never go back.
    async fn distribute_quotes(&self, quotes: &[Quote], cache: bool) -> Vec<String> {
        let mut problems = Vec::new();
        let _in_order = self.publish_lock.lock().await;
        let quotes: Vec<Quote> = {
            let mut last = self.last.lock().unwrap_or_else(|e| e.into_inner());
            quotes
                .iter()
                .filter(|q| {
                    let newer = last
                        .get(&q.symbol_code)
                        .is_none_or(|l| q.timestamp >= l.timestamp);
                    if newer {
                        last.insert(q.symbol_code.clone(), (*q).clone());
                    }
                    newer
                })
                .cloned()
                .collect()
        };
        if quotes.is_empty() {
            return problems;
        }
        let ticks: Vec<PriceTick> = quotes.iter().map(PriceTick::from).collect();
        let mut messages: Vec<Broadcast> = Vec::with_capacity(quotes.len());
        for q in &quotes {
            let event = Event::PriceUpdate(PriceUpdate {
                symbol_code: q.symbol_code.clone(),
                price: q.price,
                change: q.change,
                change_percent: q.change_percent,
                timestamp: q.timestamp,
                seq: self.next_seq(&q.symbol_code),
            });
            match event.to_broadcast() {
                Ok(b) => messages.push(b),
                Err(e) => problems.push(format!("{}: not published: {e}", q.symbol_code)),
            }
        }
        let put = async {
            if cache {
                self.cache.put_quotes(&quotes, self.config.quote_ttl).await
            } else {
                Ok(())
            }
        };
        let (cached, recorded, published) = tokio::join!(
            put,
            self.ticks.insert_ticks(&ticks),
            self.broadcaster.publish(&messages),
        );
        if let Err(e) = cached {
            problems.push(cache_failed(e));
        }
        if let Err(e) = recorded {
            tracing::warn!(error = %e, "price tick insert failed");
            problems.push(format!("price ticks: {e}"));
        }
        if let Err(e) = published {
            tracing::warn!(error = %e, "price update publish failed");
            problems.push(format!("publish: {e}"));
        }
        problems
    }
}

/// Log a failed quote cache write; its line for the run's problems.
fn cache_failed(e: Error) -> String {
    tracing::warn!(error = %e, "quote cache write failed");
    format!("quote cache: {e}")
}

#[async_trait]
impl Job for PriceFetcherJob {
    fn name(&self) -> &str {
        Self::NAME
    }

    fn schedule(&self) -> Schedule {
        self.config
            .cadence
            .schedule()
            .with_missed(self.config.missed)
            .with_singleton(true)
    }

    async fn run(&self, ctx: &JobContext) -> Result<RunReport> {
        let _one_at_a_time = tokio::select! {
            g = self.run_lock.lock() => g,
            () = ctx.cancel.cancelled() => return Err(Error::Cancelled),
        };
        let symbols = tokio::select! {
            r = self.symbols.active_symbols() => r?,
            () = ctx.cancel.cancelled() => return Err(Error::Cancelled),
        };
        if symbols.is_empty() {
            return Ok(RunReport::ok("no active symbols"));
        }
        // Symbols a live stream priced within the period are not polled; their last streamed
        // quotes go into the cache snapshot with this run's.
        let window = self.coverage_window();
        let (streamed, symbols): (Vec<Symbol>, Vec<Symbol>) = symbols
            .into_iter()
            .partition(|s| self.coverage.covers(&s.code, ctx.clock.now(), window));
        let streamed_codes = || streamed.iter().map(|s| s.code.as_str());
        if symbols.is_empty() {
            let problems = self
                .cache_last(streamed_codes())
                .await
                .into_iter()
                .collect();
            return Ok(RunReport {
                summary: format!("0 quotes, 0 failed, {} streamed", streamed.len()),
                problems,
            });
        }
        let batch = tokio::select! {
            r = self.market.quotes(&symbols) => r?,
            () = ctx.cancel.cancelled() => return Err(Error::Cancelled),
        };

        // Keep only quotes of symbols asked for, one good one per symbol; a quote that breaks
        // the market rules (crate::market) is that symbol's failure, whatever the provider.
        let now = ctx.clock.now();
        let asked: HashSet<&str> = symbols.iter().map(|s| s.code.as_str()).collect();
        let mut seen: HashSet<String> = HashSet::new();
        let mut quotes: Vec<Quote> = Vec::with_capacity(batch.quotes.len());
        let mut rejected: Vec<SymbolFailure> = Vec::new();
        for q in batch.quotes {
            if !asked.contains(q.symbol_code.as_str()) || seen.contains(&q.symbol_code) {
                continue;
            }
            match validate_quote(&q, now) {
                Ok(()) => {
                    seen.insert(q.symbol_code.clone());
                    quotes.push(q);
                }
                Err(error) => {
                    tracing::warn!(
                        symbol = %q.symbol_code,
                        provider = q.source.as_deref().unwrap_or(self.market.name()),
                        %error,
                        "quote refused"
                    );
                    if !rejected.iter().any(|f| f.symbol_code == q.symbol_code) {
                        rejected.push(SymbolFailure {
                            symbol_code: q.symbol_code,
                            error,
                        });
                    }
                }
            }
        }
        rejected.retain(|f| !seen.contains(&f.symbol_code));
        let mut failures = batch.failures;
        failures.extend(rejected);
        if quotes.is_empty() {
            if let Some(first) = failures.pop() {
                // Nothing priced at all: the run failed (temporary errors are retried).
                tracing::warn!(
                    failed = failures.len() + 1,
                    provider = self.market.name(),
                    "no symbol priced"
                );
                return Err(first.error);
            }
            return Err(Error::backend(
                "market",
                format!("{} returned no quotes", self.market.name()),
                None,
            ));
        }

        let mut problems: Vec<String> = failures
            .iter()
            .map(|f| format!("{}: {} (keeps its last value)", f.symbol_code, f.error))
            .collect();
        let missing: Vec<&str> = symbols
            .iter()
            .map(|s| s.code.as_str())
            .filter(|c| !seen.contains(*c) && !failures.iter().any(|f| f.symbol_code == *c))
            .collect();
        for code in &missing {
            problems.push(format!(
                "{code}: no quote from {} (keeps its last value)",
                self.market.name()
            ));
        }
        for f in &failures {
            tracing::debug!(symbol = %f.symbol_code, error = %f.error, "symbol not priced");
        }

        let polled = quotes.len();
        if streamed.is_empty() {
            problems.extend(self.distribute_quotes(&quotes, true).await);
        } else {
            // The streamed symbols are already recorded and published: the snapshot of every
            // symbol's last quote goes into the cache in one write.
            problems.extend(self.distribute_quotes(&quotes, false).await);
            let codes = quotes.iter().map(|q| q.symbol_code.as_str());
            problems.extend(self.cache_last(codes.chain(streamed_codes())).await);
        }
        let failed = symbols.len() - polled;
        let summary = if streamed.is_empty() {
            format!("{polled} quotes, {failed} failed")
        } else {
            format!(
                "{polled} quotes, {failed} failed, {} streamed",
                streamed.len()
            )
        };
        Ok(RunReport { summary, problems })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::{
        ManualClock, MockBroadcaster, MockMarketData, MockPriceTickRepository, MockQuoteCache,
        MockSymbolRepository, QuoteBatch, Symbol, SymbolFailure,
    };
    use chrono::{TimeZone, Utc};
    use rust_decimal::Decimal;
    use std::str::FromStr;
    use tokio_util::sync::CancellationToken;

    /// A run five seconds after the quotes' instant (quotes must be fresh, crate::market).
    fn ctx() -> JobContext {
        JobContext {
            cancel: CancellationToken::new(),
            clock: Arc::new(ManualClock::new(
                Utc.with_ymd_and_hms(2026, 11, 27, 14, 0, 5).unwrap(),
            )),
            attempt: 1,
        }
    }

    fn quote(code: &str, price: &str) -> Quote {
        Quote {
            symbol_code: code.to_owned(),
            price: Decimal::from_str(price).unwrap(),
            change: Decimal::from_str("1.5").unwrap(),
            change_percent: Decimal::from_str("0.06").unwrap(),
            timestamp: Utc.with_ymd_and_hms(2026, 11, 27, 14, 0, 0).unwrap(),
            source: None,
        }
    }

    fn symbols_repo(codes: &[&str]) -> MockSymbolRepository {
        let syms: Vec<Symbol> = codes.iter().map(|c| Symbol::new(c, c, c)).collect();
        let mut repo = MockSymbolRepository::new();
        repo.expect_active_symbols()
            .returning(move || Ok(syms.clone()));
        repo
    }

    fn seqs_of(messages: &[Broadcast]) -> Vec<(String, u64)> {
        messages
            .iter()
            .map(|b| {
                let v: serde_json::Value = serde_json::from_slice(&b.payload).unwrap();
                assert_eq!(v["type"], "price_update");
                (
                    v["payload"]["symbol_code"].as_str().unwrap().to_owned(),
                    v["payload"]["seq"].as_u64().unwrap(),
                )
            })
            .collect()
    }

    type Published = Arc<Mutex<Vec<Vec<Broadcast>>>>;

    fn job(
        market: MockMarketData,
        cache: MockQuoteCache,
        ticks: MockPriceTickRepository,
        codes: &[&str],
    ) -> (PriceFetcherJob, Published) {
        let published: Published = Arc::default();
        let mut broadcaster = MockBroadcaster::new();
        let p = published.clone();
        broadcaster.expect_publish().returning(move |m| {
            p.lock().unwrap().push(m.to_vec());
            Ok(())
        });
        let ports = crate::Ports::in_memory()
            .with_symbols(Arc::new(symbols_repo(codes)))
            .with_ticks(Arc::new(ticks));
        let job = PriceFetcherJob::new(
            &ports,
            Arc::new(market),
            Arc::new(cache),
            Arc::new(broadcaster),
        );
        (job, published)
    }

    #[tokio::test]
    async fn one_provider_call_one_cache_call_per_tick_and_seq_grows() {
        let mut market = MockMarketData::new();
        market.expect_name().return_const("mock");
        market.expect_quotes().times(3).returning(|syms| {
            assert_eq!(syms.len(), 2, "all active symbols in one call");
            Ok(QuoteBatch {
                quotes: vec![quote("XAUUSD", "2658.50"), quote("XAGUSD", "31.245")],
                failures: vec![],
            })
        });
        let mut cache = MockQuoteCache::new();
        cache
            .expect_put_quotes()
            .times(3)
            .withf(|q, ttl| q.len() == 2 && *ttl == Duration::from_secs(5))
            .returning(|_, _| Ok(()));
        let mut ticks = MockPriceTickRepository::new();
        ticks
            .expect_insert_ticks()
            .times(3)
            .withf(|t| t.len() == 2)
            .returning(|_| Ok(()));
        let (job, published) = job(market, cache, ticks, &["XAGUSD", "XAUUSD"]);
        assert_eq!(job.name(), "PriceFetcherJob");
        assert!(job.schedule().singleton);
        assert_eq!(job.schedule().interval, Duration::from_secs(5));
        for _ in 0..3 {
            let report = job.run(&ctx()).await.unwrap();
            assert!(report.problems.is_empty(), "{:?}", report.problems);
        }
        let published = published.lock().unwrap();
        assert_eq!(published.len(), 3, "one publish call per tick");
        let all: Vec<(String, u64)> = published.iter().flat_map(|m| seqs_of(m)).collect();
        assert_eq!(
            all,
            vec![
                ("XAUUSD".into(), 1),
                ("XAGUSD".into(), 1),
                ("XAUUSD".into(), 2),
                ("XAGUSD".into(), 2),
                ("XAUUSD".into(), 3),
                ("XAGUSD".into(), 3),
            ]
        );
        assert_eq!(job.seq("XAUUSD"), 3);
        assert_eq!(job.last_quotes().len(), 2);
    }

    #[tokio::test]
    async fn failing_symbol_is_isolated_and_keeps_last_value() {
        let mut market = MockMarketData::new();
        market.expect_name().return_const("mock");
        let mut calls = 0;
        market.expect_quotes().times(2).returning(move |_| {
            calls += 1;
            if calls == 1 {
                Ok(QuoteBatch {
                    quotes: vec![quote("XAUUSD", "2658.50"), quote("XAGUSD", "31.245")],
                    failures: vec![],
                })
            } else {
                Ok(QuoteBatch {
                    quotes: vec![quote("XAUUSD", "2660.00")],
                    failures: vec![SymbolFailure {
                        symbol_code: "XAGUSD".into(),
                        error: Error::backend("mock", "symbol not found", None),
                    }],
                })
            }
        });
        let mut cache = MockQuoteCache::new();
        cache.expect_put_quotes().times(2).returning(|_, _| Ok(()));
        let mut ticks = MockPriceTickRepository::new();
        ticks.expect_insert_ticks().times(2).returning(|_| Ok(()));
        let (job, published) = job(market, cache, ticks, &["XAGUSD", "XAUUSD"]);
        job.run(&ctx()).await.unwrap();
        let report = job.run(&ctx()).await.unwrap();
        assert_eq!(report.summary, "1 quotes, 1 failed");
        assert_eq!(report.problems.len(), 1);
        assert!(
            report.problems[0].starts_with("XAGUSD"),
            "{:?}",
            report.problems
        );
        // Last good values: XAG from the first run, XAU from the second.
        let last = job.last_quotes();
        assert_eq!(last[0].symbol_code, "XAGUSD");
        assert_eq!(last[0].price, Decimal::from_str("31.245").unwrap());
        assert_eq!(last[1].price, Decimal::from_str("2660.00").unwrap());
        let published = published.lock().unwrap();
        assert_eq!(seqs_of(&published[1]), vec![("XAUUSD".into(), 2)]);
        assert_eq!(job.seq("XAGUSD"), 1);
    }

    #[tokio::test]
    async fn cache_failure_does_not_stop_ticks_or_publish() {
        let mut market = MockMarketData::new();
        market.expect_name().return_const("mock");
        market.expect_quotes().times(2).returning(|_| {
            Ok(QuoteBatch {
                quotes: vec![quote("XAUUSD", "2658.50")],
                failures: vec![],
            })
        });
        let mut cache = MockQuoteCache::new();
        cache
            .expect_put_quotes()
            .times(2)
            .returning(|_, _| Err(Error::unavailable("redis", "connection refused", None)));
        let mut ticks = MockPriceTickRepository::new();
        ticks.expect_insert_ticks().times(2).returning(|_| Ok(()));
        let (job, published) = job(market, cache, ticks, &["XAUUSD"]);
        for _ in 0..2 {
            let report = job.run(&ctx()).await.unwrap();
            assert_eq!(report.problems.len(), 1);
            assert!(report.problems[0].contains("quote cache"));
        }
        assert_eq!(published.lock().unwrap().len(), 2);
        assert_eq!(job.seq("XAUUSD"), 2);
    }

    #[tokio::test]
    async fn tick_failure_is_a_problem_not_an_error() {
        let mut market = MockMarketData::new();
        market.expect_name().return_const("mock");
        market.expect_quotes().times(1).returning(|_| {
            Ok(QuoteBatch {
                quotes: vec![quote("XAUUSD", "2658.50")],
                failures: vec![],
            })
        });
        let mut cache = MockQuoteCache::new();
        cache.expect_put_quotes().times(1).returning(|_, _| Ok(()));
        let mut ticks = MockPriceTickRepository::new();
        ticks
            .expect_insert_ticks()
            .times(1)
            .returning(|_| Err(Error::unavailable("postgres", "down", None)));
        let (job, published) = job(market, cache, ticks, &["XAUUSD"]);
        let report = job.run(&ctx()).await.unwrap();
        assert!(report.problems[0].contains("price ticks"));
        assert_eq!(published.lock().unwrap().len(), 1);
    }

    #[tokio::test]
    async fn provider_failure_fails_the_run_and_touches_nothing() {
        let mut market = MockMarketData::new();
        market.expect_name().return_const("mock");
        market.expect_quotes().times(1).returning(|_| {
            Err(Error::RateLimited {
                backend: "mock",
                message: "slow down".into(),
                retry_after: Some(Duration::from_secs(3)),
            })
        });
        let mut cache = MockQuoteCache::new();
        cache.expect_put_quotes().never();
        let mut ticks = MockPriceTickRepository::new();
        ticks.expect_insert_ticks().never();
        let (job, published) = job(market, cache, ticks, &["XAUUSD"]);
        let err = job.run(&ctx()).await.unwrap_err();
        assert!(err.is_temporary());
        assert_eq!(err.retry_after(), Some(Duration::from_secs(3)));
        assert!(published.lock().unwrap().is_empty());
    }

    #[tokio::test]
    async fn every_symbol_failing_fails_the_run() {
        let mut market = MockMarketData::new();
        market.expect_name().return_const("mock");
        market.expect_quotes().times(1).returning(|_| {
            Ok(QuoteBatch {
                quotes: vec![],
                failures: vec![SymbolFailure {
                    symbol_code: "XAUUSD".into(),
                    error: Error::unavailable("mock", "503", None),
                }],
            })
        });
        let mut cache = MockQuoteCache::new();
        cache.expect_put_quotes().never();
        let mut ticks = MockPriceTickRepository::new();
        ticks.expect_insert_ticks().never();
        let (job, _) = job(market, cache, ticks, &["XAUUSD"]);
        assert!(job.run(&ctx()).await.unwrap_err().is_temporary());
    }

    #[tokio::test]
    async fn symbols_come_from_the_repository() {
        let mut market = MockMarketData::new();
        market.expect_name().return_const("mock");
        market
            .expect_quotes()
            .withf(|s: &[Symbol]| s.iter().map(|s| s.code.as_str()).collect::<Vec<_>>() == ["ZZZ1"])
            .times(1)
            .returning(|_| {
                Ok(QuoteBatch {
                    quotes: vec![quote("ZZZ1", "1")],
                    failures: vec![],
                })
            });
        let mut cache = MockQuoteCache::new();
        cache.expect_put_quotes().returning(|_, _| Ok(()));
        let mut ticks = MockPriceTickRepository::new();
        ticks.expect_insert_ticks().returning(|_| Ok(()));
        let (job, _) = job(market, cache, ticks, &["ZZZ1"]);
        job.run(&ctx()).await.unwrap();
    }
}

/// The job over the real in-memory adapters (no mocks).
#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod memory_tests {
    use super::*;
    use crate::memory::{InMemoryQuoteCache, InMemorySymbols, InMemoryTicks, LocalBroadcaster};
    use crate::{PricePoint, QuoteBatch, Symbol, SymbolFailure, SystemClock};
    use chrono::{DateTime, Utc};
    use rust_decimal::Decimal;
    use std::sync::atomic::AtomicUsize;
    use tokio_util::sync::CancellationToken;

    /// Prices every symbol at 100 + call number, except codes starting with `BAD`.
    #[derive(Default)]
    struct Counting {
        calls: AtomicUsize,
    }

    #[async_trait]
    impl MarketData for Counting {
        fn name(&self) -> &'static str {
            "counting"
        }
        async fn quotes(&self, symbols: &[Symbol]) -> Result<QuoteBatch> {
            let n = self.calls.fetch_add(1, Ordering::SeqCst) as i64 + 1;
            let mut batch = QuoteBatch::default();
            for s in symbols {
                if s.code.starts_with("BAD") {
                    batch.failures.push(SymbolFailure {
                        symbol_code: s.code.clone(),
                        error: Error::backend("counting", "unknown symbol", None),
                    });
                } else {
                    batch.quotes.push(Quote {
                        symbol_code: s.code.clone(),
                        price: Decimal::from(100 + n),
                        change: Decimal::ONE,
                        change_percent: Decimal::ONE,
                        timestamp: Utc::now(),
                        source: None,
                    });
                }
            }
            Ok(batch)
        }
        async fn price_at(&self, _: &Symbol, _: DateTime<Utc>) -> Result<Option<PricePoint>> {
            Ok(None)
        }
    }

    #[tokio::test]
    async fn runs_cache_record_and_publish_with_growing_seq() {
        let mut symbols = Symbol::defaults();
        symbols.push(Symbol::new("BADSYM", "broken", "BAD/SYM"));
        let mut inactive = Symbol::new("OFFSYM", "inactive", "OFF/SYM");
        inactive.active = false;
        symbols.push(inactive);
        let market = Arc::new(Counting::default());
        let cache = Arc::new(InMemoryQuoteCache::new());
        let ticks = Arc::new(InMemoryTicks::new());
        let hub = Arc::new(LocalBroadcaster::new());
        let mut rx = hub.subscribe();
        let job = PriceFetcherJob::new(
            &crate::Ports::in_memory()
                .with_symbols(Arc::new(InMemorySymbols::with_symbols(symbols)))
                .with_ticks(ticks.clone()),
            market.clone(),
            cache.clone(),
            hub.clone(),
        )
        .with_config(PriceFetcherConfig::default());
        let ctx = JobContext {
            cancel: CancellationToken::new(),
            clock: Arc::new(SystemClock),
            attempt: 1,
        };
        for _ in 0..3 {
            let report = job.run(&ctx).await.unwrap();
            assert_eq!(report.summary, "6 quotes, 1 failed");
            assert_eq!(report.problems.len(), 1);
            assert!(report.problems[0].starts_with("BADSYM"));
        }
        assert_eq!(
            market.calls.load(Ordering::SeqCst),
            3,
            "one provider call per run"
        );
        let codes: Vec<String> = Symbol::defaults().into_iter().map(|s| s.code).collect();
        let cached = cache.get_quotes(&codes).await.unwrap();
        assert_eq!(cached.len(), 6);
        assert!(cached.iter().all(|q| q.price == Decimal::from(103)));
        assert_eq!(ticks.ticks_of("XAUUSD").len(), 3);
        assert!(ticks.ticks_of("OFFSYM").is_empty());
        let mut gold_seqs = Vec::new();
        let mut messages = 0;
        while let Ok(b) = rx.try_recv() {
            messages += 1;
            let v: serde_json::Value = serde_json::from_slice(&b.payload).unwrap();
            if v["payload"]["symbol_code"] == "XAUUSD" {
                gold_seqs.push(v["payload"]["seq"].as_u64().unwrap());
                // Decimals travel as JSON strings.
                assert!(v["payload"]["price"].is_string());
            }
        }
        assert_eq!(messages, 18);
        assert_eq!(gold_seqs, vec![1, 2, 3]);
        assert_eq!(job.last_quotes().len(), 6);
        assert!(job.last_quote("BADSYM").is_none());
    }
    /// Answers the quotes it was given, whatever was asked.
    struct Scripted(Vec<Quote>);

    #[async_trait]
    impl MarketData for Scripted {
        fn name(&self) -> &'static str {
            "scripted"
        }
        async fn quotes(&self, _: &[Symbol]) -> Result<QuoteBatch> {
            Ok(QuoteBatch {
                quotes: self.0.clone(),
                failures: vec![],
            })
        }
        async fn price_at(&self, _: &Symbol, _: DateTime<Utc>) -> Result<Option<PricePoint>> {
            Ok(None)
        }
    }

    fn scripted(code: &str, price: &str, timestamp: DateTime<Utc>) -> Quote {
        Quote {
            symbol_code: code.to_owned(),
            price: price.parse().unwrap(),
            change: Decimal::ONE,
            change_percent: Decimal::ONE,
            timestamp,
            source: Some("scripted".to_owned()),
        }
    }

    #[tokio::test]
    async fn a_bad_quote_is_not_cached_recorded_or_published_and_the_others_are() {
        let now = chrono::TimeZone::with_ymd_and_hms(&Utc, 2026, 11, 27, 14, 0, 5).unwrap();
        let fresh = now - chrono::Duration::seconds(5);
        let market = Scripted(vec![
            scripted("XAUUSD", "2658.50", fresh),
            scripted("XAGUSD", "0", fresh),
            scripted("EURUSD", "-0", fresh),
            scripted("GBPUSD", "1.27", now - chrono::Duration::days(2)),
            scripted("USDJPY", "151.2", now + chrono::Duration::minutes(5)),
            // A bad duplicate never replaces a good quote, and a good one is kept after a bad.
            scripted("XAUUSD", "-1", fresh),
            scripted("BTCUSD", "-97000", fresh),
            scripted("BTCUSD", "97000.12", fresh),
        ]);
        let cache = Arc::new(InMemoryQuoteCache::new());
        let ticks = Arc::new(InMemoryTicks::new());
        let hub = Arc::new(LocalBroadcaster::new());
        let mut rx = hub.subscribe();
        let job = PriceFetcherJob::new(
            &crate::Ports::in_memory()
                .with_symbols(Arc::new(InMemorySymbols::with_defaults()))
                .with_ticks(ticks.clone()),
            Arc::new(market),
            cache.clone(),
            hub.clone(),
        )
        .with_config(PriceFetcherConfig::default());
        let ctx = JobContext {
            cancel: CancellationToken::new(),
            clock: Arc::new(crate::ManualClock::new(now)),
            attempt: 1,
        };
        let report = job.run(&ctx).await.unwrap();
        assert_eq!(report.summary, "2 quotes, 4 failed");
        let mut refused: Vec<&str> = report
            .problems
            .iter()
            .map(|p| p.split(':').next().unwrap())
            .collect();
        refused.sort_unstable();
        assert_eq!(
            refused,
            ["EURUSD", "GBPUSD", "USDJPY", "XAGUSD"],
            "{report:?}"
        );
        assert!(report
            .problems
            .iter()
            .all(|p| p.ends_with("(keeps its last value)")));
        let codes: Vec<String> = Symbol::defaults().into_iter().map(|s| s.code).collect();
        let cached: Vec<String> = cache
            .get_quotes(&codes)
            .await
            .unwrap()
            .into_iter()
            .map(|q| q.symbol_code)
            .collect();
        assert_eq!(cached, ["XAUUSD", "BTCUSD"]);
        for code in &codes {
            let recorded = ticks.ticks_of(code);
            if code == "XAUUSD" || code == "BTCUSD" {
                assert_eq!(recorded.len(), 1, "{code}");
                assert!(recorded[0].price > Decimal::ZERO);
            } else {
                assert!(recorded.is_empty(), "{code} recorded {recorded:?}");
            }
        }
        let mut pushed = Vec::new();
        while let Ok(b) = rx.try_recv() {
            let v: serde_json::Value = serde_json::from_slice(&b.payload).unwrap();
            pushed.push((
                v["payload"]["symbol_code"].as_str().unwrap().to_owned(),
                v["payload"]["price"].as_str().unwrap().to_owned(),
            ));
        }
        assert_eq!(
            pushed,
            [
                ("XAUUSD".to_owned(), "2658.50".to_owned()),
                ("BTCUSD".to_owned(), "97000.12".to_owned())
            ]
        );
        assert!(job.last_quote("XAGUSD").is_none());
        assert_eq!(job.seq("EURUSD"), 0);
    }

    #[tokio::test]
    async fn only_bad_quotes_fail_the_run_and_touch_nothing() {
        let now = Utc::now();
        let market = Scripted(vec![
            scripted("XAUUSD", "0", now),
            scripted("XAGUSD", "31.2", now - chrono::Duration::days(3)),
        ]);
        let cache = Arc::new(InMemoryQuoteCache::new());
        let ticks = Arc::new(InMemoryTicks::new());
        let job = PriceFetcherJob::new(
            &crate::Ports::in_memory()
                .with_symbols(Arc::new(InMemorySymbols::with_symbols(vec![
                    Symbol::new("XAUUSD", "Gold", "XAU/USD"),
                    Symbol::new("XAGUSD", "Silver", "XAG/USD"),
                ])))
                .with_ticks(ticks.clone()),
            Arc::new(market),
            cache.clone(),
            Arc::new(LocalBroadcaster::new()),
        )
        .with_config(PriceFetcherConfig::default());
        let ctx = JobContext {
            cancel: CancellationToken::new(),
            clock: Arc::new(SystemClock),
            attempt: 1,
        };
        let err = job.run(&ctx).await.unwrap_err();
        assert!(matches!(err, Error::InvalidInput(_)), "{err:?}");
        assert!(!err.is_temporary());
        assert!(ticks.ticks_of("XAUUSD").is_empty() && ticks.ticks_of("XAGUSD").is_empty());
        let codes = ["XAUUSD".to_owned(), "XAGUSD".to_owned()];
        assert!(cache.get_quotes(&codes).await.unwrap().is_empty());
    }

    #[tokio::test]
    async fn a_new_leader_continues_seq_after_the_floor() {
        let hub = Arc::new(LocalBroadcaster::new());
        let mut rx = hub.subscribe();
        // What this instance's hub last relayed from the previous leader.
        let floor = Arc::new(AtomicU64::new(41));
        let f = floor.clone();
        let job = PriceFetcherJob::new(
            &crate::Ports::in_memory()
                .with_symbols(Arc::new(InMemorySymbols::with_symbols(vec![Symbol::new(
                    "XAUUSD", "Gold", "XAU/USD",
                )])))
                .with_ticks(Arc::new(InMemoryTicks::new())),
            Arc::new(Counting::default()),
            Arc::new(InMemoryQuoteCache::new()),
            hub.clone(),
        )
        .with_config(PriceFetcherConfig::default())
        .with_seq_floor(Arc::new(move |code| {
            if code == "XAUUSD" {
                f.load(Ordering::SeqCst)
            } else {
                0
            }
        }));
        let ctx = JobContext {
            cancel: CancellationToken::new(),
            clock: Arc::new(SystemClock),
            attempt: 1,
        };
        job.run(&ctx).await.unwrap();
        job.run(&ctx).await.unwrap();
        // Another instance published up to 100 meanwhile (e.g. a split brain that healed).
        floor.store(100, Ordering::SeqCst);
        job.run(&ctx).await.unwrap();
        let mut seqs = Vec::new();
        while let Ok(b) = rx.try_recv() {
            let v: serde_json::Value = serde_json::from_slice(&b.payload).unwrap();
            seqs.push(v["payload"]["seq"].as_u64().unwrap());
        }
        assert_eq!(seqs, vec![42, 43, 101]);
        assert_eq!(job.seq("XAUUSD"), 101);
    }
}
