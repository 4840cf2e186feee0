//! The `PredictionVerifierJob` (guide: *Verification rules*): claims due predictions, decides them
//! by the rules in [`crate::verify`] and records each batch.

use crate::condition::{ConditionSet, Vars};
use crate::model::*;
use crate::ports::MarketData;
use crate::runtime::{Cadence, Job, JobContext, RunReport, Schedule};
use crate::verify::pricing::{plus, review, Decision, History, PriceFound, RunCache, VerifyPorts};
use crate::verify::ManualResolver;
use crate::{Error, Result};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

/// Settings of the [`PredictionVerifierJob`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct VerifierConfig {
    /// Period of the job (`GOLDJOBS_VERIFY_INTERVAL`, default 60 s); or a calendar (`cron:EXPR`).
    pub cadence: Cadence,
    /// What a restart or a failover does with instants nobody ran (default `once: one catch-up run`).
    pub missed: crate::runtime::MissedTickPolicy,
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
            cadence: Cadence::Every(Duration::from_secs(60)),
            missed: crate::runtime::MissedTickPolicy::Once,
            batch_size: 500,
            max_lag: Duration::from_secs(300),
            claim_for: Duration::from_secs(60),
        }
    }
}

impl VerifierConfig {
    /// Set the period.
    pub fn with_interval(mut self, d: Duration) -> Self {
        self.cadence = Cadence::Every(d);
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

/// Verifies due predictions (guide: *Verification rules*), exactly once, in `verify_time` order.
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
///   priced inside the lag window may still be stored late (guide: *How the price at verify time is
///   chosen*);
/// - the first tick is later than `verify_time + max_lag` (the price job was down) → the
///   provider's history at `verify_time` (`provider_history`): the first price at or after it,
///   which must pass [`validate_price_point`](crate::validate_price_point) (positive,
///   at most one minute after `verify_time`); none, a point that fails that rule, the symbol
///   unknown, or a permanent provider error → `needs_review`; a temporary provider error →
///   stays active;
/// - the first option whose condition is true, in the JSON key order, wins; none →
///   `needs_review` `no condition matched price_change_percent = X`.
///
/// Manual predictions are never claimed; they stay active until [`ManualResolver::resolve`].
pub struct PredictionVerifierJob {
    ports: VerifyPorts,
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

    /// A verifier over the stores of `ports` (predictions, ticks, symbols) that asks `market`
    /// for history when no tick decides, with the default [`VerifierConfig`].
    pub fn new(ports: &crate::Ports, market: Arc<dyn MarketData>) -> Self {
        PredictionVerifierJob {
            ports: VerifyPorts::new(ports, market),
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
        ManualResolver::over(self.ports.clone())
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
        self.config
            .cadence
            .schedule()
            .with_missed(self.config.missed)
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
        // A run that found nothing (most woken runs and quiet sweeps) is not worth an info line.
        if tally.claimed > 0 || !tally.problems.is_empty() {
            tracing::info!(job = "PredictionVerifierJob", "{summary}");
        } else {
            tracing::debug!(job = "PredictionVerifierJob", "{summary}");
        }
        Ok(RunReport {
            summary,
            problems: tally.problems,
        })
    }
}
