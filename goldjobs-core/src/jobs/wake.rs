//! VerifyWaker: wakes the verifier at the deadlines (guide: *When a prediction is verified*), so
//! that a prediction is verified about as soon as its price is recorded, not only on the verifier's
//! periodic sweep.

use crate::{Clock, Error, PredictionRepository, PriceTickRepository, Result, TickQuery};
use chrono::{DateTime, Utc};
use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// The shortest wait between two looks, whatever the configuration says (no busy loop).
const MIN_WAIT: Duration = Duration::from_millis(1);

/// Configuration of [`VerifyWaker`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct VerifyWakeConfig {
    /// How often the next deadlines are read while none is due (and at the latest between two
    /// looks), default 1 s: a prediction written by another program is seen within this.
    pub refresh: Duration,
    /// How often a symbol whose deadline has passed is looked at while its first tick at or
    /// after the deadline has not been recorded, and how soon after waking the verifier the
    /// deadlines are read again, default 250 ms.
    pub poll: Duration,
    /// How long after its deadline a symbol without a price is polled every
    /// [`poll`](Self::poll); later (a closed market, a symbol nobody prices) it is looked at
    /// every [`refresh`](Self::refresh) only, default 60 s.
    pub poll_for: Duration,
    /// A deadline whose price is there but that is still pending after the verifier was woken
    /// for it (it needs the provider's history, or another verifier holds its claim) wakes the
    /// verifier again at most this often, default 5 s.
    pub retry: Duration,
    /// How often leadership is checked while this instance does not lead, default 250 ms.
    pub leader_check: Duration,
    /// The least time between two wakes, default 1 s: while deadlines keep coming (a stream
    /// prices each at once) the verifier runs at most once per `spacing`, each run verifying
    /// everything due by then, instead of once per look. Zero wakes at every look that finds
    /// a priced deadline.
    pub spacing: Duration,
    /// The most symbols looked at per look (the earliest deadlines first), default 100; it
    /// also bounds what the waker remembers.
    pub max_symbols: u32,
}

impl Default for VerifyWakeConfig {
    fn default() -> Self {
        VerifyWakeConfig {
            refresh: Duration::from_secs(1),
            poll: Duration::from_millis(250),
            poll_for: Duration::from_secs(60),
            retry: Duration::from_secs(5),
            leader_check: Duration::from_millis(250),
            spacing: Duration::from_secs(1),
            max_symbols: 100,
        }
    }
}

impl VerifyWakeConfig {
    /// Set the refresh period (at least 1 ms).
    pub fn with_refresh(mut self, every: Duration) -> Self {
        self.refresh = every.max(MIN_WAIT);
        self
    }
    /// Set the poll period (at least 1 ms).
    pub fn with_poll(mut self, every: Duration) -> Self {
        self.poll = every.max(MIN_WAIT);
        self
    }
    /// Set how long after a deadline a symbol without a price is polled.
    pub fn with_poll_for(mut self, d: Duration) -> Self {
        self.poll_for = d;
        self
    }
    /// Set the least time between two wakes for the same pending deadline.
    pub fn with_retry(mut self, d: Duration) -> Self {
        self.retry = d;
        self
    }
    /// Set the leadership check period (at least 1 ms).
    pub fn with_leader_check(mut self, every: Duration) -> Self {
        self.leader_check = every.max(MIN_WAIT);
        self
    }
    /// Set the least time between two wakes.
    pub fn with_spacing(mut self, d: Duration) -> Self {
        self.spacing = d;
        self
    }
    /// Set the most symbols looked at per look (at least 1).
    pub fn with_max_symbols(mut self, n: u32) -> Self {
        self.max_symbols = n.max(1);
        self
    }
}

