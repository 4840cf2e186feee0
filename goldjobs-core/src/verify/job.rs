//! The `PredictionVerifierJob` (CONTRACT.md §6) and the manual resolution behind
//! `POST /admin/predictions/{id}/resolve`.

use crate::condition::{ConditionSet, Vars};
use crate::market::validate_price_point;
use crate::model::*;
use crate::ports::{MarketData, PredictionRepository, PriceTickRepository, SymbolRepository};
use crate::runtime::{Job, JobContext, RunReport, Schedule};
use crate::{Error, Result};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

/// Settings of the [`PredictionVerifierJob`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifierConfig {
    /// Period of the job (`GOLDJOBS_VERIFY_INTERVAL`, default 60 s).
    pub interval: Duration,
    /// Predictions claimed and recorded per round trip (default 500).
    pub batch_size: u32,
    /// `GOLDJOBS_VERIFY_MAX_LAG` (default 5 min): a first tick later than
    /// `verify_time + max_lag` means the price job was down, and the provider's history is
    /// asked instead (§6.2).
    pub max_lag: Duration,
    /// How long claimed predictions are hidden from other verifiers (default 60 s, far longer
    /// than one batch takes); a verifier that dies mid-run leaves its claims to the next one
    /// after this.
    pub claim_for: Duration,
}

impl Default for VerifierConfig {
    fn default() -> Self {
        VerifierConfig {
            interval: Duration::from_secs(60),
            batch_size: 500,
            max_lag: Duration::from_secs(300),
            claim_for: Duration::from_secs(60),
        }
    }
}

impl VerifierConfig {
    /// Set the period.
    pub fn with_interval(mut self, d: Duration) -> Self {
        self.interval = d;
        self
    }
    /// Set the batch size (at least 1).
    pub fn with_batch_size(mut self, n: u32) -> Self {
        self.batch_size = n.max(1);
        self
    }
    /// Set the maximum lag of the first tick.
    pub fn with_max_lag(mut self, d: Duration) -> Self {
        self.max_lag = d;
        self
    }
    /// Set the claim duration.
    pub fn with_claim_for(mut self, d: Duration) -> Self {
        self.claim_for = d;
        self
    }
}

fn plus(t: DateTime<Utc>, d: Duration) -> DateTime<Utc> {
    chrono::Duration::from_std(d)
        .ok()
        .and_then(|d| t.checked_add_signed(d))
        .unwrap_or(DateTime::<Utc>::MAX_UTC)
}

/// The ports verification needs; shared by the job and the [`ManualResolver`].
#[derive(Clone)]
struct Ports {
    predictions: Arc<dyn PredictionRepository>,
    ticks: Arc<dyn PriceTickRepository>,
    market: Arc<dyn MarketData>,
    symbols: Arc<dyn SymbolRepository>,
}

/// What to do with one claimed prediction.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Decision {
    /// Record this outcome.
    Record(VerificationOutcome),
    /// Leave it active for a later run; `Some(problem)` when something failed.
    Wait(Option<String>),
}

fn review(reason: impl Into<String>) -> Decision {
    Decision::Record(VerificationOutcome::NeedsReview {
        reason: reason.into(),
    })
}

/// A price for verification and where it came from.
struct PriceFound {
    price: rust_decimal::Decimal,
    source: PriceSource,
    provider: Option<String>,
    ts: DateTime<Utc>,
}

impl PriceFound {
    fn tick(t: PriceTick, source: PriceSource) -> Self {
        PriceFound {
            price: t.price,
            source,
            provider: t.source,
            ts: t.ts,
        }
    }
}

/// Per-run lookups: the symbol table (loaded at most once) and provider answers.
#[derive(Default)]
struct RunCache {
    symbols: Option<HashMap<String, Symbol>>,
    history: HashMap<(String, DateTime<Utc>), Answer>,
    /// Set after a temporary provider error: the rest of the run does not ask again (a rate
    /// limited provider is not hammered; those predictions wait for the next run).
    provider_down: bool,
}

