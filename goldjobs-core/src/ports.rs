//! Ports: the traits adapters implement. Dyn-safe, `Send + Sync`, shaped for batches.
//!
//! With the `mocks` feature (and in the crate's own tests) every port has a mockall mock
//! (`MockMarketData`, ...).

use crate::model::*;
use crate::news::FeedHealth;
use crate::Result;
use async_trait::async_trait;
use bytes::Bytes;
use chrono::{DateTime, Utc};
use std::sync::Arc;
use std::time::Duration;

/// Every storage port of one backend, as `Arc<dyn Port>`: what the SQL stores
/// (`goldjobs_adapters::sql::open`) and the in-memory backend
/// ([`InMemoryBackend::ports`](crate::memory::InMemoryBackend::ports)) give, and what the jobs
/// and read services are built from.
#[derive(Clone)]
pub struct Ports {
    /// Symbols.
    pub symbols: Arc<dyn SymbolRepository>,
    /// Price ticks.
    pub ticks: Arc<dyn PriceTickRepository>,
    /// Predictions, votes and statistics.
    pub predictions: Arc<dyn PredictionRepository>,
    /// The outbox `record_verifications` writes.
    pub outbox: Arc<dyn OutboxRepository>,
    /// News articles.
    pub news: Arc<dyn NewsRepository>,
    /// Device tokens.
    pub device_tokens: Arc<dyn DeviceTokenRepository>,
    /// Leases of singleton jobs.
    pub lease: Arc<dyn Lease>,
    /// The runtime's shared state: pause flags, schedule state, run history.
    pub jobs: Arc<dyn JobStore>,
}

impl Ports {
    /// Fresh in-memory stores (default symbols), as
    /// [`InMemoryBackend::new().ports()`](crate::memory::InMemoryBackend::ports); with the
    /// `with_*` setters, the start of a bundle that replaces some stores (a test double, an
    /// embedder's own repository).
    pub fn in_memory() -> Ports {
        crate::memory::InMemoryBackend::new().ports()
    }

    /// Replace the symbol store.
    pub fn with_symbols(mut self, symbols: Arc<dyn SymbolRepository>) -> Self {
        self.symbols = symbols;
        self
    }

    /// Replace the tick store.
    pub fn with_ticks(mut self, ticks: Arc<dyn PriceTickRepository>) -> Self {
        self.ticks = ticks;
        self
    }

    /// Replace the prediction store.
    pub fn with_predictions(mut self, predictions: Arc<dyn PredictionRepository>) -> Self {
        self.predictions = predictions;
        self
    }

    /// Replace the outbox.
    pub fn with_outbox(mut self, outbox: Arc<dyn OutboxRepository>) -> Self {
        self.outbox = outbox;
        self
    }

    /// Replace the news store.
    pub fn with_news(mut self, news: Arc<dyn NewsRepository>) -> Self {
        self.news = news;
        self
    }

    /// Replace the device token store.
    pub fn with_device_tokens(mut self, device_tokens: Arc<dyn DeviceTokenRepository>) -> Self {
        self.device_tokens = device_tokens;
        self
    }

    /// Replace the lease.
    pub fn with_lease(mut self, lease: Arc<dyn Lease>) -> Self {
        self.lease = lease;
        self
    }

    /// Replace the job store.
    pub fn with_jobs(mut self, jobs: Arc<dyn JobStore>) -> Self {
        self.jobs = jobs;
        self
    }

    /// Every port served by one store that implements them all.
    pub fn of<S>(store: Arc<S>) -> Ports
    where
        S: SymbolRepository
            + PriceTickRepository
            + PredictionRepository
            + OutboxRepository
            + NewsRepository
            + DeviceTokenRepository
            + Lease
            + JobStore
            + 'static,
    {
        Ports {
            symbols: store.clone(),
            ticks: store.clone(),
            predictions: store.clone(),
            outbox: store.clone(),
            news: store.clone(),
            device_tokens: store.clone(),
            lease: store.clone(),
            jobs: store,
        }
    }
}

