//! An in-memory [`MarketStream`]: a provider stream driven by the caller, for tests and for
//! embedders who feed prices from a source of their own.

use crate::{
    Error, MarketStream, PriceEvents, Result, StreamEvent, StreamPrice, Symbol, SymbolFailure,
};
use async_trait::async_trait;
use futures::StreamExt;
use std::collections::HashSet;
use std::sync::{Arc, Mutex, MutexGuard};
use tokio::sync::mpsc;

/// Events one connection holds until its reader takes them; a price sent to a connection that
/// is this far behind is dropped for that connection (memory stays bounded).
pub const STREAM_SESSION_CAPACITY: usize = 1024;

/// A [`MarketStream`] whose prices come from [`send`](Self::send): every open connection
/// subscribed to the price's symbol gets it.
///
/// It behaves like a provider: [`connect`](MarketStream::connect) answers a
/// [`StreamEvent::Subscribed`] first (symbols set with [`refuse_symbols`](Self::refuse_symbols)
/// are its failures), [`close_all`](Self::close_all) ends every open connection as a provider
/// closing the socket would, and [`refuse_connections`](Self::refuse_connections) makes
/// `connect` fail as an unreachable provider does. It counts connections, so tests can check
/// that a fleet keeps exactly one open.
///
/// ```
/// use goldjobs_core::memory::InMemoryMarketStream;
/// use goldjobs_core::{MarketStream, StreamEvent, StreamPrice, Symbol};
/// use futures::StreamExt;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> goldjobs_core::Result<()> {
/// let stream = InMemoryMarketStream::new("fake");
/// let mut events = stream.connect(&[Symbol::new("XAUUSD", "Gold", "XAU/USD")]).await?;
/// assert!(matches!(events.next().await, Some(Ok(StreamEvent::Subscribed { .. }))));
/// stream.send(StreamPrice {
///     symbol_code: "XAUUSD".into(),
///     price: "2650.25".parse().unwrap(),
///     timestamp: chrono::Utc::now(),
///     reference: None,
/// });
/// assert!(matches!(events.next().await, Some(Ok(StreamEvent::Price(p))) if p.price.to_string() == "2650.25"));
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct InMemoryMarketStream {
    name: &'static str,
    inner: Arc<Mutex<Inner>>,
}

#[derive(Default)]
struct Inner {
    sessions: Vec<Session>,
    connects: u64,
    refuse: Option<String>,
    refused_symbols: HashSet<String>,
}

struct Session {
    symbols: HashSet<String>,
    tx: mpsc::Sender<Result<StreamEvent>>,
}

impl std::fmt::Debug for InMemoryMarketStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InMemoryMarketStream")
            .field("name", &self.name)
            .field("open", &self.open_connections())
            .finish_non_exhaustive()
    }
}

impl InMemoryMarketStream {
    /// A stream named `name` (the ticks' `source`).
    pub fn new(name: &'static str) -> Self {
        InMemoryMarketStream {
            name,
            inner: Arc::default(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Send a price to every open connection subscribed to its symbol; how many got it.
    pub fn send(&self, price: StreamPrice) -> usize {
        let mut inner = self.lock();
        inner.sessions.retain(|s| !s.tx.is_closed());
        let mut delivered = 0;
        for s in &inner.sessions {
            if s.symbols.contains(&price.symbol_code)
                && s.tx.try_send(Ok(StreamEvent::Price(price.clone()))).is_ok()
            {
                delivered += 1;
            }
        }
        delivered
    }

    /// End every open connection with `error` as its last item (`None`: a clean close).
    pub fn close_all(&self, error: Option<Error>) {
        let sessions = std::mem::take(&mut self.lock().sessions);
        if let Some(e) = error {
            let line = e.to_string();
            for s in &sessions {
                let _ =
                    s.tx.try_send(Err(Error::unavailable("stream", line.clone(), None)));
            }
        }
        drop(sessions);
    }

    /// Make [`connect`](MarketStream::connect) fail with a temporary error naming `why`
    /// (`None`: accept connections again).
    pub fn refuse_connections(&self, why: Option<&str>) {
        self.lock().refuse = why.map(str::to_owned);
    }

    /// Codes every later subscription refuses (in its `Subscribed` failures).
    pub fn refuse_symbols(&self, codes: &[&str]) {
        self.lock().refused_symbols = codes.iter().map(|c| (*c).to_owned()).collect();
    }

    /// Connections opened so far.
    pub fn connects(&self) -> u64 {
        self.lock().connects
    }

    /// Connections open now (their reader not dropped).
    pub fn open_connections(&self) -> usize {
        let mut inner = self.lock();
        inner.sessions.retain(|s| !s.tx.is_closed());
        inner.sessions.len()
    }
}

#[async_trait]
impl MarketStream for InMemoryMarketStream {
    fn name(&self) -> &'static str {
        self.name
    }

    async fn connect(&self, symbols: &[Symbol]) -> Result<PriceEvents> {
        let mut inner = self.lock();
        if let Some(why) = &inner.refuse {
            return Err(Error::unavailable(
                "stream",
                format!("{}: {why}", self.name),
                None,
            ));
        }
        inner.connects += 1;
        let (tx, rx) = mpsc::channel(STREAM_SESSION_CAPACITY);
        let (ok, refused): (Vec<&Symbol>, Vec<&Symbol>) = symbols
            .iter()
            .partition(|s| !inner.refused_symbols.contains(&s.code));
        let subscribed = StreamEvent::Subscribed {
            symbols: ok.iter().map(|s| s.code.clone()).collect(),
            failures: refused
                .iter()
                .map(|s| SymbolFailure {
                    symbol_code: s.code.clone(),
                    error: Error::backend("stream", format!("{}: not streamed", s.code), None),
                })
                .collect(),
        };
        // A fresh channel has room for the first event.
        let _ = tx.try_send(Ok(subscribed));
        inner.sessions.push(Session {
            symbols: ok.iter().map(|s| s.code.clone()).collect(),
            tx,
        });
        let events = futures::stream::unfold(rx, |mut rx| async move {
            rx.recv().await.map(|item| (item, rx))
        });
        Ok(events.boxed())
    }
}
