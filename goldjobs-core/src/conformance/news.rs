//! Conformance suite of [`NewsRepository`].

use super::{ok, unique, utc};
use crate::{NewsArticle, NewsRepository};
use chrono::{DateTime, Duration, Utc};

/// Run every behaviour of this suite.
pub async fn run_all(repo: &dyn NewsRepository) {
    fields_round_trip(repo).await;
    dedup_within_and_across_batches(repo).await;
    newest_first_with_category_and_limit(repo).await;
    concurrent_inserts_count_each_article_once(repo).await;
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

#[cfg(test)]
mod tests {
    use crate::memory::InMemoryNews;

    #[tokio::test]
    async fn in_memory_news_conform() {
        super::run_all(&InMemoryNews::new()).await;
        super::run_all(&InMemoryNews::with_max_articles(1_000)).await;
    }
}