/// Wakes the [`PredictionVerifierJob`](crate::jobs::PredictionVerifierJob) when a deadline has
/// come and its price is recorded, instead of leaving the prediction to the next sweep.
///
/// While `is_leader()` holds it reads the earliest deadline of each symbol
/// ([`PredictionRepository::next_due`]) and, for the symbols whose deadline has passed, whether
/// the first tick at or after it is recorded (one batched
/// [`first_ticks_at_or_after`](PriceTickRepository::first_ticks_at_or_after), under the same
/// demo rule as the verifier, [`with_demo_ticks`](Self::with_demo_ticks)). If any is, it calls
/// `trigger` (at most once per look), which asks for a verifier run; the run verifies every due
/// prediction that has its price.
///
/// * Everything goes through the store, so it works when the verifier's leader is another
///   process than the price leader: run one waker per instance, acting on the one that leads
///   the verifier.
/// * It sleeps until the next deadline, at most [`refresh`](VerifyWakeConfig::refresh); a
///   passed deadline without its price is looked at every [`poll`](VerifyWakeConfig::poll)
///   (for [`poll_for`](VerifyWakeConfig::poll_for) after the deadline). With a stream a
///   prediction is so verified within about a second of its deadline; with polling alone
///   within one price interval.
/// * A deadline it woke the verifier for that is still pending (history needed, a claim held
///   elsewhere) does not wake it again for [`retry`](VerifyWakeConfig::retry).
/// * A store or trigger error is logged once when it starts and once when it is over, and
///   never ends the loop: the verifier's sweep stays the safety net.
/// * Memory is bounded by [`max_symbols`](VerifyWakeConfig::max_symbols).
pub struct VerifyWaker {
    predictions: Arc<dyn PredictionRepository>,
    ticks: Arc<dyn PriceTickRepository>,
    clock: Arc<dyn Clock>,
    allow_demo: bool,
    config: VerifyWakeConfig,
    looks: AtomicU64,
    wakes: AtomicU64,
}

impl fmt::Debug for VerifyWaker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VerifyWaker")
            .field("allow_demo", &self.allow_demo)
            .field("config", &self.config)
            .field("wakes", &self.wakes())
            .finish_non_exhaustive()
    }
}

/// What the loop keeps between looks.
#[derive(Debug, Default)]
struct LoopState {
    /// Per symbol, the deadline the verifier was last woken for and when.
    woken: HashMap<String, (DateTime<Utc>, DateTime<Utc>)>,
    /// When the verifier was last woken.
    last_wake: Option<DateTime<Utc>>,
    store_failing: bool,
    trigger_failing: bool,
}

impl LoopState {
    fn store_failed(&mut self, what: &str, e: &Error) {
        if !self.store_failing {
            tracing::warn!(
                error = %e,
                "verify waker: {what} failed; predictions wait for the verifier's sweep until the store answers again"
            );
            self.store_failing = true;
        }
    }

    fn store_answered(&mut self) {
        if self.store_failing {
            tracing::info!("verify waker: the store answers again");
            self.store_failing = false;
        }
    }

    fn trigger_failed(&mut self, e: &Error) {
        if !self.trigger_failing {
            tracing::warn!(error = %e, "verify waker: could not wake the verifier; its sweep goes on");
            self.trigger_failing = true;
        }
    }

    fn trigger_worked(&mut self) {
        if self.trigger_failing {
            tracing::info!("verify waker: the verifier can be woken again");
            self.trigger_failing = false;
        }
    }
}

/// How long from `from` to `to` (zero if `to` is not later).
fn between(from: DateTime<Utc>, to: DateTime<Utc>) -> Duration {
    (to - from).to_std().unwrap_or(Duration::ZERO)
}

impl VerifyWaker {
    /// A waker over the predictions and ticks of `ports`, with the default
    /// [`VerifyWakeConfig`]; demo ticks do not count ([`with_demo_ticks`](Self::with_demo_ticks)).
    pub fn new(ports: &crate::Ports, clock: Arc<dyn Clock>) -> Self {
        VerifyWaker {
            predictions: ports.predictions.clone(),
            ticks: ports.ticks.clone(),
            clock,
            allow_demo: false,
            config: VerifyWakeConfig::default(),
            looks: AtomicU64::new(0),
            wakes: AtomicU64::new(0),
        }
    }

    /// Whether a demo tick counts as a deadline's price: `true` exactly when the verifier's
    /// market data is the demo feed alone (`MarketData::is_demo`), as for the verifier itself
    /// (guide: *How the price at verify time is chosen*). Default `false`.
    pub fn with_demo_ticks(mut self, allow: bool) -> Self {
        self.allow_demo = allow;
        self
    }

    /// Replace the configuration.
    pub fn with_config(mut self, config: VerifyWakeConfig) -> Self {
        self.config = config;
        self
    }