impl Ports {
    /// Whether the instance runs on the demo feed alone: only then may a demo tick decide a
    /// prediction (CONTRACT.md §6.2).
    fn demo_only(&self) -> bool {
        self.market.is_demo()
    }

    async fn symbol(&self, cache: &mut RunCache, code: &str) -> Result<Option<Symbol>> {
        if cache.symbols.is_none() {
            let all = self.symbols.active_symbols().await?;
            cache.symbols = Some(all.into_iter().map(|s| (s.code.clone(), s)).collect());
        }
        Ok(cache.symbols.as_ref().and_then(|m| m.get(code)).cloned())
    }

    /// The provider's price of `code` at `at`. `Err` only when the symbol table cannot be
    /// read; the provider's own answer (including its errors) is a [`History`].
    async fn history(
        &self,
        cache: &mut RunCache,
        code: &str,
        at: DateTime<Utc>,
    ) -> Result<History> {
        let Some(symbol) = self.symbol(cache, code).await? else {
            return Ok(History::UnknownSymbol);
        };
        let key = (code.to_owned(), at);
        if let Some(found) = cache.history.get(&key) {
            return Ok(found.clone().into());
        }
        if cache.provider_down {
            return Ok(History::Failed(Error::unavailable(
                "market data",
                format!("provider {} failed earlier in this run", self.market.name()),
                None,
            )));
        }
        match self.market.price_at(&symbol, at).await {
            Ok(found) => {
                // The same rule as for ticks, whatever the provider (crate::market).
                let answer = match found {
                    None => Answer::NoPrice,
                    Some(point) => match validate_price_point(code, at, &point) {
                        Ok(()) => Answer::Point(point),
                        Err(e) => {
                            tracing::warn!(
                                provider = self.market.name(),
                                error = %e,
                                "historical price refused"
                            );
                            Answer::Refused(e.to_string())
                        }
                    },
                };
                cache.history.insert(key, answer.clone());
                Ok(answer.into())
            }
            Err(e) => {
                if e.is_temporary() {
                    cache.provider_down = true;
                }
                Ok(History::Failed(e))
            }
        }
    }
}

/// The provider's answer for a historical price.
enum History {
    Point(PricePoint),
    NoPrice,
    /// A point that breaks [`validate_price_point`] (not positive, or not within one minute at
    /// or after the instant asked): it never decides.
    Refused(String),
    UnknownSymbol,
    Failed(Error),
}

/// A provider answer kept for the rest of the run.
#[derive(Debug, Clone)]
enum Answer {
    Point(PricePoint),
    NoPrice,
    Refused(String),
}

impl From<Answer> for History {
    fn from(a: Answer) -> History {
        match a {
            Answer::Point(p) => History::Point(p),
            Answer::NoPrice => History::NoPrice,
            Answer::Refused(why) => History::Refused(why),
        }
    }
}

/// Verifies due predictions (CONTRACT.md §6), exactly once, in `verify_time` order.
///
/// A run claims due predictions in batches ([`VerifierConfig::batch_size`]), looks up the first
/// tick at or after each `verify_time` in one batched query, decides each prediction, and
/// records the whole batch with one `record_verifications` call (records sorted by
/// `verify_time`), until a batch comes back short or the run is cancelled.
///
/// Per prediction:
/// - `auto_verify_conditions` missing or not parsing → `needs_review` with the parse error;
/// - `price_at_create <= 0` → `needs_review`;
/// - first tick at or before `verify_time + max_lag` → its price (`price_source = tick`);
/// - no tick yet → stays active (claim released), however long ago `verify_time` was: a tick
///   priced inside the lag window may still be stored late (CONTRACT.md §6.2);
/// - the first tick is later than `verify_time + max_lag` (the price job was down) → the
///   provider's history at `verify_time` (`provider_history`): the first price at or after it,
///   which must pass [`validate_price_point`](crate::market::validate_price_point) (positive,
///   at most one minute after `verify_time`); none, a point that fails that rule, the symbol
///   unknown, or a permanent provider error → `needs_review`; a temporary provider error →
///   stays active;
/// - the first option whose condition is true, in the JSON key order, wins; none →
///   `needs_review` `no condition matched price_change_percent = X`.
///
/// Manual predictions are never claimed; they stay active until [`ManualResolver::resolve`].
pub struct PredictionVerifierJob {
    ports: Ports,
    config: VerifierConfig,
}

