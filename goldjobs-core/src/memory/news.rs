//! [`InMemoryNews`]: a [`NewsRepository`] in memory.

use super::{read, write};
use crate::{NewsArticle, NewsRepository, Result};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use std::cmp::Reverse;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::RwLock;

/// Newest first: `published_at` descending, then the later insertion first.
type OrderKey = (Reverse<DateTime<Utc>>, Reverse<u64>);

#[derive(Debug, Default)]
struct Inner {
    /// canonical URL → order key of its article.
    by_url: HashMap<String, OrderKey>,
    /// Article ids present (ids are unique like the table's primary key).
    ids: HashSet<String>,
    /// Articles, newest first.
    by_time: BTreeMap<OrderKey, NewsArticle>,
    next_seq: u64,
}

/// Stored news in memory, unique by `canonical_url` (and by `id`, like the table's primary key),
/// ordered newest `published_at` first.
///
/// Used by tests and the embedded default.
///
/// An article whose `canonical_url` or `id` is already stored is skipped, like
/// `INSERT … ON CONFLICT DO NOTHING`; within one batch the first occurrence wins. Articles with
/// equal `published_at` are listed later-inserted first.
///
/// **Memory bound.** [`InMemoryNews::new`] keeps every article. [`InMemoryNews::with_max_articles`]
/// keeps at most that many: beyond it the articles with the oldest `published_at` are dropped
/// (and, should a feed offer one of them again, it counts as new again).
#[derive(Debug, Default)]
pub struct InMemoryNews {
    inner: RwLock<Inner>,
    max_articles: Option<usize>,
}

impl InMemoryNews {
    /// An empty repository without a cap.
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty repository keeping at most `max` articles (at least 1).
    pub fn with_max_articles(max: usize) -> Self {
        Self {
            inner: RwLock::default(),
            max_articles: Some(max.max(1)),
        }
    }

    /// How many articles are stored.
    pub fn len(&self) -> usize {
        read(&self.inner).by_time.len()
    }

    /// Whether no article is stored.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[async_trait]
impl NewsRepository for InMemoryNews {
    async fn insert_articles(&self, articles: &[NewsArticle]) -> Result<u64> {
        let mut guard = write(&self.inner);
        let inner = &mut *guard;
        let mut new = 0u64;
        for a in articles {
            if inner.by_url.contains_key(&a.canonical_url) || inner.ids.contains(&a.id) {
                continue;
            }
            let key = (Reverse(a.published_at), Reverse(inner.next_seq));
            inner.next_seq += 1;
            inner.by_url.insert(a.canonical_url.clone(), key);
            inner.ids.insert(a.id.clone());
            inner.by_time.insert(key, a.clone());
            new += 1;
        }
        if let Some(max) = self.max_articles {
            while inner.by_time.len() > max {
                if let Some((_, old)) = inner.by_time.pop_last() {
                    inner.by_url.remove(&old.canonical_url);
                    inner.ids.remove(&old.id);
                }
            }
        }
        Ok(new)
    }

    async fn latest_articles<'a>(
        &self,
        category: Option<&'a str>,
        limit: u32,
    ) -> Result<Vec<NewsArticle>> {
        let inner = read(&self.inner);
        Ok(inner
            .by_time
            .values()
            .filter(|a| category.is_none_or(|c| a.category == c))
            .take(limit as usize)
            .cloned()
            .collect())
    }
}
