//! [`InMemoryBackend`]: one in-memory adapter of each port, bundled.

use super::*;
use crate::{
    Broadcaster, DeviceTokenRepository, Lease, NewsCache, NewsRepository, Notifier,
    PriceTickRepository, QuoteCache, SymbolRepository,
};
use std::sync::Arc;

/// One in-memory adapter of each port, as `Arc<dyn Port>`: for the embedded default, examples
/// and tests.
///
/// [`InMemoryBackend::new`] gives: the default symbols, ticks capped at
/// [`DEFAULT_TICK_RETENTION`] per symbol, news, device tokens, quote and news caches, a
/// [`LocalBroadcaster`] (also reachable as [`hub`](Self::hub) to subscribe), a [`LogNotifier`]
/// and a [`SoleLeader`]. Replace any field to mix in another adapter.
#[derive(Clone)]
pub struct InMemoryBackend {
    /// [`InMemorySymbols::with_defaults`].
    pub symbols: Arc<dyn SymbolRepository>,
    /// [`InMemoryTicks::with_retention`]`(`[`DEFAULT_TICK_RETENTION`]`)`.
    pub ticks: Arc<dyn PriceTickRepository>,
    /// [`InMemoryNews`].
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
            news: Arc::new(InMemoryNews::new()),
            device_tokens: Arc::new(InMemoryDeviceTokens::new()),
            quote_cache: Arc::new(InMemoryQuoteCache::new()),
            news_cache: Arc::new(InMemoryNewsCache::new()),
            broadcaster: hub.clone(),
            hub,
            notifier: Arc::new(LogNotifier::new()),
            lease: Arc::new(SoleLeader::new()),
        }
    }
}