impl std::fmt::Debug for Ports {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ports").finish_non_exhaustive()
    }
}

/// A market data provider.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait MarketData: Send + Sync {
    /// Short name for logs, metrics and status, e.g. `twelvedata`.
    fn name(&self) -> &'static str;

    /// Whether the prices are made up (the demo feed), so `/health` and the dashboard can say so.
    fn is_demo(&self) -> bool {
        false
    }

    /// Quotes for many symbols in one call. A symbol the provider fails for goes into
    /// `failures`; an error of the whole call is an `Err`.
    async fn quotes(&self, symbols: &[Symbol]) -> Result<QuoteBatch>;

    /// The provider's first price of `symbol` at or after `at` — the same rule as for recorded
    /// ticks (guide: *How the price at verify time is chosen*): the **open** of the first 1-minute
    /// candle that **starts** at or after `at`, with [`PricePoint::ts`] = that candle's start.
    ///
    /// `Ok(None)` when no candle starts within [`HISTORY_WINDOW`](crate::HISTORY_WINDOW) after
    /// `at` (start in `[at, at + 1 min]`), e.g. the market was closed, or when the provider keeps
    /// no history (the demo feed). A candle that starts before `at` never answers: its open is
    /// older than `at`. The verifier holds every answer to
    /// [`validate_price_point`](crate::validate_price_point) and never decides on one that fails.
    async fn price_at(&self, symbol: &Symbol, at: DateTime<Utc>) -> Result<Option<PricePoint>>;
}

/// The events of one open stream connection: ends when the connection closes; an `Err` item is
/// why it failed (the stream ends after it).
pub type PriceEvents = futures::stream::BoxStream<'static, Result<StreamEvent>>;

/// A provider's live price stream (a WebSocket), beside [`MarketData`]'s polling.
///
/// [`connect`](Self::connect) opens one connection subscribed to `symbols`; its first event is
/// normally [`StreamEvent::Subscribed`], then [`StreamEvent::Price`]s. The implementation keeps
/// the connection alive itself (heartbeats, answering pings), skips frames it cannot read
/// (logging them, never failing on one), and ends the stream when the provider closes it or
/// falls silent for longer than its own liveness bound. Reconnecting is the caller's:
/// [`PriceStreamer`](crate::jobs::PriceStreamer) does it with the runtime's backoff and hands
/// silent symbols back to polling.
#[async_trait]
pub trait MarketStream: Send + Sync {
    /// Short name for logs, metrics and the ticks' `source`, e.g. `twelvedata`.
    fn name(&self) -> &'static str;

    /// Open one connection subscribed to `symbols`. Symbols the provider cannot stream at all
    /// are left out of the subscription and listed as failures of the first
    /// [`StreamEvent::Subscribed`].
    async fn connect(&self, symbols: &[Symbol]) -> Result<PriceEvents>;
}

/// A source of news articles (feeds, APIs).
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait NewsSource: Send + Sync {
    /// Fetch from every configured source; broken sources are reported in the batch.
    async fn fetch(&self) -> Result<NewsBatch>;

    /// The feeds this source fetches, so the news job can keep each one's health and back off
    /// a failing one. The default (a source without separate feeds) lists none: the job then
    /// calls [`fetch`](Self::fetch) every run.
    fn feeds(&self) -> Vec<FeedInfo> {
        Vec::new()
    }

    /// Fetch only the feeds with these [`FeedInfo::key`]s (unknown keys are ignored), with a
    /// [`FeedReport`](crate::FeedReport) per feed in the batch. The default fetches everything.
    async fn fetch_feeds(&self, keys: &[String]) -> Result<NewsBatch> {
        let _ = keys;
        self.fetch().await
    }
}

