//! Conformance suite of [`QuoteCache`].

use super::{ok, unique_code, utc, Sleep};
use crate::{Quote, QuoteCache};
use rust_decimal::Decimal;
use std::time::Duration;

/// Run every behaviour of this suite; `sleep` lets about 1.8 s pass in all.
pub async fn run_all(cache: &dyn QuoteCache, sleep: &Sleep) {
    round_trip_in_asked_order(cache).await;
    overwrite_replaces(cache).await;
    ttl_expiry(cache, sleep).await;
}

fn quote(code: &str, price: i64) -> Quote {
    Quote {
        symbol_code: code.to_owned(),
        price: Decimal::new(price, 2),
        change: Decimal::new(-2_830, 2),
        change_percent: Decimal::new(-108, 2),
        timestamp: utc(2025, 11, 28, 14, 30, 5),
        source: None,
    }
}

const LONG: Duration = Duration::from_secs(60);

/// Quotes come back with every field, in the order asked; codes without a quote are left out.
pub async fn round_trip_in_asked_order(cache: &dyn QuoteCache) {
    let [a, b, c] = [unique_code(), unique_code(), unique_code()];
    let (qa, qb, qc) = (quote(&a, 265_850), quote(&b, 3_112), quote(&c, 10_843));
    ok(
        cache.put_quotes(&[qa.clone(), qb, qc.clone()], LONG).await,
        "put_quotes",
    );
    let got = ok(
        cache
            .get_quotes(&[c.clone(), unique_code(), a.clone()])
            .await,
        "get_quotes",
    );
    assert_eq!(got, vec![qc, qa], "asked order, missing codes left out");
    assert!(
        ok(cache.get_quotes(&[]).await, "get_quotes(&[])").is_empty(),
        "nothing asked"
    );
    ok(cache.put_quotes(&[], LONG).await, "put_quotes(&[])");
}

/// Writing a symbol again replaces its quote.
pub async fn overwrite_replaces(cache: &dyn QuoteCache) {
    let a = unique_code();
    ok(
        cache.put_quotes(&[quote(&a, 100)], LONG).await,
        "put_quotes",
    );
    let newer = Quote {
        timestamp: utc(2025, 11, 28, 14, 30, 10),
        ..quote(&a, 101)
    };
    ok(
        cache.put_quotes(std::slice::from_ref(&newer), LONG).await,
        "put_quotes",
    );
    assert_eq!(ok(cache.get_quotes(&[a]).await, "get_quotes"), vec![newer]);
}

/// An entry expires `ttl` after it was written: 1 s entries are gone after 1.2 s, a 60 s entry
/// is not, and writing an entry again restarts its TTL.
pub async fn ttl_expiry(cache: &dyn QuoteCache, sleep: &Sleep) {
    let short = Duration::from_secs(1);
    let [a, b, c] = [unique_code(), unique_code(), unique_code()];
    let (qa, qb, qc) = (quote(&a, 1), quote(&b, 2), quote(&c, 3));
    ok(
        cache.put_quotes(&[qa.clone(), qc.clone()], short).await,
        "put_quotes",
    );
    ok(
        cache.put_quotes(std::slice::from_ref(&qb), LONG).await,
        "put_quotes",
    );
    let all = [a.clone(), b.clone(), c.clone()];
    assert_eq!(
        ok(cache.get_quotes(&all).await, "get_quotes"),
        vec![qa, qb.clone(), qc.clone()],
        "fresh entries are there"
    );
    sleep(Duration::from_millis(600)).await;
    ok(
        cache.put_quotes(std::slice::from_ref(&qc), short).await,
        "put_quotes (rewrite)",
    );
    sleep(Duration::from_millis(600)).await;
    assert_eq!(
        ok(cache.get_quotes(&all).await, "get_quotes"),
        vec![qb.clone(), qc],
        "1.2 s after: the 1 s entry expired; the 60 s one and the one rewritten 0.6 s ago remain"
    );
    sleep(Duration::from_millis(600)).await;
    assert_eq!(
        ok(cache.get_quotes(&all).await, "get_quotes"),
        vec![qb],
        "1.2 s after the rewrite it expired too"
    );
}

#[cfg(test)]
mod tests {
    use crate::conformance::tokio_sleep;
    use crate::memory::InMemoryQuoteCache;

    #[tokio::test(start_paused = true)]
    async fn in_memory_quote_cache_conforms() {
        super::run_all(&InMemoryQuoteCache::new(), &tokio_sleep).await;
    }
}

/// The suite catches a cache that ignores the TTL.
#[cfg(test)]
mod catches_bugs {
    use crate::conformance::tokio_sleep;
    use crate::memory::InMemoryQuoteCache;
    use crate::{Quote, QuoteCache, Result};
    use async_trait::async_trait;
    use std::time::Duration;

    struct Forever(InMemoryQuoteCache);

    #[async_trait]
    impl QuoteCache for Forever {
        async fn put_quotes(&self, quotes: &[Quote], _ttl: Duration) -> Result<()> {
            self.0.put_quotes(quotes, Duration::from_secs(3_600)).await
        }
        async fn get_quotes(&self, codes: &[String]) -> Result<Vec<Quote>> {
            self.0.get_quotes(codes).await
        }
    }

    #[tokio::test(start_paused = true)]
    #[should_panic(expected = "expired")]
    async fn ignoring_ttl_fails() {
        super::ttl_expiry(&Forever(InMemoryQuoteCache::new()), &tokio_sleep).await;
    }
}
