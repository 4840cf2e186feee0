//! [`InMemoryQuoteCache`]: a [`QuoteCache`] in memory.

use super::lock;
use crate::{Quote, QuoteCache, Result};
use async_trait::async_trait;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;
use tokio::time::Instant;

/// The latest quote per symbol in memory, with the TTL semantics of `quote:{SYMBOL}` in Redis.
///
/// Used by tests and the embedded default.
///
/// Each write of a symbol replaces its quote and restarts its clock: the entry expires `ttl`
/// after it was written (a zero `ttl` expires it at once, as `PEXPIRE key 0` deletes the key).
/// Time is the tokio clock ([`tokio::time::Instant`]), so tests with paused time control expiry.
///
/// **Memory bound.** One entry per symbol code; expired entries are dropped when read and swept
/// on every write, so the map holds at most the codes written within the last TTL.
#[derive(Debug, Default)]
pub struct InMemoryQuoteCache {
    entries: Mutex<HashMap<String, (Quote, Instant)>>,
}

impl InMemoryQuoteCache {
    /// An empty cache.
    pub fn new() -> Self {
        Self::default()
    }

    /// How many entries are held (expired ones not yet swept included).
    pub fn len(&self) -> usize {
        lock(&self.entries).len()
    }

    /// Whether no entry is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// `now + ttl`; a TTL too large to represent is capped at about 30 years.
pub(super) fn expiry(now: Instant, ttl: Duration) -> Instant {
    now.checked_add(ttl)
        .or_else(|| now.checked_add(Duration::from_secs(30 * 365 * 86_400)))
        .unwrap_or(now)
}

#[async_trait]
impl QuoteCache for InMemoryQuoteCache {
    async fn put_quotes(&self, quotes: &[Quote], ttl: Duration) -> Result<()> {
        let now = Instant::now();
        let expires = expiry(now, ttl);
        let mut entries = lock(&self.entries);
        entries.retain(|_, (_, exp)| *exp > now);
        for q in quotes {
            if ttl.is_zero() {
                entries.remove(&q.symbol_code);
            } else {
                entries.insert(q.symbol_code.clone(), (q.clone(), expires));
            }
        }
        Ok(())
    }

    async fn get_quotes(&self, codes: &[String]) -> Result<Vec<Quote>> {
        let now = Instant::now();
        let mut entries = lock(&self.entries);
        let mut out = Vec::with_capacity(codes.len());
        for code in codes {
            match entries.get(code) {
                Some((q, exp)) if *exp > now => out.push(q.clone()),
                Some(_) => {
                    entries.remove(code);
                }
                None => {}
            }
        }
        Ok(out)
    }
}
