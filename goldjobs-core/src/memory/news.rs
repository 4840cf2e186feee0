//! [`InMemoryNews`]: a [`NewsRepository`] in memory.

use super::{read, write};
use crate::news::FeedHealth;
use crate::{ArticleWrites, NewsArticle, NewsRepository, Result, Story};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
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
    /// category → its articles' order keys, so a category's latest are a prefix scan.
    by_category: HashMap<String, BTreeSet<OrderKey>>,
    /// story id → its articles' order keys.
    by_story: HashMap<String, BTreeSet<OrderKey>>,
    /// Feed health by feed key (bounded by [`MAX_FEED_STATES`]).
    feeds: BTreeMap<String, FeedHealth>,
    next_seq: u64,
}

impl Inner {
    fn insert_new(&mut self, a: &NewsArticle) {
        let key = (Reverse(a.published_at), Reverse(self.next_seq));
        self.next_seq += 1;
        self.by_url.insert(a.canonical_url.clone(), key);
        self.ids.insert(a.id.clone());
        self.by_category
            .entry(a.category.clone())
            .or_default()
            .insert(key);
        self.by_story
            .entry(a.story().to_owned())
            .or_default()
            .insert(key);
        self.by_time.insert(key, a.clone());
    }

    fn drop_oldest(&mut self) {
        if let Some((key, old)) = self.by_time.pop_last() {
            self.by_url.remove(&old.canonical_url);
            self.ids.remove(&old.id);
            for (index, name) in [
                (&mut self.by_category, &old.category),
                (&mut self.by_story, &old.story().to_owned()),
            ] {
                if let Some(keys) = index.get_mut(name) {
                    keys.remove(&key);
                    if keys.is_empty() {
                        index.remove(name);
                    }
                }
            }
        }
    }

    /// Update the stored article of `a.canonical_url` when its text changed; whether it did.
    fn refresh(&mut self, a: &NewsArticle) -> bool {
        let Some(key) = self.by_url.get(&a.canonical_url) else {
            return false;
        };
        let Some(stored) = self.by_time.get_mut(key) else {
            return false;
        };
        let changed = stored.title != a.title
            || stored.summary != a.summary
            || stored.content != a.content
            || stored.thumbnail_url != a.thumbnail_url;
        if changed {
            stored.title.clone_from(&a.title);
            stored.summary.clone_from(&a.summary);
            stored.content.clone_from(&a.content);
            stored.thumbnail_url.clone_from(&a.thumbnail_url);
        }
        changed
    }
}

/// Most feed health records the in-memory store keeps (more feeds than any configuration has;
/// beyond it the records of the longest-unfetched feeds go).
pub const MAX_FEED_STATES: usize = 1024;

/// Articles kept by [`crate::memory::InMemoryBackend`] (the oldest `published_at` go first).
pub const DEFAULT_NEWS_RETENTION: usize = 10_000;

