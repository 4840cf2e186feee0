//! Conformance suite of [`NewsCache`].

use super::{ok, unique, Sleep};
use crate::NewsCache;
use bytes::Bytes;
use std::time::Duration;

/// Run every behaviour of this suite; `sleep` lets about 1.5 s pass.
///
/// **Isolation:** [`invalidate_misses_every_list`] invalidates every list of `cache`; give the
/// suite a cache of its own (for Redis: its own key prefix).
pub async fn run_all(cache: &dyn NewsCache, sleep: &Sleep) {
    round_trip(cache).await;
    invalidate_misses_every_list(cache).await;
    stale_read_is_not_stored(cache).await;
    ttl_expiry(cache, sleep).await;
}

const LONG: Duration = Duration::from_secs(60);

fn list(s: &str) -> Bytes {
    Bytes::from(format!(r#"{{"articles":[{{"title":"{s}"}}]}}"#))
}

/// A stored list comes back byte for byte; an unknown key misses; writing again replaces.
pub async fn round_trip(cache: &dyn NewsCache) {
    let k = unique("news-list");
    assert_eq!(
        ok(cache.get_list(&k).await, "get_list"),
        None,
        "not cached yet"
    );
    ok(cache.put_list(&k, list("one"), LONG).await, "put_list");
    assert_eq!(ok(cache.get_list(&k).await, "get_list"), Some(list("one")));
    ok(
        cache.put_list(&k, list("two"), LONG).await,
        "put_list (replace)",
    );
    assert_eq!(ok(cache.get_list(&k).await, "get_list"), Some(list("two")));
    let empty = unique("news-list");
    ok(
        cache.put_list(&empty, Bytes::new(), LONG).await,
        "put_list (empty)",
    );
    assert_eq!(
        ok(cache.get_list(&empty).await, "get_list"),
        Some(Bytes::new()),
        "an empty value is a hit, not a miss"
    );
}

/// After `invalidate_lists` every list cached before misses; lists written afterwards hit.
pub async fn invalidate_misses_every_list(cache: &dyn NewsCache) {
    let k1 = unique("news-list");
    let k2 = unique("news-list");
    ok(cache.put_list(&k1, list("a"), LONG).await, "put_list");
    ok(cache.put_list(&k2, list("b"), LONG).await, "put_list");
    ok(cache.invalidate_lists().await, "invalidate_lists");
    assert_eq!(
        ok(cache.get_list(&k1).await, "get_list"),
        None,
        "invalidated"
    );
    assert_eq!(
        ok(cache.get_list(&k2).await, "get_list"),
        None,
        "invalidated"
    );
    ok(
        cache.put_list(&k1, list("c"), LONG).await,
        "put_list (after)",
    );
    assert_eq!(
        ok(cache.get_list(&k1).await, "get_list"),
        Some(list("c")),
        "a list written after the invalidation hits"
    );
    ok(cache.invalidate_lists().await, "invalidate_lists (twice)");
    assert_eq!(ok(cache.get_list(&k1).await, "get_list"), None);
}

/// A list read before an invalidation is not stored after it (`get_list_at` / `put_list_at`),
/// while a list read in the current generation is. Invalidates every list of `cache`, like
/// [`invalidate_misses_every_list`].
pub async fn stale_read_is_not_stored(cache: &dyn NewsCache) {
    let k = unique("news-list");
    let (hit, generation) = ok(cache.get_list_at(&k).await, "get_list_at");
    assert_eq!(hit, None, "not cached yet");
    // New articles arrive while the reader queries the database.
    ok(cache.invalidate_lists().await, "invalidate_lists");
    ok(
        cache.put_list_at(&k, generation, list("stale"), LONG).await,
        "put_list_at (old generation)",
    );
    let (hit, now) = ok(cache.get_list_at(&k).await, "get_list_at");
    assert_eq!(
        hit, None,
        "a list read before the invalidation must not be served"
    );
    assert_ne!(now, generation, "invalidation changes the generation");
    ok(
        cache.put_list_at(&k, now, list("fresh"), LONG).await,
        "put_list_at (current generation)",
    );
    assert_eq!(
        ok(cache.get_list(&k).await, "get_list"),
        Some(list("fresh"))
    );
    assert_eq!(
        ok(cache.get_list_at(&k).await, "get_list_at"),
        (Some(list("fresh")), now)
    );
}

/// A list expires `ttl` after it was written; a longer-lived one stays.
pub async fn ttl_expiry(cache: &dyn NewsCache, sleep: &Sleep) {
    let short = unique("news-list");
    let long = unique("news-list");
    ok(
        cache
            .put_list(&short, list("s"), Duration::from_secs(1))
            .await,
        "put_list",
    );
    ok(cache.put_list(&long, list("l"), LONG).await, "put_list");
    assert_eq!(
        ok(cache.get_list(&short).await, "get_list"),
        Some(list("s"))
    );
    sleep(Duration::from_millis(1_500)).await;
    assert_eq!(
        ok(cache.get_list(&short).await, "get_list"),
        None,
        "expired after its ttl"
    );
    assert_eq!(ok(cache.get_list(&long).await, "get_list"), Some(list("l")));
}

#[cfg(test)]
mod tests {
    use crate::conformance::tokio_sleep;
    use crate::memory::InMemoryNewsCache;

    #[tokio::test(start_paused = true)]
    async fn in_memory_news_cache_conforms() {
        super::run_all(&InMemoryNewsCache::new(), &tokio_sleep).await;
        super::run_all(&InMemoryNewsCache::with_max_entries(8), &tokio_sleep).await;
    }
}