/// Symbols.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait SymbolRepository: Send + Sync {
    /// Every symbol with `active = true`, ordered by code.
    async fn active_symbols(&self) -> Result<Vec<Symbol>>;
    /// Insert or update symbols by code.
    async fn upsert_symbols(&self, symbols: &[Symbol]) -> Result<()>;
}

/// Recorded price ticks.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait PriceTickRepository: Send + Sync {
    /// Append ticks in one batch.
    async fn insert_ticks(&self, ticks: &[PriceTick]) -> Result<()>;
    /// For each query, the first tick of the symbol with `ts >= at` (same order as `queries`).
    async fn first_ticks_at_or_after(
        &self,
        queries: &[TickQuery],
    ) -> Result<Vec<Option<PriceTick>>>;
    /// The latest tick of a symbol.
    async fn latest_tick(&self, symbol_code: &str) -> Result<Option<PriceTick>>;
    /// Delete at most `limit` ticks older than `before`; returns how many went.
    async fn delete_ticks_before(&self, before: DateTime<Utc>, limit: u32) -> Result<u64>;
    /// The candles of the ticks in `[query.from, query.to)`, oldest first, empty intervals
    /// omitted; every tick counts, demo ticks included (a chart shows what was recorded). The
    /// answer equals [`candles_from_ticks`](crate::candles_from_ticks) over those ticks.
    async fn candles(&self, query: &CandleQuery) -> Result<Vec<Candle>>;
}

