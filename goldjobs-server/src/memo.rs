//! [`Memo`]: a value recomputed at most once per period, for anonymous read endpoints that
//! would otherwise put one database query per request on the shared pool.

use std::future::Future;
use std::time::Duration;
use tokio::sync::Mutex;
use tokio::time::Instant;

/// A value refreshed at most once per `ttl`. Concurrent readers of an expired value wait for
/// the one refresh in flight instead of each starting their own (single flight), so a flood of
/// requests costs one backend call per period.
#[derive(Debug)]
pub struct Memo<T> {
    ttl: Duration,
    slot: Mutex<Option<(Instant, T)>>,
}

impl<T: Clone> Memo<T> {
    /// An empty memo keeping values for `ttl`.
    pub fn new(ttl: Duration) -> Self {
        Memo {
            ttl,
            slot: Mutex::new(None),
        }
    }

    /// The value, from the memo while younger than the period, else from `refresh` (whose
    /// answer is kept, whatever it is: errors are memoized too, so a failing backend is not
    /// asked more often than a healthy one).
    pub async fn get<F, Fut>(&self, refresh: F) -> T
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = T>,
    {
        let mut slot = self.slot.lock().await;
        if let Some((at, value)) = slot.as_ref() {
            if at.elapsed() < self.ttl {
                return value.clone();
            }
        }
        let value = refresh().await;
        *slot = Some((Instant::now(), value.clone()));
        value
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    #[tokio::test(start_paused = true)]
    async fn one_refresh_per_period_even_under_concurrency() {
        let memo = Arc::new(Memo::new(Duration::from_secs(1)));
        let calls = Arc::new(AtomicUsize::new(0));
        let read = |memo: Arc<Memo<usize>>, calls: Arc<AtomicUsize>| async move {
            memo.get(|| async {
                tokio::time::sleep(Duration::from_millis(50)).await;
                calls.fetch_add(1, Ordering::SeqCst) + 1
            })
            .await
        };
        let many: Vec<_> = (0..100)
            .map(|_| tokio::spawn(read(memo.clone(), calls.clone())))
            .collect();
        for h in many {
            assert_eq!(h.await.unwrap_or(0), 1);
        }
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        tokio::time::advance(Duration::from_millis(900)).await;
        assert_eq!(read(memo.clone(), calls.clone()).await, 1);
        tokio::time::advance(Duration::from_millis(200)).await;
        assert_eq!(read(memo.clone(), calls.clone()).await, 2);
        assert_eq!(calls.load(Ordering::SeqCst), 2);
    }
}
