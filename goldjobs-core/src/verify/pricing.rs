//! How verification finds its price (guide: *How the price at verify time is chosen*), shared by
//! the [`PredictionVerifierJob`](crate::jobs::PredictionVerifierJob) and the
//! [`ManualResolver`](super::ManualResolver): the first tick at or after `verify_time` within
//! the lag window, else the provider's history, and what to do when neither decides.

use crate::market::validate_price_point;
use crate::model::*;
use crate::ports::{MarketData, PredictionRepository, PriceTickRepository, SymbolRepository};
use crate::{Error, Result};
use chrono::{DateTime, Utc};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
pub(crate) fn plus(t: DateTime<Utc>, d: Duration) -> DateTime<Utc> {
    chrono::Duration::from_std(d)
        .ok()
        .and_then(|d| t.checked_add_signed(d))
        .unwrap_or(DateTime::<Utc>::MAX_UTC)
}

/// The ports verification needs; shared by the job and the [`ManualResolver`].
#[derive(Clone)]
pub(crate) struct VerifyPorts {
    pub(crate) predictions: Arc<dyn PredictionRepository>,
    pub(crate) ticks: Arc<dyn PriceTickRepository>,
    pub(crate) market: Arc<dyn MarketData>,
    pub(crate) symbols: Arc<dyn SymbolRepository>,
}

/// What to do with one claimed prediction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Decision {
    /// Record this outcome.
    Record(VerificationOutcome),
    /// Leave it active for a later run; `Some(problem)` when something failed.
    Wait(Option<String>),
}

pub(crate) fn review(reason: impl Into<String>) -> Decision {
    Decision::Record(VerificationOutcome::NeedsReview {
        reason: reason.into(),
    })
}

/// A price for verification and where it came from.
pub(crate) struct PriceFound {
    pub(crate) price: rust_decimal::Decimal,
    pub(crate) source: PriceSource,
    pub(crate) provider: Option<String>,
    pub(crate) ts: DateTime<Utc>,
}

impl PriceFound {
    pub(crate) fn tick(t: PriceTick, source: PriceSource) -> Self {
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
pub(crate) struct RunCache {
    pub(crate) symbols: Option<HashMap<String, Symbol>>,
    pub(crate) history: HashMap<(String, DateTime<Utc>), Answer>,
    /// Set after a temporary provider error: the rest of the run does not ask again (a rate
    /// limited provider is not hammered; those predictions wait for the next run).
    pub(crate) provider_down: bool,
}

impl VerifyPorts {
    pub(crate) fn new(ports: &crate::Ports, market: Arc<dyn MarketData>) -> Self {
        VerifyPorts {
            predictions: ports.predictions.clone(),
            ticks: ports.ticks.clone(),
            market,
            symbols: ports.symbols.clone(),
        }
    }

    /// Whether the instance runs on the demo feed alone: only then may a demo tick decide a
    /// prediction (guide: *How the price at verify time is chosen*).
    pub(crate) fn demo_only(&self) -> bool {
        self.market.is_demo()
    }

    pub(crate) async fn symbol(&self, cache: &mut RunCache, code: &str) -> Result<Option<Symbol>> {
        if cache.symbols.is_none() {
            let all = self.symbols.active_symbols().await?;
            cache.symbols = Some(all.into_iter().map(|s| (s.code.clone(), s)).collect());
        }
        Ok(cache.symbols.as_ref().and_then(|m| m.get(code)).cloned())
    }

    /// The provider's price of `code` at `at`. `Err` only when the symbol table cannot be
    /// read; the provider's own answer (including its errors) is a [`History`].
    pub(crate) async fn history(
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
pub(crate) enum History {
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
pub(crate) enum Answer {
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