impl std::fmt::Debug for PredictionVerifierJob {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PredictionVerifierJob")
            .field("market", &self.ports.market.name())
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

/// Counts of one run.
#[derive(Debug, Default)]
struct Tally {
    claimed: usize,
    verified: usize,
    needs_review: usize,
    waiting: usize,
    skipped: usize,
    problems: Vec<String>,
}

const MAX_PROBLEMS: usize = 20;

impl Tally {
    fn problem(&mut self, p: String) {
        if self.problems.len() < MAX_PROBLEMS {
            self.problems.push(p);
        }
    }
}

impl PredictionVerifierJob {
    /// The job's name in status, metrics and `POST /jobs/{name}/run`.
    pub const NAME: &'static str = "PredictionVerifierJob";

    /// A verifier with the default [`VerifierConfig`].
    pub fn new(
        predictions: Arc<dyn PredictionRepository>,
        ticks: Arc<dyn PriceTickRepository>,
        market: Arc<dyn MarketData>,
        symbols: Arc<dyn SymbolRepository>,
    ) -> Self {
        PredictionVerifierJob {
            ports: Ports {
                predictions,
                ticks,
                market,
                symbols,
            },
            config: VerifierConfig::default(),
        }
    }

    /// Replace the configuration.
    pub fn with_config(mut self, config: VerifierConfig) -> Self {
        self.config = config;
        self
    }

    /// The configuration.
    pub fn config(&self) -> &VerifierConfig {
        &self.config
    }

    /// A [`ManualResolver`] over the same ports.
    pub fn resolver(&self) -> ManualResolver {
        ManualResolver {
            ports: self.ports.clone(),
        }
    }

    /// Resolve a manual (or `needs_review`) prediction; see [`ManualResolver::resolve`].
    pub async fn resolve_manually(
        &self,
        id: &str,
        correct_option: &str,
        now: DateTime<Utc>,
    ) -> Result<Prediction> {
        self.resolver().resolve(id, correct_option, now).await
    }

    /// Decide one claimed prediction, given its first tick at or after `verify_time`.
    async fn decide(
        &self,
        p: &Prediction,
        tick: Option<&PriceTick>,
        cache: &mut RunCache,
    ) -> Result<Decision> {
        if p.status != PredictionStatus::Active || p.verify_rule != VerifyRule::Auto {
            // claim_due never hands these out; be safe if an adapter does.
            return Ok(Decision::Wait(None));
        }
        let Some(json) = p.auto_verify_conditions.as_deref() else {
            return Ok(review("auto prediction has no auto_verify_conditions"));
        };
        let set = match ConditionSet::from_json(json) {
            Ok(set) => set,
            Err(e) => return Ok(review(format!("auto_verify_conditions: {e}"))),
        };
        if p.price_at_create <= rust_decimal::Decimal::ZERO {
            return Ok(review(format!(
                "price_at_create is {} (must be > 0): price_change_percent is undefined",
                p.price_at_create
            )));
        }
        let deadline = plus(p.verify_time, self.config.max_lag);
        let found = match tick {
            Some(t) if t.ts <= deadline => PriceFound::tick(t.clone(), PriceSource::Tick),
            // §6.2: no such tick yet → stays active until the next run.
            None => return Ok(Decision::Wait(None)),
            Some(t) => {
                let why = format!(
                    "first tick of {} at {} is later than verify_time {} + max lag {:?}",
                    p.symbol_code, t.ts, p.verify_time, self.config.max_lag
                );
                let provider = self.ports.market.name();
                match self
                    .ports
                    .history(cache, &p.symbol_code, p.verify_time)
                    .await?
                {
                    History::Point(pp) => PriceFound {
                        price: pp.price,
                        source: PriceSource::ProviderHistory,
                        provider: pp.source.or_else(|| Some(provider.to_owned())),
                        ts: pp.ts,
                    },
                    History::NoPrice => {
                        return Ok(review(format!(
                            "{why}, and provider {provider} has no price at that time"
                        )))
                    }
                    History::Refused(reason) => {
                        return Ok(review(format!(
                            "{why}, and provider {provider} answered a price that cannot \
                             decide: {reason}"
                        )))
                    }
                    History::UnknownSymbol => {
                        return Ok(review(format!(
                            "{why}, and symbol {} is unknown or inactive, so the provider's \
                             history cannot be asked",
                            p.symbol_code
                        )))
                    }
                    History::Failed(e) if e.is_temporary() => {
                        return Ok(Decision::Wait(Some(format!(
                            "prediction {}: provider history unavailable, retrying next run: {e}",
                            p.id
                        ))))
                    }
                    History::Failed(e) => {
                        return Ok(review(format!(
                            "{why}, and provider {provider} failed: {e}"
                        )))
                    }
                }
            }
        };
        let Some(vars) = Vars::new(p.price_at_create, found.price) else {
            return Ok(review(format!(
                "price_change_percent cannot be computed from {} and {}",
                p.price_at_create, found.price
            )));
        };
        Ok(match set.choose(&vars) {
            Some(option) => Decision::Record(VerificationOutcome::Verified(Verdict {
                correct_option: option.to_owned(),
                price_at_verify: found.price,
                price_change_percent: Some(vars.price_change_percent),
                price_source: found.source,
                price_at_verify_ts: found.ts,
                price_provider: found.provider,
            })),
            None => review(format!(
                "no condition matched price_change_percent = {}",
                vars.price_change_percent
            )),
        })
    }

