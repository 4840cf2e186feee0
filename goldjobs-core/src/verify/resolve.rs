//! Manual resolution, corrections and voids (guide: *What a verdict records*; *Corrections and
//! voids*) behind `POST /admin/predictions/{id}/resolve` and `/void`.

use crate::condition::Vars;
use crate::model::*;
use crate::ports::MarketData;
use crate::verify::pricing::{History, PriceFound, RunCache, VerifyPorts};
use crate::{Error, Result};
use chrono::{DateTime, Utc};
use std::sync::Arc;
/// Longest accepted void reason, in characters.
pub const MAX_REASON_CHARS: usize = 500;

/// Resolves manual and `needs_review` predictions for `POST /admin/predictions/{id}/resolve`,
/// with the same bookkeeping as automatic verification (§6.6), corrects `ended` ones and voids
/// predictions (`POST /admin/predictions/{id}/void`, §6.7).
#[derive(Clone)]
pub struct ManualResolver {
    ports: VerifyPorts,
}

impl std::fmt::Debug for ManualResolver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ManualResolver").finish_non_exhaustive()
    }
}

impl ManualResolver {
    /// A resolver over the stores of `ports` that asks `market` for history when no tick
    /// gives the price at `verify_time`.
    pub fn new(ports: &crate::Ports, market: Arc<dyn MarketData>) -> Self {
        ManualResolver {
            ports: VerifyPorts::new(ports, market),
        }
    }

    pub(crate) fn over(ports: VerifyPorts) -> Self {
        ManualResolver { ports }
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
    /// - `ended` → a **correction** (guide: *Corrections and voids*) through
    ///   [`record_correction`](crate::PredictionRepository::record_correction): the new option, and
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

    /// `POST /admin/predictions/{id}/void`: void prediction `id` (guide: *Corrections and voids*)
    /// for `reason` at `now`, through [`record_void`](crate::PredictionRepository::record_void);
    /// the prediction as stored afterwards.
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
