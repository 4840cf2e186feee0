//! Conformance suite of [`NewsRepository`].

use super::{ok, unique, utc};
use crate::news::{FeedHealth, FeedStatus};
use crate::{ArticleWrites, NewsArticle, NewsRepository};
use chrono::{DateTime, Duration, Utc};

/// Run every behaviour of this suite.
pub async fn run_all(repo: &dyn NewsRepository) {
    fields_round_trip(repo).await;
    dedup_within_and_across_batches(repo).await;
    newest_first_with_category_and_limit(repo).await;
    concurrent_inserts_count_each_article_once(repo).await;
    upsert_inserts_new_and_updates_edited(repo).await;
    stories_one_entry_each_with_their_sources(repo).await;
    feed_states_round_trip_and_replace(repo).await;
}

/// An article of `category` whose canonical URL is `https://conformance.test/{run}/{n}`.
fn article(run: &str, n: u32, category: &str, published_at: DateTime<Utc>) -> NewsArticle {
    let canonical_url = format!("https://conformance.test/{run}/{n}");
    NewsArticle {
        id: format!("{run}-{n}"),
        title: format!("Gold moves {n}"),
        summary: format!("Summary {n}"),
        content: None,
        url: format!("{canonical_url}?utm_source=feed"),
        canonical_url,
        source: "Conformance".to_owned(),
        category: category.to_owned(),
        thumbnail_url: None,
        published_at,
        related_symbols: vec!["XAUUSD".to_owned()],
        created_at: published_at,
        story_id: None,
    }
}

fn at(minutes: i64) -> DateTime<Utc> {
    utc(2025, 6, 1, 12, 0, 0) + Duration::minutes(minutes)
}

/// `created_at` is the store's to set; compare everything else.
fn same(a: &NewsArticle, b: &NewsArticle) -> bool {
    NewsArticle {
        created_at: b.created_at,
        ..a.clone()
    } == *b
}

#[track_caller]
fn assert_same(got: &[NewsArticle], want: &[NewsArticle], what: &str) {
    let ok = got.len() == want.len() && got.iter().zip(want).all(|(g, w)| same(g, w));
    assert!(ok, "{what}\n got: {got:#?}\nwant: {want:#?}");
}

/// Every field comes back as inserted (`created_at` aside, which the store may set), optional
/// fields both set and unset.
pub async fn fields_round_trip(repo: &dyn NewsRepository) {
    let run = unique("news");
    let cat = unique("cat");
    let plain = article(&run, 1, &cat, at(0));
    let mut full = article(&run, 2, &cat, at(1));
    full.content = Some("Full text: spot gold rose 1.2% — “safe haven” demand.".to_owned());
    full.thumbnail_url = Some("https://conformance.test/img/2.jpg".to_owned());
    full.related_symbols = vec!["XAUUSD".to_owned(), "XAGUSD".to_owned()];
    full.summary = "Zusammenfassung: Gold steigt; 黄金上涨".to_owned();
    assert_eq!(
        ok(
            repo.insert_articles(&[plain.clone(), full.clone()]).await,
            "insert_articles"
        ),
        2
    );
    let got = ok(
        repo.latest_articles(Some(&cat), 10).await,
        "latest_articles",
    );
    assert_same(&got, &[full, plain], "articles come back with every field");
}

/// Articles are unique by `canonical_url`: a repeat within a batch or in a later batch is
/// skipped (the first stored wins) and the returned count is that of new articles only.
pub async fn dedup_within_and_across_batches(repo: &dyn NewsRepository) {
    let run = unique("news");
    let cat = unique("cat");
    let a = article(&run, 1, &cat, at(0));
    let b = article(&run, 2, &cat, at(1));
    // Same canonical URL as `a`, different id, title and time.
    let mut a_again = article(&run, 3, &cat, at(5));
    a_again.canonical_url = a.canonical_url.clone();
    a_again.title = "Duplicate of 1".to_owned();
    assert_eq!(
        ok(
            repo.insert_articles(&[a.clone(), a_again.clone(), b.clone()])
                .await,
            "insert_articles"
        ),
        2,
        "a repeat within one batch is not new"
    );
    let c = article(&run, 4, &cat, at(2));
    assert_eq!(
        ok(
            repo.insert_articles(&[a_again, b.clone(), c.clone()]).await,
            "insert_articles (again)"
        ),
        1,
        "articles stored by an earlier batch are not new"
    );
    assert_eq!(
        ok(repo.insert_articles(&[]).await, "insert_articles(&[])"),
        0
    );
    let got = ok(
        repo.latest_articles(Some(&cat), 10).await,
        "latest_articles",
    );
    assert_same(
        &got,
        &[c, b, a],
        "each canonical URL once; the first stored wins",
    );
}

