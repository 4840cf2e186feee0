//! [`LogNotifier`], [`FanoutNotifier`] and [`RecordingNotifier`].

use super::lock;
use crate::{Error, Notification, Notifier, Result};
use async_trait::async_trait;
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

/// A [`Notifier`] that writes each notification to the log (tracing, level `info`, target
/// `goldjobs::notify`) and always succeeds: the embedded default when no push service is
/// configured.
#[derive(Debug, Default, Clone, Copy)]
pub struct LogNotifier;

impl LogNotifier {
    /// A log notifier.
    pub fn new() -> Self {
        LogNotifier
    }
}

#[async_trait]
impl Notifier for LogNotifier {
    fn name(&self) -> &'static str {
        "log"
    }

    async fn notify(&self, n: &Notification) -> Result<()> {
        tracing::info!(
            target: "goldjobs::notify",
            user_id = %n.user_id,
            title = %n.title,
            body = %n.body,
            data = ?n.data,
            "notification"
        );
        Ok(())
    }
}

/// Sends each notification through several notifiers (e.g. FCM and a webhook).
///
/// Semantics:
/// - All notifiers are called, concurrently, whatever the others do.
/// - No notifier (an empty fanout) or all succeeded → `Ok`.
/// - Exactly one failed → its error, unchanged (kind, `retry_after` and source kept).
/// - Several failed → one error naming each failure: [`Error::Unavailable`] (temporary) if any
///   of them was temporary, else [`Error::Backend`] (permanent), with backend `fanout`.
///
/// So the outbox retries the notification when any part may still succeed. A retry calls every
/// notifier again, including those that succeeded: delivery is at least once per notifier.
#[derive(Clone, Default)]
pub struct FanoutNotifier {
    notifiers: Vec<Arc<dyn Notifier>>,
}

impl std::fmt::Debug for FanoutNotifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(self.notifiers.iter().map(|n| n.name()))
            .finish()
    }
}

impl FanoutNotifier {
    /// A fanout over these notifiers.
    pub fn new(notifiers: Vec<Arc<dyn Notifier>>) -> Self {
        Self { notifiers }
    }

    /// Add one more notifier.
    pub fn with(mut self, notifier: Arc<dyn Notifier>) -> Self {
        self.notifiers.push(notifier);
        self
    }

    /// How many notifiers it sends through.
    pub fn len(&self) -> usize {
        self.notifiers.len()
    }

    /// Whether it sends through none.
    pub fn is_empty(&self) -> bool {
        self.notifiers.is_empty()
    }
}

#[async_trait]
impl Notifier for FanoutNotifier {
    fn name(&self) -> &'static str {
        "fanout"
    }

    async fn notify(&self, n: &Notification) -> Result<()> {
        let results = futures::future::join_all(self.notifiers.iter().map(|x| x.notify(n))).await;
        let mut failures: Vec<(&'static str, Error)> = self
            .notifiers
            .iter()
            .zip(results)
            .filter_map(|(x, r)| r.err().map(|e| (x.name(), e)))
            .collect();
        match failures.len() {
            0 => Ok(()),
            1 => Err(failures.remove(0).1),
            _ => {
                let temporary = failures.iter().any(|(_, e)| e.is_temporary());
                let message = failures
                    .iter()
                    .map(|(name, e)| format!("{name}: {e}"))
                    .collect::<Vec<_>>()
                    .join("; ");
                Err(if temporary {
                    Error::unavailable("fanout", message, None)
                } else {
                    Error::backend("fanout", message, None)
                })
            }
        }
    }
}

/// Notifications a [`RecordingNotifier`] keeps by default.
pub const DEFAULT_RECORDING_CAPACITY: usize = 10_000;

#[derive(Debug, Default)]
struct Recording {
    delivered: VecDeque<Notification>,
    dropped: u64,
    calls: u64,
    failures: VecDeque<Error>,
}

/// A [`Notifier`] for tests: keeps delivered notifications (at most `capacity`, the oldest
/// dropped first) and can be told to fail the next calls.
///
/// A call that fails records nothing.
#[derive(Debug)]
pub struct RecordingNotifier {
    inner: Mutex<Recording>,
    capacity: usize,
}

impl Default for RecordingNotifier {
    fn default() -> Self {
        Self::new()
    }
}

impl RecordingNotifier {
    /// A recorder keeping [`DEFAULT_RECORDING_CAPACITY`] notifications.
    pub fn new() -> Self {
        Self::with_capacity(DEFAULT_RECORDING_CAPACITY)
    }