    /// Decide and record one claimed batch; returns the ids that stay active.
    async fn process_batch(
        &self,
        claimed: &[Prediction],
        now: DateTime<Utc>,
        ctx: &JobContext,
        cache: &mut RunCache,
        tally: &mut Tally,
    ) -> Result<Vec<String>> {
        let queries: Vec<TickQuery> = claimed
            .iter()
            .map(|p| {
                TickQuery::new(&p.symbol_code, p.verify_time).with_demo(self.ports.demo_only())
            })
            .collect();
        let ticks = self.ports.ticks.first_ticks_at_or_after(&queries).await?;
        if ticks.len() != claimed.len() {
            return Err(Error::backend(
                "price_ticks",
                format!(
                    "first_ticks_at_or_after answered {} of {} queries",
                    ticks.len(),
                    claimed.len()
                ),
                None,
            ));
        }
        let mut records: Vec<(DateTime<Utc>, VerificationRecord)> = Vec::new();
        let mut waiting = Vec::new();
        for (p, tick) in claimed.iter().zip(ticks.iter()) {
            if ctx.cancel.is_cancelled() {
                waiting.push(p.id.clone());
                continue;
            }
            match self.decide(p, tick.as_ref(), cache).await? {
                Decision::Record(outcome) => {
                    if let VerificationOutcome::NeedsReview { reason } = &outcome {
                        tally.problem(format!("prediction {} needs review: {reason}", p.id));
                    }
                    records.push((
                        p.verify_time,
                        VerificationRecord {
                            prediction_id: p.id.clone(),
                            outcome,
                            verified_at: now,
                            manual: false,
                        },
                    ));
                }
                Decision::Wait(problem) => {
                    if let Some(problem) = problem {
                        tally.problem(problem);
                    }
                    waiting.push(p.id.clone());
                }
            }
        }
        // Each user's statistics take predictions in verify_time order (§6.1, §6.6).
        records.sort_by(|a, b| {
            a.0.cmp(&b.0)
                .then_with(|| a.1.prediction_id.cmp(&b.1.prediction_id))
        });
        let records: Vec<VerificationRecord> = records.into_iter().map(|(_, r)| r).collect();
        if !records.is_empty() {
            let summary = self
                .ports
                .predictions
                .record_verifications(&records)
                .await?;
            tally.verified += summary.verified.len();
            tally.needs_review += summary.needs_review.len();
            tally.skipped += summary.skipped.len();
        }
        Ok(waiting)
    }
}

#[async_trait]
impl Job for PredictionVerifierJob {
    fn name(&self) -> &str {
        Self::NAME
    }