/// Newest `published_at` first, whatever the insertion order; a category filter keeps only that
/// category; `limit` caps the answer.
pub async fn newest_first_with_category_and_limit(repo: &dyn NewsRepository) {
    let run = unique("news");
    let gold = unique("gold");
    let forex = unique("forex");
    let g = [
        article(&run, 1, &gold, at(10)),
        article(&run, 2, &gold, at(40)),
        article(&run, 3, &gold, at(20)),
        article(&run, 4, &gold, at(30)),
    ];
    let f = article(&run, 5, &forex, at(35));
    ok(
        repo.insert_articles(&[g[0].clone(), g[1].clone()]).await,
        "insert_articles",
    );
    ok(
        repo.insert_articles(&[g[2].clone(), f.clone(), g[3].clone()])
            .await,
        "insert_articles",
    );
    let newest_gold = [g[1].clone(), g[3].clone(), g[2].clone(), g[0].clone()];
    assert_same(
        &ok(
            repo.latest_articles(Some(&gold), 10).await,
            "latest_articles",
        ),
        &newest_gold,
        "newest published_at first, one category",
    );
    assert_same(
        &ok(
            repo.latest_articles(Some(&gold), 2).await,
            "latest_articles(limit 2)",
        ),
        &newest_gold[..2],
        "limit keeps the newest",
    );
    assert_same(
        &ok(
            repo.latest_articles(Some(&forex), 10).await,
            "latest_articles",
        ),
        &[f],
        "the other category",
    );
    assert!(
        ok(
            repo.latest_articles(Some(&unique("none")), 10).await,
            "latest_articles"
        )
        .is_empty(),
        "an unknown category has no article"
    );
    let all = ok(repo.latest_articles(None, 5).await, "latest_articles(None)");
    assert!(
        !all.is_empty() && all.len() <= 5,
        "no filter: up to the limit"
    );
    assert!(
        all.windows(2)
            .all(|w| w[0].published_at >= w[1].published_at),
        "no filter: newest first"
    );
}

/// Several inserts of the same articles at once: every article is stored once and counted as
/// new by exactly one of them.
pub async fn concurrent_inserts_count_each_article_once(repo: &dyn NewsRepository) {
    let run = unique("news");
    let cat = unique("cat");
    let batch: Vec<NewsArticle> = (0..20)
        .map(|n| article(&run, n, &cat, at(n.into())))
        .collect();
    let counts = futures::future::join_all((0..4).map(|_| repo.insert_articles(&batch))).await;
    let total: u64 = counts
        .into_iter()
        .map(|r| ok(r, "concurrent insert_articles"))
        .sum();
    assert_eq!(total, 20, "each article is new for exactly one insert");
    let got = ok(
        repo.latest_articles(Some(&cat), 100).await,
        "latest_articles",
    );
    assert_eq!(got.len(), 20, "each article stored once");
}

/// `upsert_articles` inserts new articles and updates the text of a known canonical URL (its
/// id, story, publication and creation times stay); an unchanged article is not an update.
pub async fn upsert_inserts_new_and_updates_edited(repo: &dyn NewsRepository) {
    let run = unique("upsert");
    let cat = unique("cat");
    let a = article(&run, 1, &cat, at(0));
    let mut b = article(&run, 2, &cat, at(1));
    b.story_id = Some(format!("{run}-1"));
    let writes = ok(
        repo.upsert_articles(&[a.clone(), b.clone()]).await,
        "upsert new",
    );
    assert_eq!(
        writes,
        ArticleWrites {
            inserted: 2,
            updated: 0
        },
        "two new"
    );
    let writes = ok(
        repo.upsert_articles(&[a.clone(), b.clone()]).await,
        "upsert same",
    );
    assert_eq!(
        writes,
        ArticleWrites::default(),
        "unchanged articles are no writes"
    );

    let mut edited = a.clone();
    edited.id = format!("{run}-other-id");
    edited.title = "Gold moves 1 (corrected)".to_owned();
    edited.summary = "A corrected summary".to_owned();
    edited.thumbnail_url = Some("https://conformance.test/img/1.jpg".to_owned());
    edited.published_at = at(30);
    edited.story_id = Some("another-story".to_owned());
    let mut c = article(&run, 3, &cat, at(2));
    c.url = format!("{}#dup", c.url);
    let writes = ok(
        repo.upsert_articles(&[edited.clone(), c.clone(), c.clone()])
            .await,
        "upsert edited",
    );
    assert_eq!(
        writes,
        ArticleWrites {
            inserted: 1,
            updated: 1
        },
        "one edit, one new"
    );
    let got = ok(repo.latest_articles(Some(&cat), 10).await, "latest");
    let want_a = NewsArticle {
        title: edited.title.clone(),
        summary: edited.summary.clone(),
        thumbnail_url: edited.thumbnail_url.clone(),
        ..a
    };
    assert_same(&got, &[c, b, want_a], "the edit changed the text only");
}

