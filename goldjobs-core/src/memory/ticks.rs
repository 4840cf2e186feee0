//! [`InMemoryTicks`]: a [`PriceTickRepository`] in memory.

use super::{read, write};
use crate::{
    candles_from_ticks, Candle, CandleQuery, PriceTick, PriceTickRepository, Result, TickQuery,
    DEMO_SOURCE,
};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, RwLock};

/// Ticks kept per symbol by [`crate::memory::InMemoryBackend`]: about 5.8 days of one tick every
/// 5 seconds.
pub const DEFAULT_TICK_RETENTION: usize = 100_000;

/// Ticks of one symbol by `(ts, insertion number)`: the insertion number keeps ticks with equal
/// timestamps apart and in the order they were inserted.
type Series = BTreeMap<(DateTime<Utc>, u64), Stored>;

/// A stored tick's price and provider (interned: a handful of providers, millions of ticks).
#[derive(Debug, Clone)]
struct Stored {
    price: Decimal,
    source: Option<Arc<str>>,
}

impl Stored {
    fn is_demo(&self) -> bool {
        self.source.as_deref() == Some(DEMO_SOURCE)
    }
}

#[derive(Debug, Default)]
struct Inner {
    by_symbol: HashMap<String, Series>,
    /// The distinct `source` values seen, shared by the stored ticks.
    sources: Vec<Arc<str>>,
    next_seq: u64,
    len: usize,
}

impl Inner {
    fn intern(&mut self, source: Option<&str>) -> Option<Arc<str>> {
        let source = source?;
        if let Some(known) = self.sources.iter().find(|s| &***s == source) {
            return Some(known.clone());
        }
        let new: Arc<str> = Arc::from(source);
        self.sources.push(new.clone());
        Some(new)
    }
}

/// Price ticks in memory, one ordered map per symbol, so "the first tick at or after `at`" is a
/// range query (O(log n)).
///
/// Used by tests and the embedded default.
///
/// Ticks with equal timestamps are kept in insertion order: the first inserted is the "first
/// tick at or after" such an instant, the last inserted is the latest tick.
///
/// **Memory bound.** [`InMemoryTicks::new`] keeps every tick until
/// [`delete_ticks_before`](PriceTickRepository::delete_ticks_before) removes it.
/// [`InMemoryTicks::with_retention`] caps the ticks kept *per symbol*: inserting beyond the cap
/// drops that symbol's oldest ticks (smallest `ts`). A prediction whose `verify_time` is older
/// than the oldest tick kept may then be answered with a later tick than the true first one, so
/// choose a cap that covers the longest verification lag you expect.
#[derive(Debug, Default)]
pub struct InMemoryTicks {
    inner: RwLock<Inner>,
    retention: Option<usize>,
}

impl InMemoryTicks {
    /// An empty repository without a retention cap.
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty repository keeping at most `max_per_symbol` ticks per symbol (at least 1).
    pub fn with_retention(max_per_symbol: usize) -> Self {
        Self {
            inner: RwLock::default(),
            retention: Some(max_per_symbol.max(1)),
        }
    }

    /// The retention cap per symbol, if any.
    pub fn retention(&self) -> Option<usize> {
        self.retention
    }

    /// How many ticks are stored, over all symbols.
    pub fn len(&self) -> usize {
        read(&self.inner).len
    }

    /// Whether no tick is stored.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Every tick of a symbol, oldest first (for inspection and tests).
    pub fn ticks_of(&self, symbol_code: &str) -> Vec<PriceTick> {
        read(&self.inner)
            .by_symbol
            .get(symbol_code)
            .map(|series| {
                series
                    .iter()
                    .map(|(&(ts, _), v)| tick(symbol_code, ts, v))
                    .collect()
            })
            .unwrap_or_default()
    }
}

fn tick(symbol_code: &str, ts: DateTime<Utc>, v: &Stored) -> PriceTick {
    PriceTick {
        symbol_code: symbol_code.to_owned(),
        price: v.price,
        ts,
        source: v.source.as_deref().map(str::to_owned),
    }
}

#[async_trait]
impl PriceTickRepository for InMemoryTicks {
    async fn insert_ticks(&self, ticks: &[PriceTick]) -> Result<()> {
        let mut guard = write(&self.inner);
        let inner = &mut *guard;
        for t in ticks {
            let seq = inner.next_seq;
            inner.next_seq += 1;
            let source = inner.intern(t.source.as_deref());
            let series = inner.by_symbol.entry(t.symbol_code.clone()).or_default();
            series.insert(
                (t.ts, seq),
                Stored {
                    price: t.price,
                    source,
                },
            );
            inner.len += 1;
            if let Some(cap) = self.retention {
                while series.len() > cap {
                    if series.pop_first().is_some() {
                        inner.len -= 1;
                    }
                }
            }
        }
        Ok(())
    }