    fn schedule(&self) -> Schedule {
        Schedule::every(self.config.interval)
    }

    async fn run(&self, ctx: &JobContext) -> Result<RunReport> {
        let mut tally = Tally::default();
        let mut cache = RunCache::default();
        let limit = self.config.batch_size.max(1);
        // Predictions that stay active: their claims are given back at the end of the run, so
        // that this run does not claim them again.
        let mut waiting: Vec<String> = Vec::new();
        let mut seen: HashSet<String> = HashSet::new();
        let result: Result<()> = async {
            loop {
                if ctx.cancel.is_cancelled() {
                    break;
                }
                let now = ctx.clock.now();
                let claimed = self
                    .ports
                    .predictions
                    .claim_due(now, limit, self.config.claim_for)
                    .await?;
                let n = claimed.len();
                // With a very short claim the same waiting predictions could come back; a batch
                // with nothing new ends the run.
                let fresh: Vec<Prediction> = claimed
                    .into_iter()
                    .filter(|p| seen.insert(p.id.clone()))
                    .collect();
                if fresh.is_empty() {
                    break;
                }
                tally.claimed += fresh.len();
                match self
                    .process_batch(&fresh, now, ctx, &mut cache, &mut tally)
                    .await
                {
                    Ok(w) => waiting.extend(w),
                    Err(e) => {
                        waiting.extend(fresh.iter().map(|p| p.id.clone()));
                        return Err(e);
                    }
                }
                if n < limit as usize {
                    break;
                }
            }
            Ok(())
        }
        .await;
        tally.waiting = waiting.len();
        if !waiting.is_empty() {
            if let Err(e) = self.ports.predictions.release_claims(&waiting).await {
                // Not fatal: the claims run out after claim_for.
                tracing::warn!(error = %e, count = waiting.len(), "could not release claims");
                if result.is_ok() {
                    tally.problem(format!("could not release claims: {e}"));
                }
            }
        }
        result?;
        let summary = format!(
            "{} claimed, {} verified, {} needs_review, {} waiting, {} skipped",
            tally.claimed, tally.verified, tally.needs_review, tally.waiting, tally.skipped
        );
        tracing::info!(job = "PredictionVerifierJob", "{summary}");
        Ok(RunReport {
            summary,
            problems: tally.problems,
        })
    }
}

/// Longest accepted void reason, in characters.
pub const MAX_REASON_CHARS: usize = 500;

/// Resolves manual and `needs_review` predictions for `POST /admin/predictions/{id}/resolve`,
/// with the same bookkeeping as automatic verification (§6.6), corrects `ended` ones and voids
/// predictions (`POST /admin/predictions/{id}/void`, §6.7).
#[derive(Clone)]
pub struct ManualResolver {
    ports: Ports,
}

impl std::fmt::Debug for ManualResolver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ManualResolver").finish_non_exhaustive()
    }
}

impl ManualResolver {
    /// A resolver over these ports.
    pub fn new(
        predictions: Arc<dyn PredictionRepository>,
        ticks: Arc<dyn PriceTickRepository>,
        market: Arc<dyn MarketData>,
        symbols: Arc<dyn SymbolRepository>,
    ) -> Self {
        ManualResolver {
            ports: Ports {
                predictions,
                ticks,
                market,
                symbols,
            },
        }
    }

    /// Verify prediction `id` with `correct_option` as decided by an admin at `now` — or, when
    /// it has already `ended`, correct it — and return it as stored afterwards; see
    /// [`resolve_with_price`](Self::resolve_with_price) (this is it without a price).
    pub async fn resolve(
        &self,
        id: &str,
        correct_option: &str,
        now: DateTime<Utc>,
    ) -> Result<Prediction> {
        self.resolve_with_price(id, correct_option, None, now).await
    }