    /// The configuration.
    pub fn config(&self) -> &VerifyWakeConfig {
        &self.config
    }

    /// How often the deadlines were read so far.
    pub fn looks(&self) -> u64 {
        self.looks.load(Ordering::SeqCst)
    }

    /// How often the verifier was woken so far.
    pub fn wakes(&self) -> u64 {
        self.wakes.load(Ordering::SeqCst)
    }

    /// Run until `cancel`: look at the deadlines while `is_leader()` holds (the service answers
    /// "this instance leads the verifier, and it is not paused") and call `trigger` to ask for
    /// a verifier run (the service: `jobs.run_now(PredictionVerifierJob::NAME)`).
    pub async fn run(
        &self,
        cancel: CancellationToken,
        is_leader: impl Fn() -> bool + Send + Sync,
        trigger: impl Fn() -> Result<()> + Send + Sync,
    ) {
        let mut state = LoopState::default();
        loop {
            let wait = if is_leader() {
                tokio::select! {
                    () = cancel.cancelled() => return,
                    wait = self.look(&mut state, &trigger) => wait,
                }
            } else {
                state.woken.clear();
                self.config.leader_check
            };
            tokio::select! {
                () = cancel.cancelled() => return,
                () = tokio::time::sleep(wait.max(MIN_WAIT)) => {}
            }
        }
    }

    /// One look at the deadlines; returns how long to wait before the next.
    async fn look(&self, state: &mut LoopState, trigger: &impl Fn() -> Result<()>) -> Duration {
        let c = &self.config;
        // Too soon after the last wake: nothing can wake the verifier before the spacing is
        // over, so the store is not read until then (that run takes everything priced by then).
        let now = self.clock.now();
        let spaced_until = state
            .last_wake
            .and_then(|at| {
                chrono::Duration::from_std(c.spacing)
                    .ok()
                    .and_then(|gap| at.checked_add_signed(gap))
            })
            .filter(|until| *until > now);
        if let Some(until) = spaced_until {
            return between(now, until);
        }
        self.looks.fetch_add(1, Ordering::SeqCst);
        let due = match self.predictions.next_due(c.max_symbols.max(1)).await {
            Ok(due) => due,
            Err(e) => {
                state.store_failed("next_due", &e);
                return c.refresh;
            }
        };
        let now = self.clock.now();
        // Forget deadlines that are no longer any symbol's earliest (bounded by max_symbols).
        state.woken.retain(|code, (at, _)| {
            due.iter()
                .any(|d| d.symbol_code == *code && d.verify_time == *at)
        });
        let mut next_deadline: Option<DateTime<Utc>> = None;
        let mut queries = Vec::new();
        for d in &due {
            if d.verify_time > now {
                next_deadline = Some(next_deadline.map_or(d.verify_time, |t| t.min(d.verify_time)));
                continue;
            }
            let pending = state
                .woken
                .get(&d.symbol_code)
                .is_some_and(|(_, when)| between(*when, now) < c.retry);
            if !pending {
                queries.push(
                    TickQuery::new(d.symbol_code.clone(), d.verify_time).with_demo(self.allow_demo),
                );
            }
        }
        // Soon again: a deadline just passed without its price, or the verifier was just woken
        // (its run hands the symbol on to its next deadline).
        let mut soon = false;
        if !queries.is_empty() {
            let ticks = match self.ticks.first_ticks_at_or_after(&queries).await {
                Ok(ticks) if ticks.len() == queries.len() => ticks,
                Ok(ticks) => {
                    let e = Error::backend(
                        "price_ticks",
                        format!(
                            "first_ticks_at_or_after answered {} of {} queries",
                            ticks.len(),
                            queries.len()
                        ),
                        None,
                    );
                    state.store_failed("first_ticks_at_or_after", &e);
                    return c.refresh;
                }
                Err(e) => {
                    state.store_failed("first_ticks_at_or_after", &e);
                    return c.refresh;
                }
            };
            let mut priced = Vec::new();
            for (q, tick) in queries.into_iter().zip(ticks) {
                if tick.is_some() {
                    priced.push(q);
                } else if between(q.at, now) <= c.poll_for {
                    soon = true;
                }
            }
            if !priced.is_empty() {
                match trigger() {
                    Ok(()) => {
                        state.trigger_worked();
                        self.wakes.fetch_add(1, Ordering::SeqCst);
                        tracing::debug!(symbols = priced.len(), "verify waker: verifier woken");
                        soon = true;
                        state.last_wake = Some(now);
                        for q in priced {
                            state.woken.insert(q.symbol_code, (q.at, now));
                        }
                    }
                    Err(e) => state.trigger_failed(&e),
                }
            }
        }
        state.store_answered();
        let wait = if soon { c.poll } else { c.refresh };
        match next_deadline {
            Some(at) => wait.min(between(now, at)),
            None => wait,
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::jobs::PredictionVerifierJob;
    use crate::memory::InMemoryBackend;
    use crate::ports::{MockMarketData, MockPredictionRepository};
    use crate::runtime::{Job, JobContext};
    use crate::{
        DueSymbol, Ports, Prediction, PredictionStatus, PriceTick, TokioClock, VerifyRule,
    };
    use chrono::TimeZone;
    use rust_decimal::Decimal;
    use std::sync::atomic::AtomicBool;

    const CONDITIONS: &str = r#"{"A": {"condition": "price_change_percent >= 0"}, "B": {"condition": "price_change_percent < 0"}}"#;

    fn t0() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 12, 7, 10, 0, 0).unwrap()
    }