/// Stored news in memory, unique by `canonical_url` (and by `id`, like the table's primary key),
/// ordered newest `published_at` first, indexed by category so a category's latest articles
/// are read without scanning the others.
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
    fn enforce_cap(&self, inner: &mut Inner) {
        if let Some(max) = self.max_articles {
            while inner.by_time.len() > max {
                inner.drop_oldest();
            }
        }
    }

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
            inner.insert_new(a);
            new += 1;
        }
        self.enforce_cap(inner);
        Ok(new)
    }

    async fn upsert_articles(&self, articles: &[NewsArticle]) -> Result<ArticleWrites> {
        let mut guard = write(&self.inner);
        let inner = &mut *guard;
        let mut writes = ArticleWrites::default();
        let mut seen = HashSet::new();
        for a in articles {
            if !seen.insert(a.canonical_url.as_str()) {
                continue;
            }
            if inner.by_url.contains_key(&a.canonical_url) {
                if inner.refresh(a) {
                    writes.updated += 1;
                }
                continue;
            }
            if inner.ids.contains(&a.id) {
                continue;
            }
            inner.insert_new(a);
            writes.inserted += 1;
        }
        self.enforce_cap(inner);
        Ok(writes)
    }

    async fn latest_stories<'a>(
        &self,
        category: Option<&'a str>,
        limit: u32,
        max_sources: u32,
    ) -> Result<Vec<Story>> {
        let inner = read(&self.inner);
        let keys: Box<dyn Iterator<Item = &OrderKey>> = match category {
            None => Box::new(inner.by_time.keys()),
            Some(c) => match inner.by_category.get(c) {
                Some(keys) => Box::new(keys.iter()),
                None => Box::new(std::iter::empty()),
            },
        };
        let mut seen = HashSet::new();
        let mut out = Vec::new();
        for key in keys {
            if out.len() >= limit as usize {
                break;
            }
            let Some(lead) = inner.by_time.get(key) else {
                continue;
            };
            if !seen.insert(lead.story()) {
                continue;
            }
            let others = inner
                .by_story
                .get(lead.story())
                .map(|keys| {
                    keys.iter()
                        .filter(|k| *k != key)
                        .take(max_sources as usize)
                        .filter_map(|k| inner.by_time.get(k))
                        .cloned()
                        .collect()
                })
                .unwrap_or_default();
            out.push(Story {
                lead: lead.clone(),
                others,
            });
        }
        Ok(out)
    }

    async fn feed_states(&self) -> Result<Vec<(String, FeedHealth)>> {
        Ok(read(&self.inner)
            .feeds
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect())
    }

    async fn save_feed_states(&self, states: &[(String, FeedHealth)]) -> Result<()> {
        let mut inner = write(&self.inner);
        for (key, health) in states {
            inner.feeds.insert(key.clone(), health.clone());
        }
        while inner.feeds.len() > MAX_FEED_STATES {
            let oldest = inner
                .feeds
                .iter()
                .min_by_key(|(_, h)| h.last_fetch_at)
                .map(|(k, _)| k.clone());
            match oldest {
                Some(k) => inner.feeds.remove(&k),
                None => break,
            };
        }
        Ok(())
    }

    async fn latest_articles<'a>(
        &self,
        category: Option<&'a str>,
        limit: u32,
    ) -> Result<Vec<NewsArticle>> {
        let inner = read(&self.inner);
        let limit = limit as usize;
        Ok(match category {
            None => inner.by_time.values().take(limit).cloned().collect(),
            Some(c) => inner
                .by_category
                .get(c)
                .map(|keys| {
                    keys.iter()
                        .take(limit)
                        .filter_map(|k| inner.by_time.get(k))
                        .cloned()
                        .collect()
                })
                .unwrap_or_default(),
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn a(n: i64, category: &str) -> NewsArticle {
        let t = Utc.timestamp_opt(1_700_000_000 + n, 0).unwrap();
        NewsArticle {
            id: n.to_string(),
            title: String::new(),
            summary: String::new(),
            content: None,
            url: format!("https://x.test/{n}"),
            canonical_url: format!("https://x.test/{n}"),
            source: String::new(),
            category: category.into(),
            thumbnail_url: None,
            published_at: t,
            related_symbols: vec![],
            created_at: t,
            story_id: None,
        }
    }

    #[tokio::test]
    async fn cap_drops_oldest_published_from_every_index() {
        let repo = InMemoryNews::with_max_articles(2);
        assert_eq!(
            repo.insert_articles(&[a(2, "gold"), a(1, "forex"), a(3, "gold")])
                .await
                .unwrap(),
            3
        );
        assert_eq!(repo.len(), 2);
        assert!(repo
            .latest_articles(Some("forex"), 10)
            .await
            .unwrap()
            .is_empty());
        let ids: Vec<String> = repo
            .latest_articles(None, 10)
            .await
            .unwrap()
            .into_iter()
            .map(|x| x.id)
            .collect();
        assert_eq!(ids, ["3", "2"]);
        // The dropped article is new again if offered again (and the oldest, so dropped again).
        assert_eq!(repo.insert_articles(&[a(1, "forex")]).await.unwrap(), 1);
        assert_eq!(repo.len(), 2);
    }

    #[tokio::test]
    async fn equal_published_at_lists_later_insert_first() {
        let repo = InMemoryNews::new();
        let mut b = a(1, "gold");
        b.id = "b".into();
        b.canonical_url = "https://x.test/b".into();
        repo.insert_articles(&[a(1, "gold")]).await.unwrap();
        repo.insert_articles(&[b]).await.unwrap();
        let ids: Vec<String> = repo
            .latest_articles(Some("gold"), 10)
            .await
            .unwrap()
            .into_iter()
            .map(|x| x.id)
            .collect();
        assert_eq!(ids, ["b", "1"]);
        assert!(repo
            .latest_articles(Some("gold"), 0)
            .await
            .unwrap()
            .is_empty());
    }
}