/// Predictions, votes and user statistics.
///
/// Verification is a pair: [`claim_due`](Self::claim_due) hands out due predictions (oldest
/// `verify_time` first) and hides them from other claimers for a while;
/// [`record_verifications`](Self::record_verifications) records decisions in one atomic step and
/// only for predictions still eligible, so each is verified exactly once however many verifiers
/// race.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait PredictionRepository: Send + Sync {
    /// Insert a prediction.
    async fn insert_prediction(&self, prediction: &Prediction) -> Result<()>;
    /// Insert votes (one per user and prediction; a second vote is a `Conflict`).
    async fn insert_votes(&self, votes: &[Vote]) -> Result<()>;
    /// One prediction by id.
    async fn get_prediction(&self, id: &str) -> Result<Option<Prediction>>;
    /// Predictions matching `query`, most recently verified first; those never verified come
    /// after them, latest `verify_time` first; ties by id. At most `query.limit`.
    async fn list_predictions(&self, query: &PredictionQuery) -> Result<Vec<Prediction>>;
    /// Votes per selected option of one prediction, by option name (options nobody chose are
    /// left out).
    async fn vote_counts(&self, prediction_id: &str) -> Result<Vec<OptionVotes>>;
    /// Claim up to `limit` due predictions (`status = 'active'`, `verify_rule = 'auto'`,
    /// `verify_time <= now`, not claimed by someone else in the last `claim_for`), oldest first.
    async fn claim_due(
        &self,
        now: DateTime<Utc>,
        limit: u32,
        claim_for: Duration,
    ) -> Result<Vec<Prediction>>;
    /// Give back claims of predictions that stay active (no price yet).
    async fn release_claims(&self, ids: &[String]) -> Result<()>;

    /// The next deadlines: for the active `auto` predictions (those
    /// [`claim_due`](Self::claim_due) hands out once due, whether claimed now or not), the
    /// earliest `verify_time` of each symbol, past or future; earliest first, ties by symbol
    /// code; at most `limit` symbols.
    ///
    /// The [`VerifyWaker`](crate::jobs::VerifyWaker) asks about once a second, so that the
    /// verifier runs at the deadlines rather than only on its sweep (guide: *When a prediction is
    /// verified*); an adapter answers from an index, in time that grows with the number of symbols,
    /// not with the number of active predictions.
    ///
    /// The default answers nothing (for stores written before this method): the waker then
    /// never wakes the verifier, and predictions are verified by its periodic sweep alone.
    async fn next_due(&self, limit: u32) -> Result<Vec<DueSymbol>> {
        let _ = limit;
        Ok(Vec::new())
    }
    /// Record decisions in one atomic step (guide: *What a verdict records*): predictions, votes,
    /// stats (records of one user applied in slice order, which callers make `verify_time` order)
    /// and the outbox. Predictions no longer eligible are skipped and listed as such.
    async fn record_verifications(&self, records: &[VerificationRecord]) -> Result<RecordSummary>;
    /// Votes of one prediction.
    async fn votes_for(&self, prediction_id: &str) -> Result<Vec<Vote>>;
    /// Stats of these users (users without stats are left out).
    async fn user_stats(&self, user_ids: &[String]) -> Result<Vec<UserStats>>;
    /// The latest verified predictions, newest `verified_at` first.
    async fn recent_verified(&self, limit: u32) -> Result<Vec<Prediction>>;

    /// Correct an `ended` prediction (guide: *Corrections and voids*) in one atomic step: the new
    /// `correct_option` (and, with [`Correction::price`], `price_at_verify`,
    /// `price_change_percent`, `price_at_verify_ts` and `price_source = 'manual'`, provider
    /// unknown; without it the recorded price and source stay), every vote re-marked, every
    /// voter's statistics recomputed from all of that voter's verified votes in `verify_time`
    /// order (`updated_at = corrected_at`), and in the outbox a `PredictionCorrected` broadcast
    /// and one [`NoticeKind::Corrected`] notice per voter.
    ///
    /// Unknown id → `NotFound`; not `ended` (active, in review, void), or a correction that
    /// changes nothing (same option, no new price or the same one) → `Conflict`; empty option →
    /// `InvalidInput`.
    async fn record_correction(&self, correction: &Correction) -> Result<Revision>;

    /// Void a prediction (guide: *Corrections and voids*) in one atomic step: `status = 'void'`,
    /// `review_reason = reason`, claim dropped, every vote's `is_correct = NULL`; when it had
    /// `ended`, every voter's statistics recomputed as in
    /// [`record_correction`](Self::record_correction) (an `active` or `needs_review` one leaves
    /// statistics untouched); in the outbox a `PredictionVoided` broadcast and one
    /// [`NoticeKind::Voided`] notice per voter.
    ///
    /// Unknown id → `NotFound`; already void (void is final) → `Conflict`; empty reason →
    /// `InvalidInput`.
    async fn record_void(&self, void: &VoidRecord) -> Result<Revision>;

    /// Recompute every user's statistics from the verified votes (votes with `is_correct` set
    /// on `ended` predictions, in `verify_time` order, then prediction id; §6.6 rules), with the
    /// same computation as [`record_correction`](Self::record_correction), and list the users
    /// whose stored statistics differ (numbers only, not `updated_at`), by user id. A user
    /// without stored statistics and without verified votes does not differ.
    ///
    /// [`RecomputeMode::Check`] writes nothing; [`RecomputeMode::Fix`] replaces the differing
    /// users' statistics with the recomputation (`updated_at = now`) in one transaction that
    /// also keeps concurrent verifications exact, and lists what it replaced.
    async fn recompute_stats(
        &self,
        mode: RecomputeMode,
        now: DateTime<Utc>,
    ) -> Result<Vec<StatsDiff>>;
}

