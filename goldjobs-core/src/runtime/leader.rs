//! Leadership of singleton jobs: a lease keeper per job.

use crate::Lease;
use futures::FutureExt;
use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::sync::watch;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// What one instance knows about the lease of one job.
#[derive(Debug)]
pub(crate) struct Leadership {
    inner: Mutex<LeaderInner>,
    /// `true` once the first acquire attempt since the start finished (either way).
    first_attempt: watch::Sender<bool>,
    /// Counts the times this instance became leader (the schedule loop re-plans from the
    /// stored schedule state on every change).
    elected: watch::Sender<u64>,
}

#[derive(Debug, Default)]
struct LeaderInner {
    /// Until when (local monotonic clock) we hold the lease, measured from *before* the last
    /// successful acquire call. `None` = not leader.
    valid_until: Option<Instant>,
    /// Last known holder.
    holder: Option<String>,
    /// The lease term of our holding (the fencing token of our writes); 0 when not leader.
    term: u64,
}

impl Leadership {
    pub(crate) fn new() -> Self {
        Self {
            inner: Mutex::new(LeaderInner::default()),
            first_attempt: watch::channel(false).0,
            elected: watch::channel(0).0,
        }
    }

    fn lock(&self) -> MutexGuard<'_, LeaderInner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Forget everything (before a start).
    pub(crate) fn reset(&self) {
        *self.lock() = LeaderInner::default();
        self.first_attempt.send_replace(false);
    }

    /// Whether we hold the lease now by the local monotonic clock.
    pub(crate) fn is_leader(&self) -> bool {
        self.lock()
            .valid_until
            .is_some_and(|until| Instant::now() < until)
    }

    /// The holder to show: the last one known, but not ourselves once our holding ran out.
    pub(crate) fn holder(&self, me: &str) -> Option<String> {
        let g = self.lock();
        let leader = g.valid_until.is_some_and(|until| Instant::now() < until);
        match &g.holder {
            Some(h) if h == me && !leader => None,
            h => h.clone(),
        }
    }

    /// The term of our holding, if we hold the lease now.
    pub(crate) fn term(&self) -> Option<u64> {
        let g = self.lock();
        g.valid_until
            .is_some_and(|until| Instant::now() < until)
            .then_some(g.term)
    }

    /// A receiver that sees every election of this instance.
    pub(crate) fn elections(&self) -> watch::Receiver<u64> {
        self.elected.subscribe()
    }

    /// Waits until the first acquire attempt finished.
    pub(crate) async fn first_attempt_done(&self) {
        let mut rx = self.first_attempt.subscribe();
        // The sender lives in `self`, so this only fails if it is dropped, which cannot be.
        let _ = rx.wait_for(|done| *done).await;
    }

    /// Step down (after a release).
    pub(crate) fn clear(&self) {
        let mut g = self.lock();
        g.valid_until = None;
        g.holder = None;
        g.term = 0;
    }

    /// Step down at once: the store refused a write of our term (a newer leader wrote).
    pub(crate) fn step_down(&self) {
        self.lock().valid_until = None;
    }
}

/// How often a standby asks for a lease: a leader renews every `ttl / 3`, a standby asks at
/// least every 500 ms, so a released lease is taken over at once.
pub(crate) fn standby_period(ttl: Duration) -> Duration {
    (ttl / 3).clamp(Duration::from_millis(1), Duration::from_millis(500))
}

/// Acquires/renews the lease `name` every `ttl / 3` (a standby every
/// [`standby_period`]) until `cancel`; see [`Leadership`].
pub(crate) async fn keep_lease(
    lease: Arc<dyn Lease>,
    name: String,
    instance_id: String,
    ttl: Duration,
    leadership: Arc<Leadership>,
    cancel: CancellationToken,
) {
    let period = (ttl / 3).max(Duration::from_millis(1));
    let standby = standby_period(ttl);
    loop {
        let started = Instant::now();
        let res = tokio::select! {
            biased;
            _ = cancel.cancelled() => break,
            r = tokio::time::timeout(
                period,
                AssertUnwindSafe(lease.acquire(&name, &instance_id, ttl)).catch_unwind(),
            ) => r,
        };
        match res {
            Ok(Err(_panic)) => {
                tracing::error!(job = %name, "lease acquire panicked");
            }
            Ok(Ok(Ok(state))) => {
                let mut g = leadership.lock();
                let was =
                    g.valid_until.is_some_and(|until| started < until) && g.term == state.term;
                if state.is_leader {
                    g.valid_until = Some(started + ttl);
                    g.term = state.term;
                    if !was {
                        tracing::info!(job = %name, term = state.term, "became leader");
                        leadership.elected.send_modify(|n| *n += 1);
                    }
                } else {
                    g.valid_until = None;
                    if was {
                        tracing::warn!(job = %name, holder = ?state.holder, "lost leadership");
                    }
                }
                g.holder = state.holder;
            }
            Ok(Ok(Err(e))) => {
                tracing::warn!(job = %name, error = %e, "lease renewal failed");
            }
            Err(_) => {
                tracing::warn!(job = %name, "lease renewal timed out");
            }
        }
        leadership.first_attempt.send_replace(true);
        let wait = if leadership.is_leader() {
            period
        } else {
            standby
        };
        tokio::select! {
            biased;
            _ = cancel.cancelled() => break,
            _ = tokio::time::sleep_until(started + wait) => {}
        }
    }
}
