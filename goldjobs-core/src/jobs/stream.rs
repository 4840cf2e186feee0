//! PriceStreamer: keeps a provider's live price stream open on the price leader, turns every
//! price event into a tick and a `price_update`, and hands silent symbols back to polling.

use crate::backoff::{Backoff, RandomSource, ThreadRandom};
use crate::jobs::{PriceFetcherJob, StreamCoverage};
use crate::{
    validate_quote, Clock, MarketStream, PriceEvents, Quote, StreamEvent, SymbolRepository,
};
use futures::StreamExt;
use std::collections::{BTreeSet, HashSet};
use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// Configuration of [`PriceStreamer`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct PriceStreamConfig {
    /// Streamed prices are recorded (one tick insert) and published together at most this
    /// often, default 100 ms.
    pub batch: Duration,
    /// Most streamed prices held between two batches; more are dropped and counted (a flood
    /// never grows memory), default 10,000.
    pub max_batch: usize,
    /// Wait between failed connections (the runtime's one backoff), default 1 s doubling to
    /// 60 s with full jitter.
    pub reconnect: Backoff,
    /// How often leadership is checked (a standby connects within this of becoming leader, a
    /// leader that lost its lease disconnects within it), default 250 ms.
    pub leader_check: Duration,
    /// How often the active symbols are compared with the subscription (a change reconnects),
    /// default 60 s.
    pub symbols_check: Duration,
}

impl Default for PriceStreamConfig {
    fn default() -> Self {
        PriceStreamConfig {
            batch: Duration::from_millis(100),
            max_batch: 10_000,
            reconnect: Backoff::new(Duration::from_secs(1), Duration::from_secs(60)),
            leader_check: Duration::from_millis(250),
            symbols_check: Duration::from_secs(60),
        }
    }
}

impl PriceStreamConfig {
    /// Set the batch period.
    pub fn with_batch(mut self, batch: Duration) -> Self {
        self.batch = batch;
        self
    }
    /// Set the most prices held between batches.
    pub fn with_max_batch(mut self, max: usize) -> Self {
        self.max_batch = max.max(1);
        self
    }
    /// Set the reconnect backoff.
    pub fn with_reconnect(mut self, reconnect: Backoff) -> Self {
        self.reconnect = reconnect;
        self
    }
    /// Set the leadership check period.
    pub fn with_leader_check(mut self, every: Duration) -> Self {
        self.leader_check = every;
        self
    }
    /// Set the active-symbols check period.
    pub fn with_symbols_check(mut self, every: Duration) -> Self {
        self.symbols_check = every;
        self
    }
}

/// Keeps one connection of a [`MarketStream`] open while this instance leads the price job,
/// and feeds its prices through the [`PriceFetcherJob`].
///
/// * Every price event of an active symbol that passes [`validate_quote`] becomes a tick
///   (`source` = the stream's name) and a `price_update` (the job's `seq`), recorded and
///   published in batches of [`PriceStreamConfig::batch`]; the job's last value of the symbol
///   follows it, and the job's next run puts it in the quote cache.
/// * A symbol with a streamed price younger than the job's period is not polled
///   ([`StreamCoverage`]); one the provider refused, or that falls silent, is polled again
///   from the job's next run on, and taken back by its next streamed price.
/// * A connection that fails, closes or cannot be opened hands every symbol back to polling
///   and is tried again after the reconnect backoff; one that worked resets it.
/// * It connects only while `is_leader()` (the price job's lease) holds, and disconnects within
///   [`PriceStreamConfig::leader_check`] of losing it, so a fleet keeps one connection and a
///   failover moves it.
pub struct PriceStreamer {
    stream: Arc<dyn MarketStream>,
    symbols: Arc<dyn SymbolRepository>,
    job: Arc<PriceFetcherJob>,
    coverage: Arc<StreamCoverage>,
    clock: Arc<dyn Clock>,
    random: Arc<dyn RandomSource>,
    config: PriceStreamConfig,
    connected: AtomicBool,
    connects: AtomicU64,
    events: AtomicU64,
    dropped: AtomicU64,
}

impl fmt::Debug for PriceStreamer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PriceStreamer")
            .field("stream", &self.stream.name())
            .field("connected", &self.is_connected())
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

/// Why a connection ended.
enum End {
    Cancelled,
    LostLeadership,
    SymbolsChanged,
    Failed(String),
}