/// `latest_stories` gives one entry per story, led by its newest article (of the category),
/// with the story's other articles (any category, newest first, bounded); articles without
/// `story_id` are stories of their own.
pub async fn stories_one_entry_each_with_their_sources(repo: &dyn NewsRepository) {
    let run = unique("stories");
    let cat = unique("cat");
    let other_cat = unique("cat");
    let first = article(&run, 1, &cat, at(0));
    let story = Some(first.id.clone());
    let mut second = article(&run, 2, &cat, at(5));
    second.story_id = story.clone();
    second.source = "Second".to_owned();
    let mut third = article(&run, 3, &other_cat, at(10));
    third.story_id = story.clone();
    third.source = "Third".to_owned();
    let alone = article(&run, 4, &cat, at(3));
    ok(
        repo.upsert_articles(&[first.clone(), second.clone(), third.clone(), alone.clone()])
            .await,
        "insert",
    );
    let got = ok(repo.latest_stories(Some(&cat), 10, 10).await, "stories");
    assert_eq!(got.len(), 2, "two stories in {cat}: {got:#?}");
    assert_same(
        &[got[0].lead.clone()],
        &[second.clone()],
        "newest of the category leads",
    );
    assert_same(
        &got[0].others,
        &[third.clone(), first.clone()],
        "the others, newest first",
    );
    assert_same(
        &[got[1].lead.clone()],
        std::slice::from_ref(&alone),
        "a story of its own",
    );
    assert!(got[1].others.is_empty());

    let got = ok(
        repo.latest_stories(Some(&other_cat), 10, 1).await,
        "other category",
    );
    assert_eq!(got.len(), 1);
    assert_same(
        &[got[0].lead.clone()],
        &[third],
        "led by the category's article",
    );
    assert_same(&got[0].others, &[second], "bounded by max_sources");
    let got = ok(repo.latest_stories(Some(&cat), 1, 10).await, "limit");
    assert_eq!(got.len(), 1, "limit counts stories");
    assert!(
        ok(
            repo.latest_stories(Some(&unique("none")), 10, 10).await,
            "empty"
        )
        .is_empty(),
        "an unknown category has no stories"
    );
}

/// Feed states come back as saved, and saving a key again replaces its state.
pub async fn feed_states_round_trip_and_replace(repo: &dyn NewsRepository) {
    let key = unique("feed");
    let other = unique("feed");
    let mut h = FeedHealth::new("Kitco", "gold", "https://kitco.example/rss");
    ok(
        repo.save_feed_states(&[(key.clone(), h.clone()), (other.clone(), h.clone())])
            .await,
        "save new",
    );
    let got = ok(repo.feed_states().await, "states");
    let find = |k: &str| got.iter().find(|(kk, _)| kk == k).map(|(_, v)| v.clone());
    assert_eq!(find(&key), Some(h.clone()), "a never fetched feed");
    h.last_fetch_at = Some(utc(2026, 12, 5, 10, 15, 0));
    h.last_status = Some(FeedStatus::RateLimited);
    h.consecutive_failures = 3;
    h.next_fetch_at = Some(utc(2026, 12, 5, 12, 15, 0));
    h.articles_total = u64::from(u32::MAX) + 7;
    h.last_error = Some("feed \"Kitco\": HTTP 429 Too Many Requests".to_owned());
    ok(
        repo.save_feed_states(&[(key.clone(), h.clone())]).await,
        "save again",
    );
    let got = ok(repo.feed_states().await, "states again");
    let find = |k: &str| got.iter().find(|(kk, _)| kk == k).map(|(_, v)| v.clone());
    assert_eq!(find(&key), Some(h), "replaced, every field");
    assert_eq!(
        find(&other).map(|o| o.consecutive_failures),
        Some(0),
        "the other key is untouched"
    );
}

#[cfg(test)]
mod tests {
    use crate::memory::InMemoryNews;

    #[tokio::test]
    async fn in_memory_news_conform() {
        super::run_all(&InMemoryNews::new()).await;
        super::run_all(&InMemoryNews::with_max_articles(1_000)).await;
    }
}