/// The transactional outbox written by `record_verifications`.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait OutboxRepository: Send + Sync {
    /// Claim up to `limit` pending rows due at `now`, hiding them from other claimers for `lease`.
    ///
    /// A store that records a verification's notices as one
    /// [`NotifyVoters`](crate::OutboxPayload::NotifyVoters) row first expands due ones into
    /// per-voter [`Notify`](crate::OutboxPayload::Notify) rows, up to `limit` of them, each page
    /// atomically with the progress it records; it never hands out a fan-out row itself.
    async fn claim_outbox(
        &self,
        now: DateTime<Utc>,
        limit: u32,
        lease: Duration,
    ) -> Result<Vec<OutboxMessage>>;
    /// Mark rows delivered.
    async fn mark_delivered(&self, ids: &[i64]) -> Result<()>;
    /// Count a failed attempt and retry at `next_attempt_at`.
    async fn reschedule(&self, id: i64, next_attempt_at: DateTime<Utc>, error: &str) -> Result<()>;
    /// Count a failed attempt and give up.
    async fn mark_failed(&self, id: i64, error: &str) -> Result<()>;
    /// Every row (for inspection and tests), by id.
    async fn outbox_rows(&self) -> Result<Vec<OutboxRow>>;

    /// Delete at most `limit` finished (delivered or failed) rows created before `before`;
    /// returns how many went. Pending rows are never deleted.
    ///
    /// The default deletes nothing (for stores that bound their rows otherwise, like the
    /// in-memory one).
    async fn delete_finished_before(&self, before: DateTime<Utc>, limit: u32) -> Result<u64> {
        let _ = (before, limit);
        Ok(0)
    }
}

/// Stored news.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait NewsRepository: Send + Sync {
    /// Insert articles, skipping those whose `canonical_url` exists; returns how many were new.
    async fn insert_articles(&self, articles: &[NewsArticle]) -> Result<u64>;
    /// Insert new articles and update the stored article of a known `canonical_url` whose
    /// title, summary, content or thumbnail changed (its `id`, `story_id`, `published_at` and
    /// `created_at` stay). Within one batch the first occurrence of a canonical URL wins.
    async fn upsert_articles(&self, articles: &[NewsArticle]) -> Result<ArticleWrites>;
    /// One entry per story, newest lead first: the lead is the story's newest article (of
    /// `category` when given) and `others` the story's other articles (any category), newest
    /// first, at most `max_sources` of them. Articles without `story_id` are stories of their own.
    async fn latest_stories<'a>(
        &self,
        category: Option<&'a str>,
        limit: u32,
        max_sources: u32,
    ) -> Result<Vec<Story>>;
    /// The stored health of every feed the news job has fetched.
    async fn feed_states(&self) -> Result<Vec<(String, FeedHealth)>>;
    /// Store the health of these feeds (key, health), replacing what was stored under each key.
    async fn save_feed_states(&self, states: &[(String, FeedHealth)]) -> Result<()>;
    /// Newest `published_at` first, optionally of one category.
    async fn latest_articles<'a>(
        &self,
        category: Option<&'a str>,
        limit: u32,
    ) -> Result<Vec<NewsArticle>>;
}

/// Device tokens for push notifications.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait DeviceTokenRepository: Send + Sync {
    /// Register (or move to another user) a token.
    async fn register_token(&self, token: &DeviceToken) -> Result<()>;
    /// Tokens of these users.
    async fn tokens_for_users(&self, user_ids: &[String]) -> Result<Vec<DeviceToken>>;
    /// Delete tokens (dead ones); returns how many went.
    async fn delete_tokens(&self, tokens: &[String]) -> Result<u64>;
}

/// The latest quote per symbol (`quote:{SYMBOL}` in Redis).
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait QuoteCache: Send + Sync {
    /// Write all quotes in one round trip, each expiring after `ttl`.
    async fn put_quotes(&self, quotes: &[Quote], ttl: Duration) -> Result<()>;
    /// The unexpired quotes of these codes (missing ones are left out), in the given order.
    async fn get_quotes(&self, codes: &[String]) -> Result<Vec<Quote>>;
}