impl PriceStreamer {
    /// A streamer of `stream` over the symbols of `ports`, feeding `job`.
    pub fn new(
        ports: &crate::Ports,
        stream: Arc<dyn MarketStream>,
        job: Arc<PriceFetcherJob>,
        clock: Arc<dyn Clock>,
    ) -> Self {
        PriceStreamer {
            stream,
            symbols: ports.symbols.clone(),
            coverage: job.stream_coverage(),
            job,
            clock,
            random: Arc::new(ThreadRandom),
            config: PriceStreamConfig::default(),
            connected: AtomicBool::new(false),
            connects: AtomicU64::new(0),
            events: AtomicU64::new(0),
            dropped: AtomicU64::new(0),
        }
    }

    /// Replace the configuration.
    pub fn with_config(mut self, config: PriceStreamConfig) -> Self {
        self.config = config;
        self
    }

    /// Take the jitter of the reconnect backoff from `random` (tests pin it).
    pub fn with_random_source(mut self, random: Arc<dyn RandomSource>) -> Self {
        self.random = random;
        self
    }

    /// The stream's provider name.
    pub fn name(&self) -> &'static str {
        self.stream.name()
    }

    /// Whether a connection is open now.
    pub fn is_connected(&self) -> bool {
        self.connected.load(Ordering::SeqCst)
    }

    /// Connections opened so far.
    pub fn connects(&self) -> u64 {
        self.connects.load(Ordering::SeqCst)
    }

    /// Price events taken so far (recorded or refused).
    pub fn events(&self) -> u64 {
        self.events.load(Ordering::SeqCst)
    }

    /// Price events dropped because a batch was full.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::SeqCst)
    }

    /// The codes the stream covers now.
    pub fn covered(&self) -> Vec<String> {
        self.coverage
            .covered(self.clock.now(), self.job.coverage_window())
    }

    /// Run until `cancel`: connect while `is_leader()`, reconnect with backoff, stop on
    /// cancellation (the batch in hand is recorded first).
    pub async fn run(&self, cancel: CancellationToken, is_leader: impl Fn() -> bool + Send + Sync) {
        let mut backoff = self.config.reconnect.state(self.random.clone());
        let mut failing = false;
        loop {
            // Lead first.
            while !is_leader() {
                tokio::select! {
                    () = cancel.cancelled() => return,
                    () = tokio::time::sleep(self.config.leader_check) => {}
                }
            }
            let end = match self.active_codes().await {
                Err(e) => End::Failed(format!("active symbols: {e}")),
                Ok((symbols, _)) if symbols.is_empty() => {
                    tokio::select! {
                        () = cancel.cancelled() => return,
                        () = tokio::time::sleep(self.config.symbols_check) => {}
                    }
                    continue;
                }
                Ok((symbols, codes)) => {
                    let connected = tokio::select! {
                        r = self.stream.connect(&symbols) => r,
                        () = cancel.cancelled() => return,
                    };
                    match connected {
                        Err(e) => End::Failed(e.to_string()),
                        Ok(events) => {
                            self.connects.fetch_add(1, Ordering::SeqCst);
                            self.connected.store(true, Ordering::SeqCst);
                            if failing {
                                tracing::info!(
                                    stream = self.name(),
                                    "price stream connected again"
                                );
                                failing = false;
                            } else {
                                tracing::info!(
                                    stream = self.name(),
                                    symbols = codes.len(),
                                    "price stream connected"
                                );
                            }
                            let end = self
                                .pump(events, &codes, &cancel, &is_leader, &mut backoff)
                                .await;
                            self.connected.store(false, Ordering::SeqCst);
                            self.coverage.clear();
                            end
                        }
                    }
                }
            };
            match end {
                End::Cancelled => return,
                End::LostLeadership => {
                    tracing::info!(
                        stream = self.name(),
                        "price stream closed: no longer the price leader"
                    );
                    failing = false;
                }
                End::SymbolsChanged => {
                    tracing::info!(
                        stream = self.name(),
                        "active symbols changed: subscribing again"
                    );
                }
                End::Failed(why) => {
                    if !failing {
                        tracing::warn!(stream = self.name(), error = %why, "price stream down; its symbols are polled until it is back");
                        failing = true;
                    }
                    let wait = backoff.next_delay();
                    tokio::select! {
                        () = cancel.cancelled() => return,
                        () = tokio::time::sleep(wait) => {}
                    }
                }
            }
        }
    }

    async fn active_codes(&self) -> crate::Result<(Vec<crate::Symbol>, BTreeSet<String>)> {
        let symbols = self.symbols.active_symbols().await?;
        let codes = symbols.iter().map(|s| s.code.clone()).collect();
        Ok((symbols, codes))
    }

    async fn pump(
        &self,
        mut events: PriceEvents,
        codes: &BTreeSet<String>,
        cancel: &CancellationToken,
        is_leader: &(impl Fn() -> bool + Send + Sync),
        backoff: &mut crate::backoff::BackoffState,
    ) -> End {
        let mut batch: Vec<Quote> = Vec::new();
        let mut refused_logged: HashSet<String> = HashSet::new();
        let mut flush = tokio::time::interval(self.config.batch);
        let mut leader = tokio::time::interval(self.config.leader_check);
        let mut symbols_check = tokio::time::interval(self.config.symbols_check);
        for i in [&mut flush, &mut leader, &mut symbols_check] {
            i.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            i.reset();
        }
        let end = loop {
            tokio::select! {
                () = cancel.cancelled() => break End::Cancelled,
                event = events.next() => match event {
                    None => break End::Failed("closed by the provider".to_owned()),
                    Some(Err(e)) => break End::Failed(e.to_string()),
                    Some(Ok(StreamEvent::Subscribed { symbols, failures })) => {
                        backoff.reset();
                        for f in &failures {
                            tracing::warn!(stream = self.name(), symbol = %f.symbol_code, error = %f.error, "not streamed; polled instead");
                        }
                        tracing::info!(stream = self.name(), streamed = symbols.len(), refused = failures.len(), "price stream subscribed");
                    }
                    Some(Ok(StreamEvent::Price(p))) => {
                        self.events.fetch_add(1, Ordering::SeqCst);
                        if !codes.contains(&p.symbol_code) {
                            continue;
                        }
                        let quote = self.job.quote_from_stream(&p, self.name());
                        let now = self.clock.now();
                        if let Err(e) = validate_quote(&quote, now) {
                            if refused_logged.insert(p.symbol_code.clone()) {
                                tracing::warn!(stream = self.name(), error = %e, "streamed price refused");
                            }
                            continue;
                        }
                        backoff.reset();
                        self.coverage.mark(&quote.symbol_code, now);
                        if batch.len() >= self.config.max_batch {
                            self.dropped.fetch_add(1, Ordering::SeqCst);
                        } else {
                            batch.push(quote);
                        }
                    }
                },
                _ = flush.tick() => self.record(&mut batch).await,
                _ = leader.tick() => if !is_leader() { break End::LostLeadership },
                _ = symbols_check.tick() => match self.active_codes().await {
                    Ok((_, now)) if &now != codes => break End::SymbolsChanged,
                    Ok(_) => {}
                    Err(e) => tracing::debug!(error = %e, "active symbols not read; keeping the subscription"),
                },
            }
        };
        self.record(&mut batch).await;
        end
    }

    /// Record and publish the batch in hand (oldest first).
    async fn record(&self, batch: &mut Vec<Quote>) {
        if batch.is_empty() {
            return;
        }
        let quotes = std::mem::take(batch);
        for problem in self.job.record_streamed(&quotes).await {
            tracing::warn!(stream = self.name(), %problem, "streamed prices");
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::memory::{InMemoryBackend, InMemoryMarketStream};
    use crate::runtime::{Job, JobContext};
    use crate::{MarketData, PricePoint, QuoteBatch, StreamPrice, Symbol, TokioClock};
    use async_trait::async_trait;
    use chrono::{DateTime, TimeZone, Utc};
    use rust_decimal::Decimal;
    use std::str::FromStr;
    use std::sync::Mutex;

    /// A polled provider that prices every symbol at 100 and remembers what it was asked.
    #[derive(Debug, Default)]
    struct Poll {
        asked: Mutex<Vec<Vec<String>>>,
        clock: Mutex<Option<Arc<dyn Clock>>>,
    }

    #[async_trait]
    impl MarketData for Poll {
        fn name(&self) -> &'static str {
            "poll"
        }
        async fn quotes(&self, symbols: &[Symbol]) -> crate::Result<QuoteBatch> {
            self.asked
                .lock()
                .unwrap()
                .push(symbols.iter().map(|s| s.code.clone()).collect());
            let now = self.clock.lock().unwrap().as_ref().unwrap().now();
            let mut batch = QuoteBatch::default();
            for s in symbols {
                batch.quotes.push(Quote {
                    symbol_code: s.code.clone(),
                    price: Decimal::from(100),
                    change: Decimal::from(4),
                    change_percent: Decimal::from_str("4.16667").unwrap(),
                    timestamp: now,
                    source: Some("poll".into()),
                });
            }
            Ok(batch)
        }
        async fn price_at(
            &self,
            _: &Symbol,
            _: DateTime<Utc>,
        ) -> crate::Result<Option<PricePoint>> {
            Ok(None)
        }
    }

    struct World {
        backend: InMemoryBackend,
        stream: InMemoryMarketStream,
        poll: Arc<Poll>,
        job: Arc<PriceFetcherJob>,
        streamer: Arc<PriceStreamer>,
        clock: Arc<dyn Clock>,
        leader: Arc<AtomicBool>,
        cancel: CancellationToken,
    }

    fn world() -> World {
        let backend = InMemoryBackend::new();
        let ports = backend.ports();
        let clock: Arc<dyn Clock> = Arc::new(TokioClock::starting_at(
            Utc.with_ymd_and_hms(2026, 12, 7, 10, 0, 0).unwrap(),
        ));
        let poll = Arc::new(Poll::default());
        *poll.clock.lock().unwrap() = Some(clock.clone());
        let job = Arc::new(PriceFetcherJob::new(
            &ports,
            poll.clone(),
            backend.quote_cache.clone(),
            backend.broadcaster.clone(),
        ));
        let stream = InMemoryMarketStream::new("fake");
        let streamer = Arc::new(
            PriceStreamer::new(&ports, Arc::new(stream.clone()), job.clone(), clock.clone())
                .with_config(
                    PriceStreamConfig::default().with_reconnect(
                        Backoff::new(Duration::from_secs(1), Duration::from_secs(8))
                            .with_jitter(crate::backoff::Jitter::None),
                    ),
                ),
        );
        World {
            backend,
            stream,
            poll,
            job,
            streamer,
            clock,
            leader: Arc::new(AtomicBool::new(true)),
            cancel: CancellationToken::new(),
        }
    }

    impl World {
        fn start(&self) -> tokio::task::JoinHandle<()> {
            let streamer = self.streamer.clone();
            let cancel = self.cancel.clone();
            let leader = self.leader.clone();
            tokio::spawn(async move {
                streamer
                    .run(cancel, move || leader.load(Ordering::SeqCst))
                    .await
            })
        }

        fn price(&self, code: &str, price: &str) -> usize {
            self.stream.send(StreamPrice {
                symbol_code: code.into(),
                price: Decimal::from_str(price).unwrap(),
                timestamp: self.clock.now(),
                reference: None,
            })
        }

        async fn run_job(&self) -> String {
            let ctx = JobContext {
                cancel: CancellationToken::new(),
                clock: self.clock.clone(),
                attempt: 1,
            };
            self.job.run(&ctx).await.unwrap().summary
        }

        fn last_asked(&self) -> Vec<String> {
            self.poll
                .asked
                .lock()
                .unwrap()
                .last()
                .cloned()
                .unwrap_or_default()
        }
    }

    async fn settle() {
        tokio::time::sleep(Duration::from_millis(300)).await;
    }

    #[tokio::test(start_paused = true)]
    async fn streamed_symbols_are_recorded_published_and_not_polled() {
        let w = world();
        let mut hub = w.backend.hub.subscribe();
        // A first poll gives every symbol its previous close (100 − 4 = 96).
        assert_eq!(w.run_job().await, "6 quotes, 0 failed");
        while hub.try_recv().is_ok() {}
        let task = w.start();
        settle().await;
        assert!(w.streamer.is_connected());
        assert_eq!(w.price("XAUUSD", "2650.12345678901234567"), 1);
        assert_eq!(w.price("EURUSD", "1.08"), 1);
        settle().await;

        let ticks = w
            .backend
            .ticks
            .latest_tick("XAUUSD")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(ticks.price.to_string(), "2650.12345678901234567");
        assert_eq!(ticks.source.as_deref(), Some("fake"));
        let update: serde_json::Value =
            serde_json::from_slice(&hub.recv().await.unwrap().payload).unwrap();
        assert_eq!(update["payload"]["symbol_code"], "XAUUSD");
        assert_eq!(update["payload"]["price"], "2650.12345678901234567");
        // The change is against the polled previous close, 96.
        assert_eq!(update["payload"]["change"], "2554.12345678901234567");
        assert_eq!(update["payload"]["seq"], 2);
        assert_eq!(
            w.job.last_quote("EURUSD").unwrap().price.to_string(),
            "1.08"
        );
        assert_eq!(w.streamer.covered(), ["EURUSD", "XAUUSD"]);

        // The job polls only the others, and still caches the streamed ones.
        let summary = w.run_job().await;
        assert_eq!(summary, "4 quotes, 0 failed, 2 streamed");
        assert_eq!(w.last_asked(), ["BTCUSD", "GBPUSD", "USDJPY", "XAGUSD"]);
        let cached = w
            .backend
            .quote_cache
            .get_quotes(&["XAUUSD".to_owned()])
            .await
            .unwrap();
        assert_eq!(cached[0].price.to_string(), "2650.12345678901234567");

        // Silent for longer than the period (5 s): polled again.
        tokio::time::sleep(Duration::from_secs(6)).await;
        w.run_job().await;
        assert_eq!(w.last_asked().len(), 6);
        // Its next streamed price takes it back.
        w.price("XAUUSD", "2651");
        settle().await;
        w.run_job().await;
        assert!(!w.last_asked().contains(&"XAUUSD".to_owned()));

        w.cancel.cancel();
        task.await.unwrap();
        assert_eq!(w.stream.open_connections(), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn a_closed_or_refused_stream_hands_back_to_polling_and_reconnects_with_backoff() {
        let w = world();
        w.stream.refuse_symbols(&["USDJPY"]);
        let task = w.start();
        settle().await;
        assert_eq!(
            w.price("USDJPY", "151"),
            0,
            "a refused symbol is not subscribed"
        );
        w.price("XAUUSD", "2650");
        settle().await;
        assert_eq!(w.streamer.covered(), ["XAUUSD"]);

        // The provider closes and then refuses connections: everything is polled.
        w.stream.refuse_connections(Some("connection refused"));
        w.stream.close_all(None);
        settle().await;
        assert!(!w.streamer.is_connected());
        assert!(w.streamer.covered().is_empty());
        w.run_job().await;
        assert_eq!(w.last_asked().len(), 6);
        // Tries back off: 1 + 2 + 4 + 8 + 8 s → 5 more attempts in 24 s, not one per check.
        let before = w.streamer.connects();
        tokio::time::sleep(Duration::from_secs(24)).await;
        assert_eq!(
            w.streamer.connects(),
            before,
            "refused connections are not counted as opened"
        );
        // Back: it reconnects within the backoff cap and streams again.
        w.stream.refuse_connections(None);
        tokio::time::sleep(Duration::from_secs(9)).await;
        assert!(w.streamer.is_connected());
        assert_eq!(w.stream.connects(), 2);
        w.price("XAUUSD", "2652");
        settle().await;
        assert_eq!(w.streamer.covered(), ["XAUUSD"]);

        // An error item ends the connection the same way.
        w.stream.close_all(Some(crate::Error::unavailable(
            "stream",
            "reset by peer",
            None,
        )));
        settle().await;
        assert!(!w.streamer.is_connected());
        w.cancel.cancel();
        task.await.unwrap();
    }

    #[tokio::test(start_paused = true)]
    async fn only_the_leader_keeps_a_connection() {
        let w = world();
        w.leader.store(false, Ordering::SeqCst);
        let task = w.start();
        settle().await;
        assert_eq!(w.stream.connects(), 0);
        w.leader.store(true, Ordering::SeqCst);
        settle().await;
        assert_eq!(w.stream.open_connections(), 1);
        w.leader.store(false, Ordering::SeqCst);
        settle().await;
        assert_eq!(w.stream.open_connections(), 0);
        assert!(!w.streamer.is_connected());
        w.cancel.cancel();
        task.await.unwrap();
    }

    #[tokio::test(start_paused = true)]
    async fn bad_prices_are_refused_and_floods_stay_bounded() {
        let w = world();
        let streamer = Arc::new(
            PriceStreamer::new(
                &w.backend.ports(),
                Arc::new(w.stream.clone()),
                w.job.clone(),
                w.clock.clone(),
            )
            .with_config(
                PriceStreamConfig::default()
                    .with_max_batch(10)
                    .with_batch(Duration::from_secs(1)),
            ),
        );
        let cancel = w.cancel.clone();
        let s = streamer.clone();
        let task = tokio::spawn(async move { s.run(cancel, || true).await });
        settle().await;
        // Not positive, and a price stamped a day ahead: refused, never recorded.
        w.price("XAUUSD", "0");
        w.stream.send(StreamPrice {
            symbol_code: "XAUUSD".into(),
            price: Decimal::from(2650),
            timestamp: w.clock.now() + chrono::Duration::days(1),
            reference: None,
        });
        // A symbol nobody asked for is ignored.
        w.stream.send(StreamPrice {
            symbol_code: "DOGEUSD".into(),
            price: Decimal::from(1),
            timestamp: w.clock.now(),
            reference: None,
        });
        for i in 0..50 {
            w.price("EURUSD", &format!("1.{i:02}"));
        }
        tokio::time::sleep(Duration::from_millis(1500)).await;
        assert!(w
            .backend
            .ticks
            .latest_tick("XAUUSD")
            .await
            .unwrap()
            .is_none());
        assert_eq!(streamer.dropped(), 40);
        w.cancel.cancel();
        task.await.unwrap();
    }
}
