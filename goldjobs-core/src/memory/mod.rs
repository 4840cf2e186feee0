//! In-memory adapters of every port: used by tests and the embedded default.
//!
//! Every adapter here is a real, complete implementation of its port, not a mock: it keeps its
//! state behind a `std::sync` lock that is held only for the few instructions of one call and
//! never across an `.await`, so the adapters are safe to share as `Arc<dyn Port>` between tasks
//! and threads. Where state could grow without bound in a long-running process, the adapter has
//! a documented bound (ticks per symbol, cached news lists, broadcast channel capacity,
//! recorded notifications).
//!
//! The conformance suites in `crate::conformance` (feature `test-util`) run against each of them,
//! and against every real adapter, so both behave the same.
//!
//! [`InMemoryBackend`] bundles one instance of each for examples and the embedded default.
//!
//! ```
//! use goldjobs_core::memory::InMemoryBackend;
//! use goldjobs_core::{Event, PriceUpdate};
//! use rust_decimal::Decimal;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> goldjobs_core::Result<()> {
//! let backend = InMemoryBackend::new();
//! assert_eq!(backend.symbols.active_symbols().await?.len(), 6);
//!
//! // The WebSocket hub subscribes to the local broadcaster; jobs publish through the port.
//! let mut rx = backend.hub.subscribe();
//! let update = Event::PriceUpdate(PriceUpdate {
//!     symbol_code: "XAUUSD".into(),
//!     price: Decimal::new(265_850, 2),
//!     change: Decimal::new(2_830, 2),
//!     change_percent: Decimal::new(108, 2),
//!     timestamp: chrono::Utc::now(),
//!     seq: 1,
//! });
//! backend.broadcaster.publish(&[update.to_broadcast()?]).await?;
//! let got = rx.recv().await.expect("one message");
//! assert!(got.payload.starts_with(br#"{"type":"price_update""#));
//! # Ok(())
//! # }
//! ```

mod backend;
mod broadcaster;
mod device_tokens;
mod jobs;
mod lease;
mod news;
mod news_cache;
mod notifier;
mod predictions;
mod quote_cache;
mod stream;
mod symbols;
mod ticks;

#[cfg(test)]
mod concurrency_tests;

pub use backend::InMemoryBackend;
pub use broadcaster::{LocalBroadcaster, DEFAULT_BROADCAST_CAPACITY};
pub use device_tokens::InMemoryDeviceTokens;
pub use jobs::InMemoryJobs;
pub use lease::{InMemoryLease, SoleLeader};
pub use news::{InMemoryNews, DEFAULT_NEWS_RETENTION, MAX_FEED_STATES};
pub use news_cache::{InMemoryNewsCache, DEFAULT_NEWS_CACHE_ENTRIES};
pub use notifier::{FanoutNotifier, LogNotifier, RecordingNotifier, DEFAULT_RECORDING_CAPACITY};
pub use predictions::{InMemoryPredictions, DEFAULT_OUTBOX_RETENTION};
pub use quote_cache::InMemoryQuoteCache;
pub use stream::{InMemoryMarketStream, STREAM_SESSION_CAPACITY};
pub use symbols::InMemorySymbols;
pub use ticks::{InMemoryTicks, DEFAULT_TICK_RETENTION};

use std::sync::{Mutex, MutexGuard, RwLock, RwLockReadGuard, RwLockWriteGuard};

/// Lock a mutex, going on with the data if a panicking thread poisoned it: every critical
/// section here leaves the state consistent before anything that can panic.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Read-lock an `RwLock`, ignoring poisoning (see [`lock`]).
fn read<T>(l: &RwLock<T>) -> RwLockReadGuard<'_, T> {
    l.read().unwrap_or_else(|e| e.into_inner())
}

/// Write-lock an `RwLock`, ignoring poisoning (see [`lock`]).
fn write<T>(l: &RwLock<T>) -> RwLockWriteGuard<'_, T> {
    l.write().unwrap_or_else(|e| e.into_inner())
}
