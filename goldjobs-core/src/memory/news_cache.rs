//! [`InMemoryNewsCache`]: a [`NewsCache`] in memory.

use super::lock;
use super::quote_cache::expiry;
use crate::{NewsCache, Result};
use async_trait::async_trait;
use bytes::Bytes;
use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::time::Duration;
use tokio::time::Instant;

/// Lists cached by [`InMemoryNewsCache::new`].
pub const DEFAULT_NEWS_CACHE_ENTRIES: usize = 1_000;

#[derive(Debug)]
struct Entry {
    value: Bytes,
    expires: Instant,
    /// Position in `Inner::order`.
    seq: u64,
}

#[derive(Debug, Default)]
struct Inner {
    /// The current version; keys of older versions are never read again.
    version: u64,
    /// `(version, caller's key)` → entry.
    entries: HashMap<(u64, String), Entry>,
    /// Write order → key, oldest first, for eviction.
    order: BTreeMap<u64, (u64, String)>,
    next_seq: u64,
}

impl Inner {
    fn remove(&mut self, key: &(u64, String)) {
        if let Some(e) = self.entries.remove(key) {
            self.order.remove(&e.seq);
        }
    }
}

/// Cached news lists in memory with versioned keys, like `news:*` in Redis.
///
/// Used by tests and the embedded default.
///
/// Every key is stored under the current version number;
/// [`invalidate_lists`](NewsCache::invalidate_lists) bumps the version, in O(1), so every list
/// cached before misses. Entries expire `ttl` after they were written (tokio clock, so paused-time
/// tests control expiry; a zero `ttl` stores nothing).
///
/// **Memory bound.** At most `max_entries` lists are held (default
/// [`DEFAULT_NEWS_CACHE_ENTRIES`]); a write beyond that evicts the oldest written first. Lists of
/// older versions are always older than those of the current one, so they go first.
#[derive(Debug)]
pub struct InMemoryNewsCache {
    inner: Mutex<Inner>,
    max_entries: usize,
}

impl Default for InMemoryNewsCache {
    fn default() -> Self {
        Self::new()
    }
}

impl InMemoryNewsCache {
    /// An empty cache holding at most [`DEFAULT_NEWS_CACHE_ENTRIES`] lists.
    pub fn new() -> Self {
        Self::with_max_entries(DEFAULT_NEWS_CACHE_ENTRIES)
    }

    /// An empty cache holding at most `max_entries` lists (at least 1).
    pub fn with_max_entries(max_entries: usize) -> Self {
        Self {
            inner: Mutex::default(),
            max_entries: max_entries.max(1),
        }
    }

    /// How many lists are held (stale and expired ones not yet evicted included).
    pub fn len(&self) -> usize {
        lock(&self.inner).entries.len()
    }

    /// Whether no list is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The current version (starts at 0, +1 per invalidation).
    pub fn version(&self) -> u64 {
        lock(&self.inner).version
    }

    /// Store `value` under `(version, key)`, evicting the oldest entries past the bound.
    fn put_at(&self, version: u64, key: &str, value: Bytes, ttl: Duration) {
        let now = Instant::now();
        let mut inner = lock(&self.inner);
        let k = (version, key.to_owned());
        inner.remove(&k);
        if ttl.is_zero() {
            return;
        }
        let seq = inner.next_seq;
        inner.next_seq += 1;
        inner.order.insert(seq, k.clone());
        inner.entries.insert(
            k,
            Entry {
                value,
                expires: expiry(now, ttl),
                seq,
            },
        );
        while inner.entries.len() > self.max_entries {
            match inner.order.pop_first() {
                Some((_, oldest)) => {
                    inner.entries.remove(&oldest);
                }
                None => break,
            }
        }
    }
}

#[async_trait]
impl NewsCache for InMemoryNewsCache {
    async fn get_list(&self, key: &str) -> Result<Option<Bytes>> {
        let now = Instant::now();
        let mut inner = lock(&self.inner);
        let k = (inner.version, key.to_owned());
        match inner.entries.get(&k) {
            Some(e) if e.expires > now => Ok(Some(e.value.clone())),
            Some(_) => {
                inner.remove(&k);
                Ok(None)
            }
            None => Ok(None),
        }
    }

    async fn put_list(&self, key: &str, value: Bytes, ttl: Duration) -> Result<()> {
        let version = lock(&self.inner).version;
        self.put_at(version, key, value, ttl);
        Ok(())
    }

    async fn invalidate_lists(&self) -> Result<()> {
        let mut inner = lock(&self.inner);
        inner.version = inner.version.wrapping_add(1);
        Ok(())
    }

    async fn get_list_at(&self, key: &str) -> Result<(Option<Bytes>, u64)> {
        // One lock for both, so the generation is the one the lookup used.
        let now = Instant::now();
        let mut inner = lock(&self.inner);
        let version = inner.version;
        let k = (version, key.to_owned());
        let value = match inner.entries.get(&k) {
            Some(e) if e.expires > now => Some(e.value.clone()),
            Some(_) => {
                inner.remove(&k);
                None
            }
            None => None,
        };
        Ok((value, version))
    }

    async fn put_list_at(
        &self,
        key: &str,
        generation: u64,
        value: Bytes,
        ttl: Duration,
    ) -> Result<()> {
        if lock(&self.inner).version != generation {
            return Ok(());
        }
        // Invalidation between the check and the write is harmless: the entry lands under the
        // generation it was read in, which nobody reads any more.
        self.put_at(generation, key, value, ttl);
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn bounded_evicts_oldest_and_stale_first() {
        let c = InMemoryNewsCache::with_max_entries(2);
        let ttl = Duration::from_secs(60);
        c.put_list("a", Bytes::from_static(b"1"), ttl)
            .await
            .unwrap();
        c.invalidate_lists().await.unwrap();
        c.put_list("b", Bytes::from_static(b"2"), ttl)
            .await
            .unwrap();
        c.put_list("c", Bytes::from_static(b"3"), ttl)
            .await
            .unwrap();
        assert_eq!(c.len(), 2);
        assert_eq!(c.get_list("b").await.unwrap().as_deref(), Some(&b"2"[..]));
        c.put_list("d", Bytes::from_static(b"4"), ttl)
            .await
            .unwrap();
        assert_eq!(c.get_list("b").await.unwrap(), None);
        assert_eq!(c.get_list("c").await.unwrap().as_deref(), Some(&b"3"[..]));
        assert_eq!(c.get_list("d").await.unwrap().as_deref(), Some(&b"4"[..]));
        // Rewriting a key moves it to the young end.
        c.put_list("c", Bytes::from_static(b"5"), ttl)
            .await
            .unwrap();
        c.put_list("e", Bytes::from_static(b"6"), ttl)
            .await
            .unwrap();
        assert_eq!(c.get_list("d").await.unwrap(), None);
        assert_eq!(c.get_list("c").await.unwrap().as_deref(), Some(&b"5"[..]));
    }
}
