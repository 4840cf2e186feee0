//! A primary provider with fallbacks, as one [`MarketData`].

use super::MarketError;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use goldjobs_core::{
    validate_price_point, Error, MarketData, PricePoint, QuoteBatch, Result, Symbol, SymbolFailure,
};
use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

/// Asks providers in order: the primary for every symbol, then each fallback only for the symbols
/// the providers before it could not price (all of them when a provider's whole call failed), all
/// within the same `quotes` call.
///
/// The batch's `failures` are the symbols no provider could price, each with the error of the
/// last provider tried for it. When every provider's whole call failed, the call fails with the
/// last provider's error.
pub struct FallbackMarketData {
    providers: Vec<Arc<dyn MarketData>>,
}

impl fmt::Debug for FallbackMarketData {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = self.providers.iter().map(|p| p.name()).collect();
        f.debug_struct("FallbackMarketData")
            .field("providers", &names)
            .finish()
    }
}

impl FallbackMarketData {
    /// Primary first, then fallbacks. An empty list is refused, and so is a list that mixes
    /// the demo feed with a real provider: made-up prices never enter a real deployment
    /// (guide: *Configuration reference*).
    pub fn new(providers: Vec<Arc<dyn MarketData>>) -> Result<Self> {
        if providers.is_empty() {
            return Err(MarketError::NoProvider.into());
        }
        let demo = providers.iter().filter(|p| p.is_demo()).count();
        if demo > 0 && demo < providers.len() {
            let names: Vec<&str> = providers.iter().map(|p| p.name()).collect();
            return Err(MarketError::DemoMixed(names.join(",")).into());
        }
        Ok(FallbackMarketData { providers })
    }

    /// The providers, in order.
    pub fn providers(&self) -> &[Arc<dyn MarketData>] {
        &self.providers
    }
}

#[async_trait]
impl MarketData for FallbackMarketData {
    fn name(&self) -> &'static str {
        // The primary's name: that is where prices normally come from.
        self.providers[0].name()
    }

    fn is_demo(&self) -> bool {
        // All or none (`new` refuses a mix).
        self.providers.iter().all(|p| p.is_demo())
    }

    async fn quotes(&self, symbols: &[Symbol]) -> Result<QuoteBatch> {
        let mut out = QuoteBatch::default();
        let mut pending: Vec<Symbol> = symbols.to_vec();
        // Last error per code; `None` until a provider tried it.
        let mut last_errors: HashMap<String, Error> = HashMap::new();
        let mut last_call_error: Option<Error> = None;
        let mut any_call_ok = false;
        for provider in &self.providers {
            if pending.is_empty() {
                break;
            }
            match provider.quotes(&pending).await {
                Ok(batch) => {
                    any_call_ok = true;
                    let asked: std::collections::HashSet<&str> =
                        pending.iter().map(|s| s.code.as_str()).collect();
                    let mut priced = std::collections::HashSet::new();
                    for q in batch.quotes {
                        if asked.contains(q.symbol_code.as_str())
                            && priced.insert(q.symbol_code.clone())
                        {
                            last_errors.remove(&q.symbol_code);
                            out.quotes.push(q);
                        }
                    }
                    for f in batch.failures {
                        if !priced.contains(&f.symbol_code) {
                            last_errors.insert(f.symbol_code, f.error);
                        }
                    }
                    pending.retain(|s| !priced.contains(&s.code));
                    for s in &pending {
                        last_errors.entry(s.code.clone()).or_insert_with(|| {
                            Error::backend(
                                "fallback",
                                format!("{} gave no quote for {}", provider.name(), s.code),
                                None,
                            )
                        });
                    }
                }
                Err(e) => {
                    tracing::warn!(provider = provider.name(), error = %e, symbols = pending.len(), "market data provider failed; trying the next one");
                    for s in &pending {
                        last_errors.insert(s.code.clone(), copy_error(&e, provider.name()));
                    }
                    last_call_error = Some(e);
                }
            }
        }
        if !any_call_ok {
            if let Some(e) = last_call_error {
                return Err(e);
            }
        }
        for s in pending {
            let error = last_errors.remove(&s.code).unwrap_or_else(|| {
                Error::backend("fallback", format!("no provider priced {}", s.code), None)
            });
            out.failures.push(SymbolFailure {
                symbol_code: s.code,
                error,
            });
        }
        Ok(out)
    }

    /// The first provider's answer that passes
    /// [`goldjobs_core::validate_price_point`] (the first price at or
    /// after `at`, at most a minute later); a provider that has none, fails, or answers a point
    /// outside that rule hands over to the next.
    async fn price_at(&self, symbol: &Symbol, at: DateTime<Utc>) -> Result<Option<PricePoint>> {
        let mut last_error = None;
        for provider in &self.providers {
            match provider.price_at(symbol, at).await {
                Ok(Some(p)) => match validate_price_point(&symbol.code, at, &p) {
                    Ok(()) => return Ok(Some(p)),
                    Err(e) => {
                        tracing::warn!(provider = provider.name(), error = %e, "historical price refused; trying the next provider");
                        last_error = Some(e);
                    }
                },
                Ok(None) => {}
                Err(e) => {
                    tracing::warn!(provider = provider.name(), error = %e, symbol = %symbol.code, "historical price failed; trying the next provider");
                    last_error = Some(e);
                }
            }
        }
        // Nobody had it. If one failed it might have had it: say so rather than "no price".
        match last_error {
            Some(e) => Err(e),
            None => Ok(None),
        }
    }
}

/// The same kind of error (temporary stays temporary) for each symbol of a failed call.
fn copy_error(e: &Error, provider: &str) -> Error {
    let message = format!("{provider}: {e}");
    match e {
        Error::RateLimited { retry_after, .. } => Error::RateLimited {
            backend: "fallback",
            message,
            retry_after: *retry_after,
        },
        Error::Timeout(d) => Error::Timeout(*d),
        e if e.is_temporary() => Error::unavailable("fallback", message, None),
        _ => Error::backend("fallback", message, None),
    }
}