/// Cached, serialized news lists (`news:*` in Redis).
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait NewsCache: Send + Sync {
    /// A cached list by key (the caller's key; the cache adds its own versioning).
    async fn get_list(&self, key: &str) -> Result<Option<Bytes>>;
    /// Store a list for `ttl`.
    async fn put_list(&self, key: &str, value: Bytes, ttl: Duration) -> Result<()>;
    /// Invalidate every cached list in O(1) (never `KEYS`).
    async fn invalidate_lists(&self) -> Result<()>;

    /// Like [`get_list`](Self::get_list), and also the cache generation the lookup saw (it
    /// changes with every [`invalidate_lists`](Self::invalidate_lists)). A read-through reader
    /// passes it back to [`put_list_at`](Self::put_list_at), so that a list read from the
    /// database before an invalidation is never served after it.
    ///
    /// The default (for caches without generations) answers generation 0.
    async fn get_list_at(&self, key: &str) -> Result<(Option<Bytes>, u64)> {
        Ok((self.get_list(key).await?, 0))
    }

    /// Store a list read while the cache was at `generation`; if the lists were invalidated
    /// since, nothing is stored (the list may be stale).
    ///
    /// The default stores unconditionally with [`put_list`](Self::put_list).
    async fn put_list_at(
        &self,
        key: &str,
        generation: u64,
        value: Bytes,
        ttl: Duration,
    ) -> Result<()> {
        let _ = generation;
        self.put_list(key, value, ttl).await
    }
}

/// Publishes serialized events to connected clients (and other instances).
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait Broadcaster: Send + Sync {
    /// Publish messages in order.
    async fn publish(&self, messages: &[Broadcast]) -> Result<()>;
}

/// Sends a push notification to a user (all of the user's devices).
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait Notifier: Send + Sync {
    /// Short name for logs.
    fn name(&self) -> &'static str;
    /// Deliver. Temporary errors are retried by the outbox; permanent ones are given up.
    async fn notify(&self, notification: &Notification) -> Result<()>;
}

/// Leader election for singleton jobs.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait Lease: Send + Sync {
    /// Acquire the lease `name` for `holder`, or renew it if `holder` has it, for `ttl`.
    async fn acquire(&self, name: &str, holder: &str, ttl: Duration) -> Result<LeaseState>;
    /// Give it up (on shutdown), if `holder` has it.
    async fn release(&self, name: &str, holder: &str) -> Result<()>;
}

/// The job runtime's shared state ([`JobManager::with_store`](crate::runtime::JobManager::with_store)):
/// each job's pause flag and last scheduled instant, and its run history. One store serves every
/// instance of a fleet.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait JobStore: Send + Sync {
    /// The control state of every job that has any (jobs without a row are unpaused and have
    /// no schedule state).
    async fn job_controls(&self) -> Result<Vec<crate::runtime::JobControl>>;

    /// Pause or resume `job` (creating its row if needed); `at` is recorded as `changed_at`
    /// when the flag changes. Returns the state after the change.
    async fn set_paused(
        &self,
        job: &str,
        paused: bool,
        at: DateTime<Utc>,
    ) -> Result<crate::runtime::JobControl>;

    /// Record that the leader of lease term `term` handled the scheduled instant `at` of
    /// `job`. Fenced: refused (`Ok(false)`, nothing written) when a leader with a greater term
    /// has written; otherwise `Ok(true)`, and the instant only moves forward (an older `at` is
    /// accepted and ignored).
    async fn set_last_scheduled(&self, job: &str, at: DateTime<Utc>, term: u64) -> Result<bool>;

    /// Append one run to the history of `run.job` and drop its runs beyond the newest `keep`.
    /// `error` and `summary` are stored clipped ([`JobRun::clipped`](crate::runtime::JobRun::clipped)).
    async fn record_run(&self, run: &crate::runtime::JobRun, keep: u32) -> Result<()>;

    /// The newest `limit` runs of `job`, newest first.
    async fn recent_runs(&self, job: &str, limit: u32) -> Result<Vec<crate::runtime::JobRun>>;

    /// Keep the newest `keep` runs of every job and delete the rest; returns how many went
    /// (the [`RetentionJob`](crate::jobs::RetentionJob) calls it).
    async fn prune_runs(&self, keep: u32) -> Result<u64>;
}