    fn secs(n: i64) -> chrono::Duration {
        chrono::Duration::seconds(n)
    }

    struct World {
        ports: Ports,
        clock: Arc<dyn Clock>,
        waker: Arc<VerifyWaker>,
        leader: Arc<AtomicBool>,
        triggers: Arc<AtomicU64>,
        cancel: CancellationToken,
    }

    fn world_with(ports: Ports, config: VerifyWakeConfig) -> World {
        let clock: Arc<dyn Clock> = Arc::new(TokioClock::starting_at(t0()));
        let waker = Arc::new(VerifyWaker::new(&ports, clock.clone()).with_config(config));
        World {
            ports,
            clock,
            waker,
            leader: Arc::new(AtomicBool::new(true)),
            triggers: Arc::new(AtomicU64::new(0)),
            cancel: CancellationToken::new(),
        }
    }

    fn world() -> World {
        world_with(InMemoryBackend::new().ports(), VerifyWakeConfig::default())
    }

    impl World {
        /// Run the waker with a trigger that only counts.
        fn start(&self) -> tokio::task::JoinHandle<()> {
            let triggers = self.triggers.clone();
            self.start_with(move || {
                triggers.fetch_add(1, Ordering::SeqCst);
                Ok(())
            })
        }

        /// Run the waker with the real verifier behind the trigger (each wake one run).
        fn start_verifying(&self) -> tokio::task::JoinHandle<()> {
            let job = Arc::new(PredictionVerifierJob::new(&self.ports, market()));
            let clock = self.clock.clone();
            let runs = self.triggers.clone();
            self.start_with(move || {
                runs.fetch_add(1, Ordering::SeqCst);
                let (job, clock) = (job.clone(), clock.clone());
                tokio::spawn(async move {
                    let ctx = JobContext {
                        cancel: CancellationToken::new(),
                        clock,
                        attempt: 1,
                    };
                    job.run(&ctx).await.unwrap();
                });
                Ok(())
            })
        }

        fn start_with(
            &self,
            trigger: impl Fn() -> Result<()> + Send + Sync + 'static,
        ) -> tokio::task::JoinHandle<()> {
            let waker = self.waker.clone();
            let cancel = self.cancel.clone();
            let leader = self.leader.clone();
            tokio::spawn(async move {
                waker
                    .run(cancel, move || leader.load(Ordering::SeqCst), trigger)
                    .await
            })
        }

        async fn predict(&self, id: &str, symbol: &str, verify_time: DateTime<Utc>) {
            let p = Prediction::new_active(
                id,
                symbol,
                "Up?",
                Decimal::from(100),
                verify_time,
                VerifyRule::Auto,
                Some(CONDITIONS.into()),
                t0() - secs(3600),
            );
            self.ports.predictions.insert_prediction(&p).await.unwrap();
        }