    async fn first_ticks_at_or_after(
        &self,
        queries: &[TickQuery],
    ) -> Result<Vec<Option<PriceTick>>> {
        let inner = read(&self.inner);
        Ok(queries
            .iter()
            .map(|q| {
                inner.by_symbol.get(&q.symbol_code).and_then(|series| {
                    series
                        .range((q.at, 0)..)
                        .find(|(_, v)| q.allow_demo || !v.is_demo())
                        .map(|(&(ts, _), v)| tick(&q.symbol_code, ts, v))
                })
            })
            .collect())
    }

    async fn latest_tick(&self, symbol_code: &str) -> Result<Option<PriceTick>> {
        let inner = read(&self.inner);
        Ok(inner.by_symbol.get(symbol_code).and_then(|series| {
            series
                .last_key_value()
                .map(|(&(ts, _), v)| tick(symbol_code, ts, v))
        }))
    }

    async fn candles(&self, query: &CandleQuery) -> Result<Vec<Candle>> {
        let inner = read(&self.inner);
        Ok(match inner.by_symbol.get(&query.symbol_code) {
            Some(series) => candles_from_ticks(
                query.interval,
                series
                    .range((query.from, 0)..(query.to, 0))
                    .map(|(&(ts, _), v)| (ts, v.price)),
            ),
            None => Vec::new(),
        })
    }

    /// Deletes the oldest ticks first (over all symbols), at most `limit`.
    async fn delete_ticks_before(&self, before: DateTime<Utc>, limit: u32) -> Result<u64> {
        let limit = limit as usize;
        if limit == 0 {
            return Ok(0);
        }
        let mut guard = write(&self.inner);
        let inner = &mut *guard;
        // Candidates: up to `limit` of the oldest ticks of each symbol; then the oldest overall.
        let mut candidates: Vec<(DateTime<Utc>, u64, &str)> = Vec::new();
        for (code, series) in &inner.by_symbol {
            candidates.extend(
                series
                    .range(..(before, 0))
                    .take(limit)
                    .map(|(&(ts, seq), _)| (ts, seq, code.as_str())),
            );
        }
        candidates.sort_unstable();
        candidates.truncate(limit);
        let doomed: Vec<(String, (DateTime<Utc>, u64))> = candidates
            .into_iter()
            .map(|(ts, seq, code)| (code.to_owned(), (ts, seq)))
            .collect();
        let mut deleted = 0u64;
        for (code, key) in doomed {
            if let Some(series) = inner.by_symbol.get_mut(&code) {
                if series.remove(&key).is_some() {
                    deleted += 1;
                    inner.len -= 1;
                }
                if series.is_empty() {
                    inner.by_symbol.remove(&code);
                }
            }
        }
        Ok(deleted)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn t(code: &str, secs: i64, price: i64) -> PriceTick {
        PriceTick {
            symbol_code: code.into(),
            price: Decimal::new(price, 0),
            ts: Utc.timestamp_opt(1_700_000_000 + secs, 0).unwrap(),
            source: None,
        }
    }

    #[tokio::test]
    async fn retention_drops_oldest_of_that_symbol_only() {
        let repo = InMemoryTicks::with_retention(2);
        repo.insert_ticks(&[t("A", 3, 3), t("A", 1, 1), t("A", 2, 2), t("B", 0, 9)])
            .await
            .unwrap();
        assert_eq!(repo.ticks_of("A"), vec![t("A", 2, 2), t("A", 3, 3)]);
        assert_eq!(repo.ticks_of("B"), vec![t("B", 0, 9)]);
        assert_eq!(repo.len(), 3);
    }

    #[tokio::test]
    async fn delete_takes_oldest_over_all_symbols() {
        let repo = InMemoryTicks::new();
        repo.insert_ticks(&[t("A", 1, 1), t("B", 2, 2), t("A", 3, 3), t("B", 4, 4)])
            .await
            .unwrap();
        let before = Utc.timestamp_opt(1_700_000_010, 0).unwrap();
        assert_eq!(repo.delete_ticks_before(before, 3).await.unwrap(), 3);
        assert_eq!(repo.ticks_of("A"), vec![]);
        assert_eq!(repo.ticks_of("B"), vec![t("B", 4, 4)]);
        assert_eq!(repo.delete_ticks_before(before, 0).await.unwrap(), 0);
        assert_eq!(repo.delete_ticks_before(before, 10).await.unwrap(), 1);
        assert!(repo.is_empty());
    }

    #[tokio::test]
    async fn equal_timestamps_keep_insertion_order() {
        let repo = InMemoryTicks::new();
        repo.insert_ticks(&[t("A", 5, 1), t("A", 5, 2)])
            .await
            .unwrap();
        let q = TickQuery {
            symbol_code: "A".into(),
            at: t("A", 5, 0).ts,
            allow_demo: false,
        };
        let got = repo.first_ticks_at_or_after(&[q]).await.unwrap();
        assert_eq!(got, vec![Some(t("A", 5, 1))]);
        assert_eq!(repo.latest_tick("A").await.unwrap(), Some(t("A", 5, 2)));
    }
}