    /// `POST /admin/predictions/{id}/resolve`: resolve prediction `id` with `correct_option`,
    /// optionally at the admin's `price_at_verify`, at `now`; the prediction as stored
    /// afterwards.
    ///
    /// - unknown id → [`Error::NotFound`];
    /// - `void` (final), or an `auto` prediction that is still `active` (the job verifies it)
    ///   → [`Error::Conflict`];
    /// - empty option, or (when the prediction has `auto_verify_conditions`) an option that is
    ///   not one of its keys, or a price that is not > 0 → [`Error::InvalidInput`];
    /// - `ended` → a **correction** (CONTRACT.md §6.7) through
    ///   [`record_correction`](PredictionRepository::record_correction): the new option, and
    ///   with a price also `price_at_verify`, its `price_change_percent` and
    ///   `price_source = manual` (`price_at_verify_ts` = `verify_time`); without one the
    ///   recorded price stays. Votes re-marked, voters' statistics recomputed. A correction that
    ///   changes nothing → [`Error::Conflict`];
    /// - manual `active` or `needs_review` → a verification with `price_source = manual`:
    ///   `price_at_verify` = the admin's price (at `verify_time`), else the first tick at or
    ///   after `verify_time`, else the latest tick, else the provider's history at
    ///   `verify_time`; none → `Error::Unavailable`. With `price_at_create <= 0` the prediction
    ///   is resolved with `price_change_percent` left `NULL` (undefined, never made up).
    ///   Recorded through `record_verifications` with `manual = true`; if it was resolved by
    ///   someone else meanwhile → [`Error::Conflict`].
    pub async fn resolve_with_price(
        &self,
        id: &str,
        correct_option: &str,
        price_at_verify: Option<rust_decimal::Decimal>,
        now: DateTime<Utc>,
    ) -> Result<Prediction> {
        let p = self.get(id).await?;
        match (p.status, p.verify_rule) {
            (PredictionStatus::Void, _) => {
                return Err(Error::Conflict(format!(
                    "prediction {id} is void, and void is final"
                )))
            }
            (PredictionStatus::Active, VerifyRule::Auto) => {
                return Err(Error::Conflict(format!(
                    "prediction {id} is verified automatically; only manual, needs_review or \
                     ended predictions can be resolved"
                )))
            }
            _ => {}
        }
        let option = correct_option.trim();
        if option.is_empty() {
            return Err(Error::invalid("correct_option must not be empty"));
        }
        if let Some(json) = p.auto_verify_conditions.as_deref() {
            // Keys only: the conditions themselves may be what failed to parse.
            if let Ok(map) =
                serde_json::from_str::<serde_json::Map<String, serde_json::Value>>(json)
            {
                if !map.is_empty() && !map.contains_key(option) {
                    let keys: Vec<&str> = map.keys().map(String::as_str).collect();
                    return Err(Error::invalid(format!(
                        "correct_option {option:?} is not one of the prediction's options {}",
                        keys.join(", ")
                    )));
                }
            }
        }
        let manual = match price_at_verify {
            Some(price) if price <= rust_decimal::Decimal::ZERO => {
                return Err(Error::invalid(format!(
                    "price_at_verify must be > 0, got {price}"
                )))
            }
            Some(price) => Some(ManualPrice {
                price_at_verify: price,
                price_change_percent: Vars::new(p.price_at_create, price)
                    .map(|v| v.price_change_percent),
                price_at_verify_ts: p.verify_time,
            }),
            None => None,
        };
        if p.status == PredictionStatus::Ended {
            self.ports
                .predictions
                .record_correction(&Correction {
                    prediction_id: id.to_owned(),
                    correct_option: option.to_owned(),
                    price: manual,
                    corrected_at: now,
                })
                .await?;
            return self.get(id).await;
        }
        let found = match manual {
            Some(m) => PriceFound {
                price: m.price_at_verify,
                source: PriceSource::Manual,
                provider: None,
                ts: m.price_at_verify_ts,
            },
            None => self.price_for(&p).await?,
        };
        // Undefined (price_at_create <= 0) stays undefined: NULL, never a made-up number.
        let percent = Vars::new(p.price_at_create, found.price).map(|v| v.price_change_percent);
        let record = VerificationRecord {
            prediction_id: id.to_owned(),
            outcome: VerificationOutcome::Verified(Verdict {
                correct_option: option.to_owned(),
                price_at_verify: found.price,
                price_change_percent: percent,
                price_source: found.source,
                price_at_verify_ts: found.ts,
                price_provider: found.provider,
            }),
            verified_at: now,
            manual: true,
        };
        let summary = self
            .ports
            .predictions
            .record_verifications(std::slice::from_ref(&record))
            .await?;
        if summary.verified.iter().all(|v| v != id) {
            return Err(Error::Conflict(format!(
                "prediction {id} was resolved, verified or voided meanwhile"
            )));
        }
        self.get(id).await
    }

