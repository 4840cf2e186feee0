//! [`InMemoryBackend`]: one in-memory adapter of each port, bundled.

use super::*;
use crate::{
    Broadcaster, DeviceTokenRepository, JobStore, Lease, NewsCache, NewsRepository, Notifier,
    OutboxRepository, PredictionRepository, PriceTickRepository, QuoteCache, SymbolRepository,
};
use std::sync::Arc;

/// One in-memory adapter of each port, as `Arc<dyn Port>`: for the embedded default, examples
/// and tests.
///
/// [`InMemoryBackend::new`] gives: the default symbols, ticks capped at
/// [`DEFAULT_TICK_RETENTION`] per symbol, predictions with their outbox, news capped at [`DEFAULT_NEWS_RETENTION`] articles, device tokens, quote and news caches, a
/// [`LocalBroadcaster`] (also reachable as [`hub`](Self::hub) to subscribe), a [`LogNotifier`],
/// a [`SoleLeader`] and [`InMemoryJobs`]. Replace any field to mix in another adapter.
#[derive(Clone)]
pub struct InMemoryBackend {
    /// [`InMemorySymbols::with_defaults`].
    pub symbols: Arc<dyn SymbolRepository>,
    /// [`InMemoryTicks::with_retention`]`(`[`DEFAULT_TICK_RETENTION`]`)`.
    pub ticks: Arc<dyn PriceTickRepository>,
    /// [`InMemoryPredictions`]: both the [`PredictionRepository`] and the [`OutboxRepository`]
    /// (they share one atomic state); see [`prediction_repository`](Self::prediction_repository)
    /// and [`outbox_repository`](Self::outbox_repository) for the ports.
    pub predictions: Arc<InMemoryPredictions>,
    /// [`InMemoryNews::with_max_articles`]`(`[`DEFAULT_NEWS_RETENTION`]`)`.
    pub news: Arc<dyn NewsRepository>,
    /// [`InMemoryDeviceTokens`].
    pub device_tokens: Arc<dyn DeviceTokenRepository>,
    /// [`InMemoryQuoteCache`].
    pub quote_cache: Arc<dyn QuoteCache>,
    /// [`InMemoryNewsCache`].
    pub news_cache: Arc<dyn NewsCache>,
    /// The [`hub`](Self::hub), as a port.
    pub broadcaster: Arc<dyn Broadcaster>,
    /// The same [`LocalBroadcaster`] as `broadcaster`, to [`subscribe`](LocalBroadcaster::subscribe).
    pub hub: Arc<LocalBroadcaster>,
    /// [`LogNotifier`].
    pub notifier: Arc<dyn Notifier>,
    /// [`SoleLeader`].
    pub lease: Arc<dyn Lease>,
    /// [`InMemoryJobs`].
    pub jobs: Arc<dyn JobStore>,
}

impl std::fmt::Debug for InMemoryBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InMemoryBackend")
            .field("hub", &self.hub)
            .finish_non_exhaustive()
    }
}

impl Default for InMemoryBackend {
    fn default() -> Self {
        Self::new()
    }
}

impl InMemoryBackend {
    /// Fresh adapters, see the type's documentation.
    pub fn new() -> Self {
        let hub = Arc::new(LocalBroadcaster::new());
        InMemoryBackend {
            symbols: Arc::new(InMemorySymbols::with_defaults()),
            ticks: Arc::new(InMemoryTicks::with_retention(DEFAULT_TICK_RETENTION)),
            predictions: Arc::new(InMemoryPredictions::new()),
            news: Arc::new(InMemoryNews::with_max_articles(DEFAULT_NEWS_RETENTION)),
            device_tokens: Arc::new(InMemoryDeviceTokens::new()),
            quote_cache: Arc::new(InMemoryQuoteCache::new()),
            news_cache: Arc::new(InMemoryNewsCache::new()),
            broadcaster: hub.clone(),
            hub,
            notifier: Arc::new(LogNotifier::new()),
            lease: Arc::new(SoleLeader::new()),
            jobs: Arc::new(InMemoryJobs::new()),
        }
    }

    /// The storage ports of this backend, the same bundle the SQL stores give.
    pub fn ports(&self) -> crate::Ports {
        crate::Ports {
            symbols: self.symbols.clone(),
            ticks: self.ticks.clone(),
            predictions: self.predictions.clone(),
            outbox: self.predictions.clone(),
            news: self.news.clone(),
            device_tokens: self.device_tokens.clone(),
            lease: self.lease.clone(),
            jobs: self.jobs.clone(),
        }
    }

    /// [`predictions`](Self::predictions) as a [`PredictionRepository`].
    pub fn prediction_repository(&self) -> Arc<dyn PredictionRepository> {
        self.predictions.clone()
    }

    /// [`predictions`](Self::predictions) as an [`OutboxRepository`] (the same state).
    pub fn outbox_repository(&self) -> Arc<dyn OutboxRepository> {
        self.predictions.clone()
    }
}
