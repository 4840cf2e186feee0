//! Retries of temporary errors inside one run: exponential backoff with full jitter.

use super::{Job, JobContext, RetryPolicy, RunReport};
use crate::backoff::{Backoff, RandomSource};
use crate::{Clock, Error, Result};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

impl RetryPolicy {
    /// The [`Backoff`] of this policy: `initial_backoff`, doubling, capped at `max_backoff`,
    /// full jitter.
    pub fn backoff(&self) -> Backoff {
        Backoff::new(self.initial_backoff, self.max_backoff)
    }

    /// Upper bound of the (jittered) wait before retry number `retry` (1 = the first retry):
    /// `min(max_backoff, initial_backoff × 2^(retry−1))`.
    pub fn backoff_ceiling(&self, retry: u32) -> Duration {
        self.backoff().ceiling(retry.saturating_sub(1))
    }

    /// The wait before retry number `retry` after error `err`: a uniformly random duration in
    /// `[0, backoff_ceiling(retry)]` ("full jitter") drawn from `random`, or the backend's
    /// `retry_after` when that is longer.
    pub fn retry_delay(&self, retry: u32, err: &Error, random: &dyn RandomSource) -> Duration {
        self.backoff()
            .delay_honouring(retry.saturating_sub(1), err.retry_after(), random)
    }
}

/// Runs `job` until it succeeds, fails permanently, runs out of attempts or is cancelled.
/// `attempts` is kept up to date so that the caller knows it even after a timeout or panic.
pub(crate) async fn run_with_retries(
    job: Arc<dyn Job>,
    clock: Arc<dyn Clock>,
    policy: RetryPolicy,
    cancel: CancellationToken,
    attempts: Arc<AtomicU32>,
    random: Arc<dyn RandomSource>,
) -> Result<RunReport> {
    let max = policy.max_attempts.max(1);
    let mut attempt = 1u32;
    loop {
        attempts.store(attempt, Ordering::Relaxed);
        let ctx = JobContext {
            cancel: cancel.clone(),
            clock: clock.clone(),
            attempt,
        };
        match job.run(&ctx).await {
            Ok(report) => return Ok(report),
            Err(e) if e.is_temporary() && attempt < max && !cancel.is_cancelled() => {
                let wait = policy.retry_delay(attempt, &e, &*random);
                tracing::debug!(
                    job = job.name(),
                    attempt,
                    error = %e,
                    wait_ms = u64::try_from(wait.as_millis()).unwrap_or(u64::MAX),
                    "temporary error, retrying"
                );
                tokio::select! {
                    _ = cancel.cancelled() => return Err(e),
                    _ = tokio::time::sleep(wait) => {}
                }
                attempt += 1;
            }
            Err(e) => return Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ceiling_doubles_and_caps() {
        let p = RetryPolicy {
            max_attempts: 10,
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(1),
        };
        assert_eq!(p.backoff_ceiling(1), Duration::from_millis(100));
        assert_eq!(p.backoff_ceiling(2), Duration::from_millis(200));
        assert_eq!(p.backoff_ceiling(3), Duration::from_millis(400));
        assert_eq!(p.backoff_ceiling(4), Duration::from_millis(800));
        assert_eq!(p.backoff_ceiling(5), Duration::from_secs(1));
        assert_eq!(p.backoff_ceiling(1000), Duration::from_secs(1));
    }

    #[test]
    fn delay_is_within_ceiling_or_retry_after() {
        let p = RetryPolicy::default();
        let r = crate::backoff::SeededRandom::new(3);
        let e = Error::unavailable("x", "down", None);
        for retry in 1..6 {
            for _ in 0..100 {
                assert!(p.retry_delay(retry, &e, &r) <= p.backoff_ceiling(retry));
            }
        }
        let rl = Error::RateLimited {
            backend: "x",
            message: String::new(),
            retry_after: Some(Duration::from_secs(30)),
        };
        assert_eq!(p.retry_delay(1, &rl, &r), Duration::from_secs(30));
    }
}