    /// `POST /admin/predictions/{id}/void`: void prediction `id` (CONTRACT.md §6.7) for
    /// `reason` at `now`, through [`record_void`](PredictionRepository::record_void); the
    /// prediction as stored afterwards.
    ///
    /// - unknown id → [`Error::NotFound`]; already void (final) → [`Error::Conflict`];
    /// - the reason is trimmed; empty, longer than [`MAX_REASON_CHARS`] characters, or with
    ///   control characters → [`Error::InvalidInput`];
    /// - `active`, `needs_review` and `ended` predictions can be voided; voters' statistics are
    ///   recomputed when it had ended.
    pub async fn void(&self, id: &str, reason: &str, now: DateTime<Utc>) -> Result<Prediction> {
        let reason = reason.trim();
        if reason.is_empty() {
            return Err(Error::invalid("reason must not be empty"));
        }
        if reason.chars().count() > MAX_REASON_CHARS {
            return Err(Error::invalid(format!(
                "reason is longer than {MAX_REASON_CHARS} characters"
            )));
        }
        if reason.chars().any(char::is_control) {
            return Err(Error::invalid("reason must not contain control characters"));
        }
        self.ports
            .predictions
            .record_void(&VoidRecord {
                prediction_id: id.to_owned(),
                reason: reason.to_owned(),
                voided_at: now,
            })
            .await?;
        self.get(id).await
    }

    async fn get(&self, id: &str) -> Result<Prediction> {
        self.ports
            .predictions
            .get_prediction(id)
            .await?
            .ok_or_else(|| Error::NotFound(format!("prediction {id}")))
    }

    async fn price_for(&self, p: &Prediction) -> Result<PriceFound> {
        let first = self
            .ports
            .ticks
            .first_ticks_at_or_after(&[
                TickQuery::new(&p.symbol_code, p.verify_time).with_demo(self.ports.demo_only())
            ])
            .await?;
        if let Some(Some(t)) = first.into_iter().next() {
            return Ok(PriceFound::tick(t, PriceSource::Manual));
        }
        if let Some(t) = self.ports.ticks.latest_tick(&p.symbol_code).await? {
            if self.ports.demo_only() || !t.is_demo() {
                return Ok(PriceFound::tick(t, PriceSource::Manual));
            }
        }
        let mut cache = RunCache::default();
        let provider = self.ports.market.name();
        let why = match self
            .ports
            .history(&mut cache, &p.symbol_code, p.verify_time)
            .await?
        {
            History::Point(pp) => {
                return Ok(PriceFound {
                    price: pp.price,
                    source: PriceSource::Manual,
                    provider: pp.source.or_else(|| Some(provider.to_owned())),
                    ts: pp.ts,
                })
            }
            History::NoPrice => format!("provider {provider} has no price at {}", p.verify_time),
            History::Refused(reason) => {
                format!("provider {provider} answered a price that cannot decide: {reason}")
            }
            History::UnknownSymbol => format!("symbol {} is unknown or inactive", p.symbol_code),
            History::Failed(e) => return Err(e),
        };
        Err(Error::unavailable(
            "market data",
            format!("no price of {} is known: no tick, and {why}", p.symbol_code),
            None,
        ))
    }
}