        async fn tick(&self, symbol: &str, ts: DateTime<Utc>, source: &str) {
            self.ports
                .ticks
                .insert_ticks(&[PriceTick::new(symbol, Decimal::from(101), ts, Some(source))])
                .await
                .unwrap();
        }

        fn triggers(&self) -> u64 {
            self.triggers.load(Ordering::SeqCst)
        }

        /// Let `d` of (paused) time pass.
        async fn pass(&self, d: Duration) {
            tokio::time::sleep(d).await;
        }

        async fn stop(self, task: tokio::task::JoinHandle<()>) {
            self.cancel.cancel();
            task.await.unwrap();
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_tick_before_the_deadline_does_not_wake_the_verifier_one_at_or_after_it_does() {
        let w = world();
        w.predict("p1", "XAUUSD", t0() + secs(10)).await;
        w.tick("XAUUSD", t0() + secs(5), "fake").await;
        let task = w.start();
        // Past the deadline, with only the earlier tick: nothing to wake for.
        w.pass(Duration::from_secs(12)).await;
        assert_eq!(w.triggers(), 0, "a tick before verify_time decides nothing");
        // The first tick after the deadline is recorded: woken within one poll.
        w.tick("XAUUSD", w.clock.now(), "fake").await;
        w.pass(Duration::from_millis(300)).await;
        assert_eq!(w.triggers(), 1);
        w.stop(task).await;
    }

    #[tokio::test(start_paused = true)]
    async fn it_wakes_at_the_deadline_when_the_price_is_already_there() {
        let w = world();
        w.predict("p1", "XAUUSD", t0() + secs(30)).await;
        // A tick stamped exactly at the deadline (recorded ahead of it) decides it.
        w.tick("XAUUSD", t0() + secs(30), "fake").await;
        let task = w.start();
        w.pass(Duration::from_millis(29_990)).await;
        assert_eq!(w.triggers(), 0, "not before the deadline");
        // It slept until the deadline, not only to the next refresh after it.
        w.pass(Duration::from_millis(20)).await;
        assert_eq!(w.triggers(), 1, "at the deadline");
        w.stop(task).await;
    }

    #[tokio::test(start_paused = true)]
    async fn a_pending_deadline_is_woken_again_only_after_retry() {
        let w = world();
        w.predict("p1", "XAUUSD", t0() + secs(1)).await;
        w.tick("XAUUSD", t0() + secs(2), "fake").await;
        let task = w.start();
        w.pass(Duration::from_millis(2100)).await;
        assert_eq!(w.triggers(), 1);
        // Nobody verifies it (the trigger only counts): still pending. It was woken at its
        // deadline (t0 + 1 s, the later tick was there already), so up to t0 + 5.9 s is within
        // retry.
        w.pass(Duration::from_millis(3800)).await;
        assert_eq!(w.triggers(), 1, "not again within retry (5 s)");
        w.pass(Duration::from_millis(2100)).await;
        assert_eq!(w.triggers(), 2, "again after retry");
        // Another symbol's deadline is not held back by the pending one.
        w.predict("p2", "XAGUSD", w.clock.now()).await;
        w.tick("XAGUSD", w.clock.now(), "fake").await;
        w.pass(Duration::from_millis(1100)).await;
        assert_eq!(w.triggers(), 3);
        w.stop(task).await;
    }

    /// Deadlines every 100 ms on ten symbols, each priced at once (a stream): the verifier is
    /// woken at most once per spacing, not at every look.
    #[tokio::test(start_paused = true)]
    async fn wakes_are_spaced_while_deadlines_keep_coming() {
        let w = world();
        for i in 0..100_i64 {
            let at = t0() + chrono::Duration::milliseconds(1000 + 100 * i);
            w.predict(&format!("p{i}"), &format!("SYM{}", i % 10), at)
                .await;
        }
        let task = w.start_verifying();
        let mut woken_at = Vec::new();
        while w.clock.now() < t0() + secs(12) {
            let now = w.clock.now();
            for i in 0..10 {
                w.tick(&format!("SYM{i}"), now, "fake").await;
            }
            let before = w.triggers();
            w.pass(Duration::from_millis(50)).await;
            if w.triggers() > before {
                woken_at.push(w.clock.now());
            }
        }
        assert!(
            (9..=12).contains(&woken_at.len()),
            "{} wakes for 100 deadlines over 10 s",
            woken_at.len()
        );
        for i in 0..100 {
            let p = w
                .ports
                .predictions
                .get_prediction(&format!("p{i}"))
                .await
                .unwrap()
                .unwrap();
            assert_eq!(p.status, PredictionStatus::Ended, "p{i} verified");
        }
        for pair in woken_at.windows(2) {
            assert!(
                pair[1] - pair[0] >= chrono::Duration::milliseconds(950),
                "two wakes {} apart",
                pair[1] - pair[0]
            );
        }
        w.stop(task).await;
    }

    #[tokio::test(start_paused = true)]
    async fn spacing_zero_wakes_at_every_look_with_a_new_price() {
        let w = world_with(
            InMemoryBackend::new().ports(),
            VerifyWakeConfig::default().with_spacing(Duration::ZERO),
        );
        for i in 0..10_i64 {
            let at = t0() + chrono::Duration::milliseconds(1000 + 300 * i);
            w.predict(&format!("p{i}"), &format!("SYM{i}"), at).await;
            w.tick(&format!("SYM{i}"), at, "fake").await;
        }
        let task = w.start();
        w.pass(Duration::from_secs(5)).await;
        assert_eq!(w.triggers(), 10, "one wake per deadline 300 ms apart");
        w.stop(task).await;
    }

    #[tokio::test(start_paused = true)]
    async fn a_non_leader_never_wakes_the_verifier() {
        let w = world();
        w.leader.store(false, Ordering::SeqCst);
        w.predict("p1", "XAUUSD", t0() + secs(1)).await;
        w.tick("XAUUSD", t0() + secs(2), "fake").await;
        let task = w.start();
        w.pass(Duration::from_secs(30)).await;
        assert_eq!(w.triggers(), 0);
        assert_eq!(w.waker.looks(), 0, "a standby does not even read the store");
        // Leadership comes: woken within a leadership check and a look.
        w.leader.store(true, Ordering::SeqCst);
        w.pass(Duration::from_millis(300)).await;
        assert_eq!(w.triggers(), 1);
        w.stop(task).await;
    }

    #[tokio::test(start_paused = true)]
    async fn demo_ticks_count_only_on_the_demo_feed_alone() {
        let w = world();
        w.predict("p1", "XAUUSD", t0() + secs(1)).await;
        w.tick("XAUUSD", t0() + secs(2), crate::DEMO_SOURCE).await;
        let task = w.start();
        w.pass(Duration::from_secs(3)).await;
        assert_eq!(
            w.triggers(),
            0,
            "a demo tick never decides on a real instance"
        );
        w.stop(task).await;

        let demo = world();
        let waker =
            Arc::new(VerifyWaker::new(&demo.ports, demo.clock.clone()).with_demo_ticks(true));
        let demo = World { waker, ..demo };
        demo.predict("p1", "XAUUSD", t0() + secs(1)).await;
        demo.tick("XAUUSD", t0() + secs(2), crate::DEMO_SOURCE)
            .await;
        let task = demo.start();
        demo.pass(Duration::from_secs(3)).await;
        assert_eq!(demo.triggers(), 1);
        demo.stop(task).await;
    }

    /// A store that fails a few times, then answers one due symbol; counts its calls.
    fn flaky_predictions(failures: u64, calls: Arc<AtomicU64>) -> MockPredictionRepository {
        let mut repo = MockPredictionRepository::new();
        repo.expect_next_due().returning(move |_| {
            let n = calls.fetch_add(1, Ordering::SeqCst);
            if n < failures {
                Err(Error::unavailable(
                    "predictions",
                    "connection refused",
                    None,
                ))
            } else {
                Ok(vec![DueSymbol::new("XAUUSD", t0() + secs(1))])
            }
        });
        repo
    }

    #[tokio::test(start_paused = true)]
    async fn store_and_trigger_errors_do_not_end_the_loop() {
        let calls = Arc::new(AtomicU64::new(0));
        let ports = InMemoryBackend::new()
            .ports()
            .with_predictions(Arc::new(flaky_predictions(5, calls.clone())));
        let w = world_with(ports, VerifyWakeConfig::default());
        w.tick("XAUUSD", t0() + secs(2), "fake").await;
        // The trigger fails twice (the job is not started yet), then works.
        let attempts = Arc::new(AtomicU64::new(0));
        let a = attempts.clone();
        let triggers = w.triggers.clone();
        let task = w.start_with(move || {
            if a.fetch_add(1, Ordering::SeqCst) < 2 {
                return Err(Error::Conflict(
                    "job PredictionVerifierJob is not started".into(),
                ));
            }
            triggers.fetch_add(1, Ordering::SeqCst);
            Ok(())
        });
        // Five failing looks, one per refresh, then two failing triggers, then a wake.
        w.pass(Duration::from_millis(5500)).await;
        assert_eq!(
            calls.load(Ordering::SeqCst),
            6,
            "one look per refresh while failing"
        );
        assert_eq!(w.triggers(), 0);
        w.pass(Duration::from_secs(3)).await;
        assert_eq!(attempts.load(Ordering::SeqCst), 3);
        assert_eq!(w.triggers(), 1, "the loop went on through every error");
        w.stop(task).await;
    }

    #[tokio::test(start_paused = true)]
    async fn a_deadline_without_price_is_polled_then_only_refreshed() {
        let calls = Arc::new(AtomicU64::new(0));
        let ports = InMemoryBackend::new()
            .ports()
            .with_predictions(Arc::new(flaky_predictions(0, calls.clone())));
        let w = world_with(
            ports,
            VerifyWakeConfig::default().with_poll_for(Duration::from_secs(10)),
        );
        let task = w.start();
        // Due at t0 + 1 s, never priced: polled every 250 ms for 10 s after the deadline...
        w.pass(Duration::from_millis(11_100)).await;
        let polled = calls.load(Ordering::SeqCst);
        assert!(
            (38..=46).contains(&polled),
            "{polled} looks in the first 11 s"
        );
        // ...then every second.
        w.pass(Duration::from_secs(10)).await;
        let refreshed = calls.load(Ordering::SeqCst) - polled;
        assert!((9..=11).contains(&refreshed), "{refreshed} looks in 10 s");
        assert_eq!(w.triggers(), 0);
        w.stop(task).await;
    }

    fn market() -> Arc<MockMarketData> {
        let mut market = MockMarketData::new();
        market.expect_name().return_const("mock");
        market.expect_is_demo().return_const(false);
        Arc::new(market)
    }

    /// With the real verifier behind the trigger: each deadline of a symbol is verified right
    /// after its price comes, one after the other, none left for the sweep.
    #[tokio::test(start_paused = true)]
    async fn the_woken_verifier_decides_and_the_next_deadline_follows() {
        let w = world();
        for (id, at) in [("p1", 10), ("p2", 11), ("p3", 20)] {
            w.predict(id, "XAUUSD", t0() + secs(at)).await;
        }
        let task = w.start_verifying();
        // A provider's ticks every 250 ms from t0 + 9 s to t0 + 22 s; note when each is ended.
        let mut seen: Vec<(&str, DateTime<Utc>)> = Vec::new();
        while w.clock.now() < t0() + secs(22) {
            let now = w.clock.now();
            if now >= t0() + secs(9) {
                w.tick("XAUUSD", now, "fake").await;
            }
            for id in ["p1", "p2", "p3"] {
                let p = w
                    .ports
                    .predictions
                    .get_prediction(id)
                    .await
                    .unwrap()
                    .unwrap();
                if p.status == PredictionStatus::Ended && !seen.iter().any(|(i, _)| *i == id) {
                    seen.push((id, now));
                }
            }
            w.pass(Duration::from_millis(250)).await;
        }
        assert_eq!(seen.len(), 3, "all verified: {seen:?}");
        for (id, at) in [("p1", 10), ("p2", 11), ("p3", 20)] {
            let (_, when) = seen.iter().find(|(i, _)| *i == id).unwrap();
            let late = *when - (t0() + secs(at));
            assert!(
                late >= chrono::Duration::zero() && late <= chrono::Duration::milliseconds(750),
                "{id} verified {late} after its deadline"
            );
        }
        let p1 = w
            .ports
            .predictions
            .get_prediction("p1")
            .await
            .unwrap()
            .unwrap();
        assert!(p1.price_at_verify_ts.unwrap() >= p1.verify_time);
        w.stop(task).await;
    }
}