    /// A recorder keeping at most `capacity` notifications (at least 1).
    pub fn with_capacity(capacity: usize) -> Self {
        Self {
            inner: Mutex::default(),
            capacity: capacity.max(1),
        }
    }

    /// Make the next `n` calls fail, each with an error made by `error` (in addition to
    /// failures already queued).
    pub fn fail_next(&self, n: usize, error: impl Fn() -> Error) {
        let mut inner = lock(&self.inner);
        inner.failures.extend((0..n).map(|_| error()));
    }

    /// Make the next `n` calls fail with a temporary error (retried by the outbox).
    pub fn fail_next_temporarily(&self, n: usize) {
        self.fail_next(n, || {
            Error::unavailable("recording", "injected temporary failure", None)
        });
    }

    /// Make the next `n` calls fail with a permanent error (given up by the outbox).
    pub fn fail_next_permanently(&self, n: usize) {
        self.fail_next(n, || {
            Error::backend("recording", "injected permanent failure", None)
        });
    }

    /// The notifications delivered, oldest first (at most `capacity` of the latest).
    pub fn delivered(&self) -> Vec<Notification> {
        lock(&self.inner).delivered.iter().cloned().collect()
    }

    /// Take the delivered notifications out, oldest first.
    pub fn take(&self) -> Vec<Notification> {
        lock(&self.inner).delivered.drain(..).collect()
    }

    /// Calls so far, failed ones included.
    pub fn calls(&self) -> u64 {
        lock(&self.inner).calls
    }

    /// Delivered notifications dropped because the recorder was full.
    pub fn dropped(&self) -> u64 {
        lock(&self.inner).dropped
    }

    /// Failures still queued.
    pub fn pending_failures(&self) -> usize {
        lock(&self.inner).failures.len()
    }
}

#[async_trait]
impl Notifier for RecordingNotifier {
    fn name(&self) -> &'static str {
        "recording"
    }

    async fn notify(&self, n: &Notification) -> Result<()> {
        let mut inner = lock(&self.inner);
        inner.calls += 1;
        if let Some(e) = inner.failures.pop_front() {
            return Err(e);
        }
        if inner.delivered.len() >= self.capacity {
            inner.delivered.pop_front();
            inner.dropped += 1;
        }
        inner.delivered.push_back(n.clone());
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn note(user: &str) -> Notification {
        Notification {
            user_id: user.into(),
            title: "t".into(),
            body: "b".into(),
            data: Default::default(),
            delivery_id: None,
        }
    }

    #[tokio::test]
    async fn recording_is_bounded_and_fails_on_demand() {
        let r = RecordingNotifier::with_capacity(2);
        r.fail_next_temporarily(1);
        r.fail_next_permanently(1);
        assert!(r.notify(&note("a")).await.unwrap_err().is_temporary());
        assert!(!r.notify(&note("a")).await.unwrap_err().is_temporary());
        for u in ["a", "b", "c"] {
            r.notify(&note(u)).await.unwrap();
        }
        assert_eq!(r.delivered(), vec![note("b"), note("c")]);
        assert_eq!((r.calls(), r.dropped(), r.pending_failures()), (5, 1, 0));
        assert_eq!(r.take().len(), 2);
        assert!(r.delivered().is_empty());
    }

    #[tokio::test]
    async fn fanout_sends_everywhere_and_classifies() {
        let a = Arc::new(RecordingNotifier::new());
        let b = Arc::new(RecordingNotifier::new());
        let f = FanoutNotifier::new(vec![a.clone(), b.clone()]).with(Arc::new(LogNotifier));
        assert_eq!(f.len(), 3);
        f.notify(&note("u")).await.unwrap();
        assert_eq!((a.delivered().len(), b.delivered().len()), (1, 1));

        // One failure: passed through unchanged.
        a.fail_next(1, || Error::RateLimited {
            backend: "x",
            message: "slow".into(),
            retry_after: Some(Duration::from_secs(7)),
        });
        let e = f.notify(&note("u")).await.unwrap_err();
        assert_eq!(e.retry_after(), Some(Duration::from_secs(7)));
        assert_eq!(b.delivered().len(), 2);

        // Several: temporary if any is.
        a.fail_next_permanently(1);
        b.fail_next_temporarily(1);
        assert!(f.notify(&note("u")).await.unwrap_err().is_temporary());
        a.fail_next_permanently(1);
        b.fail_next_permanently(1);
        let e = f.notify(&note("u")).await.unwrap_err();
        assert!(!e.is_temporary());
        assert!(e.to_string().contains("recording: recording error"));

        FanoutNotifier::default().notify(&note("u")).await.unwrap();
    }
}
